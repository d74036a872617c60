"""Archive scoring speed at AraBERT-base size: ``aranews score`` in every precision mode beside the
two-pipeline baseline a user would write, side by side in one run.

    .venv/bin/python benchmarks/bench_scoring.py --articles 200 --rounds 2

What it builds (no download): a BERT with AraBERT-base's shape (vocabulary 64,000, 12 layers, hidden
768, 12 heads, feed-forward 3,072, 512 positions) and random weights, a WordPiece tokenizer learned from
the embedded sample corpus, a topic head and a stance head; and a synthetic archive of news-like articles
(sentences of the sample corpus, lengths drawn log-normally: median about 400 tokens, about a third over
512). Random weights cost what trained ones cost.

What it runs, each in its own subprocess (so peak memory is that run's alone), alternating within each
round so that a busy machine slows every contender alike:

* ``pipelines``: two ``pipeline("text-classification")`` objects, one per task (each task exported with
  ``aranews export``), fp32, batch 16, truncation at 512;
* ``aranews score`` with ``--precision`` ``fp32``, ``bf16`` (where the CPU has bfloat16 instructions) and
  ``int8`` (ONNX Runtime, when installed), ``openvino-fp32`` and ``openvino-bf16`` (OpenVINO, when
  installed); the one-time int8 export and the OpenVINO conversion are done and cached before timing.

It prints and writes (``benchmarks/results/scoring.json``) articles per second, the ratio to the baseline
in the same round, peak RSS, tokens per article, the CPU model and flags. Label agreement on random weights
means nothing: measure it on fine-tuned models with ``aranews check-precision`` (see BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import write_result

ROOT = Path(__file__).resolve().parent.parent

ARABERT_BASE = {"vocab_size": 64000, "num_hidden_layers": 12, "hidden_size": 768, "num_attention_heads": 12}

# VmHWM: this process's own peak (ru_maxrss would carry the parent's peak over the fork)
PEAK = """
def peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""

PIPELINES = (
    PEAK
    + """
import json, sys, time
import torch
from transformers import pipeline
from aranews.inference.readers import read_archive
topic, stance, source, threads, device = sys.argv[1:6]
torch.set_num_threads(int(threads))
rows = [r.fields for r in read_archive(source)]
texts = [r["text"] for r in rows]
started = time.perf_counter()
pipes = [pipeline("text-classification", model=m, device=device) for m in (topic, stance)]
out = [p(texts, batch_size=16, truncation=True, max_length=512) for p in pipes]
seconds = time.perf_counter() - started
assert all(len(o) == len(texts) for o in out)
print(json.dumps({"seconds": seconds, "articles": len(texts),
                  "peak_rss_mb": peak_mb()}))
"""
)

SCORE = (
    PEAK
    + """
import json, sys, time
import torch
from aranews.inference.classifier import load_classifier
from aranews.inference.scoring import score_archive
model, source, out, precision, threads, device = sys.argv[1:7]
torch.set_num_threads(int(threads))
started = time.perf_counter()
clf = load_classifier(model, device=device, precision=precision)
s = score_archive(clf, source, out, progress=False)
seconds = time.perf_counter() - started
tokens = [json.loads(line)["n_tokens"] for line in open(out, encoding="utf-8")]
window = clf.config.model.max_length
print(json.dumps({"seconds": seconds, "scoring_seconds": s.seconds, "articles": s.scored, "rows": s.rows,
                  "errors": s.errors, "precision": clf.precision, "mean_tokens": sum(tokens) / len(tokens),
                  "window_tokens": [min(t + 2, window) for t in tokens], "peak_rss_mb": peak_mb()}))
"""
)


def _sample_sentences() -> list[str]:
    sentences = []
    for name in ("train", "dev"):
        for line in (ROOT / "data" / "sample" / f"{name}.jsonl").open(encoding="utf-8"):
            text = json.loads(line)["text"]
            sentences += [s.strip() + "." for s in text.replace("\n", " ").split(".") if len(s.strip()) > 20]
    return sorted(set(sentences))


def build_model(folder: Path) -> Path:
    """An AraBERT-base-shaped two-task classifier with random weights, saved as the library saves one."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from aranews.inference.classifier import NewsClassifier
    from aranews.inference.config import ClassifierConfig, ModelConfig, TaskSpec
    from aranews.inference.modeling import MultiTaskClassifier
    from aranews.training.backbone import build_tiny_backbone

    backbone = build_tiny_backbone(_sample_sentences(), folder / "tokenizer", vocab_size=64000)
    tokenizer = AutoTokenizer.from_pretrained(str(backbone))
    torch.manual_seed(0)
    encoder = BertModel(
        BertConfig(**ARABERT_BASE, intermediate_size=3072, max_position_embeddings=512, pad_token_id=0),
        add_pooling_layer=False,
    )
    tasks = [
        TaskSpec("topic", ["security", "diplomacy", "economy_energy", "ukraine_war", "regional_conflicts", "other"]),
        TaskSpec("stance", ["cooperation", "neutral", "tension"]),
    ]
    model_config = ModelConfig(encoder="aubmindlab/bert-base-arabertv02", max_length=512, pooling="cls")
    config = ClassifierConfig(tasks=tasks, model=model_config, encoder_config=encoder.config.to_dict()).validate()
    model = MultiTaskClassifier(config, encoder)
    return NewsClassifier(model, tokenizer, "cpu", precision="fp32").save_pretrained(folder / "model")


def build_archive(path: Path, tokenizer, n: int, seed: int = 0) -> list[int]:
    """``n`` articles of sample sentences, token lengths log-normal (median 400, a third over 512)."""
    rng = random.Random(seed)
    sentences = _sample_sentences()
    lengths = [len(tokenizer(s, add_special_tokens=False)["input_ids"]) for s in sentences]
    made = []
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            target = max(40, min(2000, int(rng.lognormvariate(0.0, 0.574) * 400)))
            parts, tokens = [], 0
            while tokens < target:
                j = rng.randrange(len(sentences))
                parts.append(sentences[j])
                tokens += lengths[j]
            made.append(tokens)
            handle.write(json.dumps({"id": f"a{i:06d}", "text": " ".join(parts)}, ensure_ascii=False) + "\n")
    return made


BOUND = """
import json, sys
sys.path.insert(0, sys.argv[1])
from hardware_bound import measure
print(json.dumps(measure(sys.argv[2], int(sys.argv[3]))))
"""

# OpenVINO runs its own graph: its per-node performance counters, summed by node type over every batch
PROFILE_OPENVINO = """
import json, sys, collections, torch
from aranews.inference.classifier import load_classifier
from aranews.inference.openvino_session import OpenVinoSession
from aranews.inference.readers import read_archive
model, source, out, precision, threads, device, table = sys.argv[1:8]
torch.set_num_threads(int(threads))
clf = load_classifier(model, device="cpu", precision="fp32")
session = OpenVinoSession(clf.model, model, precision, properties={"PERF_COUNT": True})
totals, calls = collections.Counter(), collections.Counter()
def run(batch):
    result = session(batch)
    for node in session.request().profiling_info:
        totals[node.node_type] += node.real_time.total_seconds()
        calls[node.node_type] += 1
    return result
texts = [r.fields["text"] for r in read_archive(source)]
encoded = clf.windower.encode(texts)
from aranews.inference.runtime import token_budget_batches
from aranews.inference.inputs import collate_articles
lengths = [(len(a.input_ids), max(len(w) for w in a.input_ids)) for a in encoded]
for idx in token_budget_batches(lengths, clf.batch_tokens, clf.batch_size):
    batch = collate_articles([encoded[i] for i in idx], clf.windower.pad_token_id)
    batch.pop("article_index")
    run(batch)
total = sum(totals.values()) or 1
rows = [{"name": k, "self_cpu_share": round(v / total, 4), "calls": calls[k]} for k, v in totals.most_common(40)]
open(table, "w", encoding="utf-8").write("\\n".join(f"{r['name']:30} {r['self_cpu_share']:7.2%} {r['calls']:6d}" for r in rows) + "\\n")
print(json.dumps({"articles": len(texts), "source": "OpenVINO PERF_COUNT, real time by node type", "operators": rows}))
"""

PROFILE = """
import json, sys, torch
from torch.profiler import ProfilerActivity, profile
from aranews.inference.classifier import load_classifier
from aranews.inference.scoring import score_archive
model, source, out, precision, threads, device, table = sys.argv[1:8]
torch.set_num_threads(int(threads))
clf = load_classifier(model, device=device, precision=precision)
activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
with profile(activities=activities) as prof:
    s = score_archive(clf, source, out, progress=False)
averages = prof.key_averages()
rows = sorted(averages, key=lambda e: -e.self_cpu_time_total)[:40]
total = sum(e.self_cpu_time_total for e in averages) or 1
open(table, "w", encoding="utf-8").write(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=40))
print(json.dumps({"articles": s.scored, "operators": [
    {"name": e.key, "self_cpu_share": round(e.self_cpu_time_total / total, 4), "calls": e.count} for e in rows]}))
"""


def _run(code: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"benchmark child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _gpu_name(device: str) -> str | None:
    import torch

    return torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (ratios are taken per round)")
    parser.add_argument("--modes", nargs="+", default=None, help="precision modes (default: all the device runs)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument(
        "--device",
        default="cpu",
        help="cpu or cuda[:N]: both contenders run there (default modes on CUDA: fp32, bf16, fp16)",
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scoring.json"))
    parser.add_argument("--no-bound", action="store_true", help="skip measuring the machine's matrix-product bound")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="profile the best mode on N articles")
    return parser


def _round(r: int, modes: list[str], tmp: Path, model: Path, topic: Path, stance: Path, source: Path, args) -> dict:
    """One round: the two pipelines, then each mode, each in a fresh process; ratios to the pipelines."""
    result = {"pipelines": _run(PIPELINES, str(topic), str(stance), str(source), str(args.threads), args.device)}
    for mode in modes:
        out = tmp / f"scores-{mode}-{r}.jsonl"
        result[mode] = _run(SCORE, str(model), str(source), str(out), mode, str(args.threads), args.device)
        out.unlink()
        for leftover in tmp.glob(f"scores-{mode}-{r}.jsonl.*"):
            leftover.unlink()
    base = result["pipelines"]["articles"] / result["pipelines"]["seconds"]
    for run in result.values():
        run["articles_per_second"] = run["articles"] / run["seconds"]
        run["ratio_to_pipelines"] = run["articles_per_second"] / base
    print(
        f"round {r + 1}: "
        + ", ".join(
            f"{name} {run['articles_per_second']:.2f}/s ({run['ratio_to_pipelines']:.2f}x)"
            for name, run in result.items()
        ),
        flush=True,
    )
    return result


MODE_DTYPE = {"fp32": "fp32", "bf16": "bf16", "fp16": "fp16", "openvino-fp32": "fp32", "openvino-bf16": "bf16"}
TORCH_MODES = ("fp32", "bf16", "fp16")  # what torch.profiler can see into


def _bound(rounds: list[dict], modes: list[str], args) -> dict:
    """The machine's bound per dtype on the articles the scorer read (their windows' tokens), and each mode's
    share of the bound of its dtype (int8 has none measured)."""
    from hardware_bound import bound as articles_bound

    rates = _run(BOUND, str(Path(__file__).resolve().parent), args.device, str(args.threads))
    tokens = next(r[m]["window_tokens"] for r in rounds for m in modes if "window_tokens" in r[m])
    by_dtype = {dtype: {"rates_gflops": r, **articles_bound(tokens, r)} for dtype, r in rates.items()}
    share = {}
    for mode in modes:
        dtype = MODE_DTYPE.get(mode)
        if dtype in by_dtype and by_dtype[dtype]["articles_per_second"]:
            median = statistics.median(r[mode]["articles_per_second"] for r in rounds)
            share[mode] = round(median / by_dtype[dtype]["articles_per_second"], 3)
    for r in rounds:
        for m in modes:
            r[m].pop("window_tokens", None)
    return {"by_dtype": by_dtype, "share_of_bound": share, "mean_window_tokens": round(statistics.mean(tokens), 1)}


def _profile(rounds: list[dict], modes: list[str], tmp: Path, model: Path, source: Path, args) -> dict:
    """Operator totals of the fastest mode on the first ``--profile`` articles: ``torch.profiler`` for a torch
    mode, OpenVINO's own per-node counters for an OpenVINO one (neither sees into ONNX Runtime: int8 is left out)."""
    profiled = [m for m in modes if m in TORCH_MODES or m.startswith("openvino-")] or modes
    best = max(profiled, key=lambda m: statistics.median(r[m]["articles_per_second"] for r in rounds))
    code = PROFILE_OPENVINO if best.startswith("openvino-") else PROFILE
    lines = source.read_text(encoding="utf-8").splitlines()[: args.profile]
    part = tmp / "profile.jsonl"
    part.write_text("\n".join(lines) + "\n", encoding="utf-8")
    table = Path(args.out).with_suffix(".profile.txt")
    found = _run(
        code, str(model), str(part), str(tmp / "profile-out.jsonl"), best, str(args.threads), args.device, str(table)
    )
    return {"mode": best, "table": str(table), **found}


def main() -> None:
    args = build_parser().parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from transformers import AutoTokenizer

    from aranews.inference.classifier import load_classifier
    from aranews.inference.export import export_task
    from aranews.inference.openvino_session import openvino_available
    from aranews.inference.runtime import cpu_name, cpu_supports_bf16, onnxruntime_available, speed_flags

    if args.device.startswith("cuda"):
        default_modes = ["fp32", "bf16", "fp16"]
    else:
        bf16 = cpu_supports_bf16()
        default_modes = ["fp32"] + (["bf16"] if bf16 else []) + (["int8"] if onnxruntime_available() else [])
        if openvino_available():
            default_modes += ["openvino-fp32"] + (["openvino-bf16"] if bf16 else [])
    modes = args.modes or default_modes
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ["ARANEWS_CACHE"] = str(tmp / "cache")
        # random weights: int8 is timed here, its agreement is checked on fine-tuned models (check-precision)
        os.environ["ARANEWS_INT8_UNCHECKED"] = "1"
        model = build_model(tmp)
        topic = export_task(load_classifier(model, device="cpu", precision="fp32"), "topic", tmp / "topic")
        stance = export_task(load_classifier(model, device="cpu", precision="fp32"), "stance", tmp / "stance")
        source = tmp / "archive.jsonl"
        tokens = build_archive(source, AutoTokenizer.from_pretrained(str(model)), args.articles)
        # the one-time export and quantisation (int8) or conversion (OpenVINO), cached outside the timed runs
        warm = tmp / "warm.jsonl"
        warm.write_text(source.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
        openvino = [m for m in modes if m.startswith("openvino-")][:1]  # both modes read one converted graph
        for mode in ["int8"] * ("int8" in modes) + openvino:
            _run(SCORE, str(model), str(warm), str(tmp / "warm-out.jsonl"), mode, str(args.threads), args.device)
        rounds = [_round(r, modes, tmp, model, topic, stance, source, args) for r in range(args.rounds)]
        names = list(rounds[0])
        bound = None if args.no_bound else _bound(rounds, modes, args)
        profile = _profile(rounds, modes, tmp, model, source, args) if args.profile else None
    summary = {
        name: {
            "articles_per_second_median": statistics.median(r[name]["articles_per_second"] for r in rounds),
            "ratio_to_pipelines_per_round": [round(r[name]["ratio_to_pipelines"], 3) for r in rounds],
            "peak_rss_mb_max": max(r[name]["peak_rss_mb"] for r in rounds),
        }
        for name in names
    }
    flags = speed_flags()
    record = {
        "what": "articles/s of the whole command (model load included) on a synthetic archive, AraBERT-base size",
        "articles": args.articles,
        "tokens_per_article": {
            "median": statistics.median(tokens),
            "over_512": sum(t > 512 for t in tokens),
            "library_mean_tokens_read_basis": "n_tokens column of the scores",
        },
        "rounds": rounds,
        "summary": summary,
        "bound": bound,
        "profile": profile,
        "threads": args.threads,
        "device": args.device,
        "gpu": _gpu_name(args.device),
        "cpu": cpu_name(),
        "cpu_flags": flags,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "command": "python benchmarks/bench_scoring.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_result(Path(args.out), record)
    for name in names:
        s = summary[name]
        share = (bound or {}).get("share_of_bound", {}).get(name)
        print(
            f"{name:10} {s['articles_per_second_median']:7.2f} articles/s  ratio per round "
            f"{s['ratio_to_pipelines_per_round']}  peak RSS {s['peak_rss_mb_max']:.0f} MB"
            + (f"  {share:.0%} of its bound" if share is not None else "")
        )
    if bound:
        print(
            "bound (articles/s, matrix products only): "
            + ", ".join(f"{k} {v['articles_per_second']}" for k, v in bound["by_dtype"].items())
        )
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
