"""A zero-shot start: a model whose heads score articles by similarity to each label's description.

``aranews zero-shot --config C --encoder E --out M`` reads the tasks of a config whose every label has a
description (``tasks[].descriptions: {label: "..."}``, Arabic or English) and writes a model directory that
``load_classifier``, ``predict``, ``score``, ``select`` and ``labelstudio export`` use like a trained one, so
that a new project's first Label Studio batch comes pre-annotated.

How it scores: the encoder's pooled state of an article (with the encoder's own input prefix) against the
pooled state of each description (with its prefix): each head's dense layer passes the state through
(``tanh`` of a tiny multiple of it, linear to one part in a million) and its output layer holds the
descriptions' unit vectors, scaled. The logits are then proportional to the cosine similarity of the article
with each description (the article's own length scales every label alike, so the top label is the most
similar description), divided by a temperature (:data:`TEMPERATURE`).

The encoder's conventions must be known: a sentence-transformers folder says its pooling and prompts; a
model of the E5 family (its name or folder says ``e5``) is read with mean pooling and ``query: ``; anything
else needs ``--pooling`` and ``--prefix`` (a one-line error says so). Nothing is downloaded when ``E`` is a
local folder.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aranews.inference.config import ModelConfig, TaskSpec
from aranews.inference.schema import ConfigError, problem

__all__ = ["TEMPERATURE", "EncoderConvention", "build_zero_shot_model", "encoder_convention"]

logger = logging.getLogger(__name__)

TEMPERATURE = 0.02  # logits = cosine similarity / T: a 0.02 gap in similarity is one unit of logit
_LINEAR = 1e-3  # the dense layer's multiple: tanh(1e-3 x) = 1e-3 x to within 1e-6 relative for |x| < 1


@dataclass(frozen=True)
class EncoderConvention:
    """How an encoder's sentence embeddings are made: the pooling and the prefixes it was trained with."""

    pooling: str
    text_prefix: str
    description_prefix: str
    source: str  # where the convention came from, for the saved model and the messages


def encoder_convention(encoder: str, pooling: str | None = None, prefix: str | None = None) -> EncoderConvention:
    """The encoder's convention: given (``pooling`` and ``prefix``), read from a sentence-transformers folder,
    or known for the E5 family; else a :class:`ConfigError` naming the settings to give."""
    if pooling is not None and prefix is not None:
        return EncoderConvention(pooling, prefix, prefix, "given: --pooling and --prefix")
    folder = Path(encoder)
    found = _sentence_transformers_convention(folder) if folder.is_dir() else None
    if found is None and "e5" in folder.name.lower():
        found = EncoderConvention("mean", "query: ", "query: ", "the E5 family's convention (mean pooling, 'query: ')")
    if found is None:
        raise ConfigError(
            [
                problem(
                    "--encoder",
                    encoder,
                    "an encoder whose pooling and prefixes are known: give --pooling mean|cls "
                    "and --prefix TEXT (--prefix '' for none); a sentence-transformers folder or an E5 model says them",
                )
            ]
        )
    if pooling is not None or prefix is not None:  # one given: it wins over what was read
        found = EncoderConvention(
            pooling or found.pooling,
            found.text_prefix if prefix is None else prefix,
            found.description_prefix if prefix is None else prefix,
            f"{found.source}, with --pooling/--prefix given",
        )
    return found


def _sentence_transformers_convention(folder: Path) -> EncoderConvention | None:
    pooling_file = folder / "1_Pooling" / "config.json"
    if not pooling_file.is_file():
        return None
    settings = json.loads(pooling_file.read_text(encoding="utf-8"))
    pooling = (
        "mean"
        if settings.get("pooling_mode_mean_tokens")
        else "cls"
        if settings.get("pooling_mode_cls_token")
        else None
    )
    if pooling is None:
        return None
    prompts_file = folder / "config_sentence_transformers.json"
    prompts = json.loads(prompts_file.read_text(encoding="utf-8")).get("prompts", {}) if prompts_file.is_file() else {}
    text = prompts.get("query", prompts.get("classification", ""))
    return EncoderConvention(
        pooling, text, prompts.get("document", prompts.get("passage", text)), f"{folder} (sentence-transformers)"
    )


def check_descriptions(tasks: list[Any]) -> None:
    """Every task has a label set and a description for each label, and nothing else: else a ConfigError."""
    problems = []
    for i, task in enumerate(tasks):
        where = f"tasks[{i}] ({task.name})"
        if not task.labels:
            problems.append((f"{where}.labels", task.labels, "the label set (a zero-shot model cannot infer it)"))
            continue
        descriptions = task.descriptions or {}
        for label in task.labels:
            if not str(descriptions.get(label) or "").strip():
                problems.append(
                    (f"{where}.descriptions.{label}", descriptions.get(label), "a description of the label")
                )
        for extra in sorted(set(descriptions) - set(task.labels)):
            problems.append(
                (f"{where}.descriptions.{extra}", descriptions[extra], f"a label of the task {task.labels}")
            )
    if problems:
        raise ConfigError([problem(*p) for p in problems])


@torch.no_grad()
def _embed(model: Any, tokenizer: Any, settings: ModelConfig, texts: list[str], prefix: str) -> torch.Tensor:
    """Pooled states of short texts (the descriptions), read with ``prefix`` and no cleaning."""
    from aranews.inference.inputs import ArticleWindower, collate_articles

    windower = ArticleWindower(tokenizer, [], settings.max_length, strategy="head", input_prefix=prefix)
    inputs = collate_articles(windower.encode(texts), windower.pad_token_id)
    inputs.pop("article_index")
    return model.window_features(**inputs).double()


@torch.no_grad()
def build_zero_shot_model(config: Any, encoder: str, out: str | Path, convention: EncoderConvention) -> Path:
    """Write the zero-shot model of ``config``'s tasks (:func:`check_descriptions` first) with ``encoder``."""
    from transformers import AutoTokenizer

    from aranews.inference.classifier import NewsClassifier
    from aranews.inference.modeling import MultiTaskClassifier

    check_descriptions(config.tasks)
    paired = [t.name for t in config.tasks if t.pair_column is not None]
    if paired and config.model.claim_apart:
        raise ConfigError(
            [
                problem(
                    "model.pair_encoding",
                    config.model.pair_encoding,
                    f"cross for a zero-shot start of tasks {paired} (heads that read the claim apart are trained)",
                )
            ]
        )
    settings = ModelConfig(
        **{**config.model.__dict__, "encoder": encoder, "pooling": convention.pooling, "input_prefix": convention.text_prefix}
    )  # fmt: skip
    specs = [
        TaskSpec(t.name, list(t.labels), t.problem_type, t.pair_column, descriptions=dict(t.descriptions))
        for t in config.tasks
    ]
    model = MultiTaskClassifier.from_encoder(settings, specs)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(settings.tokenizer or encoder, trust_remote_code=False)
    for spec in specs:
        vectors = _embed(model, tokenizer, settings, [spec.descriptions[label] for label in spec.labels],
                         convention.description_prefix)  # fmt: skip
        units = vectors / vectors.norm(dim=1, keepdim=True).clamp(min=1e-12)
        head = model.heads[spec.name]
        hidden = head.dense.weight.shape[0]
        scale = 1.0 / (TEMPERATURE * float(vectors.norm(dim=1).mean()))  # article states are about this long
        head.dense.weight.copy_(torch.eye(hidden) * _LINEAR)
        head.dense.bias.zero_()
        head.out_proj.weight.copy_((units * scale / _LINEAR).to(head.out_proj.weight.dtype))
        head.out_proj.bias.zero_()
        if not spec.kind.one_label_per_row:  # sigmoid: centre the similarities, so a label is 'on' above the mean
            mean_logit = float((units @ units.T).mean() * scale * float(vectors.norm(dim=1).mean()))
            head.out_proj.bias.fill_(-mean_logit)
        similarity = (units @ units.T).numpy()
        logger.info("task %r: descriptions' mutual cosine %.3f on average", spec.name, float(np.mean(similarity)))
    model.config.zero_shot = {"convention": convention.__dict__, "temperature": TEMPERATURE}
    classifier = NewsClassifier(model, tokenizer, torch.device("cpu"), source=str(out), precision="fp32")
    return classifier.save_pretrained(out)
