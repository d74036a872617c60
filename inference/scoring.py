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

import csv
import hashlib
import json
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aranews import __version__
from aranews.inference.classifier import NewsClassifier
from aranews.inference.inputs import SKIP_REASONS
from aranews.inference.readers import RawRow, count_rows, detect_format, read_archive

__all__ = ["ScoreSummary", "check_row", "format_summary", "model_fingerprint", "score_archive"]

logger = logging.getLogger(__name__)

OUTPUT_FORMATS = ("jsonl", "csv", "parquet")
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
    seconds: float = 0.0
    articles_per_second: float = 0.0
    resumed: bool = False
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.rows == self.scored + self.errors


def model_fingerprint(path: str | Path) -> str:
    """SHA-256 over a model directory's weights, config and tokenizer files (its content hash)."""
    digest = hashlib.sha256()
    root = Path(path)
    for name in sorted(p.name for p in root.iterdir() if p.is_file()):
        digest.update(name.encode())
        with (root / name).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@dataclass
class _Settings:
    id_column: str
    text_column: str
    title_column: str | None
    pair_columns: dict[str, str]  # model pair column -> archive column
    max_chars: int
    score_non_arabic: bool
    all_probabilities: bool


def check_row(row: RawRow, s: _Settings, seen: set[str]) -> tuple[dict[str, Any] | None, tuple[str, str] | None]:
    """Validate one row's fields: ``(record, None)`` or ``(None, (reason, detail))``.

    Whether the text can be classified (empty, also after cleaning, or without Arabic) is decided by
    :meth:`NewsClassifier.classify`, the same policy as ``predict``.
    """
    if row.problem:
        return None, row.problem
    f = row.fields
    raw_id = f.get(s.id_column)
    if raw_id is None or (isinstance(raw_id, str) and not raw_id.strip()):
        return None, ("missing_id", f"column {s.id_column!r} is missing or empty")
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
    return {"id": row_id, "text": text, "title": title, "pairs": pairs, "location": row.location}, None


def _chunks(rows: Iterator[RawRow], size: int) -> Iterator[list[RawRow]]:
    chunk: list[RawRow] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _score_chunk(
    classifier: NewsClassifier, records: list[dict[str, Any]], s: _Settings, model_hash: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Scored rows, and error rows for the articles the classifier skipped (with their reasons)."""
    if not records:
        return [], []
    result = classifier.classify(
        [r["text"] for r in records],
        titles=[r["title"] for r in records],
        pairs={c: [r["pairs"][c] for r in records] for c in s.pair_columns} or None,
        score_non_arabic=s.score_non_arabic,
    )
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
            d = decision[task.name]
            if task.problem_type == "multi_label":
                row[task.name] = "|".join(d["labels"])
                row[f"{task.name}_score"] = max(d["scores"], default=0.0)
            else:
                row[task.name] = d["label"]
                row[f"{task.name}_score"] = d["score"]
            if s.all_probabilities:
                row[f"{task.name}_probs"] = json.dumps(
                    {
                        label: round(float(p), 6)
                        for label, p in zip(task.labels, result.probs[task.name][i], strict=True)
                    },
                    ensure_ascii=False,
                )
        article = result.articles[i]
        row["n_tokens"] = article.n_tokens
        row["truncated"] = article.truncated
        row["no_arabic"] = result.no_arabic[i]
        row["model_sha256"] = model_hash[:16]
        scored.append(row)
    return scored, skipped


def _write_part(path: Path, rows: list[dict[str, Any]], fmt: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), tmp)
    else:
        with tmp.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(tmp, path)


def _assemble(parts: list[Path], output: Path, fmt: str, columns: list[str]) -> None:
    """Join the part files into ``output`` (atomically)."""
    tmp = output.with_name(output.name + ".tmp")
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        tables = [pq.read_table(p) for p in parts if p.stat().st_size]
        non_empty = [t for t in tables if t.num_rows]
        table = (
            pa.concat_tables(non_empty, promote_options="default") if non_empty else pa.table({c: [] for c in columns})
        )
        pq.write_table(table, tmp)
    else:
        with tmp.open("w", encoding="utf-8", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=columns, extrasaction="raise") if fmt == "csv" else None
            if writer:
                writer.writeheader()
            for part in parts:
                with part.open(encoding="utf-8") as handle:
                    for line in handle:
                        if writer:
                            writer.writerow(json.loads(line))
                        else:
                            out.write(line)
            out.flush()
            os.fsync(out.fileno())
    os.replace(tmp, output)


def _output_format(path: Path, fmt: str | None) -> str:
    if fmt:
        if fmt not in OUTPUT_FORMATS:
            raise ValueError(f"output format {fmt!r}; expected one of {OUTPUT_FORMATS}")
        return fmt
    name = path.name.lower()
    for suffix, f in ((".jsonl", "jsonl"), (".json", "jsonl"), (".csv", "csv"), (".parquet", "parquet")):
        if name.endswith(suffix):
            return f
    raise ValueError(f"{path}: cannot tell the output format from the name; use .jsonl, .csv or .parquet")


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

    Returns:
        A :class:`ScoreSummary` (also written to ``<output>.summary.json``).

    Raises:
        FileExistsError: if an unfinished run's parts exist and ``resume`` is false.
        ValueError: on an unknown format, or a resume of a different job.
    """
    input_path, output = Path(input_path), Path(output_path)
    needed_pairs = sorted({t.pair_column for t in classifier.tasks if t.pair_column})
    settings = _Settings(
        id_column,
        text_column,
        title_column,
        {c: (pair_columns or {}).get(c, c) for c in needed_pairs},
        max_chars,
        score_non_arabic,
        all_probabilities,
    )
    job = _open_job(classifier, input_path, output, errors_path, output_format, settings, chunk_size, resume)
    summary = ScoreSummary(
        str(input_path),
        str(output),
        str(job.errors_file),
        resumed=job.state["chunks_done"] > 0,
        provenance=_provenance(classifier, job.model_hash),
    )
    started = time.perf_counter()
    scored_now = _run_chunks(job, classifier, progress, throttle_seconds)
    summary.seconds = round(time.perf_counter() - started, 3)
    summary.articles_per_second = round(scored_now / summary.seconds, 2) if summary.seconds else 0.0
    return _finish_job(job, classifier, summary)


@dataclass
class _Job:
    """One scoring job: its files, settings and progress (``state``, mirrored in ``.parts/state.json``)."""

    input_path: Path
    input_format: str
    output: Path
    output_format: str
    errors_file: Path
    parts_dir: Path
    settings: _Settings
    chunk_size: int
    model_hash: str
    state: dict[str, Any]


def _open_job(
    classifier: NewsClassifier,
    input_path: Path,
    output: Path,
    errors_path: str | Path | None,
    output_format: str | None,
    settings: _Settings,
    chunk_size: int,
    resume: bool,
) -> _Job:
    """Check the paths and formats, and start a job or pick up the unfinished one (same job only)."""
    fmt = _output_format(output, output_format)
    in_fmt = detect_format(input_path)
    errors_file = Path(errors_path) if errors_path else output.with_name(output.name + ".errors.jsonl")
    parts_dir = output.with_name(output.name + ".parts")
    model_hash = model_fingerprint(classifier.source) if classifier.source else "unknown"
    identity = {
        "input": str(input_path.resolve()),
        "output_format": fmt,
        "model_sha256": model_hash,
        "chunk_size": chunk_size,
        "settings": asdict(settings),
    }
    state: dict[str, Any] = {"job": identity, "chunks_done": 0, "rows_done": 0}
    if parts_dir.exists():
        if not resume:
            raise FileExistsError(
                f"{parts_dir} holds an unfinished run; rerun with --resume to complete it, or delete that folder"
            )
        previous = parts_dir / STATE_FILE
        if previous.is_file():
            state = json.loads(previous.read_text(encoding="utf-8"))
            if state["job"] != identity:
                raise ValueError(f"{parts_dir} belongs to a different job (input, model or settings differ); delete it")
    parts_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write(parts_dir / STATE_FILE, json.dumps(state))
    return _Job(input_path, in_fmt, output, fmt, errors_file, parts_dir, settings, chunk_size, model_hash, state)


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
        "versions": {**classifier.config.versions, "scored_with": __version__},
    }


def _run_chunks(job: _Job, classifier: NewsClassifier, progress: bool, throttle_seconds: float) -> int:
    """Score the chunks not done yet, each written atomically before it is recorded; return rows scored."""
    state, s = job.state, job.settings
    bar = None
    if progress:
        from tqdm.auto import tqdm

        total = count_rows(job.input_path, job.input_format)
        bar = tqdm(total=total, unit="article", desc="scoring", initial=state["rows_done"])
    seen: set[str] = set()
    scored_now = 0
    try:
        for index, chunk in enumerate(_chunks(read_archive(job.input_path, job.input_format), job.chunk_size)):
            checked = [(row, *check_row(row, s, seen)) for row in chunk]
            if index < state["chunks_done"]:
                continue  # finished before the interruption; its ids are in `seen` again
            records = [r for _, r, problem in checked if problem is None]
            errors = [
                {
                    "id": (row.fields or {}).get(s.id_column),
                    "location": row.location,
                    "reason": problem[0],
                    "detail": problem[1],
                }
                for row, _, problem in checked
                if problem is not None
            ]
            scored, skipped = _score_chunk(classifier, records, s, job.model_hash)
            _write_part(job.parts_dir / f"scores-{index:06d}.part", scored, job.output_format)
            _write_part(job.parts_dir / f"errors-{index:06d}.part", errors + skipped, "jsonl")
            state["chunks_done"], state["rows_done"] = index + 1, state["rows_done"] + len(chunk)
            _atomic_write(job.parts_dir / STATE_FILE, json.dumps(state))
            scored_now += len(scored)
            if bar is not None:
                bar.update(len(chunk))
            if throttle_seconds:
                time.sleep(throttle_seconds)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(
            f"scoring interrupted after {state['rows_done']} rows; rerun the same command with --resume to finish"
        ) from None
    finally:
        if bar is not None:
            bar.close()
    return scored_now


def _finish_job(job: _Job, classifier: NewsClassifier, summary: ScoreSummary) -> ScoreSummary:
    """Assemble the output and errors files from the parts, count what they hold, write the summary."""
    columns = ["id"]
    for task in classifier.tasks:
        columns += [task.name, f"{task.name}_score"] + (
            [f"{task.name}_probs"] if job.settings.all_probabilities else []
        )
    columns += ["n_tokens", "truncated", "no_arabic", "model_sha256"]
    _assemble(sorted(job.parts_dir.glob("scores-*.part")), job.output, job.output_format, columns)
    _assemble(sorted(job.parts_dir.glob("errors-*.part")), job.errors_file, "jsonl", [])
    _summarise(summary, job.output, job.errors_file, job.output_format, classifier)
    summary.rows = job.state["rows_done"]  # counted as read from the input, independently of the files written
    _atomic_write(
        job.output.with_name(job.output.name + ".summary.json"),
        json.dumps(asdict(summary), ensure_ascii=False, indent=2),
    )
    shutil.rmtree(job.parts_dir)
    if not summary.complete:  # would mean a bug: say so loudly rather than hand over a short output
        raise RuntimeError(
            f"row count mismatch: {summary.rows} rows but {summary.scored} scored + {summary.errors} errors"
        )
    return summary


def _iter_output(output: Path, fmt: str) -> Iterator[dict[str, Any]]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(output).iter_batches(batch_size=4096):
            yield from batch.to_pylist()
    elif fmt == "csv":
        with output.open(encoding="utf-8", newline="") as handle:
            yield from csv.DictReader(handle)
    else:
        with output.open(encoding="utf-8") as handle:
            for line in handle:
                yield json.loads(line)


def _summarise(summary: ScoreSummary, output: Path, errors_file: Path, fmt: str, classifier: NewsClassifier) -> None:
    """Count from the files actually written, so the summary describes what a user receives."""
    labels: dict[str, Counter] = {t.name: Counter() for t in classifier.tasks}
    for row in _iter_output(output, fmt):
        summary.scored += 1
        truthy = (True, "True", "true")
        summary.truncated += row["truncated"] in truthy
        summary.flagged_no_arabic += row["no_arabic"] in truthy
        for task in classifier.tasks:
            values = str(row[task.name]).split("|") if task.problem_type == "multi_label" else [row[task.name]]
            labels[task.name].update(v for v in values if v)
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
    ]
    for reason, n in summary.error_reasons.items():
        lines.append(f"  error {reason}: {n}")
    for task, counts in summary.label_counts.items():
        lines.append(f"  {task}: " + ", ".join(f"{label} {n}" for label, n in counts.items()))
    lines.append(
        f"truncated articles: {summary.truncated}; scored without Arabic (flagged): {summary.flagged_no_arabic}"
    )
    lines.append(
        f"throughput: {summary.articles_per_second} articles/s over {summary.seconds} s"
        + (" (this session, after resuming)" if summary.resumed else "")
    )
    return "\n".join(lines)
