"""A scoring job on disk: its paths, lock, identity, progress and commit.

A job is the triple (input, output, settings). Its parts folder ``<out>.parts`` holds one scores part and
one errors part per finished chunk, and ``state.json`` (the chunks and rows done, a digest of the rows
read). :func:`_open_job` starts a job or picks up the unfinished one (the same job on the same unchanged
input only); :func:`_read_chunks` yields the chunks still to score, in order, checked and prepared;
:func:`_commit` assembles and checks the output inside the parts folder and marks the job finished (the
commit point), and :func:`_publish` moves the files into place. The engines (:mod:`engines`) score chunks.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aranews import __version__
from aranews.inference import outputs
from aranews.inference.files import atomic_write_text, check_output_path, refuse_clashes
from aranews.inference.outputs import ScoreSummary
from aranews.inference.readers import RawRow, open_check, read_archive, score_format
from aranews.inference.records import RowSettings, check_row, chunks, row_error
from aranews.inference.runtime import model_fingerprint

if TYPE_CHECKING:
    from aranews.inference.classifier import NewsClassifier, PreparedBatch

__all__ = ["JobLockedError"]


STATE_FILE = "state.json"


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
    task_names: list[str] = field(default_factory=list)  # the model's tasks, in order (probability parts)
    shares_method: str | None = None  # how the summary estimates label shares (None: the model's default)
    shares_level: float = 0.9

    @property
    def parts_dir(self) -> Path:
        return self.paths.parts_dir

    @property
    def source_column(self) -> str | None:
        """The kept column the shares per source are estimated by (``source``), if it is kept."""
        return "source" if "source" in self.settings.keep_columns else None

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
    return _Job(paths, settings, chunk_size, model_hash, state, resumed_parts, [t.name for t in classifier.tasks])


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
    for index, chunk in enumerate(chunks(read_archive(paths.input_path, paths.input_format), job.chunk_size)):
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
        errors = [row_error(row, problem, s.id_column) for row, _, problem in checked if problem is not None]
        prepared = outputs.prepare_records(classifier, records, s) if prepare else None
        yield _ReadChunk(index, len(chunk), records, errors, prepared, digest.hexdigest())


_FINAL = {"output": "final-output", "errors_file": "final-errors", "summary_file": "final-summary"}


def _commit(job: _Job, classifier: NewsClassifier, summary: ScoreSummary) -> None:
    """Assemble the output, errors and summary inside the parts folder, check that every row is
    accounted for, then record the job as finished: that one atomic write is the commit."""
    paths, parts = job.paths, job.parts_dir
    columns = outputs.output_columns(classifier.tasks, job.settings)
    output, errors = parts / _FINAL["output"], parts / _FINAL["errors_file"]
    outputs.assemble(
        sorted(parts.glob("scores-*.part")),
        output,
        paths.output_format,
        columns,
        [*outputs.csv_safe_columns(classifier), *job.settings.keep_columns],
    )
    outputs.assemble(sorted(parts.glob("errors-*.part")), errors, "jsonl", [])
    outputs.summarise(summary, output, errors, paths.output_format, classifier, job.settings.date_column)
    summary.rows = job.state["rows_done"]  # counted as read from the input, independently of the files written
    summary.shares, summary.shares_by = outputs.label_shares(
        classifier.tasks, parts, job.shares_method, job.shares_level
    )
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
