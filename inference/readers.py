"""Streaming readers for article archives: JSON Lines (optionally gzip), CSV, Parquet, a folder of .txt.

Each reader yields :class:`RawRow` one at a time, so memory does not grow with the archive. Nothing is
dropped and nothing aborts the stream: a record that cannot be read (bad JSON, undecodable bytes, an
unbalanced CSV quote, a truncated compressed file, a dangling link) is yielded with its ``problem`` set,
so the scorer writes it down with its reason and goes on. A UTF-8 byte-order mark is accepted.

The scorer and the training-data loader both read through :func:`read_archive`.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import os
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ARCHIVE_FORMATS",
    "READ_PROBLEMS",
    "SCORE_FORMATS",
    "ArchiveFormat",
    "RawRow",
    "count_rows",
    "detect_format",
    "iter_scores",
    "open_check",
    "read_archive",
    "score_format",
]

# Why a record could not be read (reason code -> meaning)
READ_PROBLEMS = {
    "undecodable_bytes": "the bytes are not UTF-8",
    "blank_line": "an empty line",
    "invalid_json": "the line is not a JSON object",
    "malformed_row": "a CSV record whose quoting or number of fields is wrong",
    "truncated_file": "the compressed file ends in the middle of a record; the rows before the cut were read",
    "unreadable_file": "the file cannot be read in its format (e.g. a plain file named .gz)",
    "dangling_link": "a symbolic link in the folder points nowhere",
    "outside_folder": "a symbolic link in the folder points to a file outside it",
    "not_txt": "a file in the folder is not a .txt file",
}
# A CSV record may span lines (quoted newlines); one that is still open after this many characters is an
# unbalanced quote: its first line is reported and reading resumes on the next line.
MAX_CSV_RECORD_CHARS = 4_000_000


@dataclass
class RawRow:
    """One input record: where it came from, its fields, or why it could not be read."""

    number: int  # 1-based: line for JSON Lines, record for CSV / Parquet, file for a folder
    location: str  # "file:line", "file:row N (line L)", "file:row N" or the file's path
    fields: dict[str, Any] = field(default_factory=dict)
    problem: tuple[str, str] | None = None  # (reason code, detail)


@dataclass(frozen=True)
class ArchiveFormat:
    """One archive format: the names it is recognised by, and how it is read, checked and counted."""

    name: str
    suffixes: tuple[str, ...]  # lower-case file name endings, longest first within the table
    description: str


# The one table of what the library reads: the scorer, ``predict --input``, ``select``, ``check-precision``,
# training and evaluation data all go through it (a folder of .txt files is recognised by being a folder).
ARCHIVE_FORMATS: dict[str, ArchiveFormat] = {
    "jsonl": ArchiveFormat("jsonl", (".jsonl.gz", ".json.gz", ".jsonl", ".json"), "JSON Lines, optionally gzip"),
    "csv": ArchiveFormat("csv", (".csv.gz", ".csv"), "CSV with a header, optionally gzip"),
    "parquet": ArchiveFormat("parquet", (".parquet", ".pq"), "Parquet"),
    "txt_dir": ArchiveFormat("txt_dir", (), "a folder of .txt files (id: the path below the folder)"),
}
ARCHIVE_KINDS = ".jsonl[.gz], .csv[.gz], .parquet or a folder of .txt files"

# What the scorer writes (and :func:`iter_scores` reads back): format -> file name endings.
SCORE_FORMATS: dict[str, tuple[str, ...]] = {"jsonl": (".jsonl", ".json"), "csv": (".csv",), "parquet": (".parquet",)}


def detect_format(path: Path) -> str:
    """``jsonl``, ``csv``, ``parquet`` or ``txt_dir`` from the path (see :data:`ARCHIVE_FORMATS`)."""
    if path.is_dir():
        return "txt_dir"
    name = path.name.lower()
    for fmt in ARCHIVE_FORMATS.values():
        if name.endswith(fmt.suffixes):
            return fmt.name
    raise ValueError(f"{path}: unknown archive type; use {ARCHIVE_KINDS}")


def score_format(path: Path, fmt: str | None = None) -> str:
    """The scorer's output format: ``fmt`` (checked) or the one the file name ends with."""
    if fmt:
        if fmt not in SCORE_FORMATS:
            raise ValueError(f"output format {fmt!r}; expected one of {tuple(SCORE_FORMATS)}")
        return fmt
    name = path.name.lower()
    for candidate, suffixes in SCORE_FORMATS.items():
        if name.endswith(suffixes):
            return candidate
    raise ValueError(f"{path}: cannot tell the output format from the name; use .jsonl, .csv or .parquet")


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else path.open("rb")


_STREAM_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


def _stream_problem(path: Path, number: int, exc: BaseException) -> RawRow:
    """The one error row for a stream that breaks: at the start (unreadable) or after some rows (truncated)."""
    reason = "truncated_file" if number else "unreadable_file"
    return RawRow(number + 1, f"{path}:{number + 1}", problem=(reason, f"{type(exc).__name__}: {exc}"))


def _read_jsonl(path: Path) -> Iterator[RawRow]:
    number = 0
    with _open_binary(path) as handle:
        try:
            for number, raw in enumerate(handle, 1):
                yield _jsonl_row(path, number, raw[3:] if number == 1 and raw.startswith(b"\xef\xbb\xbf") else raw)
        except _STREAM_ERRORS as exc:
            yield _stream_problem(path, number, exc)


def _jsonl_row(path: Path, number: int, raw: bytes) -> RawRow:
    location = f"{path}:{number}"
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return RawRow(number, location, problem=("undecodable_bytes", f"not UTF-8 at byte {exc.start}"))
    if not line.strip():
        return RawRow(number, location, problem=("blank_line", "empty line"))
    try:
        value = json.loads(line)
    except ValueError as exc:
        return RawRow(number, location, problem=("invalid_json", str(exc)))
    except RecursionError:
        return RawRow(number, location, problem=("invalid_json", "nested too deeply to read"))
    if not isinstance(value, dict):
        return RawRow(number, location, problem=("invalid_json", f"expected an object, got {type(value).__name__}"))
    return RawRow(number, location, value)


def _csv_records(lines: Iterator[str]) -> Iterator[tuple[int, int, list[str] | None, str | None]]:
    """``(first line, last line, fields, problem)`` for each CSV record, from physical lines.

    Lines are joined while a quote is open (an odd count of ``"`` so far; doubled quotes inside a
    quoted field keep the count even). A quote still open at the end of the file or after
    :data:`MAX_CSV_RECORD_CHARS` is an unbalanced quote: its first line is reported and the lines after
    it are read again as records of their own, so one bad quote never swallows its neighbours.
    """
    pending: deque[tuple[int, str]] = deque()
    numbered = enumerate(lines, 1)
    buffer: list[tuple[int, str]] = []
    quotes = size = 0
    while True:
        item = pending.popleft() if pending else next(numbered, None)
        if item is None:
            if not buffer:
                return
            (first, _), rest = buffer[0], buffer[1:]
            yield first, first, None, "unbalanced quote: a quoted field opened on this line never closes"
            pending.extendleft(reversed(rest))
            buffer, quotes, size = [], 0, 0
            continue
        buffer.append(item)
        quotes += item[1].count('"')
        size += len(item[1])
        if quotes % 2 == 0:
            first, last = buffer[0][0], buffer[-1][0]
            text = "".join(line for _, line in buffer)
            buffer, quotes, size = [], 0, 0
            try:
                records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
            except csv.Error as exc:
                yield first, last, None, f"cannot be parsed: {exc}"
                continue
            yield first, last, (records[0] if records else []), None
        elif size > MAX_CSV_RECORD_CHARS:
            (first, _), rest = buffer[0], buffer[1:]
            yield first, first, None, f"unbalanced quote: still open after {MAX_CSV_RECORD_CHARS} characters"
            pending.extendleft(reversed(rest))
            buffer, quotes, size = [], 0, 0


@contextlib.contextmanager
def _no_csv_field_limit() -> Iterator[None]:
    """Lift csv's 131,072-character field limit while reading: a long article is a row (or an
    ``oversized_text`` error), a long kept column a value, never a crash. The old limit is restored."""
    limit = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)
    try:
        yield
    finally:
        csv.field_size_limit(limit)


def _read_csv(path: Path) -> Iterator[RawRow]:
    number = 0
    with _no_csv_field_limit(), _open_binary(path) as binary:
        # utf-8-sig: accept the byte-order mark spreadsheets write; surrogateescape keeps undecodable
        # bytes visible (as lone surrogates) so that their record becomes an error, not the file
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")
        records = _csv_records(iter(text))
        try:
            header: list[str] | None = None
            for first, last, fields, problem in records:
                lines = f"line {first}" if first == last else f"lines {first}-{last}"
                if header is None:
                    if problem or not fields:
                        raise ValueError(f"{path}: {lines}: the header cannot be read ({problem or 'empty'})")
                    header = fields
                    continue
                number += 1
                yield _csv_row(path, number, lines, header, fields, problem)
        except _STREAM_ERRORS as exc:
            yield _stream_problem(path, number, exc)


def _csv_row(
    path: Path, number: int, lines: str, header: list[str], fields: list[str] | None, problem: str | None
) -> RawRow:
    location = f"{path}:row {number} ({lines})"
    if problem is not None:
        return RawRow(number, location, problem=("malformed_row", problem))
    if not fields:
        return RawRow(number, location, problem=("blank_line", "empty line"))
    row = dict(zip(header, fields))
    if len(fields) != len(header):
        return RawRow(
            number,
            location,
            {"id": row.get("id")},
            problem=("malformed_row", f"{len(fields)} fields; the header has {len(header)}"),
        )
    bad = [k for k, v in row.items() if any("\udc80" <= c <= "\udcff" for c in v)]
    if bad:
        return RawRow(
            number, location, {"id": row.get("id")}, problem=("undecodable_bytes", f"not UTF-8 in column {bad[0]!r}")
        )
    return RawRow(number, location, row)


def _read_parquet(path: Path) -> Iterator[RawRow]:
    import pyarrow.parquet as pq

    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            number += 1
            yield RawRow(number, f"{path}:row {number}", row)


def _read_txt_dir(path: Path) -> Iterator[RawRow]:
    """Every path below the folder is a row (a ``.txt`` file, any case) or an error row."""
    root = path.resolve()
    entries = sorted(
        Path(base) / name
        for base, dirs, names in os.walk(path)
        for name in (*names, *(d for d in dirs if (Path(base) / d).is_symlink()))
    )
    for number, entry in enumerate(entries, 1):
        row_id = entry.relative_to(path).with_suffix("").as_posix()
        problem = _txt_problem(entry, root)
        if problem is not None:
            yield RawRow(number, str(entry), {"id": row_id}, problem=problem)
            continue
        try:
            text = entry.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            yield RawRow(
                number, str(entry), {"id": row_id}, problem=("undecodable_bytes", f"not UTF-8 at byte {exc.start}")
            )
            continue
        except OSError as exc:
            yield RawRow(number, str(entry), {"id": row_id}, problem=("unreadable_file", str(exc)))
            continue
        yield RawRow(number, str(entry), {"id": row_id, "text": text})


def _txt_problem(entry: Path, root: Path) -> tuple[str, str] | None:
    if entry.is_symlink():
        target = entry.resolve()
        if not target.exists():
            return "dangling_link", f"points to {os.readlink(entry)}, which does not exist"
        if not target.is_relative_to(root):
            return "outside_folder", f"points to {target}, outside {root}"
    if not entry.is_file():
        return "not_txt", "not a regular file"
    if entry.suffix.lower() != ".txt":
        return "not_txt", f"not a .txt file ({entry.suffix or 'no suffix'})"
    return None


def open_check(path: str | Path, fmt: str | None = None) -> str:
    """Check that an archive exists and can be opened in its format, before any output is created.

    Returns:
        The format.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: the format is unknown, or the file cannot be opened as that format.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"archive not found: {path}")
    fmt = fmt or detect_format(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
            raise ValueError(f"{path}: cannot be read as Parquet ({type(exc).__name__}: {exc})") from None
    elif fmt != "txt_dir" and not os.access(path, os.R_OK):
        raise ValueError(f"{path}: not readable (permissions)")
    elif fmt == "csv":
        next(_read_csv(path), None)  # the header must be readable
    return fmt


def read_archive(path: str | Path, fmt: str | None = None) -> Iterator[RawRow]:
    """Stream the records of an archive.

    Args:
        path: a ``.jsonl``/``.jsonl.gz``, ``.csv``, ``.parquet`` file or a folder of ``.txt`` files
            (id = the file's path below the folder, without ``.txt``).
        fmt: force a format instead of detecting it from the path.
    """
    path = Path(path)
    fmt = open_check(path, fmt)
    readers = {"jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet, "txt_dir": _read_txt_dir}
    return readers[fmt](path)


def count_rows(path: str | Path, fmt: str | None = None) -> int | None:
    """The number of records, where it is cheap to know (for progress and time left); else ``None``."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        if fmt == "txt_dir":
            return sum(len(names) for _, _, names in os.walk(path))
        if fmt == "jsonl":
            with _open_binary(path) as handle:
                return sum(1 for _ in handle)
    except (*_STREAM_ERRORS, OSError):
        return None
    return None


def iter_scores(path: Path, fmt: str | None = None) -> Iterator[dict[str, Any]]:
    """The rows of a file the scorer wrote (``jsonl``, ``csv`` or ``parquet``; default: from the suffix).

    Unlike :func:`read_archive` this trusts its input (the library wrote it): a line that is not JSON is
    an error naming the file and line. CSV cells come back as they were before the scorer made them safe
    for spreadsheets (it puts one ``'`` before a cell starting with ``= + - @ '``, a tab or a return).
    """
    fmt = fmt or {".csv": "csv", ".parquet": "parquet"}.get(path.suffix.lower(), "jsonl")  # what the scorer wrote
    if fmt == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
            yield from batch.to_pylist()
    elif fmt == "csv":
        with _no_csv_field_limit(), path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):  # undo the one ' the scorer put before formula-like cells
                yield {k: v[1:] if isinstance(v, str) and v.startswith("'") else v for k, v in row.items()}
    else:
        with path.open(encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise ValueError(f"{path}:{line_number}: not a JSON object ({exc})") from None
