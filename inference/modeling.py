"""The one model definition: a shared transformer encoder with one classification head per task.

A checkpoint directory describes itself::

    config.json         ClassifierConfig: tasks and their ordered labels, problem types, thresholds,
                        preprocessing, lengths, long-document strategy, encoder config, versions
    model.safetensors   weights (encoder + heads); nothing is ever unpickled
    tokenizer.json ...  the tokenizer, as saved by transformers

Tasks that read the same input (the article alone, or the article with the same target/claim column)
share one encoder pass. With the ``chunks`` strategy an article is several windows; their logits are
averaged (or max-pooled) per article before the loss and before prediction.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_model, save_model
from torch import nn
from torch.nn import functional as F

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "ClassifierConfig",
    "LongDocumentConfig",
    "MultiTaskClassifier",
    "MultiTaskOutput",
    "TaskSpec",
    "library_versions",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1
ProblemType = Literal["single_label", "multi_label"]


def library_versions() -> dict[str, str]:
    """Versions recorded in every checkpoint and report."""
    import transformers

    from . import __version__

    return {
        "aranews_classifier": __version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


@dataclass
class TaskSpec:
    """One classification task as the model knows it.

    Attributes:
        name: task name, e.g. ``"topic"``.
        labels: label names; position ``i`` is class id ``i`` and probability column ``i``.
        problem_type: ``single_label`` (softmax, one label) or ``multi_label`` (sigmoid, any number).
        pair_column: for target-conditioned tasks, the input column paired with the text.
        thresholds: for ``multi_label``, one decision threshold per label.
    """

    name: str
    labels: list[str]
    problem_type: ProblemType = "single_label"
    pair_column: str | None = None
    thresholds: list[float] | None = None

    def __post_init__(self) -> None:
        if self.problem_type not in ("single_label", "multi_label"):
            raise ValueError(
                f"task {self.name!r}: problem_type={self.problem_type!r}; expected single_label or multi_label"
            )
        if len(self.labels) < 2:
            raise ValueError(f"task {self.name!r}: needs at least two labels, got {self.labels!r}")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"task {self.name!r}: duplicate labels in {self.labels!r}")
        if self.problem_type == "multi_label":
            if self.thresholds is None:
                self.thresholds = [0.5] * len(self.labels)
            if len(self.thresholds) != len(self.labels) or not all(0.0 < t < 1.0 for t in self.thresholds):
                raise ValueError(
                    f"task {self.name!r}: thresholds={self.thresholds!r}; expected {len(self.labels)} values in (0, 1)"
                )
        elif self.thresholds is not None:
            raise ValueError(f"task {self.name!r}: thresholds are only for multi_label tasks")


@dataclass
class LongDocumentConfig:
    """How articles longer than one window are handled (see :mod:`inference.encoding`)."""

    strategy: Literal["head", "head_tail", "chunks"] = "head_tail"
    head_tokens: int = 128
    stride: int = 64
    max_chunks: int = 8
    chunk_pooling: Literal["mean", "max"] = "mean"


@dataclass
class ClassifierConfig:
    """Everything needed to rebuild a model and prepare its input exactly as in training."""

    tasks: list[TaskSpec]
    encoder: dict[str, Any]
    base_model: str
    preprocessing: list[str] = field(default_factory=lambda: ["strip_boilerplate", "arabert_v02"])
    max_length: int = 512
    pair_max_length: int = 64
    long_document: LongDocumentConfig = field(default_factory=LongDocumentConfig)
    pooling: Literal["cls", "mean"] = "cls"
    dropout: float = 0.1
    versions: dict[str, str] = field(default_factory=library_versions)
    format_version: int = FORMAT_VERSION

    def task(self, name: str) -> TaskSpec:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(f"no task {name!r} in this model; its tasks are {[t.name for t in self.tasks]}")

    def input_groups(self) -> dict[str | None, list[str]]:
        """Task names grouped by the input they read (``None``: the article alone)."""
        groups: dict[str | None, list[str]] = {}
        for task in self.tasks:
            groups.setdefault(task.pair_column, []).append(task.name)
        return groups

    def to_dict(self) -> dict[str, Any]:
        return {"architecture": "MultiTaskClassifier", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassifierConfig:
        data = dict(data)
        data.pop("architecture", None)
        version = data.get("format_version", FORMAT_VERSION)
        if version > FORMAT_VERSION:
            raise ValueError(
                f"checkpoint format_version={version} is newer than this library's ({FORMAT_VERSION}); upgrade it"
            )
        data["tasks"] = [TaskSpec(**t) for t in data["tasks"]]
        data["long_document"] = LongDocumentConfig(**data.get("long_document", {}))
        return cls(**data)

    def save(self, directory: str | Path) -> None:
        path = Path(directory) / CONFIG_NAME
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> ClassifierConfig:
        path = Path(directory) / CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no {CONFIG_NAME}; is {directory} a model saved by this library?")
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("architecture") != "MultiTaskClassifier":
            raise ValueError(f"{path}: architecture={data.get('architecture')!r}, expected 'MultiTaskClassifier'")
        return cls.from_dict(data)


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


def _encoder_from_dict(encoder: dict[str, Any]) -> nn.Module:
    from transformers import AutoConfig, AutoModel

    encoder = dict(encoder)
    model_type = encoder.pop("model_type")
    config = AutoConfig.for_model(model_type, **encoder)
    try:  # mirror from_encoder: no pooler where the architecture allows leaving it out
        return AutoModel.from_config(config, add_pooling_layer=False)
    except TypeError:
        return AutoModel.from_config(config)


class MultiTaskClassifier(nn.Module):
    """Shared encoder, one linear head per task.

    Build a new model with :meth:`from_encoder` (pretrained weights by name or path), reload a trained
    one with :meth:`from_pretrained`.
    """

    def __init__(self, config: ClassifierConfig, encoder: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder if encoder is not None else _encoder_from_dict(config.encoder)
        hidden = self.encoder.config.hidden_size
        self.dropout = nn.Dropout(config.dropout)
        self.heads = nn.ModuleDict({t.name: nn.Linear(hidden, len(t.labels)) for t in config.tasks})
        for head in self.heads.values():
            nn.init.normal_(head.weight, std=0.02)
            nn.init.zeros_(head.bias)
        # Per-task class weights for the loss; set by the trainer, never saved.
        self.class_weights: dict[str, torch.Tensor] = {}

    @classmethod
    def from_encoder(cls, name_or_path: str, tasks: list[TaskSpec], **config_kwargs: Any) -> MultiTaskClassifier:
        """A new classifier on a pretrained encoder (``aubmindlab/bert-base-arabertv02`` or a local dir).

        Remote code is never trusted: the encoder must be an architecture transformers ships.
        """
        from transformers import AutoModel

        try:  # the pooler is unused (heads read the CLS or mean token state); skip it where supported
            encoder = AutoModel.from_pretrained(name_or_path, trust_remote_code=False, add_pooling_layer=False)
        except TypeError:
            encoder = AutoModel.from_pretrained(name_or_path, trust_remote_code=False)
        config = ClassifierConfig(
            tasks=tasks, encoder=encoder.config.to_dict(), base_model=name_or_path, **config_kwargs
        )
        return cls(config, encoder)

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str | torch.device = "cpu") -> MultiTaskClassifier:
        """Load a classifier saved by :meth:`save_pretrained` (safetensors only)."""
        config = ClassifierConfig.load(directory)
        weights = Path(directory) / WEIGHTS_NAME
        if not weights.is_file():
            raise FileNotFoundError(f"{weights}: missing; checkpoints are loaded from safetensors only")
        model = cls(config)
        load_model(model, str(weights), strict=True, device=str(map_location))
        return model.eval()

    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``config.json`` and ``model.safetensors`` (the tokenizer is saved by its owner)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.config.encoder = self.encoder.config.to_dict()
        self.config.versions = library_versions()
        self.config.save(directory)
        save_model(self, str(directory / WEIGHTS_NAME))

    def _pool_tokens(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.config.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def _pool_windows(self, logits: torch.Tensor, article_index: torch.Tensor, n_articles: int) -> torch.Tensor:
        if logits.shape[0] == n_articles:  # one window per article: nothing to pool
            return logits
        index = article_index.unsqueeze(-1).expand_as(logits)
        out = logits.new_zeros((n_articles, logits.shape[-1]))
        reduce = "amax" if self.config.long_document.chunk_pooling == "max" else "mean"
        return out.scatter_reduce(0, index, logits, reduce=reduce, include_self=False)

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
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None and getattr(self.encoder.config, "type_vocab_size", 0) > 1:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**kwargs).last_hidden_state
        pooled = self.dropout(self._pool_tokens(hidden, attention_mask))
        if article_index is None:
            article_index = torch.arange(input_ids.shape[0], device=input_ids.device)
        n_articles = int(article_index.max().item()) + 1 if article_index.numel() else 0
        logits = {name: self._pool_windows(self.heads[name](pooled), article_index, n_articles) for name in tasks}
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
        if self.config.task(name).problem_type == "single_label":
            if not (labels != -100).any():  # no row of this batch has this task's label
                return logits.sum() * 0.0
            return F.cross_entropy(logits.float(), labels, weight=weight, ignore_index=-100)
        present = (labels != -100).all(dim=-1)
        if not present.any():
            return logits.sum() * 0.0
        return F.binary_cross_entropy_with_logits(logits[present].float(), labels[present].float(), pos_weight=weight)
