"""Moved: :mod:`aranews.inference.labelstudio` (it needs only the base install). This name keeps working for one
release, with a DeprecationWarning."""

from __future__ import annotations

import warnings

from aranews.inference.labelstudio import *  # noqa: F403
from aranews.inference.labelstudio import __all__  # noqa: F401

warnings.warn("aranews.training.labelstudio moved to aranews.inference.labelstudio", DeprecationWarning, stacklevel=2)
