"""The model contract: save → load gives identical logits and labels; losses ignore missing labels;
multi-label thresholds; window pooling; self-describing, safetensors-only checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from inference import load_classifier
from inference.classifier import build_encoder
from inference.encoding import collate_articles
from inference.modeling import ClassifierConfig, LongDocumentConfig, MultiTaskClassifier, TaskSpec


def _model(backbone, tasks=None, **kwargs) -> MultiTaskClassifier:
    torch.manual_seed(0)
    tasks = tasks or [
        TaskSpec("topic", ["a", "b", "c"]),
        TaskSpec("tags", ["x", "y"], "multi_label", thresholds=[0.3, 0.7]),
    ]
    return MultiTaskClassifier.from_encoder(str(backbone), tasks, max_length=64, **kwargs).eval()


def _batch(model, tokenizer, texts):
    encoder = build_encoder(model.config, tokenizer)
    return collate_articles(encoder.encode(texts), encoder.pad_token_id)


def test_save_load_identical_logits_and_self_description(tmp_path, tiny_backbone, tiny_tokenizer):
    model = _model(tiny_backbone)
    batch = _batch(model, tiny_tokenizer, ["روسيا وتركيا توقعان اتفاقا", "مسيرات"])
    with torch.inference_mode():
        before = model(**batch).logits
    model.save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(str(tmp_path))
    assert (tmp_path / "model.safetensors").is_file()
    assert not list(tmp_path.glob("*.bin")) and not list(tmp_path.glob("*.pt"))
    saved = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    assert saved["tasks"][0] == {
        "name": "topic",
        "labels": ["a", "b", "c"],
        "problem_type": "single_label",
        "pair_column": None,
        "thresholds": None,
    }
    assert saved["preprocessing"] == ["strip_boilerplate", "arabert_v02"]
    assert saved["max_length"] == 64 and saved["long_document"]["strategy"] == "head_tail"
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
    with pytest.raises(ValueError, match="architecture='BertModel'"):
        MultiTaskClassifier.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="no config.json"):
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
    model = _model(tiny_backbone)
    model.save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(str(tmp_path))
    clf = load_classifier(tmp_path)
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
    model = _model(tiny_backbone, long_document=LongDocumentConfig("chunks", chunk_pooling=pooling))
    windows = torch.randint(5, 100, (5, 12))
    article_index = torch.tensor([0, 0, 0, 1, 1])
    with torch.no_grad():
        pooled = model(windows, torch.ones_like(windows), article_index=article_index).logits["topic"]
        each = model(windows, torch.ones_like(windows)).logits["topic"]
    reduce = (lambda t: t.mean(0)) if pooling == "mean" else (lambda t: t.max(0).values)
    torch.testing.assert_close(pooled[0], reduce(each[:3]))
    torch.testing.assert_close(pooled[1], reduce(each[3:]))


def test_task_spec_validation():
    with pytest.raises(ValueError, match="needs at least two labels"):
        TaskSpec("t", ["a"])
    with pytest.raises(ValueError, match="thresholds=.*expected 2 values in"):
        TaskSpec("t", ["a", "b"], "multi_label", thresholds=[0.5])
    with pytest.raises(ValueError, match="only for multi_label"):
        TaskSpec("t", ["a", "b"], thresholds=[0.5, 0.5])
    with pytest.raises(KeyError, match="no task 'x'"):
        ClassifierConfig(tasks=[TaskSpec("t", ["a", "b"])], encoder={}, base_model="m").task("x")
