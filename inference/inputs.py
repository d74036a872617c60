"""The one path from a row to the model's input: compose, clean, tokenise, cut into windows.

* :func:`compose_text` puts the title (when present) before the text, as the checkpoint's
  ``model.title`` says; training, evaluation, ``predict``, ``inspect`` and ``score`` all call it.
* :func:`input_problem` is the one policy for texts that cannot be classified: empty (also after
  cleaning) and, unless asked to score them, texts without an Arabic letter.
* :class:`ArticleWindower` cleans and tokenises the composed text and cuts it into encoder windows.

The same windower is used by training and by prediction, so a model always sees text prepared the
way it was trained. Three long-document strategies:

* ``head``: keep the first tokens that fit.
* ``head_tail``: keep ``head_tokens`` from the start and fill the rest from the end of the article
  (news leads and conclusions carry most of the signal).
* ``chunks``: overlapping windows of the whole article (``stride`` tokens shared between neighbours,
  at most ``max_chunks``); the model pools the windows' logits per article.

A target or claim goes into every window beside the article text (``pair_encoding: cross``), or, with
``pair_encoding: bi`` or ``similarity``, into a window of its own, the article's first: the article's windows then hold
article text alone, and the model compares each of them with it.

Every article reports how many tokens it had and how many were dropped, so truncation is never silent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from aranews.inference.config import MAX_SPECIAL_TOKENS, ModelConfig
from aranews.inference.preprocessing import PREPROCESSORS, build_preprocessor, has_arabic

__all__ = [
    "LONG_DOCUMENT_STRATEGIES",
    "SKIP_REASONS",
    "ArticleWindower",
    "EncodedArticle",
    "collate_articles",
    "compose_text",
    "input_problem",
    "mean_per_article",
]

LONG_DOCUMENT_STRATEGIES = ("head", "head_tail", "chunks")
# Why an article is not classified (the scorer's error reasons; ``predict`` marks them ``skipped``).
SKIP_REASONS = {
    "empty_text": "the text is empty, or nothing is left of it after cleaning",
    "no_arabic_text": "the text contains no Arabic letter",
}


def compose_text(text: str, title: Any = None, policy: str = "prepend") -> str:
    """The article as the model reads it, before cleaning.

    Args:
        text: the article body.
        title: its title; used when it is a non-blank string and ``policy`` is ``prepend``.
        policy: the checkpoint's ``model.title``: ``prepend`` (title, newline, text) or ``ignore``.
    """
    if policy == "prepend" and isinstance(title, str) and title.strip():
        return f"{title.strip()}\n{text}"
    return text


def input_problem(text: str, score_non_arabic: bool = False) -> str | None:
    """Why a composed text cannot be classified (a key of :data:`SKIP_REASONS`), or ``None``.

    Text that is empty only after cleaning is found later, by the windower (``text_tokens == 0``).
    """
    if not text.strip():
        return "empty_text"
    if not score_non_arabic and not has_arabic(text):
        return "no_arabic_text"
    return None


@dataclass(frozen=True)
class EncodedArticle:
    """One article as encoder windows.

    Attributes:
        input_ids: one list of token ids per window, special tokens included.
        token_type_ids: segment ids, aligned with ``input_ids``.
        n_tokens: tokens of the article text (and pair text) before any truncation.
        dropped_tokens: how many of those tokens no window covers.
        text_tokens: tokens of the article text alone (0: nothing left after cleaning).
        boilerplate_chars: characters the ``strip_boilerplate`` step removed (page furniture).
    """

    input_ids: tuple[tuple[int, ...], ...]
    token_type_ids: tuple[tuple[int, ...], ...]
    n_tokens: int
    dropped_tokens: int
    text_tokens: int = 0
    boilerplate_chars: int = 0

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


class ArticleWindower:
    """Clean, tokenise and window articles for a :class:`~aranews.inference.modeling.MultiTaskClassifier`.

    Build it with :meth:`from_config` from the checkpoint's :class:`~aranews.inference.config.ModelConfig`,
    whose window sizes were checked (:func:`~aranews.inference.config.window_problems`) for any
    supported tokenizer.

    Args:
        tokenizer: a transformers tokenizer.
        preprocessing: names of the cleaning steps (see :mod:`aranews.inference.preprocessing`).
        max_length: encoder window length, special tokens included.
        strategy: one of :data:`LONG_DOCUMENT_STRATEGIES`.
        head_tokens: for ``head_tail``, tokens kept from the start (``None``: a quarter of the window).
        stride: for ``chunks``, tokens shared by neighbouring windows.
        max_chunks: for ``chunks``, the most windows per article.
        pair_max_length: the most tokens kept of a pair text (target or claim).
        input_prefix: text whose tokens start every window, after its leading special tokens (``query: ``).
        pair_encoding: ``cross`` (the pair text in every window, before the article's) or ``bi`` / ``similarity``
            (the pair text alone in the article's first window).
    """

    def __init__(
        self,
        tokenizer: Any,
        preprocessing: Sequence[str],
        max_length: int,
        strategy: str = "head_tail",
        head_tokens: int | None = None,
        stride: int = 64,
        max_chunks: int = 8,
        pair_max_length: int = 64,
        input_prefix: str = "",
        pair_encoding: str = "cross",
    ) -> None:
        if strategy not in LONG_DOCUMENT_STRATEGIES:
            raise ValueError(f"long_document.strategy={strategy!r}; expected one of {LONG_DOCUMENT_STRATEGIES}")
        self.tokenizer = tokenizer
        self.preprocessing = list(preprocessing)
        build_preprocessor(preprocessing)  # raises ValueError naming an unknown step
        self._steps = [(name, PREPROCESSORS[name]) for name in self.preprocessing]
        self.max_length = max_length
        self.strategy = strategy
        self.head_tokens = head_tokens
        self.stride = stride
        self.max_chunks = max_chunks
        self.pair_max_length = pair_max_length
        self.pair_encoding = pair_encoding
        self.template = _detect_template(tokenizer)
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        single = len(self.template.single_prefix) + len(self.template.single_suffix)
        pair = len(self.template.pair_prefix) + len(self.template.pair_middle) + len(self.template.pair_suffix)
        if single > MAX_SPECIAL_TOKENS["single"] or pair > MAX_SPECIAL_TOKENS["pair"]:
            raise ValueError(
                f"{type(tokenizer).__name__} adds {single} special tokens to a text and {pair} to a pair; "
                f"the window checks allow at most {MAX_SPECIAL_TOKENS['single']} and {MAX_SPECIAL_TOKENS['pair']} "
                "(BERT- and XLM-R-style tokenizers)"
            )
        self.input_prefix = input_prefix
        prefix = tuple(tokenizer(input_prefix, add_special_tokens=False)["input_ids"]) if input_prefix else ()
        if prefix:  # the prefix belongs to the window's start, like the special tokens before it
            t = self.template
            self.template = dataclasses.replace(
                t, single_prefix=t.single_prefix + prefix, pair_prefix=t.pair_prefix + prefix
            )
        self._single_budget = max_length - single - len(prefix)
        self._pair_budget = max_length - pair - len(prefix)
        if self._single_budget < 8:
            raise ValueError(f"input_prefix {input_prefix!r} leaves {self._single_budget} tokens of {max_length}")

    @classmethod
    def from_config(cls, model: ModelConfig, tokenizer: Any) -> ArticleWindower:
        """The windower a model's settings prescribe (shared by training, evaluation and prediction)."""
        ld = model.long_document
        return cls(
            tokenizer,
            preprocessing=model.preprocessing,
            max_length=model.max_length,
            strategy=ld.strategy,
            head_tokens=ld.head_tokens,
            stride=ld.stride,
            max_chunks=ld.max_chunks,
            pair_max_length=model.pair_max_length,
            input_prefix=model.input_prefix,
            pair_encoding=model.pair_encoding,
        )

    def preprocess(self, text: str) -> str:
        """The text after the checkpoint's cleaning steps."""
        return self.clean(text)[0]

    def clean(self, text: str) -> tuple[str, int]:
        """The text after the checkpoint's cleaning steps, and how many characters ``strip_boilerplate`` removed."""
        removed = 0
        for name, step in self._steps:
            cleaned = step(text)
            if name == "strip_boilerplate":
                removed = len(text) - len(cleaned)
            text = cleaned
        return text, removed

    def _tokenize(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        if not texts:  # transformers 5 tokenizers fail on an empty batch
            return [], []
        cleaned, removed = zip(*(self.clean(t) for t in texts), strict=True)
        # No truncation here: every token is counted, and the strategy decides what is kept.
        return self.tokenizer(list(cleaned), add_special_tokens=False, verbose=False)["input_ids"], list(removed)

    def _windows(self, ids: list[int], budget: int) -> tuple[list[list[int]], int]:
        """Cut one token sequence into the strategy's windows; return them and the dropped count."""
        if len(ids) <= budget:
            return [ids], 0
        if self.strategy == "head":
            return [ids[:budget]], len(ids) - budget
        if self.strategy == "head_tail":
            head = min(budget // 4 if self.head_tokens is None else self.head_tokens, budget)
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
        text_ids, removed = self._tokenize(texts)
        t = self.template
        articles = []
        if pairs is None:
            for ids, chars in zip(text_ids, removed, strict=True):
                windows, dropped = self._windows(ids, self._single_budget)
                input_ids = tuple(t.single_prefix + tuple(w) + t.single_suffix for w in windows)
                types = tuple((t.first_type,) * len(w) for w in input_ids)
                articles.append(EncodedArticle(input_ids, types, len(ids), dropped, len(ids), chars))
            return articles
        if len(pairs) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(pairs)} pair texts")
        pair_ids, _ = self._tokenize(pairs)
        if self.pair_encoding != "cross":  # bi, similarity
            return self._encode_apart(text_ids, pair_ids, removed)
        for ids, p_ids, chars in zip(text_ids, pair_ids, removed, strict=True):
            kept_pair = p_ids[: self.pair_max_length]
            windows, dropped = self._windows(ids, self._pair_budget - len(kept_pair))
            first = t.pair_prefix + tuple(kept_pair) + t.pair_middle
            input_ids = tuple(first + tuple(w) + t.pair_suffix for w in windows)
            types = tuple((t.first_type,) * len(first) + (t.second_type,) * (len(w) - len(first)) for w in input_ids)
            n = len(ids) + len(p_ids)
            articles.append(EncodedArticle(input_ids, types, n, dropped + len(p_ids) - len(kept_pair), len(ids), chars))
        return articles

    def _encode_apart(
        self, text_ids: list[list[int]], pair_ids: list[list[int]], removed: list[int]
    ) -> list[EncodedArticle]:
        """``pair_encoding: bi``: the pair text (at most ``pair_max_length`` tokens) alone in the first window,
        then the article's windows, each as a text of its own."""
        t = self.template
        articles = []
        for ids, p_ids, chars in zip(text_ids, pair_ids, removed, strict=True):
            kept_pair = p_ids[: min(self.pair_max_length, self._single_budget)]
            windows, dropped = self._windows(ids, self._single_budget)
            input_ids = tuple(t.single_prefix + tuple(w) + t.single_suffix for w in [kept_pair, *windows])
            types = tuple((t.first_type,) * len(w) for w in input_ids)
            n = len(ids) + len(p_ids)
            articles.append(EncodedArticle(input_ids, types, n, dropped + len(p_ids) - len(kept_pair), len(ids), chars))
        return articles


def mean_per_article(values: torch.Tensor, article_index: torch.Tensor, n_articles: int) -> torch.Tensor:
    """The mean of each article's window rows: ``values`` ``(windows, d)``, ``article_index`` as
    :func:`collate_articles` gives it; ``(n_articles, d)``, in ``values``' dtype."""
    sums = values.new_zeros((n_articles, values.shape[-1])).index_add_(0, article_index, values)
    return sums / torch.bincount(article_index, minlength=n_articles).clamp(min=1).unsqueeze(-1).to(values.dtype)


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
