"""Nothing lost around the scorer (issue 20): every command that writes refuses to overwrite its input and
writes atomically; numeric options are checked when parsed; the Label Studio import goes per task and per
label; kept columns and mixed id types never stop a job; ``select`` clusters in linear memory."""

from __future__ import annotations

import csv
import errno
import json
import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from aranews.cli import main
from aranews.inference import files as files_module
from aranews.inference.files import OutputClashError, atomic_output, refuse_clashes
from aranews.inference.labelstudio import import_export
from aranews.inference.readers import iter_scores
from aranews.inference.report import write_report
from aranews.inference.scoring import score_archive
from aranews.inference.selection import _kmeans
from tests.helpers import SAMPLE, read_jsonl, write_jsonl

TASKS = None  # the import's label schema, read from the trained model where one is needed


@pytest.fixture(scope="module")
def model(trained_model) -> str:
    return str(trained_model / "model")


@pytest.fixture(scope="module")
def classifier(model):
    from aranews.inference import load_classifier

    return load_classifier(model, device="cpu", batch_size=8)


@pytest.fixture
def archive(tmp_path, sample_rows) -> Path:
    return write_jsonl(
        tmp_path / "archive.jsonl", [{"id": f"a{i}", "text": r["text"]} for i, r in enumerate(sample_rows["dev"][:10])]
    )


def _aliases(path: Path) -> list[Path]:
    """The path itself, a symbolic link to it and a hard link to it."""
    link, hard = path.with_name("link-" + path.name), path.with_name("hard-" + path.name)
    link.symlink_to(path)
    os.link(path, hard)
    return [path, link, hard]


def _refused(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1
    return err


# -- 1. no command overwrites its input -------------------------------------------------------------------
def test_predict_and_select_refuse_to_overwrite_the_archive(model, archive, capsys):
    original = archive.read_bytes()
    for alias in _aliases(archive):
        err = _refused(["predict", "--model", model, "--input", str(archive), "--out", str(alias)], capsys)
        assert "is the input archive" in err
        err = _refused(["select", "--model", model, "--input", str(archive), "--n", "2", "--out", str(alias)], capsys)
        assert "is the input archive" in err
    assert archive.read_bytes() == original


def test_label_studio_commands_refuse_to_overwrite_their_input(model, tmp_path, capsys):
    export = tmp_path / "export.json"
    export.write_text(json.dumps([{"id": 1, "data": {"id": "a", "text": "نص"}, "annotations": []}]), encoding="utf-8")
    selection = write_jsonl(tmp_path / "selection.jsonl", [{"id": "a", "text": "نص"}])
    before = export.read_bytes(), selection.read_bytes()
    for alias in _aliases(export):
        _refused(["labelstudio", "import", "--export", str(export), "--out", str(alias)], capsys)
        _refused(
            [
                "labelstudio",
                "import",
                "--export",
                str(export),
                "--out",
                str(tmp_path / "o.jsonl"),
                "--errors",
                str(alias),
            ],
            capsys,
        )
    for alias in _aliases(selection):
        err = _refused(
            ["labelstudio", "export", "--selection", str(selection), "--model", model, "--out", str(alias)], capsys
        )
        assert "--out" in err and "--selection" in err
    assert (export.read_bytes(), selection.read_bytes()) == before
    assert not (tmp_path / "o.jsonl").exists()


def test_report_refuses_to_overwrite_the_scores(tmp_path, capsys):
    scores = write_jsonl(tmp_path / "s.jsonl", [{"id": "a", "topic": "x", "topic_score": 0.5}])
    original = scores.read_bytes()
    for alias in _aliases(scores):
        _refused(["report", "--scores", str(scores), "--out", str(alias)], capsys)
    assert scores.read_bytes() == original


def test_two_outputs_that_are_one_file_are_refused(tmp_path):
    with pytest.raises(OutputClashError, match="--out and --errors are the same file"):
        refuse_clashes({}, {"--out": tmp_path / "a", "--errors": tmp_path / "a"})


# -- 1b. outputs are written whole or not at all ----------------------------------------------------------
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("old\n", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_output(target) as handle:
        handle.write("half of the new")
        raise RuntimeError("killed")
    assert target.read_text(encoding="utf-8") == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


@pytest.mark.parametrize("command", ["predict", "select", "report"])
def test_a_full_disk_leaves_the_previous_output(command, model, archive, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out.file"
    out.write_text("previous\n", encoding="utf-8")
    scores = write_jsonl(tmp_path / "s.jsonl", [{"id": "a", "topic": "x", "topic_score": 0.5}])
    argv = {
        "predict": ["predict", "--model", model, "--input", str(archive), "--out", str(out)],
        "select": ["select", "--model", model, "--input", str(archive), "--n", "3", "--out", str(out)],
        "report": ["report", "--scores", str(scores), "--out", str(out)],
    }[command]

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files_module.os, "fsync", full)
    assert main(argv) == 2
    assert "No space left" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


# -- 3. the documented retraining loop: data.train as a list, from YAML and from --set --------------------
def test_a_list_of_training_files_from_yaml_and_from_set(tiny_backbone, sample_rows, tmp_path, capsys):
    old = write_jsonl(tmp_path / "old.jsonl", sample_rows["train"][8:])
    new = write_jsonl(
        tmp_path / "new-labels.jsonl",
        [{"id": f"n{i}", "text": r["text"], "topic": r["topic"]} for i, r in enumerate(sample_rows["train"][:8])],
    )
    (tmp_path / "dev.jsonl").write_bytes((SAMPLE / "dev.jsonl").read_bytes())
    config = tmp_path / "retrain.yaml"
    config.write_text(
        "data:\n  train: [old.jsonl, new-labels.jsonl]\n  dev: dev.jsonl\n"
        "tasks:\n  - name: topic\n  - name: stance\n"
        f"model:\n  encoder: {tiny_backbone}\n  max_length: 32\n"
        f"training:\n  output_dir: {tmp_path / 'run'}\n  epochs: 1\n  progress: false\n  report: false\n  baseline: false\n",
        encoding="utf-8",
    )
    assert main(["train", str(config)]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["data"]["train"]["articles"] == len(sample_rows["train"])
    capsys.readouterr()
    listed = f"data.train=[{old}, {new}]"
    assert (
        main(
            [
                "train",
                str(config),
                "--set",
                listed,
                "--set",
                f"data.dev=[{tmp_path / 'dev.jsonl'}]",
                "--out",
                str(tmp_path / "run2"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "run2" / "metrics.json").read_text(encoding="utf-8"))["data"]["train"][
        "articles"
    ] == len(sample_rows["train"])


# -- 4. Label Studio import: per task and per label; one bad task is one error row ----------------------
def _choice(who, **labels):
    return {
        "completed_by": who,
        "result": [
            {"from_name": k, "to_name": "text", "type": "choices", "value": {"choices": [v]}} for k, v in labels.items()
        ],
    }


def test_label_studio_import_keeps_agreed_labels_and_survives_bad_tasks(model, tmp_path):
    from aranews.inference.config import ClassifierConfig
    from aranews.training.config import DataConfig, TaskConfig
    from aranews.training.data import load_split

    tasks = ClassifierConfig.load(model).tasks
    items = [
        {
            "id": 1,
            "data": {"id": "a", "text": "نص أ"},
            "annotations": [
                _choice(1, topic="security", stance="tension"),
                _choice(2, topic="diplomacy", stance="tension"),
            ],
        },
        {"id": 2, "data": {"id": "b", "text": "نص ب"}, "annotations": 7},
        {
            "id": 3,
            "data": {"id": "c", "text": "نص ج"},
            "annotations": [{"result": [{"from_name": "topic", "type": "choices", "value": "security"}]}],
        },
        {"id": 4, "data": {"id": {"x": 1}, "text": "نص د"}, "annotations": [_choice(1, topic="security")]},
        {"id": 5, "data": {"id": [1], "text": "نص"}, "annotations": [_choice(1, topic="security")]},
        {"id": 6, "data": {"id": 1.5, "text": "نص"}, "annotations": [_choice(1, topic="security")]},
        {"id": 7, "data": {"id": True, "text": "نص"}, "annotations": [_choice(1, topic="security")]},
        {"id": 8, "data": {"id": "e", "text": "  "}, "annotations": [_choice(1, topic="security")]},
        {"id": 9, "data": {"id": "f", "text": "نص و"}, "annotations": [_choice(1, topic="security")]},
        {"id": 10, "data": {"id": "f", "text": "نص و"}, "annotations": [_choice(1, topic="diplomacy")]},
        {"id": 11, "data": {"id": 12, "text": "نص ز"}, "annotations": [{"result": "not a list"}]},
        "not a task",
        {"id": 13, "data": {"id": "g", "text": "نص ح"}, "annotations": [_choice(1, stance="neutral")]},
    ]
    export = tmp_path / "export.json"
    export.write_bytes(b"\xef\xbb\xbf" + json.dumps(items, ensure_ascii=False).encode())  # with a byte-order mark
    summary = import_export(export, tmp_path / "labels.jsonl", tasks)
    rows = {r["id"]: r for r in read_jsonl(tmp_path / "labels.jsonl")}
    errors = read_jsonl(tmp_path / "labels.jsonl.errors.jsonl")
    assert summary.tasks == len(items) == summary.labelled + summary.errors
    assert sorted(rows) == ["a", "f", "g"]
    assert rows["a"]["stance"] == "tension" and rows["a"]["topic"] is None  # the agreed task is kept
    assert rows["f"]["topic"] == "security"  # the first of two tasks with one id
    partial = [e for e in errors if e["row_written"]]
    assert [(e["id"], e["reason"], sorted(e["detail"])) for e in partial] == [("a", "annotator_conflict", ["topic"])]
    reasons = {e["task"]: e["reason"] for e in errors if not e["row_written"]}
    assert reasons == {
        2: "malformed_task", 3: "malformed_task", 4: "invalid_id", 5: "invalid_id", 6: "invalid_id", 7: "invalid_id",
        8: "empty_text", 10: "duplicate_id", 11: "malformed_task", 12: "unreadable_task",
    }  # fmt: skip
    assert summary.partial == 1 and sum(summary.error_reasons.values()) == summary.errors
    # what import writes, train accepts
    written = str(tmp_path / "labels.jsonl")
    configs = [TaskConfig(t.name, list(t.labels)) for t in tasks]
    split, problems = load_split(
        "train", written, DataConfig(train=written, dev=written), configs, require_labels=False
    )
    assert problems == [] and len(split) == 3


def test_a_deeply_nested_export_or_selection_is_one_line(model, tmp_path, capsys):
    export = tmp_path / "export.json"
    export.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    err = _refused(["labelstudio", "import", "--export", str(export), "--out", str(tmp_path / "o.jsonl")], capsys)
    assert "nested too deeply" in err
    selection = tmp_path / "selection.jsonl"
    selection.write_text('{"id": "a", "text": "x", "deep": ' + "[" * 100_000 + "]" * 100_000 + "}\n", encoding="utf-8")
    err = _refused(
        ["labelstudio", "export", "--selection", str(selection), "--model", model, "--out", str(tmp_path / "t.json")],
        capsys,
    )
    assert "selection.jsonl:1" in err


# -- 5. outputs take what the reader accepts ------------------------------------------------------------
def test_parquet_output_with_mixed_ids_and_kept_types_finishes(classifier, tmp_path):
    rows = [
        {"id": 7, "text": "روسيا وتركيا", "views": 3, "meta": {"a": [1, 2]}},
        {"id": "a7", "text": "أنقرة وموسكو", "views": "n/a", "meta": None},
    ]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "s.parquet"
    summary = score_archive(classifier, source, out, progress=False, chunk_size=1, keep_columns=["views", "meta"])
    assert summary.complete and summary.scored == 2
    got = list(iter_scores(out))
    assert [(r["id"], r["views"], r["meta"]) for r in got] == [("7", "3", '{"a": [1, 2]}'), ("a7", "n/a", None)]


def test_kept_values_are_whole_and_finite_and_a_misspelled_column_is_refused(classifier, tmp_path):
    long_value = "ق" * 200_000
    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps({"id": "a", "text": "روسيا", "source": long_value, "nested": {"k": list(range(100))}, "x": 1}) + "\n"
        + '{"id": "b", "text": "تركيا", "source": "s", "nested": [1.5, NaN], "x": Infinity}\n',
        encoding="utf-8",
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"--keep-columns 'soruce': no such column .*'source'"):
        score_archive(classifier, source, tmp_path / "o.jsonl", progress=False, keep_columns=["soruce"])
    assert not (tmp_path / "o.jsonl").exists() and not (tmp_path / "o.jsonl.parts").exists()
    for name in ("o.jsonl", "o.csv"):
        summary = score_archive(
            classifier, source, tmp_path / name, progress=False, keep_columns=["source", "nested", "x"]
        )
        assert summary.complete and summary.scored == 2
    lines = (tmp_path / "o.jsonl").read_text(encoding="utf-8").splitlines()
    strict = [json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} written")) for line in lines]
    assert strict[0]["source"] == long_value and json.loads(strict[0]["nested"]) == {"k": list(range(100))}
    assert strict[1]["nested"] == "[1.5, null]" and strict[1]["x"] is None
    with (tmp_path / "o.csv").open(encoding="utf-8", newline="") as handle:
        csv.field_size_limit(2**31 - 1)
        assert next(csv.DictReader(handle))["source"] == long_value
    result = write_report(tmp_path / "o.csv", tmp_path / "r.html")  # the report reads the long cell too
    assert result.rows == 2


# -- 7, 8. ids that cannot be written, numeric options checked when parsed ------------------------------
def test_predict_input_writes_every_row_past_a_lone_surrogate_id(model, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"id": "ok1", "text": "روسيا"}\n{"id": "\\ud800", "text": "تركيا"}\n{"id": "ok2", "text": "أنقرة"}\n',
        encoding="utf-8",
    )
    assert main(["predict", "--model", model, "--input", str(source), "--out", str(tmp_path / "p.jsonl")]) == 0
    out = read_jsonl(tmp_path / "p.jsonl")
    assert [r.get("skipped") for r in out] == [None, "invalid_id", None] and out[2]["id"] == "ok2"


@pytest.mark.parametrize(
    "argv",
    [
        ["predict", "--model", "M", "--max-chars", "0", "x"],
        ["predict", "--model", "M", "--max-chars", "-5", "x"],
        ["select", "--model", "M", "--input", "a", "--n", "3", "--out", "o", "--pool-factor", "-1"],
        ["select", "--model", "M", "--input", "a", "--n", "3", "--out", "o", "--per-label", "-2"],
        ["select", "--model", "M", "--input", "a", "--n", "0", "--out", "o"],
        ["score", "--model", "M", "a", "--out", "o.jsonl", "--throttle", "-1"],
        ["score", "--model", "M", "a", "--out", "o.jsonl", "--chunk-size", "0"],
        ["score", "--model", "M", "a", "--out", "o.jsonl", "--batch-size", "nan"],
        ["report", "--scores", "s", "--out", "o", "--examples", "-1"],
        ["report", "--scores", "s", "--out", "o", "--uncertain", "-1"],
        ["check-precision", "--model", "M", "--data", "d", "--min-agreement", "1.5"],
    ],
)
def test_numeric_options_are_checked_when_parsed(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error: argument" in err and "expected" in err and "Traceback" not in err


def test_report_options_are_checked_by_the_library_too(tmp_path):
    scores = write_jsonl(tmp_path / "s.jsonl", [{"id": "a", "topic": "x", "topic_score": 0.5}])
    for option in ("examples", "uncertain", "max_sources"):
        with pytest.raises(ValueError, match=f"{option}=-1"):
            write_report(scores, tmp_path / "r.html", **{option: -1})


# -- 6. select clusters in memory linear in the pool ------------------------------------------------------
def test_kmeans_memory_is_linear_in_the_pool():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20_000, 128)).astype(np.float32)
    tracemalloc.start()
    labels = _kmeans(x, 2_000, seed=0, iterations=3)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert labels.shape == (20_000,) and len(set(labels.tolist())) > 1_500
    assert peak < 120 * 2**20  # the old pool x k x dim float64 difference needed 40 GB here


def test_export_never_writes_over_the_model(model, tmp_path, capsys):
    before = sorted(p.name for p in Path(model).iterdir())
    for out in (model, str(Path(model) / "sub"), str(Path(model).parent)):
        err = _refused(["export", "--model", model, "--task", "topic", "--out", out], capsys)
        assert "the model" in err
    assert sorted(p.name for p in Path(model).iterdir()) == before
    out = tmp_path / "topic"
    assert main(["export", "--model", model, "--task", "topic", "--out", str(out)]) == 0
    assert main(["export", "--model", model, "--task", "topic", "--out", str(out)]) == 0  # replaced whole
    assert (out / "config.json").is_file() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_job_whose_commit_fails_resumes_once_the_cause_is_fixed(classifier, archive, tmp_path, monkeypatch):
    from aranews.inference import outputs as outputs_module

    out = tmp_path / "s.parquet"
    real = outputs_module.assemble

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs_module, "assemble", full_disk)
    with pytest.raises(OSError, match="No space left"):
        score_archive(classifier, archive, out, progress=False, chunk_size=4)
    assert not out.exists() and (tmp_path / "s.parquet.parts").is_dir()
    monkeypatch.setattr(outputs_module, "assemble", real)
    summary = score_archive(classifier, archive, out, progress=False, chunk_size=4, resume=True)
    assert summary.complete and summary.scored == 10 and len(list(iter_scores(out))) == 10
