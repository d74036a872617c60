"""One import name: the library imports as ``aranews.*`` from anywhere, whatever the working directory
holds; a built wheel works outside the checkout; training features name their extra when it is missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

PY = sys.executable


def _run(
    code_or_args: list[str], cwd: Path, env: dict | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, *code_or_args], cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )


def test_namespace_imports_beside_decoy_folders(tmp_path):
    (tmp_path / "training.py").write_text("raise ImportError('the decoy training.py was imported')\n")
    (tmp_path / "inference").mkdir()
    (tmp_path / "inference" / "__init__.py").write_text("raise ImportError('the decoy inference/ was imported')\n")
    code = (
        "import aranews, aranews.inference, aranews.training, aranews.cli;"
        "from aranews import load_classifier, NewsClassifier, export_task;"
        "from aranews.training import Trainer;"
        "import sys; print(aranews.__version__);"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('inference', 'training')))"
    )
    done = _run(["-c", code], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    version, bare = done.stdout.splitlines()
    assert version == "0.1.0" and bare == "[]"  # nothing loaded under a bare name


def test_version_and_help_need_no_torch(tmp_path):
    code = "import sys; from aranews.cli import main; main(['--version'])"
    done = _run(["-c", code], cwd=tmp_path)
    assert done.stdout.strip() == "aranews-classifier 0.1.0"
    done = _run(["-c", "import aranews, sys; print('torch' in sys.modules)"], cwd=tmp_path)
    assert done.stdout.strip() == "False"  # the public names load lazily


def test_missing_training_extra_is_named(tmp_path, trained_model):
    block = "import sys; [sys.modules.__setitem__(m, None) for m in ('datasets', 'accelerate', 'evaluate', 'sklearn', 'matplotlib')];"
    train = block + "from aranews.cli import main; sys.exit(main(['train', 'x.yaml']))"
    done = _run(["-c", train], cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert 'pip install "aranews-classifier[train]"' in done.stderr and "datasets" in done.stderr
    # inference needs only the base install
    predict = (
        block
        + f"from aranews.cli import main; sys.exit(main(['-q', 'predict', '--model', {str(trained_model / 'model')!r}, 'نص الخبر']))"
    )
    done = _run(["-c", predict], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)) == {"topic", "stance"}


def test_wheel_runs_the_demo_in_an_empty_folder(tmp_path):
    wheels = tmp_path / "wheels"
    built = _run(
        ["-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(REPO)], cwd=tmp_path
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("aranews_classifier-*.whl")
    site = tmp_path / "site"
    installed = _run(["-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)], cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [
        "-m",
        "aranews.cli",
        "-q",
        "demo",
        "--backbone",
        "tiny",
        "--out",
        "demo",
        "--set",
        "training.epochs=1",
        "--set",
        "training.baseline=false",
    ]
    done = _run(args, cwd=empty, env={"PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr[-3000:]
    model = empty / "demo" / "run" / "model"
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= {p.name for p in model.iterdir()}
    assert "aranews/sample_data/train.jsonl" in done.stdout.replace(os.sep, "/")  # read from the installed package
    assert str(REPO) not in done.stdout
    card = (empty / "demo" / "model_card.md").read_text(encoding="utf-8")
    # the run's own resolved config, not the source tree's (a path given on the command line: from where it ran)
    assert f"fine-tuned from `{empty.resolve() / 'demo' / 'tiny-backbone'}`" in card


@pytest.mark.parametrize("flags", [["-q", "predict"], ["predict", "-q"], ["predict", "-v"]])
def test_verbosity_flags_work_before_and_after_the_subcommand(flags, trained_model, capsys):
    from aranews.cli import main

    args = [*flags, "--model", str(trained_model / "model"), "نص الخبر"]
    assert main(args) == 0
    assert "topic" in capsys.readouterr().out


def test_every_option_has_help():
    from aranews.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    missing = [
        f"{name} {action.option_strings or action.dest}"
        for name, p in sub.choices.items()
        for action in p._actions
        if not action.help and action.dest != "help"
    ]
    assert missing == []
