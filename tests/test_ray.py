"""Archive scoring on Ray: the same output as one process, nothing lost when a worker or the driver dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aranews.inference import load_classifier
from aranews.inference import ray_engine as ray_engine_module
from aranews.inference.ray_engine import RayOptions
from aranews.inference.scoring import score_archive
from tests.helpers import read_jsonl, write_jsonl

ray = pytest.importorskip("ray")

TWO_WORKERS = RayOptions(workers=2, threads_per_worker=1)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (the scorer uses it and leaves it running)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def archive(tmp_path_factory, sample_rows):
    rows = [{"id": f"r{i:03d}", "text": r["text"], "title": r["title"]} for i, r in enumerate(sample_rows["train"])]
    rows[5]["text"] = ""  # an error of each kind the checks make, so the errors files are compared too
    rows[9]["id"] = rows[8]["id"]
    rows.insert(20, {"id": "latin", "text": "only latin letters here"})
    return write_jsonl(tmp_path_factory.mktemp("ray") / "archive.jsonl", rows)


def _same_output(a: Path, b: Path) -> None:
    left, right = read_jsonl(a), read_jsonl(b)
    assert [r["id"] for r in left] == [r["id"] for r in right]
    for x, y in zip(left, right, strict=True):
        for key, value in x.items():
            if key.endswith("_score"):
                assert abs(value - y[key]) <= 1e-5, (x["id"], key)
            else:
                assert value == y[key], (x["id"], key)
    assert read_jsonl(Path(f"{a}.errors.jsonl")) == read_jsonl(Path(f"{b}.errors.jsonl"))


def test_two_ray_workers_equal_one_process(local_ray, trained_model, archive, tmp_path):
    clf = load_classifier(trained_model / "model", precision="fp32")
    local = score_archive(clf, archive, tmp_path / "local.jsonl", chunk_size=16, progress=False)
    on_ray = score_archive(
        clf, archive, tmp_path / "ray.jsonl", chunk_size=16, progress=False, engine="ray", ray_options=TWO_WORKERS
    )
    _same_output(tmp_path / "local.jsonl", tmp_path / "ray.jsonl")
    assert (on_ray.rows, on_ray.scored, on_ray.errors, on_ray.error_reasons) == (
        local.rows,
        local.scored,
        local.errors,
        local.error_reasons,
    )
    assert on_ray.label_counts == local.label_counts and on_ray.complete


def test_a_killed_worker_loses_nothing(local_ray, trained_model, archive, tmp_path, monkeypatch):
    from aranews.inference import outputs as outputs_module

    clf = load_classifier(trained_model / "model", precision="fp32")
    score_archive(clf, archive, tmp_path / "local.jsonl", chunk_size=4, progress=False)
    pools, killed = [], []
    real_pool, real_write = ray_engine_module.ray_pool, outputs_module.write_part

    def keep(*args, **kwargs):
        pools.append(real_pool(*args, **kwargs))
        return pools[-1]

    def write_then_kill(path, rows, *args):  # after the second chunk: kill -9 a worker, chunks still in flight
        real_write(path, rows, *args)
        if path.name == "scores-000001.part" and not killed:
            pid = pools[0].pids()[0]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    monkeypatch.setattr(ray_engine_module, "ray_pool", keep)
    monkeypatch.setattr(outputs_module, "write_part", write_then_kill)
    summary = score_archive(
        clf, archive, tmp_path / "ray.jsonl", chunk_size=4, progress=False, engine="ray", ray_options=TWO_WORKERS
    )
    assert killed, "no worker was killed"
    assert summary.complete and not summary.resumed
    _same_output(tmp_path / "local.jsonl", tmp_path / "ray.jsonl")


DRIVER = """
import sys, time
from aranews.inference import load_classifier, outputs
real_write = outputs.write_part
def slow_write(*args):  # a slow output disk: the job is still running when the driver is killed
    time.sleep(0.2)
    real_write(*args)
outputs.write_part = slow_write
from aranews.inference.ray_engine import RayOptions
from aranews.inference.scoring import score_archive
model, source, out = sys.argv[1:4]
score_archive(load_classifier(model, precision="fp32"), source, out, chunk_size=2, progress=False,
              engine="ray", ray_options=RayOptions(workers=2, threads_per_worker=1), throttle_seconds=0)
"""


@pytest.mark.slow
def test_a_killed_driver_is_finished_by_resume(trained_model, archive, tmp_path):
    clf = load_classifier(trained_model / "model", precision="fp32")
    score_archive(clf, archive, tmp_path / "local.jsonl", chunk_size=2, progress=False)
    out = tmp_path / "ray.jsonl"
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(trained_model / "model"), str(archive), str(out)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = tmp_path / "ray.jsonl.parts" / "state.json"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if json.loads(state.read_text()).get("chunks_done", 0) >= 3:
                break
        except (OSError, ValueError):  # not written yet, or caught mid-rename
            pass
        time.sleep(0.05)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started
    driver.wait()
    assert not out.exists()
    summary = score_archive(
        clf, archive, out, chunk_size=2, progress=False, resume=True, engine="ray", ray_options=TWO_WORKERS
    )
    assert summary.resumed and summary.complete
    _same_output(tmp_path / "local.jsonl", out)
