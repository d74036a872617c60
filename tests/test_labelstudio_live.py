"""The Label Studio round trip against a real Label Studio server (slow; needs the ``label-studio`` package).

    ARANEWS_LABEL_STUDIO=/path/to/venv/bin/label-studio .venv/bin/python -m pytest -m slow tests/test_labelstudio_live.py

Label Studio pins many packages of its own: install it in a separate virtual environment
(``python -m venv /tmp/ls && /tmp/ls/bin/pip install label-studio``) and point ``ARANEWS_LABEL_STUDIO`` at
its ``label-studio`` executable (or put it on ``PATH``). The test starts it on 127.0.0.1 with a fresh data
folder, creates a project with the labelling config ``aranews labelstudio export`` writes, imports the
tasks with their pre-annotations, submits annotations through the API (accepted, corrected, conflicting,
ground truth, cancelled, none), exports the project as JSON and reads it back with
``aranews labelstudio import``: every task is either a training row or an error with its reason.

With ``ARANEWS_RECORD_FIXTURES=1`` it also writes the export to ``tests/fixtures/labelstudio/`` for the
default suite's format test.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from aranews.inference.config import TaskSpec
from aranews.inference.labelstudio import export_tasks, import_export
from tests.helpers import read_jsonl, write_jsonl

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parent / "fixtures" / "labelstudio"
TOKEN = "aranews0test0token0000000000000000000000"
TASKS = [
    TaskSpec("topic", ["security", "economy_energy", "diplomacy"]),
    TaskSpec("stance", ["cooperation", "neutral", "tension"]),
]


def _executable() -> str | None:
    return os.environ.get("ARANEWS_LABEL_STUDIO") or shutil.which("label-studio")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Client:
    def __init__(self, base: str) -> None:
        self.base = base

    def __call__(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", f"Token {TOKEN}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
        return json.loads(raw) if raw else None


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    executable = _executable()
    if executable is None:
        pytest.skip("label-studio is not installed (set ARANEWS_LABEL_STUDIO to its executable)")
    data = tmp_path_factory.mktemp("label-studio")
    port = _free_port()
    env = {
        **os.environ,
        "LABEL_STUDIO_BASE_DATA_DIR": str(data),
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "SENTRY_DSN": "",
        "LABEL_STUDIO_USERNAME": "analyst@example.com",
        "LABEL_STUDIO_PASSWORD": "aranews-test-password",
        "LABEL_STUDIO_USER_TOKEN": TOKEN,
    }
    log = (data / "server.log").open("w")
    process = subprocess.Popen(
        [
            executable,
            "start",
            "--no-browser",
            "--internal-host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    client = _Client(f"http://127.0.0.1:{port}")
    deadline = time.time() + 240
    try:
        while True:
            try:
                client("GET", "/api/projects")
                break
            except OSError:
                if process.poll() is not None or time.time() > deadline:
                    log.flush()
                    pytest.fail(f"Label Studio did not start:\n{(data / 'server.log').read_text()[-3000:]}")
                time.sleep(2)
        yield client
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _choices(topic=None, stance=None):
    return [
        {"from_name": name, "to_name": "text", "type": "choices", "value": {"choices": [value]}}
        for name, value in (("topic", topic), ("stance", stance))
        if value
    ]


def test_round_trip_through_a_real_label_studio(label_studio, tmp_path, sample_rows):
    rows = [
        {
            "id": f"ls{i}",
            "text": r["text"],
            "title": r.get("title") or "",
            "topic": None,
            "stance": None,
            "suggested_topic": {"label": ["security", "economy_energy", "diplomacy"][i % 3], "score": 0.5},
            "suggested_stance": {"label": ["cooperation", "neutral", "tension"][i % 3], "score": 0.6},
            "uncertainty": round(0.9 - i * 0.05, 2),
        }
        for i, r in enumerate(sample_rows["dev"][:8])
    ]
    selection = write_jsonl(tmp_path / "selection.jsonl", rows)
    tasks_file, config_file, _ = export_tasks(selection, tmp_path / "tasks.json", TASKS, model_version="test")
    project = label_studio(
        "POST",
        "/api/projects",
        {"title": "aranews round trip", "label_config": config_file.read_text(encoding="utf-8")},
    )
    label_studio("POST", f"/api/projects/{project['id']}/import", json.loads(tasks_file.read_text(encoding="utf-8")))
    listed = label_studio("GET", f"/api/tasks?project={project['id']}&page_size=100")
    served = listed["tasks"] if isinstance(listed, dict) else listed
    by_id = {t["data"]["id"]: t for t in served}
    assert sorted(by_id) == sorted(r["id"] for r in rows)
    assert all(by_id[r["id"]]["total_predictions"] == 1 for r in rows)

    plan = {  # what the analysts do, and what the import must make of it
        "ls0": [dict(result=_choices("security", "tension"))],  # accepted as suggested
        "ls1": [dict(result=_choices("diplomacy", "neutral"))],  # corrected
        "ls2": [dict(result=_choices("security")), dict(result=_choices("diplomacy"))],  # two annotators disagree
        "ls3": [dict(result=_choices("security")), dict(result=_choices("diplomacy"), ground_truth=True)],
        "ls4": [dict(result=_choices("security"), was_cancelled=True)],  # skipped
        "ls5": [dict(result=_choices(stance="cooperation"))],  # only one task labelled
        "ls6": [
            dict(result=_choices("economy_energy", "cooperation")),
            dict(result=_choices("economy_energy", "cooperation")),
        ],
    }  # ls7: nobody annotates it
    for row_id, submitted in plan.items():
        for annotation in submitted:
            label_studio("POST", f"/api/tasks/{by_id[row_id]['id']}/annotations", annotation)
    export = label_studio("GET", f"/api/projects/{project['id']}/export?exportType=JSON&download_all_tasks=true")
    export_file = tmp_path / "export.json"
    export_file.write_text(json.dumps(export, ensure_ascii=False, indent=1), encoding="utf-8")

    summary = import_export(export_file, tmp_path / "labels.jsonl", TASKS)
    labelled = {r["id"]: [r.get("topic"), r.get("stance")] for r in read_jsonl(tmp_path / "labels.jsonl")}
    errors = {e["id"]: e["reason"] for e in read_jsonl(tmp_path / "labels.jsonl.errors.jsonl")}
    assert summary.tasks == len(rows) == summary.labelled + summary.errors  # no task lost
    assert labelled == {
        "ls0": ["security", "tension"],
        "ls1": ["diplomacy", "neutral"],
        "ls3": ["diplomacy", None],
        "ls5": [None, "cooperation"],
        "ls6": ["economy_energy", "cooperation"],
    }
    assert errors == {"ls2": "annotator_conflict", "ls4": "not_annotated", "ls7": "not_annotated"}
    assert summary.cancelled_annotations == 1
    texts = {r["id"]: r["text"] for r in rows}
    assert all(r["text"] == texts[r["id"]] for r in read_jsonl(tmp_path / "labels.jsonl"))

    if os.environ.get("ARANEWS_RECORD_FIXTURES"):
        FIXTURES.mkdir(parents=True, exist_ok=True)
        for item in export:  # the corpus text stays out of the repository: keep the structure only
            item["data"]["text"] = f"نص المقال {item['data']['id']}"
            item["data"]["title"] = ""
        (FIXTURES / "export.json").write_text(json.dumps(export, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        expected = {
            "error_reasons": summary.error_reasons,
            "cancelled_annotations": summary.cancelled_annotations,
            "labels": labelled,
        }
        (FIXTURES / "expected.json").write_text(json.dumps(expected, indent=1) + "\n", encoding="utf-8")
