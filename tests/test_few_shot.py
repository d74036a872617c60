"""The few-shot recipe (issue 23): chosen by the rows per label, heads started as nearest-centroid classifiers,
a fixed number of steps with the last model kept, both tasks, partial labels, class weights and resume."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from aranews.inference.config import TaskSpec
from aranews.training.config import config_from_dict
from aranews.training.few_shot import (
    FEW_SHOT_MAX_PER_LABEL,
    _centroid_layer,
    _fit_new_rows,
    _pair_sampler,
    _triangle,
    choose_recipe,
)
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


def test_a_new_labels_row_is_fitted_on_its_ten_rows_and_the_kept_rows_stay():
    """Ten rows of a new label among 300: started as the average kept label it is never predicted; its row
    fitted on its rows (scale and offset along its centroid direction) recalls them and most unseen ones."""
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 1, (4, 24))

    def draw(counts):
        truth = np.repeat(np.arange(4), counts)
        return centres[truth] + rng.normal(0, 0.6, (len(truth), 24)), truth

    x, truth = draw([100, 100, 100, 10])
    kept = TaskSpec("topic", ["a", "b", "c"])
    weight, bias, _ = _centroid_layer(x[truth < 3], truth[truth < 3], kept)
    weight, bias = np.vstack([weight, weight.mean(0)]), np.r_[bias, bias.mean()]  # the new row: the average
    task = TaskSpec("topic", ["a", "b", "c", "new"])
    unseen, unseen_truth = draw([50, 50, 50, 50])
    assert ((unseen @ weight.T + bias).argmax(1) == 3).mean() < 0.05
    counts = np.bincount(truth)
    balanced = len(truth) / (4 * counts)
    rows = _fit_new_rows(x, truth, x @ weight.T + bias, [3], task, balanced)
    assert set(rows) == {3}
    weight[3], bias[3] = rows[3]
    predicted = (unseen @ weight.T + bias).argmax(1)
    assert (predicted[unseen_truth == 3] == 3).mean() > 0.8  # the new label is recalled on rows it never saw
    assert (predicted[unseen_truth < 3] == unseen_truth[unseen_truth < 3]).mean() > 0.9  # the kept ones still are
    tags = TaskSpec("tags", ["x", "new"], problem_type="multi_label")
    multi = np.stack([truth < 2, truth == 3], axis=1).astype(int)
    fixed = np.zeros((len(truth), 2))
    rows = _fit_new_rows(x, multi, fixed, [1], tags, np.array([1.0, 30.0]))
    w, b = rows[1]
    assert ((unseen @ w + b > 0) == (unseen_truth == 3)).mean() > 0.9
    assert _fit_new_rows(x, truth, x @ weight.T + bias, [3], task, None)  # unweighted works too
    assert _fit_new_rows(x, np.zeros_like(truth), x @ weight.T + bias, [3], task, None) == {}  # no rows: left


def test_the_model_card_says_how_a_retrained_models_heads_and_new_labels_started():
    from aranews.training.model_card import _selection_line

    metrics = {"epochs": [{}] * 3, "best_epoch": 3, "selection_metric": "macro_f1"}
    recipe = {"name": "few_shot", "why": "auto", "train_encoder": True, "heads": "kept from training.init_from",
              "new_labels": {"topic": {"gas": {"rows": 10, "fitted": True, "train_recall_at_start": 0.9}}}}  # fmt: skip
    line = _selection_line({**metrics, "recipe": recipe})
    assert "heads kept from the old model" in line and "nearest-centroid" not in line
    assert "topic/gas (10 rows; the started head gave it 90% of them)" in line
    fresh = {**recipe, "heads": {"topic": {"scale": 1.0}}, "new_labels": {}}
    line = _selection_line({**metrics, "recipe": fresh})
    assert "heads started as nearest-centroid classifiers" in line and "New label" not in line


def _few_shot_config(tmp_path, tiny_backbone, name, rows=None, **training):
    data = {"train": str(rows)} if rows else {}
    tasks = [{"name": "topic", "class_weights": "balanced"}, {"name": "stance"}]
    # a short pair stage: these tests are about the recipe's behaviour, not its default length
    settings = {"recipe": "few_shot", "few_shot_steps": 27, "few_shot_contrastive_steps": 20, **training}
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
    assert metrics["recipe"]["contrastive"]["steps"] == 0  # the old encoder stays under its heads
    old, new = load_classifier(trained_model / "model"), load_classifier(tmp_path / "re" / "run" / "model")
    for task in ("topic", "stance"):
        a, b = old.model.heads[task].out_proj.weight, new.model.heads[task].out_proj.weight
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_contrastive_pairs_are_balanced_never_self_pairs_and_skip_unlabelled_rows():
    task = TaskSpec("topic", ["a", "b", "c"])
    labels = np.array([0, 0, 0, 1, 1, -100, 2, -100, 1, 0])  # -100: no label for this task
    pairs = _pair_sampler(task, labels, torch.Generator().manual_seed(0))
    left, right, target = pairs(400)
    assert target.mean() == 0.5 and len(left) == len(right) == 400
    assert not np.isin(np.r_[left, right], [5, 7]).any()  # unlabelled rows are never drawn
    assert (left != right).all()
    assert ((labels[left] == labels[right]) == (target == 1)).all()
    assert 6 in right[target == 0]  # a label with one row is still a negative partner
    one_row_each = _pair_sampler(task, np.array([0, 1, 2]), torch.Generator())
    assert one_row_each is None  # no positive pair can be made
    multi = TaskSpec("tags", ["x", "y", "z"], problem_type="multi_label")
    sets = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [1, 1, 0]])
    left, right, target = _pair_sampler(multi, sets, torch.Generator().manual_seed(1))(50)
    jaccard = [(sets[i] & sets[j]).sum() / (sets[i] | sets[j]).sum() for i, j in zip(left, right)]
    np.testing.assert_allclose(target, jaccard)


def test_setfit_pairs_walk_every_pair_once_per_pass_self_pairs_included():
    task = TaskSpec("topic", ["a", "b", "c"])
    labels = np.array([0, 0, 0, 1, 1, -100, 2, 1, 0])  # groups of 4, 3 and 1 labelled rows
    positives = {
        tuple(sorted(p)) for g in ([0, 1, 2, 8], [3, 4, 7], [6]) for p in itertools.combinations_with_replacement(g, 2)
    }
    negatives = {
        (i, j)
        for i in range(9)
        for j in range(i + 1, 9)
        if labels[i] != labels[j] and -100 not in (labels[i], labels[j])
    }
    assert (len(positives), len(negatives)) == (17, 19)
    pairs = _pair_sampler(task, labels, torch.Generator().manual_seed(0), "setfit", budget=19)
    left, right, target = pairs(38)  # 19 of each: one pass of the negatives, the positives once and 2 again
    drawn = [tuple(sorted(p)) for p in zip(left.tolist(), right.tolist())]
    assert set(drawn[:19]) == positives and len(set(drawn[:17])) == 17  # each positive once before any twice
    assert sorted(drawn[19:]) == sorted(negatives)  # each negative exactly once
    assert (6, 6) in drawn[:17] and target[:19].all() and not target[19:].any()  # a row alone pairs with itself
    assert ((labels[left] == labels[right]) == (target == 1)).all()
    again = _pair_sampler(task, labels, torch.Generator().manual_seed(0), "setfit", budget=19)(38)
    assert all(np.array_equal(a, b) for a, b in zip(again, (left, right, target)))  # the seed decides
    multi = TaskSpec("tags", ["x", "y", "z"], problem_type="multi_label")
    sets = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [1, 1, 0]])
    left, right, target = _pair_sampler(multi, sets, torch.Generator().manual_seed(1), "setfit", budget=10)(10)
    assert len({tuple(sorted(p)) for p in zip(left.tolist(), right.tolist())}) == 10  # 4 * 5 / 2 pairs, once each
    np.testing.assert_allclose(
        target, [(sets[i] & sets[j]).sum() / (sets[i] | sets[j]).sum() for i, j in zip(left, right)]
    )
    with pytest.raises(ValueError, match="pair_set='all'"):
        _pair_sampler(task, labels, torch.Generator(), "all")


def test_setfit_pairs_of_a_large_training_set_cost_what_is_drawn():
    k = np.array([0, 1, 2, 3, 4, 5, 10**12, 10**12 + 7, 5 * 10**17])
    i, j = _triangle(k)
    assert (i * (i + 1) // 2 + j == k).all() and ((j >= 0) & (j <= i)).all()
    assert list(zip(i[:6].tolist(), j[:6].tolist())) == [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2)]
    labels = np.repeat([0, 1, 2], 200_000)  # 6e10 pairs: not listed, numbered
    left, right, target = _pair_sampler(
        TaskSpec("topic", ["a", "b", "c"]), labels, torch.Generator(), "setfit", budget=64
    )(64)
    assert ((labels[left] == labels[right]) == (target == 1)).all() and target.sum() == 32


def test_the_contrastive_stage_pulls_same_label_rows_together(tmp_path, tiny_backbone, sample_rows, monkeypatch):
    """On the training rows, the stage makes same-label pairs more similar than different-label pairs, encoding
    each row drawn in a step once."""
    from transformers import AutoTokenizer

    from aranews.inference.inputs import ArticleWindower
    from aranews.training.data import encode_split, load_and_validate
    from aranews.training.few_shot import _article_embeddings, contrastive_stage

    config = _few_shot_config(tmp_path, tiny_backbone, "pairs")
    config.model.pooling = "mean"  # the tiny random encoder's CLS state barely depends on its input
    train, _, labels = load_and_validate(config.data, config.tasks, config.model.title)
    trainer = Trainer(config)
    specs, _ = trainer._task_specs(labels)
    model = trainer._build_model(specs)
    windower = ArticleWindower.from_config(model.config.model, AutoTokenizer.from_pretrained(str(tiny_backbone)))
    data = encode_split(windower, train, specs)
    truth = data.labels["topic"].numpy()

    def gap() -> float:
        model.eval()
        with torch.no_grad():
            e = torch.nn.functional.normalize(
                _article_embeddings(model, data.groups[None], windower.pad_token_id, "cpu"), dim=1
            )
        similarity, same = (e @ e.T).numpy(), truth[:, None] == truth[None, :]
        off = ~np.eye(len(truth), dtype=bool)
        return float(similarity[same & off].mean() - similarity[~same].mean())

    before = gap()
    import aranews.training.few_shot as few_shot

    encoded: list[list[int]] = []

    def counting(model, articles, pad_id, device, names=None):
        encoded.append([id(a) for a in articles])
        return _article_embeddings(model, articles, pad_id, device, names)

    monkeypatch.setattr(few_shot, "_article_embeddings", counting)
    figures = contrastive_stage(model, data, specs, windower.pad_token_id, steps=60, batch_size=16,
                                learning_rate=1e-3, seed=0)  # fmt: skip
    after = gap()
    assert len(encoded) == 60 and all(len(set(step)) == len(step) for step in encoded)  # 32 draws, each once
    assert sum(map(len, encoded)) < 60 * 32  # on 8 rows per label some are drawn twice in a step
    assert figures["steps"] == 60 and figures["loss_last_tenth"] < figures["loss_first_tenth"]
    assert after > before + 0.1  # 0.002 before, 0.19 after, on this machine
    encoded.clear()
    figures = contrastive_stage(model, data, specs, windower.pad_token_id, steps=3, batch_size=16,
                                learning_rate=1e-3, seed=0, pair_set="setfit")  # fmt: skip
    assert figures["pair_set"] == "setfit" and [len(step) for step in encoded] == [32, 32, 32]  # every side encoded
    from aranews.training.model_card import _recipe_line

    recipe = {"name": "few_shot", "why": "chosen", "contrastive": figures, "train_encoder": False}
    line = _recipe_line({"epochs": [{}]}, recipe)
    assert "pairs of training rows (SetFit's pair set) for 3 contrastive steps" in line


def test_after_a_contrastive_stage_the_steps_train_the_heads_only_and_a_resume_does_not_repeat_it(
    tmp_path, tiny_backbone, monkeypatch
):
    import aranews.training.trainer as trainer_module

    settings = {"few_shot_contrastive_steps": 6, "few_shot_contrastive_learning_rate": 1e-3}
    metrics = Trainer(_few_shot_config(tmp_path, tiny_backbone, "c", **settings)).train().metrics
    assert metrics["recipe"]["contrastive"]["steps"] == 6 and metrics["recipe"]["train_encoder"] is False
    card = (tmp_path / "c" / "run" / "model" / "README.md").read_text(encoding="utf-8")
    assert "for 6 contrastive steps" in card and "(the heads only)" in card
    one_step = Trainer(_few_shot_config(tmp_path, tiny_backbone, "c1", few_shot_steps=1, **settings)).train()
    a = load_file(str(tmp_path / "c" / "run" / "model" / "model.safetensors"))
    first = load_file(str(one_step.model_dir / "model.safetensors"))
    encoder = [k for k in a if not k.startswith("heads.")]
    assert encoder and all(torch.equal(a[k], first[k]) for k in encoder)  # 27 steps or 1: the same encoder
    assert not torch.equal(a["heads.topic.out_proj.weight"], first["heads.topic.out_proj.weight"])

    Trainer(_few_shot_config(tmp_path, tiny_backbone, "d", **settings)).train(stop_after_epochs=1)

    def again(*args, **kwargs):
        raise AssertionError("the contrastive stage ran again on resume")

    monkeypatch.setattr(trainer_module, "contrastive_stage", again)
    resumed = Trainer(_few_shot_config(tmp_path, tiny_backbone, "d", resume=True, **settings)).train().metrics
    assert resumed["recipe"]["contrastive"] == metrics["recipe"]["contrastive"]
    b = load_file(str(tmp_path / "d" / "run" / "model" / "model.safetensors"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def _lottery(tmp_path, tiny_backbone, name, **training):
    settings = {"recipe": "standard", "epochs": 2, "early_stopping_patience": 0, "seeds": [3, 4], **training}
    return config_from_dict(experiment(tmp_path / name, tiny_backbone, training=settings))


def _weights(run_dir):
    return load_file(str(run_dir / "model" / "model.safetensors"))


def test_a_seed_soup_keeps_the_average_of_the_runs_refitted_and_resumes_after_a_kill(tmp_path, tiny_backbone):
    from aranews.inference import load_classifier

    metrics = Trainer(_lottery(tmp_path, tiny_backbone, "soup", seed_selection="soup")).train().metrics
    run = tmp_path / "soup" / "run"
    lottery = metrics["recipe"]["seeds"]
    assert [r["seed"] for r in lottery["runs"]] == [3, 4] and "soup" in lottery["kept"]
    a, b, kept = _weights(run / "seeds" / "seed-3"), _weights(run / "seeds" / "seed-4"), _weights(run)
    assert not torch.equal(a["heads.topic.out_proj.weight"], b["heads.topic.out_proj.weight"])  # two runs
    for key in kept:
        torch.testing.assert_close(kept[key], (a[key].double() + b[key].double()).div(2).to(a[key].dtype))
    assert not (run / "seeds" / "seed-3" / "last_checkpoint").exists()
    assert metrics["best_dev_score"] == pytest.approx(
        np.mean([metrics["dev"][t]["macro_f1"] for t in ("topic", "stance")])
    )
    assert "Seed lottery: 2 runs" in (run / "model" / "README.md").read_text(encoding="utf-8")
    clf = load_classifier(run / "model")
    assert clf.tasks[0].dev_rates is not None  # the kept model's own dev rates and calibration, fitted again
    assert metrics["calibration"]["topic"]["method"] in {"temperature", "bias_corrected", "none"}

    # killed after the first epoch of the first seed, then resumed: the same kept model
    first = (
        Trainer(_lottery(tmp_path, tiny_backbone, "killed", seed_selection="soup")).train(stop_after_epochs=1).metrics
    )
    assert first["completed"] is False and "seeds" not in (first["recipe"] or {})
    Trainer(_lottery(tmp_path, tiny_backbone, "killed", seed_selection="soup")).train()
    resumed = _weights(tmp_path / "killed" / "run")
    for key in kept:
        torch.testing.assert_close(resumed[key], kept[key], rtol=0, atol=0)


def test_the_best_seed_is_kept_and_every_seed_starts_from_the_same_weights(tmp_path, tiny_backbone):
    metrics = Trainer(_lottery(tmp_path, tiny_backbone, "best")).train().metrics  # best is the default
    runs = {r["seed"]: r["dev_score"] for r in metrics["recipe"]["seeds"]["runs"]}
    best = max(runs, key=runs.get)
    run = tmp_path / "best" / "run"
    for key, value in _weights(run).items():
        torch.testing.assert_close(value, _weights(run / "seeds" / f"seed-{best}")[key], rtol=0, atol=0)
    assert metrics["best_dev_score"] == pytest.approx(runs[best], abs=1e-4)
    # keeping the soup of the same lottery afterwards trains nothing again: it averages the finished runs
    trained = {seed: (run / "seeds" / f"seed-{seed}" / "metrics.json").read_bytes() for seed in runs}
    soup = Trainer(_lottery(tmp_path, tiny_backbone, "best", seed_selection="soup", resume=True)).train().metrics
    assert "soup" in soup["recipe"]["seeds"]["kept"]
    assert {seed: (run / "seeds" / f"seed-{seed}" / "metrics.json").read_bytes() for seed in runs} == trained
    a, b, kept = _weights(run / "seeds" / "seed-3"), _weights(run / "seeds" / "seed-4"), _weights(run)
    for key in kept:
        torch.testing.assert_close(kept[key], (a[key].double() + b[key].double()).div(2).to(a[key].dtype))
    # the initial weights come from init_seed, whatever the seed: with no learning, two seeds' heads are equal
    still = {"epochs": 1, "learning_rate": 1e-12, "head_learning_rate": 1e-12, "init_seed": 7, "seeds": None}
    heads = []
    for seed in (1, 2):
        Trainer(_lottery(tmp_path, tiny_backbone, f"still-{seed}", seed=seed, **still)).train()
        heads.append(_weights(tmp_path / f"still-{seed}" / "run")["heads.topic.out_proj.weight"])
    torch.testing.assert_close(heads[0], heads[1], rtol=0, atol=1e-9)


@pytest.mark.parametrize(("every", "writes"), [(0.0, "every epoch"), (1e6, "once")])
def test_the_resume_state_is_written_at_most_every_checkpoint_interval_and_at_the_end(
    tmp_path, tiny_backbone, monkeypatch, every, writes
):
    import aranews.training.trainer as trainer_module

    epochs = []
    real = trainer_module.save_training_state
    monkeypatch.setattr(
        trainer_module, "save_training_state", lambda *a, **k: epochs.append(a[4]["epoch"]) or real(*a, **k)
    )
    config = _few_shot_config(tmp_path, tiny_backbone, f"ckpt-{every}", checkpoint_every_seconds=every)
    metrics = Trainer(config).train().metrics
    n = len(metrics["epochs"])
    assert n > 1 and epochs == (list(range(1, n + 1)) if writes == "every epoch" else [n])
