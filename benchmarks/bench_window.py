"""Window length as a speed setting: dev macro-F1 and scoring speed at 128, 256 and 512 tokens.

    .venv/bin/python benchmarks/bench_window.py --dataset ../shared/data/ant_jawharafm --task topic \\
        --encoder runs/demo/e5-small --lengths 128 256 512

For each window length it builds the library's model at that ``max_length`` (``head_tail``, a quarter of the
window from the start, the rest from the end, unless ``--strategy head`` / ``--head-tokens`` say otherwise; the
encoder's own pooling and prefix; the data sets' preprocessing) and measures, on the same rows:

* **quality, with the encoder frozen** (a linear probe): the article embeddings the library's heads read
  (:meth:`NewsClassifier.features_from_encoded`, bf16 where the CPU has it, else fp32) for the whole train
  and dev splits, then a logistic regression (features standardised, class weights balanced, ``C`` chosen by
  5-fold cross-validation on train alone) and its macro-F1 on dev. This isolates what the window lets the
  encoder see; a fine-tuned encoder reads the same windows, and fine-tuned figures at each length come from
  ``bench_quality.py --max-length L`` (hours per set on 2 CPU cores at 512; minutes with ``--device cuda``);
* **scoring speed**: ``predict_proba`` over the dev articles with ``--precision auto`` (what ``aranews
  score`` picks on this machine), after a warm-up, in articles/s, with the tokens read per article and the
  share of articles cut.

Dev rows that repeat a training row are dropped first (as in ``bench_quality.py``). Writes
``benchmarks/results/window-<dataset>-<task>.json`` after every length (``--cache`` keeps the embeddings, so
a killed run resumes) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_quality import train_and_dev
from results_io import write_result

ROOT = Path(__file__).resolve().parent.parent


def build_model(encoder: str, length: int, task: str, labels: list[str], pair_column: str | None,
                preprocessing: list[str], folder: Path, pooling: str | None = None,
                prefix: str | None = None, strategy: str = "head_tail",
                head_tokens: int | None = None) -> Path:  # fmt: skip
    """The library's untrained model of one task at window ``length``, saved as the library saves one; the
    encoder's pooling and prefix as ``aranews zero-shot`` reads them (or as given); long articles read by
    ``strategy`` (``head_tokens`` from the start under ``head_tail``: ``None`` for a quarter of the window)."""
    import torch
    from transformers import AutoTokenizer

    from aranews.inference.classifier import NewsClassifier
    from aranews.inference.config import LongDocumentConfig, ModelConfig, TaskSpec
    from aranews.inference.modeling import MultiTaskClassifier
    from aranews.training.zero_shot import encoder_convention

    convention = encoder_convention(encoder, pooling, prefix)
    settings = ModelConfig(
        encoder=encoder,
        preprocessing=preprocessing,
        max_length=length,
        pooling=convention.pooling,
        input_prefix=convention.text_prefix,
        long_document=LongDocumentConfig(strategy=strategy, head_tokens=head_tokens),
    )
    torch.manual_seed(0)
    model = MultiTaskClassifier.from_encoder(settings, [TaskSpec(task, labels, pair_column=pair_column)])
    tokenizer = AutoTokenizer.from_pretrained(encoder, trust_remote_code=False)
    return NewsClassifier(model, tokenizer, "cpu", precision="fp32").save_pretrained(folder)


def embed(model: Path, rows: list[dict[str, Any]], task: str, pair_column: str | None) -> tuple[np.ndarray, dict]:
    """The article embeddings the heads read, and the tokens the windows saw."""
    from aranews.inference.classifier import load_classifier
    from aranews.inference.runtime import cpu_supports_bf16

    clf = load_classifier(model, device="cpu", precision="bf16" if cpu_supports_bf16() else "fp32")
    texts = [str(r["text"]) for r in rows]
    pairs = [str(r[pair_column]) for r in rows] if pair_column else None
    started = time.perf_counter()
    encoded = clf.windower.encode(texts, pairs)
    features = clf.features_from_encoded(encoded, [task])[1]
    seconds = time.perf_counter() - started
    read = [sum(len(w) for w in a.input_ids) for a in encoded]
    return features, {
        "seconds": round(seconds, 1),
        "precision": clf.precision,
        "mean_tokens_read": float(np.mean(read)),
    }


def probe(train: np.ndarray, y_train: list[str], dev: np.ndarray, y_dev: list[str], labels: list[str]) -> dict:
    """Logistic regression on standardised embeddings, ``C`` by 5-fold CV on train; dev macro-F1."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    search = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=3000)),
        {"logisticregression__C": [0.001, 0.01, 0.1, 1.0]},
        scoring="f1_macro",
        cv=StratifiedKFold(5, shuffle=True, random_state=13),
    )
    search.fit(train, y_train)
    predicted = search.predict(dev)
    return {
        "macro_f1": float(f1_score(y_dev, predicted, labels=labels, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(y_dev, predicted)),
        "C": float(search.best_params_["logisticregression__C"]),
        "cv_macro_f1": float(search.best_score_),
    }


def speed(model: Path, rows: list[dict[str, Any]], task: str, pair_column: str | None) -> dict:
    """Articles/s of ``predict_proba`` in ``auto`` precision over ``rows`` (after a two-article warm-up)."""
    from aranews.inference.classifier import load_classifier

    clf = load_classifier(model, device="cpu", precision="auto")
    texts = [str(r["text"]) for r in rows]
    pairs = {pair_column: [str(r[pair_column]) for r in rows]} if pair_column else None
    warm = {pair_column: pairs[pair_column][:2]} if pairs else None
    clf.predict_proba(texts[:2], pairs=warm, score_non_arabic=True)  # conversion (OpenVINO) and first-call costs
    started = time.perf_counter()
    probs = clf.predict_proba(texts, pairs=pairs, score_non_arabic=True)[task]
    seconds = time.perf_counter() - started
    if np.isnan(probs).any():
        raise RuntimeError(f"{int(np.isnan(probs).any(axis=1).sum())} dev articles were not scored")
    encoded = clf.windower.encode(texts, pairs[pair_column] if pairs else None)
    return {
        "precision": clf.precision,
        "articles": len(texts),
        "seconds": round(seconds, 2),
        "articles_per_second": round(len(texts) / seconds, 2),
        "cut_share": round(float(np.mean([a.dropped_tokens > 0 for a in encoded])), 3),
    }


def _cache_key(args: argparse.Namespace, length: int, train: list[dict], dev: list[dict]) -> str:
    """What the cached embeddings were made from: the encoder and its settings, the window and the rows, so that
    a cache is never read for another encoder, preprocessing or split."""
    import hashlib

    made_from = hashlib.sha256()
    settings = [
        str(Path(args.encoder).resolve()),
        args.preprocessing,
        args.pooling,
        args.prefix,
        length,
        args.pair_column,
        args.strategy,
        args.head_tokens,
    ]
    made_from.update(json.dumps(settings).encode())
    for row in (*train, *dev):
        made_from.update(str(row["text"]).encode() + b"\0" + str(row.get(args.pair_column or "", "")).encode() + b"\1")
    return made_from.hexdigest()[:16]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--pair-column")
    parser.add_argument("--encoder", required=True)
    parser.add_argument("--pooling", choices=["mean", "cls"], help="the encoder's pooling (read for e5 models)")
    parser.add_argument("--prefix", help="the encoder's input prefix (read for e5 models)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--strategy", choices=["head", "head_tail"], default="head_tail",
                        help="how an article longer than the window is read")  # fmt: skip
    parser.add_argument("--head-tokens", type=int, help="with head_tail, tokens from the start (a quarter)")
    parser.add_argument("--preprocessing", nargs="+", default=["strip_boilerplate", "arabert_v02"])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--cache", help="a folder for the embeddings (read when there, else written)")
    parser.add_argument("--out")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from aranews.inference.runtime import cpu_name, speed_flags

    torch.set_num_threads(args.threads)
    dataset = Path(args.dataset)
    train, dev = train_and_dev(dataset, args.pair_column)
    labels = sorted({str(r[args.task]) for r in train})
    name = dataset.name
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"window-{name}-{args.task}.json")
    cache = Path(args.cache) if args.cache else None
    record: dict[str, Any] = {
        "what": "dev macro-F1 of a linear probe on the library's article embeddings (encoder frozen) and "
        "scoring speed (predict_proba, precision auto), per window length",
        "dataset": args.dataset,
        "task": args.task,
        "pair_column": args.pair_column,
        "encoder": args.encoder,
        "preprocessing": args.preprocessing,
        "long_document": {"strategy": args.strategy, "head_tokens": args.head_tokens},
        "n_train": len(train),
        "n_dev": len(dev),
        "lengths": {},
        "threads": args.threads,
        "cpu": cpu_name(),
        "cpu_flags": speed_flags(),
        "platform": platform.platform(),
        "command": "python benchmarks/bench_window.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ.setdefault("ARANEWS_CACHE", str(tmp / "cache"))
        for length in args.lengths:
            model = build_model(args.encoder, length, args.task, labels, args.pair_column, args.preprocessing,
                                tmp / f"model-{length}", args.pooling, args.prefix, args.strategy,
                                args.head_tokens)  # fmt: skip
            stored = (
                cache / f"{name}-{args.task}-{length}-{_cache_key(args, length, train, dev)}.npz" if cache else None
            )
            if stored and stored.is_file():
                saved = np.load(stored, allow_pickle=False)
                x_train, x_dev = saved["train"], saved["dev"]
                sidecar = stored.with_suffix(".json")
                embedding = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.is_file() else {}
                embedding["from_cache"] = str(stored)
            else:
                x_train, embedding = embed(model, train, args.task, args.pair_column)
                x_dev, dev_embedding = embed(model, dev, args.task, args.pair_column)
                embedding = {"train": embedding, "dev": dev_embedding}
                if stored:
                    stored.parent.mkdir(parents=True, exist_ok=True)
                    np.savez(stored, train=x_train, dev=x_dev)
                    stored.with_suffix(".json").write_text(json.dumps(embedding), encoding="utf-8")
            quality = probe(x_train, [str(r[args.task]) for r in train], x_dev, [str(r[args.task]) for r in dev],
                            labels)  # fmt: skip
            record["lengths"][str(length)] = {
                "probe": quality,
                "embedding": embedding,
                "speed": speed(model, dev, args.task, args.pair_column),
            }
            print(f"{name} {length}: {record['lengths'][str(length)]}", flush=True)
            write_result(out, record)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
