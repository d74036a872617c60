"""One path from a row to the model's input: training, predict, inspect and score compose the title the
same way and share one policy for empty and non-Arabic text; what the model read is visible."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from aranews.inference import compose_text, load_classifier
from aranews.inference.classifier import DeviceError, resolve_device
from aranews.inference.scoring import score_archive
from tests.helpers import SAMPLE, read_jsonl, write_jsonl


@pytest.fixture(scope="module")
def classifier(trained_model):
    return load_classifier(trained_model / "model", device="cpu", batch_size=4)


@pytest.fixture(scope="module")
def titled(sample_rows):
    """Dev rows with a title drawn from another row, so that the title changes what the model reads."""
    dev = sample_rows["dev"]
    return [
        {"id": r["id"], "title": dev[(i + 7) % len(dev)]["text"].split("\n")[0][:120], "text": r["text"]}
        for i, r in enumerate(dev)
    ]


def test_compose_text():
    assert compose_text("النص", "  العنوان ") == "العنوان\nالنص"
    assert compose_text("النص", "   ") == compose_text("النص", None) == compose_text("النص", 5) == "النص"
    assert compose_text("النص", "العنوان", policy="ignore") == "النص"


def test_predict_and_score_agree_on_titled_rows(classifier, titled, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", titled)
    score_archive(classifier, source, tmp_path / "out.jsonl", progress=False)
    scored = read_jsonl(tmp_path / "out.jsonl")
    predicted = classifier.predict([r["text"] for r in titled], title=[r["title"] for r in titled])
    untitled = classifier.predict([r["text"] for r in titled])
    assert [r["id"] for r in scored] == [r["id"] for r in titled]
    for row, p in zip(scored, predicted, strict=True):
        for task in ("topic", "stance"):
            assert row[task] == p[task]["label"] and row[f"{task}_score"] == pytest.approx(p[task]["score"], abs=1e-6)
    assert predicted != untitled  # the title is read, so ignoring it would have shown
    # training reads the same composition
    from aranews.training.config import DataConfig, TaskConfig
    from aranews.training.data import load_split

    split, problems = load_split(
        "dev", source, DataConfig(train=str(source), dev=str(source)), [TaskConfig("topic")], require_labels=False
    )
    assert problems == [] and split.texts == [compose_text(r["text"], r["title"]) for r in titled]


def test_predict_input_reads_archives_and_writes_ids(classifier, titled, tmp_path, trained_model, capsys):
    from aranews.cli import main

    path = tmp_path / "in.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "title", "text"])
        writer.writeheader()
        writer.writerows(titled[:5])
        writer.writerow({"id": "", "title": "", "text": "نص بلا معرف"})
        writer.writerow({"id": "en", "title": "", "text": "English only"})
    assert main(["-q", "predict", "--model", str(trained_model / "model"), "--input", str(path)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 7  # one line per row, in order: nothing lost
    assert [line["id"] for line in lines[:5]] == [r["id"] for r in titled[:5]]
    expected = classifier.predict([r["text"] for r in titled[:5]], title=[r["title"] for r in titled[:5]])
    assert [line["topic"] for line in lines[:5]] == [p["topic"] for p in expected]
    assert lines[5]["skipped"] == "missing_id" and lines[6] == {
        "id": "en",
        "topic": None,
        "stance": None,
        "skipped": "no_arabic_text",
    }


def test_one_policy_for_empty_and_non_arabic_text(classifier, tmp_path):
    for text, reason in [
        ("", "empty_text"),
        ("   ", "empty_text"),
        ("ـــــ", "empty_text"),
        ("Ankara and Moscow", "no_arabic_text"),
    ]:
        result = classifier.predict(text)
        assert result == {"topic": None, "stance": None, "skipped": reason}, text
        assert all(np.isnan(v).all() for v in classifier.predict_proba(text).values())
    kept = classifier.predict("Ankara and Moscow", score_non_arabic=True)
    assert kept["no_arabic"] is True and kept["topic"]["label"] in classifier.labels["topic"]
    mixed = classifier.predict(["", "وقعت أنقرة وموسكو اتفاقا"])
    assert mixed[0]["skipped"] == "empty_text" and "skipped" not in mixed[1]
    rows = [
        {"id": "t", "text": "ـــــ"},
        {"id": "e", "text": "Ankara"},
        {"id": "ok", "text": "وقعت أنقرة وموسكو اتفاقا"},
    ]
    summary = score_archive(classifier, write_jsonl(tmp_path / "a.jsonl", rows), tmp_path / "s.jsonl", progress=False)
    assert summary.error_reasons == {"empty_text": 1, "no_arabic_text": 1} and summary.scored == 1


def test_inspect_shows_what_the_model_read(classifier, trained_model, capsys):
    long_text = " ".join(["روسيا وتركيا توقعان اتفاقا جديدا للتعاون في مجال الطاقة"] * 30)
    view = classifier.inspect(long_text, title="عنوان الخبر")
    assert view.text.startswith("عنوان الخبر\n") and view.skipped is None
    group = view.inputs["article"]
    (window,) = group["windows"]  # head_tail: one window of max_length
    assert window["tokens"] == 62 and group["dropped_tokens"] == group["n_tokens"] - 62
    assert window["text"].startswith("عنوان الخبر") and window["text"].endswith("الطاقة")
    assert classifier.inspect("ـــــ").skipped == "empty_text"
    from aranews.cli import main

    assert main(["-q", "inspect", "--model", str(trained_model / "model"), long_text, "--title", "عنوان"]) == 0
    out = capsys.readouterr().out
    assert "window 1 (62 tokens)" in out and "not seen" in out


def test_threshold_overrides_are_checked(classifier):
    with pytest.raises(ValueError, match="task 'topic' is single-label"):
        classifier.predict("نص", thresholds={"topic": [0.5] * 6})
    with pytest.raises(KeyError, match="no task 'nope'"):
        classifier.predict("نص", thresholds={"nope": [0.5]})


def test_device_errors_are_clear():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(DeviceError, match="no CUDA support|no such CUDA device"):
        resolve_device("cuda")
    with pytest.raises(DeviceError, match="not a device name"):
        resolve_device("gpu0")
    assert resolve_device("cpu").type == "cpu"


def test_cli_device_error_is_one_line(trained_model, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    from aranews.cli import main

    assert main(["predict", "--model", str(trained_model / "model"), "--device", "cuda", "نص"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: device 'cuda'") and "Traceback" not in err and len(err.splitlines()) == 1


def test_sample_archive_scores_with_titles(classifier, tmp_path):
    summary = score_archive(classifier, SAMPLE / "archive.jsonl", tmp_path / "s.jsonl", progress=False)
    assert summary.complete and summary.provenance["title"] == "prepend"
    assert not math.isnan(summary.articles_per_second)


def test_removed_page_furniture_is_counted(classifier, tmp_path):
    from aranews.inference.preprocessing import strip_boilerplate

    text = (
        "وقعت أنقرة وموسكو اتفاقا جديدا للطاقة.\nشارك\nالمصدر: وكالات\n3 مارس 2023\nوأضاف الوزير أن العمل سيبدأ قريبا."
    )
    removed = len(text) - len(strip_boilerplate(text))
    assert removed > 0 and classifier.inspect(text).boilerplate_chars == removed
    score_archive(
        classifier, write_jsonl(tmp_path / "a.jsonl", [{"id": "x", "text": text}]), tmp_path / "s.jsonl", progress=False
    )
    assert read_jsonl(tmp_path / "s.jsonl")[0]["boilerplate_chars"] == removed
