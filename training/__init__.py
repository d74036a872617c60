"""Fine-tuning Arabic news topic and stance classifiers (``aranews.training``): config, data validation,
training loop, evaluation reports, offline backbone, metrics and the ``aranews`` command line.

Needs the training extra: ``pip install "aranews-classifier[train]"``. Imports ``aranews.inference`` for
the one model definition; ``aranews.inference`` never imports this package. Public names load on first
use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aranews._lazy import lazy_exports

_EXPORTS = {
    "ConfigError": "aranews.training.config",
    "ExperimentConfig": "aranews.training.config",
    "load_config": "aranews.training.config",
    "DataValidationError": "aranews.training.data",
    "MissingExtraError": "aranews.training.extras",
    "TrainResult": "aranews.training.trainer",
    "Trainer": "aranews.training.trainer",
}

__all__ = [
    "ConfigError",
    "DataValidationError",
    "ExperimentConfig",
    "MissingExtraError",
    "TrainResult",
    "Trainer",
    "load_config",
]

if TYPE_CHECKING:
    from aranews.training.config import ConfigError, ExperimentConfig, load_config
    from aranews.training.data import DataValidationError
    from aranews.training.extras import MissingExtraError
    from aranews.training.trainer import Trainer, TrainResult

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
