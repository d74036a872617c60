"""A checkpoint whose config, weights or tokenizer do not belong together is refused with a message naming
the file and what is wrong, never a traceback or a silent load; resumes and encoders are checked first."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from aranews.cli import main
from aranews.inference import load_classifier
from aranews.inference.schema import ConfigError
from aranews.training.config import config_from_dict
from aranews.training.trainer import EncoderUnavailableError, Trainer, check_encoder_source
from tests.helpers import SAMPLE, experiment, read_jsonl, write_jsonl


@pytest.fixture
def model_copy(trained_model, tmp_path):
    return shutil.copytree(trained_model / "model", tmp_path / "model")


def _edit_config(path, change):
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    change(config)
    (path / "config.json").write_text(json.dumps(config), encoding="utf-8")


def test_labels_that_do_not_fit_the_head(model_copy):
    _edit_config(model_copy, lambda c: c["tasks"][0]["labels"].append("sport"))
    with pytest.raises(ConfigError, match=r"head 'topic' has 6 outputs but config.json lists 7 labels"):
        load_classifier(model_copy)


def test_missing_tokenizer_is_refused_not_replaced(model_copy):
    (model_copy / "tokenizer.json").unlink()
    with pytest.raises(
        ConfigError, match=r"tokenizer file\(s\) \['tokenizer.json'\] listed in config.json are missing"
    ):
        load_classifier(model_copy)


def test_truncated_weights_and_corrupt_config(model_copy):
    weights = model_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ConfigError, match="not a readable safetensors file"):
        load_classifier(model_copy)
    (model_copy / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"config.json: not valid JSON"):
        load_classifier(model_copy)


def test_config_problems_are_listed_together(model_copy, capsys):
    def change(c):
        c["model"]["max_length"] = 4
        c["model"]["colour"] = "blue"
        c["tasks"][1]["problem_type"] = "ranking"

    _edit_config(model_copy, change)
    with pytest.raises(ConfigError) as caught:
        load_classifier(model_copy)
    assert str(model_copy / "config.json") in str(caught.value)
    assert sorted(p.split(":")[0] for p in caught.value.problems) == [
        "model.colour",
        "model.max_length",
        "tasks[1].problem_type",
    ]
    assert main(["predict", "--model", str(model_copy), "نص"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


def test_an_old_format_is_refused_with_what_to_do(model_copy):
    _edit_config(model_copy, lambda c: c.update(format_version=1))
    with pytest.raises(ConfigError, match="aranews-classifier 0.1; retrain it"):
        load_classifier(model_copy)


def test_resume_refuses_another_run(tmp_path, tiny_backbone):
    cfg = experiment(tmp_path, tiny_backbone, training={"resume": True, "epochs": 2})
    Trainer(config_from_dict(cfg)).train(stop_after_epochs=1)
    # new data in the same run directory: refused, naming the file
    changed = write_jsonl(tmp_path / "train.jsonl", read_jsonl(SAMPLE / "train.jsonl")[:-3])
    with pytest.raises(ValueError, match=r"belongs to another run(.|\n)*data.train"):
        Trainer(config_from_dict({**cfg, "data": {**cfg["data"], "train": str(changed)}})).train()
    # another setting: refused, naming it
    other = {**cfg, "training": {**cfg["training"], "learning_rate": 5.0e-4}}
    with pytest.raises(ValueError, match=r"training.learning_rate: 0.001 then, 0.0005 now"):
        Trainer(config_from_dict(other)).train()
    # the same run resumes; display options may change
    same = {**cfg, "training": {**cfg["training"], "progress": True}}
    metrics = Trainer(config_from_dict(same)).train().metrics
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]


def test_unreachable_hub_fails_fast_with_what_to_do(tmp_path, tiny_backbone, capsys):
    started = time.monotonic()
    with pytest.raises(EncoderUnavailableError, match="not in the Hugging Face cache") as caught:
        check_encoder_source("aubmindlab/bert-base-arabertv02")
    assert "make demo" in str(caught.value) and "--set model.encoder=" in str(caught.value)
    cfg = experiment(tmp_path, tiny_backbone)
    cfg["model"]["encoder"] = "aubmindlab/bert-base-arabertv02"
    path = tmp_path / "c.yaml"
    import yaml

    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    assert main(["-q", "train", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not in the Hugging Face cache" in err and "Traceback" not in err
    assert time.monotonic() - started < 20  # no minute of retries
    with pytest.raises(EncoderUnavailableError, match="does not exist"):
        check_encoder_source(str(tmp_path / "no-such-folder"))


def test_max_length_beyond_the_encoder_positions(tmp_path, tiny_backbone):
    cfg = experiment(tmp_path, tiny_backbone, model={"max_length": 256})
    with pytest.raises(ConfigError, match=r"model.max_length: got 256; expected at most 128"):
        Trainer(config_from_dict(cfg)).train()


def test_evaluate_writes_beside_the_model_by_default(trained_model, tmp_path, monkeypatch, capsys):
    model = shutil.copytree(trained_model / "model", tmp_path / "run" / "model")
    monkeypatch.chdir(tmp_path)
    assert main(["-q", "evaluate", "--model", str(model), "--data", str(SAMPLE / "dev.jsonl")]) == 0
    assert (tmp_path / "run" / "eval-dev" / "report.json").is_file()
    assert not (tmp_path / "report").exists()


def test_model_card_defaults_to_the_runs_own_config(trained_model, tmp_path):
    out = tmp_path / "card.md"
    assert main(["-q", "model-card", "--run", str(trained_model), "--out", str(out)]) == 0
    card = out.read_text(encoding="utf-8")
    assert "library_name: aranews-classifier" in card and "base_model" not in card.split("---")[1]
    assert "## How to use" in card
    assert (trained_model / "model" / "README.md").read_text(encoding="utf-8").startswith("---\n")


def test_plots_leave_the_callers_backend_alone(trained_model, tmp_path):
    import sys

    import matplotlib

    from aranews.training.config import DataConfig, TaskConfig
    from aranews.training.data import encode_split, load_and_validate
    from aranews.training.evaluation import build_report

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        clf = load_classifier(trained_model / "model")
        data = DataConfig(train=str(SAMPLE / "train.jsonl"), dev=str(SAMPLE / "dev.jsonl"))
        _train, evals, _ = load_and_validate(data, [TaskConfig("topic"), TaskConfig("stance")])
        report = build_report(clf, encode_split(clf.windower, evals["dev"], clf.tasks), tmp_path / "r")
        assert matplotlib.get_backend() == "svg"
        assert "matplotlib.pyplot" not in sys.modules or sys.modules["matplotlib.pyplot"] is not None
        assert sum(b["count"] for b in report["tasks"]["topic"]["calibration"]["bins"]) == report["tasks"]["topic"]["n"]
        assert (tmp_path / "r" / "reliability_topic.png").read_bytes()[:4] == b"\x89PNG"
    finally:
        matplotlib.use(before)


def test_evaluate_with_train_checks_leakage(trained_model, tmp_path, capsys):
    rows = read_jsonl(SAMPLE / "dev.jsonl")
    train_rows = read_jsonl(SAMPLE / "train.jsonl")
    leaky = write_jsonl(tmp_path / "test.jsonl", [*rows[:10], {**train_rows[0], "id": "copy-of-a-train-row"}])
    args = [
        "-q",
        "evaluate",
        "--model",
        str(trained_model / "model"),
        "--data",
        str(leaky),
        "--train",
        str(SAMPLE / "train.jsonl"),
        "--out-dir",
        str(tmp_path / "r"),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "copy-of-a-train-row" in err and "leakage between train and" in err and "--drop-leaked" in err
    assert main([*args, "--drop-leaked"]) == 0
    assert "dropped 1 evaluated row(s)" in capsys.readouterr().out
    report = json.loads((tmp_path / "r" / "report.json").read_text(encoding="utf-8"))
    assert report["tasks"]["topic"]["n"] == 10
