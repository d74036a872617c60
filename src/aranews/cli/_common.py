"""What every command shares: usage errors, checked numbers, the model and row options, the output guard,
logging set-up and the exceptions that are a user's mistake (printed as one line)."""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from aranews.inference.files import check_output_path, refuse_clashes
from aranews.inference.precision import PRECISIONS
from aranews.inference.records import MAX_CHARS

PRECISION_CHOICES = PRECISIONS  # from a module without torch: parsing arguments loads no model code

logger = logging.getLogger("aranews")


class UsageError(ValueError):
    """A command-line argument is wrong; printed as one line."""


def _number(kind: type, low: float | None = None, high: float | None = None, *, open_low: bool = False):
    """An argparse ``type`` that reads ``kind`` and checks its range, so a bad value is a usage error
    before any work (``--max-chars 0``, ``--throttle -1``)."""

    def read(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
            ) from None
        if value != value or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}") from None
        too_low = low is not None and (value <= low if open_low else value < low)
        if too_low or (high is not None and value > high):
            lower = "" if low is None else f"{'>' if open_low else '>='} {low:g}"
            upper = "" if high is None else f"<= {high:g}"
            raise argparse.ArgumentTypeError(f"expected {' and '.join(x for x in (lower, upper) if x)}, got {text}")
        return value

    read.__name__ = kind.__name__  # argparse names the type in its messages
    return read


POSITIVE = _number(int, 1)

NON_NEGATIVE = _number(int, 0)

NON_NEGATIVE_NUMBER = _number(float, 0)


def _parse_set(values: Sequence[str]) -> dict[str, Any]:
    out = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set expects key=value (e.g. training.epochs=3), got {item!r}")
        out[key] = yaml.safe_load(raw)
    return out


def _read_texts(paths: Sequence[str], column: str = "text") -> list[str]:
    """Texts for a vocabulary: a column of JSON Lines files, or whole .txt files."""
    texts: list[str] = []
    for path in paths:
        p = Path(path)
        if p.suffix == ".jsonl":
            with p.open(encoding="utf-8") as handle:
                for line_number, line in enumerate(handle, 1):
                    if line.strip():
                        try:
                            texts.append(json.loads(line)[column])
                        except (ValueError, KeyError) as exc:
                            raise UsageError(f"{p}:{line_number}: cannot read column {column!r}: {exc}") from None
        else:
            texts.append(p.read_text(encoding="utf-8"))
    return texts


def _guard_outputs(inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
    """Before any work: no output is an input or another output, and each can be written."""
    refuse_clashes(inputs, outputs)
    for name, path in outputs.items():
        if path is not None:
            check_output_path(name, path, create_parent=True)


def _load(args: argparse.Namespace):
    from aranews.inference.classifier import load_classifier

    return load_classifier(
        args.model,
        device=args.device,
        batch_size=args.batch_size,
        precision=args.precision,
        batch_tokens=args.batch_tokens,
    )


# -- inference-side commands (the base install) -----------------------------------------------------------
def _pairs_from(args: argparse.Namespace, n: int) -> dict[str, list[str]] | None:
    return {args.pair_column: [args.pair] * n} if args.pair else None


def _row_settings(args: argparse.Namespace, tasks):
    """How ``--input`` rows are read and checked, from the command's row options and the model's tasks."""
    from aranews.inference.records import RowSettings

    return RowSettings.for_tasks(
        tasks,
        id_column=args.id_column,
        text_column=args.text_column,
        title_column=args.title_column or None,
        max_chars=args.max_chars,
        score_non_arabic=getattr(args, "score_non_arabic", False),
    )


def _input_rows(args: argparse.Namespace, tasks) -> Iterator[dict[str, Any]]:
    """Rows of ``--input`` (any archive format the scorer reads), checked as the scorer checks them."""
    from aranews.inference.readers import read_archive
    from aranews.inference.records import check_row, json_safe

    settings = _row_settings(args, tasks)
    seen: set[str] = set()
    for row in read_archive(args.input):
        record, problem = check_row(row, settings, seen)
        if problem is not None:
            yield {
                "id": json_safe((row.fields or {}).get(args.id_column)),
                "location": row.location,
                "skipped": problem[0],
                "detail": problem[1],
            }
        else:
            yield record


def _model_tasks(model: str | None):
    if not model:
        return None
    from aranews.inference.config import ClassifierConfig

    return ClassifierConfig.load(model).tasks


# -- the parser -------------------------------------------------------------------------------------------
def _common(subparser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a flag given before the subcommand is not reset by the subcommand's default
    subparser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging")
    subparser.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="warnings only, no progress bars"
    )


def _model_options(p: argparse.ArgumentParser, batch_size: int = 16) -> None:
    p.add_argument("--model", required=True, help="a model directory written by aranews train (or save_pretrained)")
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: CUDA, then MPS, then CPU)")
    p.add_argument(
        "--batch-size", type=POSITIVE, default=batch_size, help=f"most articles per forward pass (default {batch_size})"
    )
    p.add_argument(
        "--batch-tokens", type=POSITIVE, default=8192, help="most padded tokens per forward pass (default 8192)"
    )
    p.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        default="auto",
        help="auto (chosen per machine: see `aranews check-precision`), fp32, bf16, fp16 (CUDA), int8 (ONNX "
        "Runtime), openvino-fp32 or openvino-bf16 (OpenVINO)",
    )


def _command(sub: Any, name: str, summary: str, func: Any, *, needs_train: bool) -> argparse.ArgumentParser:
    """A subcommand's parser, bound to the function that runs it (and whether it needs the training extra)."""
    p = sub.add_parser(name, help=summary)
    p.set_defaults(func=func, needs_train=needs_train)
    return p


def _options(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The parsed values of these options, by name: a library call's keyword arguments."""
    return {name: getattr(args, name) for name in names}


def _text_options(p: argparse.ArgumentParser, too_long: str, non_arabic: str) -> None:
    """``--max-chars`` and ``--score-non-arabic``, with what this command does with such texts."""
    p.add_argument("--max-chars", type=POSITIVE, default=MAX_CHARS, help=f"longer texts {too_long}")
    p.add_argument("--score-non-arabic", action="store_true", help=non_arabic)


def _abstain_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--abstain-below",
        type=_number(float, 0, 1, open_low=True),
        help="no label (uncertain) for a single-label task whose top probability is below this (default: the model's)",
    )


def _pair_options(p: argparse.ArgumentParser, what: str) -> None:
    """``--pair`` and ``--pair-column`` for target-conditioned tasks of texts given on the command line."""
    p.add_argument("--pair", help=f"{what} target or claim, for target-conditioned tasks")
    p.add_argument("--pair-column", default="target", help="the model's pair column that --pair fills (default target)")


def _row_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--id-column", default="id", help="column holding the article id (default: id)")
    p.add_argument("--text-column", default="text", help="column holding the article text (default: text)")
    p.add_argument(
        "--title-column",
        default="title",
        help="column holding the title, read as the model's model.title says ('' to ignore; default: title)",
    )


def _configure_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        import datasets

        datasets.disable_progress_bars()
    except ImportError:  # the base install has no datasets
        pass
    if args.quiet:
        os.environ["TQDM_DISABLE"] = "1"


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that describe a user's mistake or environment: printed as one line, exit status 2."""
    from aranews.inference.classifier import DeviceError
    from aranews.inference.export import ExportError
    from aranews.inference.ray_engine import RayUnavailableError
    from aranews.inference.schema import ConfigError
    from aranews.inference.scoring import JobLockedError
    from aranews.training.checkpoint import ResumeMismatchError
    from aranews.training.extras import MissingExtraError

    errors: list[type[BaseException]] = [
        ConfigError,
        DeviceError,
        ExportError,
        JobLockedError,
        MissingExtraError,
        RayUnavailableError,
        ResumeMismatchError,
        UsageError,
        OSError,  # missing files, permissions, a full disk (a scoring job stays resumable)
        KeyError,
        ValueError,
        TypeError,
    ]
    try:
        from aranews.training.data import DataValidationError
        from aranews.training.trainer import EncoderUnavailableError

        errors += [DataValidationError, EncoderUnavailableError]
    except ImportError:
        pass
    return tuple(errors)
