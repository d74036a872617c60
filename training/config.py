"""Typed training configuration, loaded from YAML.

The ``model:`` section is :class:`aranews.inference.config.ModelConfig` itself: what a user writes there
is what the checkpoint stores. Every section is read by :func:`aranews.inference.schema.parse`, so all
problems of a file (unknown keys, wrong types, values out of range, inconsistent windows) are reported
in one pass, each naming the file, the key path, the value and what is allowed. PyYAML reads ``1e-5``
as a string; numeric fields accept such strings and convert them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from aranews.inference.config import DEFAULT_ENCODER, ModelConfig, abstain_problems, tasks_and_windows_problems
from aranews.inference.schema import ConfigError, parse
from aranews.inference.task_kinds import KINDS, TaskKind, kind_of

__all__ = [
    "DEFAULT_ENCODER",
    "ConfigError",
    "DataConfig",
    "ExperimentConfig",
    "ModelConfig",
    "TaskConfig",
    "TrainingConfig",
    "config_from_dict",
    "load_config",
]

Problems = list[tuple[str, Any, str]]


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
        abstain_below: single-label: a row whose calibrated top probability is below this gets no label
            (``uncertain``) when scored or predicted; saved with the model. ``null``: always a label.
        descriptions: a short description of each label (Arabic or English), ``{label: "..."}``: what
            ``aranews zero-shot`` scores articles against before any label exists (:mod:`aranews.training.zero_shot`).
    """

    name: str
    labels: list[str] | None = None
    problem_type: Literal["single_label", "multi_label"] = "single_label"
    column: str | None = None
    pair_column: str | None = None
    class_weights: Literal["none", "balanced"] = "none"
    threshold: float = 0.5
    abstain_below: float | None = None
    descriptions: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if self.column is None:
            self.column = self.name

    @property
    def kind(self) -> TaskKind:
        """What the task's kind decides (:mod:`aranews.inference.task_kinds`)."""
        return kind_of(self.problem_type)

    def check(self) -> Problems:
        out: Problems = []
        if self.labels is not None:
            if len(self.labels) < 2:
                out.append(("labels", self.labels, "at least two labels"))
            dupes = sorted({x for x in self.labels if self.labels.count(x) > 1})
            if dupes:
                out.append(("labels", self.labels, f"unique labels (repeated: {dupes})"))
        if not 0.0 < self.threshold < 1.0:
            out.append(("threshold", self.threshold, "a value in (0, 1)"))
        if KINDS.get(self.problem_type) is not None:
            out += abstain_problems(self.kind, self.abstain_below)
        return out


@dataclass
class DataConfig:
    """Where the labelled articles are and which columns hold what.

    Attributes:
        train: training file (JSON Lines, CSV or Parquet), or a list of them read as one (e.g. the old
            training file and the rows labelled since: ``[train.jsonl, new-labels.jsonl]``).
        dev: development file (or list of files) for per-epoch evaluation and model selection.
        test: optional held-out file (or list), evaluated once with the best model.
        id_column, text_column: required columns.
        title_column: optional column holding the title; ``model.title`` says whether it is read.
    """

    train: str | list[str]
    dev: str | list[str]
    test: str | list[str] | None = None

    def check(self) -> list[tuple[str, Any, str]]:
        return [
            (name, files, "a file or a non-empty list of files")
            for name, files in (("train", self.train), ("dev", self.dev), ("test", self.test))
            if isinstance(files, list) and not files
        ]

    id_column: str = "id"
    text_column: str = "text"
    title_column: str | None = "title"


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
        layer_lr_decay: layer-wise learning-rate decay: layer ``i`` of ``L`` trains at
            ``learning_rate * decay ** (L - i)``, the embeddings at ``decay ** (L + 1)`` (1.0: no decay).
        freeze_embeddings: keep the encoder's embedding matrices fixed (for XLM-R-type encoders they are
            most of the parameters; freezing them saves memory and time on small data).
        weight_decay, warmup_ratio, max_grad_norm: AdamW and schedule settings.
        gradient_accumulation_steps: micro-batches per optimiser step.
        group_by_length: form each batch from articles of similar length (shuffled within groups of 50
            batches, batch order shuffled), so dynamic padding wastes little (about 2x fewer padded
            tokens, ``benchmarks/bench_training.py``; an epoch about 1.4x faster on whole public sets);
            off (the default): a plain shuffle. Off by default because its effect on dev figures is not
            established: one seed each, dev macro-F1 went 0.643 -> 0.624 on Mawqif, 0.799 -> 0.827 on ANS
            and 0.850 -> 0.828 on the demo corpus (``BENCHMARKS.md``, training throughput).
        mixed_precision: ``auto`` (GPU: bf16, or fp16 where bf16 is not supported; CPU: bf16 autocast where the
            processor has bfloat16 instructions, ``avx512_bf16`` or ``amx_bf16``, else none), ``no``,
            ``fp16``, ``bf16``. On CPU, bf16 made an epoch 1.33x faster with no loss in dev macro-F1
            (Mawqif, one seed, ``BENCHMARKS.md``).
        ema_decay: keep an exponential moving average of the trainable weights with this decay per
            optimiser step (e.g. 0.99: the last ~100 steps weigh most) and evaluate, select and save
            the average instead of the raw weights; ``null`` (the default): off. Measured on Mawqif
            against the same seeds without it: 0.99 moved dev macro-F1 by +0.004 and -0.006, 0.998
            lagged the improving model (-0.015) (``BENCHMARKS.md``).
        early_stopping_patience: epochs without dev improvement before stopping (0: never stop early).
        selection_metric: ``macro_f1`` (mean over tasks) or ``accuracy``.
        seed: random seed for weights, shuffling and dropout.
        seeds: train once per seed (``[13, 14, 15]``) instead of once, every run from the same initial weights
            (those of the first seed; the others change the batch order and dropout), each in
            ``output_dir/seeds/seed-<n>/``, and keep one model (:mod:`aranews.training.seeds`, the "seed lottery"):
            see ``seed_selection``. ``null`` (the default): one run with ``seed``.
        seed_selection: with ``seeds``: ``best`` (the default: the run with the best dev score) or ``soup`` (the
            uniform average of the runs' weights; Wortsman et al., 2022); either is one model at no extra inference
            cost. Measured on Mawqif at 8 rows per label (three draws, three seeds each): soups 0.436, the runs
            alone 0.433, the best on dev 0.441 (optimistic): the seed moved dev macro-F1 by at most 0.031, the draw
            of rows by 0.2. On the whole Mawqif split (three seeds, 4 epochs) the soup (0.557) fell below every run
            (0.560-0.599), which ``best`` cannot do: hence the default.
            Changed after a lottery has run (with ``resume``), it keeps the other model from the same runs.
        init_seed: the seed of the initial weights (the heads) when it should differ from ``seed``; ``seeds``
            sets it to its first seed. ``null``: ``seed``.
        resume: continue from the last epoch checkpoint in ``output_dir`` when there is one.
        checkpoint_every_seconds: write the resume state (``last_checkpoint/``) after an epoch when at least this
            long has passed since it was last written, and always after the last epoch (0: after every epoch). A
            kill loses at most this much training; the state is about three times the model's size, and the
            few-shot recipe's epochs of a few batches each took less time than writing it (ANT multisource, 8
            rows per label, e5-small: 34 writes of the state in a 13-minute run).
        init_from: a model directory of this library to continue training from (retraining with new
            labels: kept labels keep their ids and head rows, a new label's row starts as the mean of
            the kept rows).
        allow_label_removal: with ``init_from``, allow labels of that model to be absent from the new
            data (their head rows are dropped); by default a missing label stops the run.
        previous_dev: with ``init_from``, the labelled file the previous model was evaluated on
            (default: the dev file recorded in that model's run, when it exists). Both models are
            evaluated on it, per label, to catch forgetting.
        forgetting_tolerance: a kept label whose F1 on ``previous_dev`` drops by more than this is flagged.
        min_label_examples: labels with fewer training rows get a warning before training.
        device: ``auto``, ``cpu`` or ``cuda``.
        progress: show progress bars.
        calibration: after the best epoch, fit calibration per task on dev and save it with the model
            (:mod:`aranews.training.calibration`): ``auto`` (temperature scaling, kept where its cross-fitted
            NLL on dev beats the raw model's; per-label temperatures for multi-label), ``temperature``,
            ``bias_corrected`` (temperature and one bias per label: opt-in, as it can change decisions; its
            cross-fitted figures are reported beside temperature scaling's either way) or ``none`` (the raw
            model's probabilities, as before).
        tune_thresholds: for multi-label tasks, pick each label's threshold on the dev split (max F1, after
            calibration) and save it with the model.
        report: after training, write the evaluation report (plots, calibration, mistakes) on dev.
        baseline: train the TF-IDF baseline on the training split and report it beside the model.
        recipe: ``standard`` (the loop above: ``epochs``, selection of the best epoch on dev, early stopping),
            ``few_shot`` (:mod:`aranews.training.few_shot`: heads started as nearest-centroid classifiers,
            ``few_shot_steps`` optimiser steps whatever the data's size, the last model kept, dev evaluated once)
            or ``auto`` (the default): ``few_shot`` when the median label has at most 64 training rows.
        few_shot_steps: optimiser steps of the few-shot recipe (``epochs`` is then derived from it).
        few_shot_contrastive_steps: steps of the few-shot recipe's contrastive stage, before the heads are set
            (:func:`aranews.training.few_shot.contrastive_stage`: pairs of training rows, the encoder's
            pooled features pulled together for a shared label and apart otherwise, as SetFit does); 0: none.
            Measured with e5-small, three seeds (``BENCHMARKS.md``, few labels): 100 steps against none at 8
            rows per label, dev macro-F1 0.689 -> 0.753 on ANT multisource (higher on every seed), 0.430 ->
            0.418 on Mawqif (within its seed spread of about 0.1); 300 steps (the default) against 100 on ANS,
            0.338 -> 0.410 at 8 rows per label and 0.334 -> 0.492 at 16, where SetFit has 0.309 and 0.358. The
            stage costs a few CPU minutes per 100 steps at these sizes on 2 cores.
            Not run when retraining (``init_from``): the old model's encoder is kept under its heads.
        few_shot_contrastive_learning_rate: the encoder's learning rate in that stage.
        few_shot_pairs: the pairs of that stage: ``sampled`` (the default: each step draws pairs with replacement,
            half sharing a label, never a row with itself, and encodes a row drawn twice once) or ``setfit``
            (SetFit 1.2's pair set walked in passes without replacement: every same-label pair, a row with
            itself included, against every different-label pair, each side of a pair encoded on its own).
        few_shot_train_encoder: whether the few-shot steps train the encoder too; ``null`` (the default): not after
            a contrastive stage (the pairs tuned it; the steps then train the heads, at ``head_learning_rate`` or
            1e-3) nor when every task reads its claim by ``pair_encoding: similarity`` (four cosines of the
            pretrained encoder, the way it was measured), yes otherwise.
    """

    output_dir: str = "runs/default"
    epochs: int = 3
    batch_size: int = 16
    eval_batch_size: int = 32
    learning_rate: float = 2.0e-5
    head_learning_rate: float | None = None
    layer_lr_decay: float = 1.0
    freeze_embeddings: bool = False
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    gradient_accumulation_steps: int = 1
    group_by_length: bool = False
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = "auto"
    ema_decay: float | None = None
    early_stopping_patience: int = 2
    selection_metric: Literal["macro_f1", "accuracy"] = "macro_f1"
    seed: int = 42
    seeds: list[int] | None = None
    seed_selection: Literal["soup", "best"] = "best"
    init_seed: int | None = None
    resume: bool = True
    checkpoint_every_seconds: float = 120.0
    init_from: str | None = None
    allow_label_removal: bool = False
    previous_dev: str | list[str] | None = None
    forgetting_tolerance: float = 0.05
    min_label_examples: int = 20
    device: Literal["auto", "cpu", "cuda"] = "auto"
    progress: bool = True
    calibration: Literal["auto", "temperature", "bias_corrected", "none"] = "auto"
    tune_thresholds: bool = True
    report: bool = True
    baseline: bool = True
    recipe: Literal["auto", "standard", "few_shot"] = "auto"
    few_shot_steps: int = 100
    few_shot_contrastive_steps: int = 300
    few_shot_contrastive_learning_rate: float = 2.0e-5
    few_shot_pairs: Literal["sampled", "setfit"] = "sampled"
    few_shot_train_encoder: bool | None = None

    def check(self) -> Problems:
        ranges = [
            ("epochs", self.epochs, 1 <= self.epochs <= 1000, "an integer in [1, 1000]"),
            ("few_shot_steps", self.few_shot_steps, 1 <= self.few_shot_steps <= 100_000, "an integer in [1, 100000]"),
            (
                "few_shot_contrastive_steps",
                self.few_shot_contrastive_steps,
                0 <= self.few_shot_contrastive_steps <= 100_000,
                "an integer in [0, 100000]",
            ),
            (
                "few_shot_contrastive_learning_rate",
                self.few_shot_contrastive_learning_rate,
                0.0 < self.few_shot_contrastive_learning_rate < 1.0,
                "a value in (0, 1)",
            ),
            (
                "seeds",
                self.seeds,
                self.seeds is None
                or (
                    isinstance(self.seeds, list)
                    and len(self.seeds) >= 2
                    and len(set(self.seeds)) == len(self.seeds)
                    and all(isinstance(v, int) and not isinstance(v, bool) for v in self.seeds)
                ),
                "null or a list of at least two different integers",
            ),
            (
                "checkpoint_every_seconds",
                self.checkpoint_every_seconds,
                0 <= self.checkpoint_every_seconds <= 1e7,
                "a number of seconds in [0, 1e7]",
            ),
            ("batch_size", self.batch_size, self.batch_size >= 1, "an integer >= 1"),
            ("eval_batch_size", self.eval_batch_size, self.eval_batch_size >= 1, "an integer >= 1"),
            ("learning_rate", self.learning_rate, 0.0 < self.learning_rate < 1.0, "a value in (0, 1)"),
            (
                "head_learning_rate",
                self.head_learning_rate,
                self.head_learning_rate is None or 0.0 < self.head_learning_rate < 1.0,
                "a value in (0, 1)",
            ),
            ("layer_lr_decay", self.layer_lr_decay, 0.0 < self.layer_lr_decay <= 1.0, "a value in (0, 1]"),
            (
                "ema_decay",
                self.ema_decay,
                self.ema_decay is None or 0.0 < self.ema_decay < 1.0,
                "null (off) or a value in (0, 1)",
            ),
            ("weight_decay", self.weight_decay, 0.0 <= self.weight_decay < 1.0, "a value in [0, 1)"),
            ("warmup_ratio", self.warmup_ratio, 0.0 <= self.warmup_ratio < 1.0, "a value in [0, 1)"),
            ("max_grad_norm", self.max_grad_norm, self.max_grad_norm > 0, "a value > 0"),
            (
                "gradient_accumulation_steps",
                self.gradient_accumulation_steps,
                self.gradient_accumulation_steps >= 1,
                "an integer >= 1",
            ),
            (
                "early_stopping_patience",
                self.early_stopping_patience,
                self.early_stopping_patience >= 0,
                "an integer >= 0",
            ),
        ]
        return [(key, value, allowed) for key, value, ok, allowed in ranges if not ok]


@dataclass
class ExperimentConfig:
    """A whole training run: data, model, tasks and loop."""

    data: DataConfig
    tasks: list[TaskConfig]
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def check(self) -> Problems:
        return tasks_and_windows_problems(self.tasks, self.model)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def config_from_dict(data: dict[str, Any], source: str | None = None) -> ExperimentConfig:
    """Build an :class:`ExperimentConfig` from a plain mapping (as read from YAML).

    Raises:
        ConfigError: listing every problem, each with its key path, value and what is allowed.
    """
    return parse(ExperimentConfig, data, source=source)


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    *parents, leaf = dotted.split(".")
    for key in parents:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError([f"--set {dotted}: {key!r} is not a section (it holds {child!r})"])
        node = child
    node[leaf] = value


def load_config(
    path: str | Path, overrides: dict[str, Any] | None = None, *, needs_data: bool = True
) -> ExperimentConfig:
    """Read a YAML config: relative paths in the file are read from the file's folder, relative paths in
    ``overrides`` (the command line) from the working directory (see :data:`PATH_KEYS`).

    Args:
        path: the YAML file.
        overrides: dotted keys to replace, e.g. ``{"training.epochs": 1}``.
        needs_data: ``False`` for commands that read no data (``aranews zero-shot``): a config without a
            ``data`` section (or without its train and dev files) is then accepted.

    Raises:
        ConfigError: listing every problem of the file, each naming the key path, the bad value and
            what is allowed.
        FileNotFoundError: if ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError([f"not valid YAML: {exc}"], str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError([f"expected a mapping of sections (data, tasks, model, training), got {data!r}"], str(path))
    if not needs_data:
        section = data.setdefault("data", {}) or {}
        data["data"] = {**section, "train": section.get("train") or "-", "dev": section.get("dev") or "-"}
    _resolve_paths(data, path.resolve().parent)  # the file's own paths: from the file's folder
    for dotted, value in (overrides or {}).items():
        _set_dotted(data, dotted, _absolute(dotted, value, Path.cwd()))  # the command line's: from where it runs
    return config_from_dict(data, source=str(path))


# The settings that hold paths. One rule: a relative path is read from where it is written, so in a YAML
# file from the file's folder, on the command line (--set, --out) from the working directory.
PATH_KEYS = (
    "data.train",
    "data.dev",
    "data.test",
    "model.encoder",
    "training.output_dir",
    "training.init_from",
    "training.previous_dev",
)


def _absolute(dotted: str, value: Any, base: Path) -> Any:
    """``value`` with its relative paths made absolute against ``base`` when ``dotted`` is a path setting.

    ``model.encoder`` may also name a hub model (``owner/name``): it is read as a path only when that folder
    exists there or it starts with ``.``. Values that are not strings (or lists of them) are left for the
    schema to report.
    """
    if dotted not in PATH_KEYS:
        return value
    if isinstance(value, list):
        return [_absolute(dotted, v, base) for v in value]
    if not isinstance(value, str) or not value:
        return value
    if Path(value).expanduser().is_absolute():
        return str(Path(value).expanduser())
    if dotted == "model.encoder" and not (value.startswith(".") or (base / value).exists()):
        return value  # a hub id
    return str(base / value)


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    for dotted in PATH_KEYS:
        section, key = dotted.split(".")
        node = data.get(section)
        if isinstance(node, dict) and node.get(key) is not None:
            node[key] = _absolute(dotted, node[key], base)
