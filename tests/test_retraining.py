"""The retraining loop: growing the head, refusing silent removals, small-label warnings, the forgetting
guard, the label schema version, what to label next, and the Label Studio formats."""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch

from aranews.cli import main
from aranews.inference import load_classifier
from aranews.inference.config import ClassifierConfig, TaskSpec
from aranews.inference.labelstudio import export_tasks, import_export, labelling_config
from aranews.inference.schema import ConfigError
from aranews.inference.scoring import score_archive
from aranews.inference.selection import select_for_labelling, uncertainty
from aranews.training.config import config_from_dict
from aranews.training.trainer import Trainer
from tests.helpers import SAMPLE, experiment, read_jsonl, write_jsonl

FIXTURES = Path(__file__).parent / "fixtures" / "labelstudio"
MARKER = "كاراباخ ناغورنو ستيباناكيرت"  # the new label's articles all carry these words
SIGNAL = " ".join([MARKER] * 4)  # and end with them: the tiny model learns it whatever the batch order


@pytest.fixture(scope="module")
def grown_data(tmp_path_factory, sample_rows):
    """The sample corpus plus a new topic, ``caucasus``, on 12 training and 6 dev articles."""
    tmp = tmp_path_factory.mktemp("grown")
    train = [dict(r) for r in sample_rows["train"]]
    dev = [dict(r) for r in sample_rows["dev"]]
    for rows, n in ((train, 12), (dev, 6)):
        for r in rows[:n]:
            r["topic"] = "caucasus"
            r["text"] = f"{MARKER} {r['text']} {SIGNAL}"
    return write_jsonl(tmp / "train.jsonl", train), write_jsonl(tmp / "dev.jsonl", dev)


def _retrain_config(tmp_path, backbone, previous, train, dev, weights="balanced", **training):
    return experiment(
        tmp_path,
        backbone,
        data={"train": str(train), "dev": str(dev)},
        tasks=[{"name": "topic", "class_weights": weights}, {"name": "stance"}],
        training={
            "init_from": str(previous),
            "epochs": 10,
            "learning_rate": 5e-3,
            "batch_size": 8,
            "warmup_ratio": 0.0,
            **training,
        },
    )


def test_growing_the_head_keeps_old_rows_bit_identical(trained_model, tiny_backbone, grown_data, tmp_path):
    previous = trained_model / "model"
    trainer = Trainer(config_from_dict(_retrain_config(tmp_path, tiny_backbone, previous, *grown_data)))
    old = load_classifier(previous, precision="fp32").model
    labels = {
        "topic": sorted({r["topic"] for r in read_jsonl(grown_data[0])}),
        "stance": list(old.config.task("stance").labels),
    }
    specs, changes = trainer._task_specs(labels)
    model = trainer._build_model(specs)
    assert changes["topic"]["added"] == ["caucasus"]
    old_topic = old.config.task("topic").labels
    new_topic = model.config.task("topic").labels
    assert new_topic[: len(old_topic)] == old_topic  # kept labels keep their ids
    for name in ("topic", "stance"):
        old_head, new_head = old.heads[name], model.heads[name]
        assert torch.equal(new_head.dense.weight, old_head.dense.weight)
        for j, label in enumerate(old.config.task(name).labels):
            i = model.config.task(name).labels.index(label)
            assert torch.equal(new_head.out_proj.weight[i], old_head.out_proj.weight[j])
            assert torch.equal(new_head.out_proj.bias[i], old_head.out_proj.bias[j])
    grown = model.heads["topic"].out_proj  # the new label's row: the mean of the kept rows
    assert torch.allclose(grown.weight[-1], old.heads["topic"].out_proj.weight.mean(dim=0))
    assert torch.allclose(grown.bias[-1], old.heads["topic"].out_proj.bias.mean())
    assert model.config.label_schema.version == old.config.label_schema.version + 1
    assert model.config.label_schema.previous == old.config.schema_id
    assert model.config.label_schema.changes == {"topic": {"added": ["caucasus"], "removed": []}}


@pytest.fixture(scope="module")
def retrained(trained_model, tiny_backbone, grown_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("retrained")
    config = _retrain_config(tmp, tiny_backbone, trained_model / "model", *grown_data, min_label_examples=20)
    return Trainer(config_from_dict(config)).train()


def test_a_new_label_is_learned_and_reported(retrained, grown_data, capsys):
    clf = load_classifier(retrained.model_dir, precision="fp32")
    for path in grown_data:  # its own training examples, and unseen dev articles
        marked = [r for r in read_jsonl(path) if r["topic"] == "caucasus"]
        predicted = [
            p["topic"]["label"] for p in clf.predict([r["text"] for r in marked], title=[r["title"] for r in marked])
        ]
        assert predicted.count("caucasus") >= len(marked) // 2, predicted
    assert retrained.metrics["dev"]["topic"]["per_class"]["caucasus"]["f1"] > 0.0
    assert retrained.metrics["small_labels"]["topic"] == {"caucasus": 12}
    started = retrained.metrics["recipe"]["new_labels"]["topic"]["caucasus"]  # its row started from its rows
    assert started["rows"] == 12 and started["fitted"] and started["train_recall_at_start"] >= 0.5
    from aranews.cli.train import _print_summary

    _print_summary(retrained.metrics)
    out = capsys.readouterr().out
    assert "added topic/caucasus: dev F1" in out
    assert "few training examples in topic: caucasus 12" in out


def test_the_forgetting_guard_compares_kept_labels(retrained, trained_model):
    forgetting = retrained.metrics["forgetting"]
    assert forgetting["checked"] and forgetting["file"] == str(SAMPLE / "dev.jsonl")
    topic = forgetting["tasks"]["topic"]
    assert "caucasus" not in topic["labels"]  # a new label has no previous figure
    assert topic["macro_f1_over"] == sorted(topic["labels"])  # both means over the same kept labels
    assert topic["new_macro_f1"] == pytest.approx(np.mean([r["new_f1"] for r in topic["labels"].values()]), abs=1e-5)
    assert topic["previous_macro_f1"] == pytest.approx(
        np.mean([r["previous_f1"] for r in topic["labels"].values()]), abs=1e-5
    )
    assert set(topic["labels"]) <= set(load_classifier(trained_model / "model").labels["topic"])
    for label, row in topic["labels"].items():
        assert row["change"] == pytest.approx(row["new_f1"] - row["previous_f1"], abs=1e-5)
        assert row["worse"] == (row["change"] < -forgetting["tolerance"])
        assert (label in topic["flagged"]) == row["worse"]


def test_the_forgetting_flag_fires(trained_model, tmp_path):
    from aranews.training.data import load_split
    from aranews.training.evaluation import compare_on_split

    config = config_from_dict(experiment(tmp_path, trained_model))
    split, problems = load_split("dev", SAMPLE / "dev.jsonl", config.data, config.tasks, require_labels=False)
    assert not problems
    clf = load_classifier(trained_model / "model", precision="fp32")
    same = compare_on_split(clf, clf, split, tolerance=0.0)
    assert all(not t["flagged"] for t in same["tasks"].values())
    harsh = compare_on_split(clf, clf, split, tolerance=-1.0)  # "worse" by more than -1: every label
    assert harsh["tasks"]["topic"]["flagged"] == list(harsh["tasks"]["topic"]["labels"])


def test_small_labels_are_warned_before_training(trained_model, tiny_backbone, grown_data, tmp_path, caplog):
    config = _retrain_config(tmp_path, tiny_backbone, trained_model / "model", *grown_data, weights="none", epochs=1)
    with caplog.at_level(logging.WARNING, logger="aranews.training.trainer"):
        Trainer(config_from_dict(config)).train()
    warning = next(r.getMessage() for r in caplog.records if "fewer than 20" in r.getMessage())
    assert "caucasus (12, new)" in warning and "class_weights: balanced" in warning and "aranews select" in warning


def test_a_removed_label_is_refused_unless_allowed(trained_model, tiny_backbone, sample_rows, tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [r for r in sample_rows["train"] if r["topic"] != "military"])
    dev = write_jsonl(tmp_path / "dev.jsonl", [r for r in sample_rows["dev"] if r["topic"] != "military"])
    config = _retrain_config(tmp_path, tiny_backbone, trained_model / "model", train, dev, epochs=1)
    with pytest.raises(ConfigError, match=r"'military'.*allow_label_removal: true"):
        Trainer(config_from_dict(config)).train()
    config["training"]["allow_label_removal"] = True
    result = Trainer(config_from_dict(config)).train()
    assert "military" not in result.metrics["labels"]["topic"]
    assert result.metrics["label_schema"]["changes"]["topic"]["removed"] == ["military"]


def test_scores_carry_the_label_schema(retrained, tmp_path, sample_rows):
    clf = load_classifier(retrained.model_dir, precision="fp32")
    source = write_jsonl(
        tmp_path / "in.jsonl", [{"id": i, "text": r["text"]} for i, r in enumerate(sample_rows["dev"])]
    )
    summary = score_archive(clf, source, tmp_path / "out.jsonl", progress=False)
    schema = ClassifierConfig.load(retrained.model_dir).schema_id
    assert schema.startswith("v2-")
    assert {r["label_schema"] for r in read_jsonl(tmp_path / "out.jsonl")} == {schema}
    assert summary.provenance["label_schema"] == schema


# -- what to label next ---------------------------------------------------------------------------------
def test_uncertainty_measures():
    probs = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_allclose(uncertainty(probs, "margin"), [0.0, 1.0, 1.0])
    np.testing.assert_allclose(uncertainty(probs, "entropy"), [0.0, np.log(2) / np.log(3), 1.0], atol=1e-9)
    multi = uncertainty(np.array([[0.5, 0.9], [0.95, 0.05]]), thresholds=[0.5, 0.5])
    np.testing.assert_allclose(multi, [1.0, 0.1], atol=1e-9)


@pytest.fixture(scope="module")
def archive(tmp_path_factory, sample_rows):
    """The sample articles, plus one article repeated 15 times under new ids (near-duplicates)."""
    rows = [{"id": f"a{i}", "text": r["text"]} for i, r in enumerate(sample_rows["train"] + sample_rows["dev"])]
    rows += [{"id": f"dup{i}", "text": sample_rows["dev"][0]["text"]} for i in range(15)]
    rows += [{"id": "a0", "text": "مكرر"}, {"id": "empty", "text": ""}]  # a duplicate id and an empty text
    return write_jsonl(tmp_path_factory.mktemp("archive") / "archive.jsonl", rows)


def test_selection_count_order_and_no_duplicates(trained_model, archive):
    clf = load_classifier(trained_model / "model", precision="fp32")
    picks, summary = select_for_labelling(clf, archive, 12, diversity=False)
    assert len(picks) == 12 and len({p.record["id"] for p in picks}) == 12
    scores = [p.score for p in picks]
    assert scores == sorted(scores, reverse=True)
    assert summary.not_considered == {"duplicate_id": 1, "empty_text": 1}
    assert summary.considered == summary.rows - 2
    # plain top-n is the n least certain of everything considered
    _, everything = select_for_labelling(clf, archive, 1000, diversity=False)
    assert everything.picked == summary.considered


def test_diversity_takes_one_of_a_group_of_duplicates(trained_model, archive):
    clf = load_classifier(trained_model / "model", precision="fp32")
    plain, _ = select_for_labelling(clf, archive, 20, task="topic", diversity=False, pool_factor=100)
    diverse, _ = select_for_labelling(clf, archive, 20, task="topic", diversity=True, pool_factor=100)
    text = read_jsonl(archive)[-3]["text"]
    duplicates = lambda picks: sum(p.record["text"] == text and p.record["id"].startswith("dup") for p in picks)  # noqa: E731
    assert len(diverse) == 20 and len({p.record["id"] for p in diverse}) == 20
    assert duplicates(diverse) <= 1
    assert [p.score for p in diverse] == sorted(p.score for p in diverse)[::-1]
    if duplicates(plain) > 1:  # the duplicates are among the least certain: diversity made a difference
        assert duplicates(diverse) < duplicates(plain)


def test_quota_gives_every_predicted_label_candidates(trained_model, archive):
    clf = load_classifier(trained_model / "model", precision="fp32")
    _, everything = select_for_labelling(clf, archive, 1000, diversity=False)
    predicted = set(everything.suggested_labels["topic"])
    picks, _ = select_for_labelling(clf, archive, 10, per_label=1, quota_task="topic")
    quota = {p.reason.split(":", 1)[1] for p in picks if p.reason.startswith("quota:")}
    assert quota == predicted
    for p in picks:
        if p.reason.startswith("quota:"):
            assert p.suggestions["topic"]["label"] == p.reason.split(":", 1)[1]


def test_select_and_label_studio_commands_round_trip(trained_model, archive, tmp_path, capsys):
    model = str(trained_model / "model")
    selection = tmp_path / "next.jsonl"
    assert main(["select", "--model", model, "--input", str(archive), "--n", "6", "--out", str(selection)]) == 0
    rows = read_jsonl(selection)
    assert len(rows) == 6 and all(r["topic"] is None and r["stance"] is None for r in rows)
    assert all(r["suggested_topic"]["label"] in load_classifier(model).labels["topic"] for r in rows)
    assert [r["rank"] for r in rows] == list(range(1, 7))
    tasks_file = tmp_path / "tasks.json"
    assert (
        main(["labelstudio", "export", "--selection", str(selection), "--model", model, "--out", str(tasks_file)]) == 0
    )
    tasks = json.loads(tasks_file.read_text(encoding="utf-8"))
    assert [t["data"]["id"] for t in tasks] == [r["id"] for r in rows]
    # an analyst accepts every pre-annotation: the export of that project comes back as training rows
    export = [
        {
            "id": n,
            "data": t["data"],
            "annotations": [{"id": n, "completed_by": 1, "result": t["predictions"][0]["result"]}],
        }
        for n, t in enumerate(tasks, 1)
    ]
    export_file = tmp_path / "export.json"
    export_file.write_text(json.dumps(export, ensure_ascii=False), encoding="utf-8")
    labels = tmp_path / "labels.jsonl"
    assert main(["labelstudio", "import", "--export", str(export_file), "--out", str(labels), "--model", model]) == 0
    back = read_jsonl(labels)
    assert [r["id"] for r in back] == [r["id"] for r in rows]
    assert [r["topic"] for r in back] == [r["suggested_topic"]["label"] for r in rows]
    assert "6 tasks = 6 labelled rows" in capsys.readouterr().out


# -- Label Studio formats ----------------------------------------------------------------------------------
TASKS = [
    TaskSpec("topic", ["security", "economy_energy", "diplomacy"]),
    TaskSpec("stance", ["cooperation", "neutral", "tension"]),
    TaskSpec("tags", ["drones", "gas"], "multi_label", thresholds=[0.5, 0.5]),
]


def test_labelling_config_has_one_choices_control_per_task():
    root = ET.fromstring(labelling_config(TASKS))
    controls = root.findall("Choices")
    assert [c.get("name") for c in controls] == ["topic", "stance", "tags"]
    assert [c.get("choice") for c in controls] == ["single-radio", "single-radio", "multiple"]
    assert [x.get("value") for x in controls[0].findall("Choice")] == TASKS[0].labels
    assert all(c.get("toName") == "text" for c in controls)
    assert "rtl" in root.get("style")


def test_export_writes_pre_annotations_with_a_score(tmp_path):
    selection = write_jsonl(
        tmp_path / "sel.jsonl",
        [
            {
                "id": "x1",
                "text": "نص",
                "title": "عنوان",
                "suggested_topic": {"label": "security", "score": 0.4},
                "suggested_stance": {"label": "made_up", "score": 0.9},  # not in the schema: not pre-annotated
                "suggested_tags": {"labels": ["gas"], "scores": [0.7]},
                "uncertainty": 0.75,
            }
        ],
    )
    out, config, n = export_tasks(selection, tmp_path / "tasks.json", TASKS, model_version="m1")
    (task,) = json.loads(out.read_text(encoding="utf-8"))
    assert n == 1 and task["data"] == {"id": "x1", "text": "نص", "title": "عنوان"}
    (prediction,) = task["predictions"]
    assert prediction["model_version"] == "m1" and prediction["score"] == pytest.approx(0.25)
    assert [(r["from_name"], r["value"]["choices"]) for r in prediction["result"]] == [
        ("topic", ["security"]),
        ("tags", ["gas"]),
    ]
    assert all(r["to_name"] == "text" and r["type"] == "choices" for r in prediction["result"])
    assert ET.fromstring(config.read_text(encoding="utf-8")).tag == "View"


def test_import_reads_a_real_label_studio_export(tmp_path):
    """The fixture is the JSON export of a project that a real Label Studio served (see
    tests/fixtures/labelstudio/README.md): cancelled, conflicting, ground-truth and empty tasks."""
    export = FIXTURES / "export.json"
    if not export.is_file():
        pytest.skip("fixture not recorded")
    expected = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
    summary = import_export(export, tmp_path / "labels.jsonl", TASKS[:2])
    assert summary.tasks == summary.labelled + summary.errors
    assert summary.error_reasons == expected["error_reasons"]
    assert summary.cancelled_annotations == expected["cancelled_annotations"]
    rows = read_jsonl(tmp_path / "labels.jsonl")
    assert {r["id"]: [r.get("topic"), r.get("stance")] for r in rows} == expected["labels"]


def test_import_rules_on_a_hand_made_export(tmp_path):
    def annotation(who, topic=None, stance=None, cancelled=False, truth=False):
        result = [
            {"from_name": n, "to_name": "text", "type": "choices", "value": {"choices": [v]}}
            for n, v in (("topic", topic), ("stance", stance))
            if v
        ]
        return {"completed_by": who, "result": result, "was_cancelled": cancelled, "ground_truth": truth}

    items = [
        {"id": 1, "data": {"id": "a", "text": "ن"}, "annotations": [annotation(1, "security", "tension")]},
        {
            "id": 2,
            "data": {"id": "b", "text": "ن"},
            "annotations": [annotation(1, "security"), annotation(2, "diplomacy")],
        },
        {
            "id": 3,
            "data": {"id": "c", "text": "ن"},
            "annotations": [annotation(1, "security"), annotation(2, "diplomacy", truth=True)],
        },
        {"id": 4, "data": {"id": "d", "text": "ن"}, "annotations": [annotation(1, "security", cancelled=True)]},
        {"id": 5, "data": {"id": "e", "text": "ن"}, "annotations": []},
        {"id": 6, "data": {"text": "no id"}, "annotations": [annotation(1, "security")]},
        {"id": 7, "data": {"id": "g", "text": "ن"}, "annotations": [annotation(1, stance="neutral")]},
        {"id": 8, "data": {"id": "h", "text": "ن"}, "annotations": [annotation(1, "brand_new")]},
    ]
    export = tmp_path / "export.json"
    export.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    summary = import_export(export, tmp_path / "labels.jsonl", TASKS[:2])
    rows = {r["id"]: r for r in read_jsonl(tmp_path / "labels.jsonl")}
    assert summary.tasks == 8 and summary.labelled + summary.errors == 8
    assert rows["a"]["topic"] == "security" and rows["a"]["stance"] == "tension"
    assert rows["c"]["topic"] == "diplomacy"  # the ground-truth annotation wins
    assert rows["g"]["topic"] is None and rows["g"]["stance"] == "neutral"  # one task labelled
    assert summary.unknown_labels == {"topic": ["brand_new"]}
    assert summary.error_reasons == {"annotator_conflict": 1, "not_annotated": 2, "unreadable_task": 1}
    errors = {e["id"]: e for e in read_jsonl(tmp_path / "labels.jsonl.errors.jsonl")}
    assert errors["b"]["detail"]["topic"] == [
        {"annotator": 1, "choices": ["security"]},
        {"annotator": 2, "choices": ["diplomacy"]},
    ]
    assert summary.cancelled_annotations == 1


def test_import_names_a_file_that_is_not_an_export(tmp_path):
    bad = tmp_path / "export.json"
    bad.write_text('{"not": "a list"}', encoding="utf-8")
    with pytest.raises(ValueError, match="export.json: expected a list of tasks"):
        import_export(bad, tmp_path / "out.jsonl")


def test_old_and_new_rows_mix_across_files(trained_model, tiny_backbone, sample_rows, tmp_path):
    """The old training file plus newly labelled rows that carry one task's label only."""
    old = write_jsonl(tmp_path / "old.jsonl", sample_rows["train"][12:])
    new_rows = [
        {"id": f"new{i}", "text": f"{MARKER} {r['text']}", "topic": "caucasus"}
        for i, r in enumerate(sample_rows["train"][:12])
    ]
    new = write_jsonl(tmp_path / "new.jsonl", new_rows)  # no stance column at all
    config = _retrain_config(tmp_path, tiny_backbone, trained_model / "model", old, SAMPLE / "dev.jsonl", epochs=1)
    config["data"]["train"] = [str(old), str(new)]
    result = Trainer(config_from_dict(config)).train()
    assert "caucasus" in result.metrics["labels"]["topic"]
    assert result.metrics["data"]["train"]["articles"] == len(sample_rows["train"])
    assert result.metrics["data"]["train"]["labelled"] == {
        "topic": len(sample_rows["train"]),
        "stance": len(sample_rows["train"]) - 12,
    }
    clash = write_jsonl(tmp_path / "clash.jsonl", [{**new_rows[0], "id": sample_rows["train"][12]["id"]}])
    config["data"]["train"] = [str(old), str(clash)]
    from aranews.training.data import DataValidationError

    with pytest.raises(DataValidationError, match=r"clash.jsonl:1 \(id .*\): duplicate id, also in .*old.jsonl"):
        Trainer(config_from_dict(config)).train()
