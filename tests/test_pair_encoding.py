"""``model.pair_encoding: bi``: a claim encoded apart from the article, each article window read beside it."""

from __future__ import annotations

import pytest
import torch

from aranews.inference import load_classifier
from aranews.inference.inputs import ArticleWindower, collate_articles
from aranews.inference.modeling import claim_windows, pair_features, similarity_features
from aranews.training.config import config_from_dict
from aranews.training.trainer import Trainer
from tests.helpers import experiment, write_jsonl

CLAIMS = ["روسيا وتركيا توقعان اتفاقا للغاز", "تركيا تبيع طائرات مسيرة إلى أوكرانيا"]


def test_the_claim_has_the_first_window_and_the_article_windows_hold_article_text_alone(tiny_tokenizer):
    windower = ArticleWindower(tiny_tokenizer, [], 32, strategy="chunks", stride=4, pair_max_length=6,
                               pair_encoding="bi")  # fmt: skip
    text = " ".join(["كلمة", "أخرى"] * 60)
    claim = " ".join(["هدف"] * 10)
    article = windower.encode([text], pairs=[claim])[0]
    alone = windower.encode([text])[0]
    claim_ids = tiny_tokenizer(claim, add_special_tokens=False)["input_ids"]
    prefix, suffix = windower.template.single_prefix, windower.template.single_suffix
    assert article.input_ids[0] == prefix + tuple(claim_ids[:6]) + suffix  # cut to pair_max_length
    assert article.input_ids[1:] == alone.input_ids  # the article's windows as if it had no claim
    assert article.n_tokens == alone.n_tokens + len(claim_ids)
    assert article.dropped_tokens == alone.dropped_tokens + len(claim_ids) - 6  # the claim's cut is counted
    assert article.text_tokens == alone.text_tokens


def test_pair_features_read_each_article_window_beside_its_own_claim():
    pooled = torch.randn(5, 3)
    index = torch.tensor([0, 0, 0, 1, 1])  # article 0: claim + 2 windows; article 1: claim + 1 window
    features, owners = pair_features(pooled, index)
    assert owners.tolist() == [0, 0, 1] and features.shape == (3, 4 * 3 + 1)
    u, v = pooled[3], pooled[4]
    expected = torch.cat([v, u, (v - u).abs(), v * u, torch.cosine_similarity(u, v, dim=0).reshape(1)])
    torch.testing.assert_close(features[2], expected)
    torch.testing.assert_close(features[0, 3:6], pooled[0])
    with pytest.raises(ValueError, match="windows together"):
        claim_windows(torch.tensor([0, 1, 0]))


@pytest.fixture(scope="module")
def bi_model(tmp_path_factory, tiny_backbone, sample_rows):
    tmp = tmp_path_factory.mktemp("bi")
    rows = {k: [{**r, "claim": CLAIMS[i % 2]} for i, r in enumerate(v)] for k, v in sample_rows.items()}
    data = {name: str(write_jsonl(tmp / f"{name}.jsonl", rows[name])) for name in ("train", "dev")}
    tasks = [{"name": "topic"}, {"name": "stance", "pair_column": "claim"}]
    model = {
        "pair_encoding": "bi",
        "pair_max_length": 24,
        "pooling": "mean",
        "long_document": {"strategy": "chunks", "stride": 8},
    }
    training = {"recipe": "few_shot", "few_shot_steps": 12, "few_shot_contrastive_steps": 6}
    result = Trainer(config_from_dict(experiment(tmp, tiny_backbone, data=data, tasks=tasks, model=model,
                                                 training=training))).train()  # fmt: skip
    return result, rows["dev"]


def test_a_bi_model_trains_both_tasks_and_scores_the_article_beside_its_claim(bi_model):
    result, dev = bi_model
    recipe = result.metrics["recipe"]
    assert recipe["contrastive"]["steps"] == 6 and set(recipe["heads"]) == {"topic", "stance"}
    clf = load_classifier(result.model_dir, device="cpu", precision="fp32")
    hidden = clf.model.encoder.config.hidden_size
    assert clf.model.heads["stance"].dense.in_features == 4 * hidden + 1  # the pair features
    assert clf.model.heads["topic"].dense.in_features == hidden  # a text-only task reads the windows as they are
    texts, claims = [r["text"] for r in dev[:6]], [r["claim"] for r in dev[:6]]
    probs = clf.predict_proba(texts, pairs={"claim": claims}, tasks=["stance"])["stance"]
    # the same probabilities from the claim and the article encoded as two unrelated texts
    windower, model = clf.windower, clf.model
    articles, claim_only = windower.encode(texts), windower.encode(claims)
    with torch.no_grad():
        for i in range(len(texts)):
            batch = collate_articles([articles[i]], windower.pad_token_id)
            batch.pop("article_index")
            v = model.window_features(**batch)
            batch = collate_articles([claim_only[i]], windower.pad_token_id)
            batch.pop("article_index")
            u = model.window_features(**batch)
            features, _ = pair_features(torch.cat([u, v]), torch.zeros(len(v) + 1, dtype=torch.long))
            logits = model.heads["stance"](features).mean(0)  # chunk_pooling: mean
            calibrated = clf.config.task("stance").calibrated_logits(logits.numpy()[None])
            torch.testing.assert_close(torch.as_tensor(probs[i]), torch.softmax(torch.as_tensor(calibrated[0]), -1),
                                       rtol=1e-4, atol=1e-5)  # fmt: skip
    again = load_classifier(result.model_dir, device="cpu", precision="fp32")
    assert (again.predict_proba(texts, pairs={"claim": claims})["stance"] == probs).all()
    view = clf.inspect(texts[0], pairs={"claim": claims[0]})
    windows = view.inputs["article + claim"]["windows"]
    assert len(windows) == len(articles[0].input_ids)  # the article's windows, not the claim's


def test_a_bi_model_runs_in_torch_only_and_is_not_exported(bi_model, tmp_path):
    from aranews.inference.export import ExportError, export_task
    from aranews.inference.runners import make_runner

    result, _ = bi_model
    clf = load_classifier(result.model_dir, device="cpu", precision="fp32")
    for mode in ("int8", "openvino-bf16"):
        with pytest.raises(ValueError, match=rf"precision {mode}: tasks \['stance'\] read their claim apart"):
            make_runner(mode, clf.model, torch.device("cpu"), str(result.model_dir))
    with pytest.raises(ExportError, match="pair_encoding: bi"):
        export_task(clf, "stance", tmp_path / "exported")
    assert load_classifier(result.model_dir, device="cpu").precision in ("fp32", "bf16")  # auto: a torch mode
    bf16 = load_classifier(result.model_dir, device="cpu", precision="bf16")
    texts = ["روسيا وتركيا توقعان اتفاقا للغاز في أنقرة"] * 2
    assert bf16.predict(texts, pairs={"claim": CLAIMS})[0]["stance"] is not None


def test_similarity_features_are_each_windows_cosine_and_the_articles_largest_mean_and_first():
    pooled = torch.randn(6, 5)
    index = torch.tensor([0, 0, 0, 0, 1, 1])  # article 0: claim + 3 windows; article 1: claim + 1 window
    features, owners = similarity_features(pooled, index)
    assert owners.tolist() == [0, 0, 0, 1] and features.shape == (4, 4)
    cos = torch.stack([torch.cosine_similarity(pooled[0], pooled[i], dim=0) for i in (1, 2, 3)])
    for row in range(3):
        torch.testing.assert_close(features[row], torch.stack([cos[row], cos.max(), cos.mean(), cos[0]]))
    alone = torch.cosine_similarity(pooled[4], pooled[5], dim=0)
    torch.testing.assert_close(features[3], alone.repeat(4))


def test_a_similarity_model_reads_four_cosines_skips_the_pair_stage_and_runs_in_torch_only(
    tmp_path, tiny_backbone, sample_rows
):
    from aranews.inference.export import ExportError, export_task

    rows = {k: [{**r, "claim": CLAIMS[i % 2]} for i, r in enumerate(v)] for k, v in sample_rows.items()}
    data = {name: str(write_jsonl(tmp_path / f"{name}.jsonl", rows[name])) for name in ("train", "dev")}
    model = {"pair_encoding": "similarity", "pair_max_length": 24, "pooling": "mean",
             "long_document": {"strategy": "chunks", "stride": 8}}  # fmt: skip
    training = {"recipe": "few_shot", "few_shot_steps": 8, "few_shot_contrastive_steps": 6}
    tasks = [{"name": "stance", "pair_column": "claim"}]
    result = Trainer(config_from_dict(experiment(tmp_path, tiny_backbone, data=data, tasks=tasks, model=model,
                                                 training=training))).train()  # fmt: skip
    recipe = result.metrics["recipe"]
    assert recipe["contrastive"]["steps"] == 0 and "similarity head makes none" in recipe["contrastive"]["why"]
    assert recipe["train_encoder"] is False  # the heads read the pretrained encoder's cosines
    clf = load_classifier(result.model_dir, device="cpu", precision="fp32")
    assert clf.model.heads["stance"].dense.in_features == 4
    dev = rows["dev"][:4]
    texts, claims = [r["text"] for r in dev], [r["claim"] for r in dev]
    probs = clf.predict_proba(texts, pairs={"claim": claims})["stance"]
    windower, net = clf.windower, clf.model
    with torch.no_grad():
        for i, (article, claim) in enumerate(zip(windower.encode(texts), windower.encode(claims), strict=True)):
            states = []
            for encoded in (claim, article):
                batch = collate_articles([encoded], windower.pad_token_id)
                batch.pop("article_index")
                states.append(net.window_features(**batch))
            pooled = torch.cat(states)
            features, _ = similarity_features(pooled, torch.zeros(len(pooled), dtype=torch.long))
            logits = clf.config.task("stance").calibrated_logits(net.heads["stance"](features).mean(0).numpy()[None])
            torch.testing.assert_close(torch.as_tensor(probs[i]), torch.softmax(torch.as_tensor(logits[0]), -1),
                                       rtol=1e-4, atol=1e-5)  # fmt: skip
    with pytest.raises(ExportError, match="pair_encoding: similarity"):
        export_task(clf, "stance", tmp_path / "exported")
