"""The OpenVINO precision modes: the same windows, the fp32 model's scores and features, a cached conversion."""

from __future__ import annotations

import numpy as np
import pytest

from aranews.inference import load_classifier
from aranews.inference import openvino_session as session_module
from aranews.inference import runtime as runtime_module
from aranews.inference.classifier import NewsClassifier
from aranews.inference.runtime import PrecisionError, resolve_precision
from aranews.inference.scoring import score_archive
from tests.helpers import read_jsonl, write_jsonl

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(
    not session_module.openvino_available(), reason="the openvino extra is not installed (it is in the dev extra)"
)
needs_bf16 = pytest.mark.skipif(not runtime_module.cpu_supports_bf16(), reason="this CPU has no bf16 instructions")


@pytest.fixture(scope="module")
def texts(sample_rows):
    return [r["text"] for r in sample_rows["dev"]]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ARANEWS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("batch_tokens", [64, 10**6])  # one window per batch, and padded batches
def test_openvino_fp32_gives_the_fp32_scores_and_features(trained_model, texts, cache, batch_tokens):
    ref = load_classifier(trained_model / "model", precision="fp32", batch_tokens=batch_tokens)
    got = load_classifier(trained_model / "model", precision="openvino-fp32", batch_tokens=batch_tokens)
    assert got.precision == "openvino-fp32"
    want, have = ref.predict_proba(texts), got.predict_proba(texts)
    for task in want:
        np.testing.assert_allclose(have[task], want[task], atol=1e-4)
    encoded = ref.windower.encode(texts)  # what select reads: the articles' embeddings
    (want_logits, want_features), (have_logits, have_features) = (
        clf.features_from_encoded(encoded, ["topic"]) for clf in (ref, got)
    )
    np.testing.assert_allclose(have_features, want_features, atol=1e-4)
    np.testing.assert_allclose(have_logits["topic"], want_logits["topic"], atol=1e-4)


@needs_bf16
def test_openvino_bf16_stays_close_to_fp32(trained_model, texts, cache):
    ref = load_classifier(trained_model / "model", precision="fp32").predict_proba(texts)
    got = load_classifier(trained_model / "model", precision="openvino-bf16").predict_proba(texts)
    for task in ref:
        assert np.abs(ref[task] - got[task]).max() < 0.05
        np.testing.assert_allclose(got[task].sum(axis=1), 1.0, atol=1e-5)


def test_the_conversion_is_cached_per_model_and_shared_by_both_modes(trained_model, texts, cache, monkeypatch):
    first = load_classifier(trained_model / "model", precision="openvino-fp32").predict_proba(texts)
    graphs = list((cache / "openvino").glob("*/model.xml"))
    assert len(graphs) == 1 and (graphs[0].parent / "model.bin").is_file()
    assert [p.name for p in (cache / "openvino").iterdir()] == [graphs[0].parent.name]  # no partial folder left

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again although the cache holds this model")

    monkeypatch.setattr(session_module.OpenVinoSession, "_convert", no_conversion)
    again = load_classifier(trained_model / "model", precision="openvino-fp32").predict_proba(texts)
    for task in first:
        np.testing.assert_array_equal(again[task], first[task])
    if runtime_module.cpu_supports_bf16():
        load_classifier(trained_model / "model", precision="openvino-bf16").predict_proba(texts[:2])


def test_openvino_releases_the_torch_encoder_it_owns_and_says_so(trained_model, texts, cache, tmp_path):
    clf = load_classifier(trained_model / "model", precision="openvino-fp32")
    first = clf.predict_proba(texts)
    assert all(p.device.type == "meta" for p in clf._model.encoder.parameters())
    second = clf.predict_proba(texts)  # OpenVINO alone keeps scoring
    for task in first:
        np.testing.assert_array_equal(first[task], second[task])
    with pytest.raises(RuntimeError, match=r"runs in OpenVINO \(precision openvino-fp32\) and released"):
        clf.save_pretrained(tmp_path / "copy")

    shared = load_classifier(trained_model / "model", precision="fp32")  # a model someone else holds
    NewsClassifier(shared.model, shared.tokenizer, source=shared.source, precision="openvino-fp32").predict_proba(texts)
    assert all(p.device.type == "cpu" for p in shared.model.encoder.parameters())


def test_a_model_only_in_memory_is_converted_without_leaving_files(trained_model, texts, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    shared = load_classifier(trained_model / "model", precision="fp32")
    want = shared.predict_proba(texts)
    got = NewsClassifier(shared.model, shared.tokenizer, precision="openvino-fp32").predict_proba(texts)
    for task in want:
        np.testing.assert_allclose(got[task], want[task], atol=1e-4)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_scoring_an_archive_in_openvino_matches_fp32(trained_model, sample_rows, tmp_path, cache):
    archive = tmp_path / "archive.jsonl"
    write_jsonl(archive, [{"id": r["id"], "text": r["text"]} for r in sample_rows["dev"]])
    ref = load_classifier(trained_model / "model", precision="fp32")
    got = load_classifier(trained_model / "model", precision="openvino-fp32")
    score_archive(ref, archive, tmp_path / "fp32.jsonl", progress=False)
    summary = score_archive(got, archive, tmp_path / "ov.jsonl", progress=False)
    assert summary.scored == len(sample_rows["dev"]) and summary.provenance["precision"] == "openvino-fp32"
    want, have = read_jsonl(tmp_path / "fp32.jsonl"), read_jsonl(tmp_path / "ov.jsonl")
    assert [r["id"] for r in have] == [r["id"] for r in want]
    assert [r["topic"] for r in have] == [r["topic"] for r in want]


def test_openvino_modes_are_refused_where_they_cannot_run(monkeypatch):
    with pytest.raises(PrecisionError, match="CPU only"):
        resolve_precision("openvino-fp32", torch.device("cuda"))
    monkeypatch.setattr(runtime_module, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    with pytest.raises(PrecisionError, match="use openvino-fp32"):
        resolve_precision("openvino-bf16", torch.device("cpu"))
    assert resolve_precision("openvino-fp32", torch.device("cpu")) == "openvino-fp32"
    monkeypatch.setattr(session_module, "openvino_available", lambda: False)
    with pytest.raises(PrecisionError, match=r"aranews-classifier\[openvino\]"):
        resolve_precision("openvino-fp32", torch.device("cpu"))


def test_concurrent_first_calls_convert_once_and_agree(trained_model, texts, cache, monkeypatch):
    import threading

    ref = load_classifier(trained_model / "model", precision="fp32").predict_proba(texts)["topic"]
    mode = "openvino-bf16" if runtime_module.cpu_supports_bf16() else "openvino-fp32"
    clf = load_classifier(trained_model / "model", precision=mode, batch_size=4)
    conversions = []
    real = session_module.OpenVinoSession._convert
    monkeypatch.setattr(
        session_module.OpenVinoSession, "_convert", lambda self, *a: conversions.append(1) or real(self, *a)
    )
    results, errors = [], []

    def predict():
        try:
            for _ in range(3):
                results.append(clf.predict_proba(texts)["topic"])
        except Exception as exc:  # the test reports any failure of a thread
            errors.append(exc)

    threads = [threading.Thread(target=predict) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 18 and len(conversions) == 1
    for r in results:
        np.testing.assert_allclose(r, ref, atol=0.05)
        np.testing.assert_array_equal(r, results[0])  # each thread's own batches, never another's outputs


def test_compile_properties_reach_openvino(trained_model, texts, cache):
    """What bench_scoring's OpenVINO profile reads: per-node times of this thread's last call."""
    clf = load_classifier(trained_model / "model", precision="fp32")
    session = session_module.OpenVinoSession(clf.model, clf.source, "openvino-fp32", properties={"PERF_COUNT": True})
    encoded = clf.windower.encode(texts[:2])
    from aranews.inference.inputs import collate_articles

    batch = collate_articles(encoded, clf.windower.pad_token_id)
    batch.pop("article_index")
    logits, pooled = session(batch)
    assert pooled.shape == (len(batch["input_ids"]), clf.embedding_size)
    assert set(logits) == {"topic", "stance"}
    nodes = session.request().profiling_info
    assert nodes and any(node.node_type == "FullyConnected" for node in nodes)
