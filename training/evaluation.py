"""Evaluation reports people can read: figures, confusion matrices, calibration, mistakes, a baseline.

``build_report`` writes into a folder::

    report.json                      every figure below, per task, plus the baseline's
    confusion_<task>.png             confusion matrix (counts, rows = true label)
    reliability_<task>.png           reliability diagram (accuracy vs confidence per bin)
    mistakes_<task>.jsonl            the most confident wrong predictions, for error analysis

Figures are computed with scikit-learn (through :mod:`aranews.training.metrics`) from the model's
probabilities; the tests check them against scikit-learn on fixed predictions. Plots are drawn on
``matplotlib.figure.Figure`` objects, never through pyplot, so the caller's backend is left alone.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aranews.inference.classifier import NewsClassifier
from aranews.inference.config import TaskSpec
from aranews.training.baseline import BASELINE_NAME, TfidfBaseline
from aranews.training.data import EncodedSplit, LabelledSplit, encode_split, label_tensor
from aranews.training.metrics import task_report

__all__ = [
    "build_report",
    "calibration",
    "compact",
    "compare_on_split",
    "confident_label_mistakes",
    "confident_mistakes",
    "evaluate_split",
    "predict_split",
    "split_figures",
    "task_figures",
    "tune_thresholds",
]

logger = logging.getLogger(__name__)

N_BINS = 10
THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)


_DETAIL_KEYS = (
    "confusion_matrix",
    "calibration",
    "calibration_before",
    "thresholds",
    "risk_coverage",
)  # in report.json, not in metrics.json


def compact(figures: dict[str, Any]) -> dict[str, Any]:
    """A task's figures without the bulky parts (confusion matrix, calibration table, thresholds)."""
    return {k: v for k, v in figures.items() if k not in _DETAIL_KEYS}


def evaluate_split(
    classifier: NewsClassifier, data: EncodedSplit, accelerator: Any = None
) -> dict[str, dict[str, Any]]:
    """Per task, the compact metric report on the rows of ``data`` that carry that task's label.

    With an ``accelerator`` of several processes, each process scores its own shard of the rows and the
    probabilities are gathered (``gather_for_metrics``), so every process gets the same figures, over
    exactly the split's rows.
    """
    return split_figures(classifier, data, predict_split_sharded(classifier, data, accelerator))


def split_figures(classifier: NewsClassifier, data: EncodedSplit, probs: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per task, the compact metric report of probabilities already computed for every row of ``data``."""
    return {
        task.name: compact(task_figures(task, probs[task.name], data.labels[task.name].numpy()))
        for task in classifier.tasks
    }


def _subset(data: EncodedSplit, rows: list[int]) -> EncodedSplit:
    return EncodedSplit(
        data.split,
        {column: [articles[i] for i in rows] for column, articles in data.groups.items()},
        {name: tensor[rows] for name, tensor in data.labels.items()},
    )


def predict_split_sharded(
    classifier: NewsClassifier, data: EncodedSplit, accelerator: Any = None
) -> dict[str, np.ndarray]:
    """:func:`predict_split`, split across the processes of ``accelerator`` and gathered in row order."""
    if accelerator is None or accelerator.num_processes == 1:
        return predict_split(classifier, data)
    n = len(next(iter(data.groups.values())))
    with accelerator.split_between_processes(list(range(n))) as mine:
        probs = predict_split(classifier, _subset(data, mine)) if mine else {}
        local = [(row, {name: p[k] for name, p in probs.items()}) for k, row in enumerate(mine)]
    gathered = accelerator.gather_for_metrics(local, use_gather_object=True)
    by_row = dict(gathered)  # one entry per row: shards do not overlap and nothing is padded
    if sorted(by_row) != list(range(n)):
        raise RuntimeError(f"sharded evaluation gathered {len(by_row)} of {n} rows")
    return {t.name: np.stack([by_row[i][t.name] for i in range(n)]) for t in classifier.tasks}


def split_logits(classifier: NewsClassifier, data: EncodedSplit) -> dict[str, np.ndarray]:
    """Per task, the raw (uncalibrated) logits of every row of a windowed split (one encoder pass per input)."""
    logits: dict[str, np.ndarray] = {}  # the classifier puts a shared training model in eval mode itself
    for column, names in classifier.config.input_groups().items():
        logits.update(classifier.logits_from_encoded(data.groups[column], names))
    return logits


def predict_split(classifier: NewsClassifier, data: EncodedSplit) -> dict[str, np.ndarray]:
    """Per task, the (calibrated) probability matrix of every row of a windowed split."""
    return {name: classifier.probabilities(name, z) for name, z in split_logits(classifier, data).items()}


def calibration_before_after(
    classifier: NewsClassifier, task: TaskSpec, figures: dict[str, Any], logits: np.ndarray, labels: np.ndarray,
    split_name: str,
) -> None:  # fmt: skip
    """For a task with a saved calibration, the raw model's reliability table (``calibration_before``) and the
    calibrated one measured honestly (``calibration``): on dev cross-fitted, since the saved calibration was
    fitted on dev (each fold calibrated by a fit on the others); on any other split with the saved calibration."""
    if (task.temperature is None and task.bias is None) or "calibration" not in figures:
        return
    from aranews.training.calibration import FOLDS, cross_fitted, nll

    keep = _labelled(task, labels)
    z, truth, multi = logits[keep], labels[keep], not task.kind.one_label_per_row
    raw = classifier.probabilities(task.name, z, False)
    if split_name == "dev":
        after = cross_fitted("bias_corrected" if task.bias is not None else "temperature", z, truth, multi)
        measured = f"cross-fitted on dev ({FOLDS} folds): not fitted on the rows it is measured on"
    else:
        after = classifier.probabilities(task.name, z)
        measured = f"with the calibration fitted on dev, measured once on {split_name}"
    figures["calibration_before"] = calibration(*task.kind.reliability(raw, truth))
    figures["calibration"] = {**calibration(*task.kind.reliability(after, truth)), "measured": measured}
    figures["ece"], figures["ece_before_calibration"] = (
        figures["calibration"]["ece"],
        figures["calibration_before"]["ece"],
    )
    figures["nll"], figures["nll_before_calibration"] = (
        round(nll(after, truth, multi), 4),
        round(nll(raw, truth, multi), 4),
    )


def _labelled(task: TaskSpec, labels: np.ndarray) -> np.ndarray:
    return task.kind.labelled(labels)


def calibration(confidence: np.ndarray, correct: np.ndarray, n_bins: int = N_BINS) -> dict[str, Any]:
    """Expected calibration error over equal-width confidence bins, with the per-bin table.

    ECE = sum over bins of (bin size / n) * |accuracy in bin - mean confidence in bin|.
    """
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = []
    ece = 0.0
    n = len(confidence)
    for lo, hi in itertools.pairwise(edges):
        inside = (confidence > lo) & (confidence <= hi) if lo > 0 else (confidence >= lo) & (confidence <= hi)
        count = int(inside.sum())
        acc = float(correct[inside].mean()) if count else None
        conf = float(confidence[inside].mean()) if count else None
        if count:
            ece += count / n * abs(acc - conf)
        bins.append({"low": float(lo), "high": float(hi), "count": count, "accuracy": acc, "confidence": conf})
    return {"ece": float(ece) if n else None, "n_bins": n_bins, "bins": bins}


TARGET_ACCURACIES = (0.8, 0.9, 0.95)


def risk_coverage(
    probs: np.ndarray, truth: np.ndarray, points: int = 10, targets: Sequence[float] = TARGET_ACCURACIES
) -> dict[str, Any]:
    """Accuracy of the labelled rows against the share labelled, when rows whose top probability is below a level
    get no label (abstention): the curve at ``points`` coverages, and per target accuracy the level to use.

    The level for a target is the lowest top probability that keeps the accuracy of the rows at or above it
    at the target (the most coverage that reaches it), read on this split.
    """
    top, correct = probs.max(1), probs.argmax(1) == truth
    order = np.argsort(-top, kind="stable")
    hits = np.cumsum(correct[order])
    n = len(order)
    curve = []
    for share in np.linspace(1.0 / points, 1.0, points):
        k = max(1, round(share * n))
        curve.append(
            {
                "coverage": round(k / n, 4),
                "accuracy": round(float(hits[k - 1] / k), 4),
                "level": round(float(top[order][k - 1]), 4),
            }
        )
    accuracy = hits / np.arange(1, n + 1)
    levels: dict[str, Any] = {}
    for target in targets:
        reaching = np.flatnonzero(accuracy >= target)
        if len(reaching):
            k = int(reaching.max()) + 1
            levels[str(target)] = {
                "abstain_below": round(float(top[order][k - 1]), 4),
                "coverage": round(k / n, 4),
                "accuracy": round(float(accuracy[k - 1]), 4),
            }
        else:
            levels[str(target)] = None
    return {"curve": curve, "targets": levels}


def tune_thresholds(probs: np.ndarray, truth: np.ndarray, grid: Sequence[float] = THRESHOLD_GRID) -> list[float]:
    """Per label, the threshold on ``grid`` with the best F1 on (probs, truth); ties go nearest 0.5."""
    from sklearn.metrics import f1_score

    chosen = []
    for j in range(truth.shape[1]):
        scores = [(f1_score(truth[:, j], probs[:, j] >= t, zero_division=0), -abs(t - 0.5), t) for t in grid]
        chosen.append(float(max(scores)[2]))
    return chosen


def confident_mistakes(
    task: TaskSpec, probs: np.ndarray, truth: np.ndarray, ids: Sequence[str], texts: Sequence[str], limit: int = 50
) -> list[dict[str, Any]]:
    """The wrong predictions the model was surest of, most confident first (single-label tasks)."""
    predicted = probs.argmax(1)
    confidence = probs.max(1)
    wrong = np.flatnonzero(predicted != truth)
    order = wrong[np.argsort(-confidence[wrong], kind="stable")][:limit]
    return [
        {
            "id": ids[i],
            "true": task.labels[int(truth[i])],
            "predicted": task.labels[int(predicted[i])],
            "confidence": round(float(confidence[i]), 6),
            "true_label_probability": round(float(probs[i, truth[i]]), 6),
            "text": texts[i][:400],
        }
        for i in order
    ]


def confident_label_mistakes(
    task: TaskSpec, probs: np.ndarray, truth: np.ndarray, ids: Sequence[str], texts: Sequence[str], limit: int = 50
) -> list[dict[str, Any]]:
    """Multi-label tasks: the wrong per-label decisions the model was surest of, most confident first.

    A decision's confidence is the probability of what was decided: ``p`` for a label given, ``1 - p`` for
    a label withheld.
    """
    limits = np.asarray(task.thresholds)
    decided = probs >= limits
    wrong = np.argwhere(decided != (truth == 1))
    confidence = np.where(decided, probs, 1.0 - probs)
    order = sorted(wrong.tolist(), key=lambda rc: (-confidence[rc[0], rc[1]], rc[0], rc[1]))[:limit]
    return [
        {
            "id": ids[r],
            "label": task.labels[c],
            "error": "false_positive" if decided[r, c] else "false_negative",
            "probability": round(float(probs[r, c]), 6),
            "threshold": float(limits[c]),
            "true_labels": [task.labels[j] for j in np.flatnonzero(truth[r] == 1)],
            "text": texts[r][:400],
        }
        for r, c in order
    ]


def task_figures(
    task: TaskSpec, probs: np.ndarray, labels: np.ndarray, targets: Sequence[float] = TARGET_ACCURACIES
) -> dict[str, Any]:
    """All figures for one task on the rows that carry its label."""
    keep = _labelled(task, labels)
    probs, truth = probs[keep], labels[keep]
    predicted = task.kind.predicted(probs, task.thresholds)
    report = task_report(task.kind, task.labels, truth.tolist(), predicted.tolist())
    if not len(truth):
        return report
    report["confusion_matrix"] = task.kind.confusion(truth, predicted, task.labels)
    if task.kind.uses_thresholds:
        report["thresholds"] = [
            {"label": lbl, "threshold": float(t), **report["per_class"][lbl]}
            for lbl, t in zip(task.labels, task.thresholds, strict=True)
        ]
    report["calibration"] = calibration(*task.kind.reliability(probs, truth))
    if task.kind.one_label_per_row:
        report["risk_coverage"] = risk_coverage(probs, truth, targets=targets)
    return report


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _plot_confusion(path: Path, title: str, labels: list[str], matrix: list[list[int]]) -> None:
    m = np.asarray(matrix)
    fig = _figure(1.2 + 0.9 * len(labels), 1.0 + 0.8 * len(labels))
    ax = fig.add_subplot()
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", color="white" if m[i, j] > m.max() / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _plot_reliability(path: Path, title: str, cal: dict[str, Any], before: dict[str, Any] | None = None) -> None:
    """Accuracy per confidence bin above, the number of articles per bin below (a bin of one article
    is not evidence of calibration); with ``before``, the raw model on the left and the calibrated one (as
    ``cal["measured"]`` says) on the right."""
    panels = (
        [("before calibration", before), (cal.get("measured", "").split(":")[0] or "", cal)] if before else [("", cal)]
    )
    fig = _figure(4.8 * len(panels), 5.8)
    grid = fig.subplots(2, len(panels), sharex=True, squeeze=False, gridspec_kw={"height_ratios": [3, 1]})
    for column, (name, table) in enumerate(panels):
        _reliability_panel(grid[0, column], grid[1, column], f"{title} {name}".strip(), table)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _reliability_panel(top: Any, bottom: Any, title: str, cal: dict[str, Any]) -> None:
    width = 1.0 / cal["n_bins"]
    centers = [(b["low"] + b["high"]) / 2 for b in cal["bins"]]
    counts = [b["count"] for b in cal["bins"]]
    accuracy = [b["accuracy"] if b["accuracy"] is not None else 0.0 for b in cal["bins"]]
    top.bar(centers, accuracy, width=width, edgecolor="black", alpha=0.7, label="accuracy")
    top.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    for x, y, n in zip(centers, accuracy, counts, strict=True):
        if n:
            top.text(x, min(y + 0.02, 0.95), f"n={n}", ha="center", va="bottom", fontsize=7)
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.set_title(f"{title}\nECE = {cal['ece']:.3f} over {sum(counts)} articles", fontsize=9)
    top.legend(loc="upper left", fontsize=8)
    bottom.bar(centers, counts, width=width, edgecolor="black", color="tab:gray")
    bottom.set_xlabel("confidence")
    bottom.set_ylabel("articles")


def build_report(
    classifier: NewsClassifier,
    data,
    out_dir: str | Path,
    train: LabelledSplit | None = None,
    split_name: str = "dev",
    mistakes: int = 50,
    targets: Sequence[float] = TARGET_ACCURACIES,
    logits: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Write the evaluation report of ``classifier`` on an encoded split, with plots and mistakes.

    Args:
        classifier: the model to evaluate.
        data: the windowed split (:func:`aranews.training.data.encode_split`).
        out_dir: the folder to write into.
        train: the training split; when given, a TF-IDF baseline is trained on it and reported beside.
        split_name: the split's name in the report.
        mistakes: how many confident mistakes to keep per task.
        logits: the split's raw logits (:func:`split_logits`) when already computed; else one pass makes them.

    Returns:
        The report (also written to ``out_dir/report.json``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    split: LabelledSplit = data.split
    logits = split_logits(classifier, data) if logits is None else logits
    probs = {name: classifier.probabilities(name, z) for name, z in logits.items()}
    report: dict[str, Any] = {
        "model": classifier.source,
        "split": split_name,
        "data": split.path,
        "articles": len(split),
        "truncation": data.truncation(),
        "tasks": {},
        "files": {},
    }
    for task in classifier.tasks:
        labels = data.labels[task.name].numpy()
        figures = task_figures(task, probs[task.name], labels, targets)
        calibration_before_after(classifier, task, figures, logits[task.name], labels, split_name)
        report["tasks"][task.name] = figures
        if not figures.get("n"):
            continue
        files = {}
        keep = _labelled(task, labels)
        ids = [i for i, k in zip(split.ids, keep, strict=True) if k]
        texts = [t for t, k in zip(split.texts, keep, strict=True) if k]
        if task.kind.one_label_per_row:
            _plot_confusion(
                out_dir / f"confusion_{task.name}.png",
                f"{task.name} ({split_name})",
                figures["confusion_matrix"]["labels"],
                figures["confusion_matrix"]["matrix"],
            )
            files["confusion_matrix"] = f"confusion_{task.name}.png"
            rows = confident_mistakes(task, probs[task.name][keep], labels[keep], ids, texts, mistakes)
        else:
            rows = confident_label_mistakes(task, probs[task.name][keep], labels[keep], ids, texts, mistakes)
        (out_dir / f"mistakes_{task.name}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
        )
        files["mistakes"] = f"mistakes_{task.name}.jsonl"
        _plot_reliability(
            out_dir / f"reliability_{task.name}.png",
            f"{task.name} ({split_name})",
            figures["calibration"],
            figures.get("calibration_before"),
        )
        files["reliability_diagram"] = f"reliability_{task.name}.png"
        report["files"][task.name] = files
    if train is not None:
        report["baseline"] = _baseline_report(classifier, train, split)
    (out_dir / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return report


def _baseline_report(classifier: NewsClassifier, train: LabelledSplit, split: LabelledSplit) -> dict[str, Any]:
    baseline = TfidfBaseline(classifier.config.model.preprocessing)
    out: dict[str, Any] = {"name": BASELINE_NAME, "trained_on": train.path, "tasks": {}}
    for task in classifier.tasks:
        train_pairs = train.pairs.get(task.pair_column) if task.pair_column else None
        eval_pairs = split.pairs.get(task.pair_column) if task.pair_column else None
        baseline.fit(task, train.texts, train.labels[task.name], train_pairs)
        probs = baseline.predict_proba(task.name, split.texts, eval_pairs)
        labels = label_tensor(task, split.labels[task.name]).numpy()
        figures = task_figures(task, probs, labels)
        out["tasks"][task.name] = {k: v for k, v in figures.items() if k not in ("calibration", "thresholds")}
    return out


def _restrict(task: TaskSpec, values: list[Any]) -> list[Any]:
    """Label values a model with ``task``'s labels can be scored on (others become unlabelled)."""
    return [task.kind.restrict(v, task.labels) for v in values]


def _mean_f1(rows: dict[str, dict[str, Any]], key: str) -> float | None:
    return round(float(np.mean([row[key] for row in rows.values()])), 6) if rows else None


def compare_on_split(
    previous: NewsClassifier, new: NewsClassifier, split: LabelledSplit, tolerance: float = 0.05
) -> dict[str, Any]:
    """Two models of one task family on the same labelled rows, per kept label (the forgetting guard).

    For every task both models have, each model is scored on the rows whose label it knows; per label
    kept by both, the F1 of each and the change are reported, and a kept label whose F1 dropped by more
    than ``tolerance`` is listed in ``flagged``. ``previous_macro_f1`` and ``new_macro_f1`` are the means over
    those kept labels (``macro_f1_over``), so that a label new to the second model does not count against it.
    """
    import dataclasses

    out: dict[str, Any] = {"tolerance": tolerance, "rows": len(split.ids), "tasks": {}}
    previous_names = {t.name for t in previous.tasks}
    for task in new.tasks:
        if task.name not in previous_names or task.name not in split.labels:
            continue
        figures = {}
        for key, clf, spec in (("previous", previous, previous.config.task(task.name)), ("new", new, task)):
            values = _restrict(spec, split.labels[task.name])
            view = dataclasses.replace(split, labels={spec.name: values})
            data = encode_split(clf.windower, view, [spec])
            logits = clf.logits_from_encoded(data.groups[spec.pair_column], [spec.name])
            probs = clf.probabilities(spec.name, logits[spec.name])
            figures[key] = task_figures(spec, probs, data.labels[spec.name].numpy())
        old_labels = previous.config.task(task.name).labels
        kept = [label for label in task.labels if label in old_labels]
        rows = {}
        for label in kept:
            before = figures["previous"]["per_class"].get(label, {})
            after = figures["new"]["per_class"].get(label, {})
            if not before.get("support"):
                continue
            change = after.get("f1", 0.0) - before.get("f1", 0.0)
            rows[label] = {
                "previous_f1": round(before.get("f1", 0.0), 6),
                "new_f1": round(after.get("f1", 0.0), 6),
                "change": round(change, 6),
                "support": before.get("support"),
                "worse": change < -tolerance,
            }
        out["tasks"][task.name] = {
            "n": figures["previous"].get("n"),
            # over the same labels on both sides: a new label (no rows here) would count as F1 0 for the new model
            "previous_macro_f1": _mean_f1(rows, "previous_f1"),
            "new_macro_f1": _mean_f1(rows, "new_f1"),
            "macro_f1_over": sorted(rows),
            "labels": rows,
            "flagged": [label for label, row in rows.items() if row["worse"]],
        }
    return out
