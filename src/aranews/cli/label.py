"""``aranews select`` and ``labelstudio``: what to label next, and the round trip through Label Studio
(base install)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from aranews.cli._common import (
    NON_NEGATIVE,
    POSITIVE,
    UsageError,
    _command,
    _common,
    _guard_outputs,
    _load,
    _model_options,
    _model_tasks,
    _options,
    _row_options,
    _row_settings,
)
from aranews.inference.readers import ARCHIVE_KINDS
from aranews.inference.records import MAX_CHARS


def cmd_select(args: argparse.Namespace) -> int:
    from aranews.inference.selection import select_for_labelling, write_selection

    if args.precision == "int8":
        raise UsageError("select reads the model's embeddings from torch: use --precision fp32, bf16 or auto")
    _guard_outputs({"the input archive": args.input}, {"--out": args.out})
    classifier = _load(args)
    settings = _row_settings(args, classifier.tasks)
    picks, summary = select_for_labelling(
        classifier,
        args.input,
        args.n,
        **_options(args, "strategy", "task", "per_label", "quota_task", "pool_factor"),
        diversity=not args.no_diversity,
        settings=settings,
    )
    write_selection(picks, args.out, classifier, settings)
    skipped = ", ".join(f"{k} {v}" for k, v in summary.not_considered.items()) or "none"
    print(f"read {summary.rows} rows: {summary.considered} considered, not considered: {skipped}")
    print(f"picked {summary.picked} of {args.n} asked -> {args.out} (least certain first)")
    for reason, count in sorted(summary.by_reason.items()):
        print(f"  {reason}: {count}")
    for task, counts in summary.suggested_labels.items():
        print(f"  suggested {task}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


def cmd_labelstudio_export(args: argparse.Namespace) -> int:
    from aranews.inference.labelstudio import export_tasks

    tasks = _model_tasks(args.model)
    pairs = sorted({t.pair_column for t in tasks if t.pair_column})
    out, config, n = export_tasks(
        args.selection, args.out, tasks, model_version=Path(args.model).resolve().name, pair_columns=pairs
    )
    print(f"{n} Label Studio tasks with pre-annotations -> {out}")
    print(f"labelling config -> {config} (Settings > Labeling Interface > Code in Label Studio)")
    return 0


def cmd_labelstudio_import(args: argparse.Namespace) -> int:
    from aranews.inference.labelstudio import import_export

    summary = import_export(args.export, args.out, _model_tasks(args.model), errors=args.errors)
    errors = args.errors or f"{args.out}.errors.jsonl"
    print(
        f"{summary.tasks} tasks = {summary.labelled} labelled rows -> {args.out} + {summary.errors} not used -> "
        f"{errors}"
    )
    for reason, count in summary.error_reasons.items():
        print(f"  {reason}: {count}")
    if summary.partial:
        print(
            f"  {summary.partial} labelled row(s) leave a task empty whose annotators disagreed "
            f"(listed in {errors} with row_written: true)"
        )
    print(f"  cancelled annotations left out: {summary.cancelled_annotations}")
    for task, counts in summary.label_counts.items():
        print(f"  {task}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for task, labels in summary.unknown_labels.items():
        print(f"  NEW LABELS for {task} (not in the model): {labels}: retraining will add them")
    return 0


# -- the parsers ------------------------------------------------------------------------------------------
def select_parser(sub: Any) -> None:
    p = _command(
        sub,
        "select",
        "pick the articles most worth labelling next (uncertain and diverse)",
        cmd_select,
        needs_train=False,
    )
    _model_options(p, 64)
    p.add_argument("--input", required=True, help=f"an archive: {ARCHIVE_KINDS}")
    p.add_argument("--n", type=POSITIVE, required=True, help="how many articles to pick")
    p.add_argument("--out", required=True, help="JSON Lines in the training data format, label columns empty")
    p.add_argument("--strategy", choices=["margin", "entropy"], default="margin", help="uncertainty (default margin)")
    p.add_argument("--task", help="rank by this task's uncertainty only (default: the mean over tasks)")
    p.add_argument(
        "--per-label", type=NON_NEGATIVE, default=0, help="up to this many picks per predicted label (quota)"
    )
    p.add_argument("--quota-task", help="the task whose predicted labels get quotas (default: the first task)")
    p.add_argument("--pool-factor", type=POSITIVE, default=10, help="cluster the N x this least certain (default 10)")
    p.add_argument("--no-diversity", action="store_true", help="plain top-N by uncertainty, no clustering")
    p.add_argument("--max-chars", type=POSITIVE, default=MAX_CHARS, help="longer texts are not considered")
    _row_options(p)


def labelstudio_parser(sub: Any) -> None:
    ls = sub.add_parser("labelstudio", help="Label Studio round trip: export tasks, import the labels back")
    ls_sub = ls.add_subparsers(dest="labelstudio_command", required=True, metavar="STEP", help="export or import")
    summary = "a selection file -> Label Studio tasks with pre-annotations + config"
    p = _command(ls_sub, "export", summary, cmd_labelstudio_export, needs_train=False)
    p.add_argument("--selection", required=True, help="the file written by aranews select")
    p.add_argument("--model", required=True, help="the model whose label schema the interface shows")
    p.add_argument("--out", required=True, help="tasks JSON to import in Label Studio")
    _common(p)
    summary = "a Label Studio JSON export -> training rows (JSON Lines)"
    p = _command(ls_sub, "import", summary, cmd_labelstudio_import, needs_train=False)
    p.add_argument("--export", required=True, help="Label Studio's JSON export of the project")
    p.add_argument("--out", required=True, help="the training rows to write")
    p.add_argument("--errors", help="tasks that gave no label, with reasons (default <out>.errors.jsonl)")
    p.add_argument("--model", help="check the labels against this model's schema (new ones are listed)")
    _common(p)
