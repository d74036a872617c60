"""Fine-tuning Arabic news topic and stance classifiers: config, data validation, training loop,
offline backbone, metrics and the ``aranews`` command line.

Imports ``inference`` for the one model definition; ``inference`` never imports this package.
"""

from __future__ import annotations

from .config import ConfigError, ExperimentConfig, load_config
from .data import DataValidationError
from .trainer import Trainer, TrainResult

__all__ = ["ConfigError", "DataValidationError", "ExperimentConfig", "TrainResult", "Trainer", "load_config"]
