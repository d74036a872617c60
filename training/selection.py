"""Moved: :mod:`aranews.inference.selection` (it needs only the base install). This name keeps working for one
release, with a DeprecationWarning."""

from __future__ import annotations

import warnings

from aranews.inference.selection import *  # noqa: F403
from aranews.inference.selection import __all__  # noqa: F401

warnings.warn("aranews.training.selection moved to aranews.inference.selection", DeprecationWarning, stacklevel=2)
