"""What to label next: the articles of an archive most worth an analyst's time.

``aranews select --model M --input ARCHIVE --n N --out FILE`` streams the archive through the model once
and keeps a bounded pool of the least certain articles (``pool_factor x N``, with their embeddings),
plus, when asked, the least certain articles of every predicted label (the quota). It then picks:

1. the quota: for each label of the quota task, the ``per_label`` least certain articles predicted as
   that label (so rare labels get candidates);
2. the rest by diversity: the pool is clustered (k-means on the normalised embeddings the heads read)
   into as many clusters as picks remain, and the least certain article of each cluster is taken, so a
   batch is never N near-duplicates of one confusing story.

Picks are written least certain first, in the training data format (id, text, title, pair columns, one
empty column per task) with the model's suggestion and its uncertainty beside each empty label.

Uncertainty per task: ``margin`` (1 - (p1 - p2)) or ``entropy`` (normalised to [0, 1]); for a multi-label
task, how close the most doubtful label is to its threshold. Several tasks are combined by their mean,
or one task is chosen with ``task``. Memory holds the pool, not the archive: it grows with N, not with the
archive's size.
"""

from __future__ import annotations

import heapq
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aranews.inference.classifier import NewsClassifier
from aranews.inference.files import atomic_output
from aranews.inference.readers import read_archive
from aranews.inference.records import RowSettings, check_row, chunks
from aranews.inference.task_kinds import MultiLabel, SingleLabel

__all__ = ["Candidate", "SelectionSummary", "select_for_labelling", "uncertainty", "write_selection"]

logger = logging.getLogger(__name__)

STRATEGIES = ("margin", "entropy")


def uncertainty(probs: np.ndarray, strategy: str = "margin", thresholds: Sequence[float] | None = None) -> np.ndarray:
    """Per row of ``probs`` (articles x labels), how unsure the model is, in [0, 1] (1: a coin toss).

    Args:
        probs: probabilities; single-label rows sum to 1.
        strategy: ``margin`` or ``entropy`` (single-label).
        thresholds: for a multi-label task, the per-label decision thresholds (the strategy is ignored).
    """
    kind = MultiLabel() if thresholds is not None else SingleLabel()
    return kind.uncertainty(probs, strategy, thresholds)


@dataclass
class Candidate:
    """One article that may be picked."""

    order: int  # position in the archive (ties are broken by it: deterministic)
    record: dict[str, Any]
    score: float  # combined uncertainty
    suggestions: dict[str, Any]  # per task: label (or labels) and its score
    task_uncertainty: dict[str, float]
    embedding: np.ndarray
    reason: str = "diversity"

    def key(self) -> tuple[float, int]:
        return (self.score, -self.order)


@dataclass
class SelectionSummary:
    """What ``select`` read and picked."""

    rows: int = 0
    considered: int = 0
    not_considered: dict[str, int] = field(default_factory=dict)
    picked: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    suggested_labels: dict[str, dict[str, int]] = field(default_factory=dict)


class _Pool:
    """The ``size`` most uncertain candidates seen so far (a min-heap on uncertainty)."""

    def __init__(self, size: int) -> None:
        self.size, self.heap = size, []

    def push(self, candidate: Candidate) -> None:
        if self.size <= 0:
            return
        item = (candidate.key(), candidate.order, candidate)
        if len(self.heap) < self.size:
            heapq.heappush(self.heap, item)
        elif item[0] > self.heap[0][0]:
            heapq.heapreplace(self.heap, item)

    def items(self) -> list[Candidate]:
        return [c for _, _, c in sorted(self.heap, key=lambda x: x[0], reverse=True)]


KMEANS_BLOCK_ELEMENTS = 4_000_000  # distances computed per block of rows: about 16 MB of float32 at a time


def _nearest(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre for each row of ``x`` (squared Euclidean distance), in row blocks, so
    memory holds one block of distances: ``block x k``, never ``rows x k x dim``."""
    squared = (centres * centres).sum(axis=1)
    block = max(1, KMEANS_BLOCK_ELEMENTS // max(1, len(centres)))
    out = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), block):
        part = x[start : start + block]
        out[start : start + block] = (squared[None, :] - 2.0 * (part @ centres.T)).argmin(axis=1)
    return out


def _kmeans(x: np.ndarray, k: int, seed: int, iterations: int = 25) -> np.ndarray:
    """Cluster labels of the rows of ``x`` (k-means++ start, Lloyd iterations; deterministic).

    Memory is linear in the rows and in ``k`` (float32 rows, the centres, one block of distances). Time is
    ``rows x k x dim`` per iteration, in matrix products: the k-means++ start keeps each row's distance to
    its nearest centre and updates it once per new centre instead of recomputing it from every centre.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    squared = (x * x).sum(axis=1)
    rng = np.random.default_rng(seed)

    def distance_to(index: int) -> np.ndarray:  # |x - c|^2 = |x|^2 - 2 x.c + |c|^2: one matrix-vector product
        return np.maximum(squared - 2.0 * (x @ x[index]) + squared[index], 0.0)

    chosen = [int(rng.integers(len(x)))]
    nearest = distance_to(chosen[0])
    for _ in range(1, k):
        total = float(nearest.sum(dtype=np.float64))
        index = int(rng.choice(len(x), p=nearest / total)) if total > 0 else int(rng.integers(len(x)))
        chosen.append(index)
        np.minimum(nearest, distance_to(index), out=nearest)
    c = x[chosen].copy()
    labels = np.zeros(len(x), dtype=np.int64)
    for _ in range(iterations):
        labels = _nearest(x, c)
        order = np.argsort(labels, kind="stable")
        present, starts, counts = np.unique(labels[order], return_index=True, return_counts=True)
        moved = c.copy()  # an empty cluster keeps its centre
        moved[present] = np.add.reduceat(x[order], starts, axis=0) / counts[:, None]
        if np.allclose(moved, c, atol=1e-6):
            break
        c = moved
    return labels


def select_for_labelling(
    classifier: NewsClassifier,
    input_path: str | Path,
    n: int,
    *,
    strategy: str = "margin",
    task: str | None = None,
    per_label: int = 0,
    quota_task: str | None = None,
    pool_factor: int = 10,
    diversity: bool = True,
    settings: RowSettings | None = None,
    batch_size: int = 256,
    seed: int = 0,
) -> tuple[list[Candidate], SelectionSummary]:
    """The ``n`` articles of an archive most worth labelling, least certain first.

    Args:
        classifier: a loaded model (fp32 or bf16: the embeddings come from the torch model).
        input_path: any archive the scorer reads.
        n: how many to pick (fewer when the archive has fewer usable rows).
        strategy: ``margin`` or ``entropy``.
        task: rank by this task's uncertainty alone (default: the mean over all tasks).
        per_label: guarantee up to this many candidates per predicted label of ``quota_task``.
        quota_task: the task whose predicted labels get quotas (default: the first task).
        pool_factor: the diversity step clusters the ``pool_factor x n`` least certain articles.
        diversity: cluster the pool and take the least certain per cluster (off: plain top-n).
        settings: how rows are read (columns, limits); default: ``id``, ``text``, ``title`` and the
            model's pair columns.
        seed: the clustering seed.

    Returns:
        The picks (least certain first) and a :class:`SelectionSummary`.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r}; expected an integer >= 1")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r}; expected one of {STRATEGIES}")
    names = [t.name for t in classifier.tasks]
    for name in (task, quota_task):
        if name is not None and name not in names:
            raise ValueError(f"task {name!r} is not one of the model's tasks {names}")
    quota_name = quota_task or names[0]
    quota_spec = classifier.config.task(quota_name)
    if per_label and not quota_spec.kind.one_label_per_row:
        raise ValueError(f"per-label quotas need a single-label task; {quota_name!r} is multi-label")
    settings = settings or RowSettings.for_tasks(classifier.tasks)
    pool = _Pool(n * max(1, pool_factor))
    quotas = {label: _Pool(per_label) for label in quota_spec.labels} if per_label else {}
    summary = SelectionSummary()
    for candidate in _candidates(classifier, input_path, settings, strategy, task, batch_size, summary):
        pool.push(candidate)
        if quotas:
            quotas[candidate.suggestions[quota_name]["label"]].push(candidate)
    picks = _pick(pool.items(), quotas, n, diversity, seed)
    summary.picked = len(picks)
    for c in picks:
        summary.by_reason[c.reason] = summary.by_reason.get(c.reason, 0) + 1
        for name, s in c.suggestions.items():
            counts = summary.suggested_labels.setdefault(name, {})
            label = s.get("label", "|".join(s.get("labels", [])))
            counts[label] = counts.get(label, 0) + 1
    return picks, summary


def _candidates(
    classifier: NewsClassifier,
    input_path: str | Path,
    settings: RowSettings,
    strategy: str,
    task: str | None,
    batch_size: int,
    summary: SelectionSummary,
) -> Iterator[Candidate]:
    """Every usable article of the archive as a candidate, streamed in batches; the others are counted."""
    seen: set[str] = set()
    order = 0
    for rows in chunks(read_archive(input_path), batch_size):
        records = []
        for row in rows:
            summary.rows += 1
            record, problem = check_row(row, settings, seen)
            if problem is not None:
                summary.not_considered[problem[0]] = summary.not_considered.get(problem[0], 0) + 1
            else:
                records.append(record)
        if not records:
            continue
        prepared = classifier.prepare(
            [r["text"] for r in records],
            titles=[r["title"] for r in records],
            pairs={c: [r["pairs"][c] for r in records] for c in settings.pair_columns} or None,
        )
        for reason in prepared.skipped:
            if reason is not None:
                summary.not_considered[reason] = summary.not_considered.get(reason, 0) + 1
        probs, embeddings = _probs_and_embeddings(classifier, prepared)
        per_task = {t.name: t.kind.uncertainty(probs[t.name], strategy, t.thresholds) for t in classifier.tasks}
        kept = [i for i, s in enumerate(prepared.skipped) if s is None]
        for position, i in enumerate(kept):
            u = {name: float(values[position]) for name, values in per_task.items()}
            score = u[task] if task else float(np.mean(list(u.values())))
            embedding = np.array(embeddings[position], dtype=np.float32)  # a copy: the batch's array is not kept
            yield Candidate(order, records[i], score, _suggest(classifier, probs, position), u, embedding)
            order += 1
            summary.considered += 1


def _probs_and_embeddings(classifier: NewsClassifier, prepared) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Probabilities of the kept rows per task, and their embeddings (first input group)."""
    probs: dict[str, np.ndarray] = {}
    embeddings = None
    for group, index, encoded in prepared.groups:
        if not index:
            continue
        logits, features = classifier.features_from_encoded(encoded, group)
        for name in group:
            probs[name] = classifier.probabilities(name, logits[name])
        if embeddings is None:
            embeddings = features
    if embeddings is None:
        empty = np.zeros((0, classifier.embedding_size))
        return {t.name: np.zeros((0, len(t.labels))) for t in classifier.tasks}, empty
    return probs, embeddings


def _suggest(classifier: NewsClassifier, probs: dict[str, np.ndarray], i: int) -> dict[str, Any]:
    return {t.name: t.kind.decide(probs[t.name][i], t.labels, t.thresholds) for t in classifier.tasks}


def _pick(pool: list[Candidate], quotas: dict[str, _Pool], n: int, diversity: bool, seed: int) -> list[Candidate]:
    chosen: dict[int, Candidate] = {}
    for label, label_pool in quotas.items():
        for c in label_pool.items():
            if len(chosen) >= n:
                break
            if c.order not in chosen:
                c.reason = f"quota:{label}"
                chosen[c.order] = c
    rest = [c for c in pool if c.order not in chosen]
    room = n - len(chosen)
    if room > 0 and rest:
        if not diversity or len(rest) <= room:
            picked = rest[:room]
        else:
            x = np.stack([c.embedding for c in rest]).astype(np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)
            clusters = _kmeans(x, room, seed)
            best: dict[int, Candidate] = {}
            for c, k in zip(rest, clusters, strict=True):  # rest is least certain first
                best.setdefault(int(k), c)
            picked = list(best.values())
            if len(picked) < room:  # empty clusters: fill with the next least certain
                taken = {c.order for c in picked}
                picked += [c for c in rest if c.order not in taken][: room - len(picked)]
        for c in picked:
            c.reason = "diversity" if diversity else "uncertainty"
            chosen[c.order] = c
    return sorted(chosen.values(), key=lambda c: c.key(), reverse=True)


def write_selection(
    picks: Sequence[Candidate], path: str | Path, classifier: NewsClassifier, settings: RowSettings | None = None
) -> Path:
    """Write picks as JSON Lines in the training data format: empty label columns, suggestions beside."""
    path = Path(path)
    text_column = settings.text_column if settings else "text"
    title_column = settings.title_column if settings else "title"
    pair_columns = settings.pair_columns if settings else {}
    with atomic_output(path) as handle:
        for rank, c in enumerate(picks, 1):
            row: dict[str, Any] = {"id": c.record["id"], text_column: c.record["text"]}
            if title_column and c.record.get("title") is not None:
                row[title_column] = c.record["title"]
            for model_column, column in pair_columns.items():
                row[column] = c.record["pairs"][model_column]
            for t in classifier.tasks:
                row[t.name] = None
            for t in classifier.tasks:
                row[f"suggested_{t.name}"] = c.suggestions[t.name]
                row[f"uncertainty_{t.name}"] = round(c.task_uncertainty[t.name], 6)
            row["uncertainty"] = round(c.score, 6)
            row["rank"] = rank
            row["picked_for"] = c.reason
            row["location"] = c.record["location"]
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path
