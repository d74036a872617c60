"""The few-shot recipe: a new label with ten or thirty examples, not three thousand.

``training.recipe: few_shot`` (or ``auto`` when the training rows per label are few, :func:`choose_recipe`)
changes three things of the standard recipe, and nothing else (the tasks, partial labels, class weights,
calibration, resume and the saved model are the same), and can add a fourth:

* **a contrastive stage first** (``training.few_shot_contrastive_steps`` > 0, :func:`contrastive_stage`):
  the encoder is tuned on pairs of training rows, same label against different label, as SetFit does; the
  few-shot steps then train the heads only (``training.few_shot_train_encoder``, by default false after the
  stage), at :data:`HEAD_ONLY_LEARNING_RATE` unless ``training.head_learning_rate`` is set: SetFit's split,
  pairs for the encoder and labels for the head;

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
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch

from aranews.inference.config import TaskSpec
from aranews.inference.inputs import collate_articles, mean_per_article

__all__ = [
    "FEW_SHOT_MAX_PER_LABEL",
    "HEAD_ONLY_LEARNING_RATE",
    "PAIR_SETS",
    "RECIPES",
    "choose_recipe",
    "contrastive_stage",
    "few_shot_epochs",
    "init_heads_from_prototypes",
    "init_new_label_rows",
]

logger = logging.getLogger(__name__)

RECIPES = ("auto", "standard", "few_shot")
# the heads' learning rate in the few-shot steps when the encoder is not trained (after the contrastive stage):
# with the encoder frozen the heads are a small linear model, which 5e-5 would barely move in 100 steps
HEAD_ONLY_LEARNING_RATE = 1e-3
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
def _window_states(
    model: Any, data: Any, column: str, names: list[str], pad_id: int, batch: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """What the heads of ``names`` (the tasks of input ``column``) read of every window they score
    (``(windows, features)``: the pooled encoder state, or its pair features) and the article of each, in eval mode."""
    articles = data.groups[column]
    device = next(model.parameters()).device
    states, owners = [], []
    for start in range(0, len(articles), batch):
        inputs = collate_articles(articles[start : start + batch], pad_id)
        index = inputs.pop("article_index").to(device)
        pooled = model.window_features(**{k: v.to(device) for k, v in inputs.items()})
        read, owner = model.head_features(pooled, index, names)
        states.append(read.double().cpu())
        owners.append(owner.cpu() + start)
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
    weight, bias = head.dense.weight.detach().double().cpu(), head.dense.bias.detach().double().cpu()
    feature = torch.tanh(torch.nn.functional.linear(states, weight, bias))
    return mean_per_article(feature, owners, int(owners.max()) + 1).numpy()


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


def _labelled_heads(
    model: Any, data: Any, tasks: Sequence[TaskSpec], wanted: Callable[[str], bool], pad_id: int, batch: int
) -> Iterator[tuple[TaskSpec, Any, torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]]:
    """For each ``wanted`` task with labelled training rows: its spec, its head, the pooled window states of
    its input (the encoder in eval mode, one pass per input), their articles, its labels and its labelled-row
    mask. The model's training mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        for column, names in model.config.input_groups().items():
            names = [n for n in names if wanted(n)]
            if not names:
                continue
            states, owners = _window_states(model, data, column, names, pad_id, batch)
            for name in names:
                task = next(t for t in tasks if t.name == name)
                labels = data.labels[name].numpy()
                keep = task.kind.labelled(labels)
                if keep.any():
                    yield task, model.heads[name], states, owners, labels, keep
    finally:
        model.train(was_training)


@torch.no_grad()
def _set_output_layer(head: Any, weight: np.ndarray, bias: np.ndarray) -> None:
    head.out_proj.weight.copy_(torch.as_tensor(weight, dtype=head.out_proj.weight.dtype))
    head.out_proj.bias.copy_(torch.as_tensor(bias, dtype=head.out_proj.bias.dtype))


def init_heads_from_prototypes(
    model: Any, data: Any, tasks: Sequence[TaskSpec], pad_id: int, batch: int = 32, only: set[str] | None = None
) -> dict:
    """Start each head (of the tasks in ``only``, or all) as the nearest-centroid classifier of its training
    rows (in place): its dense layer standardises the pretrained encoder's pooled state, its output layer holds
    the label centroids.

    Returns, per task, the scale chosen and the training accuracy the initialised head gives.
    """
    figures: dict[str, Any] = {}
    wanted = (lambda name: True) if only is None else only.__contains__
    for task, head, states, owners, labels, keep in _labelled_heads(model, data, tasks, wanted, pad_id, batch):
        _standardising_dense(head, states[torch.as_tensor(keep)[owners]])
        x, truth = _article_features(head, states, owners)[keep], labels[keep]
        weight, bias, scale = _centroid_layer(x, truth, task)
        _set_output_layer(head, weight, bias)
        z = x @ weight.T + bias
        hits = (z.argmax(1) == truth) if task.kind.one_label_per_row else ((z > 0) == (truth == 1)).all(1)
        figures[task.name] = {"scale": round(scale, 4), "train_accuracy_at_start": round(float(hits.mean()), 4)}
    logger.info("few-shot: heads initialised from label centroids: %s", figures)
    return figures


def _fit_new_rows(
    x: np.ndarray,
    truth: np.ndarray,
    fixed: np.ndarray,
    new: list[int],
    task: TaskSpec,
    class_weights: np.ndarray | None,
) -> dict[int, tuple[np.ndarray, float]]:
    """The output row ``(weight, bias)`` of each new label: its logit is ``s (x . d) + b``, ``d`` the difference
    between the mean feature of its training rows and of the others, and the scale ``s`` and offset ``b`` are
    those that maximise the training rows' likelihood (class-weighted as the training loss is), every other
    label's logit (``fixed``, rows x labels) held as it is. Two numbers per label: ten rows fit them without
    fitting noise. A label whose rows are all or none of the training rows is left out."""
    from scipy.optimize import minimize

    one = task.kind.one_label_per_row
    members = {c: (truth == c) if one else (truth[:, c] == 1) for c in new}
    directions = {c: x[m].mean(0) - x[~m].mean(0) for c, m in members.items() if m.any() and not m.all()}
    projections = {c: x @ d for c, d in directions.items()}
    start = {c: (1.0 / (p.std() + 1e-9), -float(p.mean()) / (p.std() + 1e-9)) for c, p in projections.items()}
    theta: dict[int, tuple[float, float]] = {}
    if one and projections:  # softmax: the new labels' logits compete with the fixed ones, fitted jointly
        labels = list(projections)
        onehot = np.eye(fixed.shape[1])[truth]
        row_weight = class_weights[truth] if class_weights is not None else np.ones(len(truth))
        row_weight = row_weight / row_weight.sum()

        def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
            z = fixed.copy()
            for k, c in enumerate(labels):
                z[:, c] = params[2 * k] * projections[c] + params[2 * k + 1]
            z -= z.max(axis=1, keepdims=True)
            log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            g = row_weight[:, None] * (np.exp(log_p) - onehot)
            grad = np.concatenate([[g[:, c] @ projections[c], g[:, c].sum()] for c in labels])
            return -float(row_weight @ (onehot * log_p).sum(1)), grad

        params = minimize(loss, np.concatenate([start[c] for c in labels]), jac=True, method="L-BFGS-B").x
        theta = {c: (float(params[2 * k]), float(params[2 * k + 1])) for k, c in enumerate(labels)}
    elif not one:  # independent sigmoids: one fit per label
        for c, p in projections.items():
            positive = members[c].astype(float)
            row_weight = np.where(members[c], float(class_weights[c]) if class_weights is not None else 1.0, 1.0)

            def loss(params: np.ndarray, p: np.ndarray = p, y: np.ndarray = positive, w: np.ndarray = row_weight):
                z = params[0] * p + params[1]
                g = w * (1.0 / (1.0 + np.exp(-z)) - y) / len(z)
                return float(np.mean(w * (np.logaddexp(0, z) - y * z))), np.array([g @ p, g.sum()])

            params = minimize(loss, np.array(start[c]), jac=True, method="L-BFGS-B").x
            theta[c] = (float(params[0]), float(params[1]))
    return {c: (s * directions[c], b) for c, (s, b) in theta.items()}


def init_new_label_rows(
    model: Any, data: Any, tasks: Sequence[TaskSpec], added: dict[str, list[str]], pad_id: int, batch: int = 32
) -> dict:
    """Retraining (``training.init_from``): set the output row of each label ``added`` to a task of the old model
    (in place) so that it already recognises its training rows under the old encoder and dense layer
    (:func:`_fit_new_rows`); the kept labels' rows are not touched. A new label with ten rows among hundreds
    that starts as the average kept label is rarely predicted after a few-shot schedule.

    Returns, per task and new label, its training rows, whether its row was fitted, and the share of its
    training rows that the started head gives it.
    """
    figures: dict[str, Any] = {}
    for task, head, states, owners, labels, keep in _labelled_heads(
        model, data, tasks, lambda name: bool(added.get(name)), pad_id, batch
    ):
        x, truth = _article_features(head, states, owners)[keep], labels[keep]
        weight = head.out_proj.weight.detach().double().cpu().numpy()
        bias = head.out_proj.bias.detach().double().cpu().numpy()
        weights = model.class_weights.get(task.name)
        new = [task.labels.index(label) for label in added[task.name]]
        rows = _fit_new_rows(
            x, truth, x @ weight.T + bias, new, task, None if weights is None else weights.double().numpy()
        )
        for c, (row, offset) in rows.items():
            weight[c], bias[c] = row, offset
        _set_output_layer(head, weight, bias)
        z = x @ weight.T + bias
        figures[task.name] = {}
        for c in new:
            mine = (truth == c) if task.kind.one_label_per_row else (truth[:, c] == 1)
            given = (z.argmax(1) == c) if task.kind.one_label_per_row else (z[:, c] > 0)
            figures[task.name][task.labels[c]] = {
                "rows": int(mine.sum()),
                "fitted": c in rows,
                "train_recall_at_start": round(float(given[mine].mean()), 4) if mine.any() else None,
            }
    logger.info("retraining: the new labels' output rows fitted on their training rows: %s", figures)
    return figures


PAIR_SETS = ("sampled", "setfit")


def _triangle(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pair ``(i, j)``, ``j <= i``, numbered ``k = i (i + 1) / 2 + j``: the pairs with replacement of a list
    in the order (0, 0), (1, 0), (1, 1), (2, 0), ..."""
    k = np.asarray(k, dtype=np.int64)
    i = ((np.sqrt(8.0 * k + 1) - 1) // 2).astype(np.int64)
    i -= (i * (i + 1) // 2 > k).astype(np.int64)  # the float square root can be one off either way
    i += ((i + 1) * (i + 2) // 2 <= k).astype(np.int64)
    return i, k - i * (i + 1) // 2


def _passes(size: int, rng: np.random.Generator, budget: int) -> Callable[[int], np.ndarray]:
    """``take(k)``: the next ``k`` of ``budget`` indices into a set of ``size`` pairs, drawn as passes over the set,
    each in random order and without replacement (SetFit's epochs over its pair set; a side smaller than the
    other is repeated). A pass is drawn only as far as the budget reaches (numpy samples a large population
    without materialising it), so the memory is O(budget) however many pairs the rows make; past the budget
    the passes start again."""
    if budget < 1:
        raise ValueError(f"pair budget={budget}; expected at least 1")
    order = np.concatenate(
        [rng.choice(size, size=min(size, budget - start), replace=False) for start in range(0, budget, size)]
    )
    position = 0

    def take(k: int) -> np.ndarray:
        nonlocal position
        picked = order[(position + np.arange(k)) % len(order)]
        position += k
        return picked

    return take


def _pair_sampler(
    task: TaskSpec, labels: np.ndarray, generator: torch.Generator, pair_set: str = "sampled", budget: int = 0
) -> Any:
    """A function ``pairs(k) -> (left, right, target)``: ``k`` pairs of labelled rows of one task, half of them
    sharing their label (target 1) and half not (target 0), as SetFit balances them; for a multi-label task
    random pairs with the Jaccard overlap of their label sets as target. ``None`` when no pair can be made.

    ``pair_set``: ``sampled`` draws each pair with replacement and never pairs a row with itself; ``setfit``
    walks SetFit 1.2's pair set (``ContrastiveDataset``): every pair of rows sharing a label, a row with itself
    included, and every pair of rows that do not, each side in passes without replacement, ``budget`` pairs
    at most per side before it starts again (the stage's steps times its batch size is enough)."""
    keep = np.flatnonzero(task.kind.labelled(labels))
    if pair_set not in PAIR_SETS:
        raise ValueError(f"pair_set={pair_set!r}; expected one of {PAIR_SETS}")
    if len(keep) < 2:
        return None
    setfit = pair_set == "setfit"
    # drawn only for SetFit's set: the sampled set's draws stay those of the runs before the option
    rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator))) if setfit else None

    def pick(values: np.ndarray, k: int) -> np.ndarray:
        return values[torch.randint(len(values), (k,), generator=generator).numpy()]

    if not task.kind.one_label_per_row:
        sets = labels[keep].astype(bool)
        every_pair = _passes(len(keep) * (len(keep) + 1) // 2, rng, budget) if setfit else None

        def random_pairs(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            if every_pair is not None:
                i, j = _triangle(every_pair(k))
            else:
                i, j = pick(np.arange(len(keep)), k), pick(np.arange(len(keep)), k)
            union = (sets[i] | sets[j]).sum(1)
            target = np.where(union > 0, (sets[i] & sets[j]).sum(1) / np.maximum(union, 1), 1.0)
            return keep[i], keep[j], target

        return random_pairs
    truth = labels[keep].astype(int)
    by_label = {c: keep[truth == c] for c in np.unique(truth)}
    if len(by_label) < 2:
        return None
    if setfit:
        return _setfit_pairs(list(by_label.values()), rng, budget)
    pairable = [c for c, rows in by_label.items() if len(rows) >= 2]
    if not pairable:
        return None
    pairable_rows = np.concatenate([by_label[c] for c in pairable])
    label_of = dict(zip(keep.tolist(), truth.tolist()))

    def balanced_pairs(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        positives, negatives = (k + 1) // 2, k // 2
        left = np.concatenate([pick(pairable_rows, positives), pick(keep, negatives)])
        right = np.empty_like(left)
        for n, row in enumerate(left):
            same = n < positives
            pool = by_label[label_of[row]] if same else keep[truth != label_of[row]]
            pool = pool[pool != row] if same else pool
            right[n] = pick(pool, 1)[0]
        return left, right, np.r_[np.ones(positives), np.zeros(negatives)]

    return balanced_pairs


def _setfit_pairs(groups: list[np.ndarray], rng: np.random.Generator, budget: int) -> Any:
    """SetFit's pair set of a single-label task whose rows are ``groups`` (one array per label), numbered without
    being listed: positives are the pairs with replacement within each group, negatives the products of every
    two groups; ``pairs(k)`` takes ``(k + 1) // 2`` of the first and ``k // 2`` of the second."""
    rows = np.concatenate(groups)
    sizes = np.array([len(g) for g in groups], dtype=np.int64)
    first = np.cumsum(sizes) - sizes  # where each group starts in ``rows``
    a, b = np.triu_indices(len(groups), k=1)  # the couples of groups that make the negatives
    positive_counts, negative_counts = sizes * (sizes + 1) // 2, sizes[a] * sizes[b]
    positive_ends, negative_ends = np.cumsum(positive_counts), np.cumsum(negative_counts)
    positive_starts, negative_starts = positive_ends - positive_counts, negative_ends - negative_counts
    positive = _passes(int(positive_ends[-1]), rng, budget)
    negative = _passes(int(negative_ends[-1]), rng, budget)

    def pairs(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        index = positive((k + 1) // 2)
        c = np.searchsorted(positive_ends, index, side="right")
        i, j = _triangle(index - positive_starts[c])
        index = negative(k // 2)
        n = np.searchsorted(negative_ends, index, side="right")
        local = index - negative_starts[n]
        left = np.r_[rows[first[c] + i], rows[first[a[n]] + local // sizes[b[n]]]]
        right = np.r_[rows[first[c] + j], rows[first[b[n]] + local % sizes[b[n]]]]
        return left, right, np.r_[np.ones((k + 1) // 2), np.zeros(k // 2)]

    return pairs


def _article_embeddings(
    model: Any, articles: Sequence[Any], pad_id: int, device: Any, names: list[str] | None = None
) -> torch.Tensor:
    """Each article's feature as the heads of ``names`` read it (the mean over its scored windows), with
    gradients."""
    inputs = collate_articles(articles, pad_id)
    index = inputs.pop("article_index").to(device)
    states, owners = model.head_features(
        model.window_features(**{k: v.to(device) for k, v in inputs.items()}), index, names
    )
    return mean_per_article(states, owners, len(articles))


def _task_samplers(
    model: Any, data: Any, tasks: Sequence[TaskSpec], generator: torch.Generator, pair_set: str, budget: int
) -> list[tuple[Any, Any, list[str]]]:
    """``(input column, pair sampler, [task])`` for each task that can make pairs, in the model's order of tasks.
    A task with ``pair_encoding: similarity`` makes none: its head reads four cosines to its claim, not an embedding
    that pairs could pull together or apart."""
    samplers = []
    for column, names in model.config.input_groups().items():
        for name in names:
            if model.config.model.pair_encoding == "similarity" and model.pairs_apart([name]):
                continue
            task = next(t for t in tasks if t.name == name)
            sampler = _pair_sampler(task, data.labels[name].numpy(), generator, pair_set, budget=budget)
            if sampler is not None:
                samplers.append((column, sampler, [name]))
    return samplers


def contrastive_stage(
    model: Any,
    data: Any,
    tasks: Sequence[TaskSpec],
    pad_id: int,
    *,
    steps: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    device: Any = "cpu",
    skip_parameters: Callable[[str], bool] = lambda name: False,
    autocast: Callable[[], AbstractContextManager[Any]] = nullcontext,
    pair_set: str = "sampled",
) -> dict[str, Any]:
    """Fine-tune the encoder on pairs of training rows before the heads are set (in place), as SetFit does
        (Tunstall et al., 2022): each step takes ``batch_size`` pairs of one task (the tasks in turn), half sharing a
        label and half not, and moves the cosine similarity of their pooled features towards 1 or 0 (mean squared
        error; AdamW, linear warm-up over the first tenth, then linear decay). Pairs are drawn with replacement
        from a generator seeded by ``seed``, so a rerun (and a resumed run) gets the same encoder. A row drawn more
        than once in a step is encoded once (at 8 rows per label of 6 labels, 32 draws are about 23 rows).

    ``pair_set="setfit"`` walks SetFit's pair set instead (:func:`_pair_sampler`) and encodes each side of each
    pair on its own, as sentence-transformers does: a row paired with itself is then two dropout draws of it.

        Returns the number of steps made, the rows encoded per step, and the loss of the first and the last tenth.
    """
    generator = torch.Generator().manual_seed(seed)
    samplers = _task_samplers(model, data, tasks, generator, pair_set, budget=max(1, steps) * batch_size)
    if not samplers or steps <= 0:
        why = "no task with pairs of rows of the same and of different labels (a similarity head makes none)"
        return {"steps": 0, **({"why": why} if steps > 0 else {})}
    parameters = [p for n, p in model.encoder.named_parameters() if p.requires_grad and not skip_parameters(n)]
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=0.01)
    warmup = max(1, steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )
    was_training = model.training
    model.to(device)
    model.train()
    losses: list[float] = []
    encoded = 0
    try:
        for step in range(steps):
            column, sampler, names = samplers[step % len(samplers)]
            left, right, target = sampler(batch_size)
            articles = data.groups[column]
            if pair_set == "setfit":  # every side of every pair encoded on its own
                rows, where = np.r_[left, right], np.arange(2 * len(left))
            else:  # a row drawn twice in a step (ten rows per label make that common) is encoded once
                rows, where = np.unique(np.r_[left, right], return_inverse=True)
            encoded += len(rows)
            with autocast():
                embeddings = _article_embeddings(model, [articles[i] for i in rows], pad_id, device, names)
            u, v = embeddings.float()[torch.as_tensor(where.reshape(-1), device=embeddings.device)].split(len(left))
            similarity = torch.nn.functional.cosine_similarity(u, v)
            loss = torch.nn.functional.mse_loss(
                similarity, torch.as_tensor(target, dtype=similarity.dtype, device=device)
            )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
    finally:
        model.train(was_training)
    tenth = max(1, len(losses) // 10)
    figures = {
        "steps": len(losses),
        "pair_set": pair_set,
        "rows_encoded_per_step": round(encoded / max(1, len(losses)), 1),
        "loss_first_tenth": round(float(np.mean(losses[:tenth])), 4),
        "loss_last_tenth": round(float(np.mean(losses[-tenth:])), 4),
    }
    logger.info("few-shot: contrastive stage %s", figures)
    return figures
