"""The select-loop proxy's picking rules and its labels-to-reach figure (benchmarks/bench_select_proxy.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import bench_select_proxy as proxy


def test_labels_to_reach_interpolates_between_rounds_and_says_never():
    used = [10, 20, 30]
    assert proxy.labels_to_reach([0.5, 0.6, 0.8], used, 0.7) == pytest.approx(25.0)
    assert proxy.labels_to_reach([0.5, 0.6, 0.8], used, 0.4) == 10.0
    assert proxy.labels_to_reach([0.5, 0.6, 0.8], used, 0.9) is None


def _blobs(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    centres = np.eye(8)[:3] * 4.0
    blob = np.repeat(np.arange(3), 50)
    x = centres[blob] + rng.normal(scale=0.3, size=(150, 8))
    return x / np.linalg.norm(x, axis=1, keepdims=True), blob


def test_typical_picks_the_uncovered_clusters_not_more_of_the_labelled_one():
    x, blob = _blobs(np.random.default_rng(0))
    labelled = np.array([0, 1])  # both in blob 0
    rest = np.arange(2, 150)
    picks = proxy._typical(x, labelled, rest, 2, seed=0)
    assert len(set(picks)) == 2 and not set(picks) & set(labelled.tolist())
    assert sorted(blob[picks].tolist()) == [1, 2]


def test_typical_takes_a_dense_row_not_an_outlier():
    x, blob = _blobs(np.random.default_rng(1))
    outlier = 60  # in blob 1, pushed far from its centre (still nearest to it)
    x[outlier] = np.eye(8)[1] * 4.0 + np.eye(8)[5] * 2.5
    x[outlier] /= np.linalg.norm(x[outlier])
    picks = proxy._typical(x, np.array([0]), np.arange(1, 150), 2, seed=0)
    assert outlier not in picks
    centre = x[blob == 1].mean(axis=0)
    pick = next(p for p in picks if blob[p] == 1)
    distances = np.linalg.norm(x[blob == 1] - centre, axis=1)
    assert np.linalg.norm(x[pick] - centre) <= np.quantile(distances, 0.5)


def test_the_select_rule_without_diversity_is_the_least_certain_rows():
    probs = np.array([[0.9, 0.1], [0.55, 0.45], [0.7, 0.3], [0.5, 0.5], [0.99, 0.01]])
    x = np.eye(5)
    assert sorted(proxy._pick_like_select(probs, x, 2, seed=0, diversity=False)) == [1, 3]
    assert len(set(proxy._pick_like_select(probs, x, 3, seed=0, diversity=True))) == 3


def test_the_share_interval_brackets_a_clear_win_and_is_open_when_a_strategy_never_gets_there():
    rng = np.random.default_rng(0)
    used = [10, 20, 30, 40]
    random_runs = [list(np.array([0.5, 0.6, 0.7, 0.8]) + rng.normal(scale=0.01)) for _ in range(20)]
    faster = [list(np.array([0.5, 0.8, 0.85, 0.9]) + rng.normal(scale=0.01)) for _ in range(20)]
    low, high = proxy.share_interval(faster, random_runs, used)
    assert 0.4 < low <= high < 0.7  # reaches 0.8 at about 20 of 40 labels
    slower = [list(np.array([0.5, 0.55, 0.6, 0.65]) + rng.normal(scale=0.01)) for _ in range(20)]
    assert proxy.share_interval(slower, random_runs, used) == [None, None]
