"""A new label from ten examples: retraining with ``training.init_from``, measured on a public set.

    .venv/bin/python benchmarks/bench_new_label.py --dataset ../shared/data/ant_multisource --task topic \
        --encoder runs/demo/e5-small --new-label technology --old-per-label 64 --new-rows 10 --seeds 13 14 15

Per seed, as an analyst adding a label to a working model would:

1. **the old model** is trained on ``--old-per-label`` rows of each label but ``--new-label`` (drawn from train;
   0: every row), with ``training.recipe: auto``, and scored on dev without the new label's rows (``old_dev``);
2. **the retrained model** starts from it (``training.init_from``) and learns from the same rows plus
   ``--new-rows`` rows of the new label, with ``auto`` again and ``training.previous_dev: old_dev`` (so the
   trainer's forgetting guard compares both models on it, per kept label, with its tolerance);
3. both are scored on the whole dev split: the new label's recall, precision and F1, and each kept label's F1
   before and after (the guard's ``change`` and whether it flagged it).

Writes ``benchmarks/results/new_label-<data>-<task>.json`` with each seed's figures, their mean and the
machine's processor; the seconds are wall time on that machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_few_shot import library_config
from bench_quality import _write, train_and_dev
from results_io import write_result

ROOT = Path(__file__).resolve().parent.parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, help="a folder with train.jsonl and dev.jsonl")
    parser.add_argument("--task", required=True)
    parser.add_argument("--pair-column")
    parser.add_argument("--encoder", required=True)
    parser.add_argument("--new-label", required=True)
    parser.add_argument("--old-per-label", type=int, default=64, help="old model's rows per label (0: all)")
    parser.add_argument("--new-rows", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15])
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--pooling", choices=["cls", "mean"], default="mean")
    parser.add_argument("--preprocessing", nargs="*", default=["strip_boilerplate", "arabert_v02"])
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--epochs", type=int, default=5, help="the standard recipe's, where auto picks it")
    parser.add_argument("--out")
    return parser


def _config(tmp: Path, name: str, dev: str, args, seed: int, **training: Any) -> Any:
    from aranews.training.config import config_from_dict

    settings = {"recipe": "auto", "epochs": args.epochs, "early_stopping_patience": 2, **training}
    return config_from_dict(
        library_config(
            args, tmp, name, seed, train=f"{name}-train.jsonl", dev=dev, task={"class_weights": "balanced"}, **settings
        )
    )


def _one_seed(train_rows: list[dict], dev_rows: list[dict], args, seed: int, tmp: Path) -> dict[str, Any]:
    from aranews.training.trainer import Trainer

    rng = random.Random(seed)
    by_label: dict[str, list[dict]] = {}
    for row in train_rows:
        by_label.setdefault(str(row[args.task]), []).append(row)
    if args.new_label not in by_label:
        raise SystemExit(f"--new-label {args.new_label!r}: not a label of {args.dataset} (has {sorted(by_label)})")
    old = [
        r
        for label in sorted(by_label)
        if label != args.new_label
        for r in (by_label[label] if args.old_per_label == 0 else rng.sample(by_label[label], min(args.old_per_label, len(by_label[label]))))
    ]  # fmt: skip
    new = rng.sample(by_label[args.new_label], args.new_rows)
    _write(tmp / "old-train.jsonl", old)
    _write(tmp / "new-train.jsonl", old + new)
    _write(tmp / "dev.jsonl", dev_rows)
    _write(tmp / "old-dev.jsonl", [r for r in dev_rows if str(r[args.task]) != args.new_label])

    started = time.perf_counter()
    old_metrics = Trainer(_config(tmp, "old", "old-dev.jsonl", args, seed)).train().metrics
    old_seconds = time.perf_counter() - started
    started = time.perf_counter()
    retrain = _config(
        tmp,
        "new",
        "dev.jsonl",
        args,
        seed,
        init_from=str(tmp / "old" / "model"),
        previous_dev=str(tmp / "old-dev.jsonl"),
    )
    new_metrics = Trainer(retrain).train().metrics
    new_seconds = time.perf_counter() - started
    dev = new_metrics["dev"][args.task]
    forgetting = new_metrics["forgetting"]["tasks"][args.task]
    return {
        "seed": seed,
        "old_rows": len(old),
        "new_rows": len(new),
        "old_recipe": old_metrics["recipe"]["name"],
        "retrain_recipe": new_metrics["recipe"]["name"],
        "new_label_start": new_metrics["recipe"].get("new_labels", {}).get(args.task, {}).get(args.new_label),
        "new_label": dev["per_class"][args.new_label],
        "dev_macro_f1": dev["macro_f1"],
        "kept_labels_before": forgetting["previous_macro_f1"],
        "kept_labels_after": forgetting["new_macro_f1"],
        "kept_labels": forgetting["labels"],
        "flagged": forgetting["flagged"],
        "seconds": {"old": round(old_seconds, 1), "retrain": round(new_seconds, 1)},
    }


def main() -> None:
    args = build_parser().parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from aranews.inference.runtime import cpu_name, speed_flags

    dataset = Path(args.dataset)
    train_rows, dev_rows = train_and_dev(dataset, args.pair_column)
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"new_label-{dataset.name}-{args.task}.json")
    runs = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(_one_seed(train_rows, dev_rows, args, seed, Path(tmp)))
        r = runs[-1]
        print(
            f"seed {seed}: {args.new_label} recall {r['new_label']['recall']:.3f} F1 {r['new_label']['f1']:.3f}; "
            f"kept labels macro-F1 {r['kept_labels_before']:.3f} -> {r['kept_labels_after']:.3f}; "
            f"flagged {r['flagged']} ({r['seconds']})",
            flush=True,
        )

        def mean(values: list[float]) -> float:
            return round(statistics.mean(values), 4)

        write_result(
            out,
            {
                "what": f"a new label ({args.new_label}) from {args.new_rows} rows, retrained with init_from",
                "dataset": args.dataset,
                "task": args.task,
                "dev_rows": len(dev_rows),
                "new_label_dev_rows": sum(str(r[args.task]) == args.new_label for r in dev_rows),
                "encoder": args.encoder,
                "max_length": args.max_length,
                "runs": runs,
                "summary": {
                    "new_label_recall": mean([r["new_label"]["recall"] for r in runs]),
                    "new_label_f1": mean([r["new_label"]["f1"] for r in runs]),
                    "kept_labels_before": mean([r["kept_labels_before"] for r in runs]),
                    "kept_labels_after": mean([r["kept_labels_after"] for r in runs]),
                    "flagged": sorted({label for r in runs for label in r["flagged"]}),
                    "seeds": len(runs),
                },
                "cpu": cpu_name(),
                "cpu_flags": speed_flags(),
                "command": "python benchmarks/bench_new_label.py " + " ".join(sys.argv[1:]),
            },
        )
    print(json.dumps(json.loads(out.read_text(encoding="utf-8"))["summary"], indent=1))


if __name__ == "__main__":
    main()
