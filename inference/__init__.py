"""Inference for Arabic news topic and stance classifiers (``aranews.inference``).

Thin by design: it loads a self-describing model directory and predicts. It never imports
``aranews.training`` and has no import-time side effects; public names load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "BatchResult": "classifier",
    "DeviceError": "classifier",
    "Inspection": "classifier",
    "NewsClassifier": "classifier",
    "load_classifier": "classifier",
    "predict_stance": "classifier",
    "predict_topic": "classifier",
    "resolve_device": "classifier",
    "ClassifierConfig": "config",
    "LongDocumentConfig": "config",
    "ModelConfig": "config",
    "TaskSpec": "config",
    "export_task": "export",
    "ArticleWindower": "inputs",
    "compose_text": "inputs",
    "input_problem": "inputs",
    "MultiTaskClassifier": "modeling",
    "arabert_v02": "preprocessing",
    "build_preprocessor": "preprocessing",
    "strip_boilerplate": "preprocessing",
    "ConfigError": "schema",
    "score_archive": "scoring",
}

__all__ = [
    "ArticleWindower",
    "BatchResult",
    "ClassifierConfig",
    "ConfigError",
    "DeviceError",
    "Inspection",
    "LongDocumentConfig",
    "ModelConfig",
    "MultiTaskClassifier",
    "NewsClassifier",
    "TaskSpec",
    "arabert_v02",
    "build_preprocessor",
    "compose_text",
    "export_task",
    "input_problem",
    "load_classifier",
    "predict_stance",
    "predict_topic",
    "resolve_device",
    "score_archive",
    "strip_boilerplate",
]

if TYPE_CHECKING:
    from aranews.inference.classifier import (
        BatchResult,
        DeviceError,
        Inspection,
        NewsClassifier,
        load_classifier,
        predict_stance,
        predict_topic,
        resolve_device,
    )
    from aranews.inference.config import ClassifierConfig, LongDocumentConfig, ModelConfig, TaskSpec
    from aranews.inference.export import export_task
    from aranews.inference.inputs import ArticleWindower, compose_text, input_problem
    from aranews.inference.modeling import MultiTaskClassifier
    from aranews.inference.preprocessing import arabert_v02, build_preprocessor, strip_boilerplate
    from aranews.inference.schema import ConfigError
    from aranews.inference.scoring import score_archive


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'aranews.inference' has no attribute {name!r}")
    value = getattr(import_module(f"aranews.inference.{module}"), name)
    globals()[name] = value
    return value
