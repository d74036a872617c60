"""Precision modes, their automatic choice, token-budget batches, the agreement check and the reader thread."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from aranews.cli import main
from aranews.cli._common import PRECISION_CHOICES
from aranews.inference import load_classifier
from aranews.inference import runtime as runtime_module
from aranews.inference.agreement import ModeAgreement, PrecisionReport, check_precision
from aranews.inference.classifier import NewsClassifier
from aranews.inference.engines import _prefetch
from aranews.inference.precision import PRECISIONS
from aranews.inference.runtime import PrecisionError, resolve_precision, token_budget_batches
from aranews.inference.scoring import score_archive
from tests.helpers import write_jsonl

torch = pytest.importorskip("torch")
needs_onnxruntime = pytest.mark.skipif(
    not runtime_module.onnxruntime_available(), reason="the onnx extra (onnx, onnxruntime) is not installed"
)


@pytest.fixture(scope="module")
def texts(sample_rows):
    return [r["text"] for r in sample_rows["dev"]]


# -- batches ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("budget,cap", [(64, 100), (1000, 3), (10**6, 100), (1, 100)])
def test_token_budget_batches_cover_every_item_once_within_the_budget(budget, cap):
    rng = np.random.default_rng(0)
    lengths = [(int(rng.integers(1, 4)), int(rng.integers(5, 60))) for _ in range(57)]
    batches = list(token_budget_batches(lengths, budget, cap))
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(57))
    longest = [max(lengths[i][1] for i in b) for b in batches]
    assert longest == sorted(longest, reverse=True)  # longest first: little padding
    for b in batches:
        assert len(b) <= cap
        if len(b) > 1:
            assert sum(lengths[i][0] for i in b) * max(lengths[i][1] for i in b) <= budget


def test_batching_does_not_change_probabilities(trained_model, texts):
    one = load_classifier(trained_model / "model", precision="fp32", batch_tokens=1).predict_proba(texts)
    many = load_classifier(trained_model / "model", precision="fp32", batch_tokens=10**6).predict_proba(texts)
    for task in one:
        np.testing.assert_allclose(one[task], many[task], atol=1e-5)


# -- choosing a mode -------------------------------------------------------------------------------------
def test_cli_choices_are_the_runtime_modes():
    assert PRECISION_CHOICES == PRECISIONS


@pytest.mark.parametrize(
    "flags,openvino,expected",
    [
        ({"avx512_bf16", "avx512_vnni"}, False, "bf16"),
        ({"avx512_bf16", "avx512_vnni"}, True, "openvino-bf16"),  # the kind it was measured faster on
        ({"amx_bf16", "amx_int8", "avx512_bf16"}, True, "bf16"),  # not measured on AMX: torch's mode
        ({"amx_bf16", "amx_int8"}, False, "bf16"),
        ({"avx2", "fma"}, True, "fp32"),
    ],
)
def test_auto_follows_the_cpu_and_the_install(monkeypatch, flags, openvino, expected):
    from aranews.inference import openvino_session

    monkeypatch.setattr(runtime_module, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(openvino_session, "openvino_available", lambda: openvino)
    assert resolve_precision("auto", torch.device("cpu")) == expected
    assert resolve_precision(None, torch.device("cpu")) == expected
    assert runtime_module.auto_precision(torch.device("cpu")) in ("bf16", "fp32")  # training's: torch only


def test_benchmarks_record_the_flags_that_pick_kernels_on_every_kind(monkeypatch):
    zen3 = {"fpu", "sse4_2", "avx", "avx2", "fma", "bmi2"}
    xeon = {"avx2", "avx512f", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_bf16", "amx_int8", "amx_tile", "sse2"}
    monkeypatch.setattr(runtime_module, "cpu_flags", lambda: frozenset(zen3))
    assert runtime_module.speed_flags() == ["avx2"]  # a machine without AVX-512 still says what it has
    monkeypatch.setattr(runtime_module, "cpu_flags", lambda: frozenset(xeon))
    assert runtime_module.speed_flags() == sorted(xeon - {"sse2"})


def test_impossible_modes_are_refused_with_what_to_do(monkeypatch):
    with pytest.raises(PrecisionError, match="not one of"):
        resolve_precision("int4", torch.device("cpu"))
    with pytest.raises(PrecisionError, match="CUDA only"):
        resolve_precision("fp16", torch.device("cpu"))
    monkeypatch.setattr(runtime_module, "onnxruntime_available", lambda: False)
    with pytest.raises(PrecisionError, match=r"aranews-classifier\[onnx\]"):
        resolve_precision("int8", torch.device("cpu"))


def test_cli_names_a_missing_extra_in_one_line(trained_model, monkeypatch, capsys):
    monkeypatch.setattr(runtime_module, "onnxruntime_available", lambda: False)
    code = main(["predict", "--model", str(trained_model / "model"), "--precision", "int8", "نص"])
    assert code == 2
    assert "aranews-classifier[onnx]" in capsys.readouterr().err


# -- the modes themselves ------------------------------------------------------------------------------
def test_bf16_stays_close_to_fp32(trained_model, texts):
    ref = load_classifier(trained_model / "model", precision="fp32").predict_proba(texts)
    got = load_classifier(trained_model / "model", precision="bf16").predict_proba(texts)
    for task in ref:
        assert np.abs(ref[task] - got[task]).max() < 0.05
        np.testing.assert_allclose(got[task].sum(axis=1), 1.0, atol=1e-5)


def test_bf16_weights_held_once_give_the_logits_autocast_gives(trained_model, texts, tmp_path):
    import torch

    from aranews.inference.classifier import NewsClassifier
    from aranews.inference.export import ExportError, export_task

    owned = load_classifier(trained_model / "model", precision="bf16")
    reference = load_classifier(trained_model / "model", precision="fp32")
    shared = NewsClassifier(reference.model, reference.tokenizer, reference.device, precision="bf16")  # not its own
    got, want = owned.predict_proba(texts), shared.predict_proba(texts)
    for task in want:
        np.testing.assert_array_equal(got[task], want[task])  # the same rounding of the same weights
    assert owned.holds_reduced_weights and not shared.holds_reduced_weights
    linear = next(m for m in owned.model.modules() if isinstance(m, torch.nn.Linear))
    assert linear.weight.dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in reference.model.parameters())  # the shared model is untouched
    with pytest.raises(RuntimeError, match="holds its weights in bf16"):
        owned.save_pretrained(tmp_path / "saved")
    with pytest.raises(ExportError, match="holds its weights in bf16"):
        export_task(owned, "topic", tmp_path / "exported")


@needs_onnxruntime
def test_int8_is_refused_unless_it_agrees_on_this_model_here(trained_model, texts, tmp_path, monkeypatch, capsys):
    from aranews.inference.agreement import record_agreement

    monkeypatch.setenv("ARANEWS_CACHE", str(tmp_path / "cache"))
    model = trained_model / "model"
    with pytest.raises(PrecisionError, match="no agreement check of int8 for this model on this machine"):
        load_classifier(model, precision="int8")
    failing = [ModeAgreement("int8", "topic", 200, 0.954, 9, 0.3, 9.0, False)]
    record_agreement(PrecisionReport(str(model), 0.99, 5.0, failing))
    with pytest.raises(PrecisionError, match=r"other labels than fp32 on 4\.6% of 200 texts \(task 'topic'"):
        load_classifier(model, precision="int8")
    code = main(["predict", "--model", str(model), "--precision", "int8", "نص"])
    err = capsys.readouterr().err
    assert code == 2 and "check-precision --model" in err and err.count("\n") == 1
    # the check command records what it measured; on this tiny model int8 may or may not pass: it decides
    data = write_jsonl(tmp_path / "dev.jsonl", [{"id": i, "text": t} for i, t in enumerate(texts)])
    main(["check-precision", "--model", str(model), "--data", str(data), "--modes", "int8"])
    assert "recorded in" in capsys.readouterr().out
    report = check_precision(model, texts, modes=["int8"])
    if report.passed:
        assert load_classifier(model, precision="int8").precision == "int8"
    else:
        with pytest.raises(PrecisionError):
            load_classifier(model, precision="int8")
    monkeypatch.setenv("ARANEWS_INT8_UNCHECKED", "1")  # timing benchmarks on random weights only
    assert load_classifier(model, precision="int8").precision == "int8"


@needs_onnxruntime
def test_int8_runs_from_a_cached_export(trained_model, int8_checked, texts, tmp_path, monkeypatch):
    ref = load_classifier(trained_model / "model", precision="fp32").predict_proba(texts)
    clf = load_classifier(trained_model / "model", precision="int8")
    assert clf.precision == "int8"
    got = clf.predict_proba(texts)
    for task in ref:
        assert got[task].shape == ref[task].shape
        assert np.abs(ref[task] - got[task]).max() < 0.1
    cached = list((tmp_path / "cache" / "onnx").glob("*/model-int8.onnx"))
    assert len(cached) == 1 and not list(cached[0].parent.glob("*fp32*"))

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the cache holds this model")

    monkeypatch.setattr(runtime_module.OnnxInt8Runner, "_export", no_export)
    again = load_classifier(trained_model / "model", precision="int8").predict_proba(texts)
    for task in ref:
        np.testing.assert_array_equal(again[task], got[task])


@needs_onnxruntime
def test_int8_releases_the_torch_encoder_it_owns_and_says_so(trained_model, int8_checked, texts, tmp_path):
    clf = load_classifier(trained_model / "model", precision="int8")
    first = clf.predict_proba(texts)
    encoder = clf._model.encoder
    assert all(p.device.type == "meta" for p in encoder.parameters())  # no second copy beside the session
    second = clf.predict_proba(texts)  # ONNX Runtime alone keeps scoring
    for task in first:
        np.testing.assert_array_equal(first[task], second[task])
    with pytest.raises(RuntimeError, match="load .* again with precision fp32"):
        clf.save_pretrained(tmp_path / "copy")
    with pytest.raises(RuntimeError, match="released its torch encoder"):
        clf.model  # noqa: B018

    # a model someone else holds (check_precision's reference) is never released
    shared = load_classifier(trained_model / "model", precision="fp32")
    borrowed = NewsClassifier(shared.model, shared.tokenizer, source=shared.source, precision="int8")
    borrowed.predict_proba(texts)
    assert all(p.device.type == "cpu" for p in shared.model.encoder.parameters())
    shared.predict_proba(texts)


# -- the agreement check -------------------------------------------------------------------------------
def test_check_precision_reports_every_task_and_mode(trained_model, texts, monkeypatch, tmp_path):
    monkeypatch.setenv("ARANEWS_CACHE", str(tmp_path / "cache"))
    report = check_precision(trained_model / "model", texts, modes=["bf16", "int8", "fp16"])
    checked = {(r.mode, r.task) for r in report.rows}
    assert {("bf16", "topic"), ("bf16", "stance")} <= checked
    assert "fp16" in report.unavailable and "CUDA" in report.unavailable["fp16"]
    for row in report.rows:
        assert row.articles == len(texts)
        assert row.agreement == pytest.approx(1 - row.disagreements / row.articles, abs=1e-6)
        assert row.passed == (row.agreement >= report.min_agreement)
    assert "agreement" in report.format()


def test_a_failing_mode_is_flagged():
    ok = ModeAgreement("bf16", "topic", 100, 1.0, 0, 0.01, 5.0, True)
    bad = ModeAgreement("int8", "stance", 100, 0.97, 3, 0.3, 9.0, False)
    report = PrecisionReport("m", 0.99, 2.0, [ok, bad])
    assert not report.passed
    assert "FAILED" in report.format().splitlines()[-1]
    assert json.loads(json.dumps(report.to_dict()))["passed"] is False


def test_check_precision_command(trained_model, sample_rows, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ARANEWS_CACHE", str(tmp_path / "cache"))  # where it records what it measured
    data = write_jsonl(tmp_path / "dev.jsonl", [{"id": i, "text": r["text"]} for i, r in enumerate(sample_rows["dev"])])
    out = tmp_path / "report.json"
    args = ["check-precision", "--model", str(trained_model / "model"), "--data", str(data), "--modes", "bf16"]
    assert main([*args, "--min-agreement", "0", "--json", str(out)]) == 0
    assert "bf16" in capsys.readouterr().out
    assert json.loads(out.read_text())["passed"] is True
    from aranews.inference import agreement

    real = agreement.check_precision

    def with_one_disagreement(*a, **k):  # as if bf16 had changed one label: the exit status says so
        report = real(*a, **k)
        for row in report.rows:
            row.disagreements, row.agreement, row.passed = row.disagreements + 1, row.agreement - 0.01, False
        return report

    monkeypatch.setattr(agreement, "check_precision", with_one_disagreement)
    assert main([*args, "--min-agreement", "1"]) == 1
    assert "FAILED" in capsys.readouterr().err
    monkeypatch.undo()
    with pytest.raises(SystemExit):  # an agreement share above 1 is a usage error, not a check nobody can pass
        main([*args, "--min-agreement", "1.01"])


# -- the scorer ---------------------------------------------------------------------------------------------
def test_scores_record_the_precision_and_a_resume_keeps_it(trained_model, sample_rows, tmp_path, monkeypatch):
    from aranews.inference import outputs as outputs_module

    rows = [{"id": i, "text": r["text"]} for i, r in enumerate(sample_rows["dev"])]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "scores.jsonl"
    fp32 = load_classifier(trained_model / "model", precision="fp32")
    real, calls = outputs_module.score_records, {"n": 0}

    def stop_at_second_chunk(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(outputs_module, "score_records", stop_at_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        score_archive(fp32, source, out, chunk_size=4, progress=False)
    monkeypatch.setattr(outputs_module, "score_records", real)
    bf16 = load_classifier(trained_model / "model", precision="bf16")
    with pytest.raises(ValueError, match="precision was 'fp32', now 'bf16'"):
        score_archive(bf16, source, out, chunk_size=4, progress=False, resume=True)
    summary = score_archive(fp32, source, out, chunk_size=4, progress=False, resume=True)
    assert summary.complete and summary.scored == len(rows)
    assert summary.provenance["precision"] == "fp32"


# -- the reader thread ----------------------------------------------------------------------------------
def test_prefetch_keeps_order_and_raises_the_producers_error():
    assert list(_prefetch(iter(range(50)), depth=2)) == list(range(50))

    def broken():
        yield 1
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for item in _prefetch(broken()):
            got.append(item)
    assert got == [1]


def test_prefetch_stops_its_thread_when_the_consumer_stops():
    before = threading.active_count()
    endless = iter(int, 1)  # never exhausted
    for i, _ in enumerate(_prefetch(endless)):
        if i == 5:
            break
    assert threading.active_count() == before
