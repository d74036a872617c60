"""Benchmark result files without the paths of the machine that wrote them.

Every ``bench_*.py`` writes its JSON through :func:`write_result`, which rewrites paths in every string:
the public data sets as ``../shared/data/NAME`` (where this workplace keeps them beside the repository),
files of this repository relative to it, the pretrained encoder built by
``../shared/tools/pretrained_backbone/build.sh`` as ``$E5_SMALL``, and temporary folders as ``$TMP``.
``python benchmarks/results_io.py`` rewrites the files already in ``benchmarks/results/`` the same way.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"

_RULES = [
    (  # whatever came before (/tmp/data/, /work/shared/data/, ../shared/data/): the one portable form
        re.compile(r"[^\s\"'=]*data/(ant_multisource|ant_jawharafm|arabic_fc_stance|ans_stance|mawqif_stance)"),
        r"../shared/data/\1",
    ),
    (re.compile(r"/tmp/e5(?:-small-hf)?(?=[/\s\"']|$)"), "$E5_SMALL"),
    (re.compile(re.escape(str(ROOT)) + r"/"), ""),
    (re.compile(r"/tmp/tmp[\w-]+"), "$TMP"),
    (re.compile(r"/tmp/"), "$TMP/"),
]


def portable(value: Any) -> Any:
    """``value`` (any JSON) with machine paths in its strings rewritten (see the module docstring)."""
    if isinstance(value, str):
        for pattern, replacement in _RULES:
            value = pattern.sub(replacement, value)
        return value
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v) for v in value]
    return value


def write_result(path: str | Path, record: Any) -> Path:
    """Write a benchmark's JSON record, its machine paths made portable."""
    path = Path(path)
    path.write_text(json.dumps(portable(record), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def main() -> None:
    changed = 0
    for path in sorted(RESULTS.rglob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        if portable(record) != record:
            write_result(path, record)
            changed += 1
    print(f"rewrote {changed} result files under {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
