"""Moved: the command line is :mod:`aranews.cli` (one module per command group). This name keeps working for
one release, with a DeprecationWarning."""

from __future__ import annotations

import sys
import warnings

from aranews.cli import UsageError, build_parser, main

__all__ = ["UsageError", "build_parser", "main"]

warnings.warn("aranews.training.cli moved to aranews.cli", DeprecationWarning, stacklevel=2)

if __name__ == "__main__":
    sys.exit(main())
