"""Checks that need real pretrained weights: excluded from the default run (``pytest -m slow``).

* The AraBERT default loads by name when the Hugging Face hub (or its cache) is reachable.
* A real pretrained encoder with a different tokenizer family (XLM-R sentencepiece, e.g.
  multilingual-e5-small built by ``../shared/tools/pretrained_backbone/build.sh``) trains, saves and
  reloads, pair inputs included. Point ``ARANEWS_PRETRAINED_DIR`` at it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from aranews.inference import load_classifier
from aranews.inference.modeling import MultiTaskClassifier, TaskSpec
from aranews.training.config import config_from_dict
from aranews.training.trainer import Trainer
from tests.helpers import experiment, write_jsonl

pytestmark = pytest.mark.slow


def test_arabert_default_loads_by_name():
    try:
        model = MultiTaskClassifier.from_encoder("aubmindlab/bert-base-arabertv02", [TaskSpec("topic", ["a", "b"])])
    except OSError as exc:  # no hub and no cache here
        pytest.skip(f"aubmindlab/bert-base-arabertv02 not reachable: {type(exc).__name__}")
    assert model.config.base_model == "aubmindlab/bert-base-arabertv02"
    assert model.encoder.config.hidden_size == 768


@pytest.fixture(scope="module")
def pretrained_dir() -> Path:
    path = os.environ.get("ARANEWS_PRETRAINED_DIR")
    if not path or not (Path(path) / "config.json").is_file():
        pytest.skip("set ARANEWS_PRETRAINED_DIR to a local pretrained encoder directory")
    return Path(path)


def test_pretrained_encoder_with_pair_task_trains_and_reloads(tmp_path, pretrained_dir, sample_rows):
    rows = {name: [{**r, "target": "العلاقات الروسية التركية"} for r in rs[:48]] for name, rs in sample_rows.items()}
    train = write_jsonl(tmp_path / "train.jsonl", rows["train"])
    dev = write_jsonl(tmp_path / "dev.jsonl", rows["dev"])
    cfg = experiment(
        tmp_path,
        pretrained_dir,
        data={"train": str(train), "dev": str(dev)},
        tasks=[{"name": "topic"}, {"name": "stance", "pair_column": "target"}],
        model={"max_length": 96, "pair_max_length": 16, "head_tokens": 32},
        training={"epochs": 1, "batch_size": 8, "learning_rate": 5.0e-5, "baseline": False},
    )
    result = Trainer(config_from_dict(cfg)).train()
    clf = load_classifier(result.model_dir)
    template = clf.encoder.template
    assert template.pair_middle and template.pair_prefix  # e.g. <s> A </s></s> B </s> for XLM-R
    texts = [r["text"] for r in rows["dev"][:4]]
    pairs = {"target": ["العلاقات الروسية التركية"] * 4}
    first = clf.predict_proba(texts, pairs=pairs)
    again = load_classifier(result.model_dir).predict_proba(texts, pairs=pairs)
    for task in first:
        assert (first[task] == again[task]).all()
    assert json.loads((result.output_dir / "metrics.json").read_text())["dev"]["stance"]["n"] == 36
