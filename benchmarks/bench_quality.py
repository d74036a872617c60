"""Quality of a fine-tuned pretrained encoder beside the TF-IDF baseline, on a public data set.

    .venv/bin/python benchmarks/bench_quality.py --dataset ../shared/data/mawqif_stance --task stance \\
        --pair-column target --encoder /tmp/e5-small-hf --max-length 128 --epochs 5

Runs the library's own training code (``Trainer`` on an ``ExperimentConfig``) on a folder in the layout
of ``../shared/data`` (``train.jsonl``, ``dev.jsonl`` and, when given, a test file), read by path and never
copied into the project. The whole train split trains both the fine-tuned encoder and the TF-IDF
baseline (``--train-limit`` caps it, seeded, for a budget); the best epoch is selected on the whole dev
split. Dev rows whose input duplicates a training row are dropped and counted (the library refuses such
leakage). Reports, for dev (and test): accuracy, macro-F1, per-class F1 and ECE of both models, wall time
per epoch, the hardware and the exact settings; prints them and writes
``benchmarks/results/quality-<dataset>-<task>[-<tag>].json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import write_result

ROOT = Path(__file__).resolve().parent.parent


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def _write(path: Path, rows: list[dict[str, Any]]) -> int:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return len(rows)


def _key(row: dict[str, Any], pair_column: str | None) -> tuple:
    return (" ".join(row["text"].split()), row.get(pair_column) if pair_column else None)


def train_and_dev(dataset: Path, pair_column: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A data set's train rows and its dev rows without those that repeat a training row (text and pair)."""
    train = _rows(dataset / "train.jsonl")
    seen = {_key(r, pair_column) for r in train}
    return train, [r for r in _rows(dataset / "dev.jsonl") if _key(r, pair_column) not in seen]


def _prepare(dataset: Path, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Train (capped if asked), dev and test files without leakage; sizes and what was dropped."""
    train = _rows(dataset / "train.jsonl")
    if args.train_limit and args.train_limit < len(train):
        train = random.Random(args.seed).sample(train, args.train_limit)
    seen = {_key(r, args.pair_column) for r in train}
    sizes: dict[str, Any] = {"train": _write(tmp / "train.jsonl", train), "dropped_as_train_duplicates": {}}
    for split, path in (("dev", dataset / "dev.jsonl"), ("test", Path(args.test) if args.test else None)):
        if path is None:
            continue
        rows = _rows(path)
        kept = [r for r in rows if _key(r, args.pair_column) not in seen]
        sizes[split] = _write(tmp / f"{split}.jsonl", kept)
        sizes["dropped_as_train_duplicates"][split] = len(rows) - len(kept)
    return sizes


def _config(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    task: dict[str, Any] = {"name": args.task, "class_weights": args.class_weights}
    if args.pair_column:
        task["pair_column"] = args.pair_column
    return {
        "data": {
            "train": f"{tmp}/train.jsonl",
            "dev": f"{tmp}/dev.jsonl",
            "test": f"{tmp}/test.jsonl" if args.test else None,
            "title_column": None,
        },
        "tasks": [task],
        "model": {
            "encoder": args.encoder,
            "preprocessing": args.preprocessing,
            "max_length": args.max_length,
            "pair_max_length": min(64, args.max_length // 4),
            "long_document": {
                "strategy": args.long_document,
                "head_tokens": args.max_length // 4,
                "max_chunks": args.max_chunks,
                "stride": args.stride,
            },
            "pooling": args.pooling,
        },
        "training": {
            "output_dir": f"{tmp}/run",
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "eval_batch_size": 64,
            "learning_rate": args.learning_rate,
            "head_learning_rate": args.head_learning_rate,
            "layer_lr_decay": args.layer_lr_decay,
            "freeze_embeddings": args.freeze_embeddings,
            "group_by_length": args.group_by_length,
            "ema_decay": args.ema_decay,
            "warmup_ratio": args.warmup_ratio,
            "mixed_precision": args.mixed_precision,
            "seed": args.seeds[0] if args.seeds else args.seed,
            "seeds": args.seeds,
            "seed_selection": "best" if args.seed_selection == "best" else "soup",
            "resume": bool(args.seeds),  # a fresh folder; with seeds, the second selection reuses the runs
            "early_stopping_patience": args.early_stopping,
            "progress": False,
            "device": args.device,
        },
    }


def _hardware() -> dict[str, Any]:
    import torch

    from aranews.inference.runtime import cpu_name, speed_flags

    cpu = cpu_name()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu,
        "cpu_flags": speed_flags(),
        "cpu_count": os.cpu_count(),
        "gpu": gpu,
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


def _figures(report: dict[str, Any]) -> dict[str, Any]:
    keep = ("n", "accuracy", "macro_f1", "micro_f1", "weighted_f1")
    out = {k: report[k] for k in keep if k in report}
    out["per_class_f1"] = {label: c["f1"] for label, c in report.get("per_class", {}).items()}
    if "calibration" in report:
        out["ece"] = report["calibration"]["ece"]
    return out


def _evaluate_test(result, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    from aranews.inference.classifier import load_classifier
    from aranews.training.data import encode_split, load_and_validate
    from aranews.training.evaluation import build_report

    config = result.metrics["config"]
    from aranews.training.config import config_from_dict

    experiment = config_from_dict(config)
    train, evals, _ = load_and_validate(experiment.data, experiment.tasks, experiment.model.title)
    clf = load_classifier(result.model_dir)
    report = build_report(
        clf, encode_split(clf.windower, evals["test"], clf.tasks), tmp / "test-report", train=train, split_name="test"
    )
    return {
        "transformer": _figures(report["tasks"][args.task]),
        "baseline": _figures(report["baseline"]["tasks"][args.task]),
    }


FUSION_WEIGHTS = [i / 20 for i in range(21)]


def _macro_f1(truth: Any, pred: Any, n_labels: int) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(truth, pred, labels=list(range(n_labels)), average="macro", zero_division=0))


def _best_weight(p_model: Any, p_base: Any, truth: Any) -> float:
    """The transformer's weight in ``w * p_model + (1 - w) * p_base`` with the best macro-F1 on these rows."""
    n = p_model.shape[1]
    scores = [_macro_f1(truth, (w * p_model + (1 - w) * p_base).argmax(1), n) for w in FUSION_WEIGHTS]
    return FUSION_WEIGHTS[max(range(len(scores)), key=lambda i: (scores[i], FUSION_WEIGHTS[i]))]


def _fusion(result, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Calibrated averaging of the fine-tuned model and the TF-IDF baseline, its weight fitted on dev.

    The dev figure is cross-fitted: dev is split in 5 stratified folds, the weight is chosen on four and
    applied to the fifth, so no dev row is scored with a weight chosen on itself. The weight chosen on
    the whole of dev is the one a test split (when given) is scored with.
    """
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    from aranews.inference.classifier import load_classifier
    from aranews.training.baseline import TfidfBaseline
    from aranews.training.config import config_from_dict
    from aranews.training.data import encode_split, load_and_validate
    from aranews.training.evaluation import predict_split

    experiment = config_from_dict(result.metrics["config"])
    train, evals, _ = load_and_validate(experiment.data, experiment.tasks, experiment.model.title)
    clf = load_classifier(result.model_dir)
    task = next(t for t in clf.tasks if t.name == args.task)
    baseline = TfidfBaseline(clf.config.model.preprocessing)  # as the report fits it
    pair = task.pair_column
    baseline.fit(task, train.texts, train.labels[task.name], train.pairs.get(pair) if pair else None)

    def probs(split):
        p_model = predict_split(clf, encode_split(clf.windower, split, clf.tasks))[task.name]
        p_base = baseline.predict_proba(task.name, split.texts, split.pairs.get(pair) if pair else None)
        truth = np.asarray([task.labels.index(y) for y in split.labels[task.name]])
        return p_model, p_base, truth

    p_model, p_base, truth = probs(evals["dev"])
    n = len(task.labels)
    cross = np.zeros_like(truth)
    weights = []
    for fit, held in StratifiedKFold(5, shuffle=True, random_state=args.seed).split(truth, truth):
        w = _best_weight(p_model[fit], p_base[fit], truth[fit])
        weights.append(w)
        cross[held] = (w * p_model[held] + (1 - w) * p_base[held]).argmax(1)
    weight = _best_weight(p_model, p_base, truth)
    out: dict[str, Any] = {
        "method": "w * p_transformer + (1 - w) * p_tfidf, w on a 0.05 grid chosen for dev macro-F1",
        "weight": weight,
        "fold_weights": weights,
        "dev_macro_f1_cross_fitted": _macro_f1(truth, cross, n),
        "dev_accuracy_cross_fitted": float((cross == truth).mean()),
        "dev_macro_f1_transformer": _macro_f1(truth, p_model.argmax(1), n),
        "dev_macro_f1_baseline": _macro_f1(truth, p_base.argmax(1), n),
    }
    if "test" in evals:
        t_model, t_base, t_truth = probs(evals["test"])
        out["test_macro_f1"] = _macro_f1(t_truth, (weight * t_model + (1 - weight) * t_base).argmax(1), n)
    return out


def _citation(dataset: Path) -> dict[str, str]:
    readme = dataset / "README.md"
    if not readme.is_file():
        return {}
    text = readme.read_text(encoding="utf-8")
    licence = text.split("## License", 1)[1].split("\n## ", 1)[0].strip() if "## License" in text else ""
    papers = [
        line.strip("- ").strip()
        for line in text.splitlines()
        if line.strip("- ").startswith(("Paper", "Repository", "Original corpus"))
    ]
    return {"readme": str(readme), "licence": licence[:400], "sources": " | ".join(papers)[:600]}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, help="a folder with train.jsonl and dev.jsonl")
    parser.add_argument("--task", required=True, help="label column, e.g. topic or stance")
    parser.add_argument("--pair-column", help="target / claim column for conditioned stance")
    parser.add_argument("--test", help="a labelled test file, evaluated once with the selected model")
    parser.add_argument("--encoder", required=True, help="pretrained encoder directory or hub id")
    parser.add_argument("--train-limit", type=int, help="cap the train split (seeded) for a budget")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--long-document", default="head_tail", choices=["head", "head_tail", "chunks"])
    parser.add_argument("--max-chunks", type=int, default=4)
    parser.add_argument("--stride", type=int, default=32)
    parser.add_argument("--pooling", default="cls", choices=["cls", "mean"])
    parser.add_argument("--preprocessing", nargs="*", default=["strip_boilerplate", "arabert_v02"])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--early-stopping", type=int, default=2, help="epochs without dev gain before stopping")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--head-learning-rate", type=float)
    parser.add_argument("--layer-lr-decay", type=float, default=1.0)
    parser.add_argument("--freeze-embeddings", action="store_true")
    parser.add_argument(
        "--group-by-length", action="store_true", help="batches of similar lengths (the library default is off)"
    )
    parser.add_argument(
        "--ema-decay", type=float, help="select and save a moving average of the weights (the library default is off)"
    )
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--class-weights", default="balanced", choices=["none", "balanced"])
    parser.add_argument("--mixed-precision", default="auto", choices=["auto", "no", "fp16", "bf16"])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        help="the seed lottery (training.seeds): one run per seed from the first seed's initial weights, one kept",
    )
    parser.add_argument(
        "--seed-selection",
        default="best",
        choices=["soup", "best", "both"],
        help="with --seeds: the model kept (training.seed_selection); both: the soup, then the best run, "
        "from the same runs (trained once)",
    )
    parser.add_argument(
        "--fusion", action="store_true", help="also report the transformer averaged with TF-IDF, fitted on dev"
    )
    parser.add_argument("--keep-model", help="copy the fine-tuned model directory here")
    parser.add_argument("--tag", help="suffix of the result file name")
    parser.add_argument("--out", help="result file (default benchmarks/results/quality-<dataset>-<task>[-<tag>].json)")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from aranews.training.config import config_from_dict
    from aranews.training.trainer import Trainer

    dataset = Path(args.dataset).resolve()
    name = f"{dataset.name}-{args.task}" + (f"-{args.tag}" if args.tag else "")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        sizes = _prepare(dataset, tmp, args)
        started = time.perf_counter()
        config = _config(tmp, args)
        result = Trainer(config_from_dict(config)).train()
        seconds = time.perf_counter() - started
        report = _report(result)
        test = _evaluate_test(result, tmp, args) if args.test else None
        fusion = _fusion(result, tmp, args) if args.fusion else None
        if args.keep_model:  # e.g. for aranews check-precision on this model
            import shutil

            shutil.copytree(result.model_dir, args.keep_model, dirs_exist_ok=True)
        lottery = _lottery(result, config, args) if args.seeds else None  # last: "both" rewrites the run's folder
    record = {
        "dataset": str(dataset),
        "task": args.task,
        "pair_column": args.pair_column,
        "sizes": sizes,
        "n_train": sizes["train"],
        "n_dev": sizes["dev"],
        "encoder": args.encoder,
        "max_length": args.max_length,
        "long_document": args.long_document,
        "epochs": args.epochs,
        "best_epoch": result.metrics["best_epoch"],
        "seed": args.seeds[0] if args.seeds else args.seed,
        "seeds": lottery,
        "transformer": _figures(report["tasks"][args.task]),
        "baseline": {"name": report["baseline"]["name"]} | _figures(report["baseline"]["tasks"][args.task]),
        "test": test,
        "fusion": fusion,
        "per_epoch": [
            {
                "epoch": e["epoch"],
                "dev_macro_f1": e["dev"].get(args.task, {}).get("macro_f1"),  # few-shot: the last epoch only
                "seconds": e["seconds"],
                "train_loss": e["train_loss"],
            }
            for e in result.metrics["epochs"]
        ],
        "truncation": result.metrics["data"],
        "train_seconds": round(seconds, 1),
        "mixed_precision": result.metrics["mixed_precision"],
        "device": result.metrics["device"],
        "hardware": _hardware(),
        "settings": result.metrics["config"],
        "model": result.metrics["config"]["model"],
        "versions": result.metrics["versions"],
        "data_citation": _citation(dataset),
        "command": _command_line(args),
    }
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"quality-{name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_result(out, record)
    _print_record(name, record, args, out)


def _report(result: Any) -> dict[str, Any]:
    """The evaluation report a training run wrote on dev."""
    return json.loads((result.output_dir / "report" / "report.json").read_text(encoding="utf-8"))


def _lottery(result: Any, config: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The seed lottery's runs (each one's dev score and best epoch) and the dev figures of what was kept; with
    ``--seed-selection both``, the best run too, kept from the same finished runs (nothing trained again)."""
    from aranews.training.config import config_from_dict
    from aranews.training.trainer import Trainer

    def kept(outcome: Any) -> dict[str, Any]:
        return {"kept": outcome.metrics["recipe"]["seeds"]["kept"]} | _figures(_report(outcome)["tasks"][args.task])

    summary = dict(result.metrics["recipe"]["seeds"])
    selections = {config["training"]["seed_selection"]: kept(result)}
    if args.seed_selection == "both":
        config["training"]["seed_selection"] = "best"
        selections["best"] = kept(Trainer(config_from_dict(config)).train())
    return {"runs": summary["runs"], "dev_score_mean": summary["dev_score_mean"], "selections": selections}


def _command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run (its options as given)."""
    return "python benchmarks/bench_quality.py " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        if not isinstance(v, bool)
        else f"--{k.replace('_', '-')}"
        for k, v in vars(args).items()
        if v not in (None, False) and k != "out"
    )


def _print_record(name: str, record: dict[str, Any], args: argparse.Namespace, out: Path) -> None:
    t, b, sizes, fusion = record["transformer"], record["baseline"], record["sizes"], record["fusion"]
    print(
        f"{name}: train {sizes['train']} dev {sizes['dev']} encoder={Path(args.encoder).name} max_length={args.max_length}"
    )
    print(
        f"  fine-tuned: accuracy {t['accuracy']:.4f}  macro-F1 {t['macro_f1']:.4f}  ECE {t['ece']:.4f}  best epoch {record['best_epoch']}"
    )
    print(
        f"  baseline  : accuracy {b['accuracy']:.4f}  macro-F1 {b['macro_f1']:.4f}  gain {t['macro_f1'] - b['macro_f1']:+.4f}"
    )
    if fusion:
        print(
            f"  fusion    : macro-F1 {fusion['dev_macro_f1_cross_fitted']:.4f} (cross-fitted on dev, weight {fusion['weight']})"
        )
    hardware = record["hardware"]
    print(f"  {record['train_seconds']:.0f} s on {hardware['gpu'] or hardware['cpu']}; written to {out}")


if __name__ == "__main__":
    main()
