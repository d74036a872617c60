"""Fine-tuning loop on accelerate: validate, window, train, evaluate each epoch, keep the best, resume.

The run directory holds::

    model/              the best model so far, push-ready (weights, tokenizer, config.json, README.md card)
    last_checkpoint/    state to resume from after an interruption (safetensors + JSON, no pickles),
                        with the run's fingerprint (resolved settings, data file hashes)
    report/             the evaluation report of the best model on dev
    metrics.json        per-epoch dev figures, the best epoch, final dev/test reports, truncation counts
    config.yaml         the resolved experiment config
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader, Sampler

from aranews.inference.classifier import NewsClassifier
from aranews.inference.config import ClassifierConfig, LabelSchema, TaskSpec, library_versions
from aranews.inference.inputs import ArticleWindower, collate_articles
from aranews.inference.modeling import MultiTaskClassifier
from aranews.inference.runtime import auto_precision
from aranews.inference.schema import ConfigError
from aranews.training.averaging import WeightAverage
from aranews.training.checkpoint import (
    ResumeMismatchError,
    fingerprint_differences,
    load_training_state,
    read_progress,
    replace_dir,
    run_fingerprint,
    save_training_state,
)
from aranews.training.config import ExperimentConfig
from aranews.training.data import EncodedSplit, LabelledSplit, encode_split, load_and_validate
from aranews.training.extras import require_train_extra
from aranews.training.few_shot import (
    HEAD_ONLY_LEARNING_RATE,
    choose_recipe,
    contrastive_stage,
    few_shot_epochs,
    init_heads_from_prototypes,
    init_new_label_rows,
)

__all__ = ["EncoderUnavailableError", "TrainResult", "Trainer", "check_encoder_source", "label_diff"]

logger = logging.getLogger(__name__)


class EncoderUnavailableError(RuntimeError):
    """The pretrained encoder is neither a local directory nor cached, and the hub cannot be reached."""


def label_diff(old: Sequence[str], new: Sequence[str]) -> dict[str, list[str]]:
    """Labels added, removed and kept between two label lists."""
    return {
        "added": sorted(set(new) - set(old)),
        "removed": sorted(set(old) - set(new)),
        "kept": [label for label in old if label in set(new)],
    }


def _hub_reachable(timeout: float = 3.0) -> bool:
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def check_encoder_source(name: str, what: str = "model.encoder") -> None:
    """Fail in a second, with what to do, when ``name`` is neither a local directory nor in the Hugging
    Face cache and the hub cannot be reached (instead of a minute of retries and a long traceback)."""
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file() and what == "model.encoder":
            raise EncoderUnavailableError(
                f"{what}: {name} is a folder without config.json; point it at a transformers model directory"
            )
        return
    from huggingface_hub import constants, try_to_load_from_cache

    from aranews.inference.cards import hub_base_model

    if hub_base_model(name) is None:
        raise EncoderUnavailableError(f"{what}: {name} does not exist (and is not a hub id of the form owner/model)")
    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return
    if constants.HF_HUB_OFFLINE or not _hub_reachable():
        reason = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else f"{constants.ENDPOINT} cannot be reached"
        raise EncoderUnavailableError(
            f"{what} is {name!r}: it is not a local directory, it is not in the Hugging Face cache, and {reason}. "
            f"Either download it once where the hub is reachable (it is then cached) or copy the model folder "
            f"here and set {what} to its path (e.g. --set {what}=/models/bert-base-arabertv02); to try the "
            "library without any download, run `make demo` or `aranews demo --out runs/demo`."
        )


class _EpochSampler(Sampler[int]):
    """A shuffle that depends only on (seed, epoch), so a resumed run sees the same order.

    With ``lengths``, the order groups articles of similar length into the same batch: the shuffled order
    is cut into groups of ``GROUP_BATCHES`` batches, each group sorted by length and cut into batches, and
    the batches are shuffled (the last, partial batch stays last so batches keep their boundaries).
    """

    GROUP_BATCHES = 50

    def __init__(self, n: int, seed: int, lengths: list[int] | None = None, batch_size: int = 1) -> None:
        self.n, self.seed, self.epoch = n, seed, 0
        self.lengths, self.batch_size = lengths, batch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.n, generator=generator).tolist()
        if self.lengths is None or self.batch_size < 2:
            return iter(order)
        size = self.batch_size * self.GROUP_BATCHES
        grouped = []
        for start in range(0, self.n, size):
            grouped += sorted(order[start : start + size], key=lambda i: -self.lengths[i])
        batches = [grouped[i : i + self.batch_size] for i in range(0, self.n, self.batch_size)]
        last = [batches.pop()] if len(batches[-1]) < self.batch_size else []
        shuffled = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()] + last
        return iter([i for batch in shuffled for i in batch])

    def __len__(self) -> int:
        return self.n


class _Collator:
    def __init__(self, data: EncodedSplit, pad_token_id: int) -> None:
        self.data, self.pad_token_id = data, pad_token_id

    def __call__(self, indices: list[int]) -> dict[str, Any]:
        return {
            "groups": {
                key: collate_articles([articles[i] for i in indices], self.pad_token_id)
                for key, articles in self.data.groups.items()
            },
            "labels": {name: tensor[indices] for name, tensor in self.data.labels.items()},
        }


def _recorded_dev(model_dir: str | None) -> str | list[str] | None:
    """The dev file of the run that wrote ``model_dir`` (``<run>/model``), from its ``metrics.json``."""
    if not model_dir:
        return None
    metrics = Path(model_dir).parent / "metrics.json"
    try:
        return json.loads(metrics.read_text(encoding="utf-8"))["config"]["data"]["dev"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _next_schema(previous: ClassifierConfig, specs: list[TaskSpec]) -> LabelSchema:
    """The label schema of a model retrained from ``previous``: same version if no label changed, else +1."""
    changes = {}
    for spec in specs:
        old = previous.task(spec.name).labels if spec.name in {t.name for t in previous.tasks} else []
        diff = label_diff(old, spec.labels)
        if diff["added"] or diff["removed"]:
            changes[spec.name] = {"added": diff["added"], "removed": diff["removed"]}
    gone = [t.name for t in previous.tasks if t.name not in {s.name for s in specs}]
    for name in gone:
        changes[name] = {"added": [], "removed": list(previous.task(name).labels)}
    version = previous.label_schema.version + (1 if changes else 0)
    return LabelSchema(version=version, previous=previous.schema_id, changes=changes)


def small_labels(tasks: Sequence[TaskSpec], split: LabelledSplit, minimum: int) -> dict[str, dict[str, int]]:
    """Per task, the labels with fewer than ``minimum`` training rows, and their counts."""
    out = {}
    for task in tasks:
        counts = Counter()
        for value in split.labels.get(task.name, []):
            for label in value if isinstance(value, list) else [value] if value is not None else []:
                counts[label] += 1
        few = {label: counts[label] for label in task.labels if counts[label] < minimum}
        if few:
            out[task.name] = few
    return out


def _lengths(data: EncodedSplit) -> list[int]:
    """Per article, the tokens it puts into a batch (all windows of every input group)."""
    totals = [0] * len(next(iter(data.groups.values())))
    for articles in data.groups.values():
        for i, article in enumerate(articles):
            totals[i] += sum(len(w) for w in article.input_ids)
    return totals


def _class_weights(task: TaskSpec, labels: torch.Tensor) -> torch.Tensor:
    """Inverse-frequency weights (single-label) or negative/positive ratios (multi-label)."""
    return task.kind.class_weights(len(task.labels), labels)


def _layer_index(name: str, layers: int) -> int:
    """0 for embeddings, ``i + 1`` for ``encoder.layer.i.*`` (BERT, XLM-R naming), ``layers + 1`` otherwise."""
    if name.startswith("embeddings."):
        return 0
    parts = name.split(".")
    if len(parts) > 2 and parts[0] == "encoder" and parts[1] == "layer" and parts[2].isdigit():
        return int(parts[2]) + 1
    return layers + 1


def _selection_score(reports: dict[str, dict[str, Any]], metric: str) -> float:
    values = [r[metric] for r in reports.values() if r.get("n")]
    return float(np.mean(values)) if values else 0.0


@dataclass
class TrainResult:
    """What :meth:`Trainer.train` produced."""

    output_dir: Path
    model_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Run:
    """What one training run sets up once and its steps share."""

    accelerator: Any
    precision: str
    tokenizer: Any
    model: Any  # prepared by accelerate (possibly wrapped)
    unwrapped: MultiTaskClassifier
    windower: ArticleWindower
    train_split: LabelledSplit
    train_data: EncodedSplit
    eval_data: dict[str, EncodedSplit]
    loader: Any
    optimizer: Any
    scheduler: Any
    fingerprint: dict[str, Any]
    label_changes: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"epoch": 0, "score": -1.0, "bad_epochs": 0})
    start_epoch: int = 0
    stopped_early: bool = False
    average: WeightAverage | None = None
    epochs: int = 1  # training.epochs, or what the few-shot recipe's steps make
    recipe: dict[str, Any] = field(default_factory=dict)  # {"name", "why", the few-shot heads' figures}
    saved_at: float = field(default_factory=time.monotonic)  # when the resume state was last written

    @property
    def few_shot(self) -> bool:
        return self.recipe.get("name") == "few_shot"

    def averaged(self) -> AbstractContextManager[None]:
        """The weights to evaluate and save: the moving average when the run keeps one."""
        return self.average.applied(self.unwrapped) if self.average is not None else nullcontext()


class Trainer:
    """Train a multi-task classifier as an :class:`ExperimentConfig` describes.

    Args:
        config: the experiment.

    Raises:
        MissingExtraError: the training extra is not installed.
    """

    def __init__(self, config: ExperimentConfig) -> None:
        require_train_extra("training")
        self.config = config
        self.output_dir = Path(config.training.output_dir)
        self.model_dir = self.output_dir / "model"

    def train(self, stop_after_epochs: int | None = None) -> TrainResult:
        """Run training to the end (or early stop) and return the run's figures.

        Args:
            stop_after_epochs: end the run after this many epochs in total, as an interruption would
                (the schedule still spans ``training.epochs``); a later run with ``resume`` continues.

        Raises:
            DataValidationError: before any model is built, if the data has problems.
            ConfigError: ``model.max_length`` exceeds what the encoder's positions allow.
            EncoderUnavailableError: the encoder cannot be found offline and the hub is unreachable.
            ResumeMismatchError: ``last_checkpoint/`` holds another run's state.
        """
        if self.config.training.seeds:
            from aranews.training.seeds import train_seeds

            return train_seeds(self, stop_after_epochs)
        started = time.perf_counter()
        train_split, eval_splits, labels = load_and_validate(
            self.config.data, self.config.tasks, self.config.model.title
        )
        self._check_sources()
        fingerprint = run_fingerprint(self.config.to_dict())
        progress = self._previous_progress(fingerprint)
        specs, changes = self._task_specs(labels)
        self._warn_small_labels(specs, train_split, changes)
        run = self._setup(specs, train_split, eval_splits, fingerprint, changes, progress=progress)
        self._restore(run, progress)
        self._fit(run, stop_after_epochs)
        metrics = self._finish(run, started)
        return TrainResult(self.output_dir, self.model_dir, metrics)

    # -- before anything heavy ----------------------------------------------------------------------
    def _check_sources(self) -> None:
        m, tcfg = self.config.model, self.config.training
        if tcfg.init_from:
            if not (Path(tcfg.init_from) / "config.json").is_file():
                raise FileNotFoundError(
                    f"training.init_from: {tcfg.init_from} is not a model directory of this library"
                )
            return
        check_encoder_source(m.encoder)
        if m.tokenizer:
            check_encoder_source(m.tokenizer, "model.tokenizer")
        self._check_positions()

    def _check_positions(self) -> None:
        """``max_length`` against the encoder's position embeddings, from its config alone (no weights)."""
        from transformers import AutoConfig

        encoder = AutoConfig.from_pretrained(self.config.model.encoder, trust_remote_code=False)
        positions = getattr(encoder, "max_position_embeddings", None)
        if positions is None:
            return
        # RoBERTa / XLM-R number positions from padding_idx + 1
        offset = (encoder.pad_token_id or 0) + 1 if encoder.model_type in ("roberta", "xlm-roberta", "camembert") else 0
        limit = positions - offset
        if self.config.model.max_length > limit:
            raise ConfigError(
                [
                    f"model.max_length: got {self.config.model.max_length}; expected at most {limit}, the positions of "
                    f"the encoder {self.config.model.encoder}"
                ]
            )

    def _previous_progress(self, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
        """The progress to resume from, after checking that it is this run's (same settings, same data)."""
        if not self.config.training.resume:
            return None
        progress = read_progress(self.output_dir)
        if progress is None:
            return None
        differences = fingerprint_differences(progress.get("fingerprint", {}), fingerprint)
        if differences:
            raise ResumeMismatchError(
                f"{self.output_dir / 'last_checkpoint'} belongs to another run; it differs in:\n  "
                + "\n  ".join(differences[:20])
                + f"\nUse another training.output_dir (--out), or start afresh with --set training.resume=false, "
                f"or delete {self.output_dir / 'last_checkpoint'}."
            )
        return progress

    def _task_specs(self, labels: dict[str, list[str]]) -> tuple[list[TaskSpec], dict[str, Any]]:
        """Task specs, ordered so that labels kept from an ``init_from`` model keep their ids."""
        init_from = self.config.training.init_from
        previous = ClassifierConfig.load(init_from) if init_from else None
        specs, changes = [], {}
        for task in self.config.tasks:
            names = labels[task.name]
            if previous is not None and task.name in {t.name for t in previous.tasks}:
                diff = label_diff(previous.task(task.name).labels, names)
                if diff["removed"] and not self.config.training.allow_label_removal:
                    raise ConfigError(
                        [
                            f"training.init_from: task {task.name!r} of {init_from} has the label(s) "
                            f"{diff['removed']}, which the new training data does not have. Removing a label "
                            "drops its head row and the model stops predicting it: add examples of it, or set "
                            "training.allow_label_removal: true to remove it on purpose"
                        ]
                    )
                names = diff["kept"] + diff["added"]
                changes[task.name] = diff
                logger.info(
                    "task %r labels vs %s: added %s, removed %s, kept %d",
                    task.name,
                    init_from,
                    diff["added"],
                    diff["removed"],
                    len(diff["kept"]),
                )
            thresholds = task.kind.default_thresholds(len(names), task.threshold)
            spec = TaskSpec(task.name, names, task.problem_type, task.pair_column, thresholds)
            spec.abstain_below = task.abstain_below
            specs.append(spec)
        return specs, changes

    def _warn_small_labels(self, specs: list[TaskSpec], train: LabelledSplit, changes: dict[str, Any]) -> None:
        """Before training: say which labels have too few examples to be learned, and what to do."""
        minimum = self.config.training.min_label_examples
        for task, few in small_labels(specs, train, minimum).items():
            weights = next(t.class_weights for t in self.config.tasks if t.name == task)
            added = set(changes.get(task, {}).get("added", []))
            listed = ", ".join(f"{label} ({n}{', new' if label in added else ''})" for label, n in few.items())
            advice = [] if weights == "balanced" else [f"set class_weights: balanced for task {task!r}"]
            advice.append(
                f"label more examples of them (aranews select --per-label {minimum} --quota-task {task} picks candidates)"
            )
            logger.warning(
                "task %r: label(s) with fewer than %d training examples: %s; they may not be learned: %s",
                task,
                minimum,
                listed,
                "; ".join(advice),
            )

    # -- set-up -------------------------------------------------------------------------------------
    def _build_model(self, specs: list[TaskSpec]) -> MultiTaskClassifier:
        m, init_from = self.config.model, self.config.training.init_from
        if not init_from:
            return MultiTaskClassifier.from_encoder(m, specs)
        old = MultiTaskClassifier.from_pretrained(init_from)
        settings = dataclasses.replace(m, encoder=old.config.model.encoder)
        config = ClassifierConfig(tasks=specs, model=settings, encoder_config=old.config.encoder_config)
        config.label_schema = _next_schema(old.config, specs)
        model = MultiTaskClassifier(config.validate(), encoder=old.encoder)
        with torch.no_grad():  # kept labels keep their output rows; the dense layer is label-independent
            for spec in specs:
                if spec.name not in old.heads:
                    continue
                new_head, old_head = model.heads[spec.name], old.heads[spec.name]
                new_head.dense.load_state_dict(old_head.dense.state_dict())
                old_labels = old.config.task(spec.name).labels
                kept = [old_labels.index(label) for label in spec.labels if label in old_labels]
                for row, label in enumerate(spec.labels):
                    if label in old_labels:
                        j = old_labels.index(label)
                        new_head.out_proj.weight[row] = old_head.out_proj.weight[j]
                        new_head.out_proj.bias[row] = old_head.out_proj.bias[j]
                    elif kept:  # a new label starts as the average kept label: no class starts out favoured
                        new_head.out_proj.weight[row] = old_head.out_proj.weight[kept].mean(dim=0)
                        new_head.out_proj.bias[row] = old_head.out_proj.bias[kept].mean()
        return model

    def _accelerator(self) -> tuple[Any, str]:
        from accelerate import Accelerator
        from accelerate.state import AcceleratorState

        tcfg = self.config.training
        cpu = tcfg.device == "cpu" or not torch.cuda.is_available()
        precision = tcfg.mixed_precision
        if precision == "auto":  # as scoring's auto: bf16 on CPUs with bf16 instructions (1.33x per epoch on CPU)
            mode = auto_precision(torch.device("cpu" if cpu else "cuda"))
            precision = "no" if mode == "fp32" else mode  # accelerate's name for full precision
        state = getattr(AcceleratorState, "_shared_state", None)
        reset = getattr(AcceleratorState, "_reset_state", None)  # private in accelerate 1.x: used if present
        if state and state.get("_mixed_precision") not in (None, precision) and reset is not None:
            # accelerate keeps one precision per process and refuses another; a second run in the same
            # process (a notebook, a benchmark) may ask for one: its state starts afresh, the process group
            # (distributed runs) is kept
            reset(reset_partial_state=False)
        accelerator = Accelerator(
            mixed_precision=precision, gradient_accumulation_steps=tcfg.gradient_accumulation_steps, cpu=cpu
        )
        return accelerator, precision

    def _optimizer(self, model: MultiTaskClassifier, total: int, train_encoder: bool = True) -> tuple[Any, Any]:
        from transformers import get_linear_schedule_with_warmup

        tcfg = self.config.training
        optimizer = torch.optim.AdamW(self._parameter_groups(model, train_encoder), lr=tcfg.learning_rate)
        return optimizer, get_linear_schedule_with_warmup(optimizer, int(tcfg.warmup_ratio * total), total)

    def _frozen(self, name: str) -> bool:
        """Whether the encoder parameter ``name`` never trains (``training.freeze_embeddings``)."""
        return self.config.training.freeze_embeddings and name.startswith("embeddings.")

    def _parameter_groups(self, model: MultiTaskClassifier, train_encoder: bool = True) -> list[dict[str, Any]]:
        """Encoder parameters by depth (layer-wise decay) and decay kind, then the heads. With ``train_encoder``
        false (the few-shot recipe after its contrastive stage) the encoder is frozen and the heads train at
        ``head_learning_rate`` or :data:`~aranews.training.few_shot.HEAD_ONLY_LEARNING_RATE`."""
        tcfg = self.config.training
        no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
        layers = getattr(model.encoder.config, "num_hidden_layers", 0)
        groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
        for name, parameter in model.encoder.named_parameters():
            if not train_encoder or self._frozen(name):
                parameter.requires_grad_(False)
                continue
            depth = _layer_index(name, layers)  # 0: embeddings, 1..L: layers, L + 1: above the layers
            exponent = layers + 1 if depth == 0 else max(0, layers - depth)  # the top layer trains at the full rate
            lr = tcfg.learning_rate * tcfg.layer_lr_decay**exponent
            decay = 0.0 if name.endswith(no_decay) else tcfg.weight_decay
            groups.setdefault((lr, decay), []).append(parameter)
        out = [{"params": ps, "lr": lr, "weight_decay": decay} for (lr, decay), ps in groups.items()]
        out.append(
            {
                "params": list(model.heads.parameters()),
                "weight_decay": 0.0,
                "lr": tcfg.head_learning_rate or (tcfg.learning_rate if train_encoder else HEAD_ONLY_LEARNING_RATE),
            }
        )
        return out

    def _setup(
        self,
        specs: list[TaskSpec],
        train_split: LabelledSplit,
        eval_splits: dict[str, LabelledSplit],
        fingerprint: dict[str, Any],
        changes: dict[str, Any],
        train: bool = True,
        progress: dict[str, Any] | None = None,
    ) -> _Run:
        from accelerate.utils import set_seed
        from transformers import AutoTokenizer

        cfg, tcfg = self.config, self.config.training
        set_seed(tcfg.seed if tcfg.init_seed is None else tcfg.init_seed)
        accelerator, precision = self._accelerator()
        tokenizer_source = cfg.model.tokenizer or tcfg.init_from or cfg.model.encoder
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_source, trust_remote_code=False)
        model = self._build_model(specs)
        if tcfg.init_seed is not None:  # the initial weights came from init_seed; dropout and order from seed
            set_seed(tcfg.seed)
        windower = ArticleWindower.from_config(model.config.model, tokenizer)
        with accelerator.main_process_first():
            train_data = encode_split(windower, train_split, specs)
            eval_data = {name: encode_split(windower, split, specs) for name, split in eval_splits.items()}
        for task in cfg.tasks:
            if task.class_weights == "balanced":
                spec = model.config.task(task.name)
                model.class_weights[task.name] = _class_weights(spec, train_data.labels[task.name])
        if not train:
            recipe: dict[str, Any] = {}
        elif progress is not None and progress.get("recipe"):  # resuming: the saved state holds what it made
            recipe = progress["recipe"]
        else:
            recipe = self._recipe(model, specs, train_data, windower.pad_token_id, accelerator, changes)
        loader = DataLoader(
            list(range(len(train_split))),
            batch_size=tcfg.batch_size,
            sampler=_EpochSampler(
                len(train_split),
                tcfg.seed,
                _lengths(train_data) if tcfg.group_by_length else None,
                tcfg.batch_size,
            ),
            collate_fn=_Collator(train_data, windower.pad_token_id),
        )
        steps_per_epoch = math.ceil(len(loader) / tcfg.gradient_accumulation_steps)
        epochs = (
            few_shot_epochs(tcfg.few_shot_steps, steps_per_epoch) if recipe.get("name") == "few_shot" else tcfg.epochs
        )
        optimizer, scheduler = self._optimizer(model, steps_per_epoch * epochs, recipe.get("train_encoder", True))
        prepared, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
        unwrapped = accelerator.unwrap_model(prepared)
        return _Run(
            accelerator,
            precision,
            tokenizer,
            prepared,
            unwrapped,
            windower,
            train_split,
            train_data,
            eval_data,
            loader,
            optimizer,
            scheduler,
            fingerprint,
            changes,
            average=WeightAverage(unwrapped, tcfg.ema_decay) if tcfg.ema_decay is not None else None,
            epochs=epochs,
            recipe=recipe,
        )

    def _recipe(
        self,
        model: MultiTaskClassifier,
        specs: list[TaskSpec],
        train: EncodedSplit,
        pad_id: int,
        accelerator: Any,
        changes: dict[str, Any],
    ) -> dict:
        """Which recipe trains this run (``training.recipe``; ``auto`` by the rows per label) and how the model
        starts: when retraining, each new label's output row fitted on its training rows; for the few-shot recipe,
        its contrastive stage (when ``few_shot_contrastive_steps`` > 0) and the heads set to their
        nearest-centroid start (:mod:`aranews.training.few_shot`)."""
        tcfg = self.config.training
        name, why = choose_recipe(tcfg.recipe, specs, train.labels)
        logger.info("recipe %s (%s)", name, why)
        recipe: dict[str, Any] = {"name": name, "why": why}
        added = {task: diff["added"] for task, diff in changes.items() if diff["added"]}
        if added:  # a new label among many kept ones: started from its own rows, not as the average kept label
            recipe["new_labels"] = init_new_label_rows(model, train, specs, added, pad_id, tcfg.eval_batch_size)
        if name != "few_shot":
            return recipe
        if tcfg.init_from:
            # retraining: the kept labels' head rows stay those of the old model (bit for bit, as documented), and
            # so does the encoder under them (no contrastive stage); only the schedule is the few-shot one
            if tcfg.few_shot_contrastive_steps:
                recipe["contrastive"] = {"steps": 0, "why": "skipped: training.init_from (the old encoder is kept)"}
        elif tcfg.few_shot_contrastive_steps:
            recipe["contrastive"] = contrastive_stage(
                model,
                train,
                specs,
                pad_id,
                steps=tcfg.few_shot_contrastive_steps,
                batch_size=tcfg.batch_size,
                learning_rate=tcfg.few_shot_contrastive_learning_rate,
                seed=tcfg.seed,
                device=accelerator.device,
                skip_parameters=self._frozen,
                autocast=accelerator.autocast,
                pair_set=tcfg.few_shot_pairs,
            )
        # after a contrastive stage the pairs have tuned the encoder: the labels tune the heads; so they do when
        # every head reads the pretrained encoder's cosines to a claim (pair_encoding: similarity, measured so)
        contrastive = bool(recipe.get("contrastive", {}).get("steps"))
        cosines_only = self.config.model.pair_encoding == "similarity" and all(s.pair_column for s in specs)
        train_encoder = tcfg.few_shot_train_encoder
        recipe["train_encoder"] = not (contrastive or cosines_only) if train_encoder is None else train_encoder
        fresh = {spec.name for spec in specs} - set(changes)  # every task when not retraining, else the new ones
        if tcfg.init_from:
            recipe["heads"] = "kept from training.init_from"
        if fresh:
            heads = init_heads_from_prototypes(model, train, specs, pad_id, tcfg.eval_batch_size, only=fresh)
            recipe["heads"] = heads if not tcfg.init_from else {"kept": "from training.init_from", **heads}
        return recipe

    def _restore(self, run: _Run, progress: dict[str, Any] | None) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if progress is None:
            return
        restored = load_training_state(self.output_dir, run.unwrapped, run.optimizer, run.scheduler, run.average)
        if restored is not None:
            run.start_epoch, run.history, run.best = restored["epoch"], restored["history"], restored["best"]
            logger.info("resuming from %s after epoch %d", self.output_dir / "last_checkpoint", run.start_epoch)

    # -- the loop -----------------------------------------------------------------------------------
    def _fit(self, run: _Run, stop_after_epochs: int | None) -> None:
        from aranews.training.evaluation import evaluate_split

        tcfg = self.config.training
        evaluator = NewsClassifier(  # dev figures in fp32 on every machine: epochs are selected on them
            run.unwrapped, run.tokenizer, run.accelerator.device, batch_size=tcfg.eval_batch_size, precision="fp32"
        )
        for epoch in range(run.start_epoch, run.epochs):
            if run.best["bad_epochs"] > 0 and run.best["bad_epochs"] >= tcfg.early_stopping_patience > 0:
                run.stopped_early = True
                break
            if stop_after_epochs is not None and epoch >= stop_after_epochs:
                break
            epoch_start = time.perf_counter()
            losses = self._train_epoch(run, epoch)
            if run.few_shot:  # the last model is kept: dev is read once, when the saved model is scored
                run.history.append(
                    {
                        "epoch": epoch + 1,
                        "train_loss": float(np.mean(losses)) if losses else None,
                        "dev_score": None,
                        "dev": {},
                        "seconds": round(time.perf_counter() - epoch_start, 2),
                    }
                )
                self._end_epoch(run, evaluator, epoch, None, stop_after_epochs)
                continue
            with run.averaged():
                reports = evaluate_split(evaluator, run.eval_data["dev"], run.accelerator)
            score = _selection_score(reports, tcfg.selection_metric)
            run.history.append(
                {
                    "epoch": epoch + 1,
                    "train_loss": float(np.mean(losses)) if losses else None,
                    "dev_score": score,
                    "dev": reports,
                    "seconds": round(time.perf_counter() - epoch_start, 2),
                }
            )
            logger.info(
                "epoch %d: train loss %.4f, dev %s %.4f (%s)",
                epoch + 1,
                run.history[-1]["train_loss"],
                tcfg.selection_metric,
                score,
                ", ".join(f"{k} {v.get(tcfg.selection_metric, 0):.3f}" for k, v in reports.items()),
            )
            self._end_epoch(run, evaluator, epoch, score, stop_after_epochs)
        if run.few_shot and run.best["epoch"] == 0 and run.accelerator.is_main_process:
            # stopped before the last step (``stop_after_epochs``): the model so far, so that the run has one
            with run.averaged():
                self._save_model(evaluator)

    def _train_epoch(self, run: _Run, epoch: int) -> list[float]:
        tcfg, accelerator = self.config.training, run.accelerator
        # accelerate's loader re-sets its sampler's epoch from its own counter, which restarts at 0
        # on resume: set the epoch here, so a resumed run shuffles exactly as an uninterrupted one.
        run.loader.set_epoch(epoch)
        run.model.train()
        losses: list[float] = []
        bar = _progress(run.loader, tcfg.progress and accelerator.is_local_main_process, f"epoch {epoch + 1}")
        for batch in bar:
            with accelerator.accumulate(run.model):
                loss = self._batch_loss(run.model, batch)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(run.model.parameters(), tcfg.max_grad_norm)
                run.optimizer.step()
                run.scheduler.step()
                run.optimizer.zero_grad()
                if run.average is not None and accelerator.sync_gradients:
                    run.average.update(run.unwrapped)
            losses.append(loss.item())
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
        return losses

    @staticmethod
    def _batch_loss(model: Any, batch: dict[str, Any]) -> torch.Tensor:
        unwrapped = model.module if hasattr(model, "module") else model
        total = None
        for column, names in unwrapped.config.input_groups().items():
            out = model(**batch["groups"][column], tasks=names, labels={n: batch["labels"][n] for n in names})
            total = out.loss if total is None else total + out.loss
        return total

    def _end_epoch(
        self, run: _Run, evaluator: NewsClassifier, epoch: int, score: float | None, stop_after: int | None = None
    ) -> None:
        """Every process tracks the best epoch (the gathered dev figures are the same everywhere, so early
        stopping stops them together); only the main process writes the model and the resume state. The
        few-shot recipe keeps its last model (``score`` is None before it)."""
        main = run.accelerator.is_main_process
        last = run.few_shot and epoch + 1 == run.epochs  # its score is filled in when the saved model is scored
        if last or (score is not None and score > run.best["score"]):
            run.best = {"epoch": epoch + 1, "score": score, "bad_epochs": 0}
            if main:
                with run.averaged():
                    self._save_model(evaluator)
        elif score is not None:
            run.best["bad_epochs"] += 1
        patience = self.config.training.early_stopping_patience
        ends = (
            epoch + 1 == run.epochs
            or (stop_after is not None and epoch + 1 >= stop_after)
            or (run.best["bad_epochs"] > 0 and run.best["bad_epochs"] >= patience > 0)
        )
        # the resume state (weights and optimiser: about three times the model) at the end, and in between at
        # most every checkpoint_every_seconds: the few-shot recipe's epochs of three batches would spend more
        # time writing it than training
        due = time.monotonic() - run.saved_at >= self.config.training.checkpoint_every_seconds
        if main and (ends or due):
            progress = {"epoch": epoch + 1, "history": run.history, "best": run.best, "fingerprint": run.fingerprint,
                        "recipe": run.recipe}  # fmt: skip
            save_training_state(self.output_dir, run.unwrapped, run.optimizer, run.scheduler, progress, run.average)
            run.saved_at = time.monotonic()
        run.accelerator.wait_for_everyone()

    def _save_model(self, classifier: NewsClassifier) -> None:
        self._replace_model(classifier.save_pretrained)

    def _replace_model(self, write: Callable[[Path], Any]) -> None:
        """``model/`` replaced at once by what ``write`` puts in a fresh folder beside it."""
        tmp = self.output_dir / ".model.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        write(tmp)
        replace_dir(tmp, self.model_dir)

    # -- after the loop -----------------------------------------------------------------------------
    def finish_combined(self, weights_dir: Path, recipe: dict[str, Any], history: list[dict[str, Any]]) -> TrainResult:
        """Make the model in ``weights_dir`` (one of several seeds' runs, or their average) this run's model: it is
        copied to ``model/``, then calibrated, evaluated and described exactly as a trained model is
        (:meth:`_finish`); ``recipe`` says how it was made."""
        started = time.perf_counter()
        train_split, eval_splits, labels = load_and_validate(
            self.config.data, self.config.tasks, self.config.model.title
        )
        specs, changes = self._task_specs(labels)
        fingerprint = run_fingerprint(self.config.to_dict())
        run = self._setup(specs, train_split, eval_splits, fingerprint, changes, train=False)
        run.recipe, run.history, run.epochs = recipe, history, len(history)
        run.best = {"epoch": None, "score": None, "bad_epochs": 0}
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if run.accelerator.is_main_process:
            self._replace_model(lambda tmp: shutil.copytree(weights_dir, tmp))
        run.accelerator.wait_for_everyone()
        return TrainResult(self.output_dir, self.model_dir, self._finish(run, started))

    def _finish(self, run: _Run, started: float) -> dict[str, Any]:
        """Final figures from the saved best model, exactly as a user will load it; metrics and card."""
        from aranews.training.evaluation import build_report, compact, evaluate_split, split_figures

        tcfg = self.config.training
        final = NewsClassifier.from_pretrained(
            self.model_dir, device=run.accelerator.device, batch_size=tcfg.eval_batch_size, precision="fp32"
        )
        # one pass over dev: its logits fit the calibration, then give the report's and the metrics' dev figures
        calibration, tuned, dev_logits = self._fit_on_dev(final, run.eval_data["dev"], run.accelerator)
        reports: dict[str, Any] = {}
        if tcfg.report and run.accelerator.is_main_process:
            report = build_report(
                final,
                run.eval_data["dev"],
                self.output_dir / "report",
                train=run.train_split if tcfg.baseline else None,
                split_name="dev",
                logits=dev_logits,
            )
            reports["dev"] = {name: compact(figures) for name, figures in report["tasks"].items()}
        else:
            probs = {name: final.probabilities(name, z) for name, z in dev_logits.items()}  # calibrated
            reports["dev"] = split_figures(final, run.eval_data["dev"], probs)
        reports.update(
            {
                name: evaluate_split(final, data, run.accelerator)
                for name, data in run.eval_data.items()
                if name not in reports
            }
        )
        forgetting = self._forgetting(final) if tcfg.init_from and run.accelerator.is_main_process else None
        if run.best["score"] is None:  # the few-shot recipe's last model, or a combined one (training.seeds)
            run.best["score"] = _selection_score(reports["dev"], tcfg.selection_metric)
            if run.few_shot and run.history and run.history[-1]["epoch"] == run.best["epoch"]:
                run.history[-1] |= {"dev_score": run.best["score"], "dev": reports["dev"]}
        metrics = {
            "best_epoch": run.best["epoch"],
            "selection_metric": tcfg.selection_metric,
            "best_dev_score": run.best["score"],
            "stopped_early": run.stopped_early,
            "completed": run.stopped_early or len(run.history) >= run.epochs,
            "recipe": run.recipe,
            "epochs": run.history,
            **reports,
            "labels": {s.name: s.labels for s in final.tasks},
            "label_changes": run.label_changes,
            "label_schema": {"id": final.config.schema_id, **dataclasses.asdict(final.config.label_schema)},
            "small_labels": small_labels(final.tasks, run.train_split, tcfg.min_label_examples),
            "forgetting": forgetting,
            "calibration": calibration,
            "tuned_thresholds": tuned,
            "data": {
                name: {"path": d.split.path, **d.truncation(), "labelled": d.labelled()}
                for name, d in {"train": run.train_data, **run.eval_data}.items()
            },
            "device": str(run.accelerator.device),
            "processes": run.accelerator.num_processes,
            "distributed_type": str(run.accelerator.distributed_type.value),
            "mixed_precision": run.precision,
            "train_seconds": round(time.perf_counter() - started, 2),
            "versions": library_versions(),
            "config": self.config.to_dict(),
        }
        if run.accelerator.is_main_process:
            self._write_outputs(metrics)
        return metrics

    def _forgetting(self, final: NewsClassifier) -> dict[str, Any]:
        """The previous model and the retrained one on the previous model's dev file, per kept label."""
        from aranews.training.data import load_files
        from aranews.training.evaluation import compare_on_split

        tcfg = self.config.training
        path = tcfg.previous_dev or _recorded_dev(tcfg.init_from)
        files = [path] if isinstance(path, str) else path
        if not files or not all(Path(f).is_file() for f in files):
            logger.warning(
                "retrained from %s, but its dev file is %s: set training.previous_dev to check kept labels for forgetting",
                tcfg.init_from,
                "not recorded" if path is None else f"missing ({path})",
            )
            return {"checked": False, "file": path}
        split, problems = load_files(
            "previous_dev", files, self.config.data, self.config.tasks, final.config.model.title, require_labels=False
        )
        if problems:
            shown = [str(p) for p in problems[:20]]
            logger.warning("previous dev file %s not checked for forgetting: %s", path, "; ".join(shown[:3]))
            return {"checked": False, "file": path, "problems": shown}
        previous = NewsClassifier.from_pretrained(tcfg.init_from, device=final.device, precision="fp32")
        result = compare_on_split(previous, final, split, tcfg.forgetting_tolerance)
        for task, figures in result["tasks"].items():
            for label in figures["flagged"]:
                row = figures["labels"][label]
                logger.warning(
                    "FORGETTING: task %r label %r: F1 %.3f -> %.3f on %s (more than %.2f lower)",
                    task,
                    label,
                    row["previous_f1"],
                    row["new_f1"],
                    path,
                    tcfg.forgetting_tolerance,
                )
        return {"checked": True, "file": str(path), **result}

    def _write_outputs(self, metrics: dict[str, Any]) -> None:
        from aranews.training.model_card import render_model_card

        (self.output_dir / "metrics.json").write_text(
            json.dumps(metrics, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        (self.output_dir / "config.yaml").write_text(
            yaml.safe_dump(self.config.to_dict(), allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
        (self.model_dir / "README.md").write_text(render_model_card(self.output_dir), encoding="utf-8")

    def _fit_on_dev(
        self, classifier: NewsClassifier, dev: EncodedSplit, accelerator: Any
    ) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, np.ndarray]]:
        """From one pass over dev: the calibration, the dev rates for label shares, and (after calibration) the
        multi-label thresholds; all saved into the model's config.json at once (the weights are unchanged).
        Returns the calibration's figures, the tuned thresholds and dev's raw logits."""
        from aranews.training.evaluation import split_logits

        logits = split_logits(classifier, dev)
        calibration = self._calibrate(classifier, dev, logits)
        probs = {name: classifier.probabilities(name, values) for name, values in logits.items()}  # calibrated
        self._store_dev_rates(classifier, dev, probs)
        tuned = self._tune_thresholds(classifier, dev, probs) if self.config.training.tune_thresholds else {}
        if accelerator.is_main_process:
            classifier.config.save(self.model_dir)
        accelerator.wait_for_everyone()
        return calibration, tuned, logits

    def _calibrate(
        self, classifier: NewsClassifier, dev: EncodedSplit, logits: dict[str, np.ndarray]
    ) -> dict[str, Any]:
        """Per task, the calibration fitted on dev's raw logits (set on the classifier's tasks), with its figures."""
        from aranews.training.calibration import fit

        method = self.config.training.calibration
        if method == "none":
            return {}
        fitted = {}
        for task in classifier.tasks:
            labels = dev.labels[task.name].numpy()
            keep = task.kind.labelled(labels)
            multi = not task.kind.one_label_per_row
            found = fit(method, logits[task.name][keep], labels[keep], multi=multi, seed=self.config.training.seed)
            if found is None:
                fitted[task.name] = {"method": "none", "why": f"{int(keep.sum())} labelled dev rows: too few to fit on"}
                continue
            task.temperature, task.bias = found.temperature, found.bias  # None, None when none was kept
            fitted[task.name] = {"method": found.method, "temperature": found.temperature, "bias": found.bias}
            fitted[task.name] |= found.figures
            logger.info("task %r: %s calibration on dev, %s", task.name, found.method, found.figures)
        return fitted

    def _store_dev_rates(self, classifier: NewsClassifier, dev: EncodedSplit, probs: dict[str, np.ndarray]) -> None:
        """Keep dev's true labels and calibrated probabilities with each single-label task, for the scorer's
        adjusted label shares (ACC, PACC, EMQ) and their intervals."""
        for task in classifier.tasks:
            if not task.kind.one_label_per_row:
                continue
            labels = dev.labels[task.name].numpy()
            keep = task.kind.labelled(labels)
            rows = np.round(probs[task.name][keep].astype(np.float64), 6)
            task.dev_rates = {"truth": labels[keep].astype(int).tolist(), "probs": rows.tolist()}

    def _tune_thresholds(
        self, classifier: NewsClassifier, dev: EncodedSplit, probs: dict[str, np.ndarray]
    ) -> dict[str, list[float]]:
        """Per multi-label task, thresholds with the best dev F1 per label (on calibrated probabilities)."""
        from aranews.training.evaluation import tune_thresholds

        tuned = {}
        for task in (t for t in classifier.tasks if t.kind.uses_thresholds):
            labels = dev.labels[task.name].numpy()
            keep = task.kind.labelled(labels)
            if keep.any():
                task.thresholds = tune_thresholds(probs[task.name][keep], labels[keep])
                tuned[task.name] = task.thresholds
                logger.info("task %r: thresholds tuned on dev: %s", task.name, dict(zip(task.labels, task.thresholds)))
        return tuned


def _progress(iterable: Any, enabled: bool, description: str) -> Any:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=description, leave=False, disable=None)  # None: off when not a terminal
