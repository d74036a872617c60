"""The one definition of a model's settings: what a user writes under ``model:`` is what a checkpoint stores.

:class:`ModelConfig` is the ``model:`` section of a training YAML *and* the ``model`` entry of a saved
model's ``config.json``; both are read by :func:`~aranews.inference.schema.parse`, so a value means the
same thing, has the same default and passes the same checks in both places. The window checks
(:func:`window_problems`) are written once here, for every place that builds windows.

A checkpoint's ``config.json`` (:class:`ClassifierConfig`)::

    architecture, library, format_version
    tasks           each task's ordered labels, problem type, pair column, thresholds
    model           the ModelConfig it was trained with (encoder name, preprocessing, title, windows)
    encoder_config  the transformer's own config (model_type, sizes), to rebuild it without a download
    tokenizer       the saved tokenizer's files and vocabulary size, checked on load
    versions        aranews-classifier, transformers, torch and Python versions
"""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from aranews.inference.schema import ConfigError, check_all, parse
from aranews.inference.task_kinds import KINDS, TaskKind, kind_of

__all__ = [
    "CONFIG_NAME",
    "DEFAULT_ENCODER",
    "FORMAT_VERSION",
    "MAX_SPECIAL_TOKENS",
    "ClassifierConfig",
    "LabelSchema",
    "LongDocumentConfig",
    "ModelConfig",
    "TaskSpec",
    "TokenizerInfo",
    "input_groups",
    "library_versions",
    "tasks_and_windows_problems",
    "window_problems",
]

CONFIG_NAME = "config.json"
DEFAULT_ENCODER = "aubmindlab/bert-base-arabertv02"
FORMAT_VERSION = 2
ARCHITECTURE = "MultiTaskClassifier"
# Special tokens a window may need, for every supported tokenizer: BERT uses [CLS] A [SEP] and
# [CLS] A [SEP] B [SEP]; XLM-R uses <s> A </s> and <s> A </s></s> B </s>. Window checks assume these
# maxima, so a config that passes them fits any of these tokenizers.
MAX_SPECIAL_TOKENS = {"single": 2, "pair": 4}
MIN_TEXT_TOKENS = 8

Problems = list[tuple[str, Any, str]]


def library_versions() -> dict[str, str]:
    """Versions recorded in every checkpoint and report."""
    import torch
    import transformers

    from aranews import __version__

    return {
        "aranews_classifier": __version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def _known_preprocessing() -> list[str]:
    from aranews.inference.preprocessing import PREPROCESSORS

    return sorted(PREPROCESSORS)


@dataclass
class TaskSpec:
    """One classification task as a trained model knows it.

    Attributes:
        name: task name, e.g. ``"topic"``.
        labels: label names; position ``i`` is class id ``i`` and probability column ``i``.
        problem_type: ``single_label`` (softmax, one label) or ``multi_label`` (sigmoid, any number).
        pair_column: for target- or claim-conditioned tasks, the input column paired with the text.
        thresholds: for ``multi_label``, one decision threshold per label (default 0.5 each).
        temperature: calibration fitted on dev after training: the logits are divided by it before the
            softmax (one value) or the sigmoid (one per label); ``None``: uncalibrated (models saved before
            calibration existed, or ``training.calibration: none``).
        bias: bias-corrected temperature scaling (single-label): added to the scaled logits, one per label.
        abstain_below: a single-label row whose (calibrated) top probability is below this gets no label
            (``uncertain: true``); ``None``: every row gets one.
        dev_rates: for label shares (:mod:`aranews.inference.shares`), the dev rows' true label ids and
            calibrated probabilities (``{"truth": [...], "probs": [[...], ...]}``), written by training.
        descriptions: for a zero-shot model, the label descriptions its head was built from.
    """

    name: str
    labels: list[str]
    problem_type: Literal["single_label", "multi_label"] = "single_label"
    pair_column: str | None = None
    thresholds: list[float] | None = None
    temperature: float | list[float] | None = None
    bias: list[float] | None = None
    dev_rates: dict[str, Any] | None = None
    abstain_below: float | None = None
    descriptions: dict[str, str] | None = None

    def __post_init__(self) -> None:
        kind = KINDS.get(self.problem_type)  # an unknown kind is reported by check()
        if self.thresholds is None and kind is not None:
            self.thresholds = kind.default_thresholds(len(self.labels))

    @property
    def kind(self) -> TaskKind:
        """What the task's kind decides: probabilities, decisions, loss, metrics (:mod:`task_kinds`)."""
        return kind_of(self.problem_type)

    def check(self) -> Problems:
        out: Problems = []
        if KINDS.get(self.problem_type) is None:
            out.append(("problem_type", self.problem_type, " or ".join(KINDS)))
            return out
        if len(self.labels) < 2:
            out.append(("labels", self.labels, "at least two labels"))
        dupes = sorted({x for x in self.labels if self.labels.count(x) > 1})
        if dupes:
            out.append(("labels", self.labels, f"unique labels (repeated: {dupes})"))
        out += self.kind.threshold_problems(self.labels, self.thresholds)
        t = self.temperature
        values = t if isinstance(t, list) else [] if t is None else [t]
        if (isinstance(t, list) and len(t) != len(self.labels)) or not all(0.0 < v < 1000.0 for v in values):
            out.append(("temperature", t, f"a value in (0, 1000), or {len(self.labels)} of them (one per label)"))
        out += abstain_problems(self.kind, self.abstain_below)
        if self.bias is not None and len(self.bias) != len(self.labels):
            out.append(("bias", self.bias, f"{len(self.labels)} values, one per label"))
        return out

    def calibrated_logits(self, logits: Any) -> Any:
        """``logits`` (rows x labels) as the saved calibration reads them: divided by the temperature, plus the
        bias; unchanged for an uncalibrated task. An argmax is never changed by a temperature alone."""
        if self.temperature is None and self.bias is None:
            return logits
        import numpy as np

        z = np.asarray(logits, dtype=np.float32) / np.asarray(self.temperature or 1.0, dtype=np.float32)
        return z + np.asarray(self.bias, dtype=np.float32) if self.bias is not None else z


def abstain_problems(kind: TaskKind, value: Any) -> Problems:
    """``abstain_below`` is ``None`` or a value in (0, 1), on a single-label task."""
    if value is None:
        return []
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        return [("abstain_below", value, "a value in (0, 1), or null")]
    if not kind.one_label_per_row:
        return [("abstain_below", value, "null: abstention is for single-label tasks")]
    return []


def input_groups(tasks: Sequence[TaskSpec]) -> dict[str | None, list[str]]:
    """Task names grouped by the input they read, in task order: ``None`` for the article alone, else the
    pair column (``target``, ``claim``) read beside it.

    The one grouping: training, evaluation, prediction and scoring run the encoder once per group.
    """
    groups: dict[str | None, list[str]] = {}
    for task in tasks:
        groups.setdefault(task.pair_column, []).append(task.name)
    return groups


@dataclass
class LongDocumentConfig:
    """How an article longer than one window is read (see :mod:`aranews.inference.inputs`).

    Attributes:
        strategy: ``head`` (the first tokens), ``head_tail`` (``head_tokens`` from the start, the rest
            from the end) or ``chunks`` (overlapping windows over the whole article, logits pooled).
        head_tokens: with ``head_tail``, tokens kept from the start (``null``: a quarter of the window).
        stride: with ``chunks``, tokens shared by neighbouring windows.
        max_chunks: with ``chunks``, the most windows per article.
        chunk_pooling: with ``chunks``, ``mean`` or ``max`` over the windows' logits.
    """

    strategy: Literal["head", "head_tail", "chunks"] = "head_tail"
    head_tokens: int | None = None
    stride: int = 64
    max_chunks: int = 8
    chunk_pooling: Literal["mean", "max"] = "mean"

    def check(self) -> Problems:
        out: Problems = []
        if self.head_tokens is not None and self.head_tokens < 0:
            out.append(("head_tokens", self.head_tokens, "an integer >= 0 or null (a quarter of the window)"))
        if self.stride < 0:
            out.append(("stride", self.stride, "an integer >= 0"))
        if not 1 <= self.max_chunks <= 64:
            out.append(("max_chunks", self.max_chunks, "an integer in [1, 64]"))
        return out


@dataclass
class ModelConfig:
    """The encoder and how an article reaches it: the ``model:`` section of a config, stored in checkpoints.

    Attributes:
        encoder: Hugging Face model id or local directory of the pretrained encoder.
        tokenizer: tokenizer id or directory (default: the encoder's).
        preprocessing: cleaning steps, in order (see :mod:`aranews.inference.preprocessing`).
        title: ``prepend`` (the title, when present, on its own line before the text) or ``ignore``.
        max_length: tokens per encoder window, special tokens included.
        pair_max_length: tokens kept of a target or claim (target-conditioned tasks).
        long_document: see :class:`LongDocumentConfig`.
        pooling: the window representation the heads read: ``cls`` (the first token; exportable to a
            standard transformers model) or ``mean`` of the token states.
        dropout: dropout in the heads during training.
        input_prefix: text put before every window's tokens, after the special tokens that start it: the
            encoder's own input convention, e.g. ``"query: "`` for the E5 family (trained with it); empty by
            default. Its tokens come out of each window's budget.
        pair_encoding: how a target-conditioned task reads its target or claim beside the article: ``cross``
            (one sequence, ``target [SEP] article``: the encoder attends across them; exportable) or ``bi`` (the
            claim and the article's windows encoded apart, as a sentence-embedding encoder was trained to read
            a query and a passage; each window's head reads ``[v, u, |v - u|, v * u, cos(u, v)]``, ``u`` the
            claim's pooled state and ``v`` the window's, and the windows' logits are pooled per article).
            ``similarity``: encoded apart as with ``bi``, but the head reads only how close the claim is to the
            article: ``[cos(u, v), max, mean, first]``, the window's cosine and, over the article's windows, their
            largest, their mean and the first window's (a head four wide; the evidence a stance set's few labelled
            rows can fit, where the 1,537 numbers of ``bi`` are too many). ``bi`` and ``similarity`` run in torch
            (precision fp32, bf16, fp16) and cannot be exported to a transformers model.
    """

    encoder: str = DEFAULT_ENCODER
    tokenizer: str | None = None
    preprocessing: list[str] = field(default_factory=lambda: ["strip_boilerplate", "arabert_v02"])
    title: Literal["prepend", "ignore"] = "prepend"
    max_length: int = 512
    pair_max_length: int = 64
    long_document: LongDocumentConfig = field(default_factory=LongDocumentConfig)
    pooling: Literal["cls", "mean"] = "cls"
    dropout: float = 0.1
    input_prefix: str = ""
    pair_encoding: Literal["cross", "bi", "similarity"] = "cross"

    @property
    def claim_apart(self) -> bool:
        """Whether a target-conditioned task's claim is encoded apart from the article (``bi``, ``similarity``)."""
        return self.pair_encoding != "cross"

    def check(self) -> Problems:
        out: Problems = []
        known = _known_preprocessing()
        unknown = [s for s in self.preprocessing if s not in known]
        if unknown:
            out.append(("preprocessing", self.preprocessing, f"steps among {known} (unknown: {unknown})"))
        if not 16 <= self.max_length <= 8192:
            out.append(("max_length", self.max_length, "an integer in [16, 8192]"))
        if self.pair_max_length < 0:
            out.append(("pair_max_length", self.pair_max_length, "an integer >= 0"))
        if not 0.0 <= self.dropout < 1.0:
            out.append(("dropout", self.dropout, "a value in [0, 1)"))
        if len(self.input_prefix) > 64:
            out.append(("input_prefix", self.input_prefix, "at most 64 characters"))
        return out


def window_problems(model: ModelConfig, paired: bool) -> Problems:
    """The checks on window sizes, written once: for the article alone and, when a task reads a target
    or claim, for the article beside it. Keys are relative to ``model``.

    With these passing, every window of every supported tokenizer holds at least ``MIN_TEXT_TOKENS`` of
    article text, a ``head_tail`` window keeps a tail, and ``chunks`` advance by at least half a window.
    """
    out: Problems = []
    if not 16 <= model.max_length <= 8192:
        return out  # reported by ModelConfig.check
    budgets = {"the article alone": model.max_length - MAX_SPECIAL_TOKENS["single"]}
    if paired:
        if not 0 <= model.pair_max_length <= model.max_length // 2:
            out.append(
                (
                    "pair_max_length",
                    model.pair_max_length,
                    f"an integer in [0, {model.max_length // 2}] (half of max_length)",
                )
            )
            return out
        if not model.claim_apart:  # bi, similarity: the claim has a window of its own
            budgets["the article beside its target/claim"] = (
                model.max_length - MAX_SPECIAL_TOKENS["pair"] - model.pair_max_length
            )
    what, budget = min(budgets.items(), key=lambda kv: kv[1])
    if budget < MIN_TEXT_TOKENS:
        out.append(
            (
                "max_length",
                model.max_length,
                f"room for at least {MIN_TEXT_TOKENS} text tokens for {what} "
                f"(it leaves {budget} after special tokens and pair_max_length)",
            )
        )
        return out
    ld = model.long_document
    if ld.strategy == "head_tail" and ld.head_tokens is not None and not 0 <= ld.head_tokens < budget:
        out.append(
            (
                "long_document.head_tokens",
                ld.head_tokens,
                f"an integer in [0, {budget}) so that a tail is kept ({budget} text tokens per window for {what})",
            )
        )
    if ld.strategy == "chunks" and not 0 <= ld.stride < budget // 2:
        out.append(
            (
                "long_document.stride",
                ld.stride,
                f"an integer in [0, {budget // 2}) (under half of the {budget} text tokens per window for {what})",
            )
        )
    return out


def tasks_and_windows_problems(tasks: Sequence[Any], model: ModelConfig) -> Problems:
    """Checks shared by a training config and a checkpoint: at least one task, unique task names, and
    windows that fit the tasks' inputs (keys relative to the root)."""
    out: Problems = []
    if not tasks:
        out.append(("tasks", tasks, "at least one task"))
    names = [t.name for t in tasks]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        out.append(("tasks", names, f"unique task names (repeated: {dupes})"))
    paired = any(t.pair_column for t in tasks)
    return out + [(f"model.{key}", value, allowed) for key, value, allowed in window_problems(model, paired)]


@dataclass
class TokenizerInfo:
    """What was saved of the tokenizer, so that loading can check it is the one the model was trained with."""

    vocab_size: int
    files: list[str] = field(default_factory=list)

    def check(self) -> Problems:
        return [("vocab_size", self.vocab_size, "an integer >= 1")] if self.vocab_size < 1 else []


@dataclass
class LabelSchema:
    """The version of a model's label schema (its tasks and their labels).

    Attributes:
        version: 1 for a model trained from scratch; retraining from a model (``training.init_from``)
            keeps its version when the labels are the same and adds 1 when labels were added or removed.
        previous: the schema id of the model retrained from, when there was one.
        changes: per task, the labels ``added`` and ``removed`` against that model.
    """

    version: int = 1
    previous: str | None = None
    changes: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def check(self) -> Problems:
        return [("version", self.version, "an integer >= 1")] if self.version < 1 else []


def schema_digest(tasks: Sequence[TaskSpec]) -> str:
    """A short hash of the tasks' names, kinds, pair columns and labels in order."""
    import hashlib

    text = json.dumps([[t.name, t.problem_type, t.pair_column, list(t.labels)] for t in tasks], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


@dataclass
class ClassifierConfig:
    """Everything needed to rebuild a trained model and prepare its input exactly as in training."""

    tasks: list[TaskSpec]
    model: ModelConfig
    encoder_config: dict[str, Any]
    tokenizer: TokenizerInfo | None = None
    versions: dict[str, str] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    architecture: str = ARCHITECTURE
    library: str = "aranews-classifier"
    # as in every transformers config.json; AutoTokenizer reads it from the model folder (without it,
    # transformers 5 takes the folder for an old Mistral checkpoint and warns about its tokenizer)
    transformers_version: str | None = None
    label_schema: LabelSchema = field(default_factory=LabelSchema)
    zero_shot: dict[str, Any] | None = None  # how a zero-shot model's heads were built (aranews zero-shot)

    def check(self) -> Problems:
        out: Problems = []
        if self.architecture != ARCHITECTURE:
            out.append(("architecture", self.architecture, repr(ARCHITECTURE)))
        if self.format_version != FORMAT_VERSION:
            hint = "retrain with this version" if self.format_version < FORMAT_VERSION else "upgrade aranews-classifier"
            out.append(("format_version", self.format_version, f"{FORMAT_VERSION} ({hint})"))
        if not isinstance(self.encoder_config.get("model_type"), str):
            out.append(
                ("encoder_config.model_type", self.encoder_config.get("model_type"), "a transformers model type")
            )
        return out + tasks_and_windows_problems(self.tasks, self.model)

    def validate(self, source: str | None = None) -> ClassifierConfig:
        """Raise :class:`ConfigError` listing every problem of a config built in code."""
        problems = check_all(self)
        if problems:
            raise ConfigError(problems, source)
        return self

    # ---------------------------------------------------------------------------------------------
    @property
    def schema_id(self) -> str:
        """``v<version>-<hash of the labels>``: carried by every scoring output row and summary."""
        return f"v{self.label_schema.version}-{schema_digest(self.tasks)}"

    @property
    def base_model(self) -> str:
        """The pretrained encoder this model was fine-tuned from."""
        return self.model.encoder

    def task(self, name: str) -> TaskSpec:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(f"no task {name!r} in this model; its tasks are {[t.name for t in self.tasks]}")

    def input_groups(self, names: list[str] | None = None) -> dict[str | None, list[str]]:
        """This model's task names grouped by the input they read (see :func:`input_groups`)."""
        wanted = None if names is None else set(names)
        return input_groups([t for t in self.tasks if wanted is None or t.name in wanted])

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        # readers see what a file is before anything else
        head = {k: data.pop(k) for k in ("architecture", "library", "format_version")}
        return {**head, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | None = None) -> ClassifierConfig:
        """Parse a ``config.json`` mapping; :class:`ConfigError` lists every problem."""
        if isinstance(data, dict) and data.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
            version = data.get("format_version")
            raise ConfigError(
                [
                    f"format_version: got {version!r}; this library reads format {FORMAT_VERSION} "
                    + (
                        "(a model saved by aranews-classifier 0.1; retrain it with this version)"
                        if isinstance(version, int) and version < FORMAT_VERSION
                        else "(upgrade aranews-classifier)"
                    )
                ],
                source,
            )
        return parse(cls, data, source=source)

    def save(self, directory: str | Path) -> None:
        path = Path(directory) / CONFIG_NAME
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> ClassifierConfig:
        """Read and check ``<directory>/config.json``.

        Raises:
            FileNotFoundError: no ``config.json`` there.
            ConfigError: the file is not JSON, not a model of this library, or inconsistent.
        """
        path = Path(directory) / CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; is {directory} a model saved by aranews-classifier?")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError([f"not valid JSON ({exc})"], str(path)) from None
        if not isinstance(data, dict) or data.get("architecture") != ARCHITECTURE:
            found = data.get("architecture", data.get("model_type")) if isinstance(data, dict) else data
            raise ConfigError(
                [
                    f"architecture: got {found!r}; expected {ARCHITECTURE!r} (a model saved by aranews-classifier; "
                    "a standard transformers model is loaded with transformers itself)"
                ],
                str(path),
            )
        return cls.from_dict(data, source=str(path))
