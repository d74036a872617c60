"""A cheap baseline beside the transformer: TF-IDF word and character n-grams with a linear classifier.

It sees the same training rows and the same preprocessing as the transformer, so the report shows what
fine-tuning buys over a bag of n-grams.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from aranews.inference.config import TaskSpec
from aranews.inference.preprocessing import build_preprocessor

__all__ = ["BASELINE_NAME", "TfidfBaseline"]

BASELINE_NAME = "TF-IDF (word 1-2 + char 2-5 n-grams) + logistic regression"


def _inputs(texts: Sequence[str], pairs: Sequence[str] | None, preprocess) -> list[str]:
    cleaned = [preprocess(t) for t in texts]
    if pairs is None:
        return cleaned
    return [f"{preprocess(p)} [SEP] {t}" for p, t in zip(pairs, cleaned, strict=True)]


class TfidfBaseline:
    """One TF-IDF + logistic-regression model per task.

    Args:
        preprocessing: the transformer's preprocessing steps, applied here too.
        seed: random state of the solver.
    """

    def __init__(self, preprocessing: Sequence[str], seed: int = 0) -> None:
        self.preprocess = build_preprocessor(preprocessing)
        self.seed = seed
        self.models: dict[str, Any] = {}

    def _pipeline(self, multi_label: bool):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.pipeline import make_pipeline, make_union

        features = make_union(
            TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=1, sublinear_tf=True, max_features=200_000),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True, max_features=300_000),
        )
        classifier = LogisticRegression(max_iter=2000, C=10.0, class_weight="balanced", random_state=self.seed)
        return make_pipeline(features, OneVsRestClassifier(classifier) if multi_label else classifier)

    def fit(
        self, task: TaskSpec, texts: Sequence[str], labels: Sequence[Any], pairs: Sequence[str] | None = None
    ) -> None:
        """Fit one task on the rows that carry its label (``None`` rows are skipped)."""
        keep = [i for i, y in enumerate(labels) if y is not None]
        x = _inputs([texts[i] for i in keep], None if pairs is None else [pairs[i] for i in keep], self.preprocess)
        y = task.kind.baseline_target(task.labels, [labels[i] for i in keep])
        model = self._pipeline(not task.kind.one_label_per_row)
        model.fit(x, y)
        self.models[task.name] = (task, model)

    def predict_proba(self, name: str, texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        """Probabilities with one column per label of the task, in the task's label order."""
        task, model = self.models[name]
        probs = model.predict_proba(_inputs(texts, pairs, self.preprocess))
        if not task.kind.one_label_per_row:  # one column per label already
            return probs
        out = np.zeros((len(texts), len(task.labels)))
        out[:, model.classes_] = probs  # labels absent from training get probability 0
        return out
