"""Typed training configuration, loaded from YAML.

Unknown keys are errors, values are type-checked and range-checked, and every message names the field,
the value found and what is allowed. PyYAML reads ``1e-5`` as a string; numeric fields accept such
strings and convert them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

__all__ = [
    "ConfigError",
    "DataConfig",
    "ExperimentConfig",
    "ModelConfig",
    "TaskConfig",
    "TrainingConfig",
    "load_config",
]

DEFAULT_ENCODER = "aubmindlab/bert-base-arabertv02"


class ConfigError(ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


def _check(condition: bool, field_name: str, value: Any, allowed: str) -> None:
    if not condition:
        raise ConfigError(f"{field_name}: got {value!r}; expected {allowed}")


@dataclass
class TaskConfig:
    """One task to learn.

    Attributes:
        name: task name (also the default label column).
        labels: the label set, in order; ``null`` infers it from the training data (sorted).
        problem_type: ``single_label`` or ``multi_label`` (the column then holds a list of labels).
        column: the data column holding the labels (default: ``name``).
        pair_column: for target-conditioned stance, the column paired with the text (``target``, ``claim``).
        class_weights: ``none`` or ``balanced`` (inverse label frequency in the training split).
        threshold: for multi-label tasks, the initial decision threshold of every label.
    """

    name: str
    labels: list[str] | None = None
    problem_type: Literal["single_label", "multi_label"] = "single_label"
    column: str | None = None
    pair_column: str | None = None
    class_weights: Literal["none", "balanced"] = "none"
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.column is None:
            self.column = self.name
        where = f"tasks[{self.name}]"
        if self.labels is not None:
            _check(len(self.labels) >= 2, f"{where}.labels", self.labels, "at least two labels")
            dupes = sorted({x for x in self.labels if self.labels.count(x) > 1})
            _check(not dupes, f"{where}.labels", self.labels, f"unique labels (repeated: {dupes})")
        _check(0.0 < self.threshold < 1.0, f"{where}.threshold", self.threshold, "a value in (0, 1)")


@dataclass
class DataConfig:
    """Where the labelled articles are and which columns hold what.

    Attributes:
        train: training file (JSON Lines, CSV or Parquet).
        dev: development file for per-epoch evaluation and model selection.
        test: optional held-out file, evaluated once with the best model.
        id_column, text_column: required columns.
        title_column: optional column prepended to the text when present and non-empty.
    """

    train: str
    dev: str
    test: str | None = None
    id_column: str = "id"
    text_column: str = "text"
    title_column: str | None = "title"


@dataclass
class ModelConfig:
    """The encoder and how text reaches it.

    Attributes:
        encoder: Hugging Face model id or local directory of the pretrained encoder.
        tokenizer: tokenizer id or directory (default: the encoder's).
        preprocessing: preprocessing steps, in order (see ``inference.preprocessing``).
        max_length: tokens per encoder window, special tokens included.
        pair_max_length: tokens kept of a target / claim.
        long_document: ``head``, ``head_tail`` or ``chunks``.
        head_tokens: tokens kept from the start with ``head_tail``.
        stride: tokens shared by neighbouring windows with ``chunks``.
        max_chunks: windows per article with ``chunks``.
        chunk_pooling: ``mean`` or ``max`` over the windows' logits.
        pooling: ``cls`` token or ``mean`` of token states.
        dropout: dropout before the heads.
    """

    encoder: str = DEFAULT_ENCODER
    tokenizer: str | None = None
    preprocessing: list[str] = field(default_factory=lambda: ["strip_boilerplate", "arabert_v02"])
    max_length: int = 512
    pair_max_length: int = 64
    long_document: Literal["head", "head_tail", "chunks"] = "head_tail"
    head_tokens: int = 128
    stride: int = 64
    max_chunks: int = 8
    chunk_pooling: Literal["mean", "max"] = "mean"
    pooling: Literal["cls", "mean"] = "cls"
    dropout: float = 0.1

    def __post_init__(self) -> None:
        from inference.preprocessing import PREPROCESSORS

        unknown = [s for s in self.preprocessing if s not in PREPROCESSORS]
        _check(not unknown, "model.preprocessing", self.preprocessing, f"steps among {sorted(PREPROCESSORS)}")
        _check(16 <= self.max_length <= 8192, "model.max_length", self.max_length, "an integer in [16, 8192]")
        if self.long_document == "head_tail":  # head_tokens only shapes head_tail windows
            _check(
                0 <= self.head_tokens < self.max_length,
                "model.head_tokens",
                self.head_tokens,
                f"an integer in [0, {self.max_length}) with long_document: head_tail",
            )
        if self.long_document == "chunks":  # the stride only shapes chunk windows
            _check(
                0 <= self.stride < self.max_length // 2,
                "model.stride",
                self.stride,
                f"an integer in [0, {self.max_length // 2}) with long_document: chunks",
            )
        _check(1 <= self.max_chunks <= 64, "model.max_chunks", self.max_chunks, "an integer in [1, 64]")
        _check(0.0 <= self.dropout < 1.0, "model.dropout", self.dropout, "a value in [0, 1)")


@dataclass
class TrainingConfig:
    """The optimisation loop.

    Attributes:
        output_dir: run directory: checkpoints, ``metrics.json``, the best model in ``model/``.
        epochs: maximum epochs.
        batch_size: articles per optimisation micro-batch.
        eval_batch_size: articles per evaluation batch.
        learning_rate: peak learning rate of the encoder.
        head_learning_rate: learning rate of the heads (default: ``learning_rate``).
        weight_decay, warmup_ratio, max_grad_norm: AdamW and schedule settings.
        gradient_accumulation_steps: micro-batches per optimiser step.
        mixed_precision: ``auto`` (bf16 or fp16 where the GPU supports it, else none), ``no``, ``fp16``, ``bf16``.
        early_stopping_patience: epochs without dev improvement before stopping (0: never stop early).
        selection_metric: ``macro_f1`` (mean over tasks) or ``accuracy``.
        seed: random seed for weights, shuffling and dropout.
        resume: continue from the last epoch checkpoint in ``output_dir`` when there is one.
        init_from: a model directory of this library to continue training from (retraining with new
            labels: kept labels keep their ids and head rows, new ones start fresh).
        device: ``auto``, ``cpu`` or ``cuda``.
        progress: show progress bars.
        tune_thresholds: for multi-label tasks, pick each label's threshold on the dev split (max F1)
            and save it with the model.
        report: after training, write the evaluation report (plots, calibration, mistakes) on dev.
        baseline: train the TF-IDF baseline on the training split and report it beside the model.
    """

    output_dir: str = "runs/default"
    epochs: int = 3
    batch_size: int = 16
    eval_batch_size: int = 32
    learning_rate: float = 2.0e-5
    head_learning_rate: float | None = None
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    gradient_accumulation_steps: int = 1
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = "auto"
    early_stopping_patience: int = 2
    selection_metric: Literal["macro_f1", "accuracy"] = "macro_f1"
    seed: int = 42
    resume: bool = True
    init_from: str | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    progress: bool = True
    tune_thresholds: bool = True
    report: bool = True
    baseline: bool = True

    def __post_init__(self) -> None:
        _check(1 <= self.epochs <= 1000, "training.epochs", self.epochs, "an integer in [1, 1000]")
        _check(self.batch_size >= 1, "training.batch_size", self.batch_size, "an integer >= 1")
        _check(self.eval_batch_size >= 1, "training.eval_batch_size", self.eval_batch_size, "an integer >= 1")
        _check(0.0 < self.learning_rate < 1.0, "training.learning_rate", self.learning_rate, "a value in (0, 1)")
        if self.head_learning_rate is not None:
            _check(
                0.0 < self.head_learning_rate < 1.0,
                "training.head_learning_rate",
                self.head_learning_rate,
                "a value in (0, 1)",
            )
        _check(0.0 <= self.weight_decay < 1.0, "training.weight_decay", self.weight_decay, "a value in [0, 1)")
        _check(0.0 <= self.warmup_ratio < 1.0, "training.warmup_ratio", self.warmup_ratio, "a value in [0, 1)")
        _check(self.max_grad_norm > 0, "training.max_grad_norm", self.max_grad_norm, "a value > 0")
        _check(
            self.gradient_accumulation_steps >= 1,
            "training.gradient_accumulation_steps",
            self.gradient_accumulation_steps,
            "an integer >= 1",
        )
        _check(
            self.early_stopping_patience >= 0,
            "training.early_stopping_patience",
            self.early_stopping_patience,
            "an integer >= 0",
        )


@dataclass
class ExperimentConfig:
    """A whole training run: data, model, tasks and loop."""

    data: DataConfig
    tasks: list[TaskConfig]
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def __post_init__(self) -> None:
        _check(len(self.tasks) >= 1, "tasks", self.tasks, "at least one task")
        names = [t.name for t in self.tasks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        _check(not dupes, "tasks", names, f"unique task names (repeated: {dupes})")
        m = self.model
        paired = any(t.pair_column for t in self.tasks)
        if paired:  # the target / claim shares each window with the article
            _check(
                0 <= m.pair_max_length <= m.max_length // 2,
                "model.pair_max_length",
                m.pair_max_length,
                f"an integer in [0, {m.max_length // 2}] (half of max_length)",
            )
        if m.long_document == "head_tail":
            room = m.max_length - (m.pair_max_length if paired else 0) - 4
            _check(
                m.head_tokens < room,
                "model.head_tokens",
                m.head_tokens,
                f"fewer than {room} (max_length minus special tokens and pair text) so that a tail is kept",
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------
def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against a type hint, converting numeric strings such as ``"1e-5"``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if origin is Literal:
        _check(value in args, where, value, f"one of {list(args)}")
        return value
    if origin is list:
        _check(isinstance(value, list), where, value, "a list")
        return [_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if hint is bool:
        _check(isinstance(value, bool), where, value, "true or false")
        return value
    if hint is int:
        _check(isinstance(value, int) and not isinstance(value, bool), where, value, "an integer")
        return value
    if hint is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{where}: got {value!r}; expected a number") from None
        _check(isinstance(value, (int, float)) and not isinstance(value, bool), where, value, "a number")
        return float(value)
    if hint is str:
        _check(isinstance(value, str), where, value, "a string")
        return value
    return value


def _build(cls: type, mapping: Any, where: str) -> Any:
    _check(isinstance(mapping, dict), where or "config", mapping, "a mapping of keys to values")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        raise ConfigError(f"{where or 'config'}: unknown key(s) {unknown}; allowed keys are {sorted(fields)}")
    kwargs = {}
    for name, f in fields.items():
        sub = f"{where}.{name}" if where else name
        if name not in mapping:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{sub}: missing; this key is required")
            continue
        kwargs[name] = _coerce(mapping[name], hints[name], sub)
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> ExperimentConfig:
    """Build an :class:`ExperimentConfig` from a plain mapping (as read from YAML)."""
    return _build(ExperimentConfig, data, "")


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read a YAML config, resolving relative data and output paths against the config's folder.

    Args:
        path: the YAML file.
        overrides: dotted keys to replace, e.g. ``{"training.epochs": 1}``.

    Raises:
        ConfigError: naming the field, the bad value and what is allowed.
        FileNotFoundError: if ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    try:
        config = config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    base = path.resolve().parent
    d = config.data
    d.train, d.dev = str(base / d.train), str(base / d.dev)
    if d.test:
        d.test = str(base / d.test)
    return config
