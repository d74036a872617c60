"""The ``aranews`` command line: one subcommand per job.

    aranews build-backbone --texts data/sample/train.jsonl --out runs/tiny-backbone
    aranews train configs/default.yaml --set training.epochs=5
    aranews evaluate --model runs/x/model --data dev.jsonl
    aranews predict --model runs/x/model "نص الخبر ..."
    aranews model-card --run runs/demo/run --out model_card.md
    aranews demo --out runs/demo

Logging and progress-bar settings are configured here, never at library import.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = ["main"]

logger = logging.getLogger("aranews")
REPO_ROOT = Path(__file__).resolve().parent.parent


def _parse_set(values: Sequence[str]) -> dict[str, Any]:
    out = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects key=value (e.g. training.epochs=3), got {item!r}")
        out[key] = yaml.safe_load(raw)
    return out


def _read_texts(paths: Sequence[str], column: str = "text") -> list[str]:
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
                            raise SystemExit(f"{p}:{line_number}: cannot read column {column!r}: {exc}") from None
        else:
            texts.append(p.read_text(encoding="utf-8"))
    return texts


def cmd_build_backbone(args: argparse.Namespace) -> int:
    from .backbone import build_tiny_backbone

    texts = _read_texts(args.texts)
    build_tiny_backbone(
        texts,
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
    from .config import load_config
    from .trainer import Trainer

    overrides = _parse_set(args.set)
    if args.out:
        overrides["training.output_dir"] = args.out
    config = load_config(args.config, overrides)
    result = Trainer(config).train()
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


def cmd_evaluate(args: argparse.Namespace) -> int:
    from inference import load_classifier

    from .config import DataConfig, TaskConfig
    from .data import DataValidationError, load_split, validate_splits
    from .evaluation import build_report
    from .trainer import encode_split

    classifier = load_classifier(args.model, device=args.device, batch_size=args.batch_size)
    tasks = [TaskConfig(t.name, list(t.labels), t.problem_type, None, t.pair_column) for t in classifier.tasks]
    labels = {t.name: list(t.labels) for t in tasks}

    def read(name: str, path: str):
        config = DataConfig(train=path, dev=path, id_column=args.id_column, text_column=args.text_column)
        split, problems = load_split(name, path, config, tasks)
        problems += [p for p in validate_splits(split, [], tasks, labels) if "distinct labels" not in p]
        if problems:
            raise DataValidationError(problems)
        return split

    split = read("eval", args.data)
    train = read("train", args.train) if args.train else None
    out_dir = Path(args.out_dir)
    report = build_report(
        classifier,
        encode_split(classifier.encoder, split, classifier.tasks),
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


def cmd_predict(args: argparse.Namespace) -> int:
    from inference import load_classifier

    texts = list(args.texts)
    if args.input:
        texts += _read_texts([args.input], args.text_column)
    if not texts:
        raise SystemExit("predict: give texts as arguments or --input FILE")
    classifier = load_classifier(args.model, device=args.device, batch_size=args.batch_size)
    pairs = {args.pair_column: [args.pair] * len(texts)} if args.pair else None
    for prediction in classifier.predict(texts, pairs=pairs):
        print(json.dumps(prediction, ensure_ascii=False))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Build the tiny backbone on the embedded sample corpus, train, evaluate and predict."""
    from inference import load_classifier

    from .backbone import build_tiny_backbone
    from .config import load_config
    from .model_card import render_model_card
    from .trainer import Trainer

    out = Path(args.out)
    config_path = Path(args.config)
    sample = REPO_ROOT / "data" / "sample"
    if not (sample / "train.jsonl").is_file() or not config_path.is_file():
        raise FileNotFoundError(
            f"the demo needs a checkout of the repository ({sample}, {config_path}); clone it and run `make demo` there"
        )
    backbone = out / "tiny-backbone"
    if not (backbone / "config.json").is_file():
        texts = _read_texts([str(sample / "train.jsonl")])
        print(f"[1/4] building a tiny BERT backbone from {len(texts)} sample articles -> {backbone}")
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
    overrides = {"model.encoder": str(backbone), "training.output_dir": str(out / "run"), **_parse_set(args.set)}
    config = load_config(config_path, overrides)
    print(f"[2/4] training on {config.data.train} (config {config_path})")
    result = Trainer(config).train()
    _print_summary(result.metrics)
    print(f"[3/4] predicting with {result.model_dir}")
    classifier = load_classifier(result.model_dir)
    examples = [
        "وقعت أنقرة وموسكو اتفاقا لتوسيع إمدادات الغاز الطبيعي عبر خط السيل التركي وزيادة التبادل التجاري.",
        "انتقدت موسكو بشدة بيع تركيا طائرات مسيرة إلى كييف واعتبرت الخطوة تهديدا للعلاقات الثنائية.",
    ]
    for text, prediction in zip(examples, classifier.predict(examples)):
        print(f"  {text[:60]}... -> {json.dumps(prediction, ensure_ascii=False)}")
    from inference.scoring import format_summary, score_archive

    archive = sample / "archive.jsonl"
    print(f"[4/4] scoring the sample archive {archive} (with bad rows on purpose)")
    summary = score_archive(classifier, archive, out / "scores.jsonl", progress=False)
    print("  " + format_summary(summary).replace("\n", "\n  "))
    card = out / "model_card.md"
    card.write_text(
        render_model_card(load_config(REPO_ROOT / "configs" / "default.yaml"), result.output_dir), encoding="utf-8"
    )
    print(f"demo done: model in {result.model_dir}, metrics in {result.output_dir / 'metrics.json'}, card {card}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from inference import load_classifier
    from inference.scoring import format_summary, score_archive

    classifier = load_classifier(args.model, device=args.device, batch_size=args.batch_size)
    pair_columns = dict(item.split("=", 1) for item in args.pair_column)
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
        )
    except KeyboardInterrupt as exc:
        print(f"\n{exc}", file=sys.stderr)
        return 130
    except (FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(summary))
    return 0


def cmd_model_card(args: argparse.Namespace) -> int:
    from .config import load_config
    from .model_card import render_model_card

    text = render_model_card(load_config(args.config), args.run, model_name=args.name, benchmarks=args.benchmark)
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"model card written to {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aranews", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings only, no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build-backbone", help="build a tiny random BERT + WordPiece tokenizer offline")
    p.add_argument("--texts", nargs="+", required=True, help=".jsonl files (column 'text') or .txt files")
    p.add_argument("--out", required=True)
    p.add_argument("--vocab-size", type=int, default=4000)
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--max-positions", type=int, default=512)
    p.set_defaults(func=cmd_build_backbone)

    p = sub.add_parser("train", help="fine-tune from a YAML config")
    p.add_argument("config")
    p.add_argument("--out", help="run directory (overrides training.output_dir)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a saved model on a labelled file")
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out-dir", default="report", help="folder for report.json, plots and mistakes")
    p.add_argument("--train", help="training file: also train and report the TF-IDF baseline on it")
    p.add_argument("--id-column", default="id")
    p.add_argument("--text-column", default="text")
    p.add_argument("--device")
    p.add_argument("--batch-size", type=int, default=32)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="predict topic and stance for texts")
    p.add_argument("--model", required=True)
    p.add_argument("texts", nargs="*")
    p.add_argument("--input", help="a .jsonl file (column --text-column) or a .txt file")
    p.add_argument("--text-column", default="text")
    p.add_argument("--pair", help="target or claim for target-conditioned tasks")
    p.add_argument("--pair-column", default="target")
    p.add_argument("--device")
    p.add_argument("--batch-size", type=int, default=16)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("score", help="score an archive: every row scored or written down with its reason")
    p.add_argument("--model", required=True)
    p.add_argument("input", help=".jsonl[.gz], .csv, .parquet or a folder of .txt files")
    p.add_argument("--out", required=True, help="scores: .jsonl, .csv or .parquet")
    p.add_argument("--errors", help="rows not scored, with reasons (default: <out>.errors.jsonl)")
    p.add_argument("--format", choices=["jsonl", "csv", "parquet"])
    p.add_argument("--id-column", default="id")
    p.add_argument("--text-column", default="text")
    p.add_argument("--title-column", default="title", help="prepended to the text when present ('' to ignore)")
    p.add_argument(
        "--pair-column",
        action="append",
        default=[],
        metavar="MODEL_COLUMN=ARCHIVE_COLUMN",
        help="where a target-conditioned task's target is in the archive",
    )
    p.add_argument("--chunk-size", type=int, default=512, help="rows per atomically written chunk")
    p.add_argument("--max-chars", type=int, default=200_000, help="longer texts are errors (oversized_text)")
    p.add_argument("--score-non-arabic", action="store_true", help="score texts without Arabic (flagged)")
    p.add_argument("--all-probs", action="store_true", help="add every label's probability")
    p.add_argument("--resume", action="store_true", help="finish an interrupted run of the same job")
    p.add_argument("--throttle", type=float, default=0.0, help="seconds to pause after each chunk")
    p.add_argument("--device")
    p.add_argument("--batch-size", type=int, default=32)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("model-card", help="generate a model card from a config and a finished run")
    p.add_argument("--config", default=str(REPO_ROOT / "configs" / "default.yaml"))
    p.add_argument("--run", required=True, help="run directory with metrics.json")
    p.add_argument("--out", default="model_card.md")
    p.add_argument("--name", default="aranews-topic-stance")
    p.add_argument("--benchmark", action="append", default=[], help="a benchmarks/results/quality-*.json to tabulate")
    p.set_defaults(func=cmd_model_card)

    p = sub.add_parser("demo", help="the main job on the embedded sample corpus, offline")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--config", default=str(REPO_ROOT / "configs" / "demo.yaml"))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    if args.quiet:
        import os

        os.environ["TQDM_DISABLE"] = "1"
    from .config import ConfigError
    from .data import DataValidationError

    try:
        return args.func(args)
    except (ConfigError, DataValidationError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
