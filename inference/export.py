"""One task of a trained model as a standard transformers sequence-classification model.

``aranews export --model M --task topic --out DIR`` writes a directory that
``transformers.pipeline("text-classification", model=DIR)`` loads with no code from this library:
weights (safetensors), ``config.json`` with ``id2label``/``label2id``, the tokenizer, and a README card
that says which preprocessing to apply first. On the same cleaned, single-window input its scores equal
the library's (the heads are ``dense -> tanh -> linear`` on the first token, which is BERT's pooler +
classifier and RoBERTa's classification head).

What the export does not carry: the library's title composition, its long-document strategy (the
pipeline reads one window, truncated at ``max_length``) and the skip policy for empty or non-Arabic
text. The card says so.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aranews.inference.cards import basic_model_card, export_card, hub_base_model
from aranews.inference.config import ClassifierConfig, TaskSpec
from aranews.inference.files import atomic_directory, refuse_clashes

if TYPE_CHECKING:
    from aranews.inference.classifier import NewsClassifier

__all__ = ["ExportError", "basic_model_card", "export_task", "hub_base_model"]

# transformers config keys that describe a head or a training run, not the encoder
_HEAD_KEYS = (
    "architectures",
    "id2label",
    "label2id",
    "num_labels",
    "problem_type",
    "_name_or_path",
    "transformers_version",
    "dtype",
    "torch_dtype",
)


class ExportError(ValueError):
    """The model (or this task of it) cannot be written as a standard transformers model."""


def _sequence_classifier(config: ClassifierConfig, task: TaskSpec) -> Any:
    from transformers import AutoConfig, AutoModelForSequenceClassification

    settings = {k: v for k, v in config.encoder_config.items() if k not in _HEAD_KEYS}
    model_type = settings.pop("model_type")
    hf_config = AutoConfig.for_model(
        model_type,
        **settings,
        num_labels=len(task.labels),
        id2label=dict(enumerate(task.labels)),
        label2id={label: i for i, label in enumerate(task.labels)},
        problem_type=task.kind.transformers_problem_type,
    )
    try:
        return AutoModelForSequenceClassification.from_config(hf_config)
    except ValueError as exc:
        raise ExportError(f"model type {model_type!r} has no sequence-classification class in transformers") from exc


def _head_state(hf_model: Any, head: Any, spec: TaskSpec | None = None) -> dict[str, Any]:
    """Our head's tensors under the names of the transformers class's own head, with the task's calibration
    folded into the last layer (``W / T``, ``b / T + bias``), so the exported scores are the library's."""
    import torch.nn as nn

    prefix = hf_model.base_model_prefix
    classifier = getattr(hf_model, "classifier", None)
    pooler = getattr(getattr(hf_model, prefix, None), "pooler", None)
    if isinstance(classifier, nn.Linear) and pooler is not None and hasattr(pooler, "dense"):  # BERT family
        names = {f"{prefix}.pooler.dense": head.dense, "classifier": head.out_proj}
    elif classifier is not None and hasattr(classifier, "dense") and hasattr(classifier, "out_proj"):  # RoBERTa, XLM-R
        names = {"classifier.dense": head.dense, "classifier.out_proj": head.out_proj}
    else:
        raise ExportError(
            f"{type(hf_model).__name__}: its head is not dense -> tanh -> linear on the first token; export "
            "supports BERT- and RoBERTa/XLM-R-type encoders"
        )
    state = {f"{name}.{p}": getattr(layer, p) for name, layer in names.items() for p in ("weight", "bias")}
    if spec is not None and (spec.temperature is not None or spec.bias is not None):
        import torch

        last = list(names)[-1]
        weight, bias = state[f"{last}.weight"].detach(), state[f"{last}.bias"].detach()
        t = torch.as_tensor(spec.temperature or 1.0, dtype=weight.dtype)
        shift = torch.as_tensor(spec.bias or 0.0, dtype=weight.dtype)
        state[f"{last}.weight"] = weight / (t.unsqueeze(-1) if t.dim() else t)
        state[f"{last}.bias"] = bias / t + shift
    return state


def export_task(model: NewsClassifier | str | Path, task: str, out_dir: str | Path) -> Path:
    """Write one task as a standard transformers sequence-classification model directory.

    Args:
        model: a loaded :class:`~aranews.inference.classifier.NewsClassifier` or a model directory.
        task: the task to export.
        out_dir: the directory to write (created).

    Returns:
        ``out_dir``.

    Raises:
        ExportError: the model's pooling or encoder type cannot be expressed as a standard model.
        KeyError: no such task.
    """
    import torch

    from aranews.inference.classifier import NewsClassifier, load_classifier

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file; give a folder to write the model to")
    source = model.source if isinstance(model, NewsClassifier) else model
    refuse_clashes({"the model": source}, {"--out": out})
    if source is not None and Path(source).resolve().is_relative_to(out.resolve()):
        raise ExportError(f"--out {out} holds the model {source}, which writing the export would replace")
    clf = model if isinstance(model, NewsClassifier) else load_classifier(model, device="cpu", precision="fp32")
    if clf.holds_reduced_weights:
        raise ExportError(f"the classifier holds its weights in {clf.precision}; load {clf.source} with precision fp32")
    spec = clf.config.task(task)
    if clf.model.pairs_apart([task]):
        raise ExportError(
            f"task {task!r} reads its {spec.pair_column!r} apart (model.pair_encoding: "
            f"{clf.config.model.pair_encoding}), beside each article "
            "window: a standard sequence-classification model reads one sequence; only pair_encoding: cross exports"
        )
    if clf.config.model.pooling != "cls":
        raise ExportError(
            f"model.pooling={clf.config.model.pooling!r}: standard sequence-classification models read the first "
            "token; only models trained with pooling: cls can be exported"
        )
    if clf.config.model.input_prefix:
        raise ExportError(
            f"model.input_prefix={clf.config.model.input_prefix!r}: a transformers pipeline would not put it before "
            "each text, so its scores would not be this model's; only models without an input prefix can be exported"
        )
    hf_model = _sequence_classifier(clf.config, spec)
    prefix = hf_model.base_model_prefix
    state = {f"{prefix}.{k}": v for k, v in clf.model.encoder.state_dict().items()}
    state.update(_head_state(hf_model, clf.model.heads[task], spec))
    with torch.no_grad():
        missing, unexpected = hf_model.load_state_dict(state, strict=False)
    buffers = {name for name, _ in hf_model.named_buffers()}
    missing = [k for k in missing if k not in buffers]
    if missing or unexpected:
        raise ExportError(
            f"weights do not map onto {type(hf_model).__name__}: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    with atomic_directory(out) as folder:  # an earlier export there is replaced only by a whole new one
        hf_model.eval().save_pretrained(str(folder))
        tokenizer = copy.deepcopy(clf.tokenizer)
        tokenizer.model_max_length = clf.config.model.max_length  # the pipeline truncates to the trained window
        tokenizer.save_pretrained(str(folder))
        (folder / "README.md").write_text(export_card(clf.config, spec), encoding="utf-8")
    return out
