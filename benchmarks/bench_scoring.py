"""Batch-scoring throughput and peak memory at two archive sizes (does memory stay bounded?).

    .venv/bin/python benchmarks/bench_scoring.py --model runs/demo/run/model --rows 2000 8000

Each size is scored in its own subprocess (so peak RSS is that run's alone) from an archive made by
repeating the embedded sample articles under fresh ids. Prints a table and writes
``benchmarks/results/scoring.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, resource, sys, time
from aranews.inference import load_classifier
from aranews.inference.scoring import score_archive
model, source, out, chunk = sys.argv[1:5]
clf = load_classifier(model, device="cpu", batch_size=32)
t = time.perf_counter()
s = score_archive(clf, source, out, chunk_size=int(chunk), progress=False)
print(json.dumps({"rows": s.rows, "scored": s.scored, "errors": s.errors, "seconds": time.perf_counter() - t,
                  "articles_per_second": s.scored / (time.perf_counter() - t),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_archive(path: Path, rows: int) -> None:
    sample = [
        json.loads(line) for name in ("train", "dev") for line in (ROOT / "data" / "sample" / f"{name}.jsonl").open()
    ]
    with path.open("w", encoding="utf-8") as handle:
        for i in range(rows):
            handle.write(
                json.dumps({"id": f"b{i:07d}", "text": sample[i % len(sample)]["text"]}, ensure_ascii=False) + "\n"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(ROOT / "runs" / "demo" / "run" / "model"))
    parser.add_argument("--rows", type=int, nargs="+", default=[2000, 8000])
    parser.add_argument("--chunk-size", type=int, default=512)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scoring.json"))
    args = parser.parse_args()
    if not (Path(args.model) / "config.json").is_file():
        sys.exit(f"no model at {args.model}: run `make demo` first or pass --model")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            source = Path(tmp) / f"archive-{rows}.jsonl"
            make_archive(source, rows)
            started = time.perf_counter()
            done = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    CHILD,
                    args.model,
                    str(source),
                    str(Path(tmp) / f"out-{rows}.jsonl"),
                    str(args.chunk_size),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result["wall_seconds_with_start"] = time.perf_counter() - started
            results.append(result)
            print(
                f"rows {rows:7d}: {result['articles_per_second']:8.1f} articles/s, peak RSS {result['peak_rss_mb']:7.1f} MB, "
                f"scored {result['scored']} + errors {result['errors']}"
            )
    record = {
        "model": args.model,
        "chunk_size": args.chunk_size,
        "machine": platform.platform(),
        "cpu_count": os.cpu_count(),
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
