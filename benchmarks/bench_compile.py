"""Does ``torch.compile`` pay on the bf16 scoring path? Compile time and steady speed, side by side in one run.

    .venv/bin/python benchmarks/bench_compile.py --articles 48 --rounds 4

At AraBERT-base size (the random-weight model and news-like archive of ``bench_scoring.py``), two bf16
classifiers of the same weights in one process: one as the library runs it, one whose encoder is wrapped in
``torch.compile(dynamic=True)`` (the inductor backend; batches come in many lengths, so shapes are dynamic).
Each round scores every article with both, in alternating order, so that a busy machine slows both alike.

Prints and writes (``benchmarks/results/scoring-compile.json``) the first compiled call's seconds (the compile
cost, paid once per process), articles per second of each per round, the ratio, the label agreement of the two
on the articles, and the CPU model and flags.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import write_result

ROOT = Path(__file__).resolve().parent.parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scoring-compile.json"))
    return parser


def main() -> None:
    args = build_parser().parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import bench_scoring
    import numpy as np
    import torch
    from transformers import AutoTokenizer

    from aranews.inference import load_classifier
    from aranews.inference.runtime import cpu_name, speed_flags

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model = bench_scoring.build_model(tmp / "model")
        bench_scoring.build_archive(tmp / "archive.jsonl", AutoTokenizer.from_pretrained(model), args.articles, seed=1)
        texts = [json.loads(line)["text"] for line in (tmp / "archive.jsonl").read_text(encoding="utf-8").splitlines()]
        plain = load_classifier(model, device="cpu", precision="bf16")
        compiled = load_classifier(model, device="cpu", precision="bf16")
        for clf in (plain, compiled):
            clf.predict_proba(texts[:2])  # the one-time cast of the weights to bf16, before compiling
        compiled._model.encoder = torch.compile(compiled._model.encoder, dynamic=True)
        started = time.perf_counter()
        compiled.predict_proba(texts[:8])
        first_call = time.perf_counter() - started
        rounds = []
        for r in range(args.rounds):
            order = [("bf16", plain), ("bf16+compile", compiled)]
            speeds = {}
            for name, clf in order if r % 2 == 0 else order[::-1]:
                started = time.perf_counter()
                clf.predict_proba(texts)
                speeds[name] = round(len(texts) / (time.perf_counter() - started), 3)
            speeds["ratio"] = round(speeds["bf16+compile"] / speeds["bf16"], 3)
            rounds.append(speeds)
            print(f"round {r + 1}: {speeds}", flush=True)
        a, b = plain.predict_proba(texts), compiled.predict_proba(texts)
    record = {
        "what": "torch.compile(dynamic=True) of the encoder against the library's bf16 path, AraBERT-base size",
        "articles": args.articles,
        "threads": torch.get_num_threads(),
        "first_compiled_call_seconds_8_articles": round(first_call, 1),
        "rounds": rounds,
        "median_ratio": float(np.median([r["ratio"] for r in rounds])),
        "label_agreement": {task: float((a[task].argmax(1) == b[task].argmax(1)).mean()) for task in a},
        "largest_probability_difference": {task: float(np.abs(a[task] - b[task]).max()) for task in a},
        "versions": {"torch": torch.__version__},
        "cpu": cpu_name(),
        "cpu_flags": speed_flags(),
        "command": "python benchmarks/bench_compile.py " + " ".join(sys.argv[1:]),
    }
    write_result(args.out, record)
    print(
        json.dumps(
            {k: record[k] for k in ("first_compiled_call_seconds_8_articles", "median_ratio", "label_agreement")}
        )
    )
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
