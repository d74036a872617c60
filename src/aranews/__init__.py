"""aranews-classifier: fine-tuned transformer classification of Arabic news articles (topic, stance).

One import name for the whole library::

    from aranews import load_classifier          # prediction (the base install)
    from aranews.training import Trainer          # training (pip install "aranews-classifier[train]")

The public names below are imported on first use, so ``import aranews`` (and ``aranews --version``)
does not load torch.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from aranews._lazy import lazy_exports

try:
    __version__ = version("aranews-classifier")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

_EXPORTS = {
    "NewsClassifier": "aranews.inference.classifier",
    "load_classifier": "aranews.inference.classifier",
    "predict_topic": "aranews.inference.classifier",
    "predict_stance": "aranews.inference.classifier",
    "resolve_device": "aranews.inference.classifier",
    "Inspection": "aranews.inference.classifier",
    "ClassifierConfig": "aranews.inference.config",
    "ModelConfig": "aranews.inference.config",
    "LongDocumentConfig": "aranews.inference.config",
    "TaskSpec": "aranews.inference.config",
    "ConfigError": "aranews.inference.schema",
    "MultiTaskClassifier": "aranews.inference.modeling",
    "compose_text": "aranews.inference.inputs",
    "export_task": "aranews.inference.export",
    "score_archive": "aranews.inference.scoring",
    "check_precision": "aranews.inference.agreement",
    "RayOptions": "aranews.inference.ray_engine",
    "write_report": "aranews.inference.report",
    "parse_date": "aranews.inference.dates",
    "select_for_labelling": "aranews.inference.selection",
}

__all__ = [
    "ClassifierConfig",
    "ConfigError",
    "Inspection",
    "LongDocumentConfig",
    "ModelConfig",
    "MultiTaskClassifier",
    "NewsClassifier",
    "RayOptions",
    "TaskSpec",
    "__version__",
    "check_precision",
    "compose_text",
    "export_task",
    "load_classifier",
    "parse_date",
    "predict_stance",
    "predict_topic",
    "resolve_device",
    "score_archive",
    "select_for_labelling",
    "write_report",
]

if TYPE_CHECKING:  # for type checkers and editors; at run time every name loads on first use
    from aranews.inference import *  # noqa: F403 - the inference API, as aranews.inference lists it
    from aranews.inference.agreement import check_precision
    from aranews.inference.dates import parse_date
    from aranews.inference.ray_engine import RayOptions
    from aranews.inference.report import write_report
    from aranews.inference.selection import select_for_labelling

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
