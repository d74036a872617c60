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
