"""How the model runs: precision modes, the automatic choice per machine, and token-budget batches.

Precision modes (``precision=`` of :func:`~aranews.inference.classifier.load_classifier`, ``--precision``
of ``aranews score`` / ``predict`` / ``check-precision``):

========  ==================================================================================
``fp32``  the reference: the model as trained, in float32.
``bf16``  ``torch.autocast`` to bfloat16 (CPUs with AVX512-BF16 or AMX, and CUDA GPUs); layer norms,
          softmax and the heads' outputs stay in float32.
``fp16``  ``torch.autocast`` to float16, CUDA only.
``int8``  ONNX Runtime with dynamically quantised int8 weights and activations (VNNI / AMX-INT8 kernels);
          needs the ``onnx`` extra. The exported and quantised graph is cached per model content
          (``$ARANEWS_CACHE``, default ``~/.cache/aranews``).
``openvino-fp32``, ``openvino-bf16``
          OpenVINO on the CPU, in float32 or with bfloat16 matrix products (CPUs with ``avx512_bf16`` or
          ``amx_bf16``); needs the ``openvino`` extra. The converted graph is cached per model content
          (:mod:`aranews.inference.openvino_session`).
``auto``  CUDA: ``bf16`` where the GPU supports it, else ``fp16``. CPU: per kind of processor
          (:func:`cpu_kind`), the fastest mode measured on that kind that agreed with ``fp32`` on 99% of
          labels of every fine-tuned model checked (``AUTO_SCORING``): ``openvino-bf16`` on AVX512-BF16
          CPUs without AMX (AMD Zen 4) when the ``openvino`` extra is installed; otherwise ``bf16`` where the
          processor has bfloat16 instructions (``avx512_bf16`` or ``amx_bf16``), else ``fp32``. ``int8``
          is never chosen automatically: it changes more predictions, so it is opted into after
          ``aranews check-precision`` has shown its agreement with ``fp32`` on the user's model.
========  ==================================================================================

Every mode reads the same windows; only the arithmetic differs. ``aranews check-precision`` measures,
per task and mode, the share of labels equal to ``fp32``'s and the largest probability difference. The
names are listed in :mod:`aranews.inference.precision` (no torch); each mode runs as a runner of
:mod:`aranews.inference.runners`, chosen once when the model is loaded.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from aranews.inference.precision import PRECISIONS

if TYPE_CHECKING:
    from aranews.inference.modeling import MultiTaskClassifier

__all__ = [
    "PRECISIONS",
    "PrecisionError",
    "auto_precision",
    "auto_scoring_precision",
    "cpu_flags",
    "cpu_kind",
    "model_fingerprint",
    "resolve_precision",
    "speed_flags",
    "token_budget_batches",
]

logger = logging.getLogger(__name__)

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
INT8_CPU_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


class PrecisionError(ValueError):
    """A precision mode that does not exist or cannot run here (with what to use instead)."""


@cache
def cpu_flags() -> frozenset[str]:
    """The processor's feature flags (``/proc/cpuinfo``; empty where that file does not exist)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


SPEED_FLAG_PREFIXES = ("avx2", "avx512", "avx_vnni", "amx")


def speed_flags() -> list[str]:
    """The processor's flags that decide which matrix kernels run (AVX2, AVX-512 and its bf16/VNNI parts, AMX),
    sorted: what a benchmark records beside every timing, so that a figure names the kind of machine it is from."""
    return sorted(f for f in cpu_flags() if f.startswith(SPEED_FLAG_PREFIXES))


def cpu_name() -> str:
    """The processor's model name, or what ``platform`` knows."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_supports_bf16() -> bool:
    return any(flag in cpu_flags() for flag in BF16_CPU_FLAGS)


def onnxruntime_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def auto_precision(device: torch.device) -> str:
    """The torch arithmetic ``auto`` means on this machine: what training's ``mixed_precision: auto`` uses, and
    what scoring uses where no faster backend was measured for this kind of machine."""
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and cpu_supports_bf16():
        return "bf16"
    return "fp32"


def cpu_kind() -> str:
    """The kind of CPU the automatic choice distinguishes: ``amx`` (bf16 and int8 tiles, Intel Xeon 4th gen
    and later), ``avx512_bf16`` (bf16 vector instructions without AMX: AMD Zen 4 and 5) or ``other``."""
    flags = cpu_flags()
    if "amx_bf16" in flags:
        return "amx"
    return "avx512_bf16" if "avx512_bf16" in flags else "other"


# Per kind of CPU, the scoring mode ``auto`` prefers where its backend is installed: the fastest mode measured
# on that kind that agreed with fp32 on at least 99% of labels of every fine-tuned model checked (BENCHMARKS.md).
# A kind not listed was not measured with OpenVINO: it keeps torch's mode.
AUTO_SCORING = {"avx512_bf16": "openvino-bf16"}


def auto_scoring_precision(device: torch.device) -> str:
    """The mode ``auto`` scores in on this machine (see the module docstring)."""
    preferred = AUTO_SCORING.get(cpu_kind()) if device.type == "cpu" else None
    if preferred is not None:
        try:
            return resolve_precision(preferred, device)  # the checks an explicit choice gets (its extra installed)
        except PrecisionError:
            pass
    return auto_precision(device)


def resolve_precision(precision: str | None, device: torch.device) -> str:
    """A concrete mode for ``device``; ``None`` and ``auto`` choose per machine.

    Raises:
        PrecisionError: an unknown mode, or one this device or install cannot run.
    """
    if precision is None or precision == "auto":
        return auto_scoring_precision(device)
    if precision not in PRECISIONS:
        raise PrecisionError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise PrecisionError(f"precision 'fp16' runs on CUDA only (device is {device}); use bf16 or fp32")
    if precision == "bf16" and device.type == "cpu" and not cpu_supports_bf16():
        logger.warning(
            "precision bf16 on a CPU without %s: it runs, emulated, slower than fp32", " or ".join(BF16_CPU_FLAGS)
        )
    if precision.startswith("openvino-"):
        from aranews.inference.openvino_session import openvino_available

        if device.type != "cpu":
            raise PrecisionError(f"precision {precision!r} runs on CPU only (device is {device}); use bf16 or fp16")
        if not openvino_available():
            raise PrecisionError(f'precision {precision!r} needs OpenVINO: pip install "aranews-classifier[openvino]"')
        if precision == "openvino-bf16" and not cpu_supports_bf16():
            raise PrecisionError(
                f"precision 'openvino-bf16' needs a CPU with {' or '.join(BF16_CPU_FLAGS)} (this one has neither); "
                "use openvino-fp32"
            )
    if precision == "int8":
        if device.type != "cpu":
            raise PrecisionError(f"precision 'int8' (ONNX Runtime) runs on CPU only (device is {device}); use bf16")
        if not onnxruntime_available():
            raise PrecisionError(
                "precision 'int8' needs ONNX Runtime: pip install \"aranews-classifier[onnx]\" (onnx, onnxruntime)"
            )
    return precision


def model_fingerprint(path: str | Path) -> str:
    """SHA-256 over a model directory's files (weights, config, tokenizer): its content hash."""
    digest = hashlib.sha256()
    root = Path(path)
    for name in sorted(p.name for p in root.iterdir() if p.is_file()):
        digest.update(name.encode())
        with (root / name).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def token_budget_batches(lengths: Sequence[tuple[int, int]], max_tokens: int, max_items: int) -> Iterator[list[int]]:
    """Batches of item indices, longest first, each within a padded-token budget.

    Args:
        lengths: per item, ``(windows, longest window)``.
        max_tokens: the most ``windows x padded length`` one batch may hold (an item larger than the
            budget on its own still gets a batch of its own).
        max_items: the most items per batch.

    Sorting by length keeps padding small; the budget keeps the work per batch roughly constant, so short
    articles go in large batches and long ones in small batches.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i][1], i))
    batch: list[int] = []
    windows = longest = 0
    for i in order:
        n, length = lengths[i]
        new_longest = max(longest, length)
        if batch and ((windows + n) * new_longest > max_tokens or len(batch) >= max_items):
            yield batch
            batch, windows, new_longest = [], 0, length
        batch.append(i)
        windows += n
        longest = new_longest
    if batch:
        yield batch


class _WindowLogits(torch.nn.Module):
    """Encoder, token pooling and every head, per window: the part of the model that is exported."""

    def __init__(self, model: MultiTaskClassifier, tasks: list[str], with_token_types: bool) -> None:
        super().__init__()
        self.model = model
        self.tasks = tasks
        self.with_token_types = with_token_types

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        logits = self.model.window_logits(input_ids, attention_mask, token_type_ids, self.tasks)
        return torch.cat([logits[name] for name in self.tasks], dim=-1)


def _cache_dir() -> Path:
    return Path(os.environ.get("ARANEWS_CACHE") or Path.home() / ".cache" / "aranews")


# -- int8 only where it agrees --------------------------------------------------------------------------
INT8_MIN_AGREEMENT = 0.99


def weights_fingerprint(path: str | Path) -> str:
    """SHA-256 of a model directory's weights and config (what decides its labels), not of its other files."""
    digest = hashlib.sha256()
    for name in ("model.safetensors", "config.json"):
        with (Path(path) / name).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def precision_record_path(path: str | Path) -> Path:
    """Where ``aranews check-precision`` records a model's agreement on this machine (the cache, by weights)."""
    return _cache_dir() / "precision" / f"{weights_fingerprint(path)[:32]}.json"


def int8_refusal(path: str | Path) -> str | None:
    """Why int8 is refused for this model here (``None``: a check on this machine found every task's int8
    labels equal to fp32's on at least 99% of the texts checked)."""
    import json

    record = precision_record_path(path)
    if not record.is_file():
        return "no agreement check of int8 for this model on this machine"
    found = json.loads(record.read_text(encoding="utf-8"))
    rows = [r for r in found.get("rows", []) if r.get("mode") == "int8"]
    if not rows:
        return "its agreement check did not include int8"
    worst = min(rows, key=lambda r: r["agreement"])
    if worst["agreement"] < INT8_MIN_AGREEMENT:
        return (
            f"int8 gave other labels than fp32 on {1 - worst['agreement']:.1%} of {worst['articles']} texts "
            f"(task {worst['task']!r}; at most {1 - INT8_MIN_AGREEMENT:.0%} allowed)"
        )
    return None


def _quantize(source: Path, target: Path, keep: Callable[[str], bool] | None = None) -> None:
    """int8 weights (per output channel) for the encoder's matrix products with constant weights.

    Left in float32: the embedding tables (a lookup, nothing to gain), products of two activations
    (attention scores) and the small classification heads, whose outputs are the probabilities.
    ``keep`` (a node name -> bool) narrows the quantised products further (benchmarks use it).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source), load_external_data=False).graph
    excluded = [  # the heads, and what ``keep`` leaves out
        node.name
        for node in graph.node
        if node.op_type in ("MatMul", "Gemm")
        and ("/encoder/" not in node.name or (keep is not None and not keep(node.name)))
    ]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)  # the quantiser logs every tensor at INFO on the root logger
    try:
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Gemm"],
            nodes_to_exclude=excluded,
            extra_options={"MatMulConstBOnly": True},
        )
    finally:
        root.setLevel(level)


class OnnxInt8Runner:
    """The model's window logits in ONNX Runtime, int8 weights and activations (dynamic quantisation).

    The graph is exported with ``torch.onnx.export`` and quantised with ONNX Runtime's own
    ``quantize_dynamic`` (per-channel int8 weights); both steps are cached under the model's content hash.
    """

    def __init__(
        self,
        model: MultiTaskClassifier,
        source: str | None,
        threads: int | None = None,
        release_encoder: bool = False,
    ) -> None:
        import onnxruntime as ort

        self.tasks = [t.name for t in model.config.tasks]
        self.sizes = [len(t.labels) for t in model.config.tasks]
        self.with_token_types = getattr(model.encoder.config, "type_vocab_size", 0) > 1
        self.path = self._quantised(model, source)
        if release_encoder:
            # The session holds its own copy of the encoder: the torch one is dead weight from here on
            # (about 0.7 GB at AraBERT-base size). Only the caller that owns the model may ask for this.
            model.encoder.to_empty(device="meta")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def _quantised(self, model: MultiTaskClassifier, source: str | None) -> Path:
        import tempfile

        if source and Path(source).is_dir():
            folder = _cache_dir() / "onnx" / model_fingerprint(source)[:24]
        else:  # a model only in memory: exported for this process
            folder = Path(tempfile.mkdtemp(prefix="aranews-onnx-"))
        target = folder / "model-int8.onnx"
        if target.is_file():
            return target
        folder.mkdir(parents=True, exist_ok=True)
        logger.info("exporting the model to ONNX and quantising it to int8 (cached in %s)", folder)
        fp32 = folder / f"model-fp32.{os.getpid()}.onnx"
        self._export(model, fp32)
        partial = folder / f"model-int8.{os.getpid()}.onnx"
        _quantize(fp32, partial)
        os.replace(partial, target)  # atomic: a concurrent or interrupted export never leaves half a file
        fp32.unlink(missing_ok=True)
        return target

    def _export(self, model: MultiTaskClassifier, path: Path) -> None:
        import warnings

        wrapper = _WindowLogits(model, self.tasks, self.with_token_types).eval()
        ids = torch.full((2, 8), 5, dtype=torch.long)
        args: tuple[torch.Tensor, ...] = (ids, torch.ones_like(ids))
        names = ["input_ids", "attention_mask"]
        if self.with_token_types:
            args += (torch.zeros_like(ids),)
            names.append("token_type_ids")
        axes = {name: {0: "windows", 1: "length"} for name in names} | {"logits": {0: "windows"}}
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper,
                args,
                str(path),
                input_names=names,
                output_names=["logits"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )

    def __call__(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        feed = {"input_ids": batch["input_ids"].numpy(), "attention_mask": batch["attention_mask"].numpy()}
        if self.with_token_types:
            feed["token_type_ids"] = batch["token_type_ids"].numpy()
        (out,) = self.session.run(["logits"], feed)
        logits = torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))
        return dict(zip(self.tasks, torch.split(logits, self.sizes, dim=-1), strict=True))
