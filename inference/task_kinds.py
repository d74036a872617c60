"""What differs between kinds of task, in one place.

A task is *single-label* (softmax; one label per article, the most probable) or *multi-label* (sigmoid;
every label at or above its threshold). Everything that depends on the kind (probabilities from logits,
the decision and its output cell, label encoding and the loss, which rows are labelled, class weights,
the metrics and baseline's target shape, the Label Studio control, the transformers export) is a method
of :class:`TaskKind`, and callers ask ``task.kind`` (``TaskSpec.kind`` / ``TaskConfig.kind``) instead of
testing the task's ``problem_type``. ``problem_type`` strings are read in this module only: adding a
third kind is one more subclass here, its tests and the config schema's list of names.

This module imports no torch at import time (torch-specific methods import it when called), so the
command line and the report can use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["DEFAULT_KIND", "KINDS", "MultiLabel", "SingleLabel", "TaskKind", "kind_of"]

UNLABELLED = -100  # the label id of a row that does not carry this task's label (ignored by the loss)


class TaskKind:
    """The behaviour of one kind of task. Subclasses are stateless; use :data:`KINDS`."""

    name: str = ""  # the config's ``problem_type``
    transformers_problem_type: str = ""  # transformers' ``config.problem_type`` for an exported model
    label_studio_choice: str = ""  # the Label Studio ``Choices`` control's ``choice`` attribute
    description: str = ""  # one line for model cards
    uses_thresholds: bool = False  # a decision threshold per label, tuned on dev and saved with the model
    one_label_per_row: bool = True  # a confusion matrix of labels, confident mistakes per row

    # -- configuration -------------------------------------------------------------------------------
    def default_thresholds(self, n_labels: int, threshold: float = 0.5) -> list[float] | None:
        return None

    def threshold_problems(
        self, labels: Sequence[str], thresholds: Sequence[float] | None
    ) -> list[tuple[str, Any, str]]:
        if thresholds is not None:
            return [("thresholds", thresholds, f"null: thresholds are only for {MultiLabel.name} tasks")]
        return []

    # -- label values (training data, Label Studio) ---------------------------------------------------
    def parse_value(self, value: Any) -> tuple[Any, str | None]:
        """A training-data cell as this kind's label value, or ``(None, what was expected)``."""
        raise NotImplementedError

    def values_of(self, value: Any) -> list[str]:
        """The labels in one label value (``None``: none)."""
        raise NotImplementedError

    def restrict(self, value: Any, labels: Sequence[str]) -> Any:
        """``value`` if a model with ``labels`` can be scored on it, else ``None`` (unlabelled)."""
        raise NotImplementedError

    def vote(self, choices: list[str]) -> Any:
        """One annotator's choices as a comparable (hashable) vote."""
        raise NotImplementedError

    def from_vote(self, vote: Any) -> Any:
        """The label value of an agreed vote."""
        raise NotImplementedError

    # -- encoding, loss, weights (torch) ----------------------------------------------------------------
    def label_tensor(self, labels: Sequence[str], values: Sequence[Any]) -> Any:
        raise NotImplementedError

    def labelled(self, labels: Any) -> Any:
        """Row mask of a label array or tensor: the rows that carry this task's label."""
        raise NotImplementedError

    def loss(self, logits: Any, labels: Any, weight: Any = None) -> Any:
        raise NotImplementedError

    def class_weights(self, n_labels: int, labels: Any) -> Any:
        raise NotImplementedError

    # -- probabilities and decisions -------------------------------------------------------------------
    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predicted(self, probs: np.ndarray, thresholds: Sequence[float] | None = None) -> np.ndarray:
        """Predictions of a probability matrix: class ids ``(n,)`` or a 0/1 matrix ``(n, labels)``."""
        raise NotImplementedError

    def decision_keys(self, probs: np.ndarray, thresholds: Sequence[float] | None = None) -> list[Any]:
        """One comparable decision per row (for agreement checks)."""
        raise NotImplementedError

    def decide(
        self,
        probs: np.ndarray,
        labels: Sequence[str],
        thresholds: Sequence[float] | None = None,
        abstain_below: float | None = None,
    ) -> dict:
        """The prediction of one probability row: ``{"label", "score"}`` or ``{"labels", "scores"}``; with
        ``abstain_below`` (single-label), a top probability below it gives ``{"label": None, "score",
        "uncertain": True}``."""
        raise NotImplementedError

    def cell(self, decision: dict) -> tuple[str, float]:
        """A decision as the scorer's output columns ``<task>`` and ``<task>_score``."""
        raise NotImplementedError

    def decision_labels(self, decision: Any) -> list[str]:
        """The labels of a decision (as :meth:`decide` writes it; anything else: none)."""
        raise NotImplementedError

    def cell_labels(self, cell: Any) -> list[str]:
        """The labels in a scorer output's ``<task>`` cell."""
        raise NotImplementedError

    def uncertainty(self, probs: np.ndarray, strategy: str, thresholds: Sequence[float] | None) -> np.ndarray:
        """How unsure each row is, in [0, 1]."""
        raise NotImplementedError

    def reliability(self, probs: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(confidence, correct)`` pairs for a calibration table."""
        raise NotImplementedError

    def baseline_target(self, labels: Sequence[str], values: Sequence[Any]) -> np.ndarray:
        """The TF-IDF baseline's target: class ids or a 0/1 matrix."""
        raise NotImplementedError

    def confusion(self, truth: np.ndarray, predicted: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
        """The confusion figures of labelled rows (for the evaluation report)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<task kind {self.name}>"


class SingleLabel(TaskKind):
    name = "single_label"
    transformers_problem_type = "single_label_classification"
    label_studio_choice = "single-radio"
    description = "single-label (softmax)"

    def parse_value(self, value: Any) -> tuple[Any, str | None]:
        return (value, None) if isinstance(value, str) else (None, "a label string")

    def values_of(self, value: Any) -> list[str]:
        return [] if value is None else [value]

    def restrict(self, value: Any, labels: Sequence[str]) -> Any:
        return value if value in labels else None

    def vote(self, choices: list[str]) -> Any:
        return choices[0] if choices else None

    def from_vote(self, vote: Any) -> Any:
        return vote

    def label_tensor(self, labels: Sequence[str], values: Sequence[Any]) -> Any:
        import torch

        index = {label: i for i, label in enumerate(labels)}
        return torch.tensor([index[v] if v is not None else UNLABELLED for v in values], dtype=torch.long)

    def labelled(self, labels: Any) -> Any:
        return labels != UNLABELLED

    def loss(self, logits: Any, labels: Any, weight: Any = None) -> Any:
        import torch.nn.functional as F

        if not (labels != UNLABELLED).any():  # no row of this batch has this task's label
            return logits.sum() * 0.0
        return F.cross_entropy(logits.float(), labels, weight=weight, ignore_index=UNLABELLED)

    def class_weights(self, n_labels: int, labels: Any) -> Any:
        """Inverse label frequency."""
        import torch

        present = labels[labels != UNLABELLED]
        counts = torch.bincount(present, minlength=n_labels).float()
        return present.numel() / (n_labels * counts.clamp(min=1.0))

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        import torch

        return torch.softmax(torch.from_numpy(np.ascontiguousarray(logits)), dim=-1).numpy()

    def predicted(self, probs: np.ndarray, thresholds: Sequence[float] | None = None) -> np.ndarray:
        return probs.argmax(1) if len(probs) else np.zeros(0, dtype=int)

    def decision_keys(self, probs: np.ndarray, thresholds: Sequence[float] | None = None) -> list[Any]:
        return [int(p.argmax()) for p in probs]

    def decide(
        self,
        probs: np.ndarray,
        labels: Sequence[str],
        thresholds: Sequence[float] | None = None,
        abstain_below: float | None = None,
    ) -> dict:
        j = int(probs.argmax())
        score = round(float(probs[j]), 6)
        if abstain_below is not None:
            if float(probs[j]) < abstain_below:
                return {"label": None, "score": score, "uncertain": True}
            return {"label": labels[j], "score": score, "uncertain": False}
        return {"label": labels[j], "score": score}

    def cell(self, decision: dict) -> tuple[str, float]:
        return decision["label"], decision["score"]

    def decision_labels(self, decision: Any) -> list[str]:
        label = decision.get("label") if isinstance(decision, dict) else None
        return [label] if isinstance(label, str) else []

    def cell_labels(self, cell: Any) -> list[str]:
        return [] if cell in (None, "") else [cell]

    def uncertainty(self, probs: np.ndarray, strategy: str, thresholds: Sequence[float] | None) -> np.ndarray:
        probs = np.asarray(probs, dtype=np.float64)
        if strategy == "margin":
            top = np.sort(probs, axis=1)[:, ::-1]
            second = top[:, 1] if probs.shape[1] > 1 else 0.0
            return 1.0 - (top[:, 0] - second)
        if strategy == "entropy":
            p = np.clip(probs, 1e-12, 1.0)
            return -(p * np.log(p)).sum(axis=1) / np.log(probs.shape[1])
        raise ValueError(f"strategy {strategy!r}; expected one of ('margin', 'entropy')")

    def reliability(self, probs: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return probs.max(1), probs.argmax(1) == truth

    def baseline_target(self, labels: Sequence[str], values: Sequence[Any]) -> np.ndarray:
        return np.asarray([list(labels).index(v) for v in values])

    def confusion(self, truth: np.ndarray, predicted: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
        matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)  # rows: truth, columns: predicted
        np.add.at(matrix, (np.asarray(truth, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
        return {"labels": list(labels), "matrix": matrix.tolist()}


class MultiLabel(TaskKind):
    name = "multi_label"
    transformers_problem_type = "multi_label_classification"
    label_studio_choice = "multiple"
    description = "multi-label (sigmoid; labels at or above their threshold)"
    uses_thresholds = True
    one_label_per_row = False

    def default_thresholds(self, n_labels: int, threshold: float = 0.5) -> list[float] | None:
        return [threshold] * n_labels

    def threshold_problems(
        self, labels: Sequence[str], thresholds: Sequence[float] | None
    ) -> list[tuple[str, Any, str]]:
        t = list(thresholds or [])
        if len(t) != len(labels) or not all(isinstance(x, (int, float)) and 0.0 < x < 1.0 for x in t):
            return [("thresholds", thresholds, f"{len(labels)} values in (0, 1), one per label")]
        return []

    def parse_value(self, value: Any) -> tuple[Any, str | None]:
        if isinstance(value, str):  # CSV: labels separated by '|'
            value = [v.strip() for v in value.split("|") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return None, "a list of labels"
        return value, None

    def values_of(self, value: Any) -> list[str]:
        return [] if value is None else list(value)

    def restrict(self, value: Any, labels: Sequence[str]) -> Any:
        return value if value is not None and all(x in labels for x in value) else None

    def vote(self, choices: list[str]) -> Any:
        return tuple(sorted(choices))

    def from_vote(self, vote: Any) -> Any:
        return list(vote)

    def label_tensor(self, labels: Sequence[str], values: Sequence[Any]) -> Any:
        import torch

        index = {label: i for i, label in enumerate(labels)}
        out = torch.zeros((len(values), len(labels)), dtype=torch.long)
        for row, v in enumerate(values):
            if v is None:
                out[row] = UNLABELLED
            else:
                out[row, [index[x] for x in v]] = 1
        return out

    def labelled(self, labels: Any) -> Any:
        return (labels != UNLABELLED).all(-1)

    def loss(self, logits: Any, labels: Any, weight: Any = None) -> Any:
        import torch.nn.functional as F

        present = (labels != UNLABELLED).all(dim=-1)
        if not present.any():
            return logits.sum() * 0.0
        return F.binary_cross_entropy_with_logits(logits[present].float(), labels[present].float(), pos_weight=weight)

    def class_weights(self, n_labels: int, labels: Any) -> Any:
        """Negative/positive ratio per label (at most 100)."""
        rows = labels[(labels != UNLABELLED).all(dim=-1)].float()
        positives = rows.sum(0)
        return ((rows.shape[0] - positives) / positives.clamp(min=1.0)).clamp(max=100.0)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        import torch

        return torch.sigmoid(torch.from_numpy(np.ascontiguousarray(logits))).numpy()

    def predicted(self, probs: np.ndarray, thresholds: Sequence[float] | None = None) -> np.ndarray:
        return (probs >= np.asarray(thresholds, np.float32)).astype(int)

    def decision_keys(self, probs: np.ndarray, thresholds: Sequence[float] | None = None) -> list[Any]:
        limits = np.asarray(thresholds, np.float32)
        return [tuple(np.flatnonzero(p >= limits)) for p in probs]

    def decide(
        self,
        probs: np.ndarray,
        labels: Sequence[str],
        thresholds: Sequence[float] | None = None,
        abstain_below: float | None = None,
    ) -> dict:
        chosen = np.flatnonzero(probs >= np.asarray(thresholds, np.float32))
        return {"labels": [labels[j] for j in chosen], "scores": [round(float(probs[j]), 6) for j in chosen]}

    def cell(self, decision: dict) -> tuple[str, float]:
        return "|".join(decision["labels"]), max(decision["scores"], default=0.0)

    def decision_labels(self, decision: Any) -> list[str]:
        labels = decision.get("labels") if isinstance(decision, dict) else None
        return [v for v in labels if isinstance(v, str)] if isinstance(labels, list) else []

    def cell_labels(self, cell: Any) -> list[str]:
        return [v for v in str(cell or "").split("|") if v]

    def uncertainty(self, probs: np.ndarray, strategy: str, thresholds: Sequence[float] | None) -> np.ndarray:
        """How close the most doubtful label is to its threshold (the strategy does not apply)."""
        probs = np.asarray(probs, dtype=np.float64)
        t = np.asarray(thresholds, dtype=np.float64)
        distance = np.abs(probs - t) / np.maximum(t, 1 - t)  # 0 at the threshold, 1 at 0 or 1
        return 1.0 - distance.min(axis=1)

    def reliability(self, probs: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return probs.ravel(), (truth.ravel() == 1) == (probs.ravel() >= 0.5)

    def baseline_target(self, labels: Sequence[str], values: Sequence[Any]) -> np.ndarray:
        y = np.zeros((len(values), len(labels)), dtype=int)
        for row, v in enumerate(values):
            y[row, [list(labels).index(x) for x in v]] = 1
        return y

    def confusion(self, truth: np.ndarray, predicted: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
        truth, predicted = np.asarray(truth) == 1, np.asarray(predicted) == 1
        counts = {
            label: [int(((~t) & (~p)).sum()), int(((~t) & p).sum()), int((t & ~p).sum()), int((t & p).sum())]
            for label, t, p in zip(labels, truth.T, predicted.T, strict=True)
        }
        return {"labels": list(labels), "per_label_tn_fp_fn_tp": counts}


KINDS: dict[str, TaskKind] = {kind.name: kind for kind in (SingleLabel(), MultiLabel())}
DEFAULT_KIND: TaskKind = KINDS[SingleLabel.name]  # a task nothing says more about (e.g. a Label Studio control)


def kind_of(problem_type: str) -> TaskKind:
    """The kind named by a ``problem_type``; an unknown name is a ``ValueError`` listing the known ones."""
    try:
        return KINDS[problem_type]
    except KeyError:
        raise ValueError(f"problem_type {problem_type!r}; expected one of {sorted(KINDS)}") from None
