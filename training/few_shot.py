"""The few-shot recipe: a new label with ten or thirty examples, not three thousand.

``training.recipe: few_shot`` (or ``auto`` when the training rows per label are few, :func:`choose_recipe`)
changes three things of the standard recipe, and nothing else (the tasks, partial labels, class weights,
calibration, resume and the saved model are the same):

* **the heads start as nearest-centroid classifiers** (:func:`init_heads_from_prototypes`): each head's
  output layer is set from the mean feature of each label's training rows under the pretrained encoder
  (Snell et al., 2017), scaled to the training rows' best log-likelihood, so that fine-tuning starts from a
  classifier that already works instead of a random one;
* **a fixed number of optimiser steps** (``training.few_shot_steps``) whatever the number of rows: with 24
  rows and batches of 16, 100 steps are 50 epochs, with 384 rows 5;
* **no selection on dev**: the model after the last step is kept. A dev set of a few rows per label picks a
  lucky epoch, not a better model; dev is evaluated once, at the end, for the report.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from aranews.inference.config import TaskSpec
from aranews.inference.inputs import collate_articles

__all__ = ["FEW_SHOT_MAX_PER_LABEL", "RECIPES", "choose_recipe", "few_shot_epochs", "init_heads_from_prototypes"]

logger = logging.getLogger(__name__)

RECIPES = ("auto", "standard", "few_shot")
FEW_SHOT_MAX_PER_LABEL = 64  # auto: few_shot when the median label has at most this many training rows


def label_counts(task: TaskSpec, labels: torch.Tensor) -> dict[str, int]:
    """Training rows per label of one task (multi-label: rows carrying each label)."""
    values = labels.numpy()
    rows = values[task.kind.labelled(values)]
    if task.kind.one_label_per_row:
        counts = Counter(int(v) for v in rows)
        return {label: counts.get(i, 0) for i, label in enumerate(task.labels)}
    return {label: int(rows[:, i].sum()) for i, label in enumerate(task.labels)}


def choose_recipe(recipe: str, tasks: Sequence[TaskSpec], labels: dict[str, torch.Tensor]) -> tuple[str, str]:
    """The recipe to train with and why: ``auto`` is ``few_shot`` when the median label (over every task's
    labels) has at most :data:`FEW_SHOT_MAX_PER_LABEL` training rows, else ``standard``."""
    if recipe not in RECIPES:
        raise ValueError(f"training.recipe={recipe!r}; expected one of {', '.join(RECIPES)}")
    counts = [n for task in tasks for n in label_counts(task, labels[task.name]).values()]
    median = float(np.median(counts)) if counts else 0.0
    if recipe != "auto":
        return recipe, f"training.recipe: {recipe} (median label: {median:g} training rows)"
    chosen = "few_shot" if median <= FEW_SHOT_MAX_PER_LABEL else "standard"
    return (
        chosen,
        f"auto: the median label has {median:g} training rows (few_shot at {FEW_SHOT_MAX_PER_LABEL} or fewer)",
    )


def few_shot_epochs(steps: int, steps_per_epoch: int) -> int:
    """Epochs that make at least ``steps`` optimiser steps."""
    return max(1, math.ceil(steps / max(1, steps_per_epoch)))


@torch.no_grad()
def _window_states(model: Any, data: Any, column: str, pad_id: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every window's pooled encoder state ``(windows, hidden)`` and the article it belongs to, in eval mode."""
    articles = data.groups[column]
    states, owners = [], []
    for start in range(0, len(articles), batch):
        inputs = collate_articles(articles[start : start + batch], pad_id)
        owners.append(inputs.pop("article_index") + start)
        states.append(model.window_features(**inputs).double())
    return torch.cat(states), torch.cat(owners)


@torch.no_grad()
def _standardising_dense(head: Any, states: torch.Tensor) -> None:
    """The head's dense layer set to standardise each feature over the training windows, so that its
    ``tanh`` sees values of order one (a random start maps them to about zero: every label looks alike)."""
    mean, std = states.mean(0), states.std(0).clamp(min=1e-6) if len(states) > 1 else torch.ones(states.shape[1])
    head.dense.weight.copy_(torch.diag(1.0 / std).to(head.dense.weight.dtype))
    head.dense.bias.copy_((-mean / std).to(head.dense.bias.dtype))


@torch.no_grad()
def _article_features(head: Any, states: torch.Tensor, owners: torch.Tensor) -> np.ndarray:
    """Each article's feature as the head's output layer reads it: the mean over its windows of tanh(dense)."""
    feature = torch.tanh(head.dense(states.to(head.dense.weight.dtype))).double()
    n = int(owners.max()) + 1
    sums = feature.new_zeros((n, feature.shape[1])).index_add_(0, owners, feature)
    return (sums / torch.bincount(owners, minlength=n).clamp(min=1).unsqueeze(-1)).numpy()


def _best_scale(logits_of: Any, truth: np.ndarray, multi: bool) -> float:
    """The scale of the centroid logits that maximises the training rows' likelihood (a 1-D search)."""
    from scipy.optimize import minimize_scalar

    def loss(log_scale: float) -> float:
        z = logits_of(math.exp(log_scale))
        if multi:
            return float(np.mean(np.logaddexp(0, z) - truth * z))
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(truth)), truth]))

    return math.exp(minimize_scalar(loss, bounds=(-8.0, 4.0), method="bounded").x)


def _centroid_layer(features: np.ndarray, truth: np.ndarray, task: TaskSpec) -> tuple[np.ndarray, np.ndarray, float]:
    """Weights and biases of a nearest-centroid output layer (``logit_c = s (x.m_c - |m_c|^2 / 2)``; multi-label:
    the midpoint between each label's rows and the others), and its scale ``s``."""
    k, h = len(task.labels), features.shape[1]
    weight, bias = np.zeros((k, h)), np.zeros(k)
    if task.kind.one_label_per_row:
        seen = [c for c in range(k) if (truth == c).any()]
        for c in seen:
            mean = features[truth == c].mean(axis=0)
            weight[c], bias[c] = mean, -0.5 * mean @ mean
        unseen = [c for c in range(k) if c not in seen]
    else:
        unseen = []
        for c in range(k):
            pos, neg = truth[:, c] == 1, truth[:, c] == 0
            if not pos.any() or not neg.any():
                unseen.append(c)
                continue
            a, b = features[pos].mean(axis=0), features[neg].mean(axis=0)
            weight[c], bias[c] = a - b, -0.5 * (a - b) @ (a + b)
    scale = _best_scale(lambda s: s * (features @ weight.T + bias), truth, not task.kind.one_label_per_row)
    weight, bias = scale * weight, scale * bias
    seen = [c for c in range(k) if c not in unseen]
    if unseen and seen:  # a label without training rows starts below every other: it is learned, not guessed
        bias[unseen] = (features @ weight[seen].T + bias[seen]).min() - 10.0
    return weight, bias, scale


def init_heads_from_prototypes(model: Any, data: Any, tasks: Sequence[TaskSpec], pad_id: int, batch: int = 32) -> dict:
    """Start each head as the nearest-centroid classifier of its training rows (in place): its dense layer
    standardises the pretrained encoder's pooled state, its output layer holds the label centroids.

    Returns, per task, the scale chosen and the training accuracy the initialised head gives.
    """
    was_training = model.training
    model.eval()
    figures: dict[str, Any] = {}
    try:
        for column, names in model.config.input_groups().items():
            states, owners = _window_states(model, data, column, pad_id, batch)
            for name in names:
                task = next(t for t in tasks if t.name == name)
                labels = data.labels[name].numpy()
                keep = task.kind.labelled(labels)
                if not keep.any():
                    continue
                head = model.heads[name]
                _standardising_dense(head, states[torch.as_tensor(keep)[owners]])
                x, truth = _article_features(head, states, owners)[keep], labels[keep]
                weight, bias, scale = _centroid_layer(x, truth, task)
                with torch.no_grad():
                    head.out_proj.weight.copy_(torch.as_tensor(weight, dtype=head.out_proj.weight.dtype))
                    head.out_proj.bias.copy_(torch.as_tensor(bias, dtype=head.out_proj.bias.dtype))
                z = x @ weight.T + bias
                hits = (z.argmax(1) == truth) if task.kind.one_label_per_row else ((z > 0) == (truth == 1)).all(1)
                figures[name] = {"scale": round(scale, 4), "train_accuracy_at_start": round(float(hits.mean()), 4)}
    finally:
        model.train(was_training)
    logger.info("few-shot: heads initialised from label centroids: %s", figures)
    return figures
