"""A zero-shot start (issue 23): a model from label descriptions alone, used like a trained one; a missing
description or an encoder whose conventions are unknown is a one-line error naming what to give."""

from __future__ import annotations

import json

import pytest
import yaml

from aranews.cli import main
from aranews.inference import load_classifier
from aranews.inference.schema import ConfigError
from aranews.training.zero_shot import encoder_convention

DESCRIPTIONS = {
    "security": "تعاون أمني واستخباراتي ومكافحة الإرهاب بين البلدين",
    "economy_energy": "الغاز والنفط وخطوط الأنابيب والتجارة والسياحة",
    "military": "صفقات السلاح والطائرات المسيرة والمناورات العسكرية",
}


def _config(tmp_path, descriptions=DESCRIPTIONS, labels=None):
    path = tmp_path / "zero.yaml"
    task = {"name": "topic", "labels": labels or list(DESCRIPTIONS), "descriptions": descriptions}
    path.write_text(
        yaml.safe_dump({"tasks": [task], "model": {"max_length": 64}}, allow_unicode=True), encoding="utf-8"
    )
    return path


def _refused(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1
    return err


def test_a_zero_shot_model_scores_by_description_and_is_used_like_a_trained_one(tmp_path, tiny_backbone, capsys):
    out = tmp_path / "zero"
    argv = ["zero-shot", "--config", str(_config(tmp_path)), "--encoder", str(tiny_backbone), "--out", str(out)]
    assert main([*argv, "--pooling", "mean", "--prefix", ""]) == 0
    clf = load_classifier(out, device="cpu")
    assert clf.labels["topic"] == list(DESCRIPTIONS)
    # an article that says what a description says is closest to it, whatever the (random) encoder
    predictions = clf.predict(list(DESCRIPTIONS.values()))
    assert [p["topic"]["label"] for p in predictions] == list(DESCRIPTIONS)
    saved = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert saved["zero_shot"]["convention"]["pooling"] == "mean" and saved["tasks"][0]["descriptions"] == DESCRIPTIONS
    # the scorer takes it like any model
    archive = tmp_path / "archive.jsonl"
    archive.write_text("".join(json.dumps({"id": str(i), "text": t}, ensure_ascii=False) + "\n"
                               for i, t in enumerate(DESCRIPTIONS.values())), encoding="utf-8")  # fmt: skip
    assert main(["score", "--model", str(out), str(archive), "--out", str(tmp_path / "s.jsonl")]) == 0
    assert len((tmp_path / "s.jsonl").read_text(encoding="utf-8").splitlines()) == 3
    capsys.readouterr()
    # an existing --out is kept unless --overwrite
    assert "exists; give another folder or --overwrite" in _refused(
        [*argv, "--pooling", "mean", "--prefix", ""], capsys
    )


def test_a_label_without_a_description_is_named(tmp_path, tiny_backbone, capsys):
    partial = {k: v for k, v in DESCRIPTIONS.items() if k != "military"}
    argv = ["zero-shot", "--config", str(_config(tmp_path, partial)), "--encoder", str(tiny_backbone)]
    err = _refused([*argv, "--out", str(tmp_path / "z"), "--pooling", "mean", "--prefix", ""], capsys)
    assert "tasks[0] (topic).descriptions.military" in err and "a description of the label" in err
    assert not (tmp_path / "z").exists()


def test_an_encoder_whose_conventions_are_unknown_asks_for_them(tmp_path, tiny_backbone, capsys):
    argv = [
        "zero-shot",
        "--config",
        str(_config(tmp_path)),
        "--encoder",
        str(tiny_backbone),
        "--out",
        str(tmp_path / "z"),
    ]
    err = _refused(argv, capsys)
    assert "--pooling mean|cls" in err and "--prefix" in err
    # a sentence-transformers folder says them itself; an E5 model is known by its name
    st = tmp_path / "st-model"
    (st / "1_Pooling").mkdir(parents=True)
    (st / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}), encoding="utf-8")
    (st / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": {"query": "query: ", "document": "passage: "}}), encoding="utf-8"
    )
    found = encoder_convention(str(st))
    assert (found.pooling, found.text_prefix, found.description_prefix) == ("mean", "query: ", "passage: ")
    assert encoder_convention("intfloat/multilingual-e5-small").text_prefix == "query: "
    with pytest.raises(ConfigError, match="--pooling mean"):
        encoder_convention("aubmindlab/bert-base-arabertv02")


def test_a_zero_shot_start_of_a_claim_read_apart_is_refused_by_name(tmp_path, tiny_backbone, capsys):
    path = tmp_path / "zero.yaml"
    task = {"name": "topic", "labels": list(DESCRIPTIONS), "descriptions": DESCRIPTIONS, "pair_column": "claim"}
    model = {"max_length": 64, "pair_max_length": 16, "pair_encoding": "bi"}
    path.write_text(yaml.safe_dump({"tasks": [task], "model": model}, allow_unicode=True), encoding="utf-8")
    argv = ["zero-shot", "--config", str(path), "--encoder", str(tiny_backbone), "--out", str(tmp_path / "z")]
    err = _refused([*argv, "--pooling", "mean", "--prefix", ""], capsys)
    assert "model.pair_encoding" in err and "'bi'" in err and "['topic']" in err
    assert not (tmp_path / "z").exists()
