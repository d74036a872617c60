"""Helpers shared by the tests (paths, JSON Lines files, a small experiment config)."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def experiment(tmp_path: Path, backbone: Path, **sections) -> dict:
    """A small experiment config as a plain mapping, sections overridable."""
    base = {
        "data": {"train": str(SAMPLE / "train.jsonl"), "dev": str(SAMPLE / "dev.jsonl")},
        "tasks": [{"name": "topic"}, {"name": "stance"}],
        "model": {"encoder": str(backbone), "max_length": 64, "long_document": {"head_tokens": 16, "stride": 8}},
        "training": {
            "output_dir": str(tmp_path / "run"),
            "epochs": 2,
            "batch_size": 16,
            "learning_rate": 1.0e-3,
            "progress": False,
            "resume": False,
            "early_stopping_patience": 0,
            "recipe": "standard",  # what most tests exercise; the few-shot recipe has its own tests
        },
    }
    for key, value in sections.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) else value
    return base


def build_backbone(out: Path, texts: list[str], architecture: str = "bert") -> Path:
    """The tests' tiny random encoder: BERT (WordPiece) or XLM-R (unigram), 1 layer, hidden 32."""
    from aranews.training.backbone import build_tiny_backbone

    return build_tiny_backbone(
        texts,
        out,
        vocab_size=600,
        hidden_size=32,
        num_layers=1,
        num_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        architecture=architecture,
    )
