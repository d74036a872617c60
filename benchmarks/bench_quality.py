"""Dev-set quality of a fine-tuned *pretrained* encoder beside the TF-IDF baseline, on a public data set.

    .venv/bin/python benchmarks/bench_quality.py --dataset ../shared/data/ant_multisource --task topic \\
        --encoder /tmp/e5-small-hf --train-limit 1200 --max-length 256 --epochs 2

The data set is read by path (never copied into the project); a seeded subsample of its train split
trains both models, and its dev split evaluates them (dev rows that duplicate a training input are
dropped and counted in the result, since the library refuses such leakage). AraBERT itself cannot be downloaded here, so
``--encoder`` points at another pretrained encoder (multilingual-e5-small, built offline by
``../shared/tools/pretrained_backbone/build.sh``). Prints the figures and writes
``benchmarks/results/quality-<dataset>-<task>.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _subsample(src: Path, dst: Path, limit: int | None, seed: int) -> int:
    rows = [json.loads(line) for line in src.open(encoding="utf-8") if line.strip()]
    if limit and limit < len(rows):
        rows = random.Random(seed).sample(rows, limit)
    dst.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return len(rows)


def _drop_leaked(train: Path, dev: Path, pair_column: str | None) -> int:
    """Remove dev rows whose input (text, and pair) also occurs in train; return how many (recorded)."""

    def key(r: dict) -> tuple:
        return (" ".join(r["text"].split()), r.get(pair_column) if pair_column else None)

    seen = {key(json.loads(line)) for line in train.open(encoding="utf-8")}
    rows = [json.loads(line) for line in dev.open(encoding="utf-8")]
    kept = [r for r in rows if key(r) not in seen]
    dev.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept), encoding="utf-8")
    return len(rows) - len(kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, help="a folder with train.jsonl and dev.jsonl")
    parser.add_argument("--task", required=True, help="label column, e.g. topic or stance")
    parser.add_argument("--pair-column", help="target / claim column for conditioned stance")
    parser.add_argument("--encoder", required=True)
    parser.add_argument("--train-limit", type=int, default=None)
    parser.add_argument("--dev-limit", type=int, default=None)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--long-document", default="head_tail", choices=["head", "head_tail", "chunks"])
    parser.add_argument("--max-chunks", type=int, default=4)
    parser.add_argument("--stride", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--out")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from aranews.training.config import config_from_dict
    from aranews.training.trainer import Trainer

    dataset = Path(args.dataset).resolve()
    name = f"{dataset.name}-{args.task}" + (f"-{args.long_document}" if args.long_document != "head_tail" else "")
    with tempfile.TemporaryDirectory() as tmp:
        n_train = _subsample(dataset / "train.jsonl", Path(tmp) / "train.jsonl", args.train_limit, args.seed)
        n_dev = _subsample(dataset / "dev.jsonl", Path(tmp) / "dev.jsonl", args.dev_limit, args.seed)
        leaked = _drop_leaked(Path(tmp) / "train.jsonl", Path(tmp) / "dev.jsonl", args.pair_column)
        n_dev -= leaked
        task = {"name": args.task, "class_weights": "balanced"}
        if args.pair_column:
            task["pair_column"] = args.pair_column
        config = config_from_dict(
            {
                "data": {"train": f"{tmp}/train.jsonl", "dev": f"{tmp}/dev.jsonl", "title_column": None},
                "tasks": [task],
                "model": {
                    "encoder": args.encoder,
                    "max_length": args.max_length,
                    "pair_max_length": min(64, args.max_length // 4),
                    "long_document": {
                        "strategy": args.long_document,
                        "head_tokens": args.max_length // 4,
                        "max_chunks": args.max_chunks,
                        "stride": args.stride,
                    },
                    "pooling": "mean",
                },
                "training": {
                    "output_dir": f"{tmp}/run",
                    "epochs": args.epochs,
                    "batch_size": args.batch_size,
                    "learning_rate": args.learning_rate,
                    "head_learning_rate": 1e-3,
                    "seed": args.seed,
                    "resume": False,
                    "early_stopping_patience": 0,
                    "progress": False,
                },
            }
        )
        started = time.perf_counter()
        result = Trainer(config).train()
        seconds = time.perf_counter() - started
        report = json.loads((result.output_dir / "report" / "report.json").read_text(encoding="utf-8"))
    transformer, baseline = report["tasks"][args.task], report["baseline"]["tasks"][args.task]
    record = {
        "dataset": str(dataset),
        "task": args.task,
        "split_evaluated": "dev",
        "n_train": n_train,
        "n_dev": n_dev,
        "dev_rows_dropped_as_train_duplicates": leaked,
        "encoder": args.encoder,
        "max_length": args.max_length,
        "long_document": args.long_document,
        "max_chunks": args.max_chunks if args.long_document == "chunks" else None,
        "epochs": args.epochs,
        "model": result.metrics["config"]["model"],
        "versions": result.metrics["versions"],
        "best_epoch": result.metrics["best_epoch"],
        "seed": args.seed,
        "transformer": {k: transformer[k] for k in ("accuracy", "macro_f1", "micro_f1", "weighted_f1")}
        | {"ece": transformer["calibration"]["ece"]},
        "baseline": {"name": report["baseline"]["name"]}
        | {k: baseline[k] for k in ("accuracy", "macro_f1", "micro_f1", "weighted_f1")},
        "per_epoch_dev_macro_f1": [e["dev"][args.task]["macro_f1"] for e in result.metrics["epochs"]],
        "truncation": result.metrics["data"],
        "train_seconds": round(seconds, 1),
        "machine": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"quality-{name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    t, b = record["transformer"], record["baseline"]
    print(f"{name}: n_train={n_train} n_dev={n_dev} encoder={Path(args.encoder).name} max_length={args.max_length}")
    print(f"  fine-tuned encoder: accuracy {t['accuracy']:.4f}  macro-F1 {t['macro_f1']:.4f}  ECE {t['ece']:.4f}")
    print(f"  TF-IDF baseline   : accuracy {b['accuracy']:.4f}  macro-F1 {b['macro_f1']:.4f}")
    print(f"  train + evaluate: {seconds:.0f} s; written to {out}")


if __name__ == "__main__":
    main()
