"""The structure the next features need (issue 21): moved names still import (with a warning), the library
never imports the command line, functions stay short, and one format table serves every reader."""

from __future__ import annotations

import ast
import gzip
import json
import subprocess
import sys

import pytest

from tests.helpers import REPO, SAMPLE

LIBRARY = ("inference", "training", "src/aranews")


def _library_files():
    for folder in LIBRARY:
        yield from sorted((REPO / folder).rglob("*.py"))


@pytest.mark.parametrize(
    "statement,new_home",
    [
        ("import aranews.training.cli", "aranews.cli"),
        ("from aranews.training.selection import select_for_labelling", "aranews.inference.selection"),
        ("from aranews.training.labelstudio import import_export", "aranews.inference.labelstudio"),
        ("from aranews.inference.scoring import id_problem", "aranews.inference.records"),
    ],
)
def test_moved_names_still_import_with_a_deprecation_warning(statement, new_home):
    done = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", statement], capture_output=True, text=True
    )
    assert done.returncode != 0 and "DeprecationWarning" in done.stderr and new_home in done.stderr
    assert subprocess.run([sys.executable, "-W", "ignore", "-c", statement]).returncode == 0


def test_the_library_never_imports_the_command_line():
    for path in _library_files():
        if "cli" in path.relative_to(REPO).parts or path.name == "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n == "aranews.cli" or n.startswith("aranews.cli.") for n in names), path


def test_no_library_function_is_over_80_lines():
    """Argument-parser builders (``*_parser``, ``build_parser``) are tables of options and are exempt."""
    long = []
    for path in _library_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            function = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.endswith("_parser")
            if function and node.end_lineno - node.lineno + 1 > 80:
                long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}")
    assert long == []


def test_training_reads_every_format_the_scorer_reads(tmp_path):
    from aranews.inference.readers import ARCHIVE_FORMATS
    from aranews.training.config import DataConfig, TaskConfig
    from aranews.training.data import load_and_validate

    rows = [json.loads(line) for line in (SAMPLE / "train.jsonl").read_text(encoding="utf-8").splitlines()[:40]]
    dev = tmp_path / "dev.jsonl"
    dev.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[30:]), encoding="utf-8")
    zipped = tmp_path / "train.jsonl.gz"
    with gzip.open(zipped, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[:30])
    assert ".jsonl.gz" in ARCHIVE_FORMATS["jsonl"].suffixes
    train, evals, _ = load_and_validate(DataConfig(train=str(zipped), dev=str(dev)), [TaskConfig("topic")])
    assert len(train) == 30 and len(evals["dev"]) == 10


def test_parsing_the_command_line_imports_no_torch():
    code = (
        "import sys\nfrom aranews.cli import build_parser\n"
        "build_parser().parse_args(['score', '--model', 'm', 'a.jsonl', '--out', 'o.jsonl', '--precision', 'int8'])\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_runner_is_chosen_once_at_load(trained_model, int8_checked):
    from aranews.inference import load_classifier
    from aranews.inference.runners import OnnxInt8, TorchRunner

    fp32 = load_classifier(trained_model / "model", device="cpu", precision="fp32")
    assert isinstance(fp32._runner, TorchRunner) and fp32._runner.dtype is None
    int8 = load_classifier(trained_model / "model", device="cpu", precision="int8")
    assert isinstance(int8._runner, OnnxInt8) and int8._runner.release_encoder and int8._runner.session is None
    with pytest.raises(ValueError, match="embeddings come from the torch model"):
        int8.features_from_encoded([], ["topic"])


def test_benchmark_results_hold_no_machine_paths():
    import re

    machine = re.compile(r'"(/tmp|/work|/root|/home|/Users)/')
    offenders = [
        str(p.relative_to(REPO))
        for p in sorted((REPO / "benchmarks" / "results").rglob("*.json"))
        if machine.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_portable_paths_are_stable():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from results_io import portable

    for given in ("/tmp/data/ans_stance", "/work/shared/data/ans_stance/README.md", "../shared/data/ans_stance"):
        once = portable(f"--dataset {given} --encoder /tmp/e5-small-hf")
        assert once.startswith("--dataset ../shared/data/ans_stance") and once.endswith("--encoder $E5_SMALL")
        assert portable(once) == once
