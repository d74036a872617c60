"""Batch scoring of article archives that never loses a row.

Every input row ends up either in the output (scored) or in the errors file (with its reason), and the
summary checks ``rows = scored + errors``. The archive is streamed in chunks of ``chunk_size`` rows;
each chunk's results are written to part files by atomic rename and only then recorded as done, so a
run killed at any point (Ctrl-C or ``kill -9``) is completed by the same command with ``resume=True``,
each id exactly once. The final output is assembled from the parts, again by atomic rename.

Memory holds one chunk of texts at a time; only the ids seen so far (for duplicate detection) grow
with the archive.

The pieces: :mod:`records` (what a row must be), :mod:`outputs` (the output schema, parts and assembly),
:mod:`jobs` (paths, lock, identity, resume, commit), :mod:`engines` (this process or Ray). This module is
the entry point, :func:`score_archive`, and the end-of-run report.
"""

from __future__ import annotations

import shutil
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aranews.inference.engines import engine_for
from aranews.inference.jobs import (
    JobLockedError,
    _check_kept_columns,
    _commit,
    _finished_summary,
    _job_paths,
    _JobLock,
    _open_job,
    _provenance,
    _publish,
)
from aranews.inference.outputs import ScoreSummary, reserved_columns
from aranews.inference.ray_engine import RayOptions
from aranews.inference.readers import SCORE_FORMATS
from aranews.inference.records import MAX_CHARS, RowSettings, check_row, json_safe, kept_value
from aranews.inference.runtime import model_fingerprint
from aranews.inference.shares import METHODS as SHARE_METHODS

if TYPE_CHECKING:
    from aranews.inference.classifier import NewsClassifier

__all__ = [
    "JobLockedError",
    "RowSettings",
    "ScoreSummary",
    "check_row",
    "format_summary",
    "json_safe",
    "kept_value",
    "model_fingerprint",
    "score_archive",
]

OUTPUT_FORMATS = tuple(SCORE_FORMATS)

# Names that moved out of this module in 0.1 (issue 21): importing them from here still works for one
# release, with a DeprecationWarning naming the new home.
_MOVED = {
    "id_problem": "aranews.inference.records",
    "_chunks": "aranews.inference.records:chunks",
    "_score_chunk": "aranews.inference.outputs:score_records",
    "csv_safe_columns": "aranews.inference.outputs",
    "STATE_FILE": "aranews.inference.jobs",
}


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, _, attribute = _MOVED[name].partition(":")
    warnings.warn(
        f"aranews.inference.scoring.{name} moved to {module_name}.{attribute or name}",
        DeprecationWarning,
        stacklevel=2,
    )
    import importlib

    return getattr(importlib.import_module(module_name), attribute or name)


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
    max_chars: int = MAX_CHARS,
    score_non_arabic: bool = False,
    all_probabilities: bool = False,
    resume: bool = False,
    progress: bool = True,
    throttle_seconds: float = 0.0,
    engine: str = "local",
    ray_options: RayOptions | None = None,
    keep_columns: list[str] | tuple[str, ...] = (),
    date_column: str | None = None,
    shares: str | None = None,
    shares_level: float = 0.9,
    abstain_below: float | None = None,
) -> ScoreSummary:
    """Score every row of an archive; write scores, errors and a summary.

    Args:
        classifier: a loaded :class:`NewsClassifier`.
        input_path, output_path: any archive :data:`~aranews.inference.readers.ARCHIVE_FORMATS` reads; the
            scores, ``.jsonl``, ``.csv`` or ``.parquet`` (or set ``output_format``).
        errors_path: JSON Lines of the rows not scored, with reasons (default: ``<output>.errors.jsonl``).
        id_column, text_column, title_column: input columns (the title composed as in training).
        pair_columns: for target-conditioned tasks, ``{model pair column: archive column}`` (default: same).
        chunk_size, max_chars: rows per chunk (the unit of atomic writing and of resumption); longer texts
            go to the errors file as ``oversized_text``.
        score_non_arabic, all_probabilities: score texts with no Arabic letter (flagged ``no_arabic``); add
            each task's full probability row (``<task>_probs``, a JSON object).
        resume, progress: continue an interrupted run of the same job; show a progress bar.
        throttle_seconds: pause after each chunk (to share a busy machine).
        engine, ray_options: ``local`` (this process) or ``ray`` (Ray actors, with their options; see
            :mod:`aranews.inference.ray_engine`): the same output, errors and summary either way.
        keep_columns: archive columns copied into each output row (e.g. ``date``, ``source``, ``url``).
        shares, shares_level, abstain_below: the summary's label-share estimate and its interval level
            (:mod:`shares`); no label where a single-label top probability is below it (default: the model's).
        date_column: the kept column with the publication date (default ``date``), also written parsed as
            ``date_parsed`` (ISO; ``None`` when unreadable: kept as written, counted, the row still scored).

    Returns:
        A :class:`ScoreSummary` (also written to ``<output>.summary.json``).

    Raises:
        FileExistsError: if an unfinished run's parts exist and ``resume`` is false.
        JobLockedError: another scorer is working on the same output.
        ValueError: a bad setting or path (an output that is the input), or a resume of another job or input.
        OSError: the output cannot be written (the job stays resumable).
    """
    _check_job(classifier, chunk_size, shares, shares_level)
    runner = engine_for(engine, throttle_seconds=throttle_seconds, ray_options=ray_options)
    settings = _settings(
        classifier,
        id_column=id_column,
        text_column=text_column,
        title_column=title_column,
        pair_columns=pair_columns,
        max_chars=max_chars,
        score_non_arabic=score_non_arabic,
        all_probabilities=all_probabilities,
        keep_columns=keep_columns,
        date_column=date_column,
        abstain_below=abstain_below,
    )
    paths = _job_paths(Path(input_path), Path(output_path), errors_path, output_format)
    if settings.keep_columns:
        _check_kept_columns(paths, settings.keep_columns)
    with _JobLock(paths.lock):
        job = _open_job(classifier, paths, settings, chunk_size, resume)
        job.shares_method, job.shares_level = shares, shares_level
        return _run_job(job, classifier, runner, progress, resume)


def _run_job(job: Any, classifier: NewsClassifier, runner: Any, progress: bool, resume: bool) -> ScoreSummary:
    """Finish what an interrupted run left (publish, or nothing), or score the chunks left, commit, publish."""
    paths = job.paths
    if job.state.get("finished"):  # committed before an interruption: only publishing was left
        return _publish(job)
    done_before = _finished_summary(paths, job.state["job"]) if resume and job.state["chunks_done"] == 0 else None
    if done_before is not None:  # the job is complete: a resume is a no-op
        for leftover in (paths.parts_dir, paths.parts_dir.with_name(f".{paths.parts_dir.name}.done")):
            shutil.rmtree(leftover, ignore_errors=True)
        return done_before
    summary = ScoreSummary(
        str(paths.input_path),
        str(paths.output),
        str(paths.errors_file),
        resumed=job.state["chunks_done"] > 0,
        provenance=_provenance(classifier, job.model_hash),
    )
    started = time.perf_counter()
    try:
        scored_now = runner.run(job, classifier, progress)
    except BaseException:
        if job.state["chunks_done"] == 0 and not job.resumed_parts:  # a failed start leaves nothing behind
            shutil.rmtree(paths.parts_dir, ignore_errors=True)
        raise
    summary.seconds = round(time.perf_counter() - started, 3)
    summary.articles_per_second = round(scored_now / summary.seconds, 2) if summary.seconds else 0.0
    _commit(job, classifier, summary)
    return _publish(job)


def _check_job(classifier: NewsClassifier, chunk_size: Any, method: str | None, level: float) -> None:
    """Before any work: a chunk size >= 1, a known shares method, a level in (0, 1), and the dev error rates an
    adjusted method needs."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size!r}; expected an integer >= 1")
    if method is not None and method not in SHARE_METHODS:
        raise ValueError(f"--shares {method!r}: expected one of {', '.join(SHARE_METHODS)}")
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0.0 < level < 1.0:
        raise ValueError(f"--shares-level {level!r}: expected a value in (0, 1)")
    lacking = [t.name for t in classifier.tasks if t.kind.one_label_per_row and not t.dev_rates]
    if method in ("acc", "pacc", "emq") and lacking:
        raise ValueError(
            f"--shares {method}: task(s) {lacking} of this model have no dev error rates (a model trained before "
            "they were stored); use cc or pcc, or retrain"
        )


def _settings(classifier: NewsClassifier, *, keep_columns: Any, date_column: str | None, **given: Any) -> RowSettings:
    """The job's row settings, checked: kept columns do not clash with the output's, the date column is kept."""
    classifier.abstention(given["abstain_below"])  # checks an override: a value in (0, 1)
    if given["max_chars"] < 1:
        raise ValueError(f"max_chars={given['max_chars']!r}; expected an integer >= 1")
    keep = tuple(dict.fromkeys(keep_columns))
    clash = sorted(set(keep) & reserved_columns(classifier.tasks))
    if clash:
        raise ValueError(f"keep_columns {clash}: these names are output columns of the scorer; rename them")
    if date_column is None and "date" in keep:
        date_column = "date"
    if date_column is not None and date_column not in keep:
        raise ValueError(f"date_column {date_column!r} is not among keep_columns {list(keep)}")
    return RowSettings.for_tasks(classifier.tasks, keep_columns=keep, date_column=date_column, **given)


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
    for task, n in summary.uncertain.items():
        lines.append(f"  {task}: {n} row(s) given no label (uncertain: top probability below the abstention level)")
    for task, shares in summary.shares.items():
        lines.append(_format_shares(task, shares))
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


def _format_shares(task: str, shares: dict[str, Any]) -> str:
    """``topic shares (pacc, 90% interval): security 0.31 [0.27, 0.35], ...`` (or why there is no interval)."""
    head = f"  {task} shares ({shares['method']}, {shares['level']:.0%} interval)"
    if shares.get("too_few_rows"):
        return f"{head}: too few rows ({shares['rows']}) for an interval"
    parts = [f"{label} {v['share']:.3f} [{v['low']:.3f}, {v['high']:.3f}]" for label, v in shares["labels"].items()]
    return f"{head}: " + ", ".join(parts) + (f"  ({shares['note']})" if shares.get("note") else "")
