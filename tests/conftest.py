"""Shared fixtures: a tiny BERT and WordPiece tokenizer built locally once per session, and small
labelled files. Nothing here touches the network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import SAMPLE, build_backbone, experiment, read_jsonl

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def sample_rows() -> dict[str, list[dict]]:
    return {name: read_jsonl(SAMPLE / f"{name}.jsonl") for name in ("train", "dev")}


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory, sample_rows) -> Path:
    return build_backbone(tmp_path_factory.mktemp("backbone"), [r["text"] for r in sample_rows["train"]])


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_backbone):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_backbone))


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory, tiny_backbone) -> Path:
    """A topic + stance model trained for two epochs on the sample corpus."""
    from aranews.training.config import config_from_dict
    from aranews.training.trainer import Trainer

    tmp = tmp_path_factory.mktemp("trained")
    result = Trainer(config_from_dict(experiment(tmp, tiny_backbone))).train()
    return result.output_dir


@pytest.fixture
def int8_checked(trained_model, tmp_path, monkeypatch) -> Path:
    """The trained model with a passing int8 agreement record on this machine (in a cache of the test's own),
    so that ``precision="int8"`` loads it: what ``aranews check-precision`` records on a model that passes."""
    from aranews.inference.agreement import ModeAgreement, PrecisionReport, record_agreement

    monkeypatch.setenv("ARANEWS_CACHE", str(tmp_path / "cache"))
    model = trained_model / "model"
    rows = [ModeAgreement("int8", task, 36, 1.0, 0, 0.01, 9.0, True) for task in ("topic", "stance")]
    record_agreement(PrecisionReport(str(model), 0.99, 5.0, rows))
    return model
