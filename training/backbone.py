"""A small, randomly initialised BERT with a WordPiece vocabulary learned from given texts.

Nothing here downloads anything: tests, CI and the demo use this backbone where no hub is reachable.
The result is an ordinary transformers directory (``config.json``, ``model.safetensors``,
``tokenizer.json``), so a config points ``model.encoder`` at it exactly as it would name
``aubmindlab/bert-base-arabertv02``. The texts are preprocessed with the same steps the classifier
will use, so the vocabulary matches what the model will see.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["build_tiny_backbone"]

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# AraBERT's placeholders for replaced URLs, e-mails and mentions stay whole.
PLACEHOLDER_TOKENS = ["[رابط]", "[بريد]", "[مستخدم]"]


def learn_wordpiece_vocab(texts: Iterable[str], vocab_size: int) -> dict[str, int]:
    """A WordPiece vocabulary from piece frequencies, deterministic for the same texts.

    (``tokenizers``' WordPiece trainer breaks ties in hash order, so its vocabulary changes from run to
    run; a reproducible demo and reproducible tests need the same vocabulary every time.)

    Every character seen, as a word start and as a continuation (``##c``), is kept so that no word is
    ``[UNK]``; the remaining room goes to the most frequent whole words, word starts (2–5 characters)
    and word endings (``##`` + 2–6 characters), ties broken alphabetically.
    """
    from tokenizers.pre_tokenizers import BertPreTokenizer

    pre = BertPreTokenizer()
    words: Counter[str] = Counter()
    for text in texts:
        words.update(w for w, _ in pre.pre_tokenize_str(text))
    chars = sorted({c for w in words for c in w})
    base = SPECIAL_TOKENS + chars + [f"##{c}" for c in chars]
    pieces: Counter[str] = Counter()
    for word, count in words.items():
        pieces[word] += count
        for n in range(2, min(5, len(word) - 1) + 1):
            pieces[word[:n]] += count
        for n in range(2, min(6, len(word) - 1) + 1):
            pieces[f"##{word[-n:]}"] += count
    room = max(0, vocab_size - len(base))
    chosen = [p for p, _ in sorted(pieces.items(), key=lambda kv: (-kv[1], kv[0])) if p not in set(base)][:room]
    return {token: i for i, token in enumerate(base + chosen)}


def build_tiny_backbone(
    texts: Iterable[str],
    output_dir: str | Path,
    preprocessing: Sequence[str] = ("strip_boilerplate", "arabert_v02"),
    vocab_size: int = 4000,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    intermediate_size: int = 128,
    max_position_embeddings: int = 512,
    seed: int = 0,
) -> Path:
    """Train a WordPiece tokenizer on ``texts`` and save it beside a random BERT of the given size.

    Args:
        texts: raw texts to learn the vocabulary from.
        output_dir: where to write the transformers directory.
        preprocessing: steps applied to ``texts`` before learning the vocabulary.
        vocab_size: largest vocabulary (fewer pieces when the texts are small).
        hidden_size, num_layers, num_heads, intermediate_size, max_position_embeddings: BERT sizes.
        seed: weight initialisation seed.

    Returns:
        ``output_dir``.
    """
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    from aranews.inference.preprocessing import build_preprocessor

    if hidden_size % num_heads:
        raise ValueError(f"hidden_size={hidden_size} must be a multiple of num_heads={num_heads}")
    preprocess = build_preprocessor(preprocessing)
    cleaned = [preprocess(t) for t in texts]
    if not any(cleaned):
        raise ValueError("build_tiny_backbone: no text to learn a vocabulary from")
    vocab = learn_wordpiece_vocab(cleaned, vocab_size)
    hf_tokenizer = BertTokenizer(
        vocab=vocab, do_lower_case=False, strip_accents=False, model_max_length=max_position_embeddings
    )
    hf_tokenizer.add_tokens(PLACEHOLDER_TOKENS)

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(hf_tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings,
        pad_token_id=hf_tokenizer.pad_token_id,
    )
    model = BertModel(config, add_pooling_layer=False)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(output_dir))
    hf_tokenizer.save_pretrained(str(output_dir))
    logger.info(
        "tiny backbone: %d-piece vocabulary, %d layers x %d hidden, %.2fM parameters -> %s",
        len(hf_tokenizer),
        num_layers,
        hidden_size,
        sum(p.numel() for p in model.parameters()) / 1e6,
        output_dir,
    )
    return output_dir
