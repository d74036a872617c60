"""The training extra: what training, evaluation reports, the baseline and plots need beyond inference."""

from __future__ import annotations

import importlib.util

__all__ = ["TRAIN_EXTRA", "MissingExtraError", "require_train_extra"]

TRAIN_EXTRA = "aranews-classifier[train]"
# import name -> distribution name
_MODULES = {
    "datasets": "datasets",
    "accelerate": "accelerate",
    "evaluate": "evaluate",
    "sklearn": "scikit-learn",
    "matplotlib": "matplotlib",
}


class MissingExtraError(ImportError):
    """A training feature was used without the training extra installed."""


def require_train_extra(feature: str) -> None:
    """Raise :class:`MissingExtraError` naming the extra if any training dependency is missing.

    Args:
        feature: what the user asked for (``"aranews train"``, ``"the evaluation report"``...).
    """
    missing = []
    for module, distribution in _MODULES.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(distribution)
    if missing:
        raise MissingExtraError(
            f"{feature} needs the training extra, which is not installed (missing: {', '.join(missing)}); "
            f'install it with: pip install "{TRAIN_EXTRA}"'
        )
