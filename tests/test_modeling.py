"""The model contract: save → load gives identical logits and labels; losses ignore missing labels;
multi-label thresholds; window pooling; self-describing, safetensors-only checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from aranews.inference import load_classifier
from aranews.inference.classifier import NewsClassifier
from aranews.inference.config import ClassifierConfig, LongDocumentConfig, ModelConfig, TaskSpec
from aranews.inference.inputs import ArticleWindower, collate_articles
from aranews.inference.modeling import MultiTaskClassifier
from aranews.inference.schema import ConfigError, check_all


def _model(backbone, tasks=None, **kwargs) -> MultiTaskClassifier:
    torch.manual_seed(0)
    tasks = tasks or [
        TaskSpec("topic", ["a", "b", "c"]),
        TaskSpec("tags", ["x", "y"], "multi_label", thresholds=[0.3, 0.7]),
    ]
    settings = ModelConfig(encoder=str(backbone), max_length=64, **kwargs)
    return MultiTaskClassifier.from_encoder(settings, tasks).eval()


def _save(model, tokenizer, directory):
    return NewsClassifier(model, tokenizer).save_pretrained(directory)


def _batch(model, tokenizer, texts):
    windower = ArticleWindower.from_config(model.config.model, tokenizer)
    return collate_articles(windower.encode(texts), windower.pad_token_id)


def test_save_load_identical_logits_and_self_description(tmp_path, tiny_backbone, tiny_tokenizer):
    model = _model(tiny_backbone)
    batch = _batch(model, tiny_tokenizer, ["روسيا وتركيا توقعان اتفاقا", "مسيرات"])
    with torch.inference_mode():
        before = model(**batch).logits
    _save(model, tiny_tokenizer, tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "README.md").is_file()
    assert not list(tmp_path.glob("*.bin")) and not list(tmp_path.glob("*.pt"))
    saved = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    assert saved["tasks"][0] == {
        "name": "topic",
        "labels": ["a", "b", "c"],
        "problem_type": "single_label",
        "pair_column": None,
        "thresholds": None,
        "temperature": None,  # uncalibrated: a model built here, not trained
        "bias": None,
        "dev_rates": None,
        "abstain_below": None,
        "descriptions": None,  # a zero-shot model's label descriptions
    }
    assert saved["model"]["input_prefix"] == "" and saved["zero_shot"] is None
    assert saved["model"]["preprocessing"] == ["strip_boilerplate", "arabert_v02"]
    assert saved["model"]["max_length"] == 64 and saved["model"]["long_document"]["strategy"] == "head_tail"
    assert saved["model"]["encoder"] == str(tiny_backbone) and saved["encoder_config"]["model_type"] == "bert"
    assert saved["tokenizer"]["vocab_size"] == len(tiny_tokenizer) and "tokenizer.json" in saved["tokenizer"]["files"]
    assert {"aranews_classifier", "transformers", "torch"} <= set(saved["versions"])
    loaded = MultiTaskClassifier.from_pretrained(tmp_path)
    with torch.inference_mode():
        after = loaded(**batch).logits
    for name in before:
        torch.testing.assert_close(before[name], after[name], rtol=0, atol=0)
    texts = ["روسيا وتركيا توقعان اتفاقا", "مسيرات"]
    assert load_classifier(tmp_path).predict(texts) == load_classifier(tmp_path).predict(texts)


def test_loading_refuses_pickles_and_foreign_configs(tmp_path, tiny_backbone):
    _model(tiny_backbone).save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").rename(tmp_path / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match="loaded from safetensors only"):
        MultiTaskClassifier.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text('{"architecture": "BertModel"}', encoding="utf-8")
    with pytest.raises(ConfigError, match="architecture: got 'BertModel'"):
        MultiTaskClassifier.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="config.json: missing"):
        MultiTaskClassifier.from_pretrained(tmp_path / "nowhere")


def test_missing_labels_are_ignored_in_the_loss(tiny_backbone, tiny_tokenizer):
    model = _model(tiny_backbone)
    batch = _batch(model, tiny_tokenizer, ["أ", "ب", "ج"])
    full = {"topic": torch.tensor([0, 1, 2]), "tags": torch.tensor([[1, 0], [0, 1], [1, 1]])}
    partial = {"topic": torch.tensor([0, -100, -100]), "tags": torch.tensor([[-100, -100], [0, 1], [-100, -100]])}
    only_first = {"topic": torch.tensor([0]), "tags": torch.tensor([[0, 1]])}
    with torch.no_grad():
        out_partial = model(**batch, labels=partial)
        out_full = model(**batch, labels=full)
        logits = out_full.logits
    expected_topic = torch.nn.functional.cross_entropy(logits["topic"][:1], only_first["topic"])
    expected_tags = torch.nn.functional.binary_cross_entropy_with_logits(
        logits["tags"][1:2], only_first["tags"].float()
    )
    torch.testing.assert_close(out_partial.task_losses["topic"], expected_topic)
    torch.testing.assert_close(out_partial.task_losses["tags"], expected_tags)
    none = {"topic": torch.tensor([-100, -100, -100])}
    with torch.no_grad():
        assert model(**batch, labels=none).loss.item() == 0.0


def test_multi_label_thresholds_decide_labels(tmp_path, tiny_backbone, tiny_tokenizer):
    clf = load_classifier(_save(_model(tiny_backbone), tiny_tokenizer, tmp_path))
    probs = clf.predict_proba(["نص أول", "نص ثان"])
    for row, p in zip(clf.predict(["نص أول", "نص ثان"]), probs["tags"]):
        expected = [label for label, q, t in zip(["x", "y"], p, [0.3, 0.7]) if q >= t]
        assert row["tags"]["labels"] == expected
    everything = clf.predict("نص", thresholds={"tags": [0.01, 0.01]})
    assert everything["tags"]["labels"] == ["x", "y"]
    nothing = clf.predict("نص", thresholds={"tags": [0.99, 0.99]})
    assert nothing["tags"] == {"labels": [], "scores": []}


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_chunk_logits_are_pooled_per_article(tiny_backbone, pooling):
    model = _model(tiny_backbone, long_document=LongDocumentConfig("chunks", stride=8, chunk_pooling=pooling))
    windows = torch.randint(5, 100, (5, 12))
    article_index = torch.tensor([0, 0, 0, 1, 1])
    with torch.no_grad():
        pooled = model(windows, torch.ones_like(windows), article_index=article_index).logits["topic"]
        each = model(windows, torch.ones_like(windows)).logits["topic"]
    reduce = (lambda t: t.mean(0)) if pooling == "mean" else (lambda t: t.max(0).values)
    torch.testing.assert_close(pooled[0], reduce(each[:3]))
    torch.testing.assert_close(pooled[1], reduce(each[3:]))


def test_task_spec_validation():
    assert check_all(TaskSpec("t", ["a"])) == ["labels: got ['a']; expected at least two labels"]
    assert check_all(TaskSpec("t", ["a", "b"], "multi_label", thresholds=[0.5])) == [
        "thresholds: got [0.5]; expected 2 values in (0, 1), one per label"
    ]
    assert "only for multi_label" in check_all(TaskSpec("t", ["a", "b"], thresholds=[0.5, 0.5]))[0]
    config = ClassifierConfig(tasks=[TaskSpec("t", ["a"])], model=ModelConfig(max_length=8), encoder_config={})
    with pytest.raises(ConfigError) as caught:
        config.validate()
    assert (
        caught.value.problems
        == [
            "max_length: got 8; expected an integer in [16, 8192]",
            "encoder_config.model_type: got None; expected a transformers model type",
            "tasks[0].labels: got ['a']; expected at least two labels",
        ]
        or len(caught.value.problems) == 3
    )
    with pytest.raises(KeyError, match="no task 'x'"):
        ClassifierConfig(tasks=[TaskSpec("t", ["a", "b"])], model=ModelConfig(), encoder_config={}).task("x")
