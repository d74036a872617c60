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
from aranews.inference.config import ModelConfig, TaskSpec
from aranews.inference.modeling import MultiTaskClassifier
from aranews.training.config import config_from_dict
from aranews.training.trainer import Trainer
from tests.helpers import experiment, write_jsonl

pytestmark = pytest.mark.slow


def test_arabert_default_loads_by_name():
    from aranews.training.trainer import EncoderUnavailableError, check_encoder_source

    try:
        check_encoder_source("aubmindlab/bert-base-arabertv02")
    except EncoderUnavailableError as exc:  # no hub and no cache here
        pytest.skip(str(exc))
    model = MultiTaskClassifier.from_encoder(ModelConfig(), [TaskSpec("topic", ["a", "b"])])
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
        model={"max_length": 96, "pair_max_length": 16, "long_document": {"head_tokens": 32}},
        training={"epochs": 1, "batch_size": 8, "learning_rate": 5.0e-5, "baseline": False},
    )
    result = Trainer(config_from_dict(cfg)).train()
    clf = load_classifier(result.model_dir)
    template = clf.windower.template
    assert template.pair_middle and template.pair_prefix  # e.g. <s> A </s></s> B </s> for XLM-R
    texts = [r["text"] for r in rows["dev"][:4]]
    pairs = {"target": ["العلاقات الروسية التركية"] * 4}
    first = clf.predict_proba(texts, pairs=pairs)
    again = load_classifier(result.model_dir).predict_proba(texts, pairs=pairs)
    for task in first:
        assert (first[task] == again[task]).all()
    assert json.loads((result.output_dir / "metrics.json").read_text())["dev"]["stance"]["n"] == 36


def test_pretrained_encoder_export_equals_the_library(tmp_path, pretrained_dir):
    import numpy as np
    import torch
    from transformers import AutoTokenizer, pipeline

    from aranews.inference.classifier import NewsClassifier
    from aranews.inference.export import export_task

    torch.manual_seed(0)
    tasks = [TaskSpec("topic", ["a", "b", "c"]), TaskSpec("stance", ["favor", "against"], pair_column="target")]
    model = MultiTaskClassifier.from_encoder(
        ModelConfig(encoder=str(pretrained_dir), max_length=128, pair_max_length=16), tasks
    )
    with torch.no_grad():
        for head in model.heads.values():
            for p in head.parameters():
                p.normal_(0, 0.5)
    clf = NewsClassifier(model, AutoTokenizer.from_pretrained(str(pretrained_dir)))
    texts = ["وقعت أنقرة وموسكو اتفاقا لتوسيع إمدادات الغاز", "انتقدت موسكو بيع تركيا طائرات مسيرة إلى كييف"]
    targets = ["الغاز", "المسيرات"]
    for task in ("topic", "stance"):
        pipe = pipeline("text-classification", model=str(export_task(clf, task, tmp_path / task)), device="cpu")
        clean = clf.windower.preprocess
        if task == "stance":
            outputs = pipe([{"text": clean(t), "text_pair": clean(x)} for t, x in zip(targets, texts)], top_k=None)
            ours = clf.predict_proba(texts, pairs={"target": targets}, tasks=[task])[task]
        else:
            outputs = pipe([clean(t) for t in texts], top_k=None)
            ours = clf.predict_proba(texts, tasks=[task])[task]
        theirs = np.array(
            [[next(o["score"] for o in out if o["label"] == lb) for lb in clf.labels[task]] for out in outputs]
        )
        assert np.abs(theirs - ours).max() <= 1e-4
