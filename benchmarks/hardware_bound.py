"""The machine's own bound on scoring speed: sustained matrix-product rates at a BERT's layer shapes.

Used by ``bench_scoring.py`` (and runnable alone: ``python benchmarks/hardware_bound.py``). For each dtype
(fp32, and bf16 where the CPU or GPU has it) it times, median of ``repeats`` runs after a warm-up, the
products a BERT layer makes for a batch of windows: the fused Q/K/V projection, the attention output, the
two feed-forward products, and the two attention products (scores and weighted values, batched over
heads). The FLOPs of an article of ``n`` tokens through ``layers`` layers of width ``d`` and feed-forward
``ff`` are ``layers * (2n(4d^2 + 2d*ff) + 4n^2 d)``; the bound for a set of articles is the time those FLOPs
take at the measured rates, shape by shape: nothing else (layer norms, GELU, softmax, tokenisation, reading)
is counted, so no real scorer reaches it.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch

BERT_BASE = {"layers": 12, "hidden": 768, "ff": 3072, "heads": 12}


def _time(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up (and any lazy kernel choice)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def matmul_rates(
    dtype: torch.dtype, device: torch.device, shape: dict[str, int] = BERT_BASE, tokens: int = 4096,
    length: int = 384, repeats: int = 5,
) -> dict[str, float]:  # fmt: skip
    """GFLOP/s of each product of a layer, for ``tokens`` rows of windows of ``length`` tokens."""
    d, ff, heads = shape["hidden"], shape["ff"], shape["heads"]
    x, h = torch.randn(tokens, d, dtype=dtype, device=device), torch.randn(tokens, ff, dtype=dtype, device=device)
    weights = {
        "qkv": (x, torch.randn(3 * d, d, dtype=dtype, device=device)),
        "attention_out": (x, torch.randn(d, d, dtype=dtype, device=device)),
        "ff_in": (x, torch.randn(ff, d, dtype=dtype, device=device)),
        "ff_out": (h, torch.randn(d, ff, dtype=dtype, device=device)),
    }
    rates = {}
    with torch.inference_mode():
        for name, (a, w) in weights.items():
            seconds = _time(lambda a=a, w=w: torch.nn.functional.linear(a, w), repeats, device)
            rates[name] = 2 * a.shape[0] * a.shape[1] * w.shape[0] / seconds / 1e9
        windows = max(1, tokens // length)
        q = torch.randn(windows * heads, length, d // heads, dtype=dtype, device=device)
        scores = torch.randn(windows * heads, length, length, dtype=dtype, device=device)
        flops = 2 * windows * heads * length * length * (d // heads)
        rates["attention_scores"] = flops / _time(lambda: torch.bmm(q, q.transpose(1, 2)), repeats, device) / 1e9
        rates["attention_values"] = flops / _time(lambda: torch.bmm(scores, q), repeats, device) / 1e9
    return {k: round(v, 1) for k, v in rates.items()}


def article_flops(n: int, shape: dict[str, int] = BERT_BASE) -> dict[str, float]:
    """FLOPs of one window of ``n`` tokens through the encoder, by product."""
    d, ff, layers = shape["hidden"], shape["ff"], shape["layers"]
    return {
        "qkv": layers * 2 * n * d * 3 * d,
        "attention_out": layers * 2 * n * d * d,
        "ff_in": layers * 2 * n * d * ff,
        "ff_out": layers * 2 * n * ff * d,
        "attention_scores": layers * 2 * n * n * d,
        "attention_values": layers * 2 * n * n * d,
    }


def bound(
    tokens_per_article: Sequence[int], rates: dict[str, float], shape: dict[str, int] = BERT_BASE
) -> dict[str, Any]:
    """Articles per second if every product ran at its measured rate and nothing else took time."""
    seconds = 0.0
    total = 0.0
    for n in tokens_per_article:
        for name, flops in article_flops(n, shape).items():
            seconds += flops / (rates[name] * 1e9)
            total += flops
    articles = len(tokens_per_article)
    return {
        "articles_per_second": round(articles / seconds, 3) if seconds else None,
        "gflop_per_article": round(total / articles / 1e9, 2) if articles else None,
    }


def supported_dtypes(device: torch.device) -> list[str]:
    if device.type == "cuda":
        return ["fp32", "bf16", "fp16"] if torch.cuda.is_bf16_supported() else ["fp32", "fp16"]
    from aranews.inference.runtime import cpu_supports_bf16

    return ["fp32", "bf16"] if cpu_supports_bf16() else ["fp32"]


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def measure(device: str = "cpu", threads: int | None = None, repeats: int = 5) -> dict[str, dict[str, float]]:
    """Per supported dtype, the rates of :func:`matmul_rates` on ``device``."""
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    return {name: matmul_rates(DTYPES[name], dev, repeats=repeats) for name in supported_dtypes(dev)}


if __name__ == "__main__":
    found = measure(sys.argv[1] if len(sys.argv) > 1 else "cpu")
    print(json.dumps(found, indent=2))
    for name, rates in found.items():
        print(name, "bound at 378 tokens per article:", bound([378], rates))
