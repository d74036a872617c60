"""Resumable training state without pickles.

``accelerator.save_state`` writes optimizer, scheduler and RNG states with ``torch.save`` and reads
them back with ``torch.load``, i.e. pickles. Here every tensor goes to safetensors and every other
value to JSON, so resuming a run never unpickles anything.

Layout of ``<output_dir>/last_checkpoint/``::

    model.safetensors       model weights
    optimizer.safetensors   optimizer tensors (moments, steps), keys ``<param index>.<name>``
    rng.safetensors         torch (and CUDA) generator states
    state.json              optimizer param groups, scheduler, Python/NumPy RNG, trainer progress
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model

if TYPE_CHECKING:
    from aranews.training.averaging import WeightAverage

__all__ = [
    "CHECKPOINT_DIR",
    "ResumeMismatchError",
    "fingerprint_differences",
    "load_training_state",
    "read_progress",
    "replace_dir",
    "run_fingerprint",
    "save_training_state",
]

CHECKPOINT_DIR = "last_checkpoint"
# Settings that do not change what a run computes: a resume may change them.
_VOLATILE = {
    ("training", "output_dir"),
    ("training", "resume"),
    ("training", "checkpoint_every_seconds"),
    ("training", "progress"),
    ("training", "report"),
    ("training", "baseline"),
    ("training", "eval_batch_size"),
    ("training", "device"),
    ("training", "previous_dev"),
    ("training", "forgetting_tolerance"),
    ("training", "min_label_examples"),
    ("training", "allow_label_removal"),
}


class ResumeMismatchError(ValueError):
    """``last_checkpoint/`` belongs to another run (other settings or other data)."""


def _file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_fingerprint(config: dict[str, Any]) -> dict[str, Any]:
    """What identifies a run: its resolved settings (but output paths and display options) and the
    SHA-256 of each data file."""
    settings = json.loads(json.dumps(config))
    for section, key in _VOLATILE:
        settings.get(section, {}).pop(key, None)
    files = {}
    for name in ("train", "dev", "test"):  # each a file or a list of files
        given = settings["data"].get(name)
        for i, path in enumerate(given if isinstance(given, list) else [given]):
            files[name if not isinstance(given, list) else f"{name}[{i}]"] = path
    data = {name: _file_sha256(path) for name, path in files.items() if path and Path(path).is_file()}
    return {"settings": settings, "data_sha256": data}


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def fingerprint_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two run fingerprints, one line per setting or data file."""
    out = []
    a, b = _flatten(old.get("settings", {})), _flatten(new.get("settings", {}))
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            out.append(f"{key}: {a.get(key)!r} then, {b.get(key)!r} now")
    for name in sorted(set(old.get("data_sha256", {})) | set(new.get("data_sha256", {}))):
        before, now = old.get("data_sha256", {}).get(name), new.get("data_sha256", {}).get(name)
        if before != now:
            out.append(f"data.{name} file content changed (sha256 {str(before)[:12]} then, {str(now)[:12]} now)")
    return out


def read_progress(output_dir: str | Path) -> dict[str, Any] | None:
    """The trainer progress stored in ``last_checkpoint/state.json``, or ``None`` if there is none."""
    path = Path(output_dir) / CHECKPOINT_DIR / "state.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))["progress"]


def replace_dir(tmp: Path, final: Path) -> None:
    """Put the finished folder ``tmp`` in place of ``final``: at every moment one complete folder exists
    (``final``, or ``final`` renamed to ``.old`` beside it, which the next swap clears)."""
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def _optimizer_to_flat(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state_dict["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _optimizer_from_flat(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for index, values in meta["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def save_training_state(
    output_dir: str | Path,
    model: torch.nn.Module,
    optimizer,
    scheduler,
    progress: dict[str, Any],
    average: WeightAverage | None = None,
) -> Path:
    """Write the resumable state atomically (a temporary folder renamed over the old one): the raw
    weights, the optimiser and scheduler, the random generators and, when kept, the weight average."""
    final = Path(output_dir) / CHECKPOINT_DIR
    tmp = Path(output_dir) / f".{CHECKPOINT_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / "model.safetensors"))
    tensors, optimizer_meta = _optimizer_to_flat(optimizer.state_dict())
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    if average is not None:
        save_file(average.state_dict(), str(tmp / "average.safetensors"))
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            rng[f"cuda.{i}"] = s
    save_file(rng, str(tmp / "rng.safetensors"))
    np_state = np.random.get_state()
    state = {
        "progress": progress,
        "optimizer": optimizer_meta,
        "scheduler": scheduler.state_dict(),
        "python_rng": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy_rng": [np_state[0], np_state[1].tolist(), *np_state[2:]],
    }
    (tmp / "state.json").write_text(json.dumps(state), encoding="utf-8")
    replace_dir(tmp, final)
    return final


def load_training_state(
    output_dir: str | Path, model: torch.nn.Module, optimizer, scheduler, average: WeightAverage | None = None
) -> dict[str, Any] | None:
    """Restore what :func:`save_training_state` wrote; return the trainer progress, or ``None`` if absent."""
    path = Path(output_dir) / CHECKPOINT_DIR
    if not (path / "state.json").is_file():
        return None
    state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    load_model(model, str(path / "model.safetensors"), strict=True)
    device = next(model.parameters()).device
    tensors = {
        k: v.to(device) if not k.endswith(".step") else v
        for k, v in load_file(str(path / "optimizer.safetensors")).items()
    }
    optimizer.load_state_dict(_optimizer_from_flat(tensors, state["optimizer"]))
    scheduler.load_state_dict(state["scheduler"])
    if average is not None:
        average.load_state_dict(load_file(str(path / "average.safetensors"), device=str(device)))
    rng = load_file(str(path / "rng.safetensors"))
    torch.set_rng_state(rng["torch"])
    cuda_states = [rng[k] for k in sorted(k for k in rng if k.startswith("cuda."))]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)
    version, internal, gauss = state["python_rng"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = state["numpy_rng"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    return state["progress"]
