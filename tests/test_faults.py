"""Nothing lost under faults and hostile input: each case here once broke the scorer, the loader or
training (issue 8); rows = scored + errors holds, per physical record, in every one."""

from __future__ import annotations

import csv
import errno
import gzip
import json
import os
import random
import shutil

import pytest

from aranews.inference import jobs as jobs_module
from aranews.inference import load_classifier
from aranews.inference import outputs as outputs_module
from aranews.inference.inputs import SKIP_REASONS
from aranews.inference.readers import read_archive
from aranews.inference.scoring import JobLockedError, _JobLock, score_archive
from tests.helpers import read_jsonl, write_jsonl


@pytest.fixture(scope="module")
def classifier(trained_model):
    return load_classifier(trained_model / "model", device="cpu", batch_size=8)


@pytest.fixture(scope="module")
def rows(sample_rows):
    return [{"id": f"a{i:03d}", "text": r["text"]} for i, r in enumerate(sample_rows["dev"][:20])]


def _score(classifier, source, out, **kwargs):
    return score_archive(classifier, source, out, progress=False, **kwargs)


def _reasons(out) -> list[str]:
    return sorted(e["reason"] for e in read_jsonl(out.with_name(out.name + ".errors.jsonl")))


# 1 -- finishing is one atomic commit; a resume after it is a no-op -----------------------------------
@pytest.mark.parametrize("where", ["publishing", "deleting"])
def test_a_kill_while_finishing_never_replaces_a_complete_output(classifier, rows, tmp_path, monkeypatch, where):
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    reference = tmp_path / "reference.jsonl"
    _score(classifier, source, reference, chunk_size=4)
    out = tmp_path / "scores.jsonl"

    real_replace, real_rmtree = os.replace, shutil.rmtree
    calls = {"n": 0}

    def dying_replace(a, b):
        calls["n"] += 1
        if where == "publishing" and str(a).endswith("final-errors"):  # output already moved, errors not yet
            raise KeyboardInterrupt
        return real_replace(a, b)

    def dying_rmtree(path, *args, **kwargs):
        if where == "deleting" and str(path).endswith(".done") and os.path.isdir(path):
            parts = sorted(os.listdir(path))
            for name in parts[: len(parts) // 2]:  # half the files are gone when the kill comes
                os.unlink(os.path.join(path, name))
            raise KeyboardInterrupt
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(jobs_module.os, "replace", dying_replace)
    monkeypatch.setattr(jobs_module.shutil, "rmtree", dying_rmtree)
    with pytest.raises(KeyboardInterrupt):
        _score(classifier, source, out, chunk_size=4)
    monkeypatch.undo()
    summary = _score(classifier, source, out, chunk_size=4, resume=True)
    assert read_jsonl(out) == read_jsonl(reference) and summary.complete and summary.scored == len(rows)
    before = out.stat().st_mtime_ns
    again = _score(classifier, source, out, chunk_size=4, resume=True)  # nothing left to do
    assert out.stat().st_mtime_ns == before and again.scored == summary.scored
    assert not list(tmp_path.glob("*.parts")) and not list(tmp_path.glob(".*.done"))


# 2 -- an output path that is the input is refused ------------------------------------------------------
def test_outputs_never_overwrite_the_input(classifier, rows, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    original = source.read_bytes()
    (tmp_path / "alias.jsonl").symlink_to(source)
    for kwargs in (
        {"output_path": source},
        {"output_path": tmp_path / "alias.jsonl"},
        {"output_path": tmp_path / "o.jsonl", "errors_path": source},
    ):
        with pytest.raises(ValueError, match="is the input archive"):
            score_archive(classifier, source, progress=False, **kwargs)
    assert source.read_bytes() == original and not list(tmp_path.glob("*.parts"))


# 3 -- one unbalanced CSV quote is one error row, not a swallowed file ----------------------------------
def test_an_unbalanced_csv_quote_is_one_error_row(classifier, rows, tmp_path):
    path = tmp_path / "in.csv"
    body = [max(r["text"].splitlines(), key=len)[:80].replace(",", " ").replace('"', " ") for r in rows[:5]]
    lines = ["id,text"] + [f"{r['id']},{text}" for r, text in zip(rows[:5], body)]
    lines[2] = lines[2].replace(",", ',"', 1)  # an opening quote that never closes
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = _score(classifier, path, tmp_path / "s.jsonl")
    assert (summary.rows, summary.scored, summary.errors) == (5, 4, 1)
    (error,) = read_jsonl(tmp_path / "s.jsonl.errors.jsonl")
    assert (
        error["reason"] == "malformed_row" and "line 3" in error["location"] and "unbalanced quote" in error["detail"]
    )


def test_a_quoted_multiline_field_is_one_record(classifier, tmp_path):
    path = tmp_path / "in.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        writer.writerow(["m1", 'سطر أول\nسطر "ثان" فيه علامات\n\nسطر ثالث'])
        writer.writerow(["m2", "نص آخر"])
    summary = _score(classifier, path, tmp_path / "s.jsonl")
    assert (summary.rows, summary.scored, summary.errors) == (2, 2, 0)


# 5 -- one bad row never aborts the run ------------------------------------------------------------------
def test_hostile_rows_are_error_rows_and_the_run_goes_on(classifier, rows, tmp_path):
    deep = '{"id": "deep", "text": ' + "[" * 100_000 + "]" * 100_000 + "}"
    lines = [
        json.dumps(rows[0], ensure_ascii=False),
        '{"id": "\\ud800", "text": "نص"}',  # an id holding a lone surrogate
        '{"id": "t1", "text": "نص \\udc80"}',  # a text holding one
        deep,
        '{"id": NaN, "text": "نص"}',
        '{"id": true, "text": "نص"}',
        '{"id": [1, 2], "text": "نص"}',
        '{"id": 7, "text": "نص أول"}',
        '{"id": "7", "text": "نص ثان"}',  # the same id as 7 in any text output
        json.dumps(rows[1], ensure_ascii=False),
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = _score(classifier, source, tmp_path / "s.jsonl")
    assert summary.rows == 10 and summary.complete
    assert _reasons(tmp_path / "s.jsonl") == sorted(
        ["invalid_id", "invalid_unicode", "invalid_json", "invalid_id", "invalid_id", "invalid_id", "duplicate_id"]
    )
    assert [r["id"] for r in read_jsonl(tmp_path / "s.jsonl")] == [rows[0]["id"], 7, rows[1]["id"]]


def test_a_csv_cell_over_the_csv_field_limit(classifier, tmp_path):
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        writer.writerow(["big", "روسيا وتركيا " * 12_000])  # 156,000 characters > csv's 131,072 limit
        writer.writerow(["huge", "روسيا " * 50_000])
        writer.writerow(["ok", "نص قصير"])
    summary = _score(classifier, path, tmp_path / "s.jsonl")
    assert (summary.rows, summary.scored, summary.error_reasons) == (3, 2, {"oversized_text": 1})


def test_parquet_ids_of_other_types(classifier, tmp_path):
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": [b"\x00\x01", b"ok"], "text": ["نص", "نص آخر"]}), path)
    stamped = tmp_path / "time.parquet"
    pq.write_table(pa.table({"id": [datetime.datetime(2024, 1, 1)], "text": ["نص"]}), stamped)
    for source in (path, stamped):
        summary = _score(classifier, source, tmp_path / f"{source.stem}.jsonl")
        assert summary.complete and summary.scored == 0 and set(summary.error_reasons) == {"invalid_id"}
    errors = read_jsonl(tmp_path / "in.jsonl.errors.jsonl")  # error rows are valid JSON
    assert [e["id"] for e in errors] == ["b'\\x00\\x01'", "b'ok'"]


def test_truncated_and_fake_gzip(classifier, rows, tmp_path):
    whole = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    packed = gzip.compress(whole)
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(packed[: int(len(packed) * 0.6)])
    summary = _score(classifier, cut, tmp_path / "cut.jsonl")
    assert summary.complete and summary.error_reasons == {"truncated_file": 1}
    assert 0 < summary.scored < len(rows)  # the rows before the cut are scored
    fake = tmp_path / "fake.jsonl.gz"
    fake.write_bytes(whole)
    summary = _score(classifier, fake, tmp_path / "fake.jsonl")
    assert (summary.rows, summary.scored, summary.error_reasons) == (1, 0, {"unreadable_file": 1})


# 6 -- a resume refuses an input that changed ------------------------------------------------------------
def _interrupt_after_first_chunk(monkeypatch):
    real = outputs_module.score_records
    calls = {"n": 0}

    def score_then_stop(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(outputs_module, "score_records", score_then_stop)


@pytest.mark.parametrize("edit", ["append", "same_size_same_mtime"])
def test_resume_refuses_a_changed_input(classifier, rows, tmp_path, monkeypatch, edit):
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "s.jsonl"
    _interrupt_after_first_chunk(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        _score(classifier, source, out, chunk_size=4)
    monkeypatch.undo()
    stat = source.stat()
    if edit == "append":
        with source.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"id": "new", "text": "نص جديد"}, ensure_ascii=False) + "\n")
        message = "changed since the interrupted run"
    else:
        data = source.read_bytes().replace(b'"a001"', b'"b001"')  # same size
        source.write_bytes(data)
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        message = "are not those the interrupted run read"
    with pytest.raises(ValueError, match=message):
        _score(classifier, source, out, chunk_size=4, resume=True)
    assert not out.exists()


# 8 -- a byte-order mark is accepted everywhere ----------------------------------------------------------
def test_a_csv_with_a_byte_order_mark(classifier, rows, tmp_path):
    path = tmp_path / "excel.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "text"])
        writer.writeheader()
        writer.writerows(rows[:4])
    summary = _score(classifier, path, tmp_path / "s.jsonl")
    assert (summary.scored, summary.errors) == (4, 0)
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + (tmp_path / "s.jsonl").read_bytes())
    assert [r.problem for r in read_archive(jsonl)] == [None] * 4


# 10 -- training data problems name the file, the line and the cause --------------------------------------
def test_training_data_problems_name_file_line_and_cause(tmp_path):
    from aranews.training.config import DataConfig, TaskConfig
    from aranews.training.data import DataValidationError, load_and_validate

    dev = write_jsonl(tmp_path / "dev.jsonl", [{"id": "d", "text": "نص للتقييم", "topic": "a"}])
    tasks = [TaskConfig("topic")]
    cases = {
        "latin1.jsonl": (
            '{"id": "1", "text": "caf\xe9", "topic": "a"}\n'.encode("latin-1"),
            "latin1.jsonl:1: undecodable_bytes",
        ),
        "empty.jsonl": (b"", "empty.jsonl: no rows of data"),
        "header.csv": (b"id,text,topic\n", "header.csv: no rows of data"),
        "cut.jsonl": ('{"id": "1", "text": "نص", "topic": "a"}\n{"id": "2", "te'.encode(), "cut.jsonl:2: invalid_json"),
        "bom.csv": ("\ufeffid,text,topic\n1,نص,a\n2,نص آخر,b\n".encode(), None),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        config = DataConfig(train=str(tmp_path / name), dev=str(dev))
        if message is None:
            train, _, labels = load_and_validate(config, tasks)
            assert train.ids == ["1", "2"] and labels == {"topic": ["a", "b"]}
            continue
        with pytest.raises(DataValidationError) as caught:
            load_and_validate(config, tasks)
        assert message in str(caught.value), (name, str(caught.value))


# 11 -- a failed start leaves nothing behind -------------------------------------------------------------
def test_a_failed_start_leaves_no_parts(classifier, tmp_path):
    with pytest.raises(FileNotFoundError, match="archive not found"):
        _score(classifier, tmp_path / "missing.jsonl", tmp_path / "s.jsonl")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"")
    with pytest.raises(ValueError, match="cannot be read as Parquet"):
        _score(classifier, broken, tmp_path / "s.jsonl")
    assert not list(tmp_path.glob("*.parts")) and not list(tmp_path.glob("*.lock"))


# 12 -- threshold overrides are checked ------------------------------------------------------------------
def test_threshold_overrides_are_checked(trained_model, tmp_path, tiny_backbone):
    from aranews.inference.classifier import NewsClassifier
    from aranews.inference.config import ModelConfig, TaskSpec
    from aranews.inference.modeling import MultiTaskClassifier

    model = MultiTaskClassifier.from_encoder(
        ModelConfig(encoder=str(tiny_backbone), max_length=64),
        [TaskSpec("topic", ["a", "b"]), TaskSpec("tags", ["x", "y", "z"], "multi_label")],
    )
    clf = NewsClassifier(model, load_classifier(trained_model / "model").tokenizer)
    for thresholds, message in [
        ({"tags": [0.5, 0.5]}, "expected 3 values in"),
        ({"tags": [0.5]}, "expected 3 values in"),
        ({"tags": [0.5, 1.0, 0.5]}, "expected 3 values in"),
        ({"tags": [0.0, 0.5, 0.5]}, "expected 3 values in"),
        ({"topic": [0.5, 0.5]}, "is single-label"),
        ({"colour": [0.5]}, "no task 'colour'"),
    ]:
        with pytest.raises((ValueError, KeyError), match=message):
            clf.predict("نص", thresholds=thresholds)
    assert clf.predict("نص", thresholds={"tags": [0.01, 0.99, 0.5]})["tags"]["labels"][0] == "x"


# 13 -- two scorers on one job ----------------------------------------------------------------------------
def test_a_second_scorer_on_the_same_job_is_refused(classifier, rows, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "s.jsonl"
    with _JobLock(tmp_path / "s.jsonl.lock"), pytest.raises(JobLockedError, match="another scorer"):
        _score(classifier, source, out, resume=True)
    assert _score(classifier, source, out).complete  # the lock is released with its holder


# 14 -- folders, ids, chunk sizes, spreadsheets, disks ------------------------------------------------------
def test_every_path_in_a_txt_folder_is_a_row_or_an_error(classifier, tmp_path):
    folder = tmp_path / "articles"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("روسيا وتركيا", encoding="utf-8")
    (folder / "sub" / "B.TXT").write_text("أنقرة وموسكو", encoding="utf-8")
    (folder / "notes.md").write_text("x", encoding="utf-8")
    secret = tmp_path / "secret.txt"
    secret.write_text("سر", encoding="utf-8")
    (folder / "escape.txt").symlink_to(secret)
    (folder / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    (folder / "inside.txt").symlink_to(folder / "a.txt")
    summary = _score(classifier, folder, tmp_path / "s.jsonl")
    assert summary.rows == 6 and summary.complete
    assert sorted(r["id"] for r in read_jsonl(tmp_path / "s.jsonl")) == ["a", "inside", "sub/B"]
    assert summary.error_reasons == {"dangling_link": 1, "not_txt": 1, "outside_folder": 1}


def test_bad_settings_and_paths_fail_before_any_work(classifier, rows, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    for size in (0, -3):
        with pytest.raises(ValueError, match="chunk_size"):
            _score(classifier, source, tmp_path / "s.jsonl", chunk_size=size)
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        _score(classifier, source, tmp_path / "dir.jsonl")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _score(classifier, source, tmp_path / "no" / "s.jsonl")
    if os.geteuid() != 0:  # root can write anywhere
        locked = tmp_path / "ro"
        locked.mkdir(mode=0o500)
        with pytest.raises(PermissionError, match="not writable"):
            _score(classifier, source, locked / "s.jsonl")
    assert not list(tmp_path.glob("*.parts"))


def test_csv_output_neutralises_formula_cells(classifier, tmp_path):
    rows = [
        {"id": "=cmd|' /C calc'!A0", "text": "روسيا وتركيا"},
        {"id": "+1", "text": "أنقرة"},
        {"id": "ok", "text": "موسكو"},
    ]
    _score(classifier, write_jsonl(tmp_path / "in.jsonl", rows), tmp_path / "s.csv")
    with (tmp_path / "s.csv").open(encoding="utf-8", newline="") as handle:
        ids = [r["id"] for r in csv.DictReader(handle)]
    assert ids == ["'=cmd|' /C calc'!A0", "'+1", "ok"]


def test_a_full_disk_stops_cleanly_and_the_job_resumes(classifier, rows, tmp_path, monkeypatch):
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "s.jsonl"
    real = outputs_module.write_part
    calls = {"n": 0}

    def full(path, *args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *args)

    monkeypatch.setattr(outputs_module, "write_part", full)
    with pytest.raises(OSError, match="No space left"):
        _score(classifier, source, out, chunk_size=4)
    monkeypatch.undo()
    summary = _score(classifier, source, out, chunk_size=4, resume=True)
    assert summary.complete and summary.scored == len(rows) and summary.resumed


def test_cli_reports_path_errors_in_one_line(trained_model, rows, tmp_path, capsys):
    from aranews.cli import main

    source = write_jsonl(tmp_path / "in.jsonl", rows)
    assert main(["score", "--model", str(trained_model / "model"), str(source), "--out", str(source)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out") and "is the input archive" in err and "Traceback" not in err


# the readers under random input --------------------------------------------------------------------------
def test_readers_survive_random_bytes_truncation_and_encodings(tmp_path):
    """Fixed seed: every reader yields rows (never raises) and accounts for every physical record."""
    rng = random.Random(20261124)
    texts = ["روسيا وتركيا", 'قال "نعم"', "a,b", "سطر\nسطر", "", "\\", "é", "\u0640\u0640"]
    for trial in range(60):
        rows = [{"id": f"r{i}", "text": rng.choice(texts) * rng.randint(1, 3)} for i in range(rng.randint(1, 12))]
        encoding = rng.choice(["utf-8", "utf-8-sig", "utf-16", "cp1256"])
        jsonl = "".join(json.dumps(r, ensure_ascii=rng.random() < 0.5) + "\n" for r in rows)
        buffer = __import__("io").StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["id", "text"])
        writer.writeheader()
        writer.writerows(rows)
        for name, text in (("f.jsonl", jsonl), ("f.csv", buffer.getvalue())):
            data = bytearray(text.encode(encoding, errors="replace"))
            for _ in range(rng.randint(0, 3)):  # random byte damage
                if data:
                    data[rng.randrange(len(data))] = rng.randrange(256)
            if rng.random() < 0.5:
                data = data[: rng.randint(0, len(data))]  # random truncation
            path = tmp_path / f"{trial}-{name}"
            path.write_bytes(bytes(data))
            if name.endswith(".gz"):
                continue
            try:
                got = list(read_archive(path))
            except ValueError as exc:  # only a CSV whose header cannot be read stops, with a message
                assert name.endswith(".csv") and "header" in str(exc)
                continue
            if name.endswith(".jsonl"):
                physical = bytes(data).count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)
                assert len(got) == physical
            assert all(r.problem is None or r.problem[0] in SKIP_REASONS or r.problem[0] for r in got)
        packed = tmp_path / f"{trial}.jsonl.gz"
        compressed = gzip.compress(jsonl.encode())
        packed.write_bytes(compressed[: rng.randint(0, len(compressed))])
        got = list(read_archive(packed))
        assert all(
            r.problem is None
            or r.problem[0] in {"truncated_file", "unreadable_file", "invalid_json", "blank_line", "undecodable_bytes"}
            for r in got
        )


@pytest.mark.slow
def test_random_kill_points_then_resume_equal_an_uninterrupted_run(trained_model, rows, tmp_path):
    """``kill -9`` at seeded random moments over a whole run (the final commit included), then ``--resume``
    until done: the output equals an uninterrupted run's, each id exactly once, nothing lost."""
    import subprocess
    import sys
    import time

    source = write_jsonl(tmp_path / "in.jsonl", [*rows, {"id": "a001", "text": "مكرر"}, {"id": "e", "text": ""}])
    model = str(trained_model / "model")
    reference = tmp_path / "reference.jsonl"
    score_archive(load_classifier(model), source, reference, chunk_size=2, progress=False)
    command = [
        sys.executable,
        "-m",
        "aranews.cli",
        "-q",
        "score",
        "--model",
        model,
        str(source),
        "--chunk-size",
        "2",
        "--throttle",
        "0.05",
    ]
    rng = random.Random(8)
    for trial in range(16):
        out = tmp_path / f"s{trial}.jsonl"
        delay = rng.uniform(0.5, 9.0)
        process = subprocess.Popen([*command, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.kill()
        process.wait()
        for _ in range(3):  # a resume may itself be killed; here it runs to the end
            done = subprocess.run([*command, "--out", str(out), "--resume"], capture_output=True, text=True)
            if done.returncode == 0:
                break
        assert done.returncode == 0, done.stderr
        assert read_jsonl(out) == read_jsonl(reference), f"trial {trial}, killed after {delay:.2f} s"
        summary = json.loads(out.with_name(out.name + ".summary.json").read_text(encoding="utf-8"))
        assert (summary["rows"], summary["scored"], summary["errors"]) == (22, 20, 2)
        assert not list(tmp_path.glob("*.parts")) and not list(tmp_path.glob("*.lock"))
