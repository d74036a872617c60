"""``--engine ray`` with 1 and 2 workers beside the single-process scorer, one run, same archive and model.

    .venv/bin/python benchmarks/bench_ray.py --model runs/demo/run/model --rows 600

The archive repeats the embedded sample articles under fresh ids. Each contender runs in its own process
(whole command: Ray start-up and model loading included, and the scoring part alone). On a 2-core machine
no gain is expected: the point is what the engine costs. Writes ``benchmarks/results/ray.json``.
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

from results_io import write_result

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, sys, time
started = time.perf_counter()
from aranews.inference import load_classifier
from aranews.inference.ray_engine import RayOptions
from aranews.inference.scoring import score_archive
model, source, out, engine, workers = sys.argv[1:6]
clf = load_classifier(model, precision="fp32")
options = RayOptions(workers=int(workers), threads_per_worker=max(1, __import__("os").cpu_count() // int(workers)))
s = score_archive(clf, source, out, progress=False, engine=engine, ray_options=options)
print(json.dumps({"seconds": time.perf_counter() - started, "scoring_seconds": s.seconds, "scored": s.scored,
                  "rows": s.rows}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(ROOT / "runs" / "demo" / "run" / "model"))
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ray.json"))
    args = parser.parse_args()
    sample = [json.loads(line) for line in (ROOT / "data" / "sample" / "train.jsonl").open(encoding="utf-8")]
    results = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        source = tmp / "archive.jsonl"
        with source.open("w", encoding="utf-8") as handle:
            for i in range(args.rows):
                row = {"id": f"b{i:07d}", "text": sample[i % len(sample)]["text"]}
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        for engine, workers in (("local", 1), ("ray", 1), ("ray", 2)):
            out = tmp / f"out-{engine}-{workers}.jsonl"
            done = subprocess.run(
                [sys.executable, "-c", CHILD, args.model, str(source), str(out), engine, str(workers)],
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(done.stdout.strip().splitlines()[-1])
            r |= {"engine": engine, "workers": workers, "articles_per_second": r["scored"] / r["seconds"]}
            r["scoring_articles_per_second"] = r["scored"] / r["scoring_seconds"]
            results.append(r)
            print(
                f"{engine:5} workers {workers}: {r['articles_per_second']:6.2f} articles/s whole command, "
                f"{r['scoring_articles_per_second']:6.2f} scoring part ({r['seconds']:.1f} s)",
                flush=True,
            )
    record = {
        "model": args.model,
        "rows": args.rows,
        "cpu_count": os.cpu_count(),
        "results": results,
        "command": "python benchmarks/bench_ray.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
    }
    write_result(Path(args.out), record)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
