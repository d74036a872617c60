"""The prediction API: output types for str, list and empty list; probability columns in label order."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from aranews.inference import load_classifier, resolve_device


@pytest.fixture(scope="module")
def classifier(trained_model):
    return load_classifier(trained_model / "model", device="cpu", batch_size=4)


def test_labels_follow_the_saved_order(classifier):
    assert classifier.labels == {
        "topic": ["blocs_alliances", "diplomacy", "economy_energy", "military", "regional_conflicts", "security"],
        "stance": ["cooperation", "neutral", "tension"],
    }


def test_str_gives_one_result(classifier):
    result = classifier.predict("وقعت أنقرة وموسكو اتفاقا جديدا للغاز")
    assert set(result) == {"topic", "stance"}
    assert result["topic"]["label"] in classifier.labels["topic"]
    assert 0.0 < result["topic"]["score"] <= 1.0
    probs = classifier.predict_proba("وقعت أنقرة وموسكو اتفاقا جديدا للغاز")
    assert probs["topic"].shape == (6,) and probs["stance"].shape == (3,)


def test_list_gives_list_in_order(classifier, sample_rows):
    texts = [r["text"] for r in sample_rows["dev"][:9]]
    results = classifier.predict(texts)
    assert isinstance(results, list) and len(results) == 9
    probs = classifier.predict_proba(texts)
    assert probs["topic"].shape == (9, 6)
    np.testing.assert_allclose(probs["topic"].sum(1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(probs["stance"].sum(1), 1.0, rtol=1e-5)
    for row, p in zip(results, probs["topic"]):
        assert row["topic"]["label"] == classifier.labels["topic"][int(p.argmax())]
    # the caller's order survives length-sorted batching: each text alone gives its own row
    for i in (0, 4, 8):
        np.testing.assert_allclose(classifier.predict_proba(texts[i])["topic"], probs["topic"][i], rtol=1e-4, atol=1e-6)


def test_empty_list_gives_empty_result(classifier):
    assert classifier.predict([]) == []
    probs = classifier.predict_proba([])
    assert probs["topic"].shape == (0, 6) and probs["stance"].shape == (0, 3)


def test_task_selection_and_errors(classifier):
    assert set(classifier.predict("نص", tasks=["topic"])) == {"topic"}
    with pytest.raises(KeyError, match="no task 'sentiment'"):
        classifier.predict("نص", tasks=["sentiment"])
    with pytest.raises(TypeError, match="item 1 is int"):
        classifier.predict(["نص", 5])


def test_concurrent_predict_calls_agree(classifier, sample_rows):
    texts = [r["text"] for r in sample_rows["dev"][:6]]
    expected = classifier.predict_proba(texts)["topic"]
    results: list[np.ndarray] = []
    threads = [
        threading.Thread(target=lambda: results.append(classifier.predict_proba(texts)["topic"])) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    for r in results:
        np.testing.assert_allclose(r, expected, rtol=1e-5)


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device(None).type in {"cpu", "cuda", "mps"}


def test_truncation_is_reported(classifier, caplog):
    import logging

    long_text = " ".join(["روسيا وتركيا توقعان اتفاقا جديدا للتعاون في مجال الطاقة"] * 40)
    with caplog.at_level(logging.INFO, logger="aranews.inference.classifier"):
        encoded = classifier.classify([long_text, "نص قصير"]).articles
    assert encoded[0].truncated and not encoded[1].truncated
    assert "1 of 2 articles longer than max_length=64" in caplog.text
