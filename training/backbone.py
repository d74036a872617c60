"""A small, randomly initialised encoder with a vocabulary learned from given texts: a BERT with a
WordPiece vocabulary, or an XLM-R with a unigram (SentencePiece-style) vocabulary.

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
XLMR_SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>"]
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


def learn_unigram_vocab(texts: Iterable[str], vocab_size: int) -> list[tuple[str, float]]:
    """A unigram vocabulary (``(piece, log-probability)``, SentencePiece style: ``▁`` starts a word) for an
    XLM-R tokenizer, deterministic for the same texts: every character (alone and word-initial), then the
    most frequent whole words, ties broken alphabetically."""
    import math

    words: Counter[str] = Counter(w for text in texts for w in text.split())
    chars: Counter[str] = Counter()
    for word, count in words.items():
        for c in word:
            chars[c] += count
    total = sum(words.values()) + sum(chars.values()) or 1
    base = [(c, chars[c]) for c in sorted(chars)] + [(f"\u2581{c}", chars[c]) for c in sorted(chars)]
    room = max(0, vocab_size - len(base) - len(XLMR_SPECIAL_TOKENS) - 1)
    frequent = sorted(((f"\u2581{w}", n) for w, n in words.items() if len(w) > 1), key=lambda kv: (-kv[1], kv[0]))
    pieces = [("▁", total), *base, *frequent[:room]]
    return [(t, 0.0) for t in XLMR_SPECIAL_TOKENS] + [(p, math.log(n / total)) for p, n in pieces] + [("<mask>", 0.0)]


def _tiny_xlmr(cleaned: list[str], vocab_size: int, max_position_embeddings: int) -> tuple[object, object]:
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizer

    tokenizer = XLMRobertaTokenizer(vocab=learn_unigram_vocab(cleaned, vocab_size))
    tokenizer.add_tokens(PLACEHOLDER_TOKENS)
    tokenizer.model_max_length = max_position_embeddings
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=max_position_embeddings + 2,  # positions start after padding_idx
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        type_vocab_size=1,
    )
    return tokenizer, (config, XLMRobertaModel)


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
    architecture: str = "bert",
) -> Path:
    """Learn a vocabulary from ``texts`` and save its tokenizer beside a random encoder of the given size.

    Args:
        texts: raw texts to learn the vocabulary from.
        output_dir: where to write the transformers directory.
        preprocessing: steps applied to ``texts`` before learning the vocabulary.
        vocab_size: largest vocabulary (fewer pieces when the texts are small).
        hidden_size, num_layers, num_heads, intermediate_size, max_position_embeddings: BERT sizes.
        seed: weight initialisation seed.
        architecture: ``bert`` (WordPiece, [CLS] A [SEP]) or ``xlm-roberta`` (unigram, <s> A </s>).

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
    sizes = {
        "hidden_size": hidden_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": num_heads,
        "intermediate_size": intermediate_size,
    }
    if architecture == "xlm-roberta":
        hf_tokenizer, (config, model_class) = _tiny_xlmr(cleaned, vocab_size, max_position_embeddings)
        config.update(sizes)
    elif architecture == "bert":
        vocab = learn_wordpiece_vocab(cleaned, vocab_size)
        hf_tokenizer = BertTokenizer(
            vocab=vocab, do_lower_case=False, strip_accents=False, model_max_length=max_position_embeddings
        )
        hf_tokenizer.add_tokens(PLACEHOLDER_TOKENS)
        config = BertConfig(
            vocab_size=len(hf_tokenizer),
            max_position_embeddings=max_position_embeddings,
            pad_token_id=hf_tokenizer.pad_token_id,
            **sizes,
        )
        model_class = BertModel
    else:
        raise ValueError(f"architecture={architecture!r}; expected 'bert' or 'xlm-roberta'")
    torch.manual_seed(seed)
    model = model_class(config, add_pooling_layer=False)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(output_dir))
    hf_tokenizer.save_pretrained(str(output_dir))
    logger.info(
        "tiny %s backbone: %d-piece vocabulary, %d layers x %d hidden, %.2fM parameters -> %s",
        architecture,
        len(hf_tokenizer),
        num_layers,
        hidden_size,
        sum(p.numel() for p in model.parameters()) / 1e6,
        output_dir,
    )
    return output_dir
