"""Label shares (issue 22): the library's CC, PCC, ACC, PACC and EMQ equal QuaPy's on the same posteriors and
dev error rates, adjusted estimates undo a classifier's bias, and intervals cover and say when they cannot."""

from __future__ import annotations

import numpy as np
import pytest

from aranews.inference.shares import MIN_ROWS, DevRates, _prior_matched, estimate, estimate_shares


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
        "emq": EMQ.EM(dev.prior(), _prior_matched(dev, probs)[1])[0],  # EM on the bias-corrected posteriors
    }
    for method, expected in want.items():
        assert estimate(method, probs, dev) == pytest.approx(expected, abs=1e-6), method  # tolerance 1e-6


def test_emq_posteriors_are_bias_corrected_to_devs_prior(world):
    dev, probs, _ = world
    skewed = DevRates(dev.truth, dev.probs**1.5 / (dev.probs**1.5).sum(1, keepdims=True))  # miscalibrated
    matched_dev, matched = _prior_matched(skewed, probs)
    assert matched_dev.mean(0) == pytest.approx(skewed.prior(), abs=1e-5)  # the condition EM is consistent under
    assert matched.sum(1) == pytest.approx(np.ones(len(probs)))
    # consistency: on dev's own rows, EMQ gives back dev's shares (without the correction it does not)
    assert estimate("emq", skewed.probs, skewed) == pytest.approx(skewed.prior(), abs=0.01)
    from aranews.inference.shares import _em

    assert np.abs(_em(skewed.prior(), skewed.probs) - skewed.prior()).max() > 0.03


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


def test_an_interval_contains_its_estimate_even_for_a_classifier_that_tells_no_label_apart():
    """A classifier that puts every row on one label whatever its truth: the adjusted estimate is noise made
    large, the simulated errors lie on one side of it, and the interval is widened to the estimate rather than
    shown beside it (without that, here: a's estimate 0.62 with an interval of 0.00-0.57)."""
    rng = np.random.default_rng(10)
    k, dev_truth = 6, np.repeat(np.arange(6), 6)

    def useless(n: int) -> np.ndarray:
        z = rng.normal(0, 0.3, (n, k))
        z[:, 5] += 3.0
        return np.exp(z) / np.exp(z).sum(1, keepdims=True)

    dev = DevRates(dev_truth, useless(len(dev_truth)))
    shares = estimate_shares("pacc", useless(60), list("abcdef"), dev)["labels"]
    assert shares["a"]["share"] > 0.5  # far off: the archive's rows are all f-like
    assert all(v["low"] <= v["share"] <= v["high"] for v in shares.values())


def _coverage_on_label_shifted_archives(rare_share: float, archives: int, seed: int) -> tuple[float, float]:
    """Archives of 500 rows at mixes over the simplex, each with a fresh dev of 380 rows in which the third label
    has a ``rare_share`` of the rows: how often the 90% PACC intervals cover the archive's own shares, and
    their mean width."""
    rng = np.random.default_rng(seed)
    k, means = 3, np.array([[2.0, 0, 0], [0, 1.5, 0], [0.5, 0.5, 1.0]])

    def posteriors(labels):
        z = means[labels] + rng.normal(size=(len(labels), k)) * 1.2
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    covered, widths = [], []
    for _ in range(archives):
        dev_truth = rng.choice(k, size=380, p=[0.36, 0.64 - rare_share, rare_share])
        dev = DevRates(dev_truth, posteriors(dev_truth))
        truth = rng.choice(k, size=500, p=rng.dirichlet(np.ones(k)))
        true = np.bincount(truth, minlength=k) / len(truth)
        got = estimate_shares("pacc", posteriors(truth), ["a", "b", "c"], dev, replicates=100)["labels"]
        low, high = (np.array([got[label][key] for label in "abc"]) for key in ("low", "high"))
        covered.append((low <= true) & (true <= high))
        widths.append(high - low)
    return float(np.mean(covered)), float(np.mean(widths))


def test_intervals_cover_about_as_often_as_they_say_on_label_shifted_archives():
    """With a label of about 16 dev rows, the 90% intervals cover the archive's own shares in 88-97% of
    (archive, label)."""
    coverage, width = _coverage_on_label_shifted_archives(0.04, archives=60, seed=1)
    assert 0.88 <= coverage <= 0.97  # 0.93 here; the bootstrap over rows it replaced gave 0.85
    assert 0.05 < width < 0.45  # wide with a 16-row label, but not the whole range


def test_the_prior_keeps_intervals_honest_when_a_label_has_a_handful_of_dev_rows(monkeypatch):
    """A label with about 5 dev rows: resampling those rows alone under-covers (0.887 here), because new rows
    of the label may look like none of the five; the prior of one pseudo-row spread over dev restores it."""
    from aranews.inference import shares

    with_prior, width = _coverage_on_label_shifted_archives(0.012, archives=100, seed=3)
    monkeypatch.setattr(shares, "PRIOR_ROWS", 1e-9)
    without, narrower = _coverage_on_label_shifted_archives(0.012, archives=100, seed=3)
    assert without < 0.9 <= with_prior <= 0.99  # 0.887 and 0.967 here
    assert with_prior - without >= 0.04
    assert narrower < width < 0.7


def test_interval_work_does_not_grow_with_the_archive(world):
    import time

    dev, probs, _ = world
    big = np.repeat(probs, 70, axis=0)  # 210,000 rows
    started = time.perf_counter()
    shares = estimate_shares("pacc", big, ["a", "b", "c"], dev, replicates=200)
    assert time.perf_counter() - started < 10
    assert shares["interval"].startswith("simulated archives")
    # cc does not correct the classifier's bias: its interval shows its noise, centred on the count
    cc = estimate_shares("cc", probs, ["a", "b", "c"], dev)["labels"]
    assert all(v["low"] <= v["share"] <= v["high"] for v in cc.values())
    assert estimate_shares("cc", probs, ["a", "b", "c"])["interval"].startswith("row bootstrap")


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


def test_shares_per_period_and_source_each_have_their_interval(trained_model, sample_rows, tmp_path):
    from aranews.inference import load_classifier
    from aranews.inference.scoring import score_archive
    from tests.helpers import write_jsonl

    months = ["2024-01-15", "2024-03-02", "2024-06-20"]  # a span over 120 days: by month
    rows = [
        {"id": f"a{i}", "text": r["text"], "date": months[i % 3], "source": "big" if i % 10 else "small"}
        for i, r in enumerate(sample_rows["train"][:120])
    ]
    rows.append({"id": "undated", "text": rows[0]["text"], "source": "big"})
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    clf = load_classifier(trained_model / "model", device="cpu")
    summary = score_archive(clf, source, tmp_path / "s.jsonl", progress=False, keep_columns=["date", "source"])
    by = summary.shares_by["topic"]
    assert by["unit"] == "month" and list(by["period"]) == ["2024-01", "2024-03", "2024-06"]
    assert [by["period"][m]["rows"] for m in by["period"]] == [40, 40, 40]  # the undated row is in no period
    assert all("low" in v for v in by["period"]["2024-01"]["labels"].values())
    assert by["source"]["big"]["rows"] == 109 and by["source"]["small"]["rows"] == 12
    assert by["source"]["small"]["too_few_rows"] and "low" not in by["source"]["small"]["labels"]["security"]
    # without a kept source column or dates: the archive's shares only, no groups invented
    plain = score_archive(clf, source, tmp_path / "p.jsonl", progress=False)
    assert plain.shares_by["topic"]["period"] == {} and plain.shares_by["topic"]["source"] == {}
    _the_report_draws_them(tmp_path, clf, by)


def _the_report_draws_them(tmp_path, clf, by):
    """In a real browser: one whisker (point and interval) per label per group that has an interval, and the
    words "too few rows" for the group that has not."""
    import re

    from aranews.inference.report import write_report
    from tests.test_report import CHROMIUM, _dom

    write_report(tmp_path / "s.jsonl", tmp_path / "r.html")
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine (make browser)")
    dom = _dom((tmp_path / "r.html").as_uri(), tmp_path)
    drawn = re.findall(r'<g class="interval" data-group="([^"]+)" data-label="([^"]+)" data-share="([^"]+)"', dom)
    n_labels = {task.name: len(task.labels) for task in clf.tasks}
    with_interval = sum(1 for g in [*by["period"].values(), *by["source"].values()] if not g.get("too_few_rows"))
    assert len(drawn) == with_interval * n_labels["topic"] + with_interval * n_labels["stance"]
    _group, label, share = next(d for d in drawn if d[0] == "2024-03")  # the first task drawn: topic
    assert float(share) == pytest.approx(by["period"]["2024-03"]["labels"][label]["share"])
    assert re.search(r'class="few" data-group="small"[^>]*>too few rows \(12\)', dom)


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


def test_shifted_posteriors_are_bayes_under_the_new_prior_and_em_finds_that_prior():
    from aranews.inference.shares import em_prior, shifted

    rng = np.random.default_rng(1)
    means, source, target = np.array([-2.0, 0.0, 2.0]), np.full(3, 1 / 3), np.array([0.7, 0.2, 0.1])
    truth = rng.choice(3, size=20000, p=target)
    x = rng.normal(means[truth], 1.0)
    likelihood = np.exp(-0.5 * (x[:, None] - means[None, :]) ** 2)
    posterior = lambda prior: likelihood * prior / (likelihood * prior).sum(1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(shifted(posterior(source), source, target), posterior(target), rtol=1e-10)
    np.testing.assert_allclose(shifted(posterior(source), source, source), posterior(source), rtol=1e-12)
    estimated = em_prior(posterior(source), source)
    assert estimated.sum() == pytest.approx(1.0)
    assert np.abs(estimated - target).max() < 0.02  # sampling error of 20,000 rows, not the source's 1/3
