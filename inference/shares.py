"""Label shares of an archive with honest intervals: quantification, not counting.

Counting the top label (``cc``) is biased toward the labels a classifier over-predicts, and the bias moves
when the archive's mix moves. The estimators here, as QuaPy 0.2 defines them (Forman 2008; Saerens et al.
2002; tested equal to QuaPy on the same inputs):

* ``cc``: the share of rows whose top label is each label;
* ``pcc``: the mean of the (calibrated) probabilities;
* ``acc``: ``cc`` corrected by the classifier's own error rates on dev, ``q = M p`` solved for ``p`` with
  ``M[i, j] = P(predicted i | true j)``, then clipped to [0, 1] and renormalised;
* ``pacc``: the same with ``pcc`` and ``M[i, j]`` = the mean probability of ``i`` over dev rows of true ``j``;
* ``emq``: the EM re-estimation of the prior (SLD), starting from dev's label shares.

Intervals (:func:`estimate_shares`) come from a bootstrap over both the archive's rows and the dev rows the
error rates were measured on, so a small dev set widens them. A group with fewer than :data:`MIN_ROWS` rows
gets no interval ("too few rows"). Memory: the archive's probability matrix (rows x labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["METHODS", "MIN_ROWS", "DevRates", "estimate", "estimate_shares"]

METHODS = ("cc", "pcc", "acc", "pacc", "emq")
MIN_ROWS = 30
EM_EPSILON, EM_MAX_ITER = 1e-4, 1000


@dataclass
class DevRates:
    """What the adjusted estimators need from dev: true label ids and the (calibrated) probabilities."""

    truth: np.ndarray  # (n,) class ids
    probs: np.ndarray  # (n, k)

    @property
    def k(self) -> int:
        return self.probs.shape[1]

    def prior(self) -> np.ndarray:
        return np.bincount(self.truth, minlength=self.k) / max(1, len(self.truth))

    def hard_rates(self) -> np.ndarray:
        """``M[i, j] = P(predicted i | true j)``; a class absent from dev gets the identity column."""
        return self._rates(np.eye(self.k)[self.probs.argmax(1)])

    def soft_rates(self) -> np.ndarray:
        """``M[i, j]`` = the mean probability of ``i`` over dev rows of true class ``j``."""
        return self._rates(self.probs)

    def _rates(self, scores: np.ndarray) -> np.ndarray:
        rates = np.eye(self.k)
        for j in range(self.k):
            rows = self.truth == j
            if rows.any():
                rates[:, j] = scores[rows].mean(axis=0)
        return rates


def _clip(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 0.0, 1.0)
    total = p.sum()
    return p / total if total > 0 else np.full_like(p, 1.0 / len(p))


def _adjust(rates: np.ndarray, unadjusted: np.ndarray) -> np.ndarray:
    try:
        return _clip(np.linalg.solve(rates, unadjusted))
    except np.linalg.LinAlgError:  # a degenerate dev set: the unadjusted estimate
        return _clip(unadjusted)


def _em(prior: np.ndarray, probs: np.ndarray) -> np.ndarray:
    if np.prod(prior) == 0:
        prior = (prior + EM_EPSILON) / (prior + EM_EPSILON).sum()
    q, previous = prior.copy(), None
    for step in range(EM_MAX_ITER):
        adjusted = (q / prior) * probs
        adjusted /= adjusted.sum(axis=1, keepdims=True)
        q = adjusted.mean(axis=0)
        if previous is not None and np.abs(q - previous).mean() < EM_EPSILON and step > 10:
            break
        previous = q
    return q


def estimate(method: str, probs: np.ndarray, dev: DevRates | None = None) -> np.ndarray:
    """The label shares of rows with these probabilities, by ``method`` (``acc``, ``pacc`` and ``emq`` need dev)."""
    probs = np.asarray(probs, dtype=np.float64)
    if method not in METHODS:
        raise ValueError(f"shares method {method!r}; expected one of {METHODS}")
    k = probs.shape[1]
    hard = np.bincount(probs.argmax(1), minlength=k) / max(1, len(probs))
    if method == "cc":
        return hard
    if method == "pcc":
        return probs.mean(axis=0)
    if dev is None:
        raise ValueError(f"shares method {method!r} needs the dev error rates stored with the model")
    if method == "acc":
        return _adjust(dev.hard_rates(), hard)
    if method == "pacc":
        return _adjust(dev.soft_rates(), probs.mean(axis=0))
    return _em(dev.prior(), probs)


def estimate_shares(
    method: str,
    probs: np.ndarray,
    labels: list[str],
    dev: DevRates | None = None,
    *,
    level: float = 0.9,
    replicates: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """Shares per label with a ``level`` interval (percentile bootstrap over the rows and over dev).

    Returns ``{"method", "level", "rows", "labels": {label: {"share", "low", "high"}}}``, or with
    ``"too_few_rows": true`` and no interval when there are fewer than :data:`MIN_ROWS` rows.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level!r}; expected a value in (0, 1)")
    probs = np.asarray(probs, dtype=np.float64)
    point = estimate(method, probs, dev) if len(probs) else np.full(len(labels), np.nan)
    out: dict[str, Any] = {"method": method, "level": level, "rows": len(probs)}
    if len(probs) < MIN_ROWS:
        out["too_few_rows"] = True
        out["labels"] = {lbl: {"share": None if np.isnan(v) else round(float(v), 4)} for lbl, v in zip(labels, point)}
        return out
    rng = np.random.default_rng(seed)
    draws = np.empty((replicates, len(labels)))
    for b in range(replicates):
        rows = probs[rng.integers(len(probs), size=len(probs))]
        resampled = None
        if dev is not None:
            pick = rng.integers(len(dev.truth), size=len(dev.truth))
            resampled = DevRates(dev.truth[pick], dev.probs[pick])
        draws[b] = estimate(method, rows, resampled)
    low, high = np.percentile(draws, [100 * (1 - level) / 2, 100 * (1 + level) / 2], axis=0)
    out["labels"] = {
        lbl: {"share": round(float(p), 4), "low": round(float(lo), 4), "high": round(float(hi), 4)}
        for lbl, p, lo, hi in zip(labels, point, low, high)
    }
    return out
