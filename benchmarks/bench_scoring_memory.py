"""Does scoring memory stay flat as the archive grows? Peak memory of ``score_archive`` on a 5,000- and a
100,000-article synthetic archive, each in its own process.

    .venv/bin/python benchmarks/bench_scoring_memory.py --rows 5000 100000

The model is a small random BERT (memory here is about the scorer, not the encoder); the archives are
short news-like articles of the embedded corpus's sentences under fresh ids, so the only thing that
grows with the archive is the duplicate-id set. Reports peak RSS (VmHWM), the difference, and the id
set's own size (measured with ``sys.getsizeof`` over the ids: what grows with an archive); writes
``benchmarks/results/scoring-memory.json``.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scoring import PEAK, _run, _sample_sentences
from results_io import write_result

ROOT = Path(__file__).resolve().parent.parent

SCORE = (
    PEAK
    + """
import json, sys, time
from aranews.inference.classifier import load_classifier
from aranews.inference.scoring import score_archive
model, source, out = sys.argv[1:4]
clf = load_classifier(model, device="cpu", precision="fp32")
started = time.perf_counter()
s = score_archive(clf, source, out, progress=False)
print(json.dumps({"seconds": time.perf_counter() - started, "rows": s.rows, "scored": s.scored, "errors": s.errors,
                  "articles_per_second": s.articles_per_second, "peak_rss_mb": peak_mb()}))
"""
)


def build_small_model(folder: Path) -> Path:
    import torch
    from transformers import AutoModel, AutoTokenizer

    from aranews.inference.classifier import NewsClassifier
    from aranews.inference.config import ClassifierConfig, ModelConfig, TaskSpec
    from aranews.inference.modeling import MultiTaskClassifier
    from aranews.training.backbone import build_tiny_backbone

    backbone = build_tiny_backbone(_sample_sentences(), folder / "backbone", vocab_size=4000)
    torch.manual_seed(0)
    encoder = AutoModel.from_pretrained(str(backbone), add_pooling_layer=False)
    tasks = [TaskSpec("topic", ["a", "b", "c"]), TaskSpec("stance", ["x", "y", "z"])]
    config = ClassifierConfig(
        tasks=tasks, model=ModelConfig(encoder=str(backbone), max_length=128), encoder_config=encoder.config.to_dict()
    )
    model = MultiTaskClassifier(config.validate(), encoder)
    return NewsClassifier(model, AutoTokenizer.from_pretrained(str(backbone)), "cpu", precision="fp32").save_pretrained(
        folder / "model"
    )


def build_archive(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    sentences = _sample_sentences()
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            text = " ".join(rng.choice(sentences) for _ in range(rng.randint(2, 5)))
            handle.write(json.dumps({"id": f"article-{i:09d}", "text": text}, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[5000, 100000])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scoring-memory.json"))
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model = build_small_model(tmp)
        for rows in args.rows:
            source = tmp / f"archive-{rows}.jsonl"
            build_archive(source, rows)
            result = _run(SCORE, str(model), str(source), str(tmp / f"out-{rows}.jsonl"))
            ids = {f"article-{i:09d}" for i in range(rows)}
            result["id_set_mb"] = (sys.getsizeof(ids) + sum(sys.getsizeof(i) for i in ids)) / 2**20
            result["archive_rows"] = rows
            results.append(result)
            print(
                f"{rows:8d} rows: peak RSS {result['peak_rss_mb']:8.1f} MB, {result['articles_per_second']:7.1f} "
                f"articles/s, id set {result['id_set_mb']:.1f} MB, scored {result['scored']} + errors {result['errors']}",
                flush=True,
            )
    growth = results[-1]["peak_rss_mb"] / results[0]["peak_rss_mb"] - 1
    record = {
        "results": results,
        "peak_growth": round(growth, 4),
        "command": "python benchmarks/bench_scoring_memory.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "cpu_count": os.cpu_count(),
    }
    write_result(Path(args.out), record)
    print(
        f"peak memory {results[-1]['archive_rows']} rows vs {results[0]['archive_rows']}: {growth:+.1%}; written to {args.out}"
    )


if __name__ == "__main__":
    main()
