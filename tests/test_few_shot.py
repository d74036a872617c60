"""The few-shot recipe (issue 23): chosen by the rows per label, heads started as nearest-centroid classifiers,
a fixed number of steps with the last model kept, both tasks, partial labels, class weights and resume."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from aranews.inference.config import TaskSpec
from aranews.training.config import config_from_dict
from aranews.training.few_shot import FEW_SHOT_MAX_PER_LABEL, _centroid_layer, choose_recipe
from aranews.training.trainer import Trainer
from tests.helpers import experiment, write_jsonl


def test_auto_is_few_shot_for_few_rows_per_label_and_standard_for_many():
    tasks = [TaskSpec("topic", ["a", "b", "c"])]
    few = {"topic": torch.tensor([0] * 10 + [1] * 12 + [2] * 30)}
    many = {"topic": torch.tensor([0] * 100 + [1] * 200 + [2] * (FEW_SHOT_MAX_PER_LABEL + 1))}
    assert choose_recipe("auto", tasks, few)[0] == "few_shot"
    name, why = choose_recipe("auto", tasks, many)
    assert name == "standard" and "the median label has 100 training rows" in why
    assert choose_recipe("few_shot", tasks, many)[0] == "few_shot"  # chosen by hand: kept
    with pytest.raises(ValueError, match="training.recipe='fast'"):
        choose_recipe("fast", tasks, few)


def test_centroid_heads_classify_separable_rows_and_leave_unseen_labels_below():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (3, 16))
    truth = np.repeat([0, 1, 2], 8)
    features = centres[truth] + rng.normal(0, 0.3, (len(truth), 16))
    task = TaskSpec("topic", ["a", "b", "c", "never_seen"])
    weight, bias, scale = _centroid_layer(features, truth, task)
    logits = features @ weight.T + bias
    assert (logits.argmax(1) == truth).all() and scale > 0
    assert (logits[:, 3] < logits[:, :3].min(axis=1)).all()  # a label without rows is learned, not guessed
    multi = TaskSpec("tags", ["x", "y"], problem_type="multi_label")
    tags = np.stack([truth == 0, truth != 2], axis=1).astype(int)
    weight, bias, _ = _centroid_layer(features, tags, multi)
    assert ((features @ weight.T + bias > 0) == (tags == 1)).mean() > 0.9


def _few_shot_config(tmp_path, tiny_backbone, name, rows=None, **training):
    data = {"train": str(rows)} if rows else {}
    tasks = [{"name": "topic", "class_weights": "balanced"}, {"name": "stance"}]
    settings = {"recipe": "few_shot", "few_shot_steps": 27, **training}
    return config_from_dict(experiment(tmp_path / name, tiny_backbone, data=data, tasks=tasks, training=settings))


def test_few_shot_trains_both_tasks_with_partial_labels_and_keeps_the_last_model(tmp_path, tiny_backbone, sample_rows):
    rows = [dict(r) for r in sample_rows["train"]]
    for r in rows[::3]:
        r["stance"] = None  # a third of the rows carry no stance label
    source = write_jsonl(tmp_path / "partial.jsonl", rows)
    metrics = Trainer(_few_shot_config(tmp_path, tiny_backbone, "fs", source)).train().metrics
    recipe = metrics["recipe"]
    assert recipe["name"] == "few_shot" and set(recipe["heads"]) == {"topic", "stance"}
    assert all(0.0 <= h["train_accuracy_at_start"] <= 1.0 and h["scale"] > 0 for h in recipe["heads"].values())
    epochs = math.ceil(27 / math.ceil(len(rows) / 16))  # the steps decide the epochs
    assert len(metrics["epochs"]) == epochs and metrics["best_epoch"] == epochs  # the last model, whatever dev says
    assert [e["dev_score"] is None for e in metrics["epochs"]] == [True] * (epochs - 1) + [False]
    assert set(metrics["dev"]) == {"topic", "stance"}
    card = (tmp_path / "fs" / "run" / "model" / "README.md").read_text(encoding="utf-8")
    assert "Few-shot recipe" in card and "no selection on dev" in card


def test_the_heads_start_better_than_chance_on_training_rows(tmp_path, tiny_backbone):
    metrics = Trainer(_few_shot_config(tmp_path, tiny_backbone, "start", few_shot_steps=1)).train().metrics
    heads = metrics["recipe"]["heads"]
    assert heads["topic"]["train_accuracy_at_start"] > 1 / 6 and heads["stance"]["train_accuracy_at_start"] > 1 / 3


def test_a_killed_few_shot_run_resumes_to_the_same_model(tmp_path, tiny_backbone):
    Trainer(_few_shot_config(tmp_path, tiny_backbone, "a")).train()
    Trainer(_few_shot_config(tmp_path, tiny_backbone, "b")).train(stop_after_epochs=1)
    metrics = Trainer(_few_shot_config(tmp_path, tiny_backbone, "b", resume=True)).train().metrics
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2, 3]
    a = load_file(str(tmp_path / "a" / "run" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "run" / "model" / "model.safetensors"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    saved = json.loads((tmp_path / "b" / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert saved["recipe"]["name"] == "few_shot"


def test_an_input_prefix_starts_every_window_and_is_refused_by_export(tmp_path, tiny_backbone, trained_model):
    from transformers import AutoTokenizer

    from aranews.inference import load_classifier
    from aranews.inference.export import ExportError, export_task
    from aranews.inference.inputs import ArticleWindower

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_backbone))
    plain = ArticleWindower(tokenizer, [], 32, strategy="chunks", stride=4)
    prefixed = ArticleWindower(tokenizer, [], 32, strategy="chunks", stride=4, input_prefix="query: ")
    prefix = tokenizer("query: ", add_special_tokens=False)["input_ids"]
    text = " ".join(["كلمة"] * 80)
    for article in (prefixed.encode([text])[0], prefixed.encode([text], pairs=["هدف"])[0]):
        assert len(article.input_ids) > 1 and all(len(w) <= 32 for w in article.input_ids)
        assert all(list(w[1 : 1 + len(prefix)]) == prefix for w in article.input_ids)
    assert len(prefixed.encode([text])[0].input_ids) >= len(plain.encode([text])[0].input_ids)
    clf = load_classifier(trained_model / "model", device="cpu")
    clf.config.model.input_prefix = "query: "
    with pytest.raises(ExportError, match="input_prefix='query: '"):
        export_task(clf, "topic", tmp_path / "exported")


def test_retraining_few_shot_keeps_the_old_models_head_rows(tmp_path, trained_model):
    """With training.init_from the few-shot recipe changes the schedule only: the heads start as the old ones."""
    from aranews.inference import load_classifier

    config = _few_shot_config(tmp_path, trained_model / "model", "re", init_from=str(trained_model / "model"),
                              few_shot_steps=1, learning_rate=1e-12)  # fmt: skip
    metrics = Trainer(config).train().metrics
    assert metrics["recipe"]["heads"] == "kept from training.init_from"
    old, new = load_classifier(trained_model / "model"), load_classifier(tmp_path / "re" / "run" / "model")
    for task in ("topic", "stance"):
        a, b = old.model.heads[task].out_proj.weight, new.model.heads[task].out_proj.weight
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
