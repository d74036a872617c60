"""Streaming readers for article archives: JSON Lines (optionally gzip), CSV, Parquet, a folder of .txt.

Each reader yields :class:`RawRow` one at a time, so memory does not grow with the archive. A row that
cannot be read (bad JSON, undecodable bytes) is yielded with its ``problem`` set instead of raising,
so the scorer can write it down and go on.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RawRow", "count_rows", "detect_format", "read_archive"]


@dataclass
class RawRow:
    """One input row: where it came from, its fields, or why it could not be read."""

    number: int  # 1-based: line for JSON Lines, data row for CSV / Parquet, file for a folder
    location: str  # "file:line" or the .txt path
    fields: dict[str, Any] = field(default_factory=dict)
    problem: tuple[str, str] | None = None  # (reason code, detail)


def detect_format(path: Path) -> str:
    """``jsonl``, ``csv``, ``parquet`` or ``txt_dir`` from the path."""
    if path.is_dir():
        return "txt_dir"
    name = path.name.lower()
    for suffix, fmt in (
        (".jsonl.gz", "jsonl"),
        (".json.gz", "jsonl"),
        (".jsonl", "jsonl"),
        (".json", "jsonl"),
        (".csv", "csv"),
        (".csv.gz", "csv"),
        (".parquet", "parquet"),
        (".pq", "parquet"),
    ):
        if name.endswith(suffix):
            return fmt
    raise ValueError(f"{path}: unknown archive type; use .jsonl[.gz], .csv[.gz], .parquet or a folder of .txt files")


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else path.open("rb")


def _read_jsonl(path: Path) -> Iterator[RawRow]:
    with _open_binary(path) as handle:
        for number, raw in enumerate(handle, 1):
            location = f"{path}:{number}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield RawRow(number, location, problem=("undecodable_bytes", f"not UTF-8 at byte {exc.start}"))
                continue
            if not line.strip():
                yield RawRow(number, location, problem=("blank_line", "empty line"))
                continue
            try:
                value = json.loads(line)
            except ValueError as exc:
                yield RawRow(number, location, problem=("invalid_json", str(exc)))
                continue
            if not isinstance(value, dict):
                yield RawRow(
                    number, location, problem=("invalid_json", f"expected an object, got {type(value).__name__}")
                )
                continue
            yield RawRow(number, location, value)


def _read_csv(path: Path) -> Iterator[RawRow]:
    with _open_binary(path) as binary:
        # surrogateescape keeps undecodable bytes visible (as lone surrogates) instead of failing the file
        text = io.TextIOWrapper(binary, encoding="utf-8", errors="surrogateescape", newline="")
        reader = csv.DictReader(text)
        for number, row in enumerate(reader, 1):
            location = f"{path}:row {number}"
            bad = [k for k, v in row.items() if isinstance(v, str) and any("\udc80" <= c <= "\udcff" for c in v)]
            if bad:
                yield RawRow(
                    number,
                    location,
                    {"id": row.get("id")},
                    problem=("undecodable_bytes", f"not UTF-8 in column {bad[0]!r}"),
                )
                continue
            if None in row:  # more fields than the header
                yield RawRow(
                    number, location, {"id": row.get("id")}, problem=("malformed_row", "more fields than the header")
                )
                continue
            yield RawRow(number, location, dict(row))


def _read_parquet(path: Path) -> Iterator[RawRow]:
    import pyarrow.parquet as pq

    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            number += 1
            yield RawRow(number, f"{path}:row {number}", row)


def _read_txt_dir(path: Path) -> Iterator[RawRow]:
    files = sorted(p for p in path.rglob("*.txt") if p.is_file())
    for number, file in enumerate(files, 1):
        row_id = file.relative_to(path).with_suffix("").as_posix()
        try:
            text = file.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            yield RawRow(
                number, str(file), {"id": row_id}, problem=("undecodable_bytes", f"not UTF-8 at byte {exc.start}")
            )
            continue
        yield RawRow(number, str(file), {"id": row_id, "text": text})


def read_archive(path: str | Path, fmt: str | None = None) -> Iterator[RawRow]:
    """Stream the rows of an archive.

    Args:
        path: a ``.jsonl``/``.jsonl.gz``, ``.csv``, ``.parquet`` file or a folder of ``.txt`` files
            (id = the file's path below the folder, without ``.txt``).
        fmt: force a format instead of detecting it from the path.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"archive not found: {path}")
    fmt = fmt or detect_format(path)
    readers = {"jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet, "txt_dir": _read_txt_dir}
    return readers[fmt](path)


def count_rows(path: str | Path, fmt: str | None = None) -> int | None:
    """The number of rows, where it is cheap to know (for progress and time left); else ``None``."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    if fmt == "txt_dir":
        return sum(1 for p in path.rglob("*.txt") if p.is_file())
    if fmt == "jsonl":
        with _open_binary(path) as handle:
            return sum(1 for _ in handle)
    return None
