"""Evaluation report: figures equal scikit-learn's on fixed predictions; calibration, thresholds,
mistakes and plots; the generated model card repeats the report's figures."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from aranews.inference.config import TaskSpec
from aranews.training.evaluation import calibration, confident_mistakes, task_figures, tune_thresholds

TOPIC = TaskSpec("topic", ["a", "b", "c"])
PROBS = np.array(
    [
        [0.7, 0.2, 0.1],  # a, true a
        [0.1, 0.8, 0.1],  # b, true b
        [0.5, 0.4, 0.1],  # a, true b (mistake, 0.5)
        [0.2, 0.2, 0.6],  # c, true c
        [0.9, 0.05, 0.05],  # a, true c (mistake, 0.9)
        [0.3, 0.6, 0.1],  # b, true a (mistake, 0.6)
        [0.3, 0.3, 0.4],  # unlabelled
    ]
)
TRUTH = np.array([0, 1, 1, 2, 2, 0, -100])


def test_single_label_figures_equal_sklearn():
    report = task_figures(TOPIC, PROBS, TRUTH)
    y_true, y_pred = TRUTH[:6], PROBS[:6].argmax(1)
    assert report["n"] == 6
    assert report["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    for average in ("macro", "micro", "weighted"):
        assert report[f"{average}_f1"] == pytest.approx(f1_score(y_true, y_pred, average=average))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    for i, label in enumerate("abc"):
        assert report["per_class"][label] == pytest.approx(
            {"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]}
        )
    assert report["confusion_matrix"]["matrix"] == confusion_matrix(y_true, y_pred).tolist()
    assert report["confusion_matrix"]["labels"] == ["a", "b", "c"]


def test_expected_calibration_error_by_hand():
    confidence = np.array([0.95, 0.95, 0.55, 0.55, 0.15])
    correct = np.array([1, 0, 1, 1, 0])
    cal = calibration(confidence, correct, n_bins=10)
    # bins: (0.9,1]: acc 0.5 conf 0.95; (0.5,0.6]: acc 1 conf 0.55; (0.1,0.2]: acc 0 conf 0.15
    expected = 2 / 5 * 0.45 + 2 / 5 * 0.45 + 1 / 5 * 0.15
    assert cal["ece"] == pytest.approx(expected)
    assert sum(b["count"] for b in cal["bins"]) == 5
    report = task_figures(TOPIC, PROBS, TRUTH)
    conf, corr = PROBS[:6].max(1), PROBS[:6].argmax(1) == TRUTH[:6]
    assert report["calibration"]["ece"] == pytest.approx(calibration(conf, corr)["ece"])


def test_confident_mistakes_are_wrong_and_sorted():
    rows = confident_mistakes(TOPIC, PROBS[:6], TRUTH[:6], [f"id{i}" for i in range(6)], ["نص"] * 6)
    assert [r["id"] for r in rows] == ["id4", "id5", "id2"]
    assert [r["confidence"] for r in rows] == [0.9, 0.6, 0.5]
    assert all(r["true"] != r["predicted"] for r in rows)


def test_threshold_tuning_finds_the_separating_threshold():
    probs = np.array([[0.9, 0.2], [0.8, 0.35], [0.3, 0.1], [0.2, 0.4], [0.85, 0.05]])
    truth = np.array([[1, 0], [1, 1], [0, 0], [0, 1], [1, 0]])
    thresholds = tune_thresholds(probs, truth)
    # label 0 is separated anywhere in (0.3, 0.8]: the tie goes to the grid value nearest 0.5
    assert thresholds[0] == 0.5
    # label 1 positives are 0.35 and 0.4, negatives at most 0.2: a threshold in (0.2, 0.35]
    assert 0.2 < thresholds[1] <= 0.35


def test_multi_label_figures_and_threshold_table():
    task = TaskSpec("tags", ["x", "y"], "multi_label", thresholds=[0.5, 0.3])
    probs = np.array([[0.9, 0.2], [0.4, 0.35], [0.6, 0.1], [0.1, 0.9]])
    truth = np.array([[1, 0], [0, 1], [1, 0], [-100, -100]])
    report = task_figures(task, probs, truth)
    predicted = (probs[:3] >= [0.5, 0.3]).astype(int)
    assert report["n"] == 3
    assert report["macro_f1"] == pytest.approx(f1_score(truth[:3], predicted, average="macro"))
    assert [t["threshold"] for t in report["thresholds"]] == [0.5, 0.3]
    assert report["thresholds"][1]["f1"] == pytest.approx(f1_score(truth[:3, 1], predicted[:, 1]))


def test_run_report_plots_baseline_and_card_agree(trained_model):
    from aranews.training.config import load_config
    from aranews.training.model_card import render_model_card
    from tests.helpers import REPO

    report_dir = trained_model / "report"
    report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    metrics = json.loads((trained_model / "metrics.json").read_text(encoding="utf-8"))
    for task in ("topic", "stance"):
        r = report["tasks"][task]
        assert r["accuracy"] == pytest.approx(metrics["dev"][task]["accuracy"])  # same model, same split
        for kind in ("confusion_matrix", "reliability_diagram"):
            assert (report_dir / report["files"][task][kind]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        mistakes = (report_dir / report["files"][task]["mistakes"]).read_text(encoding="utf-8").splitlines()
        assert len(mistakes) == min(50, round(r["n"] * (1 - r["accuracy"])))
        assert report["baseline"]["tasks"][task]["n"] == r["n"]
    card = render_model_card(trained_model, load_config(REPO / "configs" / "default.yaml"))
    for task in ("topic", "stance"):
        r, b = report["tasks"][task], report["baseline"]["tasks"][task]
        assert (
            f"| {task} | dev | {r['accuracy']:.3f} | {b['accuracy']:.3f} | {r['macro_f1']:.3f} | {b['macro_f1']:.3f} |"
            in card
        )
        assert f"| {r['calibration']['ece']:.3f} |" in card


def test_card_tabulates_benchmark_results(tmp_path, trained_model):
    from aranews.training.config import load_config
    from aranews.training.model_card import render_model_card
    from tests.helpers import REPO

    result = {
        "dataset": "/data/ant_multisource",
        "task": "topic",
        "encoder": "/tmp/e5-small-hf",
        "n_train": 800,
        "n_dev": 400,
        "max_length": 192,
        "transformer": {"accuracy": 0.9, "macro_f1": 0.81234},
        "baseline": {"accuracy": 0.85, "macro_f1": 0.7},
    }
    path = tmp_path / "quality.json"
    path.write_text(json.dumps(result), encoding="utf-8")
    card = render_model_card(trained_model, load_config(REPO / "configs" / "default.yaml"), benchmarks=[path])
    assert (
        "| ant_multisource | topic | e5-small-hf | mean | 192 head_tail | 800 / 400 | 1 | 0.900 | 0.812 | 0.700 | +0.112 |"
        in card
    )
    assert "datasets:\n- " in card and "- ant_multisource\n" in card


def test_multi_label_mistakes_are_wrong_decisions_most_confident_first():
    from aranews.training.evaluation import confident_label_mistakes

    task = TaskSpec("tags", ["x", "y"], "multi_label", thresholds=[0.5, 0.3])
    probs = np.array([[0.9, 0.2], [0.4, 0.35], [0.05, 0.1]])
    truth = np.array([[0, 0], [1, 1], [1, 0]])
    rows = confident_label_mistakes(task, probs, truth, ["a", "b", "c"], ["نص"] * 3)
    # wrong: a/x given at 0.9 (conf 0.9); c/x withheld at 0.05 (conf 0.95); b/x withheld at 0.4 (conf 0.6)
    assert [(r["id"], r["label"], r["error"]) for r in rows] == [
        ("c", "x", "false_negative"),
        ("a", "x", "false_positive"),
        ("b", "x", "false_negative"),
    ]
