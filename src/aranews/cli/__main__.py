"""``python -m aranews.cli`` (as torchrun and accelerate launch run it): the ``aranews`` command."""

import sys

from aranews.cli import main

sys.exit(main())
