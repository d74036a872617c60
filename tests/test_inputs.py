"""Long-document strategies: what each keeps, what it drops, and that every drop is counted."""

from __future__ import annotations

import itertools

import pytest

from aranews.inference.inputs import ArticleWindower, collate_articles


def _encoder(tokenizer, strategy, **kwargs):
    defaults = {"max_length": 32, "head_tokens": 10, "stride": 4, "max_chunks": 8, "pair_max_length": 6}
    return ArticleWindower(tokenizer, ["arabert_v02"], strategy=strategy, **{**defaults, **kwargs})


def _long_text(tokenizer, n_words=60):
    words = [w for w in tokenizer.get_vocab() if w.isalpha() and not w.startswith("[")][:n_words]
    return " ".join(words), words


def _ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_short_text_is_one_untouched_window(tiny_tokenizer):
    for strategy in ("head", "head_tail", "chunks"):
        article = _encoder(tiny_tokenizer, strategy).encode(["روسيا وتركيا"])[0]
        assert len(article.input_ids) == 1
        assert article.input_ids[0] == tuple(tiny_tokenizer("روسيا وتركيا")["input_ids"])
        assert not article.truncated


def test_head_keeps_the_start(tiny_tokenizer):
    text, _ = _long_text(tiny_tokenizer)
    ids = _ids(tiny_tokenizer, text)
    article = _encoder(tiny_tokenizer, "head").encode([text])[0]
    (window,) = article.input_ids
    assert len(window) == 32
    assert list(window[1:-1]) == ids[:30]
    assert article.n_tokens == len(ids) and article.dropped_tokens == len(ids) - 30


def test_head_tail_keeps_start_and_end(tiny_tokenizer):
    text, _ = _long_text(tiny_tokenizer)
    ids = _ids(tiny_tokenizer, text)
    (window,) = _encoder(tiny_tokenizer, "head_tail").encode([text])[0].input_ids
    assert list(window[1:11]) == ids[:10]
    assert list(window[11:-1]) == ids[-20:]
    assert window[0] == tiny_tokenizer.cls_token_id and window[-1] == tiny_tokenizer.sep_token_id


def test_chunks_cover_the_whole_article_with_overlap(tiny_tokenizer):
    text, _ = _long_text(tiny_tokenizer)
    ids = _ids(tiny_tokenizer, text)
    article = _encoder(tiny_tokenizer, "chunks").encode([text])[0]
    bodies = [list(w[1:-1]) for w in article.input_ids]
    assert all(len(w) <= 32 for w in article.input_ids)
    assert bodies[0] == ids[:30]
    for previous, current in itertools.pairwise(bodies):
        assert previous[-4:] == current[:4]  # stride tokens shared
    covered = bodies[0] + [t for b in bodies[1:] for t in b[4:]]
    assert covered == ids and article.dropped_tokens == 0


def test_chunks_beyond_max_chunks_are_counted(tiny_tokenizer):
    text, _ = _long_text(tiny_tokenizer)
    ids = _ids(tiny_tokenizer, text)
    article = _encoder(tiny_tokenizer, "chunks", max_chunks=1).encode([text])[0]
    assert len(article.input_ids) == 1
    assert article.dropped_tokens == len(ids) - 30


def test_pair_input_puts_target_first_with_segment_ids(tiny_tokenizer):
    text, _ = _long_text(tiny_tokenizer)
    encoder = _encoder(tiny_tokenizer, "head_tail")
    article = encoder.encode([text], pairs=["اللقاح"])[0]
    (window,), (types,) = article.input_ids, article.token_type_ids
    target = _ids(tiny_tokenizer, "اللقاح")
    assert list(window[1 : 1 + len(target)]) == target
    assert window[1 + len(target)] == tiny_tokenizer.sep_token_id
    assert set(types[: 2 + len(target)]) == {0} and set(types[2 + len(target) :]) == {1}
    assert len(window) == 32


def test_long_pair_text_is_cut_and_counted(tiny_tokenizer):
    _, words = _long_text(tiny_tokenizer)
    long_target = " ".join(words[:20])
    article = _encoder(tiny_tokenizer, "head").encode(["روسيا"], pairs=[long_target])[0]
    assert article.dropped_tokens == len(_ids(tiny_tokenizer, long_target)) - 6


def test_unknown_strategy_raises(tiny_tokenizer):
    with pytest.raises(ValueError, match="long_document.strategy='tail'"):
        _encoder(tiny_tokenizer, "tail")


def test_window_checks_are_written_once_in_the_settings(tiny_tokenizer):
    from aranews.inference.config import LongDocumentConfig, ModelConfig, window_problems

    # once accepted by the training config and refused by the encoder after the weights were loaded
    bad = ModelConfig(max_length=96, long_document=LongDocumentConfig("chunks", stride=47))
    assert window_problems(bad, paired=False) == [
        (
            "long_document.stride",
            47,
            "an integer in [0, 47) (under half of the 94 text tokens per window for the article alone)",
        )
    ]
    # at the bound the check allows, real windows are built for the article alone and for a pair
    ok = ModelConfig(max_length=96, pair_max_length=20, long_document=LongDocumentConfig("chunks", stride=35))
    assert window_problems(ok, paired=True) == []
    text, _ = _long_text(tiny_tokenizer, 200)
    windower = ArticleWindower.from_config(ok, tiny_tokenizer)
    for pairs in (None, ["هدف طويل " * 30]):
        article = windower.encode([text], pairs)[0]
        assert len(article.input_ids) > 1 and all(len(w) <= 96 for w in article.input_ids)
    short = ModelConfig(max_length=16, pair_max_length=6)
    assert window_problems(short, paired=True)[0][0] == "max_length"
    assert window_problems(short, paired=False) == []  # head_tokens null: a quarter of the window
    fixed = ModelConfig(max_length=16, long_document=LongDocumentConfig(head_tokens=14))
    assert window_problems(fixed, paired=False)[0][:2] == ("long_document.head_tokens", 14)


def test_collate_pads_dynamically_and_maps_windows(tiny_tokenizer):
    text, _ = _long_text(tiny_tokenizer)
    articles = _encoder(tiny_tokenizer, "chunks").encode(["روسيا", text])
    batch = collate_articles(articles, tiny_tokenizer.pad_token_id)
    n_windows = 1 + len(articles[1].input_ids)
    assert batch["input_ids"].shape == (n_windows, 32)
    assert batch["article_index"].tolist() == [0] + [1] * (n_windows - 1)
    assert batch["attention_mask"][0].sum() == len(articles[0].input_ids[0])
    short = collate_articles(articles[:1], tiny_tokenizer.pad_token_id)
    assert short["input_ids"].shape[1] == len(articles[0].input_ids[0])  # padded to the batch, not max_length
