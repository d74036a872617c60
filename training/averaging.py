"""An exponential moving average of a model's trainable weights (``training.ema_decay``).

Fine-tuning on a few thousand rows makes the weights, and the dev figure every epoch is selected on,
jump from step to step. The average is what the run evaluates, selects and saves; the optimiser keeps
working on the raw weights, which stay in the resume checkpoint beside the average.

Cost: one fp32 copy of the trainable parameters for the average, and another while it is swapped in
for evaluation and saving; an in-place update per optimiser step.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


class WeightAverage:
    """The moving average ``m <- d * m + (1 - d) * weights`` after each optimiser step, bias-corrected
    as Adam's moments are (``m / (1 - d ** t)`` after ``t`` steps, kept in that form): the first
    update takes the weights as they are, and the starting weights never weigh in.

    Args:
        model: the model being trained; only parameters with ``requires_grad`` are averaged (frozen
            ones do not change).
        decay: the decay per step, in (0, 1): the last ``1 / (1 - decay)`` steps weigh most.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.averaged = {name: p.detach().float().clone() for name, p in model.named_parameters() if p.requires_grad}

    def _pairs(self, model: torch.nn.Module) -> Iterator[tuple[torch.Tensor, torch.nn.Parameter]]:
        params = dict(model.named_parameters())
        for name, avg in self.averaged.items():
            yield avg, params[name]

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Fold the model's current weights into the average (call after each optimiser step)."""
        self.updates += 1
        weight = (1.0 - self.decay) / (1.0 - self.decay**self.updates)
        for avg, p in self._pairs(model):
            avg.lerp_(p.detach().float(), weight)

    @contextmanager
    @torch.no_grad()
    def applied(self, model: torch.nn.Module) -> Iterator[None]:
        """Within the block the model holds the averaged weights; the raw ones come back afterwards."""
        raw = []
        for avg, p in self._pairs(model):
            raw.append(p.detach().clone())
            p.copy_(avg)
        try:
            yield
        finally:
            for (_, p), kept in zip(self._pairs(model), raw):
                p.copy_(kept)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors for a safetensors file: the averages, and the update count under ``__updates__``."""
        return {**self.averaged, "__updates__": torch.tensor(self.updates, dtype=torch.int64)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        differing = sorted(set(self.averaged) ^ (set(state) - {"__updates__"}))
        if differing:
            raise ValueError(f"the saved weight average does not match the model: {differing[:5]}")
        for name, avg in self.averaged.items():
            avg.copy_(state[name])
        self.updates = int(state["__updates__"])
