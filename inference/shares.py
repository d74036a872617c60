"""Label shares of an archive with honest intervals: quantification, not counting.

Counting the top label (``cc``) is biased toward the labels a classifier over-predicts, and the bias moves
when the archive's mix moves. The estimators here, as QuaPy 0.2 defines them (Forman 2008; Saerens et al.
2002; tested equal to QuaPy on the same inputs):

* ``cc``: the share of rows whose top label is each label;
* ``pcc``: the mean of the (calibrated) probabilities;
* ``acc``: ``cc`` corrected by the classifier's own error rates on dev, ``q = M p`` solved for ``p`` with
  ``M[i, j] = P(predicted i | true j)``, then clipped to [0, 1] and renormalised;
* ``pacc``: the same with ``pcc`` and ``M[i, j]`` = the mean probability of ``i`` over dev rows of true ``j``;
* ``emq``: the EM re-estimation of the prior (SLD), starting from dev's label shares, on posteriors first
  bias-corrected so that their mean over dev equals dev's label shares (Alexandari et al., 2020: EM is only
  consistent on such posteriors; with temperature scaling alone it is far off when a label is rare).

Intervals (:func:`estimate_shares`) are for the shares of the rows scored: the spread of the method's error on
simulated archives of the same size and estimated mix, drawn from dev's rows of each label and estimated
with the error rates of a resampled dev, so both the classifier's mistakes and a small dev set widen them;
each label's rows are drawn with a prior of one pseudo-row that may look like any dev row, so a label known
through a handful of dev rows gets the wide interval it needs.
A group with fewer than :data:`MIN_ROWS` rows gets no interval ("too few rows"). Memory: the archive's
probability matrix (rows x labels); the interval's work grows with dev's size, not the archive's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["METHODS", "MIN_ROWS", "DevRates", "em_prior", "estimate", "estimate_shares", "shifted"]

METHODS = ("cc", "pcc", "acc", "pacc", "emq")
MIN_ROWS = 30
PRIOR_ROWS = 1.0  # the Dirichlet-process prior's weight, in rows, on each label's score distribution
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


def shifted(probs: np.ndarray, source_prior: np.ndarray, target_prior: np.ndarray) -> np.ndarray:
    """Posteriors fitted where the labels had ``source_prior``, moved by Bayes' rule to where they have
    ``target_prior`` (Saerens et al. 2002): each column times the ratio of the priors, rows renormalised."""
    adjusted = (np.asarray(target_prior, dtype=np.float64) / source_prior) * probs
    return adjusted / adjusted.sum(axis=1, keepdims=True)


def em_prior(probs: np.ndarray, source_prior: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """The label prior of unlabelled rows with these posteriors (fitted under ``source_prior``), by the EM of
    Saerens et al. (2002): the prior and the shifted posteriors re-estimated from each other to a fixed point."""
    return _em(np.asarray(source_prior, dtype=np.float64), np.asarray(probs, dtype=np.float64), weights)


def _em(prior: np.ndarray, probs: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    if np.prod(prior) == 0:
        prior = (prior + EM_EPSILON) / (prior + EM_EPSILON).sum()
    w = None if weights is None else weights / weights.sum()
    q, previous = prior.copy(), None
    for step in range(EM_MAX_ITER):
        adjusted = shifted(probs, prior, q)
        q = adjusted.mean(axis=0) if w is None else w @ adjusted
        if previous is not None and np.abs(q - previous).mean() < EM_EPSILON and step > 10:
            break
        previous = q
    return q


def _prior_matched(dev: DevRates, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dev's and the rows' posteriors with one bias per label on their log, fitted on dev by maximum likelihood
    (whose optimum is where the mean posterior over dev equals dev's label shares); a label dev lacks keeps
    its posteriors."""
    prior = dev.prior()
    present = prior > 0
    z_dev, z = np.log(np.clip(dev.probs, 1e-12, 1.0)), np.log(np.clip(probs, 1e-12, 1.0))
    bias = np.zeros(dev.k)

    def softmax(logits: np.ndarray) -> np.ndarray:
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    for _ in range(EM_MAX_ITER):
        mean = softmax(z_dev + bias).mean(axis=0)
        step = np.where(present, np.log(np.where(present, prior, 1.0)) - np.log(np.clip(mean, 1e-300, None)), 0.0)
        bias += step
        if np.abs(step).max() < 1e-6:
            break
    return softmax(z_dev + bias), softmax(z + bias)


def estimate(
    method: str, probs: np.ndarray, dev: DevRates | None = None, weights: np.ndarray | None = None
) -> np.ndarray:
    """The label shares of rows with these probabilities, by ``method`` (``acc``, ``pacc`` and ``emq`` need dev).

    ``weights`` (optional, one per row) count each row that many times, as if repeated.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if method not in METHODS:
        raise ValueError(f"shares method {method!r}; expected one of {METHODS}")
    k = probs.shape[1]
    w = np.ones(len(probs)) if weights is None else np.asarray(weights, dtype=np.float64)
    total = max(w.sum(), 1e-300)
    hard = np.bincount(probs.argmax(1), weights=w, minlength=k) / total
    if method == "cc":
        return hard
    soft = w @ probs / total
    if method == "pcc":
        return soft
    if dev is None:
        raise ValueError(f"shares method {method!r} needs the dev error rates stored with the model")
    if method == "acc":
        return _adjust(dev.hard_rates(), hard)
    if method == "pacc":
        return _adjust(dev.soft_rates(), soft)
    _dev_probs, matched = _prior_matched(dev, probs)
    return _em(dev.prior(), matched, None if weights is None else w)


def _composition(shares: np.ndarray, n: int) -> np.ndarray:
    """Whole row counts summing to ``n`` in the proportions ``shares`` (largest remainders)."""
    raw = np.asarray(shares, dtype=np.float64) * n
    counts = np.floor(raw).astype(int)
    counts[np.argsort(counts - raw)[: n - counts.sum()]] += 1
    return counts


def _label_draw(pool: np.ndarray, size: int, m: int, rng: np.random.Generator, *, reweight: bool) -> np.ndarray:
    """How many times each of the ``m`` dev rows is drawn in ``size`` draws from one label's score distribution,
    as known from its ``pool`` of dev rows.

    Each draw is, with probability ``v ~ Beta(1, len(pool))``, any dev row whatever its label (a prior of one
    pseudo-row against the pool's real ones: a label known through a handful of rows may look, on new rows,
    like rows of any other; with many rows its weight, about ``1 / (len(pool) + 1)``, vanishes), and otherwise
    a row of the pool: uniformly, or (``reweight``) by weights from a Bayesian bootstrap of the pool. With
    ``reweight`` this is a draw from the Dirichlet-process posterior of the distribution (Ferguson 1973).
    """
    counts = np.zeros(m, dtype=np.int64)
    if not size or not len(pool):
        return counts
    from_prior = rng.binomial(size, rng.beta(PRIOR_ROWS, len(pool)))
    own = rng.dirichlet(np.ones(len(pool))) if reweight else np.full(len(pool), 1.0 / len(pool))
    counts[pool] = rng.multinomial(size - from_prior, own)
    return counts + np.bincount(rng.integers(m, size=from_prior), minlength=m)


def _simulated_errors(
    method: str, point: np.ndarray, n: int, dev: DevRates, replicates: int, rng: np.random.Generator
) -> np.ndarray:
    """Errors of ``method`` on simulated archives like this one, ``(replicates, k)``.

    Each replicate is an archive of ``n`` rows in the estimated mix ``point``, estimated with the error rates
    of dev resampled within each label, and the error is measured against that archive's own mix. The
    archive's rows of each label are drawn from that label's score distribution as dev knows it
    (:func:`_label_draw`: dev's rows of the label, reweighted by a Bayesian bootstrap, plus a prior of one
    pseudo-row spread over all of dev; the label-shift assumption the adjusted estimators rest on; a label
    dev lacks is drawn as rows that are exactly it), and so are the resampled dev's, independently.

    Both parts widen the intervals where a label's rows are few, which is where they used to under-cover
    (the protocol of ``benchmarks/bench_calibration.py``, 90% intervals of PACC at 500 rows: 0.77 on ANS,
    whose rarest label has 16 dev rows, and 0.71 on ANT JawharaFM, with labels of 3 and 4 rows; 0.89 and
    0.92 with the prior) and a plain resample under-covers already when a label has a few dozen rows
    (synthetic label-shifted archives with a 16-row label, ``tests/test_shares.py``). The work per
    replicate is the dev set's size times the number of labels (rows drawn are counted, not copied),
    whatever the archive's size.
    """
    k, m = dev.k, len(dev.truth)
    counts = _composition(point, n)
    pools = [np.flatnonzero(dev.truth == j) for j in range(k)]
    absent = [j for j in range(k) if counts[j] and not len(pools[j])]
    rows = np.vstack([dev.probs, np.eye(k)[absent]]) if absent else dev.probs
    truth = np.repeat(np.arange(k), [len(pool) for pool in pools])
    errors = np.empty((replicates, k))
    for b in range(replicates):
        weights = np.zeros(len(rows))
        weights[m:] = counts[absent]
        resampled = np.zeros((k, m), dtype=np.int64)
        for j, pool in enumerate(pools):
            weights[:m] += _label_draw(pool, int(counts[j]), m, rng, reweight=True)
            resampled[j] = _label_draw(pool, len(pool), m, rng, reweight=False)
        pick = np.concatenate([np.repeat(np.arange(m), drawn) for drawn in resampled])
        kept = weights > 0
        estimated = estimate(method, rows[kept], DevRates(truth, dev.probs[pick]), weights[kept])
        errors[b] = estimated - counts / n
    return errors


def _row_bootstrap(method: str, probs: np.ndarray, replicates: int, rng: np.random.Generator) -> np.ndarray:
    return np.stack([estimate(method, probs[rng.integers(len(probs), size=len(probs))]) for _ in range(replicates)])


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
    """Shares per label of these rows with a ``level`` interval for the shares *of these rows*.

    With dev's error rates (models trained since calibration), the interval is the spread of the method's
    error on simulated archives like this one (:func:`_simulated_errors`): it covers both the classifier's
    mistakes on this many rows and the finite dev set the error rates came from. For ``cc`` and ``pcc``,
    which do not correct the classifier's bias, the interval is centred on the estimate and shows its noise
    only; the adjusted methods' intervals also carry what is left of the bias. Without dev (older models),
    the interval is a bootstrap over the rows: the sampling noise of the count, not its bias. An interval always
    contains its estimate: where the simulated errors all lie on one side of it, it is widened to it.

    Returns ``{"method", "level", "rows", "interval", "labels": {label: {"share", "low", "high"}}}``, or with
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
    if dev is None:
        out["interval"] = "row bootstrap: sampling noise only"
        draws = _row_bootstrap(method, probs, replicates, rng)
    else:
        out["interval"] = "simulated archives: classifier error and dev size"
        errors = _simulated_errors(method, point, len(probs), dev, replicates, rng)
        draws = point + (errors - errors.mean(axis=0) if method in ("cc", "pcc") else errors)
    low, high = np.clip(np.percentile(draws, [100 * (1 - level) / 2, 100 * (1 + level) / 2], axis=0), 0.0, 1.0)
    # where the simulated errors lie all on one side (a classifier that tells few labels apart: its adjusted
    # estimate is far off and its bias is not known well enough to correct), the interval is widened to the
    # estimate rather than published beside it without containing it
    low, high = np.minimum(low, point), np.maximum(high, point)
    out["labels"] = {
        lbl: {"share": round(float(p), 4), "low": round(float(lo), 4), "high": round(float(hi), 4)}
        for lbl, p, lo, hi in zip(labels, point, low, high)
    }
    return out
