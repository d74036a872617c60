"""Fine-tuning loop on accelerate: validate, encode, train, evaluate each epoch, keep the best, resume.

The run directory holds::

    model/              the best model so far (loadable with ``inference.load_classifier``)
    last_checkpoint/    state to resume from after an interruption (safetensors + JSON, no pickles)
    metrics.json        per-epoch dev figures, the best epoch, final dev/test reports, truncation counts
    config.yaml         the resolved experiment config
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader, Sampler

from inference.classifier import NewsClassifier, build_encoder
from inference.encoding import EncodedArticle, collate_articles
from inference.modeling import ClassifierConfig, LongDocumentConfig, MultiTaskClassifier, TaskSpec, library_versions

from .checkpoint import load_training_state, save_training_state
from .config import ExperimentConfig
from .data import LabelledSplit, label_tensor, load_and_validate

__all__ = ["EncodedSplit", "TrainResult", "Trainer", "encode_split", "evaluate_split", "label_diff"]

logger = logging.getLogger(__name__)


def label_diff(old: Sequence[str], new: Sequence[str]) -> dict[str, list[str]]:
    """Labels added, removed and kept between two label lists."""
    return {
        "added": sorted(set(new) - set(old)),
        "removed": sorted(set(old) - set(new)),
        "kept": [label for label in old if label in set(new)],
    }


@dataclass
class EncodedSplit:
    """A split with its articles encoded once per input group, and its label tensors."""

    split: LabelledSplit
    groups: dict[str | None, list[EncodedArticle]]  # by pair column; None: the article alone
    labels: dict[str, torch.Tensor]

    def truncation(self) -> dict[str, Any]:
        first = next(iter(self.groups.values()))
        tokens = [a.n_tokens for a in first]
        return {
            "articles": len(first),
            "truncated": sum(a.truncated for a in first),
            "dropped_tokens": sum(a.dropped_tokens for a in first),
            "windows": sum(len(a.input_ids) for a in first),
            "mean_tokens": float(np.mean(tokens)) if tokens else 0.0,
            "max_tokens": max(tokens, default=0),
        }


class _EpochSampler(Sampler[int]):
    """A shuffle that depends only on (seed, epoch), so a resumed run sees the same order."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.n, generator=generator).tolist())

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


def _class_weights(task: TaskSpec, labels: torch.Tensor) -> torch.Tensor:
    """Inverse-frequency weights (single-label) or negative/positive ratios (multi-label)."""
    if task.problem_type == "single_label":
        present = labels[labels != -100]
        counts = torch.bincount(present, minlength=len(task.labels)).float()
        weights = present.numel() / (len(task.labels) * counts.clamp(min=1.0))
        return weights
    rows = labels[(labels != -100).all(dim=-1)].float()
    positives = rows.sum(0)
    return ((rows.shape[0] - positives) / positives.clamp(min=1.0)).clamp(max=100.0)


def encode_split(encoder, split: LabelledSplit, specs: Sequence[TaskSpec]) -> EncodedSplit:
    """Encode a split once per input group and build its label tensors; warn about truncation."""
    groups: dict[str | None, list[EncodedArticle]] = {}
    for column in dict.fromkeys(spec.pair_column for spec in specs):  # None: the article alone
        groups[column] = encoder.encode(split.texts, None if column is None else split.pairs[column])
    labels = {spec.name: label_tensor(spec, split.labels[spec.name]) for spec in specs}
    data = EncodedSplit(split, groups, labels)
    stats = data.truncation()
    if stats["truncated"]:
        logger.warning(
            "%s: %d of %d articles exceed max_length=%d; %d tokens not seen by the model (long_document=%s)",
            split.name,
            stats["truncated"],
            stats["articles"],
            encoder.max_length,
            stats["dropped_tokens"],
            encoder.strategy,
        )
    return data


_DETAIL_KEYS = ("confusion_matrix", "calibration", "thresholds")  # in report.json, not in metrics.json


def _compact(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in figures.items() if k not in _DETAIL_KEYS}


def evaluate_split(classifier: NewsClassifier, data: EncodedSplit) -> dict[str, dict[str, Any]]:
    """Per task, the metric report on the rows of ``data`` that carry that task's label."""
    from .evaluation import predict_split, task_figures

    probs = predict_split(classifier, data)  # also puts the shared model in eval mode
    return {
        task.name: _compact(task_figures(task, probs[task.name], data.labels[task.name].numpy()))
        for task in classifier.tasks
    }


def _selection_score(reports: dict[str, dict[str, Any]], metric: str) -> float:
    values = [r[metric] for r in reports.values() if r.get("n")]
    return float(np.mean(values)) if values else 0.0


@dataclass
class TrainResult:
    """What :meth:`Trainer.train` produced."""

    output_dir: Path
    model_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)


class Trainer:
    """Train a multi-task classifier as an :class:`ExperimentConfig` describes.

    Args:
        config: the experiment.
    """

    def __init__(self, config: ExperimentConfig) -> None:
        self.config = config
        self.output_dir = Path(config.training.output_dir)
        self.model_dir = self.output_dir / "model"

    # ---------------------------------------------------------------------------------------------
    def _task_specs(self, labels: dict[str, list[str]]) -> tuple[list[TaskSpec], dict[str, Any]]:
        """Task specs, ordered so that labels kept from an ``init_from`` model keep their ids."""
        previous = None
        if self.config.training.init_from:
            previous = ClassifierConfig.load(self.config.training.init_from)
        specs, changes = [], {}
        for task in self.config.tasks:
            names = labels[task.name]
            if previous is not None and task.name in {t.name for t in previous.tasks}:
                old = previous.task(task.name).labels
                diff = label_diff(old, names)
                names = diff["kept"] + diff["added"]
                changes[task.name] = diff
                logger.info(
                    "task %r labels vs %s: added %s, removed %s, kept %d",
                    task.name,
                    self.config.training.init_from,
                    diff["added"],
                    diff["removed"],
                    len(diff["kept"]),
                )
            thresholds = [task.threshold] * len(names) if task.problem_type == "multi_label" else None
            specs.append(TaskSpec(task.name, names, task.problem_type, task.pair_column, thresholds))
        return specs, changes

    def _build_model(self, specs: list[TaskSpec]) -> MultiTaskClassifier:
        m = self.config.model
        kwargs = {
            "preprocessing": list(m.preprocessing),
            "max_length": m.max_length,
            "pair_max_length": m.pair_max_length,
            "pooling": m.pooling,
            "dropout": m.dropout,
            "long_document": LongDocumentConfig(
                m.long_document, m.head_tokens, m.stride, m.max_chunks, m.chunk_pooling
            ),
        }
        if not self.config.training.init_from:
            return MultiTaskClassifier.from_encoder(m.encoder, specs, **kwargs)
        old = MultiTaskClassifier.from_pretrained(self.config.training.init_from)
        config = ClassifierConfig(tasks=specs, encoder=old.config.encoder, base_model=old.config.base_model, **kwargs)
        model = MultiTaskClassifier(config, encoder=old.encoder)
        with torch.no_grad():  # copy head rows by label name, so kept labels keep what they learned
            for spec in specs:
                if spec.name not in old.heads:
                    continue
                old_labels = old.config.task(spec.name).labels
                for row, label in enumerate(spec.labels):
                    if label in old_labels:
                        j = old_labels.index(label)
                        model.heads[spec.name].weight[row] = old.heads[spec.name].weight[j]
                        model.heads[spec.name].bias[row] = old.heads[spec.name].bias[j]
        return model

    # ---------------------------------------------------------------------------------------------
    def train(self, stop_after_epochs: int | None = None) -> TrainResult:
        """Run training to the end (or early stop) and return the run's figures.

        Args:
            stop_after_epochs: end the run after this many epochs in total, as an interruption would
                (the schedule still spans ``training.epochs``); a later run with ``resume`` continues.

        Raises:
            DataValidationError: before any model is built, if the data has problems.
        """
        from accelerate import Accelerator
        from accelerate.utils import set_seed
        from transformers import AutoTokenizer, get_linear_schedule_with_warmup

        cfg, tcfg = self.config, self.config.training
        started = time.perf_counter()
        train_split, eval_splits, labels = load_and_validate(cfg.data, cfg.tasks)
        specs, changes = self._task_specs(labels)
        set_seed(tcfg.seed)

        cpu = tcfg.device == "cpu" or not torch.cuda.is_available()
        precision = tcfg.mixed_precision
        if precision == "auto":
            precision = "no" if cpu else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
        accelerator = Accelerator(
            mixed_precision=precision, gradient_accumulation_steps=tcfg.gradient_accumulation_steps, cpu=cpu
        )
        tokenizer_source = cfg.model.tokenizer or tcfg.init_from or cfg.model.encoder
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_source, trust_remote_code=False)
        model = self._build_model(specs)
        encoder = build_encoder(model.config, tokenizer)
        with accelerator.main_process_first():
            train_data = encode_split(encoder, train_split, specs)
            eval_data = {name: encode_split(encoder, split, specs) for name, split in eval_splits.items()}

        for task in cfg.tasks:
            if task.class_weights == "balanced":
                spec = model.config.task(task.name)
                model.class_weights[task.name] = _class_weights(spec, train_data.labels[task.name])

        sampler = _EpochSampler(len(train_split), tcfg.seed)
        loader = DataLoader(
            list(range(len(train_split))),
            batch_size=tcfg.batch_size,
            sampler=sampler,
            collate_fn=_Collator(train_data, encoder.pad_token_id),
        )
        head_lr = tcfg.head_learning_rate or tcfg.learning_rate
        no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
        groups = [
            {
                "params": [p for n, p in model.encoder.named_parameters() if not n.endswith(no_decay)],
                "weight_decay": tcfg.weight_decay,
                "lr": tcfg.learning_rate,
            },
            {
                "params": [p for n, p in model.encoder.named_parameters() if n.endswith(no_decay)],
                "weight_decay": 0.0,
                "lr": tcfg.learning_rate,
            },
            {"params": list(model.heads.parameters()), "weight_decay": 0.0, "lr": head_lr},
        ]
        optimizer = torch.optim.AdamW(groups, lr=tcfg.learning_rate)
        steps_per_epoch = math.ceil(len(loader) / tcfg.gradient_accumulation_steps)
        total_steps = steps_per_epoch * tcfg.epochs
        scheduler = get_linear_schedule_with_warmup(optimizer, int(tcfg.warmup_ratio * total_steps), total_steps)
        model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)

        history: list[dict[str, Any]] = []
        best = {"epoch": 0, "score": -1.0, "bad_epochs": 0}
        start_epoch = 0
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if tcfg.resume:
            progress = load_training_state(self.output_dir, accelerator.unwrap_model(model), optimizer, scheduler)
            if progress is not None:
                start_epoch, history, best = progress["epoch"], progress["history"], progress["best"]
                logger.info("resuming from %s after epoch %d", self.output_dir / "last_checkpoint", start_epoch)

        unwrapped: MultiTaskClassifier = accelerator.unwrap_model(model)
        evaluator = NewsClassifier(unwrapped, tokenizer, accelerator.device, batch_size=tcfg.eval_batch_size)
        stopped_early = False
        for epoch in range(start_epoch, tcfg.epochs):
            if best["bad_epochs"] > 0 and best["bad_epochs"] >= tcfg.early_stopping_patience > 0:
                stopped_early = True
                break
            if stop_after_epochs is not None and epoch >= stop_after_epochs:
                break
            epoch_start = time.perf_counter()
            # accelerate's loader re-sets its sampler's epoch from its own counter, which restarts at 0
            # on resume: set the epoch there, so a resumed run shuffles exactly as an uninterrupted one.
            loader.set_epoch(epoch)
            model.train()
            losses = []
            progress_bar = _progress(loader, tcfg.progress and accelerator.is_local_main_process, f"epoch {epoch + 1}")
            for batch in progress_bar:
                with accelerator.accumulate(model):
                    loss = self._batch_loss(model, batch)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients:
                        accelerator.clip_grad_norm_(model.parameters(), tcfg.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
                losses.append(loss.item())
                if hasattr(progress_bar, "set_postfix"):
                    progress_bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
            reports = evaluate_split(evaluator, eval_data["dev"])
            model.train()
            score = _selection_score(reports, tcfg.selection_metric)
            record = {
                "epoch": epoch + 1,
                "train_loss": float(np.mean(losses)) if losses else None,
                "dev_score": score,
                "dev": reports,
                "seconds": round(time.perf_counter() - epoch_start, 2),
            }
            history.append(record)
            logger.info(
                "epoch %d: train loss %.4f, dev %s %.4f (%s)",
                epoch + 1,
                record["train_loss"],
                tcfg.selection_metric,
                score,
                ", ".join(f"{k} {v.get(tcfg.selection_metric, 0):.3f}" for k, v in reports.items()),
            )
            if accelerator.is_main_process:
                if score > best["score"]:
                    best = {"epoch": epoch + 1, "score": score, "bad_epochs": 0}
                    self._save_model(unwrapped, tokenizer)
                else:
                    best["bad_epochs"] += 1
                save_training_state(
                    self.output_dir,
                    unwrapped,
                    optimizer,
                    scheduler,
                    {"epoch": epoch + 1, "history": history, "best": best},
                )
            accelerator.wait_for_everyone()

        # Final figures come from the saved best model, exactly as a user will load it.
        final = NewsClassifier.from_pretrained(
            self.model_dir, device=accelerator.device, batch_size=tcfg.eval_batch_size
        )
        tuned = self._tune_thresholds(final, eval_data["dev"]) if tcfg.tune_thresholds else {}
        final_reports = {}
        if tcfg.report and accelerator.is_main_process:  # the report's dev figures: one pass over dev, not two
            from .evaluation import build_report

            report = build_report(
                final,
                eval_data["dev"],
                self.output_dir / "report",
                train=train_split if tcfg.baseline else None,
                split_name="dev",
            )
            final_reports["dev"] = {name: _compact(figures) for name, figures in report["tasks"].items()}
        final_reports.update(
            {name: evaluate_split(final, data) for name, data in eval_data.items() if name not in final_reports}
        )
        metrics = {
            "best_epoch": best["epoch"],
            "selection_metric": tcfg.selection_metric,
            "best_dev_score": best["score"],
            "stopped_early": stopped_early,
            "epochs": history,
            **final_reports,
            "labels": {s.name: s.labels for s in final.tasks},
            "label_changes": changes,
            "tuned_thresholds": tuned,
            "data": {
                "train": {"path": train_split.path, **train_data.truncation(), "labelled": _labelled(train_data)},
                **{
                    name: {"path": d.split.path, **d.truncation(), "labelled": _labelled(d)}
                    for name, d in eval_data.items()
                },
            },
            "device": str(accelerator.device),
            "mixed_precision": precision,
            "train_seconds": round(time.perf_counter() - started, 2),
            "versions": library_versions(),
            "config": cfg.to_dict(),
        }
        if accelerator.is_main_process:
            (self.output_dir / "metrics.json").write_text(
                json.dumps(metrics, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
            )
            (self.output_dir / "config.yaml").write_text(
                yaml.safe_dump(cfg.to_dict(), allow_unicode=True, sort_keys=False), encoding="utf-8"
            )
        return TrainResult(self.output_dir, self.model_dir, metrics)

    @staticmethod
    def _batch_loss(model, batch: dict[str, Any]) -> torch.Tensor:
        unwrapped = model.module if hasattr(model, "module") else model
        total = None
        for column, names in unwrapped.config.input_groups().items():
            inputs = batch["groups"][column]
            out = model(**inputs, tasks=names, labels={n: batch["labels"][n] for n in names})
            total = out.loss if total is None else total + out.loss
        return total

    def _tune_thresholds(self, classifier: NewsClassifier, dev: EncodedSplit) -> dict[str, list[float]]:
        """Per multi-label task, thresholds with the best dev F1 per label, saved into the model."""
        from .evaluation import predict_split, tune_thresholds

        tasks = [t for t in classifier.tasks if t.problem_type == "multi_label"]
        if not tasks:
            return {}
        probs = predict_split(classifier, dev)
        tuned = {}
        for task in tasks:
            labels = dev.labels[task.name].numpy()
            keep = (labels != -100).all(axis=-1)
            if keep.any():
                task.thresholds = tune_thresholds(probs[task.name][keep], labels[keep])
                tuned[task.name] = task.thresholds
                logger.info("task %r: thresholds tuned on dev: %s", task.name, dict(zip(task.labels, task.thresholds)))
        classifier.config.save(self.model_dir)  # weights unchanged; config.json carries the thresholds
        return tuned

    def _save_model(self, model: MultiTaskClassifier, tokenizer) -> None:
        tmp = self.output_dir / ".model.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(str(tmp))
        shutil.rmtree(self.model_dir, ignore_errors=True)
        tmp.rename(self.model_dir)


def _labelled(data: EncodedSplit) -> dict[str, int]:
    out = {}
    for name, tensor in data.labels.items():
        present = tensor != -100
        out[name] = int(present.all(dim=-1).sum() if tensor.dim() == 2 else present.sum())
    return out


def _progress(iterable, enabled: bool, description: str):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=description, leave=False, disable=None)  # None: off when not a terminal
