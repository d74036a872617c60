"""``aranews score`` and ``report``: an archive scored without losing a row, and its HTML report (base install)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from aranews.cli._common import (
    NON_NEGATIVE,
    NON_NEGATIVE_NUMBER,
    POSITIVE,
    UsageError,
    _abstain_option,
    _command,
    _load,
    _model_options,
    _number,
    _options,
    _row_options,
    _text_options,
)
from aranews.inference.readers import ARCHIVE_KINDS, SCORE_FORMATS
from aranews.inference.shares import METHODS as SHARE_METHODS


def cmd_score(args: argparse.Namespace) -> int:
    from aranews.inference.scoring import format_summary, score_archive

    classifier = _load(args)
    pair_columns = {}
    for item in args.pair_column:
        model_column, sep, archive_column = item.partition("=")
        if not sep:
            raise UsageError(f"--pair-column expects MODEL_COLUMN=ARCHIVE_COLUMN, got {item!r}")
        pair_columns[model_column] = archive_column
    try:
        summary = score_archive(
            classifier,
            args.input,
            args.out,
            args.errors,
            output_format=args.format,
            id_column=args.id_column,
            text_column=args.text_column,
            title_column=args.title_column or None,
            pair_columns=pair_columns,
            chunk_size=args.chunk_size,
            max_chars=args.max_chars,
            score_non_arabic=args.score_non_arabic,
            all_probabilities=args.all_probs,
            resume=args.resume,
            progress=not args.quiet,
            throttle_seconds=args.throttle,
            engine=args.engine,
            ray_options=_ray_options(args),
            keep_columns=[c.strip() for c in (args.keep_columns or "").split(",") if c.strip()],
            date_column=args.date_column,
            shares=args.shares,
            shares_level=args.shares_level,
            abstain_below=args.abstain_below,
        )
    except KeyboardInterrupt as exc:
        print(f"\n{exc}", file=sys.stderr)
        return 130
    print(format_summary(summary))
    return 0


def _ray_options(args: argparse.Namespace):
    if args.engine != "ray":
        return None
    from aranews.inference.ray_engine import RayOptions

    return RayOptions(
        address=args.address,
        workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        gpus_per_worker=args.gpus_per_worker,
    )


def cmd_report(args: argparse.Namespace) -> int:
    from aranews.inference.report import write_report

    options = _options(args, "archive", "source_column", "examples", "uncertain", "max_sources", "title")
    result = write_report(args.scores, args.out, **options)
    print(
        f"report of {result.rows} scored rows ({result.days} days, {result.sources} sources, {result.undated} "
        f"undated) -> {result.path} ({result.bytes / 1024:.0f} KiB, {result.seconds:.1f} s)"
    )
    return 0


# -- the parsers ------------------------------------------------------------------------------------------
def score_parser(sub: Any) -> None:
    p = _command(
        sub, "score", "score an archive: every row scored or written down with its reason", cmd_score, needs_train=False
    )
    _model_options(p, 32)
    p.add_argument("input", help=ARCHIVE_KINDS)
    p.add_argument("--out", required=True, help="scores: .jsonl, .csv or .parquet")
    p.add_argument("--errors", help="rows not scored, with reasons (default: <out>.errors.jsonl)")
    p.add_argument("--format", choices=list(SCORE_FORMATS), help="output format (default: from --out)")
    _row_options(p)
    p.add_argument(
        "--pair-column",
        action="append",
        default=[],
        metavar="MODEL_COLUMN=ARCHIVE_COLUMN",
        help="where a target-conditioned task's target is in the archive (repeatable)",
    )
    p.add_argument("--chunk-size", type=POSITIVE, default=512, help="rows per atomically written chunk (default 512)")
    _text_options(p, "are errors (oversized_text)", "score texts without Arabic (flagged)")
    p.add_argument("--all-probs", action="store_true", help="add every label's probability")
    p.add_argument("--resume", action="store_true", help="finish an interrupted run of the same job")
    p.add_argument("--throttle", type=NON_NEGATIVE_NUMBER, default=0.0, help="seconds to pause after each chunk")
    p.add_argument(
        "--keep-columns", help="archive columns to copy into the output, comma-separated (e.g. date,source,url)"
    )
    p.add_argument(
        "--date-column", help="the kept column with the publication date, parsed into date_parsed (default: date)"
    )
    p.add_argument(
        "--shares",
        choices=list(SHARE_METHODS),
        help="how the summary estimates label shares: cc (raw count), pcc, acc, pacc, emq "
        "(default: pacc where the model stores its dev error rates, else pcc)",
    )
    _abstain_option(p)
    p.add_argument(
        "--shares-level", type=_number(float, 0, 1, open_low=True), default=0.9, help="interval level (default 0.9)"
    )
    p.add_argument(
        "--engine", choices=["local", "ray"], default="local", help="local (this process) or ray (Ray actors)"
    )
    p.add_argument("--address", help="with --engine ray: an existing cluster (auto, ray://host:10001)")
    p.add_argument("--workers", type=POSITIVE, help="with --engine ray: actors (default: one per two CPUs)")
    p.add_argument("--threads-per-worker", type=POSITIVE, help="with --engine ray: torch threads per actor")
    p.add_argument("--gpus-per-worker", type=NON_NEGATIVE_NUMBER, default=0.0, help="with --engine ray: GPUs per actor")


def report_parser(sub: Any) -> None:
    p = _command(
        sub, "report", "an HTML report of a scored archive: labels over time, by source", cmd_report, needs_train=False
    )
    p.add_argument("--scores", required=True, help="the output of aranews score (.jsonl, .csv or .parquet)")
    p.add_argument("--out", required=True, help="the HTML file to write (self-contained)")
    p.add_argument("--archive", help="the scored archive, for the titles or first lines of the examples shown")
    p.add_argument("--source-column", default="source", help="the kept column naming the outlet (default source)")
    p.add_argument("--examples", type=NON_NEGATIVE, default=3, help="example articles per label (default 3)")
    p.add_argument("--uncertain", type=NON_NEGATIVE, default=25, help="least confident articles listed (default 25)")
    p.add_argument("--max-sources", type=NON_NEGATIVE, default=30, help="sources shown by name (default 30)")
    p.add_argument("--title", help="the report's title")
