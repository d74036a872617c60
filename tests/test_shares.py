"""Label shares (issue 22): the library's CC, PCC, ACC, PACC and EMQ equal QuaPy's on the same posteriors and
dev error rates, adjusted estimates undo a classifier's bias, and intervals cover and say when they cannot."""

from __future__ import annotations

import numpy as np
import pytest

from aranews.inference.shares import MIN_ROWS, DevRates, estimate, estimate_shares


def _posteriors(truth: np.ndarray, k: int, rng, skew: np.ndarray) -> np.ndarray:
    """A biased classifier: noisy posteriors that lean toward the labels ``skew`` favours."""
    logits = rng.normal(0, 1, (len(truth), k)) + 2.0 * np.eye(k)[truth] + skew
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(0)
    k, skew = 3, np.array([0.8, 0.0, -0.4])
    dev_truth = rng.choice(k, size=600, p=[0.4, 0.35, 0.25])
    dev = DevRates(dev_truth, _posteriors(dev_truth, k, rng, skew))
    true_shares = np.array([0.15, 0.25, 0.6])  # the archive's mix moved
    truth = rng.choice(k, size=3000, p=true_shares)
    return dev, _posteriors(truth, k, rng, skew), np.bincount(truth, minlength=k) / len(truth)


def test_estimates_equal_quapy(world):
    qp = pytest.importorskip("quapy")
    from quapy.method.aggregative import ACC, EMQ, PACC

    dev, probs, _ = world
    classes = np.arange(3)
    hard = ACC.getPteCondEstim(classes, dev.truth, dev.probs.argmax(1))
    soft = PACC.getPteCondEstim(classes, dev.truth, dev.probs)
    cc = np.bincount(probs.argmax(1), minlength=3) / len(probs)
    want = {
        "cc": cc,
        "pcc": probs.mean(0),
        "acc": qp.functional.normalize_prevalence(ACC.solve_adjustment(hard, cc, "inversion", "exact-cc"), "clip"),
        "pacc": qp.functional.normalize_prevalence(
            ACC.solve_adjustment(soft, probs.mean(0), "inversion", "exact-cc"), "clip"
        ),
        "emq": EMQ.EM(dev.prior(), probs)[0],
    }
    for method, expected in want.items():
        assert estimate(method, probs, dev) == pytest.approx(expected, abs=1e-6), method  # tolerance 1e-6


def test_adjusted_estimates_undo_the_classifiers_bias(world):
    dev, probs, true = world
    error = {m: np.abs(estimate(m, probs, dev) - true).mean() for m in ("cc", "pcc", "acc", "pacc", "emq")}
    assert error["pacc"] < error["cc"] / 2 and error["acc"] < error["cc"] / 2
    assert error["pacc"] < 0.03


def test_intervals_cover_and_small_groups_say_so(world):
    dev, probs, true = world
    shares = estimate_shares("pacc", probs, ["a", "b", "c"], dev, level=0.9, replicates=100)
    for label, value in zip("abc", true, strict=True):
        row = shares["labels"][label]
        assert row["low"] <= row["share"] <= row["high"] and row["low"] - 0.02 <= value <= row["high"] + 0.02
    small = estimate_shares("pacc", probs[: MIN_ROWS - 1], ["a", "b", "c"], dev)
    assert small["too_few_rows"] and "low" not in small["labels"]["a"]
    with pytest.raises(ValueError, match="shares method 'median'"):
        estimate("median", probs, dev)
    with pytest.raises(ValueError, match="needs the dev error rates"):
        estimate("acc", probs)


def test_the_scorer_summary_gives_shares_with_intervals(trained_model, sample_rows, tmp_path):
    import json
    import shutil

    from aranews.inference import load_classifier
    from aranews.inference.scoring import format_summary, score_archive
    from tests.helpers import write_jsonl

    rows = [{"id": f"a{i}", "text": r["text"]} for i, r in enumerate(sample_rows["train"][:60])]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    clf = load_classifier(trained_model / "model", device="cpu")
    summary = score_archive(clf, source, tmp_path / "s.jsonl", progress=False, chunk_size=16)
    shares = summary.shares["topic"]
    assert shares["method"] == "pacc" and shares["rows"] == 60 and shares["level"] == 0.9
    assert sum(v["share"] for v in shares["labels"].values()) == pytest.approx(1.0, abs=1e-3)
    assert all(v["low"] <= v["share"] <= v["high"] for v in shares["labels"].values())
    raw = shares["raw_count"]
    counts = summary.label_counts["topic"]
    assert all(raw[label]["share"] == pytest.approx(counts.get(label, 0) / 60, abs=1e-4) for label in raw)
    saved = json.loads((tmp_path / "s.jsonl.summary.json").read_text(encoding="utf-8"))
    assert saved["shares"]["stance"]["labels"].keys() == summary.shares["stance"]["labels"].keys()
    assert "topic shares (pacc, 90% interval)" in format_summary(summary)
    assert not list(tmp_path.glob("*.npy")) and "__probabilities__" not in (tmp_path / "s.jsonl").read_text()
    few = score_archive(clf, write_jsonl(tmp_path / "few.jsonl", rows[:5]), tmp_path / "f.jsonl", progress=False)
    assert few.shares["topic"]["too_few_rows"] and "too few rows (5)" in format_summary(few)
    # a model saved before dev error rates existed: PCC by default, an adjusted method refused before any work
    old = tmp_path / "old"
    shutil.copytree(trained_model / "model", old)
    config = json.loads((old / "config.json").read_text(encoding="utf-8"))
    for task in config["tasks"]:
        task.pop("dev_rates", None)
    (old / "config.json").write_text(json.dumps(config), encoding="utf-8")
    legacy = load_classifier(old, device="cpu")
    summary = score_archive(legacy, source, tmp_path / "o.jsonl", progress=False)
    assert summary.shares["topic"]["method"] == "pcc" and "no dev error rates" in summary.shares["topic"]["note"]
    with pytest.raises(ValueError, match="--shares pacc: task"):
        score_archive(legacy, source, tmp_path / "o2.jsonl", progress=False, shares="pacc")
    assert not (tmp_path / "o2.jsonl.parts").exists()
    with pytest.raises(ValueError, match="--shares 'median'"):
        score_archive(clf, source, tmp_path / "o3.jsonl", progress=False, shares="median")


def test_the_report_shows_the_summarys_shares(trained_model, sample_rows, tmp_path):
    import json
    import re

    from aranews.inference import load_classifier
    from aranews.inference.report import write_report
    from aranews.inference.scoring import score_archive
    from tests.helpers import write_jsonl

    rows = [{"id": f"a{i}", "text": r["text"]} for i, r in enumerate(sample_rows["train"][:40])]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    clf = load_classifier(trained_model / "model", device="cpu")
    score_archive(clf, source, tmp_path / "s.jsonl", progress=False, abstain_below=0.99)
    write_report(tmp_path / "s.jsonl", tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S).group(1))
    shown = data["summary"]["topic: estimated shares (pacc, 90% interval)"]
    assert shown.count("[") == len(clf.tasks[0].labels)
    assert data["summary"]["topic: rows given no label (uncertain)"] >= 0
