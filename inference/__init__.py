"""Inference for Arabic news topic and stance classifiers (``aranews.inference``).

Thin by design: it loads a self-describing model directory and predicts. It never imports
``aranews.training`` and has no import-time side effects; public names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aranews._lazy import lazy_exports

_EXPORTS = {
    "BatchResult": "aranews.inference.classifier",
    "DeviceError": "aranews.inference.classifier",
    "Inspection": "aranews.inference.classifier",
    "NewsClassifier": "aranews.inference.classifier",
    "load_classifier": "aranews.inference.classifier",
    "predict_stance": "aranews.inference.classifier",
    "predict_topic": "aranews.inference.classifier",
    "resolve_device": "aranews.inference.classifier",
    "ClassifierConfig": "aranews.inference.config",
    "LongDocumentConfig": "aranews.inference.config",
    "ModelConfig": "aranews.inference.config",
    "TaskSpec": "aranews.inference.config",
    "export_task": "aranews.inference.export",
    "ArticleWindower": "aranews.inference.inputs",
    "compose_text": "aranews.inference.inputs",
    "input_problem": "aranews.inference.inputs",
    "MultiTaskClassifier": "aranews.inference.modeling",
    "arabert_v02": "aranews.inference.preprocessing",
    "build_preprocessor": "aranews.inference.preprocessing",
    "strip_boilerplate": "aranews.inference.preprocessing",
    "ConfigError": "aranews.inference.schema",
    "score_archive": "aranews.inference.scoring",
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

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
