"""The task kinds own what differs between single- and multi-label tasks (issue 21): each method against
the formula it replaces, and the callers asking the kind instead of testing ``problem_type``."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix, multilabel_confusion_matrix

from aranews.inference.config import TaskSpec
from aranews.inference.task_kinds import KINDS, MultiLabel, SingleLabel, kind_of
from aranews.training.config import TaskConfig
from tests.helpers import REPO

SINGLE, MULTI = SingleLabel(), MultiLabel()


def test_a_task_asks_its_kind():
    assert TaskSpec("topic", ["a", "b"]).kind is KINDS["single_label"]
    spec = TaskSpec("tags", ["a", "b", "c"], "multi_label")
    assert spec.kind is KINDS["multi_label"] and spec.thresholds == [0.5, 0.5, 0.5]
    assert TaskConfig("tags", problem_type="multi_label").kind is KINDS["multi_label"]
    with pytest.raises(ValueError, match="problem_type 'ordinal'; expected one of"):
        kind_of("ordinal")


def test_decisions_and_output_cells():
    probs = np.array([0.2, 0.7, 0.1], dtype=np.float32)
    assert SINGLE.decide(probs, ["a", "b", "c"]) == {"label": "b", "score": pytest.approx(0.7)}
    assert SINGLE.cell({"label": "b", "score": 0.7}) == ("b", 0.7)
    multi = MULTI.decide(np.array([0.6, 0.2, 0.9], np.float32), ["a", "b", "c"], [0.5, 0.5, 0.95])
    assert multi == {"labels": ["a"], "scores": [pytest.approx(0.6)]}
    assert MULTI.cell({"labels": ["a", "c"], "scores": [0.6, 0.9]}) == ("a|c", 0.9)
    assert MULTI.cell({"labels": [], "scores": []}) == ("", 0.0)
    assert MULTI.cell_labels("a|c") == ["a", "c"] and MULTI.cell_labels("") == [] and SINGLE.cell_labels("b") == ["b"]
    assert SINGLE.decision_labels({"label": "b"}) == ["b"] and MULTI.decision_labels({"labels": ["a", 3]}) == ["a"]
    assert SINGLE.decision_labels("junk") == [] and MULTI.decision_labels(None) == []


def test_probabilities_match_softmax_and_sigmoid():
    logits = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    assert np.allclose(SINGLE.probabilities(logits), torch.softmax(torch.from_numpy(logits), -1).numpy())
    assert np.allclose(MULTI.probabilities(logits), torch.sigmoid(torch.from_numpy(logits)).numpy())
    assert np.allclose(SINGLE.probabilities(logits).sum(1), 1.0)


def test_losses_ignore_unlabelled_rows():
    logits = torch.randn(4, 3)
    labels = torch.tensor([0, -100, 2, 1])
    expected = F.cross_entropy(logits, labels, ignore_index=-100)
    assert torch.allclose(SINGLE.loss(logits, labels), expected)
    assert SINGLE.loss(logits, torch.full((4,), -100)).item() == 0.0
    multi = torch.tensor([[1, 0, 1], [-100, -100, -100], [0, 0, 1], [0, 1, 0]])
    kept = torch.tensor([0, 2, 3])
    expected = F.binary_cross_entropy_with_logits(logits[kept], multi[kept].float())
    assert torch.allclose(MULTI.loss(logits, multi), expected)
    assert SINGLE.labelled(labels).tolist() == [True, False, True, True]
    assert MULTI.labelled(multi).tolist() == [True, False, True, True]


def test_label_encoding_and_weights():
    assert SINGLE.label_tensor(["a", "b"], ["b", None, "a"]).tolist() == [1, -100, 0]
    assert MULTI.label_tensor(["a", "b"], [["b"], None, ["a", "b"]]).tolist() == [[0, 1], [-100, -100], [1, 1]]
    weights = SINGLE.class_weights(2, torch.tensor([0, 0, 0, 1, -100]))
    assert weights.tolist() == pytest.approx([4 / 6, 4 / 2])
    assert MULTI.class_weights(2, torch.tensor([[1, 0], [1, 1], [0, 0], [0, 0]])).tolist() == pytest.approx([1.0, 3.0])
    assert SINGLE.parse_value("a") == ("a", None) and SINGLE.parse_value(3)[1] == "a label string"
    assert MULTI.parse_value("a| b") == (["a", "b"], None) and MULTI.parse_value([1])[1] == "a list of labels"
    assert MULTI.restrict(["a", "x"], ["a", "b"]) is None and SINGLE.restrict("a", ["a"]) == "a"


def test_confusion_figures_equal_sklearn():
    rng = np.random.default_rng(1)
    truth, predicted = rng.integers(0, 3, 50), rng.integers(0, 3, 50)
    assert SINGLE.confusion(truth, predicted, ["a", "b", "c"])["matrix"] == confusion_matrix(truth, predicted).tolist()
    t, p = rng.integers(0, 2, (40, 3)), rng.integers(0, 2, (40, 3))
    counts = MULTI.confusion(t, p, ["a", "b", "c"])["per_label_tn_fp_fn_tp"]
    assert [counts[k] for k in "abc"] == [m.ravel().tolist() for m in multilabel_confusion_matrix(t, p)]


def test_uncertainty_per_kind():
    probs = np.array([[0.5, 0.5], [1.0, 0.0]])
    assert SINGLE.uncertainty(probs, "margin", None).tolist() == [1.0, 0.0]
    assert SINGLE.uncertainty(probs, "entropy", None) == pytest.approx([1.0, 0.0], abs=1e-9)
    assert MULTI.uncertainty(np.array([[0.5, 0.99]]), "margin", [0.5, 0.5]).tolist() == [1.0]
    with pytest.raises(ValueError, match="strategy 'x'"):
        SINGLE.uncertainty(probs, "x", None)


def test_problem_type_is_compared_in_one_module():
    """Outside task_kinds.py, ``problem_type`` is passed along, never compared: the kind is asked."""
    offenders = []
    for folder in ("inference", "training", "src"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if path.name == "task_kinds.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Compare):
                    names = [n for n in [node.left, *node.comparators] if isinstance(n, ast.Attribute)]
                    if any(n.attr == "problem_type" for n in names):
                        offenders.append(f"{Path(path).relative_to(REPO)}:{node.lineno}")
    assert offenders == []
