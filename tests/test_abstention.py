"""Abstention (issue 22): a row whose top probability is below the level gets no label for that task and
``uncertain: true``; it is scored and counted, kept out of the label counts, and still in the shares."""

from __future__ import annotations

import pytest

from aranews.inference import load_classifier
from aranews.inference.config import TaskSpec
from aranews.inference.schema import ConfigError
from aranews.inference.scoring import format_summary, score_archive
from aranews.training.config import config_from_dict
from tests.helpers import read_jsonl, write_jsonl


@pytest.fixture(scope="module")
def classifier(trained_model):
    return load_classifier(trained_model / "model", device="cpu")


def test_predict_gives_no_label_below_the_level(classifier, sample_rows):
    texts = [r["text"] for r in sample_rows["dev"][:8]]
    probs = classifier.predict_proba(texts)["topic"]
    level = float(sorted(probs.max(1))[4])  # about half the rows fall below
    predictions = classifier.predict(texts, abstain_below=level)
    for p, row in zip(predictions, probs, strict=True):
        below = bool(row.max() < level)
        assert p["topic"]["uncertain"] is below and (p["topic"]["label"] is None) is below
        assert p["topic"]["score"] == pytest.approx(row.max(), abs=1e-6)
    assert "uncertain" not in classifier.predict(texts[0])["topic"]  # no level: as before
    with pytest.raises(ValueError, match="abstain_below=1.5"):
        classifier.predict(texts, abstain_below=1.5)


def test_the_scorer_counts_uncertain_rows(classifier, sample_rows, tmp_path):
    rows = [{"id": f"a{i}", "text": r["text"]} for i, r in enumerate(sample_rows["train"][:40])]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    plain = score_archive(classifier, source, tmp_path / "plain.jsonl", progress=False)
    summary = score_archive(classifier, source, tmp_path / "s.jsonl", progress=False, abstain_below=0.99)
    out = read_jsonl(tmp_path / "s.jsonl")
    uncertain = [r for r in out if r["topic_uncertain"]]
    assert summary.scored == 40 and summary.uncertain["topic"] == len(uncertain) > 0
    assert all(r["topic"] is None for r in uncertain)
    assert sum(summary.label_counts["topic"].values()) == 40 - len(uncertain)  # out of the hard counts
    assert summary.shares["topic"]["rows"] == 40  # the shares still use every row
    assert summary.shares["topic"]["labels"] == plain.shares["topic"]["labels"]
    assert "row(s) given no label" in format_summary(summary)
    assert "topic_uncertain" not in read_jsonl(tmp_path / "plain.jsonl")[0]


def test_bad_abstention_levels_are_refused():
    assert TaskSpec("tags", ["a", "b"], "multi_label", abstain_below=0.5).check() == [
        ("abstain_below", 0.5, "null: abstention is for single-label tasks")
    ]
    config = {"data": {"train": "t.jsonl", "dev": "d.jsonl"}, "tasks": [{"name": "topic", "abstain_below": 1.5}]}
    with pytest.raises(ConfigError, match=r"tasks\[0\].abstain_below: got 1.5; expected a value in \(0, 1\)"):
        config_from_dict(config)
    multi = {
        "data": {"train": "t.jsonl", "dev": "d.jsonl"},
        "tasks": [{"name": "tags", "problem_type": "multi_label", "abstain_below": 0.5}],
    }
    with pytest.raises(ConfigError, match="abstention is for single-label tasks"):
        config_from_dict(multi)


def test_the_command_line_checks_the_level(trained_model, capsys):
    from aranews.cli import main

    with pytest.raises(SystemExit):
        main(
            ["score", "--model", str(trained_model / "model"), "a.jsonl", "--out", "o.jsonl", "--abstain-below", "1.5"]
        )
    assert "--abstain-below" in capsys.readouterr().err


def test_risk_coverage_and_the_level_for_a_target_accuracy():
    import numpy as np

    from aranews.training.evaluation import risk_coverage

    probs = np.array([[0.95, 0.05], [0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
    truth = np.array([0, 0, 1, 0, 1])  # right, right, wrong, right, wrong (by descending confidence)
    found = risk_coverage(probs, truth, points=5, targets=(0.75, 0.99))
    assert [p["accuracy"] for p in found["curve"]] == [1.0, 1.0, pytest.approx(0.6667, abs=1e-4), 0.75, 0.6]
    assert found["targets"]["0.75"] == {"abstain_below": 0.7, "coverage": 0.8, "accuracy": 0.75}
    assert found["targets"]["0.99"] == {"abstain_below": 0.9, "coverage": 0.4, "accuracy": 1.0}


def test_evaluate_prints_the_level_for_a_target(trained_model, capsys):
    from aranews.cli import main
    from tests.helpers import SAMPLE

    model = str(trained_model / "model")
    assert main(["evaluate", "--model", model, "--data", str(SAMPLE / "dev.jsonl"), "--target-accuracy", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "--abstain-below" in out or "no abstention level reaches accuracy 0.5" in out
