"""End-to-end training on the tiny backbone: metrics file, loadable model, resume, retraining, CLI."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from aranews.cli import main
from aranews.inference import load_classifier
from aranews.training.config import config_from_dict
from aranews.training.data import DataValidationError
from aranews.training.trainer import Trainer
from tests.helpers import SAMPLE, experiment, read_jsonl, write_jsonl


def test_end_to_end_run_writes_metrics_and_a_loadable_model(trained_model, sample_rows):
    metrics = json.loads((trained_model / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["best_epoch"] in (1, 2) and len(metrics["epochs"]) == 2
    for task, n_labels in (("topic", 6), ("stance", 3)):
        report = metrics["dev"][task]
        assert report["n"] == len(sample_rows["dev"])
        assert set(report) >= {"accuracy", "macro_f1", "micro_f1", "weighted_f1", "per_class"}
        assert len(report["per_class"]) == n_labels
        assert 0.0 <= report["macro_f1"] <= 1.0
    best = metrics["epochs"][metrics["best_epoch"] - 1]
    assert best["dev"] == metrics["dev"]  # the saved model reproduces the in-loop figures exactly
    assert metrics["data"]["train"]["articles"] == len(sample_rows["train"])
    assert {"truncated", "dropped_tokens"} <= set(metrics["data"]["dev"])
    clf = load_classifier(trained_model / "model")
    assert len(clf.predict([r["text"] for r in sample_rows["dev"][:3]])) == 3
    assert (trained_model / "config.yaml").is_file()


def test_invalid_data_fails_before_any_model_is_built(tmp_path, tiny_backbone):
    rows = read_jsonl(SAMPLE / "train.jsonl")[:10]
    rows[3]["topic"] = "sports"
    bad = write_jsonl(tmp_path / "bad.jsonl", rows)
    topics = ["security", "diplomacy", "economy_energy", "military", "regional_conflicts", "blocs_alliances"]
    cfg = experiment(
        tmp_path,
        tiny_backbone,
        data={"train": str(bad)},
        model={"encoder": str(tmp_path / "does-not-exist")},
        tasks=[{"name": "topic", "labels": topics}, {"name": "stance"}],
    )
    with pytest.raises(DataValidationError, match=r"bad.jsonl:4 .*label 'sports'"):
        Trainer(config_from_dict(cfg)).train()


def _final_weights(output_dir):
    return load_file(str(output_dir / "last_checkpoint" / "model.safetensors"))


@pytest.mark.parametrize("ema_decay", [None, 0.9])
def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path, tiny_backbone, ema_decay):
    def config(name, **extra):
        training = {"epochs": 3, "output_dir": str(tmp_path / name), "ema_decay": ema_decay, **extra}
        return config_from_dict(experiment(tmp_path / name, tiny_backbone, training=training))

    Trainer(config("a")).train()
    # "interrupted" after epoch 1, then resumed to epoch 3 with the same config
    Trainer(config("b")).train(stop_after_epochs=1)
    # after one epoch, the saved model (the best so far) is the average when one is kept, and the
    # checkpoint keeps the raw weights the optimiser works on
    raw = _final_weights(tmp_path / "b")
    saved = load_file(str(tmp_path / "b" / "model" / "model.safetensors"))
    average_file = tmp_path / "b" / "last_checkpoint" / "average.safetensors"
    if ema_decay is None:
        assert all(torch.equal(saved[k], raw[k]) for k in raw) and not average_file.exists()
    else:
        average = load_file(str(average_file))
        assert average["__updates__"].item() > 0
        assert all(torch.equal(saved[k], average.get(k, raw[k])) for k in raw)
        assert any(not torch.equal(saved[k], raw[k]) for k in average if k != "__updates__")
    metrics = Trainer(config("b", resume=True)).train().metrics
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2, 3]
    for weights in (_final_weights, lambda run: load_file(str(run / "model" / "model.safetensors"))):
        a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_retraining_with_new_labels_keeps_kept_labels(tmp_path, trained_model, sample_rows):
    old = load_classifier(trained_model / "model")
    rows = [dict(r) for r in sample_rows["train"]]
    for r in rows:  # merge two topics into a new label and drop the stance task's "neutral"
        if r["topic"] in ("military", "security"):
            r["topic"] = "defence"
        if r["stance"] == "neutral":
            r["stance"] = None
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    dev_rows = [
        {
            **r,
            "topic": "defence" if r["topic"] in ("military", "security") else r["topic"],
            "stance": None if r["stance"] == "neutral" else r["stance"],
        }
        for r in sample_rows["dev"]
    ]
    dev = write_jsonl(tmp_path / "dev.jsonl", dev_rows)
    cfg = experiment(
        tmp_path,
        trained_model / "model",
        data={"train": str(train), "dev": str(dev)},
        training={
            "epochs": 1,
            "init_from": str(trained_model / "model"),
            "output_dir": str(tmp_path / "re"),
            "allow_label_removal": True,  # merging two topics removes both on purpose
        },
    )
    metrics = Trainer(config_from_dict(cfg)).train().metrics
    diff = metrics["label_changes"]["topic"]
    assert diff["added"] == ["defence"] and diff["removed"] == ["military", "security"]
    assert diff["kept"] == ["blocs_alliances", "diplomacy", "economy_energy", "regional_conflicts"]
    new = load_classifier(tmp_path / "re" / "model")
    assert new.labels["topic"] == [*diff["kept"], "defence"]
    assert new.labels["stance"] == ["cooperation", "tension"]
    assert old.labels["stance"] == ["cooperation", "neutral", "tension"]


def test_cli_train_and_predict(tmp_path, tiny_backbone, capsys):
    import yaml

    cfg = experiment(tmp_path, tiny_backbone, training={"epochs": 1})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    assert main(["-q", "train", str(path), "--out", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "metrics.json").is_file()
    capsys.readouterr()
    assert main(["-q", "predict", "--model", str(tmp_path / "cli" / "model"), "نص أول", "نص ثان"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and set(json.loads(lines[0])) == {"topic", "stance"}
    report_dir = tmp_path / "eval"
    args = ["-q", "evaluate", "--model", str(tmp_path / "cli" / "model"), "--data", str(SAMPLE / "dev.jsonl")]
    assert main([*args, "--out-dir", str(report_dir), "--train", str(SAMPLE / "train.jsonl")]) == 0
    assert "baseline accuracy" in capsys.readouterr().out
    report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    assert report["tasks"]["topic"]["n"] == 36 and report["baseline"]["tasks"]["topic"]["n"] == 36


def test_cli_reports_bad_config_without_traceback(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(
        "data: {train: a.jsonl, dev: b.jsonl}\ntasks: [{name: topic}]\ntraining: {epochz: 1}\n", encoding="utf-8"
    )
    assert main(["train", str(path), "-q"]) == 2  # -q after the subcommand works too
    err = capsys.readouterr().err
    assert "training.epochz: unknown key" in err and str(path) in err and "Traceback" not in err


def test_model_card_figures_come_from_the_run(trained_model):
    from aranews.training.config import load_config
    from aranews.training.model_card import render_model_card
    from tests.helpers import REPO

    metrics = json.loads((trained_model / "metrics.json").read_text(encoding="utf-8"))
    card = render_model_card(trained_model, load_config(REPO / "configs" / "default.yaml"))
    assert card.startswith("---\nlanguage:\n- ar\n")
    assert "base_model: aubmindlab/bert-base-arabertv02" in card
    assert "model-index" not in card  # the run's encoder is not AraBERT: no claim about AraBERT
    assert "not a measure of the default model's quality" in card
    for task in ("topic", "stance"):
        r = metrics["dev"][task]
        assert (
            f"| dev | {task} | {r['n']} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | {r['micro_f1']:.3f} | {r['weighted_f1']:.3f} |"
            in card
        )
    for section in (
        "## Intended use",
        "## Label schema",
        "## Preprocessing",
        "## Long documents",
        "## Results",
        "## Limitations and risks",
    ):
        assert section in card


def test_multi_label_task_thresholds_tuned_and_saved(tmp_path, tiny_backbone, sample_rows):
    def tags(r):
        return [r["topic"]] + (["friction"] if r["stance"] == "tension" else [])

    train = write_jsonl(tmp_path / "train.jsonl", [{**r, "tags": tags(r)} for r in sample_rows["train"]])
    dev = write_jsonl(tmp_path / "dev.jsonl", [{**r, "tags": tags(r)} for r in sample_rows["dev"]])
    cfg = experiment(
        tmp_path,
        tiny_backbone,
        data={"train": str(train), "dev": str(dev)},
        tasks=[{"name": "tags", "problem_type": "multi_label"}],
        training={"epochs": 1},
    )
    result = Trainer(config_from_dict(cfg)).train()
    tuned = result.metrics["tuned_thresholds"]["tags"]
    saved = json.loads((result.model_dir / "config.json").read_text(encoding="utf-8"))["tasks"][0]
    assert saved["thresholds"] == tuned and len(tuned) == 7
    report = json.loads((result.output_dir / "report" / "report.json").read_text(encoding="utf-8"))
    assert [t["threshold"] for t in report["tasks"]["tags"]["thresholds"]] == tuned
    assert (result.output_dir / "report" / report["files"]["tags"]["mistakes"]).is_file()
    clf = load_classifier(result.model_dir)
    assert clf.predict("نص", thresholds={"tags": [0.0001] * 7})["tags"]["labels"] == clf.labels["tags"]


def test_training_with_chunks_strategy(tmp_path, tiny_backbone):
    cfg = experiment(
        tmp_path,
        tiny_backbone,
        model={"long_document": {"strategy": "chunks", "stride": 8, "max_chunks": 4}},
        training={"epochs": 1},
    )
    metrics = Trainer(config_from_dict(cfg)).train().metrics
    assert metrics["data"]["train"]["windows"] > metrics["data"]["train"]["articles"]
    saved = json.loads((tmp_path / "run" / "model" / "config.json").read_text(encoding="utf-8"))
    assert saved["model"]["long_document"] == {
        "strategy": "chunks",
        "head_tokens": None,
        "stride": 8,
        "max_chunks": 4,
        "chunk_pooling": "mean",
    }
    clf = load_classifier(tmp_path / "run" / "model")
    assert clf.windower.strategy == "chunks"


def test_layer_wise_decay_and_frozen_embeddings(tmp_path, tiny_backbone):
    cfg = experiment(
        tmp_path,
        tiny_backbone,
        training={"epochs": 1, "layer_lr_decay": 0.5, "freeze_embeddings": True, "learning_rate": 1.0e-3},
    )
    trainer = Trainer(config_from_dict(cfg))
    from aranews.inference.config import ModelConfig, TaskSpec
    from aranews.inference.modeling import MultiTaskClassifier

    model = MultiTaskClassifier.from_encoder(
        ModelConfig(encoder=str(tiny_backbone), max_length=64), [TaskSpec("t", ["a", "b"])]
    )
    groups = trainer._parameter_groups(model)
    assert not any(p.requires_grad for p in model.encoder.embeddings.parameters())
    encoder_lrs = sorted({g["lr"] for g in groups[:-1]})
    assert encoder_lrs == [pytest.approx(1.0e-3)]  # one layer: the top layer trains at the full rate
    two = MultiTaskClassifier.from_encoder(
        ModelConfig(encoder=str(tiny_backbone), max_length=64), [TaskSpec("t", ["a", "b"])]
    )
    trainer.config.training.freeze_embeddings = False
    rates = {round(g["lr"], 12) for g in trainer._parameter_groups(two)[:-1]}
    assert rates == {1.0e-3, 2.5e-4}  # layer 1 of 1 at the full rate, embeddings at decay ** (L + 1)
    trainer.config.training.freeze_embeddings = True
    assert groups[-1]["lr"] == 1.0e-3
    before = {k: v.clone() for k, v in model.encoder.embeddings.state_dict().items()}
    metrics = Trainer(config_from_dict(cfg)).train().metrics
    assert metrics["best_epoch"] == 1
    saved = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
    assert torch.equal(saved["encoder.embeddings.word_embeddings.weight"], before["word_embeddings.weight"])


@pytest.mark.parametrize(("has_bf16", "expected"), [(True, "bf16"), (False, "no")])
def test_auto_mixed_precision_on_cpu_follows_the_processor(tmp_path, tiny_backbone, monkeypatch, has_bf16, expected):
    from aranews.inference import runtime

    monkeypatch.setattr(runtime, "cpu_supports_bf16", lambda: has_bf16)
    cfg = experiment(tmp_path, tiny_backbone, training={"device": "cpu", "mixed_precision": "auto"})
    _, precision = Trainer(config_from_dict(cfg))._accelerator()
    assert precision == expected
    # an explicit choice is kept whatever the processor, and a second run in the same process may change
    # the precision (accelerate's process-wide state would otherwise refuse it)
    other = "no" if expected == "bf16" else "bf16"
    cfg["training"]["mixed_precision"] = other
    accelerator, precision = Trainer(config_from_dict(cfg))._accelerator()
    assert precision == other
    assert accelerator.mixed_precision == other
