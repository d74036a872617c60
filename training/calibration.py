"""Calibration fitted on dev after the best epoch: scores that mean what they say.

Single-label tasks: temperature scaling (Guo et al., 2017: one ``T``, logits / T before the softmax; it
never changes an argmax) and bias-corrected temperature scaling (Alexandari et al., 2020: ``T`` and one
bias per label, which also corrects a prior the model over-predicts). ``auto`` is temperature scaling, kept
only when its *cross-fitted* negative log-likelihood on dev beats the raw model's: it cannot change a
decision, so the dev figures the run reports stay honest. The bias-corrected variant can change decisions
with a bias fitted on dev, so it is opt-in (``bias_corrected``), and its cross-fitted NLL and accuracy are
reported beside temperature scaling's either way. Multi-label tasks: one temperature per label on its
sigmoid. The fitted values are saved in the model's ``config.json`` (``TaskSpec.temperature`` / ``bias``)
and every probability the library gives goes through them.

The dev figures after calibration are cross-fitted: the calibration is fitted on k-1 folds of dev and
measured on the k-th, so the number is not fitted on itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize, minimize_scalar

__all__ = ["CALIBRATIONS", "Calibration", "cross_fitted", "ece", "fit", "nll"]

CALIBRATIONS = ("auto", "temperature", "bias_corrected", "none")
N_BINS = 10
FOLDS = 5


@dataclass
class Calibration:
    """A fitted calibration of one task: what is saved in the model (``temperature``, ``bias``)."""

    method: str
    temperature: float | list[float] | None = None
    bias: list[float] | None = None
    figures: dict[str, Any] = field(default_factory=dict)

    def apply(self, logits: np.ndarray) -> np.ndarray:
        z = np.asarray(logits, dtype=np.float64) / np.asarray(self.temperature or 1.0)
        return z + np.asarray(self.bias) if self.bias is not None else z


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def nll(probs: np.ndarray, labels: np.ndarray, multi: bool = False) -> float:
    """Mean negative log-likelihood of the true labels (multi-label: mean binary cross-entropy per label)."""
    p = np.clip(probs, 1e-12, 1.0 - 1e-12)
    if multi:
        return float(-(labels * np.log(p) + (1 - labels) * np.log(1 - p)).mean())
    return float(-np.log(p[np.arange(len(labels)), labels]).mean())


def ece(probs: np.ndarray, labels: np.ndarray, multi: bool = False, n_bins: int = N_BINS) -> float:
    """Expected calibration error over ``n_bins`` equal-width bins of the top label's probability (as netcal's
    ``ECE(bins)`` computes it); multi-label: over every (row, label) probability against its 0/1 truth."""
    if multi:
        confidence = np.where(probs.ravel() >= 0.5, probs.ravel(), 1 - probs.ravel())
        correct = (probs.ravel() >= 0.5) == (labels.ravel() == 1)
    else:
        confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        inside = index == b
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def _fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    found = minimize_scalar(
        lambda log_t: nll(_softmax(logits / np.exp(log_t)), labels), bounds=(-4.0, 4.0), method="bounded"
    )
    return float(np.exp(found.x))


def _fit_bias_corrected(logits: np.ndarray, labels: np.ndarray) -> tuple[float, list[float]]:
    k = logits.shape[1]

    def loss(params: np.ndarray) -> float:
        return nll(_softmax(logits / np.exp(params[0]) + params[1:]), labels)

    found = minimize(loss, np.zeros(k + 1), method="L-BFGS-B", bounds=[(-4.0, 4.0)] + [(-10.0, 10.0)] * k)
    bias = found.x[1:] - found.x[1:].mean()  # a common shift changes nothing: keep the biases centred
    return float(np.exp(found.x[0])), [float(b) for b in bias]


def _fit_per_label(logits: np.ndarray, labels: np.ndarray) -> list[float]:
    temperatures = []
    for j in range(logits.shape[1]):
        found = minimize_scalar(
            lambda log_t, j=j: nll(_sigmoid(logits[:, j : j + 1] / np.exp(log_t)), labels[:, j : j + 1], multi=True),
            bounds=(-4.0, 4.0),
            method="bounded",
        )
        temperatures.append(float(np.exp(found.x)))
    return temperatures


def _fit_method(method: str, logits: np.ndarray, labels: np.ndarray, multi: bool) -> Calibration:
    if multi:
        return Calibration("temperature_per_label", _fit_per_label(logits, labels))
    if method == "bias_corrected":
        t, bias = _fit_bias_corrected(logits, labels)
        return Calibration("bias_corrected", t, bias)
    return Calibration("temperature", _fit_temperature(logits, labels))


def _probabilities(calibration: Calibration | None, logits: np.ndarray, multi: bool) -> np.ndarray:
    z = calibration.apply(logits) if calibration is not None else np.asarray(logits, dtype=np.float64)
    return _sigmoid(z) if multi else _softmax(z)


def cross_fitted(
    method: str, logits: np.ndarray, labels: np.ndarray, multi: bool, folds: int = FOLDS, seed: int = 0
) -> np.ndarray:
    """Out-of-fold calibrated probabilities: each row calibrated by a fit on the other folds."""
    rng = np.random.default_rng(seed)
    assignment = rng.permutation(len(labels)) % folds
    out = np.zeros(logits.shape, dtype=np.float64)
    for fold in range(folds):
        held, rest = assignment == fold, assignment != fold
        if not held.any():
            continue
        out[held] = _probabilities(_fit_method(method, logits[rest], labels[rest], multi), logits[held], multi)
    return out


def fit(method: str, logits: np.ndarray, labels: np.ndarray, multi: bool = False, seed: int = 0) -> Calibration | None:
    """Fit ``method`` on dev logits and labels (class ids, or a 0/1 matrix for multi-label).

    ``auto`` is temperature scaling, kept (else method ``none``) only when its cross-fitted NLL beats the raw
    model's on dev; the bias-corrected variant's figures are reported beside it. Returns ``None``
    for ``none`` or when dev is too small to fit on (fewer than 2 x folds rows). The result's ``figures``
    hold ECE and NLL before and after (cross-fitted, ``folds`` folds) on dev.
    """
    if method not in CALIBRATIONS:
        raise ValueError(f"calibration {method!r}; expected one of {CALIBRATIONS}")
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels)
    if method == "none" or len(labels) < 2 * FOLDS:
        return None
    candidates = ["temperature"] if multi else ["temperature", "bias_corrected"]
    raw = _probabilities(None, logits, multi)
    after = {m: cross_fitted(m, logits, labels, multi, seed=seed) for m in candidates}
    chosen = "temperature" if method == "auto" or multi else method
    kept = method != "auto" or nll(after[chosen], labels, multi) < nll(raw, labels, multi)
    calibration = _fit_method(chosen, logits, labels, multi) if kept else Calibration("none")
    calibration.figures = {
        "rows": len(labels),
        "folds": FOLDS,
        "ece_before": round(ece(raw, labels, multi), 4),
        "ece_after_cross_fitted": round(ece(after[chosen], labels, multi), 4),
        "nll_before": round(nll(raw, labels, multi), 4),
        "nll_after_cross_fitted": round(nll(after[chosen], labels, multi), 4),
        "compared_nll_cross_fitted": {m: round(nll(after[m], labels, multi), 4) for m in candidates},
        "accuracy_before": None if multi else round(float((raw.argmax(1) == labels).mean()), 4),
        "accuracy_cross_fitted": None
        if multi
        else {m: round(float((after[m].argmax(1) == labels).mean()), 4) for m in candidates},
    }
    if not kept:
        calibration.figures["why"] = "no calibration beat the raw model's cross-fitted NLL on dev: none kept"
    return calibration
