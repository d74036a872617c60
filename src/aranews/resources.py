"""Files shipped with the package: the configs and the embedded sample corpus.

They are read from the installed package (a wheel or an editable install), never from a path inside a
source tree, so ``aranews demo`` works from any folder.
"""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path

__all__ = ["config_path", "sample_path"]


def _path(package: str, name: str) -> Path:
    resource = files(package) / name
    if not resource.is_file():
        raise FileNotFoundError(f"{package}/{name}: not found in the installed package; reinstall aranews-classifier")
    with as_file(resource) as path:  # a real file for both wheels and editable installs
        return Path(path)


def config_path(name: str) -> Path:
    """A shipped config, e.g. ``config_path("demo.yaml")``."""
    return _path("aranews.configs", name)


def sample_path(name: str) -> Path:
    """A file of the embedded sample corpus: ``train.jsonl``, ``dev.jsonl`` or ``archive.jsonl``."""
    return _path("aranews.sample_data", name)
