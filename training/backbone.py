"""A small, randomly initialised BERT with a WordPiece vocabulary trained on given texts.

Nothing here downloads anything: tests, CI and the demo use this backbone where no hub is reachable.
The result is an ordinary transformers directory (``config.json``, ``model.safetensors``,
``tokenizer.json``), so a config points ``model.encoder`` at it exactly as it would name
``aubmindlab/bert-base-arabertv02``. The texts are preprocessed with the same steps the classifier
will use, so the vocabulary matches what the model will see.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["build_tiny_backbone"]

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# AraBERT's placeholders for replaced URLs, e-mails and mentions stay whole.
PLACEHOLDER_TOKENS = ["[رابط]", "[بريد]", "[مستخدم]"]


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
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, BertTokenizer

    from inference.preprocessing import build_preprocessor

    if hidden_size % num_heads:
        raise ValueError(f"hidden_size={hidden_size} must be a multiple of num_heads={num_heads}")
    preprocess = build_preprocessor(preprocessing)
    cleaned = [preprocess(t) for t in texts]
    if not any(cleaned):
        raise ValueError("build_tiny_backbone: no text to learn a vocabulary from")
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=1, special_tokens=SPECIAL_TOKENS, show_progress=False
    )
    tokenizer.train_from_iterator(cleaned, trainer)
    vocab = tokenizer.get_vocab()
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
        len(hf_tokenizer), num_layers, hidden_size, sum(p.numel() for p in model.parameters()) / 1e6, output_dir,
    )
    return output_dir
