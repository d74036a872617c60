"""Calibration and label shares of a fine-tuned model, measured on its dev split.

    .venv/bin/python benchmarks/bench_calibration.py --model runs/x/model --data ../shared/data/ans_stance/dev.jsonl \
        --task stance --pair-column claim

* **Calibration**: ECE and NLL of the raw model, and after temperature scaling and bias-corrected
  temperature scaling, each cross-fitted on dev (fitted on 4 folds, measured on the 5th).
* **Shares** (the standard quantification protocol): dev is split at random in two halves (``--splits``
  times); the calibration and the error rates are fitted on one half, and from the other half samples of
  ``--sizes`` rows are drawn at label mixes spread over the simplex (Dirichlet(1), ``--mixes-per-half``),
  with replacement within each label; then the halves swap roles. Each method (CC, PCC, ACC, PACC, EMQ)
  estimates the shares; reported are the mean absolute error against the sample's true shares (overall,
  per label, and its spread over the splits: one split can be lucky) and how often the 90% interval covers
  them. A label with few dev rows is drawn, at a mix far from dev's, as repeats of a handful of held-out
  rows: the protocol is harsher on it than an archive would be.

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
    parser.add_argument("--splits", type=int, default=10, help="random halvings of dev")
    parser.add_argument("--mixes-per-half", type=int, default=5, help="label mixes drawn per half of each split")
    parser.add_argument("--replicates", type=int, default=100, help="bootstrap replicates per interval")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", help="an .npz of the dev logits: written when missing, read when present")
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
    from aranews.training.calibration import _softmax, fit

    figures = {}
    for method in ("temperature", "bias_corrected"):
        found = fit(method, logits, truth)
        figures[method] = {
            "temperature": found.temperature,
            "bias": found.bias,
            **found.figures,
            "ece_floor": _ece_floor(_softmax(found.apply(logits))),
        }
    return figures


def _ece_floor(probs: np.ndarray, draws: int = 200, seed: int = 0) -> dict:
    """The ECE a perfectly calibrated model shows on this many rows: labels drawn from the calibrated
    probabilities themselves (so calibrated by construction), ECE measured as for the model; mean and 90th
    percentile over ``draws``. A measured ECE near it is as good as this dev set can tell."""
    from aranews.training.calibration import ece

    rng = np.random.default_rng(seed)
    cumulative = probs.cumsum(axis=1)
    values = []
    for _ in range(draws):
        drawn = (rng.random((len(probs), 1)) > cumulative).sum(axis=1).clip(max=probs.shape[1] - 1)
        values.append(ece(probs, drawn))
    return {"mean": round(float(np.mean(values)), 4), "p90": round(float(np.percentile(values, 90)), 4)}


def _samples(truth: np.ndarray, held: np.ndarray, k: int, args: argparse.Namespace, rng: np.random.Generator):
    """Samples of each size at label mixes drawn from Dirichlet(1), with replacement within each label."""
    pools = [np.flatnonzero(held & (truth == j)) for j in range(k)]
    for _ in range(args.mixes_per_half):
        mix = rng.dirichlet(np.ones(k))
        for n in args.sizes:
            counts = rng.multinomial(n, mix)
            rows = np.concatenate([rng.choice(pools[j], size=c) for j, c in enumerate(counts) if c and len(pools[j])])
            yield n, rows


def _quantification(logits: np.ndarray, truth: np.ndarray, args: argparse.Namespace) -> dict:
    from aranews.inference.shares import METHODS, DevRates, estimate_shares
    from aranews.training.calibration import _softmax, fit

    rng = np.random.default_rng(args.seed)
    k = logits.shape[1]
    errors = {(m, n): [] for m in METHODS for n in args.sizes}  # per sample: per-label absolute errors
    covered = {(m, n): [] for m in METHODS for n in args.sizes}
    split_of = {n: [] for n in args.sizes}
    for split in range(args.splits):
        halves = rng.permutation(len(truth)) % 2
        for fit_half in (0, 1):
            fitted, held = halves == fit_half, halves != fit_half
            calibration = fit("temperature", logits[fitted], truth[fitted])
            probs = _softmax(calibration.apply(logits))
            dev = DevRates(truth[fitted], probs[fitted])
            for n, rows in _samples(truth, held, k, args, rng):
                true = np.bincount(truth[rows], minlength=k) / len(rows)
                split_of[n].append(split)
                for method in METHODS:
                    got = estimate_shares(
                        method, probs[rows], [str(j) for j in range(k)], dev, replicates=args.replicates
                    )["labels"]
                    share, low, high = (
                        np.array([got[str(j)][key] for j in range(k)]) for key in ("share", "low", "high")
                    )
                    errors[(method, n)].append(np.abs(share - true))
                    covered[(method, n)].append((low <= true) & (true <= high))
    figures = {}
    for (method, n), errs in errors.items():
        errs, cover, splits = np.array(errs), np.array(covered[(method, n)]), np.array(split_of[n])
        per_split = [errs[splits == s].mean() for s in range(args.splits)]
        figures[f"{method}@{n}"] = {
            "mae": round(float(errs.mean()), 4),
            "mae_split_sd": round(float(np.std(per_split)), 4),
            "mae_split_range": [round(float(min(per_split)), 4), round(float(max(per_split)), 4)],
            "mae_per_label": errs.mean(axis=0).round(4).tolist(),
            "coverage_90": round(float(cover.mean()), 3),
            "coverage_90_per_label": cover.mean(axis=0).round(3).tolist(),
            "samples": len(errs),
        }
    return figures


def main() -> None:
    args = build_parser().parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sklearn.metrics import f1_score

    from aranews.inference.runtime import cpu_name, speed_flags

    started = time.perf_counter()
    if args.cache and Path(args.cache).exists():
        with np.load(args.cache) as cached:
            logits, truth, labels = cached["logits"], cached["truth"], [str(x) for x in cached["labels"]]
    else:
        logits, truth, labels = _dev_logits(args)
        if args.cache:
            np.savez(args.cache, logits=logits, truth=truth, labels=np.array(labels))
    record = {
        "what": "calibration (cross-fitted on dev) and label shares (quantification protocol on dev halves)",
        "model": args.model,
        "data": args.data,
        "task": args.task,
        "labels": labels,
        "dev_rows": len(truth),
        "dev_shares": (np.bincount(truth, minlength=len(labels)) / len(truth)).round(4).tolist(),
        "dev_macro_f1": round(float(f1_score(truth, logits.argmax(1), average="macro")), 4),
        "calibration": _calibration(logits, truth),
        "shares": _quantification(logits, truth, args),
        "splits": args.splits,
        "mixes": 2 * args.splits * args.mixes_per_half,
        "replicates": args.replicates,
        "cpu": cpu_name(),
        "cpu_flags": speed_flags(),
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
            f"NLL {figures['nll_before']:.3f} -> {figures['nll_after_cross_fitted']:.3f}  "
            f"(a perfectly calibrated model: ECE {figures['ece_floor']['mean']:.3f} on these rows)"
        )
    for key, figures in record["shares"].items():
        print(f"{key:10} MAE {figures['mae']:.4f}  coverage of 90% intervals {figures['coverage_90']:.2f}")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
