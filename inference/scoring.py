"""Batch scoring of article archives that never loses a row.

Every input row ends up either in the output (scored) or in the errors file (with its reason), and the
summary checks ``rows = scored + errors``. The archive is streamed in chunks of ``chunk_size`` rows;
each chunk's results are written to part files by atomic rename and only then recorded as done, so a
run killed at any point (Ctrl-C or ``kill -9``) is completed by the same command with ``resume=True``,
each id exactly once. The final output is assembled from the parts, again by atomic rename.

Memory holds one chunk of texts at a time; only the ids seen so far (for duplicate detection) grow
with the archive.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import hashlib
import json
import logging
import math
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aranews import __version__
from aranews.inference.classifier import NewsClassifier, PreparedBatch
from aranews.inference.dates import parse_date
from aranews.inference.files import atomic_output, atomic_write_text, check_output_path, finite, refuse_clashes
from aranews.inference.inputs import SKIP_REASONS
from aranews.inference.ray_engine import RayOptions
from aranews.inference.readers import (
    SCORE_FORMATS,
    RawRow,
    count_rows,
    iter_scores,
    open_check,
    read_archive,
    score_format,
)
from aranews.inference.runtime import model_fingerprint

__all__ = [
    "JobLockedError",
    "ScoreSummary",
    "check_row",
    "format_summary",
    "id_problem",
    "json_safe",
    "kept_value",
    "model_fingerprint",
    "score_archive",
]

logger = logging.getLogger(__name__)

OUTPUT_FORMATS = tuple(SCORE_FORMATS)
STATE_FILE = "state.json"


@dataclass
class ScoreSummary:
    """What a scoring run did. ``rows == scored + errors`` always holds for a finished run."""

    input: str
    output: str
    errors_file: str
    rows: int = 0
    scored: int = 0
    errors: int = 0
    error_reasons: dict[str, int] = field(default_factory=dict)
    label_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    truncated: int = 0
    flagged_no_arabic: int = 0
    dates_parsed: int = 0
    dates_unparsed: int = 0  # a date column's value that could not be read: kept as written, row scored
    seconds: float = 0.0
    articles_per_second: float = 0.0
    resumed: bool = False
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.rows == self.scored + self.errors

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoreSummary:
        """A summary from its saved JSON (extra keys, such as the job's identity, are left out)."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class RowSettings:
    """How the archive's rows are read and checked (shared by the scorer and ``aranews predict --input``)."""

    id_column: str
    text_column: str
    title_column: str | None
    pair_columns: dict[str, str]  # model pair column -> archive column
    max_chars: int
    score_non_arabic: bool
    all_probabilities: bool
    keep_columns: tuple[str, ...] = ()  # archive columns copied into the output (date, source, url...)
    date_column: str | None = None  # one of them, also parsed into ``date_parsed`` (ISO)


_SURROGATE = re.compile("[\ud800-\udfff]")


def json_safe(value: Any) -> Any:
    """A value that can be written to JSON (and UTF-8): kept when it can, else its ``repr``, shortened.

    For error details and ids named in messages; kept archive columns go through :func:`kept_value`."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str) and not _SURROGATE.search(value):
        return value
    text = repr(value)
    text = _SURROGATE.sub("\ufffd", text)
    return text if len(text) <= 200 else text[:200] + "..."


def kept_value(value: Any) -> Any:
    """An archive value copied into the output (``keep_columns``), whole and valid in every format.

    Strings, integers, booleans, finite numbers and ``None`` are kept; NaN and Infinity become ``None``
    (JSON has neither); lists and objects become their JSON text (never cut); dates their ISO form;
    anything else its ``str``. Lone surrogates, which UTF-8 cannot hold, become U+FFFD.
    """
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (dict, list, tuple)):
        try:
            text = json.dumps(finite(value), ensure_ascii=False, default=str, allow_nan=False)
        except (TypeError, ValueError, RecursionError):  # keys JSON cannot hold, or nested too deeply
            text = str(value)
    elif isinstance(value, str):
        text = value
    elif hasattr(value, "isoformat"):
        text = value.isoformat()
    else:
        text = str(value)
    return _SURROGATE.sub("\ufffd", text)


def id_problem(raw_id: Any, column: str) -> tuple[str, str] | None:
    """Why ``raw_id`` cannot be an article id, as ``(reason, detail)``, or ``None``: ids are non-empty strings
    (valid Unicode) or integers, in the scorer, ``predict --input``, training data and Label Studio imports."""
    if raw_id is None or (isinstance(raw_id, str) and not raw_id.strip()):
        return "missing_id", f"column {column!r} is missing or empty"
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
        return (
            "invalid_id",
            f"column {column!r} is {type(raw_id).__name__} {json_safe(raw_id)}; ids must be strings or integers",
        )
    if isinstance(raw_id, str) and _SURROGATE.search(raw_id):
        return "invalid_id", f"column {column!r} holds a lone surrogate (not valid Unicode)"
    return None


def check_row(row: RawRow, s: RowSettings, seen: set[str]) -> tuple[dict[str, Any] | None, tuple[str, str] | None]:
    """Validate one row's fields: ``(record, None)`` or ``(None, (reason, detail))``.

    Ids are strings or integers; an integer id and its decimal string are the same id (they are in any
    text output). Whether the text can be classified (empty, also after cleaning, or without Arabic) is
    decided by :meth:`NewsClassifier.classify`, the same policy as ``predict``.
    """
    if row.problem:
        return None, row.problem
    f = row.fields
    raw_id = f.get(s.id_column)
    problem = id_problem(raw_id, s.id_column)
    if problem:
        return None, problem
    row_id = str(raw_id)
    if row_id in seen:
        return None, ("duplicate_id", f"id {row_id!r} already seen earlier in the archive")
    seen.add(row_id)
    text = f.get(s.text_column)
    if text is None:
        return None, ("missing_text", f"column {s.text_column!r} is missing")
    if not isinstance(text, str):
        return None, ("non_string_text", f"column {s.text_column!r} is {type(text).__name__}, not a string")
    title = f.get(s.title_column) if s.title_column else None
    title = title if isinstance(title, str) else None
    if len(text) + len(title or "") > s.max_chars:
        return None, ("oversized_text", f"{len(text) + len(title or '')} characters > max_chars={s.max_chars}")
    pairs = {}
    for model_column, column in s.pair_columns.items():
        value = f.get(column)
        if not isinstance(value, str) or not value.strip():
            return None, ("missing_pair", f"column {column!r} (the task's {model_column!r}) is missing or empty")
        pairs[model_column] = value
    for name, value in ((s.text_column, text), (s.title_column, title), *pairs.items()):
        if value and _SURROGATE.search(value):
            return None, ("invalid_unicode", f"column {name!r} holds a lone surrogate (not valid Unicode)")
    record = {"id": raw_id, "text": text, "title": title, "pairs": pairs, "location": row.location}
    if s.keep_columns:
        record["keep"] = {c: kept_value(f.get(c)) for c in s.keep_columns}
    return record, None


def _chunks(rows: Iterator[RawRow], size: int) -> Iterator[list[RawRow]]:
    chunk: list[RawRow] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _prepare_chunk(classifier: NewsClassifier, records: list[dict[str, Any]], s: RowSettings) -> PreparedBatch | None:
    """The text half of scoring a chunk (cleaning, tokenising, windowing): runs in the reader thread."""
    if not records:
        return None
    return classifier.prepare(
        [r["text"] for r in records],
        titles=[r["title"] for r in records],
        pairs={c: [r["pairs"][c] for r in records] for c in s.pair_columns} or None,
        score_non_arabic=s.score_non_arabic,
    )


def _score_chunk(
    classifier: NewsClassifier,
    records: list[dict[str, Any]],
    s: RowSettings,
    model_hash: str,
    prepared: PreparedBatch | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Scored rows, and error rows for the articles the classifier skipped (with their reasons)."""
    if not records:
        return [], []
    result = classifier.run(prepared if prepared is not None else _prepare_chunk(classifier, records, s))
    schema = classifier.config.schema_id
    decisions = classifier.decide(result)
    scored, skipped = [], []
    for i, (record, decision) in enumerate(zip(records, decisions, strict=True)):
        reason = result.skipped[i]
        if reason is not None:
            skipped.append(
                {"id": record["id"], "location": record["location"], "reason": reason, "detail": SKIP_REASONS[reason]}
            )
            continue
        row: dict[str, Any] = {"id": record["id"]}
        for task in classifier.tasks:
            row[task.name], row[f"{task.name}_score"] = task.kind.cell(decision[task.name])
            if s.all_probabilities:
                row[f"{task.name}_probs"] = json.dumps(
                    {
                        label: round(float(p), 6)
                        for label, p in zip(task.labels, result.probs[task.name][i], strict=True)
                    },
                    ensure_ascii=False,
                )
        for column, value in record.get("keep", {}).items():
            row[column] = value
        if s.date_column:
            parsed = parse_date(record.get("keep", {}).get(s.date_column))
            row["date_parsed"] = parsed.isoformat() if parsed else None
        article = result.articles[i]
        row["n_tokens"] = article.n_tokens
        row["truncated"] = article.truncated
        row["boilerplate_chars"] = article.boilerplate_chars
        row["no_arabic"] = result.no_arabic[i]
        row["model_sha256"] = model_hash[:16]
        row["label_schema"] = schema
        scored.append(row)
    return scored, skipped


def _write_part(path: Path, rows: list[dict[str, Any]], fmt: str, text_columns: tuple[str, ...] = ()) -> None:
    """One chunk's rows, atomically. In Parquet the ``text_columns`` (the id and the kept archive columns,
    whose values may change type from row to row: ``7`` then ``"a7"``, ``3`` then ``"n/a"``) are written
    as text, so every part has one type per column and the parts always assemble."""
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = [{k: _as_text(v) if k in text_columns else v for k, v in row.items()} for row in rows]
        with atomic_output(path, "wb") as handle:
            pq.write_table(pa.Table.from_pylist(rows), handle)
    else:
        with atomic_output(path) as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")


def _as_text(value: Any) -> str | None:
    """A cell as text: strings unchanged, ``None`` stays null, anything else as its JSON text."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


# Cells starting with one of these get a leading ' in CSV output: a spreadsheet would run the first five as a
# formula, and a cell that already starts with ' is prefixed too, so readers undo exactly one ' (lossless).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def csv_safe_columns(classifier: NewsClassifier) -> list[str]:
    """The text columns of a CSV output whose cells could start a spreadsheet formula."""
    return ["id", *(t.name for t in classifier.tasks)]


def _csv_safe(row: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    """Prefix ``'`` to text cells a spreadsheet would run as a formula (``=cmd|...``, ``@SUM(...)``)."""
    for column in columns:
        value = row.get(column)
        if isinstance(value, str) and value.startswith(_FORMULA_START):
            row[column] = "'" + value
    return row


def _assemble(parts: list[Path], output: Path, fmt: str, columns: list[str], csv_safe: list[str] | None = None) -> None:
    """Join the part files into ``output`` (atomically)."""
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        tables = [pq.read_table(p) for p in parts if p.stat().st_size]
        non_empty = [t for t in tables if t.num_rows]
        table = (
            pa.concat_tables(non_empty, promote_options="default") if non_empty else pa.table({c: [] for c in columns})
        )
        with atomic_output(output, "wb") as out:
            pq.write_table(table, out)
        return
    with atomic_output(output, newline="") as out:
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="raise") if fmt == "csv" else None
        if writer:
            writer.writeheader()
        for part in parts:
            with part.open(encoding="utf-8") as handle:
                for line in handle:
                    if writer:
                        writer.writerow(_csv_safe(json.loads(line), csv_safe or []))
                    else:
                        out.write(line)


def score_archive(
    classifier: NewsClassifier,
    input_path: str | Path,
    output_path: str | Path,
    errors_path: str | Path | None = None,
    *,
    output_format: str | None = None,
    id_column: str = "id",
    text_column: str = "text",
    title_column: str | None = "title",
    pair_columns: dict[str, str] | None = None,
    chunk_size: int = 512,
    max_chars: int = 200_000,
    score_non_arabic: bool = False,
    all_probabilities: bool = False,
    resume: bool = False,
    progress: bool = True,
    throttle_seconds: float = 0.0,
    engine: str = "local",
    ray_options: RayOptions | None = None,
    keep_columns: list[str] | tuple[str, ...] = (),
    date_column: str | None = None,
) -> ScoreSummary:
    """Score every row of an archive; write scores, errors and a summary.

    Args:
        classifier: a loaded :class:`NewsClassifier`.
        input_path: ``.jsonl`` / ``.jsonl.gz`` / ``.csv`` / ``.parquet`` file or a folder of ``.txt`` files.
        output_path: ``.jsonl``, ``.csv`` or ``.parquet`` (or set ``output_format``).
        errors_path: JSON Lines of the rows not scored, with reasons (default: ``<output>.errors.jsonl``).
        id_column, text_column, title_column: input columns (the title is composed with the text as the
            model's ``model.title`` says, exactly as in training and ``predict``).
        pair_columns: for target-conditioned tasks, ``{model pair column: archive column}``
            (default: the same names).
        chunk_size: rows per chunk (the unit of atomic writing and of resumption).
        max_chars: longer texts go to the errors file as ``oversized_text``.
        score_non_arabic: score texts with no Arabic letter (flagged ``no_arabic``) instead of
            writing them to the errors file.
        all_probabilities: add each task's full probability row (``<task>_probs``, a JSON object).
        resume: continue an interrupted run of the same job from its last finished chunk.
        progress: show a progress bar (articles per second, time left).
        throttle_seconds: pause after each chunk (to share a busy machine).
        engine: ``local`` (this process) or ``ray`` (Ray actors; see :mod:`aranews.inference.ray_engine`):
            the same output, errors and summary either way.
        ray_options: for ``engine="ray"``: cluster address, workers, threads and GPUs per worker.
        keep_columns: archive columns copied into each output row (e.g. ``date``, ``source``, ``url``).
        date_column: the kept column holding the publication date (default ``date`` when kept): also
            written as ``date_parsed`` (ISO; ``None`` when unreadable, the value kept as written and
            counted in the summary, the row still scored).

    Returns:
        A :class:`ScoreSummary` (also written to ``<output>.summary.json``).

    Raises:
        FileExistsError: if an unfinished run's parts exist and ``resume`` is false.
        JobLockedError: another scorer is working on the same output.
        ValueError: on an unknown format, an output path that is the input, a bad ``chunk_size``, or a
            resume of a different job or of an input that changed.
        OSError: the output cannot be written (the job stays resumable).
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size!r}; expected an integer >= 1")
    if max_chars < 1:
        raise ValueError(f"max_chars={max_chars!r}; expected an integer >= 1")
    if engine not in ("local", "ray"):
        raise ValueError(f"engine={engine!r}; expected 'local' or 'ray'")
    input_path, output = Path(input_path), Path(output_path)
    needed_pairs = sorted({t.pair_column for t in classifier.tasks if t.pair_column})
    keep = tuple(dict.fromkeys(keep_columns))
    reserved = {"id", "n_tokens", "truncated", "boilerplate_chars", "no_arabic", "model_sha256", "label_schema"}
    reserved |= {f"{t.name}{suffix}" for t in classifier.tasks for suffix in ("", "_score", "_probs")}
    clash = sorted(set(keep) & (reserved | {"date_parsed"}))
    if clash:
        raise ValueError(f"keep_columns {clash}: these names are output columns of the scorer; rename them")
    if date_column is None and "date" in keep:
        date_column = "date"
    if date_column is not None and date_column not in keep:
        raise ValueError(f"date_column {date_column!r} is not among keep_columns {list(keep)}")
    settings = RowSettings(
        id_column,
        text_column,
        title_column,
        {c: (pair_columns or {}).get(c, c) for c in needed_pairs},
        max_chars,
        score_non_arabic,
        all_probabilities,
        keep,
        date_column,
    )
    paths = _job_paths(input_path, output, errors_path, output_format)
    if keep:
        _check_kept_columns(paths, keep)
    with _JobLock(paths.lock):
        job = _open_job(classifier, paths, settings, chunk_size, resume)
        if job.state.get("finished"):  # committed before an interruption: only publishing was left
            return _publish(job)
        done_before = _finished_summary(paths, job.state["job"]) if resume and job.state["chunks_done"] == 0 else None
        if done_before is not None:  # the job is complete: a resume is a no-op
            for leftover in (paths.parts_dir, paths.parts_dir.with_name(f".{paths.parts_dir.name}.done")):
                shutil.rmtree(leftover, ignore_errors=True)
            return done_before
        summary = ScoreSummary(
            str(input_path),
            str(output),
            str(paths.errors_file),
            resumed=job.state["chunks_done"] > 0,
            provenance=_provenance(classifier, job.model_hash),
        )
        started = time.perf_counter()
        try:
            if engine == "ray":
                scored_now = _run_chunks_ray(job, classifier, progress, ray_options or RayOptions())
            else:
                scored_now = _run_chunks(job, classifier, progress, throttle_seconds)
        except BaseException:
            if job.state["chunks_done"] == 0 and not job.resumed_parts:  # a failed start leaves nothing behind
                shutil.rmtree(paths.parts_dir, ignore_errors=True)
            raise
        summary.seconds = round(time.perf_counter() - started, 3)
        summary.articles_per_second = round(scored_now / summary.seconds, 2) if summary.seconds else 0.0
        _commit(job, classifier, summary)
        return _publish(job)


class JobLockedError(RuntimeError):
    """Another scorer holds the job's lock."""


class _JobLock:
    """An exclusive lock on a job (``<output>.lock``), so two scorers never work on the same output."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: Any = None

    def __enter__(self) -> _JobLock:
        import fcntl

        while True:
            handle = self.path.open("a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                handle.close()
                raise JobLockedError(
                    f"{self.path}: another scorer ({holder}) is working on this job; wait for it to finish, or "
                    "stop it and rerun with --resume"
                ) from None
            try:  # the holder before us may have removed the file after we opened it: lock the live one
                if os.fstat(handle.fileno()).st_ino == os.stat(self.path).st_ino:
                    break
            except FileNotFoundError:
                pass
            handle.close()
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self.handle = handle
        return self

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)
        self.handle.close()


@dataclass
class _Paths:
    """Where a job reads and writes."""

    input_path: Path
    input_format: str
    output: Path
    output_format: str
    errors_file: Path
    summary_file: Path
    parts_dir: Path
    lock: Path


def _job_paths(input_path: Path, output: Path, errors_path: str | Path | None, output_format: str | None) -> _Paths:
    """Check every path before any work: formats, the input is readable, no output is the input, the
    output folder exists and is writable."""
    fmt = score_format(output, output_format)
    in_fmt = open_check(input_path)
    errors_file = Path(errors_path) if errors_path else output.with_name(output.name + ".errors.jsonl")
    paths = _Paths(
        input_path,
        in_fmt,
        output,
        fmt,
        errors_file,
        output.with_name(output.name + ".summary.json"),
        output.with_name(output.name + ".parts"),
        output.with_name(output.name + ".lock"),
    )
    refuse_clashes(
        {"the input archive": input_path},
        {
            "--out": output,
            "--errors": errors_file,
            "the summary": paths.summary_file,
            "the parts folder": paths.parts_dir,
        },
    )
    check_output_path("--out", output)
    check_output_path("--errors", errors_file)
    return paths


KEPT_COLUMN_LOOKAHEAD = 1000  # rows read before any work to check that every kept column exists


def _check_kept_columns(paths: _Paths, keep: tuple[str, ...]) -> None:
    """Refuse a kept column that no row has (a misspelled name would otherwise be a column of nulls).

    Reads the Parquet schema, or the first :data:`KEPT_COLUMN_LOOKAHEAD` readable rows of the other formats.
    """
    if paths.input_format == "parquet":
        import pyarrow.parquet as pq

        seen = set(pq.ParquetFile(paths.input_path).schema_arrow.names)
        where = "its columns are"
    else:
        seen: set[str] = set()
        number = 0
        for number, row in enumerate(read_archive(paths.input_path, paths.input_format), 1):
            if row.problem is None:
                seen.update(row.fields)
            if number >= KEPT_COLUMN_LOOKAHEAD or set(keep) <= seen:
                break
        where = f"its {'first ' if number == KEPT_COLUMN_LOOKAHEAD else ''}{number} row(s) read have"
    missing = [c for c in keep if c not in seen]
    if missing:
        raise ValueError(
            f"--keep-columns {', '.join(map(repr, missing))}: no such column in {paths.input_path} "
            f"({where} {', '.join(map(repr, sorted(seen))) or 'none'})"
        )


@dataclass
class _Job:
    """One scoring job: its files, settings and progress (``state``, mirrored in ``.parts/state.json``)."""

    paths: _Paths
    settings: RowSettings
    chunk_size: int
    model_hash: str
    state: dict[str, Any]
    resumed_parts: bool = False

    @property
    def parts_dir(self) -> Path:
        return self.paths.parts_dir

    @property
    def text_columns(self) -> tuple[str, ...]:
        """Output columns written as text in Parquet: the id and the kept archive columns."""
        return ("id", *self.settings.keep_columns)


def _input_identity(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _open_job(classifier: NewsClassifier, paths: _Paths, settings: RowSettings, chunk_size: int, resume: bool) -> _Job:
    """Start a job, or pick up the unfinished one (the same job, on the same unchanged input only)."""
    model_hash = model_fingerprint(classifier.source) if classifier.source else "unknown"
    identity = {
        "input": str(paths.input_path.resolve()),
        "output_format": paths.output_format,
        "model_sha256": model_hash,
        "precision": classifier.precision,  # a resume never mixes rows scored in two precisions
        "chunk_size": chunk_size,
        "settings": asdict(settings),
    }
    identity = json.loads(json.dumps(identity))  # as saved (tuples become lists), so the comparison is exact
    state: dict[str, Any] = {
        "job": identity,
        "input": _input_identity(paths.input_path),
        "chunks_done": 0,
        "rows_done": 0,
    }
    previous = paths.parts_dir / STATE_FILE
    resumed_parts = paths.parts_dir.exists()
    if resumed_parts:
        if not resume:
            raise FileExistsError(
                f"{paths.parts_dir} holds an unfinished run; rerun with --resume to complete it, or delete that folder"
            )
        if previous.is_file():
            saved = json.loads(previous.read_text(encoding="utf-8"))
            if saved["job"] != identity:
                raise ValueError(
                    f"{paths.parts_dir} belongs to a different job (input, model, precision or settings differ); "
                    f"{_identity_difference(saved['job'], identity)}; resume with the same options, or delete it"
                )
            if not saved.get("finished") and saved.get("input") != state["input"]:
                raise ValueError(
                    f"{paths.input_path} changed since the interrupted run (size and modification time then "
                    f"{saved.get('input')}, now {state['input']}); resuming would mix two inputs: delete "
                    f"{paths.parts_dir} and score it again"
                )
            state = saved
    paths.parts_dir.mkdir(exist_ok=True)
    atomic_write_text(previous, json.dumps(state))
    return _Job(paths, settings, chunk_size, model_hash, state, resumed_parts)


def _identity_difference(saved: dict[str, Any], now: dict[str, Any]) -> str:
    keys = [k for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)]
    return "; ".join(f"{k} was {saved.get(k)!r}, now {now.get(k)!r}" for k in keys[:3]) or "identical"


def _finished_summary(paths: _Paths, identity: dict[str, Any]) -> ScoreSummary | None:
    """The saved summary of a completed run of this same job, if its output is in place."""
    if not (paths.summary_file.is_file() and paths.output.is_file() and paths.errors_file.is_file()):
        return None
    try:
        saved = json.loads(paths.summary_file.read_text(encoding="utf-8"))
    except ValueError:
        return None
    if saved.get("job") != identity:
        return None
    return ScoreSummary.from_dict(saved)


def _provenance(classifier: NewsClassifier, model_hash: str) -> dict[str, Any]:
    m = classifier.config.model
    return {
        "model": classifier.source,
        "model_sha256": model_hash,
        "labels": classifier.labels,
        "preprocessing": m.preprocessing,
        "title": m.title,
        "max_length": m.max_length,
        "long_document": m.long_document.strategy,
        "precision": classifier.precision,
        "label_schema": classifier.config.schema_id,
        "label_schema_changes": classifier.config.label_schema.changes,
        "versions": {**classifier.config.versions, "scored_with": __version__},
    }


def _row_digest(digest: Any, row: RawRow) -> None:
    digest.update(
        json.dumps([row.location, row.fields, row.problem], ensure_ascii=False, default=repr, sort_keys=True).encode(
            "utf-8", "surrogatepass"
        )
    )


@dataclass
class _ReadChunk:
    """One chunk as the reader thread hands it over: checked, prepared, and the input digest after it."""

    index: int
    rows: int
    records: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    prepared: PreparedBatch | None
    read_sha256: str


def _read_chunks(job: _Job, classifier: NewsClassifier, prepare: bool = True) -> Iterator[_ReadChunk]:
    """Read, check and prepare the chunks not done yet, in archive order (the producer's work).

    The rows already done are read again (their ids rebuild the duplicate check) and hashed: if they are
    not what the interrupted run read, the resume stops before anything is written.
    """
    s, paths = job.settings, job.paths
    # what the interrupted run had done (read once: the consumer updates the state as it goes)
    done, rows_done, read_sha256 = job.state["chunks_done"], job.state["rows_done"], job.state.get("read_sha256")
    seen: set[str] = set()
    digest = hashlib.sha256()
    for index, chunk in enumerate(_chunks(read_archive(paths.input_path, paths.input_format), job.chunk_size)):
        checked = [(row, *check_row(row, s, seen)) for row in chunk]
        for row in chunk:
            _row_digest(digest, row)
        if index < done:
            if index == done - 1 and digest.hexdigest() != read_sha256:
                raise ValueError(
                    f"{paths.input_path}: its first {rows_done} rows are not those the interrupted run "
                    f"read; resuming would mix two inputs: delete {paths.parts_dir} and score it again"
                )
            continue  # finished before the interruption; its ids are in `seen` again
        records = [r for _, r, problem in checked if problem is None]
        errors = [
            {
                "id": json_safe((row.fields or {}).get(s.id_column)),
                "location": row.location,
                "reason": problem[0],
                "detail": json_safe(problem[1]),
            }
            for row, _, problem in checked
            if problem is not None
        ]
        prepared = _prepare_chunk(classifier, records, s) if prepare else None
        yield _ReadChunk(index, len(chunk), records, errors, prepared, digest.hexdigest())


_DONE = object()


@functools.cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or ``None`` where the C library is another (macOS, musl, Windows)."""
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _release_memory() -> None:
    """Give freed heap pages back to the system after a chunk.

    Batches of varying shapes leave the C heap fragmented: without this, resident memory crept up by
    about 15% over the first 100,000 articles (measured, ``benchmarks/bench_scoring_memory.py``); with
    it, it stays flat. A few milliseconds per chunk.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _prefetch(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """``items`` produced in a background thread, at most ``depth`` ahead of the consumer.

    Reading, cleaning and tokenising the next chunk overlap the model's work on this one (the tokenizer
    and torch both release the GIL). An exception in the producer is raised in the consumer; when the
    consumer stops early, the producer stops at its next hand-over.
    """
    import queue
    import threading

    handover: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        handover.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            handover.put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, raised there
            handover.put((_DONE, exc))

    worker = threading.Thread(target=produce, name="aranews-reader", daemon=True)
    worker.start()
    try:
        while True:
            item, error = handover.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # let a blocked producer see the stop flag
            with contextlib.suppress(queue.Empty):
                handover.get(timeout=0.1)
        worker.join()


def _progress_bar(job: _Job, progress: bool) -> Any:
    if not progress:
        return None
    from tqdm.auto import tqdm

    total = count_rows(job.paths.input_path, job.paths.input_format)
    return tqdm(total=total, unit="article", desc="scoring", initial=job.state["rows_done"])


def _run_chunks(job: _Job, classifier: NewsClassifier, progress: bool, throttle_seconds: float) -> int:
    """Score the chunks not done yet, each written atomically before it is recorded; return rows scored."""
    state, paths = job.state, job.paths
    bar = _progress_bar(job, progress)
    scored_now = 0
    stack = contextlib.ExitStack()  # stops the reader thread however the loop ends
    try:
        chunks = stack.enter_context(contextlib.closing(_prefetch(_read_chunks(job, classifier))))
        for chunk in chunks:
            scored, skipped = _score_chunk(classifier, chunk.records, job.settings, job.model_hash, chunk.prepared)
            _write_part(job.parts_dir / f"scores-{chunk.index:06d}.part", scored, paths.output_format, job.text_columns)
            _write_part(job.parts_dir / f"errors-{chunk.index:06d}.part", chunk.errors + skipped, "jsonl")
            state["chunks_done"], state["rows_done"] = chunk.index + 1, state["rows_done"] + chunk.rows
            state["read_sha256"] = chunk.read_sha256
            atomic_write_text(job.parts_dir / STATE_FILE, json.dumps(state))
            scored_now += len(scored)
            _release_memory()
            if bar is not None:
                bar.update(chunk.rows)
            if throttle_seconds:
                time.sleep(throttle_seconds)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(
            f"scoring interrupted after {state['rows_done']} rows; rerun the same command with --resume to finish"
        ) from None
    finally:
        stack.close()
        if bar is not None:
            bar.close()
    return scored_now


def _run_chunks_ray(job: _Job, classifier: NewsClassifier, progress: bool, options: RayOptions) -> int:
    """Score the chunks not done yet on Ray actors (see :mod:`aranews.inference.ray_engine`).

    Parts are written as chunks finish, in any order; the state advances over the finished prefix only,
    so a resume after a driver crash starts after that prefix and rewrites later parts with the same
    content.
    """
    from aranews.inference.ray_engine import ray_pool

    state, paths = job.state, job.paths
    pool = ray_pool(classifier, job.settings, options)
    bar = _progress_bar(job, progress)
    read: dict[int, _ReadChunk] = {}
    finished: set[int] = set()
    scored_now = 0

    def collect(index: int, scored: list, skipped: list) -> None:
        nonlocal scored_now
        chunk = read[index]
        _write_part(job.parts_dir / f"scores-{index:06d}.part", scored, paths.output_format, job.text_columns)
        _write_part(job.parts_dir / f"errors-{index:06d}.part", chunk.errors + skipped, "jsonl")
        scored_now += len(scored)
        finished.add(index)
        while state["chunks_done"] in finished:  # the finished prefix: what a resume may skip
            done = read.pop(state["chunks_done"])
            finished.discard(done.index)
            state["chunks_done"], state["rows_done"] = done.index + 1, state["rows_done"] + done.rows
            state["read_sha256"] = done.read_sha256
            atomic_write_text(job.parts_dir / STATE_FILE, json.dumps(state))
            if bar is not None:
                bar.update(done.rows)

    try:
        for chunk in _read_chunks(job, classifier, prepare=False):
            read[chunk.index] = dataclasses.replace(chunk, records=[])
            if chunk.records:
                pool.submit(chunk.index, chunk.records, job.model_hash)
            else:
                collect(chunk.index, [], [])
            while pool.full():
                collect(*pool.next_done())
        for result in pool.drain():
            collect(*result)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(
            f"scoring interrupted after {state['rows_done']} rows; rerun the same command with --resume to finish"
        ) from None
    finally:
        pool.close()
        if bar is not None:
            bar.close()
    return scored_now


_FINAL = {"output": "final-output", "errors_file": "final-errors", "summary_file": "final-summary"}


def _commit(job: _Job, classifier: NewsClassifier, summary: ScoreSummary) -> None:
    """Assemble the output, errors and summary inside the parts folder, check that every row is
    accounted for, then record the job as finished: that one atomic write is the commit."""
    paths, parts = job.paths, job.parts_dir
    columns = ["id"]
    for task in classifier.tasks:
        columns += [task.name, f"{task.name}_score"] + (
            [f"{task.name}_probs"] if job.settings.all_probabilities else []
        )
    columns += list(job.settings.keep_columns) + (["date_parsed"] if job.settings.date_column else [])
    columns += ["n_tokens", "truncated", "boilerplate_chars", "no_arabic", "model_sha256", "label_schema"]
    output, errors = parts / _FINAL["output"], parts / _FINAL["errors_file"]
    _assemble(
        sorted(parts.glob("scores-*.part")),
        output,
        paths.output_format,
        columns,
        [*csv_safe_columns(classifier), *job.settings.keep_columns],
    )
    _assemble(sorted(parts.glob("errors-*.part")), errors, "jsonl", [])
    _summarise(summary, output, errors, paths.output_format, classifier, job.settings.date_column)
    summary.rows = job.state["rows_done"]  # counted as read from the input, independently of the files written
    if not summary.complete:  # would mean a bug: say so loudly and replace nothing
        raise RuntimeError(
            f"row count mismatch: {summary.rows} rows but {summary.scored} scored + {summary.errors} errors; "
            f"nothing was replaced, the parts are kept in {parts}"
        )
    record = {**asdict(summary), "job": job.state["job"]}
    atomic_write_text(parts / _FINAL["summary_file"], json.dumps(record, ensure_ascii=False, indent=2))
    job.state["finished"] = True
    job.state["summary"] = record
    atomic_write_text(parts / STATE_FILE, json.dumps(job.state))  # the commit point


def _publish(job: _Job) -> ScoreSummary:
    """Move the committed files into place and remove the parts (idempotent: a resume finishes it)."""
    paths, parts = job.paths, job.parts_dir
    for attribute, name in _FINAL.items():
        staged = parts / name
        if staged.exists():
            os.replace(staged, getattr(paths, attribute))
    done = parts.with_name(f".{parts.name}.done")  # renamed first, so a kill while deleting leaves no "unfinished" job
    shutil.rmtree(done, ignore_errors=True)
    os.replace(parts, done)
    shutil.rmtree(done)
    saved = job.state["summary"]
    return ScoreSummary.from_dict(saved)


def _summarise(
    summary: ScoreSummary,
    output: Path,
    errors_file: Path,
    fmt: str,
    classifier: NewsClassifier,
    date_column: str | None = None,
) -> None:
    """Count from the files actually written, so the summary describes what a user receives."""
    labels: dict[str, Counter] = {t.name: Counter() for t in classifier.tasks}
    for row in iter_scores(output, fmt):
        summary.scored += 1
        truthy = (True, "True", "true")
        summary.truncated += row["truncated"] in truthy
        summary.flagged_no_arabic += row["no_arabic"] in truthy
        if "date_parsed" in row:
            if row["date_parsed"] not in (None, ""):
                summary.dates_parsed += 1
            elif row.get(date_column) not in (None, ""):
                summary.dates_unparsed += 1
        for task in classifier.tasks:
            labels[task.name].update(task.kind.cell_labels(row[task.name]))
    reasons: Counter = Counter()
    with errors_file.open(encoding="utf-8") as handle:
        for line in handle:
            reasons[json.loads(line)["reason"]] += 1
    summary.errors = sum(reasons.values())
    summary.error_reasons = dict(sorted(reasons.items()))
    summary.label_counts = {k: dict(sorted(v.items())) for k, v in labels.items()}


def format_summary(summary: ScoreSummary) -> str:
    """A human-readable end-of-run report."""
    lines = [
        f"input rows: {summary.rows} = scored {summary.scored} + errors {summary.errors}"
        + ("" if summary.complete else "  (MISMATCH)"),
        f"output: {summary.output}   errors: {summary.errors_file}",
        f"model: {summary.provenance.get('model')}  label schema {summary.provenance.get('label_schema')}",
    ]
    for reason, n in summary.error_reasons.items():
        lines.append(f"  error {reason}: {n}")
    for task, counts in summary.label_counts.items():
        lines.append(f"  {task}: " + ", ".join(f"{label} {n}" for label, n in counts.items()))
    lines.append(
        f"truncated articles: {summary.truncated}; scored without Arabic (flagged): {summary.flagged_no_arabic}"
    )
    if summary.dates_parsed or summary.dates_unparsed:
        lines.append(f"dates read: {summary.dates_parsed}; unreadable (kept as written): {summary.dates_unparsed}")
    precision = summary.provenance.get("precision")
    lines.append(
        f"throughput: {summary.articles_per_second} articles/s over {summary.seconds} s"
        + (f" (precision {precision})" if precision else "")
        + (" (this session, after resuming)" if summary.resumed else "")
    )
    return "\n".join(lines)
