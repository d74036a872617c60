"""Training throughput: padding to the maximum length vs dynamic padding vs dynamic padding with length
grouping, in fp32 and in bf16 autocast, side by side in one run.

    .venv/bin/python benchmarks/bench_training.py --encoder /tmp/e5-small-hf \\
        --data ../shared/data/ant_multisource/train.jsonl --rows 512 --max-length 256 --steps 12

Each setting runs the library's own training step (windows from ``ArticleWindower``, batches from
``collate_articles``, the order from the trainer's sampler, ``MultiTaskClassifier`` loss, AdamW) for the
same number of optimiser steps on the same rows, after two warm-up steps. Reported: article tokens per
second (real tokens, padding excluded), padded tokens per second, and the share of padding. Results go to
``benchmarks/results/training.json``; the data file is read by path and never copied.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import write_result

ROOT = Path(__file__).resolve().parent.parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", required=True, help="a transformers encoder directory")
    parser.add_argument("--data", required=True, help="a .jsonl file with a text column and a label column")
    parser.add_argument("--label-column", default="topic")
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "training.json"))
    return parser


def _timed_steps(
    model, plan, articles, targets, windower, dynamic: bool, precision: str, args
) -> tuple[float, int, int]:
    """Training steps over ``plan`` (batches of row indices); seconds, real and padded tokens after two warm-ups."""
    import torch

    from aranews.inference.inputs import collate_articles

    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
    real = padded = 0
    started = time.perf_counter()
    for step, indices in enumerate(plan):
        if step == 2:
            started, real, padded = time.perf_counter(), 0, 0
        batch = collate_articles([articles[i] for i in indices], windower.pad_token_id)
        if not dynamic:
            batch = _pad_to(batch, args.max_length, windower.pad_token_id)
        real += int(batch["attention_mask"].sum())
        padded += batch["input_ids"].numel()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = model(**batch, labels={"task": targets[indices]})
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return time.perf_counter() - started, real, padded


def _pad_to(batch: dict, length: int, pad_token_id: int) -> dict:
    """A batch padded to ``length`` tokens (the fixed-length padding being compared)."""
    import torch

    extra = length - batch["input_ids"].shape[1]
    if extra <= 0:
        return batch
    pad = {"input_ids": pad_token_id, "attention_mask": 0, "token_type_ids": 0}
    return {k: torch.nn.functional.pad(v, (0, extra), value=pad[k]) if k in pad else v for k, v in batch.items()}


def main() -> None:
    args = build_parser().parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch
    from transformers import AutoTokenizer

    from aranews.inference.config import LongDocumentConfig, ModelConfig, TaskSpec
    from aranews.inference.inputs import ArticleWindower
    from aranews.inference.modeling import MultiTaskClassifier
    from aranews.inference.runtime import cpu_name, cpu_supports_bf16, speed_flags
    from aranews.training.trainer import _EpochSampler

    with open(args.data, encoding="utf-8") as handle:
        rows = [json.loads(line) for line, _ in zip(handle, range(args.rows), strict=False)]
    labels = sorted({r[args.label_column] for r in rows})
    task = TaskSpec("task", labels)
    model_config = ModelConfig(
        encoder=args.encoder, max_length=args.max_length, long_document=LongDocumentConfig(strategy="head")
    )
    tokenizer = AutoTokenizer.from_pretrained(args.encoder)
    windower = ArticleWindower.from_config(model_config, tokenizer)
    articles = windower.encode([r["text"] for r in rows])
    targets = torch.tensor([labels.index(r[args.label_column]) for r in rows])
    lengths = [sum(len(w) for w in a.input_ids) for a in articles]

    def batches(grouped: bool):
        sampler = _EpochSampler(len(rows), 0, lengths if grouped else None, args.batch_size)
        order = list(sampler)
        return [order[i : i + args.batch_size] for i in range(0, len(order), args.batch_size)]

    settings = [("max_length", False, False), ("dynamic", False, True), ("dynamic+grouped", True, True)]
    precisions = ["fp32"] + (["bf16"] if cpu_supports_bf16() else [])
    results = []
    for precision in precisions:
        for name, grouped, dynamic in settings:
            torch.manual_seed(0)
            model = MultiTaskClassifier.from_encoder(model_config, [task]).train()
            plan = batches(grouped)[: args.steps + 2]
            seconds, real, padded = _timed_steps(model, plan, articles, targets, windower, dynamic, precision, args)
            record = {
                "precision": precision,
                "padding": name,
                "steps": len(plan) - 2,
                "seconds": round(seconds, 2),
                "tokens_per_second": round(real / seconds, 1),
                "padded_tokens_per_second": round(padded / seconds, 1),
                "padding_share": round(1 - real / padded, 3),
            }
            results.append(record)
            print(
                f"{precision:5} {name:16} {record['tokens_per_second']:8.1f} tokens/s "
                f"(padded {record['padded_tokens_per_second']:8.1f}/s, padding {record['padding_share']:.0%})",
                flush=True,
            )
    reference = results[0]["tokens_per_second"]
    for r in results:
        r["ratio_to_fp32_max_length"] = round(r["tokens_per_second"] / reference, 2)
    out = {
        "encoder": args.encoder,
        "data": args.data,
        "rows": len(rows),
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "mean_tokens": sum(lengths) / len(lengths),
        "results": results,
        "cpu": cpu_name(),
        "cpu_flags": speed_flags(),
        "threads": torch.get_num_threads(),
        "command": "python benchmarks/bench_training.py " + " ".join(sys.argv[1:]),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_result(Path(args.out), out)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
