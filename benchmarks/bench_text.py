"""Text handling costs: preprocessing time on long text without spaces (the shipped, anchored patterns
beside arabert's verbatim ones, in one run) and the memory of the scorer's duplicate-id set per id.

    .venv/bin/python benchmarks/bench_text.py

Prints the figures and writes ``benchmarks/results/text.json`` with the CPU model and flags.
"""

from __future__ import annotations

import platform
import re
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import write_result

ROOT = Path(__file__).resolve().parent.parent
UNITS = ["روسيا", "abcde", "a-b_c", "12345"]
VERBATIM = {  # arabert 1.0.1's patterns as written
    "_EMAIL_PATTERNS": [r"[\w-]+@([\w-]+\.)+[\w-]+", r"\S+@\S+"],
    "_DIGIT_THEN_WORD": "(\\d+)([\u0621-\u063a\u0641-\u064a\u0660-\u066c]+)",
    "_WORD_THEN_DIGIT": "([\u0621-\u063a\u0641-\u064a\u0660-\u066c]+)(\\d+)",
}


def _cpu() -> dict[str, Any]:
    info = {"model": platform.processor(), "flags": []}
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        info["model"] = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
        flags = next(line.split(":", 1)[1].split() for line in lines if line.startswith("flags"))
        info["flags"] = sorted(f for f in flags if f.startswith(("avx", "amx")))
    except (OSError, StopIteration):
        pass
    return info


def _seconds(function, text: str) -> float:
    started = time.perf_counter()
    function(text)
    return round(time.perf_counter() - started, 3)


def _verbatim_arabert():
    """arabert_v02 with the verbatim (quadratic) patterns, for the side-by-side comparison."""
    from aranews.inference import preprocessing as p

    patched = {
        "_EMAIL_PATTERNS": [re.compile(x) for x in VERBATIM["_EMAIL_PATTERNS"]],
        "_DIGIT_THEN_WORD": re.compile(VERBATIM["_DIGIT_THEN_WORD"]),
        "_WORD_THEN_DIGIT": re.compile(VERBATIM["_WORD_THEN_DIGIT"]),
        "_URL_PATTERNS": [*p._URL_PATTERNS[:4], re.compile(r"[a-zA-Z]+\.com"), *p._URL_PATTERNS[5:]],
    }

    def run(text: str) -> str:
        saved = {name: getattr(p, name) for name in patched}
        for name, value in patched.items():
            setattr(p, name, value)
        try:
            return p.arabert_v02(text)
        finally:
            for name, value in saved.items():
                setattr(p, name, value)

    return run


def _id_memory(n: int) -> float:
    tracemalloc.start()
    seen: set[str] = set()
    for i in range(n):
        seen.add(f"article-{i:08d}")
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return round(current / n, 1)


def main() -> None:
    from aranews.inference.preprocessing import arabert_v02, strip_boilerplate

    verbatim = _verbatim_arabert()
    record: dict[str, Any] = {"cpu": _cpu(), "python": platform.python_version(), "preprocessing": [], "ids": {}}
    for unit in UNITS:
        for chars in (20_000, 160_000, 5_000_000):
            text = unit * (chars // len(unit))
            row = {
                "unit": unit,
                "chars": len(text),
                "anchored_s": _seconds(lambda t: arabert_v02(strip_boilerplate(t)), text),
            }
            if chars == 20_000:  # the verbatim patterns take seconds here and minutes at 160,000
                row["verbatim_s"] = _seconds(verbatim, text)
            record["preprocessing"].append(row)
            print(row)
    for n in (100_000, 1_000_000):
        record["ids"][str(n)] = _id_memory(n)
        print(f"duplicate-id set: {record['ids'][str(n)]} bytes per 16-character id over {n} ids")
    out = ROOT / "benchmarks" / "results" / "text.json"
    write_result(out, record)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
