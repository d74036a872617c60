"""Inference for Arabic news topic and stance classifiers.

Thin by design: it loads a self-describing model directory and predicts. It never imports
``training`` and has no import-time side effects.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .classifier import NewsClassifier, load_classifier, predict_stance, predict_topic, resolve_device
from .modeling import ClassifierConfig, LongDocumentConfig, MultiTaskClassifier, TaskSpec
from .preprocessing import arabert_v02, build_preprocessor, strip_boilerplate

__all__ = [
    "ClassifierConfig",
    "LongDocumentConfig",
    "MultiTaskClassifier",
    "NewsClassifier",
    "TaskSpec",
    "__version__",
    "arabert_v02",
    "build_preprocessor",
    "load_classifier",
    "predict_stance",
    "predict_topic",
    "resolve_device",
    "strip_boilerplate",
]
