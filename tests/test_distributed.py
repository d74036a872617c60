"""Data-parallel training under torchrun (2 CPU processes, gloo): it finishes, its sharded and gathered
dev figures cover the split exactly and equal a 1-process evaluation of the saved model, and a run that
loses a process resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from aranews.inference import load_classifier
from aranews.training.config import config_from_dict
from aranews.training.data import encode_split, load_and_validate
from aranews.training.evaluation import evaluate_split
from tests.helpers import experiment

TORCHRUN = Path(sys.executable).with_name("torchrun")
pytestmark = pytest.mark.skipif(not TORCHRUN.is_file(), reason="torchrun is not installed beside this Python")


def _launch(config: dict, tmp_path: Path, quiet: bool = True, **popen) -> subprocess.Popen:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    command = [str(TORCHRUN), "--nproc_per_node", "2", "-m", "aranews.cli", *(["-q"] if quiet else [])]
    command += ["train", str(path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def test_two_process_training_gathers_exact_dev_figures(tiny_backbone, tmp_path):
    config = experiment(tmp_path, tiny_backbone, training={"epochs": 2, "output_dir": str(tmp_path / "run")})
    process = _launch(config, tmp_path)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    assert output.count("best epoch") == 1  # one summary, from the main process
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert (metrics["processes"], metrics["distributed_type"]) == (2, "MULTI_CPU")

    experiment_config = config_from_dict(config)
    _, evals, _ = load_and_validate(experiment_config.data, experiment_config.tasks)
    clf = load_classifier(tmp_path / "run" / "model", precision="fp32")
    single = evaluate_split(clf, encode_split(clf.windower, evals["dev"], clf.tasks))
    for task, figures in single.items():
        assert metrics["dev"][task]["n"] == len(evals["dev"].ids)  # every row once, no padding duplicates
        for key in ("accuracy", "macro_f1", "micro_f1"):
            assert metrics["dev"][task][key] == pytest.approx(figures[key], abs=1e-9), (task, key)
    last = metrics["epochs"][-1]["dev"]
    assert all(last[t]["n"] == len(evals["dev"].ids) for t in last)


@pytest.mark.slow
def test_a_run_that_loses_a_process_resumes(tiny_backbone, tmp_path):
    out = tmp_path / "run"
    config = experiment(tmp_path, tiny_backbone, training={"epochs": 8, "output_dir": str(out), "resume": True})
    process = _launch(config, tmp_path, start_new_session=True)
    progress = out / "last_checkpoint" / "state.json"
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        try:
            if json.loads(progress.read_text(encoding="utf-8"))["progress"]["epoch"] >= 1:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    workers = subprocess.run(["pgrep", "-f", "-P", str(process.pid), "aranews.cli"], capture_output=True, text=True)
    pids = [int(p) for p in workers.stdout.split()]
    assert len(pids) == 2, (pids, process.poll())
    os.kill(pids[-1], signal.SIGKILL)  # one training process dies; torchrun stops the other
    process.communicate(timeout=120)
    assert process.returncode != 0
    done_before = json.loads(progress.read_text(encoding="utf-8"))["progress"]["epoch"]
    again = _launch(config, tmp_path, quiet=False)
    output, _ = again.communicate(timeout=300)
    assert again.returncode == 0, output
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert [e["epoch"] for e in metrics["epochs"]] == list(range(1, 9))
    assert f"after epoch {done_before}" in output  # every process resumed from the saved state
