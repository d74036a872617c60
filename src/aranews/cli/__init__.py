"""The ``aranews`` command line: one subcommand per job, one module per command group (as spaCy's
``spacy/cli/``), each a thin layer over the library, which never imports this package.

    aranews demo --out runs/demo
    aranews train configs/default.yaml --set training.epochs=5
    aranews evaluate --model runs/x/model --data dev.jsonl
    aranews predict --model runs/x/model "نص الخبر ..."          (or --input archive.jsonl)
    aranews inspect --model runs/x/model "نص الخبر ..."
    aranews score --model runs/x/model archive.jsonl --out scores.jsonl
    aranews report --scores scores.jsonl --out report.html
    aranews select / labelstudio export / labelstudio import   (the retraining loop)
    aranews export --model runs/x/model --task topic --out topic-model
    aranews model-card --run runs/x --out model_card.md

Prediction, scoring, inspection, selection, Label Studio and export need only the base install; training,
evaluation, the demo and model cards need the training extra (``pip install "aranews-classifier[train]"``).
Logging and progress-bar settings are configured here, never at library import.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from aranews import __version__
from aranews.cli import label, predict, score, train
from aranews.cli._common import UsageError, _common, _configure_logging, _user_errors, logger

__all__ = ["UsageError", "build_parser", "main"]

# in the order `aranews --help` lists them
_PARSERS = (
    train.demo_parser,
    train.train_parser,
    train.evaluate_parser,
    predict.predict_parser,
    predict.inspect_parser,
    score.score_parser,
    predict.check_precision_parser,
    label.select_parser,
    label.labelstudio_parser,
    score.report_parser,
    predict.export_parser,
    train.model_card_parser,
    train.build_backbone_parser,
    train.zero_shot_parser,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aranews", description="Fine-tuned transformer classification of Arabic news articles."
    )
    parser.add_argument("--version", action="version", version=f"aranews-classifier {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings only, no progress bars")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _PARSERS:
        add(sub)
    for subparser in sub.choices.values():
        _common(subparser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.verbose = getattr(args, "verbose", False)
    args.quiet = getattr(args, "quiet", False)
    _configure_logging(args)
    errors = _user_errors()
    try:
        if args.needs_train:
            from aranews.training.extras import require_train_extra

            require_train_extra(f"aranews {args.command}")
        return args.func(args)
    except errors as exc:
        if args.verbose:
            logger.exception("%s failed", args.command)
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
