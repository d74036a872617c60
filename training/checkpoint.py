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

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model

__all__ = ["CHECKPOINT_DIR", "load_training_state", "save_training_state"]

CHECKPOINT_DIR = "last_checkpoint"


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
    output_dir: str | Path, model: torch.nn.Module, optimizer, scheduler, progress: dict[str, Any]
) -> Path:
    """Write the resumable state atomically (a temporary folder renamed over the old one)."""
    final = Path(output_dir) / CHECKPOINT_DIR
    tmp = Path(output_dir) / f".{CHECKPOINT_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / "model.safetensors"))
    tensors, optimizer_meta = _optimizer_to_flat(optimizer.state_dict())
    save_file(tensors, str(tmp / "optimizer.safetensors"))
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
    old = Path(output_dir) / f".{CHECKPOINT_DIR}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def load_training_state(output_dir: str | Path, model: torch.nn.Module, optimizer, scheduler) -> dict[str, Any] | None:
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
