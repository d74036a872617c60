"""Checkpoints the transformers ecosystem can load: one task exported as a standard sequence-classification
model gives the library's scores through ``transformers.pipeline``, for a BERT and an XLM-R encoder; saved
directories are push-ready."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from aranews.inference.classifier import NewsClassifier, load_classifier
from aranews.inference.config import ModelConfig, TaskSpec
from aranews.inference.export import ExportError, export_task
from aranews.inference.modeling import MultiTaskClassifier
from tests.helpers import build_backbone

TEXTS = [
    "وقعت أنقرة وموسكو اتفاقا لتوسيع إمدادات الغاز الطبيعي",
    "انتقدت موسكو بيع تركيا طائرات مسيرة إلى كييف",
    "بحث وزيرا خارجية البلدين الوضع في سوريا",
]
TARGETS = ["الغاز", "المسيرات", "سوريا"]


@pytest.fixture(scope="module", params=["bert", "xlm-roberta"])
def backbone(request, tmp_path_factory, sample_rows):
    texts = [r["text"] for r in sample_rows["train"]]
    return build_backbone(tmp_path_factory.mktemp(f"backbone-{request.param}"), texts, request.param)


@pytest.fixture(scope="module")
def saved(backbone, tmp_path_factory):
    """A model with a single-label, a multi-label and a target-conditioned task, heads randomised so
    the scores differ across labels."""
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    tasks = [
        TaskSpec("topic", ["security", "diplomacy", "economy_energy"]),
        TaskSpec("tags", ["gas", "drones"], "multi_label", thresholds=[0.4, 0.6]),
        TaskSpec("stance", ["favor", "against", "none"], pair_column="target"),
    ]
    model = MultiTaskClassifier.from_encoder(
        ModelConfig(encoder=str(backbone), max_length=64, pair_max_length=16), tasks
    )
    with torch.no_grad():
        for head in model.heads.values():
            for p in head.parameters():
                p.normal_(0, 0.5)
    out = tmp_path_factory.mktemp("saved")
    return NewsClassifier(model, AutoTokenizer.from_pretrained(str(backbone))).save_pretrained(out)


@pytest.mark.parametrize("task", ["topic", "tags", "stance"])
def test_pipeline_scores_equal_the_library(saved, tmp_path, task):
    from transformers import pipeline

    clf = load_classifier(saved, device="cpu", precision="fp32")
    exported = export_task(clf, task, tmp_path / task)
    config = json.loads((exported / "config.json").read_text(encoding="utf-8"))
    assert config["id2label"] == {str(i): label for i, label in enumerate(clf.labels[task])}
    assert not list(exported.glob("*.bin")) and (exported / "model.safetensors").is_file()

    pipe = pipeline("text-classification", model=str(exported), device="cpu")  # no code from this library
    clean = clf.windower.preprocess
    if task == "stance":
        outputs = pipe([{"text": clean(t), "text_pair": clean(x)} for t, x in zip(TARGETS, TEXTS)], top_k=None)
        ours = clf.predict_proba(TEXTS, pairs={"target": TARGETS}, tasks=[task])[task]
    else:
        outputs = pipe([clean(t) for t in TEXTS], top_k=None)
        ours = clf.predict_proba(TEXTS, tasks=[task])[task]
    theirs = np.array(
        [[next(o["score"] for o in out if o["label"] == label) for label in clf.labels[task]] for out in outputs]
    )
    assert np.abs(theirs - ours).max() <= 1e-4
    assert np.ptp(ours) > 0.05  # the comparison is not between constant rows


def test_export_card_and_metadata(saved, tmp_path):
    exported = export_task(saved, "stance", tmp_path / "stance")
    card = (exported / "README.md").read_text(encoding="utf-8")
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "text-classification"
    assert "base_model" not in meta  # the encoder is a local folder, not a hub model
    assert "build_preprocessor" in card and '"text_pair": clean(article_text)' in card
    assert json.loads((exported / "tokenizer_config.json").read_text(encoding="utf-8"))["model_max_length"] == 64


def test_saved_directory_is_push_ready(saved, monkeypatch):
    card = (saved / "README.md").read_text(encoding="utf-8")
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["library_name"] == "aranews-classifier"  # true of a multi-task directory
    assert "## How to use" in card and "aranews export" in card

    import huggingface_hub

    calls = {}

    def create_repo(self, repo_id, **kwargs):
        calls["create"] = (repo_id, kwargs)

    def upload_folder(self, repo_id, folder_path, **kwargs):
        from pathlib import Path

        calls["files"] = sorted(p.name for p in Path(folder_path).iterdir())
        return "https://huggingface.co/org/model/commit/abc"

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    url = load_classifier(saved).push_to_hub("org/model", private=True)
    assert url.endswith("/commit/abc") and calls["create"][0] == "org/model"
    assert {"README.md", "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(
        calls["files"]
    )


def test_mean_pooling_cannot_be_exported(tiny_backbone, tiny_tokenizer, tmp_path):
    model = MultiTaskClassifier.from_encoder(
        ModelConfig(encoder=str(tiny_backbone), max_length=64, pooling="mean"), [TaskSpec("topic", ["a", "b"])]
    )
    clf = NewsClassifier(model, tiny_tokenizer)
    with pytest.raises(ExportError, match="only models trained with pooling: cls can be exported"):
        export_task(clf, "topic", tmp_path / "out")


def test_cli_export(saved, tmp_path, capsys):
    from aranews.cli import main

    assert main(["export", "--model", str(saved), "--task", "topic", "--out", str(tmp_path / "t"), "-q"]) == 0
    assert "pipeline('text-classification'" in capsys.readouterr().out
    assert main(["export", "--model", str(saved), "--task", "nope", "--out", str(tmp_path / "n")]) == 2
    assert "no task 'nope'" in capsys.readouterr().err
