"""Config loading: unknown keys, types and ranges give messages naming the field, value and what is allowed."""

from __future__ import annotations

import pytest
import yaml

from aranews.training.config import ConfigError, config_from_dict, load_config
from tests.helpers import REPO

MINIMAL = {"data": {"train": "t.jsonl", "dev": "d.jsonl"}, "tasks": [{"name": "topic"}]}


def _with(section: str, **values) -> dict:
    return {**MINIMAL, section: {**MINIMAL.get(section, {}), **values}}


def test_shipped_configs_load():
    for name in ("default.yaml", "demo.yaml"):
        config = load_config(REPO / "configs" / name)
        assert [t.name for t in config.tasks] == ["topic", "stance"]
    default = load_config(REPO / "configs" / "default.yaml")
    assert default.model.encoder == "aubmindlab/bert-base-arabertv02"
    assert default.tasks[0].labels == [
        "security",
        "diplomacy",
        "economy_energy",
        "military",
        "regional_conflicts",
        "blocs_alliances",
    ]
    assert default.tasks[1].labels == ["cooperation", "tension", "neutral"]


def test_unknown_key_is_an_error_naming_it():
    with pytest.raises(
        ConfigError, match=r"training.epochz: unknown key; allowed keys here are \['allow_label_removal', 'baseline'"
    ):
        config_from_dict(_with("training", epochz=3))
    with pytest.raises(ConfigError, match=r"extra: unknown key"):
        config_from_dict({**MINIMAL, "extra": 1})
    # a key written one level too high (the 0.1 flat layout) says where it goes
    with pytest.raises(ConfigError, match=r"model.stride: unknown key here; write it under model.long_document.stride"):
        config_from_dict(_with("model", stride=3))


def test_all_problems_are_reported_in_one_pass(tmp_path):
    path = tmp_path / "c.yaml"
    bad = {
        "data": {"train": "t.jsonl"},
        "tasks": [{"name": "topic", "labels": ["a"]}],
        "model": {"max_length": 96, "long_document": {"strategy": "chunks", "stride": 47}, "dropuot": 0.1},
        "training": {"epochs": 0, "learning_rate": "fast", "epochz": 1},
    }
    path.write_text(yaml.safe_dump(bad), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    problems = caught.value.problems
    assert str(path) in str(caught.value) and f"{len(problems)} problems" in str(caught.value)
    for expected in (
        "data.dev: missing; this key is required",
        "tasks[0].labels: got ['a']; expected at least two labels",
        "model.dropuot: unknown key",
        "training.learning_rate: got 'fast'; expected a number",
        "training.epochz: unknown key",
    ):
        assert any(p.startswith(expected) for p in problems), (expected, problems)
    # the window check that used to pass here and fail after the encoder was loaded
    fixed = {
        **bad,
        "data": {"train": "t.jsonl", "dev": "d.jsonl"},
        "tasks": [{"name": "topic"}],
        "training": {"epochs": 0},
    }
    path.write_text(yaml.safe_dump(fixed), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "model.dropuot",
        "training.epochs",
        "model.long_document.stride",
    ]


def test_scientific_notation_string_is_read_as_float():
    config = config_from_dict(_with("training", learning_rate="1e-5"))
    assert config.training.learning_rate == pytest.approx(1e-5)


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        ("training", {"learning_rate": 2.0}, r"training.learning_rate: got 2.0; expected a value in \(0, 1\)"),
        ("training", {"epochs": 0}, r"training.epochs: got 0; expected an integer in \[1, 1000\]"),
        ("training", {"epochs": "three"}, r"training.epochs: got 'three'; expected an integer"),
        ("training", {"mixed_precision": "fp8"}, r"training.mixed_precision: got 'fp8'; expected one of"),
        ("training", {"resume": "yes"}, r"training.resume: got 'yes'; expected true or false"),
        (
            "model",
            {"long_document": {"strategy": "tail"}},
            r"model.long_document.strategy: got 'tail'; expected one of \['head', 'head_tail', 'chunks'\]",
        ),
        ("model", {"max_length": 8}, r"model.max_length: got 8; expected an integer in \[16, 8192\]"),
        (
            "model",
            {"preprocessing": ["arabert_v03"]},
            r"model.preprocessing: got \['arabert_v03'\]; expected steps among",
        ),
        ("model", {"dropout": 1.5}, r"model.dropout: got 1.5"),
    ],
)
def test_bad_values_name_field_value_and_allowed(section, values, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(_with(section, **values))


def test_task_checks():
    with pytest.raises(ConfigError, match=r"tasks\[0\].labels: got \['a'\]; expected at least two labels"):
        config_from_dict({**MINIMAL, "tasks": [{"name": "topic", "labels": ["a"]}]})
    with pytest.raises(ConfigError, match=r"repeated: \['a'\]"):
        config_from_dict({**MINIMAL, "tasks": [{"name": "topic", "labels": ["a", "a", "b"]}]})
    with pytest.raises(ConfigError, match=r"unique task names \(repeated: \['topic'\]\)"):
        config_from_dict({**MINIMAL, "tasks": [{"name": "topic"}, {"name": "topic"}]})
    with pytest.raises(ConfigError, match=r"tasks: got \[\]; expected at least one task"):
        config_from_dict({**MINIMAL, "tasks": []})


def test_missing_required_key():
    with pytest.raises(ConfigError, match=r"data.dev: missing; this key is required"):
        config_from_dict({"data": {"train": "t.jsonl"}, "tasks": [{"name": "topic"}]})


def test_load_config_resolves_data_paths_and_applies_overrides(tmp_path):
    path = tmp_path / "sub" / "c.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(MINIMAL), encoding="utf-8")
    config = load_config(path, {"training.epochs": 7})
    assert config.data.train == str(path.parent.resolve() / "t.jsonl")
    assert config.training.epochs == 7


def test_load_config_names_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_with("training", epochz=1)), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"c\.yaml: training.epochz: unknown key"):
        load_config(path)
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_stride_is_checked_only_for_chunks():
    loose = {"max_length": 96, "long_document": {"stride": 64, "head_tokens": 32}}
    assert config_from_dict(_with("model", **loose)).model.long_document.stride == 64
    chunks = {"max_length": 96, "long_document": {"strategy": "chunks", "stride": 64}}
    with pytest.raises(ConfigError, match=r"model.long_document.stride: got 64; expected an integer in \[0, 47\)"):
        config_from_dict(_with("model", **chunks))


def test_paths_are_read_from_where_they_are_written(tmp_path, monkeypatch):
    """In the YAML file: from its folder (data, output_dir, init_from, a local encoder). On the command line:
    from the working directory. An encoder name that is no folder is a hub id."""
    folder = tmp_path / "configs"
    (folder / "encoders" / "mine").mkdir(parents=True)
    data = {
        **MINIMAL,
        "model": {"encoder": "encoders/mine"},
        "training": {"output_dir": "../runs/x", "init_from": "old"},
    }
    path = folder / "c.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    config = load_config(path)
    base = folder.resolve()
    assert config.model.encoder == str(base / "encoders/mine")
    assert config.training.output_dir == str(base / "../runs/x") and config.training.init_from == str(base / "old")
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(path, {"training.output_dir": "runs/y", "data.train": ["a.jsonl", "/abs/b.jsonl"]})
    assert config.training.output_dir == str(elsewhere / "runs/y")
    assert config.data.train == [str(elsewhere / "a.jsonl"), "/abs/b.jsonl"]
    hub = folder / "hub.yaml"
    hub.write_text(
        yaml.safe_dump({**MINIMAL, "model": {"encoder": "aubmindlab/bert-base-arabertv02"}}), encoding="utf-8"
    )
    assert load_config(hub).model.encoder == "aubmindlab/bert-base-arabertv02"
