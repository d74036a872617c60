"""How a batch of windows becomes window logits: one runner per precision mode, chosen once at load.

A :class:`Runner` takes a collated batch (``input_ids``, ``attention_mask``, maybe ``token_type_ids``) and
returns each task's window logits and, when asked and able, the pooled window features the heads read.
:class:`TorchRunner` runs the torch model in float32 or under autocast (bf16, fp16); :class:`OnnxInt8`
runs an int8 ONNX Runtime session and :class:`OpenVino` a compiled OpenVINO model (f32 or bf16), each
built (and cached) on first use. A new backend is one more subclass
and one more entry in :func:`make_runner`; the classifier never tests the mode again.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from aranews.inference.runtime import OnnxInt8Runner

if TYPE_CHECKING:
    from aranews.inference.modeling import MultiTaskClassifier

__all__ = ["TORCH_MODES", "OnnxInt8", "OpenVino", "Runner", "TorchRunner", "make_runner"]

Windows = dict[str, torch.Tensor]


class Runner:
    """Window logits (and features) of a batch, in one precision mode."""

    mode: str = ""
    backend = "torch"
    gives_features = True  # whether it can return the pooled features (the embeddings select reads)
    released_encoder = False  # whether the torch encoder was freed (the model can no longer run in torch)
    release_encoder = False  # whether it may free it: set by the one owner of the model (from_pretrained)

    def windows(
        self, batch: dict[str, torch.Tensor], tasks: list[str], features: bool
    ) -> tuple[Windows, torch.Tensor | None]:
        """Each task's logits per scored window and, when ``features``, every window's pooled state. ``batch``
        carries ``article_index`` only for tasks that read their claim apart (``pair_encoding: bi``), whose
        scored windows are the article windows, not the claim's."""
        raise NotImplementedError


class TorchRunner(Runner):
    """The torch model on its device, in float32 or under autocast (layer norms and softmax stay float32).

    In bf16 and fp16, a runner that owns its model (``release_encoder``, set by ``from_pretrained``) holds the
    linear layers' weights in that dtype once, at the first batch, instead of letting autocast cast them on
    every call: the same rounding of the same weights, so the same logits, without the per-call copies (about
    6% of bf16 scoring time on CPU, ``bench_scoring.py --profile``) and with half the weights' memory.
    """

    _DTYPES: ClassVar[dict[str, torch.dtype | None]] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}

    def __init__(self, model: MultiTaskClassifier, device: torch.device, mode: str) -> None:
        self.model, self.device, self.mode = model, device, mode
        self.dtype = self._DTYPES[mode]
        self.weights_held = False

    def _hold_weights(self) -> None:
        for module in self.model.modules():
            if isinstance(module, torch.nn.Linear):
                module.to(self.dtype)
        self.weights_held = True

    def windows(
        self, batch: dict[str, torch.Tensor], tasks: list[str], features: bool
    ) -> tuple[Windows, torch.Tensor | None]:
        if self.release_encoder and self.dtype is not None and not self.weights_held:
            self._hold_weights()
        batch = {k: v.to(self.device) for k, v in batch.items()}
        article_index = batch.pop("article_index", None)  # given for pair_encoding: bi only
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            pooled = self.model.window_features(**batch)
            read = self.model.head_features(pooled, article_index, tasks)[0] if tasks else pooled
            out = {name: self.model.heads[name](read) for name in tasks}
        return {name: value.float() for name, value in out.items()}, (pooled.float() if features else None)


class _SessionRunner(Runner):
    """A runner over a session of another backend, built on the first batch (the export or conversion is cached
    per model content). A classifier that owns its model lets the session release the torch encoder."""

    def __init__(self, model: MultiTaskClassifier, source: str | None) -> None:
        self.model, self.source = model, source
        self.session = None
        self._building = threading.Lock()

    @property
    def released_encoder(self) -> bool:  # type: ignore[override]
        return self.session is not None and self.release_encoder

    def _session(self) -> Any:
        with self._building:  # concurrent first calls build one session (and release the encoder once)
            if self.session is None:
                self.session = self._build()
        return self.session

    def _build(self) -> Any:
        raise NotImplementedError


class OnnxInt8(_SessionRunner):
    """An int8 ONNX Runtime session of the model (export and quantisation cached per model content)."""

    mode = "int8"
    backend = "ONNX Runtime"
    gives_features = False

    def _build(self) -> OnnxInt8Runner:
        return OnnxInt8Runner(self.model, self.source, release_encoder=self.release_encoder)

    def windows(
        self, batch: dict[str, torch.Tensor], tasks: list[str], features: bool
    ) -> tuple[Windows, torch.Tensor | None]:
        if features:
            raise ValueError("article embeddings come from the torch model: load it with precision fp32 or bf16")
        out = self._session()(batch)
        return {name: out[name] for name in tasks}, None


class OpenVino(_SessionRunner):
    """A compiled OpenVINO model of the windows (``openvino-fp32``, ``openvino-bf16``; the conversion cached per
    model content); it gives the pooled features too."""

    backend = "OpenVINO"

    def __init__(self, model: MultiTaskClassifier, source: str | None, mode: str) -> None:
        super().__init__(model, source)
        self.mode = mode

    def _build(self) -> Any:
        from aranews.inference.openvino_session import OpenVinoSession

        return OpenVinoSession(self.model, self.source, self.mode, release_encoder=self.release_encoder)

    def windows(
        self, batch: dict[str, torch.Tensor], tasks: list[str], features: bool
    ) -> tuple[Windows, torch.Tensor | None]:
        out, pooled = self._session()(batch)
        return {name: out[name] for name in tasks}, (pooled if features else None)


TORCH_MODES = tuple(TorchRunner._DTYPES)  # the modes the torch model runs in itself


def make_runner(mode: str, model: MultiTaskClassifier, device: torch.device, source: str | None) -> Runner:
    """The runner of a resolved precision mode (see :func:`aranews.inference.runtime.resolve_precision`).

    Raises:
        ValueError: a model whose tasks read their claim apart (``pair_encoding: bi``, ``similarity``) in a mode other than
            torch's (``fp32``, ``bf16``, ``fp16``): the other backends export per-window logits.
    """
    if mode not in TORCH_MODES and model.config.model.claim_apart:
        paired = [t.name for t in model.config.tasks if t.pair_column is not None]
        if paired:
            raise ValueError(
                f"precision {mode}: tasks {paired} read their claim apart (model.pair_encoding: "
                f"{model.config.model.pair_encoding}), which runs in "
                "torch only: use precision fp32 or bf16"
            )
    if mode == "int8":
        return OnnxInt8(model, source)
    if mode.startswith("openvino-"):
        return OpenVino(model, source, mode)
    return TorchRunner(model, device, mode)
