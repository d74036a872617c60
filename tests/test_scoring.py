"""Batch scoring: every row is scored or written down; formats round-trip; kill and resume is exact."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aranews.inference import load_classifier, predict_stance, predict_topic
from aranews.inference.scoring import score_archive
from tests.helpers import SAMPLE, read_jsonl, write_jsonl


@pytest.fixture(scope="module")
def classifier(trained_model):
    return load_classifier(trained_model / "model", device="cpu", batch_size=8)


@pytest.fixture(scope="module")
def articles(sample_rows):
    return [
        {"id": f"a{i:03d}", "text": r["text"]} for i, r in enumerate(sample_rows["dev"] + sample_rows["train"][:24])
    ]


def _read(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if path.suffix == ".csv":
        import csv

        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))
    return read_jsonl(path)


def _write_input(tmp_path: Path, rows: list[dict], fmt: str) -> Path:
    if fmt == "jsonl":
        return write_jsonl(tmp_path / "in.jsonl", rows)
    if fmt == "jsonl.gz":
        path = tmp_path / "in.jsonl.gz"
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        return path
    if fmt == "csv":
        import csv

        path = tmp_path / "in.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["id", "text"])
            writer.writeheader()
            writer.writerows(rows)
        return path
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = tmp_path / "in.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path)
        return path
    folder = tmp_path / "txt"
    folder.mkdir()
    for r in rows:
        (folder / f"{r['id']}.txt").write_text(r["text"], encoding="utf-8")
    return folder


@pytest.mark.parametrize("in_fmt", ["jsonl", "jsonl.gz", "csv", "parquet", "txt"])
@pytest.mark.parametrize("out_fmt", ["jsonl", "csv", "parquet"])
def test_round_trip_every_input_and_output_format(tmp_path, classifier, articles, in_fmt, out_fmt):
    rows = articles[:12]
    source = _write_input(tmp_path, rows, in_fmt)
    out = tmp_path / f"scores.{out_fmt}"
    summary = score_archive(classifier, source, out, chunk_size=5, progress=False)
    assert (summary.rows, summary.scored, summary.errors) == (12, 12, 0)
    got = _read(out)
    assert [r["id"] for r in got] == [r["id"] for r in rows]  # input order kept
    expected = classifier.predict([r["text"] for r in rows])
    for row, want in zip(got, expected):
        assert row["topic"] == want["topic"]["label"]
        assert row["stance"] == want["stance"]["label"]
        assert float(row["topic_score"]) == pytest.approx(want["topic"]["score"], abs=1e-5)
    assert not out.with_name(out.name + ".parts").exists()


def test_malformed_archive_every_row_accounted_for(tmp_path, classifier, articles):
    good = articles[:5]
    lines = [json.dumps(r, ensure_ascii=False).encode() for r in good]
    lines += [
        json.dumps({"id": "a000", "text": "خبر مكرر"}, ensure_ascii=False).encode(),  # duplicate_id
        json.dumps({"text": "خبر بلا معرف"}, ensure_ascii=False).encode(),  # missing_id
        json.dumps({"id": "e1", "text": "  "}).encode(),  # empty_text
        json.dumps({"id": "e2", "text": ["list"]}).encode(),  # non_string_text
        json.dumps({"id": "e3"}).encode(),  # missing_text
        '{"id": "e4", "text": "نص '.encode() + b"\xff\xfe" + b'"}',  # undecodable_bytes
        json.dumps({"id": "e5", "text": "كلمة " * 300}, ensure_ascii=False).encode(),  # oversized_text
        json.dumps({"id": "e6", "text": "Only English words here."}).encode(),  # no_arabic_text
        b'{"id": "e7", "text": "broken',  # invalid_json
        b"[1, 2]",  # invalid_json (not an object)
        b"",  # blank_line
    ]
    source = tmp_path / "bad.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "scores.jsonl"
    summary = score_archive(classifier, source, out, chunk_size=4, max_chars=1000, progress=False)
    assert summary.rows == len(lines) == summary.scored + summary.errors
    assert summary.scored == 5
    assert summary.error_reasons == {
        "blank_line": 1,
        "duplicate_id": 1,
        "empty_text": 1,
        "invalid_json": 2,
        "missing_id": 1,
        "missing_text": 1,
        "no_arabic_text": 1,
        "non_string_text": 1,
        "oversized_text": 1,
        "undecodable_bytes": 1,
    }
    errors = read_jsonl(Path(summary.errors_file))
    located = {e["location"].rsplit(":", 1)[1]: e for e in errors}
    assert located["6"]["reason"] == "duplicate_id" and located["6"]["id"] == "a000"
    assert located["11"]["reason"] == "undecodable_bytes"
    assert "1500 characters > max_chars=1000" in located["12"]["detail"]
    flagged = score_archive(
        classifier,
        source,
        tmp_path / "flagged.jsonl",
        chunk_size=4,
        max_chars=1000,
        score_non_arabic=True,
        progress=False,
    )
    assert flagged.scored == 6 and flagged.flagged_no_arabic == 1
    assert [r["no_arabic"] for r in read_jsonl(tmp_path / "flagged.jsonl")].count(True) == 1


def test_summary_probabilities_and_provenance(tmp_path, classifier, articles):
    source = write_jsonl(tmp_path / "in.jsonl", articles[:6])
    out = tmp_path / "scores.jsonl"
    score_archive(classifier, source, out, all_probabilities=True, progress=False)
    rows = read_jsonl(out)
    for row in rows:
        probs = json.loads(row["topic_probs"])
        assert list(probs) == classifier.labels["topic"]
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-4)
        assert row["topic"] == max(probs, key=probs.get)
    saved = json.loads((tmp_path / "scores.jsonl.summary.json").read_text(encoding="utf-8"))
    assert saved["provenance"]["labels"] == classifier.labels
    assert len(saved["provenance"]["model_sha256"]) == 64
    assert rows[0]["model_sha256"] == saved["provenance"]["model_sha256"][:16]
    assert sum(saved["label_counts"]["topic"].values()) == 6
    assert saved["articles_per_second"] > 0


def test_unfinished_run_needs_resume_and_the_same_job(tmp_path, classifier, articles):
    source = write_jsonl(tmp_path / "in.jsonl", articles[:6])
    out = tmp_path / "scores.jsonl"
    parts = tmp_path / "scores.jsonl.parts"
    parts.mkdir()
    (parts / "state.json").write_text(json.dumps({"job": {"input": "other"}, "chunks_done": 1, "rows_done": 2}))
    with pytest.raises(FileExistsError, match="rerun with --resume"):
        score_archive(classifier, source, out, progress=False)
    with pytest.raises(ValueError, match="belongs to a different job"):
        score_archive(classifier, source, out, resume=True, progress=False)


def test_predict_topic_and_stance_helpers(classifier):
    one = predict_topic("وقعت أنقرة وموسكو اتفاقا للغاز", classifier)
    assert set(one) == {"label", "score"} and one["label"] in classifier.labels["topic"]
    many = predict_stance(["نص", "نص آخر"], classifier)
    assert len(many) == 2 and all(r["label"] in classifier.labels["stance"] for r in many)
    assert predict_topic([], classifier) == []


def _score_cmd(model: Path, source: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "aranews.cli",
        "-q",
        "score",
        "--model",
        str(model),
        str(source),
        "--out",
        str(out),
        "--chunk-size",
        "4",
        *extra,
    ]


def _wait_for_parts(parts: Path, n: int, process: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until ``n`` chunks are recorded as done (their parts written, then the state)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if json.loads((parts / "state.json").read_text(encoding="utf-8"))["chunks_done"] >= n:
                return
        except (OSError, ValueError, KeyError):
            pass
        if process.poll() is not None:
            raise AssertionError(f"scorer exited early with {process.returncode}")
        time.sleep(0.02)
    raise AssertionError("scorer made no progress")


@pytest.mark.parametrize(("how", "after_parts"), [(signal.SIGKILL, 1), (signal.SIGKILL, 4), (signal.SIGINT, 2)])
def test_kill_and_resume_equals_an_uninterrupted_run(tmp_path, trained_model, classifier, articles, how, after_parts):
    rows = [*articles[:30], {"id": "a001", "text": "مكرر"}, {"id": "x", "text": ""}]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    model = trained_model / "model"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    reference = tmp_path / "reference.jsonl"
    score_archive(classifier, source, reference, chunk_size=4, progress=False)

    out = tmp_path / "scores.jsonl"
    process = subprocess.Popen(
        _score_cmd(model, source, out, "--throttle", "1.0"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # as from a terminal: a SIGINT disposition of "ignore" inherited from the test process (some library
        # in an earlier test may set it) would make the child ignore Ctrl-C
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    _wait_for_parts(tmp_path / "scores.jsonl.parts", after_parts, process)
    process.send_signal(how)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0, stderr.decode(errors="replace")[-2000:]
    if how == signal.SIGINT:
        assert process.returncode == 130 and b"--resume" in stderr
    assert not out.exists()
    again = subprocess.run(_score_cmd(model, source, out), env=env, capture_output=True)
    assert again.returncode == 2 and b"rerun with --resume" in again.stderr
    subprocess.run(_score_cmd(model, source, out, "--resume"), check=True, env=env, capture_output=True)

    got, want = read_jsonl(out), read_jsonl(reference)
    assert [r["id"] for r in got] == [r["id"] for r in want]
    assert len({r["id"] for r in got}) == len(got) == 30  # each id exactly once
    for a, b in zip(got, want):
        assert (a["topic"], a["stance"]) == (b["topic"], b["stance"])
        assert a["topic_score"] == pytest.approx(b["topic_score"], abs=1e-5)
    errors = read_jsonl(tmp_path / "scores.jsonl.errors.jsonl")
    assert sorted(e["reason"] for e in errors) == ["duplicate_id", "empty_text"]
    summary = json.loads((tmp_path / "scores.jsonl.summary.json").read_text(encoding="utf-8"))
    assert summary["rows"] == 32 and summary["scored"] == 30 and summary["errors"] == 2 and summary["resumed"]


def test_sample_archive_has_one_row_of_each_bad_kind():
    rows = (SAMPLE / "archive.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 42
