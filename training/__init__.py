"""Fine-tuning Arabic news topic and stance classifiers (``aranews.training``): config, data validation,
training loop, evaluation reports, offline backbone, metrics and the ``aranews`` command line.

Needs the training extra: ``pip install "aranews-classifier[train]"``. Imports ``aranews.inference`` for
the one model definition; ``aranews.inference`` never imports this package. Public names load on first
use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ConfigError": "config",
    "ExperimentConfig": "config",
    "load_config": "config",
    "DataValidationError": "data",
    "MissingExtraError": "extras",
    "TrainResult": "trainer",
    "Trainer": "trainer",
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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'aranews.training' has no attribute {name!r}")
    value = getattr(import_module(f"aranews.training.{module}"), name)
    globals()[name] = value
    return value
