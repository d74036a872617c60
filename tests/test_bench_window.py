"""The window-length benchmark's model, embeddings, probe and speed (benchmarks/bench_window.py), and the few-shot
benchmark's head probe (benchmarks/bench_few_shot.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import bench_window


def _rows(sample_rows: dict[str, list[dict]], split: str) -> list[dict]:
    return [{"text": r["text"], "topic": r["topic"]} for r in sample_rows[split]]


def test_each_window_length_reads_at_most_its_tokens_and_the_probe_learns_the_sample(
    tiny_backbone, sample_rows, tmp_path
):
    train, dev = _rows(sample_rows, "train"), _rows(sample_rows, "dev")
    labels = sorted({r["topic"] for r in train})
    read, cut = {}, {}
    for length in (32, 128):
        model = bench_window.build_model(
            str(tiny_backbone), length, "topic", labels, None, ["none"], tmp_path / f"m{length}", "mean", ""
        )
        x_train, info = bench_window.embed(model, train, "topic", None)
        x_dev, _ = bench_window.embed(model, dev, "topic", None)
        assert x_train.shape[0] == len(train) and x_dev.shape == (len(dev), x_train.shape[1])
        assert np.isfinite(x_train).all()
        read[length] = info["mean_tokens_read"]
        assert read[length] <= length  # one head_tail window per article, special tokens included
        speed = bench_window.speed(model, dev, "topic", None)
        assert speed["articles"] == len(dev) and speed["articles_per_second"] > 0
        cut[length] = speed["cut_share"]
        quality = bench_window.probe(x_train, [r["topic"] for r in train], x_dev, [r["topic"] for r in dev], labels)
        assert 0.0 <= quality["macro_f1"] <= 1.0 and quality["C"] in (0.001, 0.01, 0.1, 1.0)
    assert read[32] < read[128] and cut[32] > cut[128]


def test_the_few_shot_benchmark_scores_other_heads_on_a_models_features(tiny_backbone, sample_rows, tmp_path):
    import argparse

    import bench_few_shot

    train, dev = _rows(sample_rows, "train"), _rows(sample_rows, "dev")
    labels = sorted({r["topic"] for r in train})
    model = bench_window.build_model(
        str(tiny_backbone), 64, "topic", labels, None, ["none"], tmp_path / "m", "mean", ""
    )
    args = argparse.Namespace(task="topic", pair_column=None)
    heads = bench_few_shot._probe_heads(model, train, dev, args)
    assert set(heads) == {"logistic_c1", "logistic_cv"}
    assert all(0.0 <= f1 <= 1.0 for f1 in heads.values())


def test_the_few_shot_benchmark_moves_a_models_posteriors_to_devs_label_shares(tiny_backbone, sample_rows, tmp_path):
    import argparse

    import bench_few_shot
    from sklearn.metrics import f1_score

    from aranews.inference import load_classifier

    train, dev = _rows(sample_rows, "train"), _rows(sample_rows, "dev")
    labels = sorted({r["topic"] for r in train})
    model = bench_window.build_model(
        str(tiny_backbone), 64, "topic", labels, None, ["none"], tmp_path / "m", "mean", ""
    )
    shift = bench_few_shot._prior_shift(model, train, dev, argparse.Namespace(task="topic", pair_column=None))
    probs = load_classifier(model).predict_proba([r["text"] for r in dev], tasks=["topic"])["topic"]
    raw = f1_score([r["topic"] for r in dev], [labels[i] for i in probs.argmax(1)], labels=labels, average="macro")
    assert shift["raw"] == round(float(raw), 4)
    assert all(0.0 <= shift[k] <= 1.0 for k in ("em", "oracle"))
    for shares in (shift["em_shares"], shift["dev_shares"]):
        assert list(shares) == labels and sum(shares.values()) == pytest.approx(1.0, abs=0.01)
    counts = {name: sum(r["topic"] == name for r in dev) / len(dev) for name in labels}
    assert shift["dev_shares"] == pytest.approx(counts, abs=0.001)


def test_cached_embeddings_are_keyed_by_what_made_them():
    args = bench_window.build_parser().parse_args(["--dataset", "d", "--task", "topic", "--encoder", "e"])
    rows = [{"text": "أ"}, {"text": "ب"}]
    key = bench_window._cache_key(args, 128, rows, rows)
    assert key == bench_window._cache_key(args, 128, [dict(r) for r in rows], rows)
    other = bench_window.build_parser().parse_args(
        ["--dataset", "d", "--task", "topic", "--encoder", "e", "--preprocessing", "strip_boilerplate"]
    )
    head = bench_window.build_parser().parse_args(
        ["--dataset", "d", "--task", "topic", "--encoder", "e", "--strategy", "head"]
    )
    assert len({key, bench_window._cache_key(other, 128, rows, rows), bench_window._cache_key(args, 256, rows, rows),
                bench_window._cache_key(args, 128, rows[:1], rows), bench_window._cache_key(head, 128, rows, rows)}) == 5  # fmt: skip


def test_the_model_reads_long_articles_by_the_strategy_asked(tiny_backbone, sample_rows, tmp_path):
    from aranews.inference.classifier import load_classifier

    labels = sorted({r["topic"] for r in sample_rows["train"]})
    for strategy, head_tokens in (("head", None), ("head_tail", 8)):
        model = bench_window.build_model(str(tiny_backbone), 32, "topic", labels, None, ["none"],
                                         tmp_path / strategy, "mean", "", strategy, head_tokens)  # fmt: skip
        read = load_classifier(model, device="cpu").config.model.long_document
        assert (read.strategy, read.head_tokens) == (strategy, head_tokens)


def test_the_few_shot_benchmark_tells_apart_runs_of_other_settings(tmp_path):
    import bench_few_shot

    base = {"contender": "few_shot_contrastive", "contrastive_steps": 300}
    assert bench_few_shot.label(base) == "few_shot_contrastive/300"
    assert bench_few_shot.label({"contender": "few_shot_contrastive"}) == "few_shot_contrastive/100"  # before the field
    assert bench_few_shot.label({**base, "long_document": "head"}) == "few_shot_contrastive/300+head"
    assert bench_few_shot.label({**base, "train_embeddings": True, "mixed_precision": "no"}) == (
        "few_shot_contrastive/300+embeddings+no"
    )
    assert bench_few_shot.label({"contender": "setfit"}) == "setfit"
    argv = ["--dataset", "d", "--task", "topic", "--encoder", "e", "--max-length", "128"]
    for extra, expected in (
        ([], {"strategy": "head_tail", "head_tokens": 32}),
        (["--long-document", "head"], {"strategy": "head"}),
    ):
        args = bench_few_shot.build_parser().parse_args(argv + extra)
        assert bench_few_shot.library_config(args, tmp_path, "run", 13)["model"]["long_document"] == expected
