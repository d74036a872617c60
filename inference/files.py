"""The one guard every command that writes a user's files goes through.

Two promises, kept for ``score``, ``predict``, ``select``, ``labelstudio``, ``report``, ``model-card`` and
``check-precision`` alike:

* **No output is ever an input.** :func:`refuse_clashes` compares every output path with every input
  (the same path, a symbolic link to it, a hard link to it, or a file inside an input folder) and with
  every other output, and raises :class:`OutputClashError` before any work is done.
* **An output is complete or absent.** :func:`atomic_output` writes to a temporary name in the same
  folder and renames it into place only when the writing finished: a full disk, an exception or a kill
  leaves the old file (or none), never a truncated one.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

__all__ = [
    "OutputClashError",
    "atomic_directory",
    "atomic_output",
    "atomic_write_text",
    "check_output_path",
    "finite",
    "refuse_clashes",
    "same_file",
]

PathLike = str | os.PathLike


class OutputClashError(ValueError):
    """An output path is an input (or another output) of the same command."""


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether two paths name one file: the same resolved path, or (existing) the same inode."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    return folder.is_dir() and path.resolve().is_relative_to(folder.resolve())


def refuse_clashes(inputs: Mapping[str, PathLike | None], outputs: Mapping[str, PathLike | None]) -> None:
    """Refuse, before any work, an output that would overwrite an input or another output.

    Args:
        inputs: what the command reads, by the name the user knows it by (``{"the input archive": path}``);
            ``None`` values are ignored.
        outputs: what it writes, by option name (``{"--out": path, "--errors": path}``).

    Raises:
        OutputClashError: naming the output, the input (or other output) and the path.
    """
    given_inputs = {name: Path(p) for name, p in inputs.items() if p is not None}
    given_outputs = {name: Path(p) for name, p in outputs.items() if p is not None}
    for out_name, out in given_outputs.items():
        for in_name, source in given_inputs.items():
            inside = _inside(out, source)
            if inside or same_file(out, source):
                raise OutputClashError(
                    f"{out_name} {out} is {'inside ' if inside else ''}{in_name} {source}; choose another path"
                )
    names = list(given_outputs)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            if same_file(given_outputs[first], given_outputs[second]):
                raise OutputClashError(f"{first} and {second} are the same file ({given_outputs[first]})")


def check_output_path(name: str, path: PathLike, *, create_parent: bool = False) -> Path:
    """An output's path is a file name in a writable folder (created when ``create_parent``)."""
    path = Path(path)
    if path.is_dir():
        raise OutputClashError(f"{name} {path} is a directory; give a file name")
    if create_parent:
        path.parent.mkdir(parents=True, exist_ok=True)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{name} {path}: the folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise PermissionError(f"{name} {path}: the folder {path.parent} is not writable")
    return path


@contextlib.contextmanager
def atomic_output(
    path: PathLike, mode: str = "w", *, encoding: str | None = "utf-8", newline: str | None = None
) -> Iterator[IO[Any]]:
    """Open ``path`` for writing so that it appears whole or not at all.

    The data goes to a hidden temporary file beside the target (a link is written through: the file it
    points to is replaced); on a clean exit it is flushed, synced and renamed over the target. On any
    exception (a full disk, Ctrl-C) the temporary file is removed and the target is left as it was.
    """
    path = Path(path)
    target = path.resolve() if path.is_symlink() else path
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    binary = "b" in mode
    handle = open(tmp, mode, encoding=None if binary else encoding, newline=None if binary else newline)  # noqa: SIM115
    try:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        os.replace(tmp, target)
    except BaseException:
        handle.close()
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_directory(path: PathLike) -> Iterator[Path]:
    """A folder written whole or not at all: fill the yielded temporary folder; on a clean exit it takes
    ``path``'s place (an existing folder there is moved aside first and removed after), on an exception
    it is removed and ``path`` is left as it was."""
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    old = path.with_name(f".{path.name}.{os.getpid()}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write a whole text file atomically (see :func:`atomic_output`)."""
    with atomic_output(path, encoding=encoding) as handle:
        handle.write(text)
    return Path(path)


def finite(value: Any) -> Any:
    """``value`` with every NaN or Infinity inside it (lists, tuples, dicts) as ``None``: JSON has neither."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value
