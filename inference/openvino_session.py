"""The model's windows in OpenVINO: the ``openvino-fp32`` and ``openvino-bf16`` precision modes.

The encoder, token pooling and every head are converted once (``openvino.convert_model`` on the torch
module) into one graph with two outputs, the heads' logits and the pooled features, and the converted
graph is cached under the model's content hash (``$ARANEWS_CACHE/openvino``). It is compiled for the CPU
with the mode's inference precision (OpenVINO's ``INFERENCE_PRECISION_HINT``): ``f32``, or ``bf16``
(bfloat16 kernels on AVX512-BF16 or AMX; OpenVINO decides which operations keep float32). Inputs have
dynamic shapes: the token-budget batches of :mod:`aranews.inference.runtime` pass through unchanged.

Needs the ``openvino`` extra (``pip install "aranews-classifier[openvino]"``).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from aranews.inference.runtime import _cache_dir, model_fingerprint

if TYPE_CHECKING:
    from aranews.inference.modeling import MultiTaskClassifier

__all__ = ["INFERENCE_PRECISION", "OpenVinoSession", "openvino_available"]

logger = logging.getLogger(__name__)

INFERENCE_PRECISION = {"openvino-fp32": "f32", "openvino-bf16": "bf16"}


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


class _WindowOutputs(torch.nn.Module):
    """What is converted: per window, every head's logits (concatenated) and the pooled features."""

    def __init__(self, model: MultiTaskClassifier, tasks: list[str]) -> None:
        super().__init__()
        self.model, self.tasks = model, tasks

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        pooled = self.model.window_features(input_ids, attention_mask, token_type_ids)
        logits = torch.cat([self.model.heads[name](pooled) for name in self.tasks], dim=-1)
        return logits, pooled


class OpenVinoSession:
    """One compiled OpenVINO model of a classifier's windows, in ``f32`` or ``bf16``."""

    def __init__(
        self,
        model: MultiTaskClassifier,
        source: str | None,
        mode: str,
        threads: int | None = None,
        release_encoder: bool = False,
        properties: dict[str, object] | None = None,
    ) -> None:
        """``properties``: more OpenVINO compile properties (e.g. ``{"PERF_COUNT": True}`` to profile)."""
        import openvino as ov

        self.tasks = [t.name for t in model.config.tasks]
        self.sizes = [len(t.labels) for t in model.config.tasks]
        self.with_token_types = getattr(model.encoder.config, "type_vocab_size", 0) > 1
        with self._graph(model, source) as converted:
            if release_encoder:
                # The converted graph holds its own copy of the weights: the torch encoder is dead weight from
                # here on, and freeing it before compiling keeps it out of the peak. Only the caller that owns
                # the model may ask for this.
                model.encoder.to_empty(device="meta")
            core = ov.Core()
            self.compiled = core.compile_model(
                core.read_model(str(converted)),
                "CPU",
                {
                    "INFERENCE_PRECISION_HINT": INFERENCE_PRECISION[mode],
                    "INFERENCE_NUM_THREADS": threads or torch.get_num_threads(),
                    "PERFORMANCE_HINT": "LATENCY",  # one stream: the scorer sends one batch at a time
                    **(properties or {}),
                },
            )
        self.inputs = [port.get_any_name() for port in self.compiled.inputs]
        self._requests = threading.local()  # one infer request per thread: a request is not shared safely

    @contextmanager
    def _graph(self, model: MultiTaskClassifier, source: str | None) -> Iterator[Path]:
        """The converted graph: cached per content for a model directory; for a model only in memory, a
        temporary one, removed once compiled."""
        if not (source and Path(source).is_dir()):
            with tempfile.TemporaryDirectory(prefix="aranews-openvino-", ignore_cleanup_errors=True) as tmp:
                self._convert(model, Path(tmp) / "model.xml")
                yield Path(tmp) / "model.xml"
            return
        folder = _cache_dir() / "openvino" / model_fingerprint(source)[:24]
        target = folder / "model.xml"
        if not target.is_file():
            folder.parent.mkdir(parents=True, exist_ok=True)
            logger.info("converting the model to OpenVINO (cached in %s)", folder)
            partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
            try:
                self._convert(model, partial / "model.xml")
                os.replace(partial, folder)  # atomic: an interrupted conversion never leaves half a graph
            except OSError:
                if not target.is_file():  # not a concurrent conversion that finished first
                    raise
            finally:
                shutil.rmtree(partial, ignore_errors=True)
        yield target

    def _convert(self, model: MultiTaskClassifier, path: Path) -> None:
        import openvino as ov

        wrapper = _WindowOutputs(model, self.tasks).eval()
        ids = torch.full((2, 8), 5, dtype=torch.long)
        mask = torch.ones_like(ids)
        mask[1, 5:] = 0  # a padded window, so that no all-ones shortcut of the mask is traced
        example = {"input_ids": ids, "attention_mask": mask}
        if self.with_token_types:
            example["token_type_ids"] = torch.zeros_like(ids)
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            converted = ov.convert_model(wrapper, example_input=example)
        converted.reshape({port.get_any_name(): ov.PartialShape([-1, -1]) for port in converted.inputs})
        ov.save_model(converted, str(path), compress_to_fp16=False)

    def request(self) -> Any:
        """This thread's infer request (its ``profiling_info`` holds the last call's per-node times when the
        session was compiled with ``PERF_COUNT``)."""
        request = getattr(self._requests, "request", None)
        if request is None:
            request = self._requests.request = self.compiled.create_infer_request()
        return request

    def __call__(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        request = self.request()
        out = request.infer({name: batch[name].numpy() for name in self.inputs})
        # copies: the request reuses its output buffers on its next call
        logits = torch.from_numpy(np.array(out[0], dtype=np.float32))
        pooled = torch.from_numpy(np.array(out[1], dtype=np.float32))
        return dict(zip(self.tasks, torch.split(logits, self.sizes, dim=-1), strict=True)), pooled
