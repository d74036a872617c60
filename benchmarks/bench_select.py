"""How ``aranews select`` grows with N: time and peak memory at AraBERT-base size.

    .venv/bin/python benchmarks/bench_select.py                      # n = 200 and 1,000 end to end, picking at 5,000
    .venv/bin/python benchmarks/bench_select.py --end-to-end 200 --picking 200 1000 5000

Two measurements, each in a process of its own (peak RSS is the child's VmHWM):

* **end to end**: ``aranews select --n N`` (default ``--pool-factor 10``) on an archive of ``10 x N`` short
  synthetic articles, with an AraBERT-base-shaped two-task model (random weights, vocabulary 64,000, 12
  layers, hidden 768; built locally by ``bench_scoring.build_model``). The time includes the scoring pass
  over the archive, which is the scorer's (linear in the archive), and the picking.
* **picking alone**: the diversity step on a pool of ``10 x N`` random 768-dimensional embeddings, the
  library's clustering, and at small N the clustering the library had before (pool x k x dim differences
  in float64), with the share of picks the two have in common.

Writes ``benchmarks/results/select.json`` with the machine's processor.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scoring import PEAK, _run, _sample_sentences, build_model
from results_io import write_result

ROOT = Path(__file__).resolve().parent.parent

PICK = (
    PEAK
    + """
import json, sys, time
import numpy as np
from aranews.inference.selection import Candidate, _kmeans, _pick
n, dim, which = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
centres = rng.standard_normal((max(8, n // 4), dim)).astype(np.float32)
x = centres[rng.integers(len(centres), size=10 * n)] + 0.5 * rng.standard_normal((10 * n, dim)).astype(np.float32)

def old_kmeans(x, k, seed, iterations=25):  # the clustering before issue 20, for the comparison
    rng = np.random.default_rng(seed)
    centres = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d = np.min([((x - c) ** 2).sum(axis=1) for c in centres], axis=0)
        total = d.sum()
        centres.append(x[rng.choice(len(x), p=d / total)] if total > 0 else x[rng.integers(len(x))])
    c = np.stack(centres)
    labels = np.zeros(len(x), dtype=int)
    for _ in range(iterations):
        labels = ((x[:, None, :] - c[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
        moved = np.stack([x[labels == j].mean(axis=0) if (labels == j).any() else c[j] for j in range(k)])
        if np.allclose(moved, c):
            break
        c = moved
    return labels

def picks(labels):
    best = {}
    for i, k in enumerate(labels):  # candidates in uncertainty order: the first of each cluster
        best.setdefault(int(k), i)
    return set(best.values())

normed = x / np.linalg.norm(x, axis=1, keepdims=True)
started = time.perf_counter()
labels = (old_kmeans(normed.astype(np.float64), n, 0) if which == "old" else _kmeans(normed, n, 0))
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb(), "picks": sorted(picks(labels))}))
"""
)


def _archive(path: Path, n: int) -> None:
    sentences = _sample_sentences()
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            text = " ".join(sentences[(i * 7 + j) % len(sentences)] for j in range(2))
            handle.write(json.dumps({"id": f"s{i:06d}", "text": text}, ensure_ascii=False) + "\n")


def _select(model: Path, archive: Path, out: Path, n: int, threads: int) -> dict:
    """``aranews select`` as a user runs it, in a child; peak RSS from the kernel's accounting."""
    started = time.perf_counter()
    done = subprocess.run(
        [
            "/usr/bin/env",
            f"OMP_NUM_THREADS={threads}",
            sys.executable,
            "-c",
            "import resource, sys\nfrom aranews.cli import main\ncode = main(sys.argv[1:])\n"
            "print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\nsys.exit(code)",
            "-q", "select", "--model", str(model), "--input", str(archive), "--n", str(n), "--out", str(out),
            "--device", "cpu",
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    peak_kb = int(next(line for line in done.stdout.splitlines() if line.startswith("PEAK_KB")).split()[1])
    picked = sum(1 for _ in out.open(encoding="utf-8"))
    return {"seconds": round(time.perf_counter() - started, 1), "peak_rss_mb": round(peak_kb / 1024), "picked": picked}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--end-to-end", nargs="*", type=int, default=[200, 1000])
    parser.add_argument("--picking", nargs="*", type=int, default=[200, 1000, 5000])
    parser.add_argument("--old-up-to", type=int, default=200, help="also time the old clustering up to this N")
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "select.json"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from aranews.inference.runtime import cpu_name, speed_flags

    result: dict = {
        "what": "aranews select: time and peak RSS against N (pool = 10 x N), AraBERT-base size",
        "command": " ".join(["python benchmarks/bench_select.py", *sys.argv[1:]]),
        "cpu": cpu_name(),
        "cpu_flags": speed_flags(),
        "threads": args.threads,
        "picking": [],
        "end_to_end": [],
    }
    for n in args.picking:
        row = {"n": n, "pool": 10 * n, "dim": args.dim, **_run(PICK, str(n), str(args.dim), "new")}
        new_picks = set(row.pop("picks"))
        if n <= args.old_up_to:
            old = _run(PICK, str(n), str(args.dim), "old")
            row["old"] = {"seconds": round(old["seconds"], 2), "peak_rss_mb": round(old["peak_rss_mb"])}
            row["picks_shared_with_old"] = round(len(new_picks & set(old["picks"])) / max(1, len(new_picks)), 3)
        row["seconds"], row["peak_rss_mb"] = round(row["seconds"], 2), round(row["peak_rss_mb"])
        print(json.dumps(row), flush=True)
        result["picking"].append(row)
    if args.end_to_end:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            model = build_model(tmp)
            for n in args.end_to_end:
                archive = tmp / f"archive-{n}.jsonl"
                _archive(archive, 10 * n)
                row = {
                    "n": n,
                    "archive_rows": 10 * n,
                    **_select(model, archive, tmp / f"picks-{n}.jsonl", n, args.threads),
                }
                print(json.dumps(row), flush=True)
                result["end_to_end"].append(row)
    write_result(Path(args.out), result)
    print(f"written to {Path(args.out).relative_to(ROOT) if Path(args.out).is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
