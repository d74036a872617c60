"""Loading a trained model and predicting with it.

>>> from inference import load_classifier
>>> clf = load_classifier("runs/demo/model")
>>> clf.predict("أنقرة وموسكو توقعان اتفاقا جديدا للطاقة")
{'topic': {'label': 'economy_energy', 'score': 0.91}, 'stance': {'label': 'cooperation', 'score': 0.84}}

A loaded classifier holds no mutable state between calls: ``predict`` runs under
``torch.inference_mode`` on a model in eval mode, so concurrent calls from several threads are safe
(each call builds its own tensors; PyTorch modules are re-entrant in inference).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np
import torch

from .encoding import ArticleEncoder, EncodedArticle, collate_articles
from .modeling import ClassifierConfig, MultiTaskClassifier, TaskSpec

__all__ = ["NewsClassifier", "Prediction", "load_classifier", "predict_stance", "predict_topic", "resolve_device"]

logger = logging.getLogger(__name__)

Prediction = dict[str, dict[str, Any]]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The device to run on: the one given, else CUDA, else Apple MPS, else CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def build_encoder(config: ClassifierConfig, tokenizer) -> ArticleEncoder:
    """The :class:`ArticleEncoder` a model's config prescribes (shared by training and inference)."""
    ld = config.long_document
    return ArticleEncoder(
        tokenizer,
        preprocessing=config.preprocessing,
        max_length=config.max_length,
        strategy=ld.strategy,
        head_tokens=ld.head_tokens,
        stride=ld.stride,
        max_chunks=ld.max_chunks,
        pair_max_length=config.pair_max_length,
    )


class NewsClassifier:
    """A trained multi-task classifier with its tokenizer and preprocessing.

    Args:
        model: the model, on ``device`` and in eval mode.
        tokenizer: its tokenizer.
        device: where the model runs.
        batch_size: articles per forward pass.
        source: where the model was loaded from (for provenance).
    """

    def __init__(
        self,
        model: MultiTaskClassifier,
        tokenizer,
        device: torch.device,
        batch_size: int = 16,
        source: str | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device = device
        self.batch_size = batch_size
        self.source = source
        self.encoder = build_encoder(model.config, tokenizer)

    @property
    def config(self) -> ClassifierConfig:
        return self.model.config

    @property
    def tasks(self) -> list[TaskSpec]:
        return self.model.config.tasks

    @property
    def labels(self) -> dict[str, list[str]]:
        """Each task's labels, in probability-column order."""
        return {t.name: list(t.labels) for t in self.tasks}

    @classmethod
    def from_pretrained(
        cls, path: str | Path, device: str | torch.device | None = None, batch_size: int = 16
    ) -> NewsClassifier:
        """Load a model directory written by this library (safetensors weights, no remote code)."""
        from transformers import AutoTokenizer

        device = resolve_device(device)
        model = MultiTaskClassifier.from_pretrained(path, map_location="cpu").to(device)
        tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
        return cls(model, tokenizer, device, batch_size=batch_size, source=str(path))

    # ---------------------------------------------------------------------------------------------
    def _check_pairs(self, tasks: list[str], n: int, pairs: dict[str, Sequence[str]] | None) -> None:
        for name in tasks:
            column = self.config.task(name).pair_column
            if column is None:
                continue
            if pairs is None or column not in pairs:
                raise ValueError(
                    f"task {name!r} is conditioned on {column!r}: pass pairs={{{column!r}: [...]}} "
                    "with one value per text"
                )
            if len(pairs[column]) != n:
                raise ValueError(f"pairs[{column!r}] has {len(pairs[column])} values for {n} texts")

    def encode(self, texts: Sequence[str], pair_column: str | None, pairs: dict[str, Sequence[str]] | None):
        """Encode texts for the tasks reading ``pair_column`` (``None``: the article alone)."""
        return self.encoder.encode(texts, None if pair_column is None else pairs[pair_column])

    @torch.inference_mode()
    def logits_from_encoded(self, encoded: list[EncodedArticle], tasks: list[str]) -> dict[str, np.ndarray]:
        # Sort by length so each batch pads to similar lengths, then restore the caller's order.
        order = np.argsort([-sum(len(w) for w in a.input_ids) for a in encoded], kind="stable")
        out = {name: np.zeros((len(encoded), len(self.config.task(name).labels)), np.float32) for name in tasks}
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            batch = collate_articles([encoded[i] for i in idx], self.encoder.pad_token_id)
            batch = {k: v.to(self.device) for k, v in batch.items()}
            logits = self.model(**batch, tasks=tasks).logits
            for name in tasks:
                out[name][idx] = logits[name].float().cpu().numpy()
        return out

    def probabilities(self, name: str, logits: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(logits)
        if self.config.task(name).problem_type == "multi_label":
            return torch.sigmoid(t).numpy()
        return torch.softmax(t, dim=-1).numpy()

    def predict_proba_batch(
        self,
        texts: Sequence[str],
        pairs: dict[str, Sequence[str]] | None = None,
        tasks: Sequence[str] | None = None,
    ) -> tuple[dict[str, np.ndarray], list[EncodedArticle]]:
        """Probabilities for a list of texts, with the encoded articles (for truncation counts)."""
        names = list(tasks) if tasks is not None else [t.name for t in self.tasks]
        for name in names:
            self.config.task(name)  # raises KeyError naming the known tasks
        self._check_pairs(names, len(texts), pairs)
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise TypeError(f"texts must be strings; item {bad[0]} is {type(texts[bad[0]]).__name__}")
        probs: dict[str, np.ndarray] = {}
        first: list[EncodedArticle] = []
        groups: dict[str | None, list[str]] = {}
        for name in names:
            groups.setdefault(self.config.task(name).pair_column, []).append(name)
        for column, group in groups.items():
            encoded = self.encode(texts, column, pairs)
            first = first or encoded
            if not texts:
                logits = {n: np.zeros((0, len(self.config.task(n).labels)), np.float32) for n in group}
            else:
                logits = self.logits_from_encoded(encoded, group)
            probs.update({n: self.probabilities(n, logits[n]) for n in group})
        truncated = sum(a.truncated for a in first)
        if truncated:  # truncation is never silent: the scorer records it per row, predict() logs it
            logger.info(
                "%d of %d articles longer than max_length=%d (long_document=%s); %d tokens not seen",
                truncated,
                len(first),
                self.config.max_length,
                self.encoder.strategy,
                sum(a.dropped_tokens for a in first),
            )
        return probs, first

    @overload
    def predict_proba(
        self, texts: str, pairs: dict[str, str] | None = ..., tasks: Sequence[str] | None = ...
    ) -> dict[str, np.ndarray]: ...
    @overload
    def predict_proba(
        self, texts: Sequence[str], pairs: dict[str, Sequence[str]] | None = ..., tasks: Sequence[str] | None = ...
    ) -> dict[str, np.ndarray]: ...

    def predict_proba(self, texts, pairs=None, tasks=None):
        """Per task, the probability of each label, columns in :attr:`labels` order.

        Args:
            texts: one article (``str``) or a list of articles.
            pairs: for target-conditioned tasks, ``{pair_column: target or list of targets}``.
            tasks: the tasks to run (default: all).

        Returns:
            ``{task: array}``; for a ``str`` each array has shape ``(labels,)``, for a list
            ``(len(texts), labels)``. Single-label rows sum to 1.

        Raises:
            TypeError: if a text is not a string.
            ValueError: if a target-conditioned task lacks its pair texts.
        """
        single = isinstance(texts, str)
        if single:
            texts = [texts]
            pairs = {k: [v] for k, v in (pairs or {}).items()}
        probs, _ = self.predict_proba_batch(list(texts), pairs, tasks)
        return {k: v[0] for k, v in probs.items()} if single else probs

    def decide(
        self, probs: dict[str, np.ndarray], thresholds: dict[str, Sequence[float]] | None = None
    ) -> list[Prediction]:
        """Turn probability rows into per-article predictions (labels and scores)."""
        n = len(next(iter(probs.values()))) if probs else 0
        results: list[Prediction] = [{} for _ in range(n)]
        for name, matrix in probs.items():
            task = self.config.task(name)
            if task.problem_type == "multi_label":
                limits = np.asarray((thresholds or {}).get(name, task.thresholds), dtype=np.float32)
                for row, p in zip(results, matrix):
                    chosen = np.flatnonzero(p >= limits)
                    row[name] = {
                        "labels": [task.labels[j] for j in chosen],
                        "scores": [round(float(p[j]), 6) for j in chosen],
                    }
            else:
                best = matrix.argmax(axis=1) if n else []
                for row, p, j in zip(results, matrix, best):
                    row[name] = {"label": task.labels[int(j)], "score": round(float(p[j]), 6)}
        return results

    def predict(self, texts, pairs=None, tasks=None, thresholds=None):
        """Each task's label and score per article.

        Args:
            texts: one article (``str``) or a list of articles.
            pairs: for target-conditioned tasks, ``{pair_column: target or list of targets}``.
            tasks: the tasks to run (default: all).
            thresholds: per multi-label task, thresholds overriding the saved ones.

        Returns:
            For a ``str`` one ``{task: {"label", "score"}}`` dict (multi-label tasks give
            ``{"labels", "scores"}``: every label at or above its threshold); for a list, a list of them.
        """
        single = isinstance(texts, str)
        probs = self.predict_proba(
            [texts] if single else list(texts), {k: [v] for k, v in (pairs or {}).items()} if single else pairs, tasks
        )
        results = self.decide(probs, thresholds)
        return results[0] if single else results


def load_classifier(
    path_or_name: str | Path, device: str | torch.device | None = None, batch_size: int = 16
) -> NewsClassifier:
    """Load a trained classifier directory for prediction.

    Args:
        path_or_name: a directory written by ``aranews train`` (or ``save_pretrained``).
        device: ``"cuda"``, ``"mps"``, ``"cpu"``...; detected when ``None``.
        batch_size: articles per forward pass.

    Returns:
        A :class:`NewsClassifier`.
    """
    return NewsClassifier.from_pretrained(path_or_name, device=device, batch_size=batch_size)


def _as_classifier(model: NewsClassifier | str | Path) -> NewsClassifier:
    return model if isinstance(model, NewsClassifier) else load_classifier(model)


def predict_topic(texts, model: NewsClassifier | str | Path, task: str = "topic"):
    """The topic of one article (``str``) or of each article in a list.

    Args:
        texts: an article or a list of articles.
        model: a loaded classifier, or a model directory (loaded on every call: pass a loaded
            classifier when calling repeatedly).
        task: the task name, if the model calls it something else.

    Returns:
        ``{"label", "score"}`` for a ``str``; a list of them for a list.
    """
    clf = _as_classifier(model)
    result = clf.predict(texts, tasks=[task])
    return result[task] if isinstance(texts, str) else [r[task] for r in result]


def predict_stance(texts, model: NewsClassifier | str | Path, targets=None, task: str = "stance"):
    """The stance of one article or of each article in a list.

    Args:
        texts: an article or a list of articles.
        model: a loaded classifier or a model directory.
        targets: for a target- or claim-conditioned stance task, the target of each article (a ``str``
            for a single article).
        task: the task name, if the model calls it something else.

    Returns:
        ``{"label", "score"}`` for a ``str``; a list of them for a list.
    """
    clf = _as_classifier(model)
    column = clf.config.task(task).pair_column
    pairs = {column: targets} if column is not None and targets is not None else None
    result = clf.predict(texts, pairs=pairs, tasks=[task])
    return result[task] if isinstance(texts, str) else [r[task] for r in result]
