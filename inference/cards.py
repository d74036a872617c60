"""The model cards a saved model carries (Hugging Face style: YAML metadata, then Markdown).

:func:`basic_model_card` for a multi-task directory saved by the library, :func:`export_card` for one task
exported as a standard transformers model; a training run writes a fuller card
(:mod:`aranews.training.model_card`). The metadata says only what is true of the directory: the encoder's
family from its name, and ``pipeline_tag`` only where ``transformers.pipeline`` can load the directory
(an export; a multi-task directory needs the library).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from aranews.inference.config import ClassifierConfig, TaskSpec

__all__ = ["basic_model_card", "encoder_tags", "export_card", "how_to_use", "hub_base_model"]

# the encoder families a name reveals, for the card's tags (lower-case substring -> tag)
_ENCODER_FAMILIES = {"arabert": "arabert", "marbert": "marbert", "camelbert": "camelbert", "e5": "multilingual-e5"}


def hub_base_model(name: str) -> str | None:
    """``name`` when it looks like a hub id (``owner/model``) rather than a local path; for card metadata."""
    if Path(name).exists() or name.startswith((".", "/", "~")) or not re.fullmatch(r"[\w.-]+/[\w.-]+", name):
        return None
    return name


def _front_matter(meta: dict[str, Any]) -> list[str]:
    return [
        "---",
        yaml.safe_dump({k: v for k, v in meta.items() if v is not None}, allow_unicode=True, sort_keys=False).strip(),
        "---",
        "",
    ]


def _labels_table(task: TaskSpec) -> list[str]:
    kind = task.kind.description
    pair = f"; reads the article with its `{task.pair_column}`" if task.pair_column else ""
    lines = [
        f"**{task.name}**: {kind}{pair}",
        "",
        "| id | label |" + (" threshold |" if task.thresholds else ""),
        "| --- | --- |" + (" --- |" if task.thresholds else ""),
    ]
    for i, label in enumerate(task.labels):
        extra = f" {task.thresholds[i]:.2f} |" if task.thresholds else ""
        lines.append(f"| {i} | `{label}` |{extra}")
    return [*lines, ""]


def export_card(config: ClassifierConfig, task: TaskSpec) -> str:
    """The README of an exported task: standard transformers usage and the preprocessing to apply first."""
    m = config.model
    steps = ", ".join(f'"{s}"' for s in m.preprocessing)
    meta = {
        "language": ["ar"],
        "license": "apache-2.0",
        "library_name": "transformers",
        "pipeline_tag": "text-classification",
        "base_model": hub_base_model(m.encoder),
        "tags": ["arabic", "news", task.name, "aranews-classifier", *encoder_tags(m.encoder)],
    }
    pair_call = (
        f'clf({{"text": clean({task.pair_column}), "text_pair": clean(article_text)}}, top_k=None)  # {task.pair_column} first'
        if task.pair_column
        else "clf(clean(article_text), top_k=None, truncation=True)"
    )
    lines = [
        *_front_matter(meta),
        f"# {task.name} classifier for Arabic news",
        "",
        f"The `{task.name}` task of an aranews-classifier model fine-tuned from `{m.encoder}`, exported as a standard "
        "transformers sequence-classification model.",
        "",
        *_labels_table(task),
        "## How to use",
        "",
        "Apply the same cleaning the model was trained with first (the exported model does not do it):",
        "",
        "```python",
        "from transformers import pipeline",
        "from aranews.inference.preprocessing import build_preprocessor   # pip install aranews-classifier",
        "",
        f"clean = build_preprocessor([{steps}])",
        'clf = pipeline("text-classification", model="PATH_OR_REPO")',
        pair_call,
        "```",
        "",
        "## Differences from the full library",
        "",
        f"- Input: the library reads {'the title, a newline, then the text' if m.title == 'prepend' else 'the text only'}; "
        "compose the same string before cleaning for identical results.",
        f"- Long articles: the pipeline reads one window of {m.max_length} tokens (truncated at the end); the library "
        f"uses `{m.long_document.strategy}`"
        + (
            f" (the first {m.long_document.head_tokens or 'quarter of the'} tokens and the end)"
            if m.long_document.strategy == "head_tail"
            else ""
        )
        + ". Scores are equal for articles that fit in one window.",
        "- The library skips empty and non-Arabic texts; the pipeline scores whatever it is given.",
        "",
    ]
    return "\n".join(lines)


def basic_model_card(config: ClassifierConfig) -> str:
    """A short card for a saved multi-task model directory (training runs write a fuller one)."""
    m = config.model
    meta = {
        "language": ["ar"],
        "license": "apache-2.0",
        "library_name": "aranews-classifier",  # no pipeline_tag: a pipeline loads an export, not this directory
        "base_model": hub_base_model(m.encoder),
        "tags": ["arabic", "news", "multi-task", *[t.name for t in config.tasks], *encoder_tags(m.encoder)],
    }
    lines = [
        *_front_matter(meta),
        "# Arabic news classifier (aranews-classifier)",
        "",
        f"A multi-task model fine-tuned from `{m.encoder}`: one shared encoder, one head per task.",
        "",
        *[line for task in config.tasks for line in _labels_table(task)],
        *how_to_use(config),
    ]
    return "\n".join(lines)


def how_to_use(config: ClassifierConfig) -> list[str]:
    """The card section showing the library, the scorer and the per-task export."""
    task = config.tasks[0]
    pair = f', pairs={{"{task.pair_column}": "..."}}' if task.pair_column else ""
    return [
        "## How to use",
        "",
        "This directory is read by the aranews-classifier library (`pip install aranews-classifier`), which applies "
        "the model's own cleaning, title handling and long-document strategy:",
        "",
        "```python",
        "from aranews import load_classifier",
        "",
        'clf = load_classifier("PATH_OR_DOWNLOADED_DIR")',
        f'clf.predict("نص الخبر", title="العنوان"{pair})',
        "```",
        "",
        "Score an archive (every row scored or written to an errors file with its reason):",
        "",
        "```bash",
        "aranews score --model PATH archive.jsonl --out scores.jsonl",
        "```",
        "",
        'For plain transformers (`pipeline("text-classification")`), export one task first: '
        f"`aranews export --model PATH --task {task.name} --out {task.name}-model`.",
        "",
    ]


def encoder_tags(encoder: str) -> list[str]:
    """Tags for the encoder a model was fine-tuned from, as far as its name or path tells (else none)."""
    name = Path(encoder).name.lower() if encoder else ""
    return [tag for key, tag in _ENCODER_FAMILIES.items() if key in name]
