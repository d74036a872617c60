"""Classification metrics through ``evaluate``, offline.

``evaluate.load("accuracy")`` fetches its script from the Hugging Face hub, which is not always
reachable. :class:`ClassificationReport` is an ``evaluate.Metric`` defined here, so it needs no
download; its figures come from scikit-learn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import datasets
import evaluate
import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from aranews.inference.task_kinds import TaskKind

__all__ = ["ClassificationReport", "MultiLabelReport", "task_report"]

_CITATION = """@article{scikit-learn, title={Scikit-learn: Machine Learning in Python},
author={Pedregosa, F. and others}, journal={Journal of Machine Learning Research},
volume={12}, pages={2825--2830}, year={2011}}"""


def _per_class(references, predictions, label_names: Sequence[str]) -> dict[str, dict[str, float]]:
    p, r, f, s = precision_recall_fscore_support(
        references, predictions, labels=list(range(len(label_names))), zero_division=0
    )
    return {
        name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, name in enumerate(label_names)
    }


class ClassificationReport(evaluate.Metric):
    """Accuracy; macro, micro and weighted F1; per-class precision, recall, F1 and support.

    Inputs are class ids; ``label_names`` gives the name of each id, so classes absent from a split
    still appear (with support 0) and macro-F1 averages over the whole label set.
    """

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Single-label classification report (scikit-learn figures).",
            citation=_CITATION,
            inputs_description="predictions, references: class ids; label_names: the name of each id",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, label_names: Sequence[str]) -> dict[str, Any]:
        ids = list(range(len(label_names)))
        return {
            "n": len(references),
            "accuracy": float(accuracy_score(references, predictions)),
            "macro_f1": float(f1_score(references, predictions, labels=ids, average="macro", zero_division=0)),
            "micro_f1": float(f1_score(references, predictions, labels=ids, average="micro", zero_division=0)),
            "weighted_f1": float(f1_score(references, predictions, labels=ids, average="weighted", zero_division=0)),
            "per_class": _per_class(references, predictions, label_names),
        }


class MultiLabelReport(evaluate.Metric):
    """Multi-label figures over 0/1 indicator rows: subset accuracy, macro / micro / weighted F1, per label."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Multi-label classification report (scikit-learn figures).",
            citation=_CITATION,
            inputs_description="predictions, references: 0/1 rows, one column per label; label_names",
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int64")),
                    "references": datasets.Sequence(datasets.Value("int64")),
                }
            ),
        )

    def _compute(self, predictions, references, label_names: Sequence[str]) -> dict[str, Any]:
        y_pred, y_true = np.asarray(predictions), np.asarray(references)
        p, r, f, s = precision_recall_fscore_support(y_true, y_pred, zero_division=0)
        return {
            "n": len(y_true),
            "accuracy": float(accuracy_score(y_true, y_pred)),  # exact match of the label set
            "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
            "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
            "weighted_f1": float(f1_score(y_true, y_pred, average="weighted", zero_division=0)),
            "per_class": {
                name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
                for i, name in enumerate(label_names)
            },
        }


def task_report(
    kind: TaskKind, label_names: Sequence[str], references: Sequence[Any], predictions: Sequence[Any]
) -> dict[str, Any]:
    """The report for one task of ``kind``; rows whose reference is missing must already be removed."""
    if not references:
        return {"n": 0}
    metric = ClassificationReport() if kind.one_label_per_row else MultiLabelReport()
    return metric.compute(predictions=list(predictions), references=list(references), label_names=list(label_names))
