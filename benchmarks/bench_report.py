"""Time and size of ``aranews report`` on a large synthetic scored archive.

    .venv/bin/python benchmarks/bench_report.py --rows 100000

Writes a scorer-shaped output (id, topic and stance with scores, kept date, parsed date, source, url) of
``--rows`` rows spread over two years and 40 sources, with its summary file, then times ``write_report``
on it and reports the HTML size and the process's peak memory; the summary carries the shares per month and
per source with their intervals, as the scorer estimates them (timed too). Results go to
``benchmarks/results/report.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import write_result

ROOT = Path(__file__).resolve().parent.parent
TOPICS = ["security", "diplomacy", "economy_energy", "military", "regional_conflicts", "blocs_alliances"]
STANCES = ["cooperation", "neutral", "tension"]


def peak_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _shares_by(keys: list[list], labels_of: dict[str, list[int]]) -> tuple[dict, float]:
    """What the scorer's commit estimates per period and source (PACC with intervals) for these rows, from
    synthetic probabilities and a synthetic 600-row dev set, and the seconds it took."""
    import numpy as np

    from aranews.inference.outputs import _grouped_shares
    from aranews.inference.shares import DevRates

    rng = np.random.default_rng(0)

    def probs(truth: np.ndarray, k: int) -> np.ndarray:
        z = rng.normal(0, 1, (len(truth), k)) + 2.0 * np.eye(k)[truth]
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    started = time.perf_counter()
    out = {}
    for task, labels in (("topic", TOPICS), ("stance", STANCES)):
        k = len(labels)
        dev_truth = rng.integers(k, size=600)
        dev = DevRates(dev_truth, probs(dev_truth, k))
        out[task] = _grouped_shares(keys, probs(np.asarray(labels_of[task]), k), labels, dev, "pacc", 0.9)
    return out, time.perf_counter() - started


def build(path: Path, rows: int, seed: int = 0) -> float:
    rng = random.Random(seed)
    start = dt.date(2023, 1, 1)
    sources = [f"outlet-{i:02d}.example" for i in range(40)]
    keys: list[list] = []
    labels_of: dict[str, list[int]] = {"topic": [], "stance": []}
    with path.open("w", encoding="utf-8") as handle:
        for i in range(rows):
            day = start + dt.timedelta(days=rng.randrange(730))
            parsed = None if rng.random() < 0.02 else day.isoformat()
            row = {
                "id": f"a{i:08d}",
                "topic": rng.choice(TOPICS),
                "topic_score": round(rng.uniform(0.3, 1.0), 6),
                "stance": rng.choice(STANCES),
                "stance_score": round(rng.uniform(0.34, 1.0), 6),
                "date": f"{day.day} {day.month}/{day.year}" if parsed else "قبل ساعتين",
                "source": rng.choice(sources),
                "url": f"https://news.example/{i}",
                "date_parsed": parsed,
                "n_tokens": rng.randrange(50, 900),
            }
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            keys.append([parsed, row["source"]])
            labels_of["topic"].append(TOPICS.index(row["topic"]))
            labels_of["stance"].append(STANCES.index(row["stance"]))
    shares_by, seconds = _shares_by(keys, labels_of)
    summary = {
        "input": "synthetic",
        "rows": rows,
        "scored": rows,
        "errors": 0,
        "error_reasons": {},
        "provenance": {"labels": {"topic": TOPICS, "stance": STANCES}, "precision": "bf16", "label_schema": "v1-x"},
        "shares_by": shares_by,
    }
    path.with_name(path.name + ".summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "report.json"))
    args = parser.parse_args()
    from aranews.inference.report import write_report

    with tempfile.TemporaryDirectory() as tmp_name:
        scores = Path(tmp_name) / "scores.jsonl"
        shares_seconds = build(scores, args.rows)
        before = peak_mb()
        started = time.perf_counter()
        result = write_report(scores, Path(tmp_name) / "report.html")
        seconds = time.perf_counter() - started
    record = {
        "rows": args.rows,
        "seconds": round(seconds, 2),
        "html_bytes": result.bytes,
        "days": result.days,
        "sources": result.sources,
        "peak_rss_mb_before": round(before, 1),
        "peak_rss_mb_after": round(peak_mb(), 1),
        "shares_by_seconds": round(shares_seconds, 2),
        "shares_by_what": "the scorer's PACC shares with intervals per month (24) and source (40), both tasks",
        "command": "python benchmarks/bench_report.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
    }
    write_result(Path(args.out), record)
    print(
        f"{args.rows} rows: {seconds:.1f} s, HTML {result.bytes / 1024:.0f} KiB, {result.days} days x "
        f"{result.sources} sources; peak RSS {record['peak_rss_mb_before']} -> {record['peak_rss_mb_after']} MB; "
        f"the scorer's shares per period and source: {shares_seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
