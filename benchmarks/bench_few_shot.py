"""Learning curves with few labels: the library's recipes, TF-IDF and SetFit on the same rows.

    .venv/bin/python benchmarks/bench_few_shot.py --dataset ../shared/data/ant_multisource --task topic \
        --encoder runs/demo/e5-small --shots 8 16 32 --seeds 13 14 15

For each ``n`` in ``--shots`` and each seed, ``n`` training rows per label are drawn from the train split
(stratified; a label with fewer rows gives all it has), and each contender is trained on exactly those rows
and scored (macro-F1) on the whole dev split (rows that repeat a training row's text are dropped from dev,
as in ``bench_quality.py``):

* ``tfidf``: the library's TF-IDF + logistic-regression baseline;
* ``standard``: the library's standard recipe (``training.recipe: standard``: ``--epochs`` epochs, the best
  epoch on dev kept, early stopping) -- it selects on the very dev split it is scored on, so its figure is
  optimistic;
* ``few_shot``: the library's few-shot recipe without its contrastive stage (``training.recipe: few_shot``,
  ``few_shot_contrastive_steps: 0``: heads started from label centroids, a fixed number of steps training the
  whole model, the last model kept: dev is not used for any choice);
* ``few_shot_contrastive``: the few-shot recipe as it is by default: its contrastive stage first
  (``training.few_shot_contrastive_steps: --contrastive-steps``, the library's default unless given: SetFit's
  pair objective on the encoder, at SetFit's body learning rate 2e-5), then the same head start and steps,
  training the heads only; its runs are told apart by their number of pair steps
  (``few_shot_contrastive/<steps>`` in the summary), and ``--keep`` reruns a draw only for another number;
* ``few_shot_soup``: the seed lottery (``training.seeds: [s, s+1000, s+2000]``, ``seed_selection: soup``) of
  the few-shot recipe on the draw of seed ``s``: three runs from one start, their weights averaged; the run
  records each of the three runs' own dev macro-F1 too (the spread *without* the lottery, on the same rows);
* ``setfit``: SetFit 1.2 with the same encoder as its body (mean pooling), ``TrainingArguments(batch_size=16,
  num_epochs=1, max_length=--max-length)`` -- its defaults otherwise, logistic-regression head; one epoch of
  its pairs is ~120 steps at 8 rows per label of 6 labels and ~480 at 16 (``--setfit-max-steps`` caps it, and
  a cap also sets the exact number: SetFit then runs that many). Pair-conditioned rows are given to it as
  ``"<pair> | <text>"``.

The library's recipes read a long article as the library does by default (``head_tail``: a quarter of the
window from the start, the rest from the end); ``--long-document head`` reads its start only, as SetFit does
(its runs get a column of their own, ``+head``), ``--long-document chunks`` reads all of it in up to
``--max-chunks`` windows, their logits pooled by ``--chunk-pooling`` (``+chunks/<max>/<pooling>``). ``--pairs setfit``
gives the contrastive stage SetFit's pair set (``training.few_shot_pairs: setfit``; column tail ``+setfit-pairs``).
``--pair-encoding bi`` encodes a claim apart from the article (``model.pair_encoding: bi``; ``+bi``), ``similarity``
also, its head reading the claim's cosines to the article only (``+similarity``).

Writes ``benchmarks/results/few_shot-<data>-<task>.json`` (every run, then mean and spread per contender and
``n``) with the machine's processor and the wall time of each run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_quality import _write, train_and_dev
from results_io import write_result

ROOT = Path(__file__).resolve().parent.parent
CONTENDERS = ("tfidf", "standard", "few_shot", "few_shot_contrastive", "few_shot_soup", "setfit")
LIBRARY_CONTENDERS = ("standard", "few_shot", "few_shot_contrastive", "few_shot_soup")  # trained by the library


def _library_contrastive_steps() -> int:
    from aranews.training.config import TrainingConfig

    return TrainingConfig.__dataclass_fields__["few_shot_contrastive_steps"].default


def label(run: dict[str, Any]) -> str:
    """The column a run belongs to: its contender, for the contrastive recipe its number of pair steps (runs
    made before the field was recorded had 100, the default then), and ``+embeddings`` / ``+<precision>`` when
    the library's recipe ran with ``--train-embeddings`` / another ``--mixed-precision`` / ``--long-document``,
    ``+setfit-pairs`` with ``--pairs setfit``, ``+bi`` / ``+similarity`` with ``--pair-encoding``, ``+heads-only`` / ``+encoder``
    with ``--train-encoder``, ``+<k>steps`` with ``--few-shot-steps`` other than 100."""
    tail = "+embeddings" if run.get("train_embeddings") else ""
    tail += f"+{run['mixed_precision']}" if run.get("mixed_precision", "auto") != "auto" else ""
    tail += f"+{run['long_document']}" if run.get("long_document", "head_tail") not in ("head_tail", "chunks") else ""
    tail += f"+chunks/{run['max_chunks']}/{run['chunk_pooling']}" if run.get("long_document") == "chunks" else ""
    tail += f"+{run['pair_encoding']}" if run.get("pair_encoding", "cross") != "cross" else ""
    tail += {"no": "+heads-only", "yes": "+encoder"}.get(run.get("train_encoder", "auto"), "")
    tail += f"+{run['few_shot_steps']}steps" if run.get("few_shot_steps", 100) != 100 else ""
    tail += "+setfit-pairs" if run.get("pairs", "sampled") != "sampled" else ""
    if run["contender"] != "few_shot_contrastive":
        return run["contender"] + tail
    return f"few_shot_contrastive/{run.get('contrastive_steps', 100)}{tail}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, help="a folder with train.jsonl and dev.jsonl")
    parser.add_argument("--task", required=True)
    parser.add_argument("--pair-column")
    parser.add_argument("--encoder", required=True)
    parser.add_argument("--shots", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15])
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--pooling", choices=["cls", "mean"], default="mean")
    parser.add_argument("--preprocessing", nargs="*", default=["strip_boilerplate", "arabert_v02"])
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--head-learning-rate", type=float, help="default: --learning-rate")
    parser.add_argument("--epochs", type=int, default=10, help="standard recipe")
    parser.add_argument("--early-stopping", type=int, default=3, help="standard recipe")
    parser.add_argument("--few-shot-steps", type=int, default=100)
    parser.add_argument(
        "--contrastive-steps",
        type=int,
        default=_library_contrastive_steps(),
        help="few_shot_contrastive's pair steps (default: the library's, training.few_shot_contrastive_steps)",
    )
    parser.add_argument(
        "--setfit-max-steps", type=int, default=-1, help="cap SetFit's body steps (default -1: its one epoch of pairs)"
    )
    parser.add_argument("--standard-seeds", type=int, nargs="*", help="run the standard recipe on these seeds only")
    parser.add_argument("--setfit-seeds", type=int, nargs="*", help="run SetFit on these seeds only")
    parser.add_argument(
        "--keep", help="an earlier result file of the same data set and task: its runs are kept, not run again"
    )
    parser.add_argument(
        "--train-embeddings",
        action="store_true",
        help="the library's recipes train the word embeddings too (as SetFit does; default: frozen)",
    )
    parser.add_argument(
        "--mixed-precision",
        default="auto",
        choices=["auto", "no", "bf16"],
        help="the library's recipes' training.mixed_precision (default auto: bf16 where the CPU has it)",
    )
    parser.add_argument(
        "--long-document",
        default="head_tail",
        choices=["head_tail", "head", "chunks"],
        help="how the library's recipes read an article longer than the window (default head_tail: a quarter of "
        "it from the start, the rest from the end; SetFit reads the head; chunks: windows over the whole article)",
    )
    parser.add_argument("--max-chunks", type=int, default=8, help="with --long-document chunks: windows per article")
    parser.add_argument("--chunk-pooling", choices=["mean", "max"], default="max", help="with --long-document chunks")
    parser.add_argument(
        "--train-encoder",
        choices=["auto", "yes", "no"],
        default="auto",
        help="the few-shot recipes' training.few_shot_train_encoder (default auto: not after a contrastive stage)",
    )
    parser.add_argument(
        "--pair-encoding",
        choices=["cross", "bi", "similarity"],
        default="cross",
        help="the library's model.pair_encoding for a --pair-column task (default cross: claim and article in one "
        "sequence; bi: the claim encoded apart, each article window read beside it; similarity: the same, the head "
        "reading the claim's cosines to the article's windows only)",
    )
    parser.add_argument(
        "--pairs",
        default="sampled",
        choices=["sampled", "setfit"],
        help="few_shot_contrastive's training.few_shot_pairs (default sampled; setfit: SetFit's pair set, walked "
        "without replacement, self-pairs included)",
    )
    parser.add_argument(
        "--probe-heads",
        action="store_true",
        help="few_shot_contrastive: also score logistic-regression heads on the trained encoder's features",
    )
    parser.add_argument(
        "--prior-shift",
        action="store_true",
        help="the library's recipes: also score their posteriors moved from the training rows' label shares to dev's, "
        "estimated by EM from dev's texts alone and (an oracle) dev's true shares",
    )
    parser.add_argument("--out")
    return parser


def _sample(rows: list[dict], task: str, n: int, seed: int) -> list[dict]:
    by_label: dict[str, list[dict]] = {}
    for row in rows:
        by_label.setdefault(str(row[task]), []).append(row)
    rng = random.Random(seed)
    picked = [r for label in sorted(by_label) for r in rng.sample(by_label[label], min(n, len(by_label[label])))]
    rng.shuffle(picked)
    return picked


def _long_document(args: argparse.Namespace) -> dict[str, Any]:
    strategy = getattr(args, "long_document", "head_tail")
    if strategy == "head_tail":
        return {"strategy": "head_tail", "head_tokens": args.max_length // 4}
    if strategy == "chunks":
        return {"strategy": "chunks", "max_chunks": args.max_chunks, "stride": args.max_length // 8,
                "chunk_pooling": args.chunk_pooling}  # fmt: skip
    return {"strategy": strategy}


def library_config(
    args: argparse.Namespace, tmp: Path, name: str, seed: int, *, train: str = "train.jsonl",
    dev: str = "dev.jsonl", task: dict[str, Any] | None = None, **training: Any,
) -> dict[str, Any]:  # fmt: skip
    """The experiment every benchmark of the few-label regime trains: the rows in ``tmp``, the encoder and
    windows of ``args``, CPU, no report; ``training`` adds to or replaces the training settings."""
    task = {"name": args.task, **(task or {})}
    if args.pair_column:
        task["pair_column"] = args.pair_column
    return {
        "data": {"train": f"{tmp}/{train}", "dev": f"{tmp}/{dev}", "title_column": None},
        "tasks": [task],
        "model": {
            "encoder": args.encoder,
            "preprocessing": args.preprocessing,
            "max_length": args.max_length,
            "pair_max_length": min(
                64, args.max_length // (2 if getattr(args, "pair_encoding", "cross") != "cross" else 4)
            ),
            "long_document": _long_document(args),
            "pooling": args.pooling,
            "pair_encoding": getattr(args, "pair_encoding", "cross"),
        },
        "training": {
            "output_dir": f"{tmp}/{name}",
            "batch_size": 16,
            "eval_batch_size": 64,
            "learning_rate": args.learning_rate,
            "head_learning_rate": getattr(args, "head_learning_rate", None),
            "freeze_embeddings": not getattr(args, "train_embeddings", False),
            "mixed_precision": getattr(args, "mixed_precision", "auto"),
            "seed": seed,
            "resume": False,
            "progress": False,
            "device": "cpu",
            "report": False,
            "baseline": False,
            **training,
        },
    }


def _probe_heads(model: Path, train: list[dict], dev: list[dict], args: argparse.Namespace) -> dict[str, Any]:
    """Dev macro-F1 of other heads on the trained encoder's article features (the ones its heads read): SetFit's
    head (logistic regression, its defaults) and a logistic regression on standardised features with ``C`` by
    cross-validation on the training rows -- which part of a gap to SetFit is the head's."""
    from bench_window import embed, probe
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    x_train, _ = embed(model, train, args.task, args.pair_column)
    x_dev, _ = embed(model, dev, args.task, args.pair_column)
    y_train, y_dev = [str(r[args.task]) for r in train], [str(r[args.task]) for r in dev]
    labels = sorted(set(y_train) | set(y_dev))
    setfit_head = LogisticRegression(max_iter=1000).fit(x_train, y_train)
    return {
        "logistic_c1": round(float(f1_score(y_dev, setfit_head.predict(x_dev), labels=labels, average="macro")), 4),
        "logistic_cv": round(probe(x_train, y_train, x_dev, y_dev, labels)["macro_f1"], 4),
    }


def _prior_shift(model: Path, train: list[dict], dev: list[dict], args: argparse.Namespace) -> dict[str, Any]:
    """Dev macro-F1 of the kept model's posteriors moved by Bayes' rule from the training rows' label shares (even,
    in a stratified draw) to dev's: to the shares EM estimates from dev's posteriors alone (Saerens et al. 2002;
    no dev label is read: what scoring an archive could do) and to dev's true shares (an oracle, the bound)."""
    import numpy as np
    from sklearn.metrics import f1_score

    from aranews.inference import load_classifier
    from aranews.inference.shares import em_prior, shifted

    classifier = load_classifier(model)
    labels = list(classifier.labels[args.task])
    pairs = {args.pair_column: [r[args.pair_column] for r in dev]} if args.pair_column else None
    probs = classifier.predict_proba([r["text"] for r in dev], pairs=pairs, tasks=[args.task], score_non_arabic=True)[
        args.task
    ]
    truth = [str(r[args.task]) for r in dev]

    def shares(rows: list[dict]) -> np.ndarray:
        counts = np.array([sum(str(r[args.task]) == name for r in rows) for name in labels], dtype=np.float64)
        return counts / counts.sum()

    def f1(p: np.ndarray) -> float:
        return round(float(f1_score(truth, [labels[i] for i in p.argmax(1)], labels=labels, average="macro")), 4)

    source = shares(train)
    estimated = em_prior(probs, source)
    return {
        "raw": f1(probs),
        "em": f1(shifted(probs, source, estimated)),
        "oracle": f1(shifted(probs, source, shares(dev))),
        "em_shares": dict(zip(labels, np.round(estimated, 3).tolist(), strict=True)),
        "dev_shares": dict(zip(labels, np.round(shares(dev), 3).tolist(), strict=True)),
    }


def _library(recipe: str, tmp: Path, args: argparse.Namespace, seed: int) -> tuple[float, dict]:
    """Train with the library's ``recipe``; the dev macro-F1 of the model it keeps."""
    from aranews.training.config import config_from_dict
    from aranews.training.trainer import Trainer

    lottery = {"seeds": [seed, seed + 1000, seed + 2000], "seed_selection": "soup"} if recipe == "few_shot_soup" else {}
    weights = getattr(args, "class_weights", None)
    config = library_config(
        args,
        tmp,
        f"run-{recipe}",
        seed,
        task={"class_weights": weights} if weights else None,
        recipe="few_shot" if recipe.startswith("few_shot") else recipe,
        few_shot_contrastive_steps=(
            getattr(args, "contrastive_steps", _library_contrastive_steps()) if recipe == "few_shot_contrastive" else 0
        ),
        epochs=getattr(args, "epochs", 10),
        early_stopping_patience=getattr(args, "early_stopping", 3),
        few_shot_steps=args.few_shot_steps,
        few_shot_pairs=getattr(args, "pairs", "sampled"),
        few_shot_train_encoder={"auto": None, "yes": True, "no": False}[getattr(args, "train_encoder", "auto")],
        **lottery,
    )
    metrics = Trainer(config_from_dict(config)).train().metrics
    extra = {"epochs": len(metrics["epochs"]), "recipe": metrics["recipe"]}
    if "seeds" in metrics["recipe"]:
        extra["seed_runs"] = [r["dev_score"] for r in metrics["recipe"]["seeds"]["runs"]]
    return metrics["dev"][args.task]["macro_f1"], extra


def _tfidf(train: list[dict], dev: list[dict], args: argparse.Namespace, seed: int) -> float:
    """The library's TF-IDF baseline on the same rows (with the transformer's preprocessing)."""
    from sklearn.metrics import f1_score

    from aranews.inference.config import TaskSpec
    from aranews.training.baseline import TfidfBaseline

    labels = sorted({str(r[args.task]) for r in train} | {str(r[args.task]) for r in dev})
    task = TaskSpec(args.task, labels)
    baseline = TfidfBaseline(args.preprocessing, seed=seed)

    def pairs(rows: list[dict]) -> list[str] | None:
        return [r[args.pair_column] for r in rows] if args.pair_column else None

    baseline.fit(task, [r["text"] for r in train], [str(r[args.task]) for r in train], pairs(train))
    probs = baseline.predict_proba(args.task, [r["text"] for r in dev], pairs(dev))
    predicted = [labels[i] for i in probs.argmax(1)]
    return float(f1_score([str(r[args.task]) for r in dev], predicted, labels=labels, average="macro"))


def _setfit(train: list[dict], dev: list[dict], args: argparse.Namespace, seed: int) -> tuple[float, dict]:
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments
    from sklearn.metrics import f1_score

    def text(row: dict) -> str:
        return f"{row[args.pair_column]} | {row['text']}" if args.pair_column else row["text"]

    labels = sorted({str(r[args.task]) for r in train} | {str(r[args.task]) for r in dev})
    model = SetFitModel.from_pretrained(args.encoder, labels=labels)
    model.model_body.max_seq_length = args.max_length
    data = Dataset.from_dict({"text": [text(r) for r in train], "label": [str(r[args.task]) for r in train]})
    training = TrainingArguments(
        batch_size=16, num_epochs=1, max_length=args.max_length, max_steps=args.setfit_max_steps, seed=seed,
        report_to="none", show_progress_bar=False, save_strategy="no", output_dir=str(Path(tempfile.gettempdir()) / "setfit"),
    )  # fmt: skip
    trainer = Trainer(model=model, args=training, train_dataset=data)
    trainer.train()
    predicted = model.predict([text(r) for r in dev], batch_size=64, as_numpy=True)
    score = f1_score([str(r[args.task]) for r in dev], [str(p) for p in predicted], average="macro")
    return float(score), {"steps": int(trainer.state.global_step) if hasattr(trainer, "state") else None}


def _draw(train_rows, dev_rows, n: int, seed: int, args, tmp: Path, done: set) -> list[dict]:
    train = _sample(train_rows, args.task, n, seed)
    _write(tmp / "train.jsonl", train)
    _write(tmp / "dev.jsonl", dev_rows)
    runs = []
    only = {"standard": args.standard_seeds, "setfit": args.setfit_seeds}
    for contender in args.contenders:
        steps = {"contrastive_steps": args.contrastive_steps} if contender == "few_shot_contrastive" else {}
        steps |= {"pairs": args.pairs} if contender == "few_shot_contrastive" and args.pairs != "sampled" else {}
        if contender in LIBRARY_CONTENDERS:
            steps |= {"train_embeddings": True} if args.train_embeddings else {}
            steps |= {"mixed_precision": args.mixed_precision} if args.mixed_precision != "auto" else {}
            steps |= {"long_document": args.long_document} if args.long_document != "head_tail" else {}
            if args.long_document == "chunks":
                steps |= {"max_chunks": args.max_chunks, "chunk_pooling": args.chunk_pooling}
            steps |= {"pair_encoding": args.pair_encoding} if args.pair_encoding != "cross" else {}
            steps |= {"train_encoder": args.train_encoder} if args.train_encoder != "auto" else {}
            steps |= {"few_shot_steps": args.few_shot_steps} if args.few_shot_steps != 100 else {}
        column = label({"contender": contender, **steps})
        if (only.get(contender) and seed not in only[contender]) or (column, n, seed) in done:
            continue
        started = time.perf_counter()
        extra: dict[str, Any] = {}
        if contender == "setfit":
            score, extra = _setfit(train, dev_rows, args, seed)
        elif contender == "tfidf":
            score = _tfidf(train, dev_rows, args, seed)
        else:
            score, extra = _library(contender, tmp, args, seed)
            model = tmp / f"run-{contender}" / "model"
            if args.probe_heads and contender == "few_shot_contrastive":
                extra["probe_heads"] = _probe_heads(model, train, dev_rows, args)
            if args.prior_shift:
                extra["prior_shift"] = _prior_shift(model, train, dev_rows, args)
        runs.append({"contender": contender, "n": n, "seed": seed, "train_rows": len(train), "macro_f1": round(score, 4),
                     "seconds": round(time.perf_counter() - started, 1), **steps, **extra})  # fmt: skip
        print(f"n={n} seed={seed} {contender}: macro-F1 {score:.3f} ({runs[-1]['seconds']:.0f} s)", flush=True)
    return runs


def summary(runs: list[dict]) -> dict[str, Any]:
    """Mean and spread of the dev macro-F1 per column (:func:`label`) and ``n``, keyed ``"<column>@<n>"``."""
    out: dict[str, Any] = {}
    for key in sorted({(label(r), r["n"]) for r in runs}):
        scores = [r["macro_f1"] for r in runs if (label(r), r["n"]) == key]
        out[f"{key[0]}@{key[1]}"] = {
            "mean": round(statistics.mean(scores), 4),
            "sd": round(statistics.stdev(scores), 4) if len(scores) > 1 else None,
            "min": min(scores),
            "max": max(scores),
            "seeds": len(scores),
        }
    return out


def _save(out: Path, runs: list[dict], dev_rows: list[dict], train_rows: list[dict], args) -> None:
    import importlib.metadata

    from aranews.inference.runtime import cpu_name, speed_flags

    record = {
        "what": "dev macro-F1 with n training rows per label, per contender and seed",
        "dataset": args.dataset,
        "task": args.task,
        "dev_rows": len(dev_rows),
        "labels": sorted({str(r[args.task]) for r in train_rows}),
        "encoder": args.encoder,
        "max_length": args.max_length,
        "runs": runs,
        "summary": summary(runs),
        "versions": {
            p: importlib.metadata.version(p) for p in ("setfit", "sentence-transformers", "transformers", "torch")
        },
        "cpu": cpu_name(),
        "cpu_flags": speed_flags(),
        "commands": [*args.earlier_commands, "python benchmarks/bench_few_shot.py " + " ".join(sys.argv[1:])],
    }
    write_result(out, record)


def main() -> None:
    args = build_parser().parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    dataset = Path(args.dataset)
    train_rows, dev_rows = train_and_dev(dataset, args.pair_column)
    kept = json.loads(Path(args.keep).read_text(encoding="utf-8")) if args.keep else {}
    runs: list[dict] = kept.get("runs", [])
    args.earlier_commands = kept.get("commands") or ([kept["command"]] if "command" in kept else [])
    done = {(label(r), r["n"], r["seed"]) for r in runs}
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"few_shot-{dataset.name}-{args.task}.json")
    with tempfile.TemporaryDirectory() as tmp_name:
        for n in args.shots:
            for seed in args.seeds:
                runs += _draw(train_rows, dev_rows, n, seed, args, Path(tmp_name), done)
                _save(out, runs, dev_rows, train_rows, args)  # after every draw: a kill loses one draw at most
    record = json.loads(out.read_text(encoding="utf-8"))
    for key, s in record["summary"].items():
        print(f"{key:16} {s['mean']:.3f} (sd {s['sd']}, {s['seeds']} seeds)")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
