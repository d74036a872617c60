"""Zero-shot macro-F1: a model built from label descriptions alone (``aranews zero-shot``), on a dev split.

    .venv/bin/python benchmarks/bench_zero_shot.py --config configs/zero-shot/ant_multisource.yaml \
        --encoder runs/demo/e5-small --data ../shared/data/ant_multisource/dev.jsonl --max-length 256

The descriptions in ``configs/zero-shot/`` were written from the label names and each data set's README,
before any prediction on dev was seen. Writes ``benchmarks/results/zero_shot-<data>-<task>.json`` (macro-F1,
accuracy, per-label F1 and the confusion, the seconds, the machine) and prints the figures.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--encoder", required=True)
    parser.add_argument("--data", required=True, help="a labelled dev split (JSON Lines)")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--out")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sklearn.metrics import confusion_matrix, f1_score

    from aranews.inference import load_classifier
    from aranews.inference.runtime import cpu_name
    from aranews.training.config import load_config
    from aranews.training.zero_shot import build_zero_shot_model, encoder_convention

    config = load_config(args.config, {"model.max_length": args.max_length}, needs_data=False)
    task = config.tasks[0]
    rows = [json.loads(line) for line in Path(args.data).read_text(encoding="utf-8").splitlines() if line.strip()]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        convention = encoder_convention(args.encoder)
        build_zero_shot_model(config, args.encoder, Path(tmp) / "model", convention)
        clf = load_classifier(Path(tmp) / "model", device="cpu")
        predicted = [p[task.name]["label"] for p in clf.predict([r["text"] for r in rows])]
    truth = [r[task.column] for r in rows]
    labels = list(task.labels)
    record = {
        "what": "zero-shot: label descriptions only, no labelled row",
        "config": args.config,
        "data": args.data,
        "task": task.name,
        "rows": len(rows),
        "encoder": args.encoder,
        "convention": convention.__dict__,
        "max_length": args.max_length,
        "macro_f1": round(float(f1_score(truth, predicted, labels=labels, average="macro")), 4),
        "accuracy": round(sum(a == b for a, b in zip(truth, predicted, strict=True)) / len(rows), 4),
        "per_label_f1": dict(
            zip(
                labels,
                [round(float(v), 4) for v in f1_score(truth, predicted, labels=labels, average=None)],
                strict=True,
            )
        ),
        "confusion": {"labels": labels, "matrix": confusion_matrix(truth, predicted, labels=labels).tolist()},
        "seconds": round(time.perf_counter() - started, 1),
        "cpu": cpu_name(),
        "command": "python benchmarks/bench_zero_shot.py " + " ".join(sys.argv[1:]),
    }
    out = Path(
        args.out or ROOT / "benchmarks" / "results" / f"zero_shot-{Path(args.data).parent.name}-{task.name}.json"
    )
    write_result(out, record)
    print(f"zero-shot {task.name} on {args.data}: macro-F1 {record['macro_f1']:.3f}, accuracy {record['accuracy']:.3f}")
    print("per label: " + ", ".join(f"{k} {v:.2f}" for k, v in record["per_label_f1"].items()))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
