"""The one model definition: a shared transformer encoder with one classification head per task.

A checkpoint directory describes itself::

    config.json         ClassifierConfig (see aranews.inference.config): tasks and their ordered labels,
                        the model settings it was trained with, the encoder's config, tokenizer, versions
    model.safetensors   weights (encoder + heads); nothing is ever unpickled
    tokenizer.json ...  the tokenizer, as saved by transformers

Each head is ``dense -> tanh -> out_proj`` on the first token's state: what BERT's pooler + classifier
and RoBERTa's classification head compute, so any one task can be exported as a standard transformers
sequence-classification model (:mod:`aranews.inference.export`). Tasks that read the same input share
one encoder pass. With the ``chunks`` strategy an article is several windows; their logits are averaged
(or max-pooled) per article before the loss and before prediction.

With ``pair_encoding: bi`` a target-conditioned task's claim is encoded apart, in the article's first window
(:class:`~aranews.inference.inputs.ArticleWindower`), and its head reads each article window ``v`` beside the
claim ``u`` as ``[v, u, |v - u|, v * u, cos(u, v)]`` (the sentence-pair features of Conneau et al., 2017 and
Reimers and Gurevych, 2019, with the cosine a sentence-embedding encoder was trained to rank by): a head
``4 * hidden + 1`` wide, which no transformers sequence-classification model has. With ``pair_encoding:
similarity`` the head reads only the claim's closeness to the article, four numbers per window
(:func:`similarity_features`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_model
from torch import nn

from aranews.inference.config import ClassifierConfig, ModelConfig, TaskSpec, library_versions
from aranews.inference.inputs import mean_per_article
from aranews.inference.schema import ConfigError

__all__ = [
    "WEIGHTS_NAME",
    "ClassificationHead",
    "MultiTaskClassifier",
    "MultiTaskOutput",
    "claim_windows",
    "pair_features",
    "similarity_features",
]

WEIGHTS_NAME = "model.safetensors"


@dataclass
class MultiTaskOutput:
    """What :meth:`MultiTaskClassifier.forward` returns.

    Attributes:
        logits: per task, a ``(articles, labels)`` tensor (windows already pooled per article).
        loss: the sum of the task losses, when labels were given.
        task_losses: each task's loss, when labels were given.
    """

    logits: dict[str, torch.Tensor]
    loss: torch.Tensor | None = None
    task_losses: dict[str, torch.Tensor] = field(default_factory=dict)


def _transformer_from_config(encoder_config: dict[str, Any]) -> nn.Module:
    from transformers import AutoConfig, AutoModel

    settings = dict(encoder_config)
    config = AutoConfig.for_model(settings.pop("model_type"), **settings)
    try:  # mirror from_encoder: no pooler where the architecture allows leaving it out
        return AutoModel.from_config(config, add_pooling_layer=False)
    except TypeError:
        return AutoModel.from_config(config)


class ClassificationHead(nn.Module):
    """``dropout -> dense -> tanh -> dropout -> out_proj`` on a window's pooled state.

    The same computation as BERT's pooler + classifier and RoBERTa's ``RobertaClassificationHead``.
    """

    def __init__(self, hidden_size: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(hidden_size, num_labels)
        for layer in (self.dense, self.out_proj):
            nn.init.normal_(layer.weight, std=0.02)
            nn.init.zeros_(layer.bias)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.dense(self.dropout(pooled)))
        return self.out_proj(self.dropout(x))


def claim_windows(article_index: torch.Tensor) -> torch.Tensor:
    """``pair_encoding: bi``: the mask of each article's first window, its claim (see :func:`pair_features`)."""
    first = torch.ones_like(article_index, dtype=torch.bool)
    first[1:] = article_index[1:] != article_index[:-1]
    n_articles = int(article_index.max().item()) + 1 if article_index.numel() else 0
    if int(first.sum()) != n_articles:
        raise ValueError("pair_encoding: bi needs each article's windows together, numbered from 0, its claim first")
    return first


def pair_features(pooled: torch.Tensor, article_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``pair_encoding: bi``: each article's first window is its claim ``u``; every other window ``v`` becomes
    ``[v, u, |v - u|, v * u, cos(u, v)]``. Returns those rows and the article of each.

    Args:
        pooled: ``(windows, hidden)``, the windows of each article contiguous, its claim first.
        article_index: ``(windows,)``, the article of each window (as :func:`collate_articles` gives it).
    """
    first = claim_windows(article_index)
    owners = article_index[~first]
    u, v = pooled[first][owners], pooled[~first]
    cosine = nn.functional.cosine_similarity(v, u, dim=-1, eps=1e-6).unsqueeze(-1)
    return torch.cat([v, u, (v - u).abs(), v * u, cosine], dim=-1), owners


def similarity_features(pooled: torch.Tensor, article_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``pair_encoding: similarity``: each article's first window is its claim ``u``; every other window ``v`` becomes
    ``[cos(u, v), max, mean, first]``: its own cosine and, over the article's windows, the largest, the mean and
    the first window's (the lead). Returns those rows and the article of each, as :func:`pair_features`."""
    first = claim_windows(article_index)
    owners = article_index[~first]
    cosine = nn.functional.cosine_similarity(pooled[~first], pooled[first][owners], dim=-1, eps=1e-6).unsqueeze(-1)
    n_articles = int(first.sum())
    largest = cosine.new_zeros((n_articles, 1)).scatter_reduce(
        0, owners.unsqueeze(-1), cosine, reduce="amax", include_self=False
    )
    mean = mean_per_article(cosine, owners, n_articles)
    lead = cosine[claim_windows(owners)]  # each article's first scored window
    return torch.cat([cosine, largest[owners], mean[owners], lead[owners]], dim=-1), owners


# pair_encoding -> (what the head reads, its width for an encoder of hidden size h)
PAIR_HEADS = {"bi": (pair_features, lambda h: 4 * h + 1), "similarity": (similarity_features, lambda h: 4)}


def _weights_problems(path: Path, config: ClassifierConfig, model: nn.Module) -> list[str]:
    """Compare a weights file's tensor names and shapes with the model its config describes."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            shapes = {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        return [f"{path}: not a readable safetensors file ({exc}); the download or copy may be truncated"]
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problems = []
    for task in config.tasks:
        key = f"heads.{task.name}.out_proj.weight"
        if key in shapes and shapes[key][0] != len(task.labels):
            problems.append(
                f"{path}: head {task.name!r} has {shapes[key][0]} outputs but config.json lists "
                f"{len(task.labels)} labels for it ({task.labels})"
            )
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    if missing:
        problems.append(f"{path}: {len(missing)} tensor(s) the config's model needs are missing, e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"{path}: {len(unexpected)} tensor(s) the config does not describe, e.g. {unexpected[:3]}")
    wrong = [k for k in set(expected) & set(shapes) if expected[k] != shapes[k] and not k.endswith("out_proj.weight")]
    for key in sorted(wrong)[:5]:
        problems.append(f"{path}: {key} has shape {shapes[key]}, the config implies {expected[key]}")
    return problems


class MultiTaskClassifier(nn.Module):
    """Shared encoder, one :class:`ClassificationHead` per task.

    Build a new model with :meth:`from_encoder` (pretrained weights by name or path), reload a trained
    one with :meth:`from_pretrained`.
    """

    def __init__(self, config: ClassifierConfig, encoder: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder if encoder is not None else _transformer_from_config(config.encoder_config)
        hidden = self.encoder.config.hidden_size
        self.heads = nn.ModuleDict(
            {
                t.name: ClassificationHead(
                    PAIR_HEADS[config.model.pair_encoding][1](hidden) if self.pairs_apart([t.name]) else hidden,
                    len(t.labels),
                    config.model.dropout,
                )
                for t in config.tasks
            }
        )
        # Per-task class weights for the loss; set by the trainer, never saved.
        self.class_weights: dict[str, torch.Tensor] = {}

    @classmethod
    def from_encoder(cls, model: ModelConfig, tasks: list[TaskSpec]) -> MultiTaskClassifier:
        """A new classifier on the pretrained encoder ``model.encoder`` (a hub id or a local directory).

        Remote code is never trusted: the encoder must be an architecture transformers ships.
        """
        from transformers import AutoModel

        try:  # the pooler is unused (each head has its own dense layer); skip it where supported
            encoder = AutoModel.from_pretrained(model.encoder, trust_remote_code=False, add_pooling_layer=False)
        except TypeError:
            encoder = AutoModel.from_pretrained(model.encoder, trust_remote_code=False)
        config = ClassifierConfig(tasks=tasks, model=model, encoder_config=encoder.config.to_dict())
        return cls(config.validate(), encoder)

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str | torch.device = "cpu") -> MultiTaskClassifier:
        """Load a classifier saved by :meth:`save_pretrained` (safetensors only).

        Raises:
            FileNotFoundError: ``config.json`` or ``model.safetensors`` is missing.
            ConfigError: the config is invalid, or the weights do not fit it (label count versus head
                size, missing or unknown tensors, a truncated file).
        """
        config = ClassifierConfig.load(directory)
        weights = Path(directory) / WEIGHTS_NAME
        if not weights.is_file():
            raise FileNotFoundError(f"{weights}: missing; checkpoints are loaded from safetensors only")
        try:
            model = cls(config)
        except (TypeError, ValueError, KeyError) as exc:  # transformers rejects the encoder_config
            raise ConfigError(
                [f"encoder_config: cannot build the encoder ({exc})"], str(Path(directory) / "config.json")
            ) from None
        problems = _weights_problems(weights, config, model)
        if problems:
            raise ConfigError(problems)
        load_model(model, str(weights), strict=True, device=str(map_location))
        return model.eval()

    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``config.json`` and ``model.safetensors`` (the tokenizer is saved by its owner)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.config.encoder_config = self.encoder.config.to_dict()
        self.config.versions = library_versions()
        self.config.transformers_version = self.config.versions["transformers"]
        self.config.save(directory)
        save_model(self, str(directory / WEIGHTS_NAME))

    def _pool_tokens(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.config.model.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def _pool_windows(self, logits: torch.Tensor, article_index: torch.Tensor, n_articles: int) -> torch.Tensor:
        if logits.shape[0] == n_articles:  # one window per article: nothing to pool
            return logits
        index = article_index.unsqueeze(-1).expand_as(logits)
        out = logits.new_zeros((n_articles, logits.shape[-1]))
        reduce = "amax" if self.config.model.long_document.chunk_pooling == "max" else "mean"
        return out.scatter_reduce(0, index, logits, reduce=reduce, include_self=False)

    def pairs_apart(self, tasks: list[str] | None = None) -> bool:
        """Whether ``tasks`` (default: all; one input group) read their claim encoded apart (``pair_encoding:
        bi`` or ``similarity``), so that a window's logits need its article's claim window (:meth:`head_features`)."""
        if not self.config.model.claim_apart:
            return False
        paired = {self.config.task(name).pair_column is not None for name in tasks or list(self.heads)}
        if len(paired) > 1:
            raise ValueError(f"tasks {tasks} mix target-conditioned and text-only inputs; run one input group")
        return paired == {True}

    def head_features(
        self, pooled: torch.Tensor, article_index: torch.Tensor | None, tasks: list[str] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What the heads of ``tasks`` (one input group) read, one row per scored window, and the article of each
        row: the windows' pooled states as they are, or with ``pair_encoding: bi`` :func:`pair_features` (with
        ``similarity`` :func:`similarity_features`)."""
        if not self.pairs_apart(tasks):
            return pooled, article_index
        encoding = self.config.model.pair_encoding
        if article_index is None:
            raise ValueError(f"pair_encoding: {encoding} needs article_index: each article's first window is its claim")
        return PAIR_HEADS[encoding][0](pooled, article_index)

    def scored_windows(self, article_index: torch.Tensor, tasks: list[str] | None = None) -> torch.Tensor:
        """The article of each window the heads of ``tasks`` score: every window's, or with ``pair_encoding: bi``
        every window's but the claim's (the rows :meth:`head_features` gives)."""
        return article_index[~claim_windows(article_index)] if self.pairs_apart(tasks) else article_index

    def window_logits(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        tasks: list[str] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Per task, the logits of every window ``(windows, labels)``: encoder, token pooling, heads. Not for a
        ``pair_encoding: bi`` task, whose windows are scored beside their claim (:meth:`forward`)."""
        if self.pairs_apart(tasks):
            raise ValueError(
                f"pair_encoding: {self.config.model.pair_encoding} scores a window beside its article's claim: call forward"
            )
        pooled = self.window_features(input_ids, attention_mask, token_type_ids)
        return {name: self.heads[name](pooled) for name in tasks or list(self.heads)}

    def window_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The pooled encoder output of every window ``(windows, hidden)``, what the heads read."""
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None and getattr(self.encoder.config, "type_vocab_size", 0) > 1:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**kwargs).last_hidden_state
        return self._pool_tokens(hidden, attention_mask)

    def pool_windows(
        self, logits: dict[str, torch.Tensor], article_index: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Per task, one row of logits per article: its windows' logits pooled (``chunk_pooling``)."""
        if article_index is None:
            return logits
        n_articles = int(article_index.max().item()) + 1 if article_index.numel() else 0
        return {name: self._pool_windows(value, article_index, n_articles) for name, value in logits.items()}

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        article_index: torch.Tensor | None = None,
        tasks: list[str] | None = None,
        labels: dict[str, torch.Tensor] | None = None,
    ) -> MultiTaskOutput:
        """One encoder pass over a batch of windows, then every requested head.

        Args:
            input_ids, attention_mask, token_type_ids: ``(windows, length)`` tensors.
            article_index: ``(windows,)``, the article each window belongs to; ``None`` means one
                window per article.
            tasks: the heads to run (default: all).
            labels: per task, class ids ``(articles,)`` with ``-100`` for a missing label, or for a
                multi-label task a ``(articles, labels)`` 0/1 matrix whose missing rows are ``-100``.

        Returns:
            A :class:`MultiTaskOutput`.
        """
        tasks = tasks or list(self.heads)
        pooled = self.window_features(input_ids, attention_mask, token_type_ids)
        features, owners = self.head_features(pooled, article_index, tasks)
        logits = self.pool_windows({name: self.heads[name](features) for name in tasks}, owners)
        output = MultiTaskOutput(logits=logits)
        if labels is not None:
            for name in tasks:
                if name in labels:
                    output.task_losses[name] = self._task_loss(name, logits[name], labels[name])
            if output.task_losses:
                output.loss = torch.stack(list(output.task_losses.values())).sum()
        return output

    def _task_loss(self, name: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        weight = self.class_weights.get(name)
        if weight is not None:
            weight = weight.to(logits.device, logits.dtype)
        return self.config.task(name).kind.loss(logits, labels, weight)
