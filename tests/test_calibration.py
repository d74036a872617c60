"""Calibration fitted on dev (issue 22): what a temperature recovers and leaves alone, how it is saved and
exported, and the error measure checked by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aranews.inference import load_classifier
from aranews.training.calibration import _softmax, cross_fitted, ece, fit, nll


def _synthetic(n: int, k: int, temperature: float, seed: int = 0, prior: np.ndarray | None = None):
    """Labels drawn from softmax(z); the model reports z * temperature (over-confident when > 1)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, (n, k)) + (np.log(prior) if prior is not None else 0.0)
    p = _softmax(z)
    labels = np.array([rng.choice(k, p=row) for row in p])
    return z * temperature, labels


@pytest.mark.parametrize("true_temperature", [0.5, 2.0, 3.0])
def test_a_known_temperature_is_recovered(true_temperature):
    logits, labels = _synthetic(4000, 4, true_temperature)
    found = fit("temperature", logits, labels)
    assert found.temperature == pytest.approx(true_temperature, rel=0.1)
    assert found.figures["nll_after_cross_fitted"] < found.figures["nll_before"]
    assert found.figures["ece_after_cross_fitted"] < found.figures["ece_before"]


def test_a_temperature_never_changes_the_argmax():
    logits, labels = _synthetic(500, 5, 2.5, seed=3)
    found = fit("temperature", logits, labels)
    assert (found.apply(logits).argmax(1) == logits.argmax(1)).all()


def test_bias_correction_measures_better_under_a_skewed_prior_but_is_opt_in():
    logits, labels = _synthetic(4000, 3, 1.0, seed=5)
    shifted = logits + np.array([1.5, 0.0, -1.5])  # a model that over-predicts the first label
    auto = fit("auto", shifted, labels)
    assert auto.method in ("temperature", "none") and auto.bias is None  # auto never moves a decision
    compared = auto.figures["compared_nll_cross_fitted"]
    assert compared["bias_corrected"] < compared["temperature"]
    assert auto.figures["accuracy_cross_fitted"]["bias_corrected"] > auto.figures["accuracy_before"]
    chosen = fit("bias_corrected", shifted, labels)
    assert chosen.method == "bias_corrected" and len(chosen.bias) == 3


def test_auto_keeps_nothing_when_nothing_helps():
    logits, labels = _synthetic(2000, 3, 1.0, seed=7)  # already calibrated
    found = fit("auto", logits, labels)
    if found.method == "none":
        assert found.temperature is None and "why" in found.figures
    else:  # a fit may win by noise, but only by a hair
        assert found.figures["nll_after_cross_fitted"] <= found.figures["nll_before"]


def test_cross_fitted_rows_are_never_fitted_on_themselves():
    logits, labels = _synthetic(200, 3, 2.0, seed=1)
    out = cross_fitted("temperature", logits, labels, multi=False, folds=5)
    assert out.shape == logits.shape and np.allclose(out.sum(1), 1.0)
    assert not np.allclose(out, _softmax(logits / fit("temperature", logits, labels).temperature))


def test_ece_and_nll_by_hand():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    labels = np.array([0, 1, 1, 0])
    # bins of width 0.1: 0.9 -> bin (0.8, 0.9], correct; 0.8 -> (0.7, 0.8], wrong; 0.7 -> (0.6, 0.7], correct;
    # 0.6 -> (0.5, 0.6], correct. ECE = 1/4 (|1-.9| + |0-.8| + |1-.7| + |1-.6|) = 0.4
    assert ece(probs, labels) == pytest.approx(0.4)
    assert nll(probs, labels) == pytest.approx(-np.mean(np.log([0.9, 0.2, 0.7, 0.6])))
    multi = np.array([[0.9, 0.2]])
    assert ece(multi, np.array([[1, 1]]), multi=True) == pytest.approx(0.5 * 0.1 + 0.5 * 0.8)


def test_training_saves_the_calibration_and_loading_applies_it(trained_model, sample_rows, tmp_path):
    metrics = json.loads((trained_model / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics["calibration"]) == {"topic", "stance"}
    for figures in metrics["calibration"].values():
        assert {"ece_before", "ece_after_cross_fitted", "nll_before", "nll_after_cross_fitted", "folds"} <= set(figures)
    clf = load_classifier(trained_model / "model", device="cpu", precision="fp32")
    texts = [r["text"] for r in sample_rows["dev"][:6]]
    config = json.loads((trained_model / "model" / "config.json").read_text(encoding="utf-8"))
    for task in clf.tasks:
        saved = next(t for t in config["tasks"] if t["name"] == task.name)
        assert saved["temperature"] == task.temperature and saved["bias"] == task.bias
    # the same model with a known temperature: saved, loaded, and every probability goes through it
    clf.tasks[0].temperature, clf.tasks[0].bias = 2.0, None
    saved = clf.save_pretrained(tmp_path / "calibrated")
    again = load_classifier(saved, device="cpu", precision="fp32")
    logits = again.logits_from_encoded(again.windower.encode(texts), ["topic"])["topic"]
    want = _softmax(logits / 2.0)
    assert np.allclose(again.predict_proba(texts)["topic"], want, atol=1e-6)
    assert np.allclose(again.probabilities("topic", logits, calibrated=False), _softmax(logits), atol=1e-6)
    assert [p["topic"]["label"] for p in again.predict(texts)] == [again.tasks[0].labels[i] for i in logits.argmax(1)]


def test_a_model_saved_before_calibration_scores_as_before(trained_model, sample_rows, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(trained_model / "model", old)
    config = json.loads((old / "config.json").read_text(encoding="utf-8"))
    for task in config["tasks"]:
        task.pop("temperature", None)
        task.pop("bias", None)
    (old / "config.json").write_text(json.dumps(config), encoding="utf-8")
    clf = load_classifier(old, device="cpu", precision="fp32")
    texts = [r["text"] for r in sample_rows["dev"][:4]]
    logits = clf.logits_from_encoded(clf.windower.encode(texts), ["stance"])["stance"]
    assert clf.tasks[1].temperature is None
    assert np.allclose(clf.predict_proba(texts)["stance"], _softmax(logits), atol=1e-6)


def test_the_export_carries_the_temperature(trained_model, sample_rows, tmp_path):
    from transformers import pipeline

    from aranews.inference.export import export_task

    clf = load_classifier(trained_model / "model", device="cpu", precision="fp32")
    clf.tasks[0].temperature, clf.tasks[0].bias = 3.0, [0.2] + [0.0] * (len(clf.tasks[0].labels) - 1)
    out = export_task(clf, "topic", tmp_path / "topic")
    text = "روسيا وتركيا تبحثان التعاون في مجال الطاقة"
    pipe = pipeline("text-classification", model=str(out), device="cpu")
    exported = {d["label"]: d["score"] for d in pipe([clf.windower.preprocess(text)], top_k=None)[0]}
    mine = dict(zip(clf.tasks[0].labels, clf.predict_proba(text)["topic"], strict=True))
    assert exported == pytest.approx(mine, abs=1e-4)


def test_the_evaluation_report_shows_the_raw_and_the_honestly_measured_calibration(trained_model, tmp_path):
    import struct

    from aranews.resources import sample_path
    from aranews.training.config import DataConfig, TaskConfig
    from aranews.training.data import encode_split, load_and_validate
    from aranews.training.evaluation import build_report

    clf = load_classifier(trained_model / "model", device="cpu", precision="fp32")
    clf.tasks[0].temperature, clf.tasks[0].bias = 2.0, None  # a calibration the report must measure, not trust
    clf.tasks[1].temperature = clf.tasks[1].bias = None  # and one task without
    data = DataConfig(train=str(sample_path("train.jsonl")), dev=str(sample_path("dev.jsonl")))
    _train, evals, _ = load_and_validate(data, [TaskConfig("topic"), TaskConfig("stance")])
    dev = encode_split(clf.windower, evals["dev"], clf.tasks)
    for split_name, measured in (("dev", "cross-fitted on dev"), ("test", "measured once on test")):
        report = build_report(clf, dev, tmp_path / split_name, split_name=split_name)
        topic, stance = report["tasks"]["topic"], report["tasks"]["stance"]
        assert measured in topic["calibration"]["measured"]
        assert topic["ece"] == topic["calibration"]["ece"]
        assert topic["ece_before_calibration"] == topic["calibration_before"]["ece"]
        assert topic["nll"] > 0 and topic["nll_before_calibration"] > 0 and "nll" not in stance
        assert "calibration_before" not in stance and "measured" not in stance["calibration"]
        with open(tmp_path / split_name / "reliability_topic.png", "rb") as handle:
            two_panels = struct.unpack(">I", handle.read(24)[16:20])[0]
        with open(tmp_path / split_name / "reliability_stance.png", "rb") as handle:
            one_panel = struct.unpack(">I", handle.read(24)[16:20])[0]
        assert two_panels > 1.8 * one_panel  # before | after, side by side
    from aranews.training.evaluation import split_logits

    raw = clf.probabilities("topic", split_logits(clf, dev)["topic"], False)
    from aranews.training.evaluation import calibration

    truth = dev.labels["topic"].numpy()
    raw, truth = raw[truth >= 0], truth[truth >= 0]
    assert topic["calibration_before"]["ece"] == pytest.approx(calibration(raw.max(1), raw.argmax(1) == truth)["ece"])
