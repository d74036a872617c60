"""The precision modes, by name: importable without torch (the command line lists them before any model
is loaded). What each mode does, and how ``auto`` chooses, is in :mod:`aranews.inference.runtime`; the
code that runs each is a runner of :mod:`aranews.inference.runners`, chosen once when a model is loaded.
"""

from __future__ import annotations

__all__ = ["CHECKABLE", "MODES", "PRECISIONS"]

MODES = {
    "fp32": "the reference: the model as trained, in float32",
    "bf16": "torch autocast to bfloat16 (CPUs with avx512_bf16 or AMX, CUDA GPUs)",
    "fp16": "torch autocast to float16 (CUDA only)",
    "int8": "ONNX Runtime, dynamically quantised int8 (the onnx extra; check its agreement first)",
    "openvino-fp32": "OpenVINO, float32 (CPU; the openvino extra)",
    "openvino-bf16": "OpenVINO, bfloat16 inference precision (CPUs with avx512_bf16 or AMX; the openvino extra)",
}
PRECISIONS = ("auto", *MODES)  # auto: chosen per machine (runtime.auto_precision)
CHECKABLE = tuple(m for m in MODES if m != "fp32")  # what check-precision compares with fp32
