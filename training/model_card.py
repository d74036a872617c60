"""Generate a Hugging Face style model card from a training config and a finished run.

Every figure in the card is read from the run's ``metrics.json`` (and ``report.json`` where an
evaluation report exists); nothing is typed by hand. The card describes the run's own resolved config
unless another config is given (the repository's card describes ``configs/default.yaml`` with the demo
run's figures, and says so). Regenerate the repository's card with ``make card``, i.e.::

    aranews model-card --config configs/default.yaml --run runs/demo/run --out model_card.md
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from aranews.inference.cards import encoder_tags, how_to_use, hub_base_model
from aranews.inference.config import ClassifierConfig
from aranews.training.config import ExperimentConfig, config_from_dict

__all__ = ["render_model_card"]

TOPIC_MEANINGS = {
    "security": "security and intelligence cooperation, counter-terrorism, arrests, border security",
    "diplomacy": "visits, calls, meetings, summits, ambassadors and diplomatic protests",
    "economy_energy": "gas, oil and nuclear energy, trade, tourism, payments and sanctions' effect on trade",
    "military": "arms deals (S-400, drones), forces, patrols, straits, military incidents",
    "regional_conflicts": "Syria, Libya, Karabakh and the war in Ukraine: ceasefires, mediation, fighting",
    "blocs_alliances": "BRICS, NATO, the SCO, the EU and the Eurasian Economic Union",
}
STANCE_MEANINGS = {
    "cooperation": "the article presents Russian–Turkish relations as cooperative, warm or improving",
    "tension": "the article presents friction: criticism, accusations, threats, cancelled visits",
    "neutral": "the article reports without framing the relationship either way",
}


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def _results_table(metrics: dict[str, Any], report: dict[str, Any]) -> list[str]:
    report_tasks = report.get("tasks", {})
    lines = [
        "| split | task | n | accuracy | macro-F1 | micro-F1 | weighted-F1 | ECE raw | ECE calibrated |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for split in ("dev", "test"):
        for task, r in metrics.get(split, {}).items():
            if r.get("n"):
                shown = report_tasks.get(task, {}) if split == report.get("split") else {}
                after = shown.get("calibration", {}).get("ece")
                before = shown.get("calibration_before", {}).get("ece", after)  # no calibration: the same
                lines.append(
                    f"| {split} | {task} | {r['n']} | {_fmt(r['accuracy'])} | {_fmt(r['macro_f1'])} "
                    f"| {_fmt(r['micro_f1'])} | {_fmt(r['weighted_f1'])} | {_fmt(before)} | {_fmt(after)} |"
                )
    if report.get("baseline"):
        lines += ["", f"Beside it, the baseline trained on the same training split: {report['baseline']['name']}.", ""]
        lines += [
            "| task | split | transformer accuracy | baseline accuracy | transformer macro-F1 | baseline macro-F1 |"
        ]
        lines += ["| --- | --- | --- | --- | --- | --- |"]
        for task, r in report["tasks"].items():
            b = report["baseline"]["tasks"].get(task, {})
            lines.append(
                f"| {task} | {report['split']} | {_fmt(r.get('accuracy'))} | {_fmt(b.get('accuracy'))} "
                f"| {_fmt(r.get('macro_f1'))} | {_fmt(b.get('macro_f1'))} |"
            )
    for task, r in report_tasks.items():
        if r.get("thresholds"):
            lines += ["", f"**{task}** decision thresholds (tuned on dev, saved with the model):", ""]
            lines += ["| label | threshold | precision | recall | F1 |", "| --- | --- | --- | --- | --- |"]
            lines += [
                f"| {t['label']} | {t['threshold']:.2f} | {_fmt(t['precision'])} | {_fmt(t['recall'])} | {_fmt(t['f1'])} |"
                for t in r["thresholds"]
            ]
    return lines


def _per_class(metrics: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for task, r in metrics.get("dev", {}).items():
        if not r.get("per_class"):
            continue
        lines += [
            f"**{task}** (dev)",
            "",
            "| label | precision | recall | F1 | support |",
            "| --- | --- | --- | --- | --- |",
        ]
        for label, c in r["per_class"].items():
            lines.append(
                f"| {label} | {_fmt(c['precision'])} | {_fmt(c['recall'])} | {_fmt(c['f1'])} | {c['support']} |"
            )
        lines.append("")
    return lines


def _benchmarks(paths: list[Path]) -> list[str]:
    if not paths:
        return []
    lines = [
        "## Benchmarks on public data",
        "",
        "Written by `benchmarks/bench_quality.py` (details, commands and citations in `BENCHMARKS.md`): a pretrained "
        "encoder fine-tuned with this library on the whole train split of a public data set, the best epoch "
        "selected on its whole dev split, beside the TF-IDF baseline trained on the same rows. AraBERT cannot be "
        "downloaded where these ran: the encoder column says which encoder produced each figure. These are dev "
        "figures; where several recipes were tried, the table shows the best on dev, which flatters it (the "
        "recipes column says how many were tried); the held-back test splits are the check.",
        "",
        "| data set | task | encoder | pooling | window | train / dev | recipes | fine-tuned accuracy "
        "| fine-tuned macro-F1 | baseline macro-F1 | gain |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for path in paths:
        r = json.loads(path.read_text(encoding="utf-8"))
        t, b = r["transformer"], r["baseline"]
        pooling = r.get("model", {}).get("pooling", "mean")
        lines.append(
            f"| {Path(r['dataset']).name} | {r['task']} | {r.get('encoder_name', Path(r['encoder']).name)} | {pooling} "
            f"| {r['max_length']} {r.get('long_document', 'head_tail')} | {r['n_train']} / {r['n_dev']} "
            f"| {len(r.get('selected_from', [])) or 1} | {_fmt(t['accuracy'])} | {_fmt(t['macro_f1'])} "
            f"| {_fmt(b['macro_f1'])} | {t['macro_f1'] - b['macro_f1']:+.3f} |"
        )
    return [*lines, ""]


@dataclass
class _Run:
    """What a card is written from: the run's figures and the config the card describes."""

    run_dir: Path
    config: ExperimentConfig
    metrics: dict[str, Any]
    report: dict[str, Any]
    saved: ClassifierConfig | None
    model_name: str
    benchmarks: list[Path]

    @property
    def run_encoder(self) -> str:
        return self.metrics["config"]["model"]["encoder"]

    @property
    def same_model(self) -> bool:
        """Whether the run trained the model the card describes (else its figures are not claimed for it)."""
        return self.run_encoder == self.config.model.encoder


def render_model_card(
    run_dir: str | Path,
    config: ExperimentConfig | None = None,
    model_name: str = "aranews-topic-stance",
    benchmarks: list[str | Path] | None = None,
) -> str:
    """The model card text for a finished run.

    Args:
        run_dir: a finished run directory holding ``metrics.json`` (and ``report/report.json`` if evaluated).
        config: the configuration the card describes; default: the run's own resolved config.
        model_name: the name in the card's metadata.
        benchmarks: result files of ``benchmarks/bench_quality.py`` to tabulate.

    Raises:
        FileNotFoundError: if ``run_dir`` has no ``metrics.json``.
    """
    run = _load_run(Path(run_dir), config, model_name, [Path(b) for b in benchmarks or []])
    sections = [
        _front_matter,
        _introduction,
        _schema,
        _data_and_preprocessing,
        _long_documents,
        _results,
        _limitations,
        _versions,
    ]
    return "\n".join(line for section in sections for line in section(run))


def _load_run(run_dir: Path, config: ExperimentConfig | None, model_name: str, benchmarks: list[Path]) -> _Run:
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.is_file():
        raise FileNotFoundError(f"{metrics_path}: not found; train first (aranews train / aranews demo)")
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    if config is None:
        config = config_from_dict(metrics["config"], source=str(metrics_path))
    report_path = run_dir / "report" / "report.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else {}
    saved = ClassifierConfig.load(run_dir / "model") if (run_dir / "model" / "config.json").is_file() else None
    return _Run(run_dir, config, metrics, report, saved, model_name, benchmarks)


def _model_index(run: _Run) -> list[dict[str, Any]]:
    metrics = run.metrics
    results = [
        {
            "task": {"type": "text-classification", "name": f"{task} classification"},
            "dataset": {"name": Path(metrics["data"][split]["path"]).name, "type": "custom", "split": split},
            "metrics": [
                {"type": "accuracy", "value": round(r["accuracy"], 4)},
                {"type": "f1", "name": "macro-F1", "value": round(r["macro_f1"], 4)},
            ],
        }
        for split in ("dev", "test")
        for task, r in metrics.get(split, {}).items()
        if r.get("n")
    ]
    return [{"name": run.model_name, "results": results}]


def _task_tags(config: Any) -> list[str]:
    """What the tasks are, as tags: ``topic-classification`` for a task called topic, ``stance-detection`` for
    stance, else the task's name."""
    known = {"topic": "topic-classification", "stance": "stance-detection"}
    return [known.get(t.name, t.name) for t in config.tasks]


def _front_matter(run: _Run) -> list[str]:
    datasets = [Path(run.metrics["data"]["train"]["path"]).parent.name or "custom"]
    datasets += [Path(json.loads(b.read_text(encoding="utf-8"))["dataset"]).name for b in run.benchmarks]
    meta: dict[str, Any] = {
        "language": ["ar"],
        "license": "apache-2.0",
        "library_name": "aranews-classifier",  # no pipeline_tag: a pipeline loads an export, not this directory
        "datasets": list(dict.fromkeys(datasets)),
        "tags": ["arabic", "news", "multi-task", *_task_tags(run.config), *encoder_tags(run.config.model.encoder)],
        "metrics": ["accuracy", "f1"],
    }
    base_model = hub_base_model(run.config.model.encoder)
    if base_model:
        meta["base_model"] = base_model
    if run.same_model:  # model-index only for figures measured with the model this card describes
        meta["model-index"] = _model_index(run)
    return ["---", yaml.safe_dump(meta, allow_unicode=True, sort_keys=False).strip(), "---", ""]


def _introduction(run: _Run) -> list[str]:
    m = run.config.model
    reads = "first token" if m.pooling == "cls" else "mean of the token states"
    return [
        f"# {run.model_name}",
        "",
        f"A multi-task classifier of Arabic news articles fine-tuned from `{m.encoder}`: one shared encoder, one head "
        f"per task (dense + tanh + linear on the {reads}), trained with `aranews train` "
        "([aranews-classifier](https://github.com/aranews-classifier/aranews-classifier)).",
        *(
            [
                f"A task with a target or claim reads it encoded apart from the article (`pair_encoding: "
                f"{m.pair_encoding}`): its head reads each article window beside the claim, "
                + (
                    "`[v, u, |v - u|, v * u, cos(u, v)]`"
                    if m.pair_encoding == "bi"
                    else "its cosine to the claim and, over the article's windows, their largest, mean and first"
                )
                + "; it runs in torch only and cannot be exported to a transformers model."
            ]
            if m.claim_apart and any(t.pair_column for t in run.config.tasks)
            else []
        ),
        "",
        *(how_to_use(run.saved) if run.saved else []),
        "## Intended use",
        "",
        "Sorting and monitoring Arabic news coverage by topic and by how an article frames the relationship it "
        "covers; batch scoring of news archives; a starting point for retraining on a new label schema.",
        "Not intended for judging the truth of an article, for decisions about people, or for text that is not "
        "news (social media, opinion forums) without retraining and re-evaluation.",
        "",
    ]


def _schema(run: _Run) -> list[str]:
    lines = ["## Label schema", ""]
    for task in run.config.tasks:
        kind = task.kind.description
        pair = f"; conditioned on the `{task.pair_column}` column" if task.pair_column else ""
        lines += [f"**{task.name}** ({kind}{pair})", "", "| label | meaning |", "| --- | --- |"]
        meanings = TOPIC_MEANINGS if task.name == "topic" else STANCE_MEANINGS if task.name == "stance" else {}
        for label in task.labels or run.metrics["labels"].get(task.name, []):
            lines.append(f"| `{label}` | {meanings.get(label, '')} |")
        lines.append("")
    return [
        *lines,
        "Replace the schema by editing `tasks:` in the config (see README); labels are stored, in order, in the "
        "checkpoint's `config.json`, and probability columns follow that order.",
        "",
    ]


def _data_and_preprocessing(run: _Run) -> list[str]:
    data = run.metrics["data"]
    steps = ", ".join(f"`{s}`" for s in run.config.model.preprocessing)
    return [
        "## Training data",
        "",
        "Labelled articles in JSON Lines, CSV or Parquet: `id`, `text`, optional `title` (read as the first line "
        "of the article), one column per task; rows may lack a task's label. "
        f"The run reported below used `{Path(data['train']['path']).name}` ({data['train']['articles']} articles) "
        f"and `{Path(data['dev']['path']).name}` ({data['dev']['articles']} articles).",
        "",
        "## Preprocessing",
        "",
        f"Steps, in order: {steps}. `strip_boilerplate` removes scraped page furniture (share / follow / subscribe / "
        "read-more lines, language switchers, symbol-only lines). `arabert_v02` is AraBERT v0.2's normalisation "
        "(diacritics and tatweel removed, URLs / e-mails / mentions replaced by placeholders, punctuation spaced, "
        "Indic digits mapped, `/` to `-`), tested output-for-output against the `arabert` package. The checkpoint "
        "names the steps; prediction applies the same ones.",
        "",
    ]


def _long_documents(run: _Run) -> list[str]:
    m, run_model = run.config.model, run.metrics["config"]["model"]
    ld = m.long_document
    how = {
        "head": "",
        "head_tail": f" (the first {ld.head_tokens or 'quarter of the'} tokens and the end of the article)",
        "chunks": f" (windows overlapping by {ld.stride} tokens, at most {ld.max_chunks}, logits {ld.chunk_pooling}-pooled)",
    }[ld.strategy]
    counts = "; ".join(
        f"{split}: {s['truncated']} of {s['articles']} articles truncated ({s['dropped_tokens']} tokens unseen)"
        for split, s in run.metrics["data"].items()
    )
    return [
        "## Long documents",
        "",
        f"Windows of {m.max_length} tokens. Strategy `{ld.strategy}`{how}. Every truncated article is counted: in the "
        f"run below ({run_model['max_length']}-token windows, `{run_model['long_document']['strategy']}`), {counts}.",
        "",
    ]


def _results(run: _Run) -> list[str]:
    lines = ["## Results", ""]
    if not run.same_model:
        lines += [
            f"> These figures come from the run in `{run.run_dir}`, whose encoder was `{run.run_encoder}`, not "
            f"`{run.config.model.encoder}`. They show that training, saving and evaluation work end to end; they are "
            "not a measure of the default model's quality. Replace them by training the default config and "
            "regenerating this card.",
            "",
        ]
    lines += _results_table(run.metrics, run.report)
    metrics = run.metrics
    lines += [
        "",
        _selection_line(metrics),
        "",
        *_per_class(metrics),
    ]
    if run.report:
        lines += [
            "The evaluation report beside the run (`report/`) holds the confusion matrices, reliability diagrams "
            "(ECE over 10 equal-width confidence bins, with the number of articles per bin; the raw model beside the "
            "calibrated one, which on dev is cross-fitted: each fold calibrated by a fit on the others), the "
            "risk-coverage curve and the most confident mistakes of each task.",
            "",
        ]
    return lines + _benchmarks(run.benchmarks)


def _selection_line(metrics: dict[str, Any]) -> str:
    recipe = metrics.get("recipe") or {}
    started = [
        f"{task}/{label} ({figures['rows']} rows; the started head gave it {figures['train_recall_at_start']:.0%} of them)"
        for task, labels in (recipe.get("new_labels") or {}).items()
        for label, figures in labels.items()
        if figures.get("fitted")
    ]
    new_labels = f" New label(s) started fitted on their own training rows: {'; '.join(started)}." if started else ""
    return _recipe_line(metrics, recipe) + new_labels


def _recipe_line(metrics: dict[str, Any], recipe: dict[str, Any]) -> str:
    lottery = recipe.get("seeds")
    if lottery:
        scores = ", ".join(f"seed {r['seed']}: {r['dev_score']:.3f}" for r in lottery["runs"])
        recipe_name = "few-shot" if recipe.get("name") == "few_shot" else "standard"
        return (
            f"Seed lottery: {len(lottery['runs'])} runs of the {recipe_name} recipe from the same initial weights "
            f"(dev {metrics['selection_metric']}: {scores}); kept: {lottery['kept']}."
        )
    if recipe.get("name") == "few_shot":
        contrastive = recipe.get("contrastive") or {}
        steps = contrastive.get("steps")
        pairs = " (SetFit's pair set)" if contrastive.get("pair_set") == "setfit" else ""
        stage = (
            f"the encoder tuned on pairs of training rows{pairs} for {steps} contrastive steps, then " if steps else ""
        )
        heads = "" if recipe.get("train_encoder", True) else " (the heads only)"
        heads_start = recipe.get("heads")
        start = "heads started as nearest-centroid classifiers"
        if isinstance(heads_start, str):
            start = "heads kept from the old model"
        elif isinstance(heads_start, dict) and "kept" in heads_start:
            start = "the old model's heads kept, a new task's started as a nearest-centroid classifier"
        return (
            f"Few-shot recipe ({recipe.get('why')}): {stage}{start}, the model "
            f"after the last of {len(metrics['epochs'])} epochs{heads} kept (no selection on dev; dev read once, at "
            "the end)."
        )
    return f"Best epoch {metrics['best_epoch']} of {len(metrics['epochs'])} by dev {metrics['selection_metric']}."


def _limitations(run: _Run) -> list[str]:
    return [
        "## Limitations and risks",
        "",
        "- The stance labels describe how an article *frames* the relationship, not whether the relationship is "
        "good, nor the outlet's or author's position; quoted criticism can make a balanced article read as "
        "`tension`.",
        "- Topic labels overlap in real news (an arms deal is both `military` and `economy_energy`); the single-label "
        "head picks one. Use a multi-label task where that matters.",
        "- Trained on Modern Standard Arabic news; dialectal text, transliterated Arabic and non-news genres are out "
        "of distribution.",
        "- Scores are softmax probabilities through the calibration fitted on dev (temperature scaling, kept only "
        "where it lowers the cross-fitted dev log-loss): calibrated on dev's mix of labels and sources, not "
        "guaranteed on an archive unlike it. Label shares are estimated (PACC) with intervals that assume the "
        "archive's articles of each label read like dev's (label shift).",
        "- Small or synthetic training sets (such as the embedded sample corpus) give figures that do not transfer "
        "to real archives.",
        "",
    ]


def _versions(run: _Run) -> list[str]:
    return [
        "## Versions",
        "",
        "| package | version |",
        "| --- | --- |",
        *[f"| {k} | {v} |" for k, v in run.metrics["versions"].items()],
        "",
    ]
