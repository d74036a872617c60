"""Why int8 fails its agreement check, and what the alternatives cost.

On a fine-tuned model and real dev articles, each int8 scheme below is scored through the library's own
path (windows, pairs, pooling, heads) and compared with fp32 per task: agreement (share of equal labels),
the largest probability difference, and scoring time. The schemes:

- ``dynamic``: the library's ``--precision int8`` (ONNX Runtime ``quantize_dynamic``: int8 weights per
  output channel, activations quantised per tensor at run time, every encoder projection);
- ``dynamic, <kind> only``: the same, applied to one kind of projection (q/k/v, attention output,
  feed-forward in, feed-forward out) while the others stay float32: where the error comes from;
- ``smoothquant a=<alpha>``: per-channel smoothing of every projection's input (scales calibrated on the
  package's embedded sample articles), then ``dynamic``;
- ``blockwise 8-bit``: ONNX Runtime's ``MatMulNBits`` (8-bit weights in blocks of 32 or 128 along the
  input, activations quantised per block, int8 compute: ``accuracy_level=4``); needs ``pip install onnx_ir``;
- ``per-token``: every encoder projection rewritten as standard ONNX operators that quantise each token's
  activations with its own scale (symmetric, stored as uint8 around 128) before ``MatMulInteger`` with
  per-channel int8 weights, then rescale: the W8A8 scheme of LLM.int8 / SmoothQuant without outlier
  handling, where ONNX Runtime's dynamic scheme shares one scale across the whole batch.

    python benchmarks/bench_int8.py --model runs/demo/run/model \
        --data ../shared/data/ant_multisource/dev.jsonl --limit 300 --json benchmarks/results/int8.json

``--schemes REGEX`` runs only the schemes whose name matches (fp32 always runs).

Every scheme runs in this one process, one after the other, so read the times as ratios to the
``fp32 (torch)`` line of the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from aranews.inference import runtime
from aranews.inference.agreement import _decisions
from aranews.inference.classifier import NewsClassifier, load_classifier
from aranews.resources import sample_path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import write_result

KINDS = {
    "q/k/v": r"/attention/self/(query|key|value)/",
    "attention output": r"/attention/output/dense/",
    "feed-forward in": r"/intermediate/dense/",
    "feed-forward out": r"/layer\.\d+/output/dense/",
}


def _encoder_products(path: Path) -> list[str]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type in ("MatMul", "Gemm") and "/encoder/" in n.name]


_library_quantize = runtime._quantize  # before any scheme swaps it


def dynamic_only(pattern: str) -> Callable[[Path, Path], None]:
    """The library's dynamic quantisation, restricted to the encoder products matching ``pattern``."""

    def quantise(source: Path, target: Path) -> None:
        _library_quantize(source, target, keep=lambda name: re.search(pattern, name) is not None)

    return quantise


def blockwise(bits: int, block: int) -> Callable[[Path, Path], None]:
    def quantise(source: Path, target: Path) -> None:
        import onnx
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

        products = set(_encoder_products(source))
        model = onnx.load(str(source))
        heads = [n.name for n in model.graph.node if n.op_type in ("MatMul", "Gemm") and n.name not in products]
        quantiser = MatMulNBitsQuantizer(
            model, bits=bits, block_size=block, is_symmetric=True, accuracy_level=4, nodes_to_exclude=heads
        )
        quantiser.process()
        quantiser.model.save_model_to_file(str(target), use_external_data_format=False)

    return quantise


def per_token(source: Path, target: Path) -> None:
    """Each encoder ``MatMul`` with a constant weight -> per-token int8 activations x per-channel int8 weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    products = set(_encoder_products(source))
    constants = [
        numpy_helper.from_array(np.array(127.0, np.float32), "pt/127"),
        numpy_helper.from_array(np.array(128.0, np.float32), "pt/128"),
        numpy_helper.from_array(np.array(1e-8, np.float32), "pt/eps"),
        numpy_helper.from_array(np.array(128, np.uint8), "pt/zero"),
    ]
    nodes: list = []

    def add(op: str, inputs: list[str], output: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    for node in graph.node:
        if node.op_type != "MatMul" or node.name not in products or node.input[1] not in weights:
            nodes.append(node)
            continue
        w = numpy_helper.to_array(weights[node.input[1]]).astype(np.float32)
        w_scale = (np.maximum(np.abs(w).max(axis=0), 1e-8) / 127.0).astype(np.float32)
        p = node.name
        constants += [
            numpy_helper.from_array(np.clip(np.round(w / w_scale), -127, 127).astype(np.int8), f"{p}/wq"),
            numpy_helper.from_array(w_scale, f"{p}/w_scale"),
        ]

        x = node.input[0]
        peak = add("ReduceMax", [add("Abs", [x], f"{p}/abs")], f"{p}/peak", axes=[-1], keepdims=1)
        scale = add("Div", [add("Max", [peak, "pt/eps"], f"{p}/peak+"), "pt/127"], f"{p}/scale")  # per token
        q = add("Round", [add("Div", [x, scale], f"{p}/x")], f"{p}/round")
        q = add("Cast", [add("Add", [q, "pt/128"], f"{p}/shift")], f"{p}/q", to=TensorProto.UINT8)
        y = add("MatMulInteger", [q, f"{p}/wq", "pt/zero"], f"{p}/int32")
        y = add("Mul", [add("Cast", [y], f"{p}/float", to=TensorProto.FLOAT), scale], f"{p}/rescale")
        nodes.append(helper.make_node("Mul", [y, f"{p}/w_scale"], [node.output[0]], name=f"{p}/out"))
    used = {name for n in nodes for name in n.input}
    kept = [init for init in graph.initializer if init.name in used]  # the float weights replaced are dropped
    del graph.node[:], graph.initializer[:]
    graph.node.extend(nodes)
    graph.initializer.extend(kept + constants)
    onnx.save(model, str(target))


class _Smoothed(torch.nn.Module):
    """``x @ W.T`` computed as ``(x / s) @ (W * s).T``: the input's outlier channels move into the weights."""

    def __init__(self, linear: torch.nn.Linear, scale: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("inverse", 1.0 / scale)
        self.linear = copy.deepcopy(linear)
        with torch.no_grad():
            self.linear.weight.mul_(scale[None, :])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x * self.inverse)


def smoothed_model(classifier: NewsClassifier, texts: list[str], pairs: dict[str, list[str]] | None, alpha: float):
    """SmoothQuant (Xiao et al., 2023) scales from the input ranges seen on ``texts`` (with ``pairs``)."""
    model = copy.deepcopy(classifier.model).eval()
    ranges: dict[str, torch.Tensor] = {}
    hooks = []
    for name, module in model.encoder.named_modules():
        if isinstance(module, torch.nn.Linear):

            def hook(module, inputs, output, name=name):
                seen = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1]).amax(0)
                ranges[name] = torch.maximum(ranges[name], seen) if name in ranges else seen

            hooks.append(module.register_forward_hook(hook))
    calibration = NewsClassifier(model, classifier.tokenizer, classifier.device, precision="fp32")
    calibration.classify(texts, pairs=pairs)
    for handle in hooks:
        handle.remove()
    for name, seen in ranges.items():
        parent, _, leaf = name.rpartition(".")
        linear = model.encoder.get_submodule(name)
        weight = linear.weight.detach().abs().amax(0).clamp(min=1e-5)
        scale = (seen.clamp(min=1e-5) ** alpha / weight ** (1 - alpha)).clamp(min=1e-5)
        setattr(model.encoder.get_submodule(parent), leaf, _Smoothed(linear, scale))
    return model


@contextlib.contextmanager
def _scheme(quantise: Callable[[Path, Path], None] | None):
    """Fresh ONNX cache, and the library's quantiser swapped for ``quantise`` while the block runs."""
    original, cache = _library_quantize, os.environ.get("ARANEWS_CACHE")
    with tempfile.TemporaryDirectory(prefix="aranews-int8-") as folder:
        os.environ["ARANEWS_CACHE"] = folder
        runtime._quantize = quantise or original
        try:
            yield
        finally:
            runtime._quantize = original
            if cache is None:
                os.environ.pop("ARANEWS_CACHE", None)
            else:
                os.environ["ARANEWS_CACHE"] = cache


def _merged(old: dict, new: dict) -> dict:
    """``old`` with ``new``'s schemes added or replaced; every row keeps the fp32 time of its own run."""
    if (old["model"], old["data"], old["articles"]) != (new["model"], new["data"], new["articles"]):
        raise SystemExit(f"--merge: {old['model']} on {old['data']} is not the model and data of this run")
    fp32 = old["results"][0]["seconds"]
    rows = {r["scheme"]: {**r, "fp32_seconds": r.get("fp32_seconds", fp32)} for r in old["results"][1:]}
    rows.update({r["scheme"]: r for r in new["results"][1:]})
    commands = old.get("commands", [old["command"]])
    ordered = sorted(rows.values(), key=lambda r: not r["scheme"].startswith("bf16"))  # the bar to beat first
    return {**old, "commands": [*commands, new["command"]], "results": [old["results"][0], *ordered]}


def _schemes(args: argparse.Namespace, reference: NewsClassifier, pairs: dict[str, list[str]] | None) -> list:
    """The int8 schemes to compare: ``(name, precision, quantiser, a builder of a changed model or None)``."""
    # (name, precision, quantiser, a function building a changed model to export instead of the reference)
    Scheme = tuple[str, str, Callable[[Path, Path], None] | None, Callable[[], torch.nn.Module] | None]
    schemes: list[Scheme] = []
    if runtime.cpu_supports_bf16():  # the mode int8 has to beat
        schemes.append(("bf16 (torch autocast, not int8)", "bf16", None, None))
    schemes.append(("dynamic (the library's int8)", "int8", None, None))
    schemes += [(f"dynamic, {kind} only", "int8", dynamic_only(p), None) for kind, p in KINDS.items()]
    # calibrated on the package's sample articles, not on the articles compared; a pair-conditioned model
    # reads them with the claims or targets of the data, in turn
    calibration = [json.loads(line)["text"] for line in sample_path("dev.jsonl").read_text("utf-8").splitlines()]
    calibration_pairs = None
    if pairs is not None:
        calibration_pairs = {k: [v[i % len(v)] for i in range(len(calibration))] for k, v in pairs.items()}
    schemes += [
        (
            f"smoothquant a={a}, dynamic",
            "int8",
            None,
            lambda a=a: smoothed_model(reference, calibration, calibration_pairs, a),
        )
        for a in args.alphas
    ]
    try:
        import onnx_ir  # noqa: F401  (MatMulNBitsQuantizer imports it)

        schemes += [(f"blockwise 8-bit, block {b}", "int8", blockwise(8, b), None) for b in (32, 128)]
    except ImportError:
        print("blockwise schemes skipped: pip install onnx_ir", file=sys.stderr)
    schemes.append(("per-token int8 activations", "int8", per_token, None))
    if args.schemes:
        schemes = [s for s in schemes if re.search(args.schemes, s[0])]
    return schemes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a fine-tuned model folder")
    parser.add_argument("--data", required=True, help="JSON Lines with a text field (real dev articles)")
    parser.add_argument("--pair-column", default=None, help="claim or target, for pair-conditioned models")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--alphas", type=float, nargs="*", default=[0.5, 0.8])
    parser.add_argument("--schemes", default=None, help="regular expression: run only the schemes it matches")
    parser.add_argument("--json", default=None)
    parser.add_argument(
        "--merge", action="store_true", help="add this run's schemes to an existing --json file (same model and data)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    rows = [json.loads(line) for line in Path(args.data).read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = rows[: args.limit]
    texts = [r["text"] for r in rows]
    pairs = None
    if args.pair_column:
        pairs = {args.pair_column: [r[args.pair_column] for r in rows]}
    reference = load_classifier(args.model, precision="fp32")
    reference.classify(texts[:8], pairs=None if pairs is None else {k: v[:8] for k, v in pairs.items()})
    started = time.perf_counter()
    base = reference.classify(texts, pairs=pairs)
    fp32_seconds = time.perf_counter() - started
    kept = [i for i, s in enumerate(base.skipped) if s is None]

    schemes = _schemes(args, reference, pairs)

    results = [
        {"scheme": "fp32 (torch)", "seconds": round(fp32_seconds, 2), "agreement": dict.fromkeys(base.probs, 1.0)}
    ]
    print(f"{'scheme':42} {'seconds':>8} " + " ".join(f"{t:>10}" for t in base.probs) + "  max |dp|")
    print(f"{'fp32 (torch)':42} {fp32_seconds:8.2f}")
    for name, precision, quantise, build in schemes:
        model = build() if build is not None else None
        with _scheme(quantise):
            clf = NewsClassifier(
                model or reference.model,
                reference.tokenizer,
                reference.device,
                source=None if model is not None else reference.source,
                precision=precision,
            )
            clf.classify(texts[:8], pairs=None if pairs is None else {k: v[:8] for k, v in pairs.items()})
            started = time.perf_counter()
            result = clf.classify(texts, pairs=pairs)
            seconds = time.perf_counter() - started
        agreement, worst = {}, 0.0
        for task in base.probs:
            want, got = _decisions(reference, base, task), _decisions(clf, result, task)
            agreement[task] = round(1.0 - sum(want[i] != got[i] for i in kept) / len(kept), 4)
            worst = max(worst, float(np.abs(base.probs[task][kept] - result.probs[task][kept]).max()))
        results.append(
            {
                "scheme": name,
                "seconds": round(seconds, 2),
                "fp32_seconds": round(fp32_seconds, 2),  # of this run: times compare within a run only
                "agreement": agreement,
                "max_dp": round(worst, 4),
            }
        )
        print(f"{name:42} {seconds:8.2f} " + " ".join(f"{a:10.2%}" for a in agreement.values()) + f"  {worst:.3f}")

    if args.json:
        command = "python " + shlex.join([Path(sys.argv[0]).as_posix(), *(argv or sys.argv[1:])])
        out = {
            "model": args.model,
            "data": args.data,
            "articles": len(kept),
            "hardware": runtime.cpu_name(),
            "threads": torch.get_num_threads(),
            "command": command,
            "results": results,
        }
        if args.merge and Path(args.json).is_file():
            out = _merged(json.loads(Path(args.json).read_text(encoding="utf-8")), out)
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_result(Path(args.json), out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
