"""Does a faster precision mode decide as ``fp32`` does on *your* model and data?

>>> from aranews.inference.agreement import check_precision
>>> report = check_precision("runs/demo/run/model", texts, modes=["bf16", "int8"])
>>> report.passed, report.rows[0]
(True, ModeAgreement(mode='bf16', task='topic', agreement=0.998, ...))

Agreement is the share of articles whose decision (the argmax label; for a multi-label task the set of
labels at or above their thresholds) equals ``fp32``'s. Random weights say nothing here (their logits
barely vary between articles): run it on a fine-tuned model and real articles. ``aranews check-precision``
is the command line of the same check.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aranews.inference.classifier import BatchResult, NewsClassifier, load_classifier
from aranews.inference.runtime import PrecisionError, resolve_precision

__all__ = ["DEFAULT_MIN_AGREEMENT", "ModeAgreement", "PrecisionReport", "check_precision", "record_agreement"]

DEFAULT_MIN_AGREEMENT = 0.99


@dataclass
class ModeAgreement:
    """One mode on one task, against fp32."""

    mode: str
    task: str
    articles: int
    agreement: float
    disagreements: int
    max_probability_difference: float
    articles_per_second: float
    passed: bool


@dataclass
class PrecisionReport:
    """Agreement of every mode checked, per task; modes that could not run, with why."""

    model: str
    min_agreement: float
    fp32_articles_per_second: float
    rows: list[ModeAgreement] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"passed": self.passed}

    def format(self) -> str:
        width = max([6, *(len(r.mode) for r in self.rows), *(len(m) for m in self.unavailable)])
        lines = [
            f"precision agreement with fp32 on {self.model} (pass: at least {self.min_agreement:.1%} of labels equal)",
            f"  fp32: {self.fp32_articles_per_second:.2f} articles/s",
            f"  {'mode':{width}} {'task':12} {'articles':>8} {'agreement':>10} {'differ':>7} {'max |dp|':>9} "
            f"{'art/s':>7}",
        ]
        for r in self.rows:
            lines.append(
                f"  {r.mode:{width}} {r.task:12} {r.articles:8d} {r.agreement:10.2%} {r.disagreements:7d} "
                f"{r.max_probability_difference:9.4f} {r.articles_per_second:7.2f}  {'ok' if r.passed else 'FAILED'}"
            )
        for mode, why in self.unavailable.items():
            lines.append(f"  {mode:{width}} not available: {why}")
        return "\n".join(lines)


def _decisions(classifier: NewsClassifier, result: BatchResult, task: str) -> list[Any]:
    spec = classifier.config.task(task)
    return spec.kind.decision_keys(result.probs[task], spec.thresholds)


def _timed(classifier: NewsClassifier, texts, titles, pairs) -> tuple[BatchResult, float]:
    started = time.perf_counter()
    result = classifier.classify(texts, titles=titles, pairs=pairs)
    return result, time.perf_counter() - started


def check_precision(
    model: str | Path,
    texts: Sequence[str],
    *,
    titles: Sequence[str | None] | None = None,
    pairs: dict[str, Sequence[str]] | None = None,
    modes: Sequence[str] = ("bf16", "int8"),
    device: str | None = None,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    batch_tokens: int = 8192,
) -> PrecisionReport:
    """Score ``texts`` in fp32 and in each mode; compare decisions and probabilities per task.

    A mode this machine or install cannot run is listed in ``unavailable`` with the reason, not raised.
    The first call of a mode includes its one-time set-up (the ONNX export is cached), so the speed is
    measured on a second pass.
    """
    texts = list(texts)
    reference = load_classifier(model, device=device, precision="fp32", batch_tokens=batch_tokens)
    reference.classify(texts[:8], titles=None if titles is None else list(titles)[:8], pairs=_head(pairs, 8))
    base, seconds = _timed(reference, texts, titles, pairs)
    kept = [i for i, s in enumerate(base.skipped) if s is None]
    report = PrecisionReport(str(model), min_agreement, round(len(kept) / seconds, 3) if seconds else 0.0)
    for mode in modes:
        try:
            resolve_precision(mode, reference.device)
            clf = NewsClassifier(
                reference.model,
                reference.tokenizer,
                reference.device,
                source=reference.source,
                precision=mode,
                batch_tokens=batch_tokens,
            )
            clf.classify(texts[:8], titles=None if titles is None else list(titles)[:8], pairs=_head(pairs, 8))
        except (PrecisionError, ImportError, RuntimeError) as exc:
            report.unavailable[mode] = str(exc)
            continue
        result, seconds = _timed(clf, texts, titles, pairs)
        speed = round(len(kept) / seconds, 3) if seconds else 0.0
        for task in base.probs:
            want, got = _decisions(reference, base, task), _decisions(clf, result, task)
            differ = sum(want[i] != got[i] for i in kept)
            diff = float(np.abs(base.probs[task][kept] - result.probs[task][kept]).max()) if kept else 0.0
            agreement = 1.0 - differ / len(kept) if kept else 1.0
            report.rows.append(
                ModeAgreement(
                    mode,
                    task,
                    len(kept),
                    round(agreement, 6),
                    differ,
                    round(diff, 6),
                    speed,
                    agreement >= min_agreement,
                )
            )
    return report


def _head(pairs: dict[str, Sequence[str]] | None, n: int) -> dict[str, list[str]] | None:
    return None if pairs is None else {k: list(v)[:n] for k, v in pairs.items()}


def record_agreement(report: PrecisionReport) -> Path:
    """Keep the check's result for this model on this machine (the cache, by the weights' hash): what lets
    ``precision="int8"`` load it (:func:`aranews.inference.runtime.int8_refusal`). Written atomically."""
    import json

    from aranews.inference.files import atomic_write_text
    from aranews.inference.runtime import cpu_name, precision_record_path

    path = precision_record_path(report.model)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({**report.to_dict(), "cpu": cpu_name()}, indent=2) + "\n")
    return path
