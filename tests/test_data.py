"""Data validation reports every problem with file, row, id, column and value; partial labels are fine."""

from __future__ import annotations

import pytest

from aranews.training.config import DataConfig, TaskConfig
from aranews.training.data import DataValidationError, load_and_validate
from tests.helpers import write_jsonl

TASKS = [TaskConfig("topic", labels=["a", "b"]), TaskConfig("stance", labels=["pro", "con"])]


def _rows(n: int, prefix: str = "r") -> list[dict]:
    return [
        {
            "id": f"{prefix}{i}",
            "text": f"نص الخبر رقم {prefix}{i}",
            "topic": "ab"[i % 2],
            "stance": ["pro", "con"][i % 2],
        }
        for i in range(n)
    ]


def _validate(tmp_path, train, dev, tasks=TASKS, **data_kwargs):
    cfg = DataConfig(
        train=str(write_jsonl(tmp_path / "train.jsonl", train)),
        dev=str(write_jsonl(tmp_path / "dev.jsonl", dev)),
        **data_kwargs,
    )
    return load_and_validate(cfg, tasks)


def test_clean_data_with_partial_labels_loads(tmp_path):
    train = _rows(6)
    train[0]["stance"] = None  # a row may lack one task's label
    del train[1]["stance"]
    train[2]["title"] = "عنوان"
    split, evals, labels = _validate(tmp_path, train, _rows(4, "d"))
    assert split.labels["stance"][:2] == [None, None]
    assert split.texts[2].startswith("عنوان\n")
    assert labels == {"topic": ["a", "b"], "stance": ["pro", "con"]}
    assert len(evals["dev"]) == 4


def test_every_problem_is_reported_with_location(tmp_path):
    train = _rows(8)
    train[1]["text"] = "   "
    train[2]["text"] = 42
    train[3]["topic"] = "c"
    train[4]["id"] = "r0"
    train[5]["id"] = ""
    dev = _rows(3, "d")
    dev[0]["text"] = train[6]["text"]  # leakage
    with pytest.raises(DataValidationError) as info:
        _validate(tmp_path, train, dev)
    problems = info.value.problems
    text = "\n".join(problems)
    assert "train.jsonl:2 (id 'r1'): column 'text' is empty" in text
    assert "train.jsonl:3 (id 'r2'): column 'text' must be a string, got int 42" in text
    assert "train.jsonl:4 (id 'r3'): column 'topic' has label 'c', not in the label set ['a', 'b']" in text
    assert "train.jsonl:5 (id 'r0'): duplicate id, first seen on row 1" in text
    assert "train.jsonl:6: column 'id' is empty" in text
    assert "dev.jsonl:1 (id 'd0'): same text as" in text and "train.jsonl:7 (id 'r6')" in text
    assert len(problems) == 6


def test_missing_column_is_named(tmp_path):
    train = [{k: v for k, v in r.items() if k != "stance"} for r in _rows(4)]
    with pytest.raises(DataValidationError, match=r"train.jsonl: missing column\(s\) \['stance'\]"):
        _validate(tmp_path, train, _rows(2, "d"))


def test_task_with_fewer_than_two_labels(tmp_path):
    train = _rows(4)
    for r in train:
        r["topic"] = "a"
    with pytest.raises(
        DataValidationError, match="task 'topic': the training data .* has fewer than two distinct labels"
    ):
        _validate(tmp_path, train, _rows(2, "d"))
    inferred = [TaskConfig("topic"), TaskConfig("stance")]
    with pytest.raises(DataValidationError, match=r"task 'topic': needs at least two labels, found \['a'\]"):
        _validate(tmp_path, train, [{**r, "topic": "a"} for r in _rows(2, "d")], tasks=inferred)


def test_labels_inferred_sorted_when_not_configured(tmp_path):
    _, _, labels = _validate(tmp_path, _rows(4), _rows(2, "d"), tasks=[TaskConfig("topic")])
    assert labels == {"topic": ["a", "b"]}


def test_csv_and_parquet_are_read(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = _rows(4)
    csv = tmp_path / "train.csv"
    csv.write_text(
        "id,text,topic,stance\n" + "".join(f"{r['id']},{r['text']},{r['topic']},{r['stance']}\n" for r in rows),
        encoding="utf-8",
    )
    parquet = tmp_path / "dev.parquet"
    pq.write_table(pa.Table.from_pylist(_rows(2, "d")), parquet)
    split, evals, _ = load_and_validate(DataConfig(train=str(csv), dev=str(parquet)), TASKS)
    assert split.ids == ["r0", "r1", "r2", "r3"]
    assert evals["dev"].ids == ["d0", "d1"]


def test_unreadable_file_names_file(tmp_path):
    bad = tmp_path / "train.jsonl"
    bad.write_text('{"id": "x", "text": "نص"\n', encoding="utf-8")
    dev = write_jsonl(tmp_path / "dev.jsonl", _rows(2, "d"))
    with pytest.raises(DataValidationError, match=r"train.jsonl:1: invalid_json: Expecting ',' delimiter"):
        load_and_validate(DataConfig(train=str(bad), dev=str(dev)), TASKS)
    with pytest.raises(DataValidationError, match=r"unsupported file type '.txt'"):
        load_and_validate(DataConfig(train=str(tmp_path / "a.txt"), dev=str(dev)), TASKS)


def test_multi_label_and_pair_columns(tmp_path):
    tasks = [
        TaskConfig("tags", labels=["x", "y", "z"], problem_type="multi_label"),
        TaskConfig("stance", labels=["pro", "con"], pair_column="target"),
    ]
    train = [
        {
            "id": f"r{i}",
            "text": f"نص {i}",
            "tags": [["x"], ["y", "z"], []][i % 3],
            "stance": ["pro", "con"][i % 2],
            "target": "اللقاح",
        }
        for i in range(6)
    ]
    train[4]["tags"] = 7  # neither a list nor a '|'-separated string
    train[5]["target"] = ""
    with pytest.raises(DataValidationError) as info:
        _validate(tmp_path, train, [{**train[0], "id": "d0", "text": "نص آخر"}], tasks=tasks)
    text = "\n".join(info.value.problems)
    assert "train.jsonl:5 (id 'r4'): column 'tags' must be a list of labels, got 7" in text
    assert "train.jsonl:6 (id 'r5'): column 'target' must be a non-empty string, got ''" in text
    assert len(info.value.problems) == 2  # the empty list of row 3 is "unlabelled", not an error


def test_same_text_with_another_target_is_not_leakage(tmp_path):
    tasks = [TaskConfig("stance", labels=["pro", "con"], pair_column="target")]
    train = [
        {"id": f"r{i}", "text": f"تغريدة {i}", "stance": ["pro", "con"][i % 2], "target": "اللقاح"} for i in range(4)
    ]
    dev = [{"id": "d0", "text": "تغريدة 0", "stance": "con", "target": "المرأة"}]
    _validate(tmp_path, train, dev, tasks=tasks)  # another target: a different example
    dev[0]["target"] = "اللقاح"
    with pytest.raises(DataValidationError, match=r"same text and target/claim as .*train.jsonl:1 \(id 'r0'\)"):
        _validate(tmp_path, train, dev, tasks=tasks)


def test_problems_are_records_with_their_message(tmp_path):
    train = _rows(4)
    train[1]["text"] = ""
    train[2]["id"] = train[0]["id"]
    dev = _rows(2, "d")
    dev[0]["text"] = train[3]["text"]
    with pytest.raises(DataValidationError) as info:
        _validate(tmp_path, train, dev)
    by_kind = {p.kind: p for p in info.value.problems}
    assert {"empty_text", "duplicate_id", "leakage"} <= set(by_kind)
    empty = by_kind["empty_text"]
    assert (empty.id, empty.column, empty.value) == ("r1", "text", "") and empty.location.endswith("train.jsonl:2")
    assert str(empty) == f"{empty.location} (id 'r1'): column 'text' is empty"  # rendered from the fields
    assert by_kind["leakage"].id == "d0" and by_kind["duplicate_id"].to_dict()["kind"] == "duplicate_id"
