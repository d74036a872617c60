"""The CUDA path (issue 24), run where a GPU is at hand (``bash benchmarks/gpu_check.sh``; ``-m gpu``): half
precision scores the labels fp32 scores, and training runs an epoch on the device. Without CUDA they skip."""

from __future__ import annotations

import pytest
import torch

from aranews.inference import load_classifier
from aranews.inference.agreement import check_precision
from aranews.training.config import config_from_dict
from aranews.training.trainer import Trainer
from tests.helpers import experiment

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine"),
]


@pytest.mark.parametrize("mode", ["bf16", "fp16"])
def test_half_precision_on_cuda_gives_the_fp32_labels(trained_model, sample_rows, mode):
    texts = [r["text"] for r in sample_rows["dev"]]
    report = check_precision(trained_model / "model", texts, modes=[mode], device="cuda", min_agreement=0.99)
    assert not report.unavailable, report.unavailable
    assert all(row.agreement >= 0.99 for row in report.rows), report.rows
    clf = load_classifier(trained_model / "model", device="cuda", precision=mode)
    assert clf.device.type == "cuda" and len(clf.predict(texts[:5])) == 5


def test_one_epoch_of_training_on_cuda(tmp_path, tiny_backbone):
    config = experiment(tmp_path, tiny_backbone, training={"epochs": 1, "device": "cuda", "mixed_precision": "auto"})
    metrics = Trainer(config_from_dict(config)).train().metrics
    assert metrics["device"].startswith("cuda") and len(metrics["epochs"]) == 1
    assert metrics["dev"]["topic"]["n"] > 0
