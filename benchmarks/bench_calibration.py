"""Calibration and label shares of a fine-tuned model, measured on its dev split.

    .venv/bin/python benchmarks/bench_calibration.py --model runs/x/model --data ../shared/data/ans_stance/dev.jsonl \
        --task stance --pair-column claim

* **Calibration**: ECE and NLL of the raw model, and after temperature scaling and bias-corrected
  temperature scaling, each cross-fitted on dev (fitted on 4 folds, measured on the 5th).
* **Shares** (the standard quantification protocol): dev is split in two halves; the calibration and the
  error rates are fitted on one half, and from the other half samples of ``--sizes`` rows are drawn at
  ``--mixes`` label mixes spread over the simplex (Dirichlet(1)), with replacement within each label. Each
  method (CC, PCC, ACC, PACC, EMQ) estimates the shares; reported are the mean absolute error against the
  sample's true shares and how often the 90% interval covers them. Then the halves swap roles.

Writes ``benchmarks/results/calibration-<data>-<task>.json`` with the machine's processor.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import write_result

ROOT = Path(__file__).resolve().parent.parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True, help="the dev split (JSON Lines with the task's label column)")
    parser.add_argument("--task", required=True)
    parser.add_argument("--pair-column", help="claim or target, for pair-conditioned tasks")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--mixes", type=int, default=50)
    parser.add_argument("--replicates", type=int, default=100, help="bootstrap replicates per interval")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out")
    return parser


def _dev_logits(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from aranews.inference import load_classifier

    clf = load_classifier(args.model, device="cpu", precision="fp32")
    task = clf.config.task(args.task)
    rows = [json.loads(line) for line in Path(args.data).read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r.get(args.task) in task.labels]
    pairs = {args.pair_column: [r[args.pair_column] for r in rows]} if args.pair_column else None
    prepared = clf.prepare(
        [r["text"] for r in rows], titles=[r.get("title") for r in rows], pairs=pairs, tasks=[args.task]
    )
    (_group, index, encoded) = next(g for g in prepared.groups if args.task in g[0])
    logits = clf.logits_from_encoded(encoded, [args.task])[args.task]  # raw: the model before calibration
    truth = np.array([task.labels.index(rows[i][args.task]) for i in index])
    return logits, truth, list(task.labels)


def _calibration(logits: np.ndarray, truth: np.ndarray) -> dict:
    from aranews.training.calibration import fit

    figures = {}
    for method in ("temperature", "bias_corrected"):
        found = fit(method, logits, truth)
        figures[method] = {"temperature": found.temperature, "bias": found.bias, **found.figures}
    return figures


def _quantification(logits: np.ndarray, truth: np.ndarray, args: argparse.Namespace) -> dict:
    from aranews.inference.shares import METHODS, DevRates, estimate_shares
    from aranews.training.calibration import _softmax, fit

    rng = np.random.default_rng(args.seed)
    halves = rng.permutation(len(truth)) % 2
    k = logits.shape[1]
    errors = {(m, n): [] for m in METHODS for n in args.sizes}
    covered = {(m, n): [] for m in METHODS for n in args.sizes}
    for fit_half in (0, 1):
        fitted, held = halves == fit_half, halves != fit_half
        calibration = fit("temperature", logits[fitted], truth[fitted])
        probs = _softmax(calibration.apply(logits))
        dev = DevRates(truth[fitted], probs[fitted])
        pools = [np.flatnonzero(held & (truth == j)) for j in range(k)]
        for _ in range(args.mixes):
            mix = rng.dirichlet(np.ones(k))
            for n in args.sizes:
                counts = rng.multinomial(n, mix)
                rows = np.concatenate(
                    [rng.choice(pools[j], size=c) for j, c in enumerate(counts) if c and len(pools[j])]
                )
                true = np.bincount(truth[rows], minlength=k) / len(rows)
                for method in METHODS:
                    got = estimate_shares(
                        method, probs[rows], [str(j) for j in range(k)], dev, replicates=args.replicates
                    )
                    share = np.array([got["labels"][str(j)]["share"] for j in range(k)])
                    low = np.array([got["labels"][str(j)]["low"] for j in range(k)])
                    high = np.array([got["labels"][str(j)]["high"] for j in range(k)])
                    errors[(method, n)].append(float(np.abs(share - true).mean()))
                    covered[(method, n)].append(float(((low <= true) & (true <= high)).mean()))
    return {
        f"{m}@{n}": {
            "mae": round(float(np.mean(errors[(m, n)])), 4),
            "coverage_90": round(float(np.mean(covered[(m, n)])), 3),
        }
        for m in METHODS
        for n in args.sizes
    }


def main() -> None:
    args = build_parser().parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from aranews.inference.runtime import cpu_flags, cpu_name

    started = time.perf_counter()
    logits, truth, labels = _dev_logits(args)
    record = {
        "what": "calibration (cross-fitted on dev) and label shares (quantification protocol on dev halves)",
        "model": args.model,
        "data": args.data,
        "task": args.task,
        "labels": labels,
        "dev_rows": len(truth),
        "dev_shares": (np.bincount(truth, minlength=len(labels)) / len(truth)).round(4).tolist(),
        "calibration": _calibration(logits, truth),
        "shares": _quantification(logits, truth, args),
        "mixes_per_half": args.mixes,
        "replicates": args.replicates,
        "cpu": cpu_name(),
        "cpu_flags": sorted(f for f in cpu_flags() if f.startswith(("avx512", "amx"))),
        "seconds": round(time.perf_counter() - started, 1),
        "command": " ".join(["python benchmarks/bench_calibration.py", *sys.argv[1:]]),
    }
    out = Path(
        args.out or ROOT / "benchmarks" / "results" / f"calibration-{Path(args.data).parent.name}-{args.task}.json"
    )
    write_result(out, record)
    for method, figures in record["calibration"].items():
        print(
            f"{method:15} ECE {figures['ece_before']:.3f} -> {figures['ece_after_cross_fitted']:.3f}  "
            f"NLL {figures['nll_before']:.3f} -> {figures['nll_after_cross_fitted']:.3f}"
        )
    for key, figures in record["shares"].items():
        print(f"{key:10} MAE {figures['mae']:.4f}  coverage of 90% intervals {figures['coverage_90']:.2f}")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
