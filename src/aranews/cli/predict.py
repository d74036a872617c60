"""``aranews predict``, ``inspect``, ``check-precision`` and ``export``: one model, texts or a file (base install)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

from aranews.cli._common import (
    POSITIVE,
    UsageError,
    _abstain_option,
    _command,
    _guard_outputs,
    _input_rows,
    _load,
    _model_options,
    _model_tasks,
    _number,
    _pair_options,
    _pairs_from,
    _row_options,
    _text_options,
)
from aranews.inference.files import atomic_output, atomic_write_text
from aranews.inference.precision import CHECKABLE
from aranews.inference.readers import ARCHIVE_KINDS


def cmd_predict(args: argparse.Namespace) -> int:
    if not args.texts and not args.input:
        raise UsageError("predict: give texts as arguments or --input FILE")
    if args.out:
        _guard_outputs({"the input archive": args.input}, {"--out": args.out})
    classifier = _load(args)
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(atomic_output(args.out)) if args.out else sys.stdout
        if args.texts:
            predictions = classifier.predict(
                list(args.texts),
                title=[args.title] * len(args.texts),
                pairs=_pairs_from(args, len(args.texts)),
                score_non_arabic=args.score_non_arabic,
                abstain_below=args.abstain_below,
            )
            for prediction in predictions:
                out.write(json.dumps(prediction, ensure_ascii=False) + "\n")
        if args.input:
            batch: list[dict[str, Any]] = []
            for row in _input_rows(args, classifier.tasks):
                batch.append(row)
                if len(batch) >= 256:
                    _predict_rows(classifier, batch, out, args.score_non_arabic, args.abstain_below)
                    batch = []
            _predict_rows(classifier, batch, out, args.score_non_arabic, args.abstain_below)
    return 0


def _predict_rows(classifier, rows: list[dict[str, Any]], out, score_non_arabic: bool, abstain_below=None) -> None:
    """One JSON line per row, in input order: ``{"id", ...prediction}`` or ``{"id", "skipped", ...}``."""
    ready = [r for r in rows if "skipped" not in r]
    predictions = iter(
        classifier.predict(
            [r["text"] for r in ready],
            title=[r["title"] for r in ready],
            pairs={c: [r["pairs"][c] for r in ready] for c in (ready[0]["pairs"] if ready else {})} or None,
            score_non_arabic=score_non_arabic,
            abstain_below=abstain_below,
        )
        if ready
        else []
    )
    for row in rows:
        line = row if "skipped" in row else {"id": row["id"], **next(predictions)}
        out.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")


def cmd_inspect(args: argparse.Namespace) -> int:
    classifier = _load(args)
    pairs = {args.pair_column: args.pair} if args.pair else None
    view = classifier.inspect(args.text, title=args.title, pairs=pairs)
    if args.json:
        print(json.dumps(view.to_dict(), ensure_ascii=False, indent=2))
        return 0
    print(
        f"preprocessing: {', '.join(view.preprocessing)}; strategy {view.strategy}; windows of {view.max_length} tokens"
    )
    if view.skipped:
        print(f"NOT CLASSIFIED: {view.skipped}")
    print(f"composed text ({len(view.text)} characters):\n  {view.text[:300]}{'...' if len(view.text) > 300 else ''}")
    print(
        f"after cleaning ({len(view.cleaned)} characters):\n  {view.cleaned[:300]}{'...' if len(view.cleaned) > 300 else ''}"
    )
    for key, group in view.inputs.items():
        print(
            f"{key} (tasks {', '.join(group['tasks'])}): {group['n_tokens']} tokens, "
            f"{group['dropped_tokens']} not seen, {len(group['windows'])} window(s)"
        )
        for i, window in enumerate(group["windows"], 1):
            print(f"  window {i} ({window['tokens']} tokens): {window['text']}")
    return 0


def cmd_check_precision(args: argparse.Namespace) -> int:
    from aranews.inference.agreement import check_precision, record_agreement

    if args.json:
        _guard_outputs({"the input archive": args.input}, {"--json": args.json})
    rows = [r for r in _input_rows(args, _model_tasks(args.model)) if "skipped" not in r]
    if args.limit:
        rows = rows[: args.limit]
    if not rows:
        raise UsageError(f"{args.input}: no row to check")
    columns = sorted({c for r in rows for c in r["pairs"]})
    report = check_precision(
        args.model,
        [r["text"] for r in rows],
        titles=[r["title"] for r in rows],
        pairs={c: [r["pairs"][c] for r in rows] for c in columns} or None,
        modes=args.modes,
        device=args.device,
        min_agreement=args.min_agreement,
        batch_tokens=args.batch_tokens,
    )
    print(report.format())
    print(f"recorded in {record_agreement(report)} (int8 loads this model here only if every task passed)")
    if args.json:
        atomic_write_text(args.json, json.dumps(report.to_dict(), indent=2) + "\n")
    if not report.passed:
        print("a mode FAILED its agreement check: keep --precision fp32 (or a mode that passed)", file=sys.stderr)
        return 1
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from aranews.inference.export import export_task

    out = export_task(_load(args), args.task, args.out)
    print(
        f"task {args.task!r} exported to {out}: load it with transformers.pipeline('text-classification', model='{out}')"
    )
    return 0


# -- the parsers ------------------------------------------------------------------------------------------
def predict_parser(sub: Any) -> None:
    p = _command(
        sub, "predict", "predict topic and stance for texts or for the rows of a file", cmd_predict, needs_train=False
    )
    _model_options(p)
    p.add_argument("texts", nargs="*", help="article texts")
    p.add_argument("--title", help="the title of the texts given as arguments")
    p.add_argument("--input", help=f"an archive: {ARCHIVE_KINDS} (as for score)")
    p.add_argument("--out", help="write JSON Lines here instead of standard output")
    _pair_options(p, "the texts'")
    _abstain_option(p)
    _text_options(p, "are skipped as oversized_text", "classify texts without Arabic (marked no_arabic)")
    _row_options(p)


def inspect_parser(sub: Any) -> None:
    p = _command(sub, "inspect", "show exactly what the model reads of an article", cmd_inspect, needs_train=False)
    _model_options(p)
    p.add_argument("text", help="the article text")
    p.add_argument("--title", help="its title")
    _pair_options(p, "its")
    p.add_argument("--json", action="store_true", help="print the inspection as JSON")


def check_precision_parser(sub: Any) -> None:
    p = _command(
        sub,
        "check-precision",
        "agreement of bf16 / int8 with fp32 on your model and data",
        cmd_check_precision,
        needs_train=False,
    )
    _model_options(p, 64)
    p.add_argument("--data", dest="input", required=True, help=f"articles to check: {ARCHIVE_KINDS}")
    p.add_argument(
        "--modes",
        nargs="+",
        default=["bf16", "int8", "openvino-bf16"],
        choices=list(CHECKABLE),
        help="modes to compare with fp32 (default: bf16 int8 openvino-bf16; one this machine or install cannot run "
        "is listed as unavailable)",
    )
    p.add_argument("--limit", type=POSITIVE, help="check only the first N rows")
    p.add_argument(
        "--min-agreement", type=_number(float, 0, 1), default=0.99, help="share of equal labels to pass (default 0.99)"
    )
    p.add_argument("--json", help="also write the report as JSON here")
    _text_options(p, "are left out", "include texts without Arabic")
    _row_options(p)


def export_parser(sub: Any) -> None:
    p = _command(
        sub,
        "export",
        "write one task as a standard transformers text-classification model",
        cmd_export,
        needs_train=False,
    )
    _model_options(p)
    p.add_argument("--task", required=True, help="the task to export, e.g. topic")
    p.add_argument("--out", required=True, help="the directory to write")
