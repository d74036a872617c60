"""Turning articles into encoder windows: preprocessing, tokenisation and long-document handling.

The same :class:`ArticleEncoder` is used by training and by prediction, so a model always sees text
prepared the way it was trained. Three long-document strategies:

* ``head``: keep the first tokens that fit.
* ``head_tail``: keep ``head_tokens`` from the start and fill the rest from the end of the article
  (news leads and conclusions carry most of the signal).
* ``chunks``: overlapping windows of the whole article (``stride`` tokens shared between neighbours,
  at most ``max_chunks``); the model pools the windows' logits per article.

Every article reports how many tokens it had and how many were dropped, so truncation is never silent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .preprocessing import build_preprocessor

__all__ = ["LONG_DOCUMENT_STRATEGIES", "ArticleEncoder", "EncodedArticle", "collate_articles"]

LONG_DOCUMENT_STRATEGIES = ("head", "head_tail", "chunks")


@dataclass(frozen=True)
class EncodedArticle:
    """One article as encoder windows.

    Attributes:
        input_ids: one list of token ids per window, special tokens included.
        token_type_ids: segment ids, aligned with ``input_ids``.
        n_tokens: tokens of the article text (and pair text) before any truncation.
        dropped_tokens: how many of those tokens no window covers.
    """

    input_ids: tuple[tuple[int, ...], ...]
    token_type_ids: tuple[tuple[int, ...], ...]
    n_tokens: int
    dropped_tokens: int

    @property
    def truncated(self) -> bool:
        return self.dropped_tokens > 0


@dataclass(frozen=True)
class _Template:
    """Where a tokenizer puts its special tokens: ``prefix A middle B suffix`` (or ``prefix A suffix``)."""

    single_prefix: tuple[int, ...]
    single_suffix: tuple[int, ...]
    pair_prefix: tuple[int, ...]
    pair_middle: tuple[int, ...]
    pair_suffix: tuple[int, ...]
    # segment id of the first part (prefix + A + middle) and of the second (B + suffix)
    first_type: int
    second_type: int


def _find(haystack: list[int], needle: list[int], start: int = 0) -> int:
    for i in range(start, len(haystack) - len(needle) + 1):
        if haystack[i : i + len(needle)] == needle:
            return i
    raise ValueError("could not locate the text inside the tokenizer's output")


def _detect_template(tokenizer) -> _Template:
    """Learn the tokenizer's special-token layout by encoding two probe strings.

    transformers 5 tokenizers no longer expose ``build_inputs_with_special_tokens``; encoding a probe
    with and without special tokens recovers the same information for any encoder (BERT, XLM-R, ...).
    """
    a = tokenizer("a", add_special_tokens=False)["input_ids"]
    b = tokenizer("b", add_special_tokens=False)["input_ids"]
    single = tokenizer("a")["input_ids"]
    i = _find(single, a)
    pair_enc = tokenizer("a", "b", return_token_type_ids=True)
    pair = pair_enc["input_ids"]
    j = _find(pair, a)
    k = _find(pair, b, j + len(a))
    types = pair_enc.get("token_type_ids") or [0] * len(pair)
    return _Template(
        single_prefix=tuple(single[:i]),
        single_suffix=tuple(single[i + len(a) :]),
        pair_prefix=tuple(pair[:j]),
        pair_middle=tuple(pair[j + len(a) : k]),
        pair_suffix=tuple(pair[k + len(b) :]),
        first_type=types[j],
        second_type=types[k],
    )


class ArticleEncoder:
    """Preprocess, tokenise and window articles for a :class:`~inference.modeling.MultiTaskClassifier`.

    Args:
        tokenizer: a transformers tokenizer.
        preprocessing: names of the preprocessing steps (see :mod:`inference.preprocessing`).
        max_length: encoder window length, special tokens included.
        strategy: one of :data:`LONG_DOCUMENT_STRATEGIES`.
        head_tokens: for ``head_tail``, tokens kept from the start.
        stride: for ``chunks``, tokens shared by neighbouring windows.
        max_chunks: for ``chunks``, the most windows per article.
        pair_max_length: the most tokens kept of a pair text (target or claim).
    """

    def __init__(
        self,
        tokenizer,
        preprocessing: Sequence[str],
        max_length: int,
        strategy: str = "head_tail",
        head_tokens: int = 128,
        stride: int = 64,
        max_chunks: int = 8,
        pair_max_length: int = 64,
    ) -> None:
        if strategy not in LONG_DOCUMENT_STRATEGIES:
            raise ValueError(f"long_document.strategy={strategy!r}; expected one of {LONG_DOCUMENT_STRATEGIES}")
        self.tokenizer = tokenizer
        self.preprocess: Callable[[str], str] = build_preprocessor(preprocessing)
        self.max_length = max_length
        self.strategy = strategy
        self.head_tokens = head_tokens
        self.stride = stride
        self.max_chunks = max_chunks
        self.pair_max_length = pair_max_length
        self.template = _detect_template(tokenizer)
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self._single_budget = max_length - len(self.template.single_prefix) - len(self.template.single_suffix)
        pair_specials = len(self.template.pair_prefix) + len(self.template.pair_middle) + len(self.template.pair_suffix)
        self._pair_budget = max_length - pair_specials
        if self._single_budget < 8:
            raise ValueError(f"max_length={max_length} leaves too few tokens for text; raise it")
        if strategy == "chunks" and not 0 <= stride < self._single_budget // 2:
            raise ValueError(f"long_document.stride={stride} must be in [0, {self._single_budget // 2})")

    def _tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        if not texts:  # transformers 5 tokenizers fail on an empty batch
            return []
        cleaned = [self.preprocess(t) for t in texts]
        # No truncation here: every token is counted, and the strategy decides what is kept.
        return self.tokenizer(cleaned, add_special_tokens=False, verbose=False)["input_ids"]

    def _windows(self, ids: list[int], budget: int) -> tuple[list[list[int]], int]:
        """Cut one token sequence into the strategy's windows; return them and the dropped count."""
        if len(ids) <= budget:
            return [ids], 0
        if self.strategy == "head":
            return [ids[:budget]], len(ids) - budget
        if self.strategy == "head_tail":
            head = min(self.head_tokens, budget)
            tail = budget - head
            return [ids[:head] + (ids[-tail:] if tail else [])], len(ids) - budget
        step = budget - self.stride
        windows = [ids[start : start + budget] for start in range(0, len(ids) - self.stride, step)]
        kept = windows[: self.max_chunks]
        covered = min(len(ids), (len(kept) - 1) * step + budget)
        return kept, len(ids) - covered

    def encode(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> list[EncodedArticle]:
        """Encode articles (and, for target-conditioned tasks, their target or claim).

        Args:
            texts: article texts.
            pairs: the target or claim of each article, or ``None`` for text-only tasks.

        Returns:
            One :class:`EncodedArticle` per text, in order.
        """
        text_ids = self._tokenize(texts)
        t = self.template
        articles = []
        if pairs is None:
            for ids in text_ids:
                windows, dropped = self._windows(ids, self._single_budget)
                input_ids = tuple(t.single_prefix + tuple(w) + t.single_suffix for w in windows)
                types = tuple((t.first_type,) * len(w) for w in input_ids)
                articles.append(EncodedArticle(input_ids, types, len(ids), dropped))
            return articles
        if len(pairs) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(pairs)} pair texts")
        if self._pair_budget - self.pair_max_length < 8:
            raise ValueError(
                f"max_length={self.max_length} leaves too few tokens for text once special tokens and "
                f"pair_max_length={self.pair_max_length} are taken; raise max_length or lower pair_max_length"
            )
        pair_ids = self._tokenize(pairs)
        for ids, p_ids in zip(text_ids, pair_ids, strict=True):
            kept_pair = p_ids[: self.pair_max_length]
            windows, dropped = self._windows(ids, self._pair_budget - len(kept_pair))
            first = t.pair_prefix + tuple(kept_pair) + t.pair_middle
            input_ids = tuple(first + tuple(w) + t.pair_suffix for w in windows)
            types = tuple((t.first_type,) * len(first) + (t.second_type,) * (len(w) - len(first)) for w in input_ids)
            n = len(ids) + len(p_ids)
            articles.append(EncodedArticle(input_ids, types, n, dropped + len(p_ids) - len(kept_pair)))
        return articles


def collate_articles(articles: Sequence[EncodedArticle], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Pad a batch of articles' windows to the longest window (dynamic padding).

    Returns:
        ``input_ids``, ``attention_mask``, ``token_type_ids`` of shape ``(windows, length)`` and
        ``article_index`` of shape ``(windows,)``, mapping each window to its article's position.
    """
    rows = [(i, ids, types) for i, a in enumerate(articles) for ids, types in zip(a.input_ids, a.token_type_ids)]
    length = max(len(ids) for _, ids, _ in rows)
    input_ids = torch.full((len(rows), length), pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(rows), length), dtype=torch.long)
    token_types = torch.zeros((len(rows), length), dtype=torch.long)
    for r, (_, ids, types) in enumerate(rows):
        input_ids[r, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention[r, : len(ids)] = 1
        token_types[r, : len(ids)] = torch.tensor(types, dtype=torch.long)
    article_index = torch.tensor([i for i, _, _ in rows], dtype=torch.long)
    return {
        "input_ids": input_ids,
        "attention_mask": attention,
        "token_type_ids": token_types,
        "article_index": article_index,
    }
