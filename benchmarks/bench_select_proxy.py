"""The labelling loop of ``bench_select_loop.py`` on a frozen encoder: many seeds in minutes, not hours.

    .venv/bin/python benchmarks/bench_select_proxy.py --dataset ../shared/data/ant_multisource --task topic \
        --encoder runs/demo/e5-small --seeds 20

``bench_select_loop.py`` retrains the few-shot recipe every round (about ten minutes a model on 2 cores), so
it can afford one or two seeds, and a 350-row dev split moves by 0.02 macro-F1 from one seed to the next:
too little to tell picking strategies apart. This proxy keeps what decides the picks and replaces what
costs: the encoder is frozen (its pooled embeddings, with its own prefix, computed once for train and dev
and cached), and each round's model is a logistic-regression head on them (class weights balanced, as the
loop's default). The picks are made by the library's own code (:func:`aranews.inference.selection._pick`:
the ``pool_factor x n`` least certain rows by margin, clustered by k-means into ``n`` clusters, the least
certain of each), with the proxy model's probabilities and embeddings in place of the fine-tuned model's.

Strategies, each from the same first draw per seed (``bench_few_shot._sample``, as the real loop):

* ``random``: rows at random from the rest of train;
* ``select``: ``aranews select``'s defaults (margin, pool 10 x n, k-means diversity);
* ``margin``: the n least certain, no diversity step (``--no-diversity``);
* ``select/3``, ``select/20``, ``select/all``: ``select`` with another pool (3 x n, 20 x n, every row), and
  ``typical+select``: ``typical`` in the first round (the model there has 8 rows per label), ``select`` after
  it; run when named in ``--strategies``;
* ``typical``: TypiClust (Hacohen et al. 2022), the low-budget rule that needs no model: k-means over all
  rows into (labelled + n) clusters, then the most typical unlabelled row (the smallest mean distance to its
  20 nearest neighbours in its cluster) of each cluster with the fewest labelled rows, largest first.

What a proxy cannot say: how the strategies rank when the encoder is fine-tuned every round (its embeddings
and uncertainties move). Read its figures as what the picking rule does with a fixed representation; the
real loop's figures stay the ones of ``bench_select_loop.py``. Writes
``benchmarks/results/select_proxy-<data>-<task>.json``: per strategy the mean curve, its spread, and the
labels it needs to reach random picking's final mean figure (interpolated between rounds).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_few_shot import _sample
from bench_quality import train_and_dev
from results_io import write_result

ROOT = Path(__file__).resolve().parent.parent
STRATEGIES = ("random", "select", "margin", "typical")
VARIANTS = ("select/3", "select/20", "select/all", "typical+select")  # run when asked: --strategies
NEIGHBOURS = 20  # TypiClust's typicality: the inverse mean distance to this many nearest neighbours


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--pair-column")
    parser.add_argument("--encoder", required=True)
    parser.add_argument("--prefix", default="query: ", help="the encoder's input prefix (e5: 'query: ')")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument(
        "--bf16", action="store_true", help="embed under bf16 autocast (fast where the CPU has avx512_bf16 or AMX)"
    )
    parser.add_argument("--start", type=int, default=8, help="labelled rows per label to start from")
    parser.add_argument("--add", type=int, default=24, help="rows added per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=20, help="how many seeds (13, 14, ...)")
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES + VARIANTS, default=list(STRATEGIES))
    parser.add_argument("--cache", help="an .npz of the embeddings: read when it exists, else written")
    parser.add_argument("--out")
    return parser


def _text(row: dict[str, Any], pair_column: str | None, prefix: str) -> str:
    return prefix + (f"{row[pair_column]} | " if pair_column else "") + str(row["text"])


def embed(encoder: str, texts: list[str], max_length: int, bf16: bool = False, batch_size: int = 32) -> np.ndarray:
    """Mean-pooled, unit-length embeddings of ``texts`` by the frozen ``encoder`` (under bf16 autocast if asked)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(encoder)
    model = AutoModel.from_pretrained(encoder).eval()
    out = []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size], truncation=True, max_length=max_length, padding=True,
                return_tensors="pt",
            )  # fmt: skip
            states = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            out.append(((states * mask).sum(1) / mask.sum(1)).float().numpy())
    x = np.concatenate(out) if out else np.zeros((0, 1), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)


def _margin(probs: np.ndarray) -> np.ndarray:
    top = np.sort(probs, axis=1)
    return 1.0 - (top[:, -1] - top[:, -2])


def _pick_like_select(
    probs: np.ndarray, x: np.ndarray, n: int, seed: int, diversity: bool, pool_factor: int | None = 10
) -> list[int]:
    """Positions (into ``probs``' rows) picked by the library's ``_pick`` from the ``pool_factor x n`` least
    certain (every row: ``None``)."""
    from aranews.inference.selection import Candidate, _pick

    uncertain = _margin(probs)
    order = np.argsort(-uncertain, kind="stable")[: None if pool_factor is None else pool_factor * n]
    pool = [Candidate(int(i), {}, float(uncertain[i]), {}, {}, x[i]) for i in order]
    return [c.order for c in _pick(pool, {}, n, diversity, seed)]


def _typical(x: np.ndarray, labelled: np.ndarray, unlabelled: np.ndarray, n: int, seed: int) -> list[int]:
    """TypiClust: rows (indices into ``x``) from the least covered clusters, the most typical of each."""
    from aranews.inference.selection import _kmeans

    rows = np.concatenate([labelled, unlabelled])
    k = len(labelled) + n
    clusters = _kmeans(x[rows], k, seed)
    covered = np.bincount(clusters[: len(labelled)], minlength=k)
    sizes = np.bincount(clusters, minlength=k)
    members = {c: list(rows[len(labelled) :][clusters[len(labelled) :] == c]) for c in range(k)}
    picks: list[int] = []
    for _ in range(n):
        open_clusters = [c for c in range(k) if members[c]]
        if not open_clusters:
            break
        c = min(open_clusters, key=lambda c: (covered[c], -sizes[c], c))
        member = np.array(members[c])
        near = min(NEIGHBOURS, len(member) - 1)
        if near < 1:
            best = int(member[0])
        else:
            points = x[member]
            distance = np.sqrt(np.maximum(2.0 - 2.0 * points @ points.T, 0.0))
            best = int(member[int(np.argmin(np.sort(distance, axis=1)[:, 1 : near + 1].mean(axis=1)))])
        picks.append(best)
        members[c].remove(best)
        covered[c] += 1
    return picks


def _curve(strategy: str, data: dict[str, np.ndarray], first: np.ndarray, seed: int, args) -> list[float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    xt, yt, xd, yd = data["xt"], data["yt"], data["xd"], data["yd"]
    rng = np.random.default_rng(seed)
    labelled, curve = first.copy(), []
    for round_ in range(args.rounds + 1):
        model = LogisticRegression(C=10.0, class_weight="balanced", max_iter=2000).fit(xt[labelled], yt[labelled])
        curve.append(float(f1_score(yd, model.predict(xd), average="macro")))
        if round_ == args.rounds:
            break
        rest = np.setdiff1d(np.arange(len(yt)), labelled)
        n = min(args.add, len(rest))
        if strategy == "random":
            added = list(rng.choice(rest, n, replace=False))
        elif strategy == "typical" or (strategy == "typical+select" and round_ == 0):
            added = _typical(xt, labelled, rest, n, seed)
        else:
            factor = {"select/3": 3, "select/20": 20, "select/all": None}.get(strategy, 10)
            positions = _pick_like_select(
                model.predict_proba(xt[rest]), xt[rest], n, seed, strategy != "margin", factor
            )
            added = [int(rest[p]) for p in positions]
        labelled = np.concatenate([labelled, np.array(added, dtype=np.int64)])
    return curve


def labels_to_reach(curve: list[float], used: list[int], target: float) -> float | None:
    """Labels at which ``curve`` (mean figure per round) first reaches ``target``, linear between rounds."""
    if curve[0] >= target:
        return float(used[0])
    for i in range(1, len(curve)):
        if curve[i] >= target:
            return used[i - 1] + (used[i] - used[i - 1]) * (target - curve[i - 1]) / (curve[i] - curve[i - 1])
    return None


def share_interval(runs: list[list[float]], random_runs: list[list[float]], used: list[int], draws: int = 2000):
    """A 90% interval of the share of random's labels a strategy needs to reach random's final mean figure,
    by a bootstrap over seeds (both curves of a seed resampled together: they share the first draw). A draw
    in which the strategy never reaches it counts as more than 100% (``None`` when the bound is one of them)."""
    rng = np.random.default_rng(0)
    runs_, random_ = np.asarray(runs), np.asarray(random_runs)
    shares = []
    for _ in range(draws):
        pick = rng.integers(len(runs_), size=len(runs_))
        reach = labels_to_reach(list(runs_[pick].mean(axis=0)), used, float(random_[pick].mean(axis=0)[-1]))
        shares.append(np.inf if reach is None else reach / used[-1])
    low, high = np.quantile(shares, [0.05, 0.95], method="inverted_cdf")  # no interpolation with inf
    return [None if not np.isfinite(b) else round(float(b), 3) for b in (low, high)]


def _data(args, labels: list[str], train: list[dict], dev: list[dict]) -> dict[str, np.ndarray]:
    cache = Path(args.cache) if args.cache else None
    # what the embeddings depend on: a cache made with other rows, encoder or windows is not read
    key = json.dumps([args.encoder, args.max_length, args.prefix, args.bf16, args.pair_column, args.task,
                      [str(r["id"]) for r in train + dev]])  # fmt: skip
    if cache and cache.exists():
        data = dict(np.load(cache))
        if str(data.get("key", "")) == key:
            return data
        print(f"{cache}: embeddings of other rows or settings; computing them again", flush=True)
    texts = [_text(r, args.pair_column, args.prefix) for r in train + dev]
    x = embed(args.encoder, texts, args.max_length, args.bf16)
    data = {
        "xt": x[: len(train)], "xd": x[len(train) :],
        "yt": np.array([labels.index(str(r[args.task])) for r in train]),
        "yd": np.array([labels.index(str(r[args.task])) for r in dev]),
        "key": np.array(key),
    }  # fmt: skip
    if cache:
        np.savez(cache, **data)
    return data


def main() -> None:
    args = build_parser().parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from aranews.inference.runtime import cpu_name, speed_flags

    dataset = Path(args.dataset)
    train, dev = train_and_dev(dataset, args.pair_column)
    labels = sorted({str(r[args.task]) for r in train})
    started = time.perf_counter()
    data = _data(args, labels, train, dev)
    embedded = time.perf_counter() - started
    position = {str(r["id"]): i for i, r in enumerate(train)}
    seeds = list(range(13, 13 + args.seeds))
    curves: dict[str, list[list[float]]] = {s: [] for s in args.strategies}
    for seed in seeds:
        first = np.array([position[str(r["id"])] for r in _sample(train, args.task, args.start, seed)])
        for strategy in args.strategies:
            curves[strategy].append(_curve(strategy, data, first, seed, args))
    used = [len(first) + args.add * r for r in range(args.rounds + 1)]
    target = float(np.mean(curves["random"], axis=0)[-1]) if "random" in curves else None
    summary: dict[str, Any] = {}
    for strategy, runs in curves.items():
        mean = np.mean(runs, axis=0)
        reach = labels_to_reach(list(mean), used, target) if target is not None else None
        summary[strategy] = {
            "mean": [round(float(v), 4) for v in mean],
            "sd": [round(float(v), 4) for v in np.std(runs, axis=0, ddof=1)],
            "labels_to_reach_randoms_final": None if reach is None else round(reach, 1),
            "share_of_randoms_labels": None if reach is None else round(reach / used[-1], 3),
        }
        if target is not None and strategy != "random":
            summary[strategy]["share_90_interval"] = share_interval(runs, curves["random"], used)
        print(
            f"{strategy:8} " + " ".join(f"{v:.3f}" for v in mean)
            + (f"  reaches random's final {target:.3f} at {reach:.0f} of {used[-1]} labels ({reach / used[-1]:.0%})"
               if reach is not None else "  does not reach random's final figure")
        )  # fmt: skip
    record = {
        "what": "the labelling loop on a frozen encoder with a logistic-regression head: dev macro-F1 against "
        "labels used, per picking strategy (a proxy of bench_select_loop.py)",
        "dataset": args.dataset,
        "task": args.task,
        "labels": labels,
        "train_rows": len(train),
        "dev_rows": len(dev),
        "start_per_label": args.start,
        "added_per_round": args.add,
        "rounds": args.rounds,
        "labels_used": used,
        "seeds": seeds,
        "summary": summary,
        "curves": curves,
        "embedding_seconds": round(embedded, 1),
        "cpu": cpu_name(),
        "cpu_flags": speed_flags(),
        "command": "python benchmarks/bench_select_proxy.py " + " ".join(sys.argv[1:]),
    }
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"select_proxy-{dataset.name}-{args.task}.json")
    write_result(out, record)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
