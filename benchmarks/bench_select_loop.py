"""Does ``aranews select`` save labels? The labelling loop simulated against picking at random.

    .venv/bin/python benchmarks/bench_select_loop.py --dataset ../shared/data/ant_multisource --task topic \
        --encoder runs/demo/e5-small --start 8 --add 24 --rounds 5 --seeds 13 14 15

Per seed: start from ``--start`` labelled rows per label drawn from train; then ``--rounds`` rounds, each
adding ``--add`` rows chosen from the rest of train (whose labels are revealed only when picked) either by
``select_for_labelling`` (margin uncertainty, k-means diversity, the library's defaults) with the model of
the round before, or at random; each round retrains from the encoder with the library's few-shot recipe (as
by default: its pair stage, then the heads) and scores the whole dev split (macro-F1). Writes ``benchmarks/results/select_loop-<data>-<task>.json``: the
curve of dev macro-F1 against labels used for both, per seed and on average, and how many labels random
picking needs to reach select's final figure (and the other way round).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_few_shot import _library, _sample
from bench_quality import _write, train_and_dev
from results_io import write_result

ROOT = Path(__file__).resolve().parent.parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--pair-column")
    parser.add_argument("--encoder", required=True)
    parser.add_argument("--start", type=int, default=8, help="labelled rows per label to start from")
    parser.add_argument("--add", type=int, default=24, help="rows added per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15])
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--pooling", choices=["cls", "mean"], default="mean")
    parser.add_argument("--preprocessing", nargs="*", default=["strip_boilerplate", "arabert_v02"])
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--few-shot-steps", type=int, default=100)
    parser.add_argument(
        "--class-weights",
        choices=["none", "balanced"],
        default="balanced",
        help="the task's class_weights (balanced, as configs/default.yaml: the rows picked need not be balanced)",
    )
    parser.add_argument("--out")
    return parser


def _pick_by_select(model_dir: Path, pool: list[dict], n: int, tmp: Path, args, seed: int) -> list[dict]:
    from aranews.inference import load_classifier
    from aranews.inference.selection import select_for_labelling

    unlabelled = [{k: v for k, v in r.items() if k != args.task} for r in pool]
    _write(tmp / "pool.jsonl", unlabelled)
    classifier = load_classifier(model_dir, device="cpu")
    picks, _ = select_for_labelling(classifier, tmp / "pool.jsonl", n, seed=seed)
    chosen = {str(c.record["id"]) for c in picks}
    return [r for r in pool if str(r["id"]) in chosen]


def _loop(
    strategy: str, train_rows: list[dict], dev_rows: list[dict], seed: int, args, tmp: Path,
    first: dict | None = None,
) -> list[dict]:  # fmt: skip
    """One simulated loop: dev macro-F1 after each round, with the labels used so far. ``first``: the round-0
    point another strategy already trained (the same rows and seed give the same model: it is not trained
    again; random picking needs no model to pick from)."""
    labelled = _sample(train_rows, args.task, args.start, seed)
    rng = random.Random(seed)
    curve = []
    for round_ in range(args.rounds + 1):
        if round_ == 0 and first is not None:
            curve.append(dict(first))
        else:
            _write(tmp / "train.jsonl", labelled)
            _write(tmp / "dev.jsonl", dev_rows)
            started = time.perf_counter()
            score, _ = _library("few_shot_contrastive", tmp, args, seed)
            curve.append({"round": round_, "labels": len(labelled), "macro_f1": round(score, 4),
                          "seconds": round(time.perf_counter() - started, 1)})  # fmt: skip
        print(f"{strategy} seed={seed} round {round_}: {len(labelled)} labels, macro-F1 {curve[-1]['macro_f1']:.3f}",
              flush=True)  # fmt: skip
        if round_ == args.rounds:
            break
        taken = {str(r["id"]) for r in labelled}
        pool = [r for r in train_rows if str(r["id"]) not in taken]
        if strategy == "select":
            added = _pick_by_select(tmp / "run-few_shot_contrastive" / "model", pool, args.add, tmp, args, seed)
        else:
            added = rng.sample(pool, min(args.add, len(pool)))
        labelled = labelled + added
    return curve


def _labels_to_reach(curve: list[dict], target: float) -> int | None:
    return next((p["labels"] for p in curve if p["macro_f1"] >= target), None)


def main() -> None:
    args = build_parser().parse_args()
    args.epochs, args.early_stopping = 1, 0  # unused by the few-shot recipe (it runs few_shot_steps)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from aranews.inference.runtime import cpu_name

    dataset = Path(args.dataset)
    train_rows, dev_rows = train_and_dev(dataset, args.pair_column)
    curves: dict[str, dict[int, list[dict]]] = {"select": {}, "random": {}}
    with tempfile.TemporaryDirectory() as tmp_name:
        for seed in args.seeds:
            curves["select"][seed] = _loop("select", train_rows, dev_rows, seed, args, Path(tmp_name))
            first = curves["select"][seed][0]
            curves["random"][seed] = _loop("random", train_rows, dev_rows, seed, args, Path(tmp_name), first)
    summary: dict[str, Any] = {}
    for seed in args.seeds:
        final_select = curves["select"][seed][-1]
        summary[str(seed)] = {
            "select_final": final_select["macro_f1"],
            "random_final": curves["random"][seed][-1]["macro_f1"],
            "labels_random_needs_for_selects_final": _labels_to_reach(curves["random"][seed], final_select["macro_f1"]),
            "labels_select_needs_for_randoms_final": _labels_to_reach(
                curves["select"][seed], curves["random"][seed][-1]["macro_f1"]
            ),
        }
    record = {
        "what": "dev macro-F1 against labels used, rows chosen by aranews select or at random, few-shot recipe",
        "dataset": args.dataset,
        "task": args.task,
        "start_per_label": args.start,
        "added_per_round": args.add,
        "rounds": args.rounds,
        "class_weights": args.class_weights,
        "curves": {s: {str(k): v for k, v in c.items()} for s, c in curves.items()},
        "summary": summary,
        "cpu": cpu_name(),
        "command": "python benchmarks/bench_select_loop.py " + " ".join(sys.argv[1:]),
    }
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"select_loop-{dataset.name}-{args.task}.json")
    write_result(out, record)
    print(json.dumps(summary, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
