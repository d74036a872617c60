"""Loading a trained model and predicting with it.

>>> from aranews import load_classifier
>>> clf = load_classifier("runs/demo/run/model")
>>> clf.predict("أنقرة وموسكو توقعان اتفاقا جديدا للطاقة", title="اتفاق طاقة")
{'topic': {'label': 'economy_energy', 'score': 0.91}, 'stance': {'label': 'cooperation', 'score': 0.84}}

Every article takes the same path as in training and in ``aranews score``: :func:`compose_text`
(title, text), :func:`input_problem` (empty or non-Arabic text is not classified), cleaning,
tokenisation and windowing (:class:`ArticleWindower`), one encoder pass per input group.

An article that cannot be classified gets an explicit result instead of a label: ``{"skipped":
"empty_text", "topic": None, ...}`` from ``predict`` and a row of NaN from ``predict_proba``; the
scorer writes the same reasons to its errors file.

A loaded classifier holds no mutable state between calls: ``predict`` runs under
``torch.inference_mode`` on a model in eval mode, so concurrent calls from several threads are safe.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np
import torch

from aranews.inference.config import CONFIG_NAME, ClassifierConfig, TaskSpec, TokenizerInfo
from aranews.inference.inputs import (
    ArticleWindower,
    EncodedArticle,
    collate_articles,
    compose_text,
    input_problem,
    mean_per_article,
)
from aranews.inference.modeling import MultiTaskClassifier
from aranews.inference.preprocessing import has_arabic
from aranews.inference.runners import TORCH_MODES, make_runner
from aranews.inference.runtime import PrecisionError, auto_precision, resolve_precision, token_budget_batches
from aranews.inference.schema import ConfigError

__all__ = [
    "BatchResult",
    "DeviceError",
    "Inspection",
    "NewsClassifier",
    "Prediction",
    "load_classifier",
    "predict_stance",
    "predict_topic",
    "resolve_device",
]

logger = logging.getLogger(__name__)

Prediction = dict[str, Any]
Texts = str | Sequence[str]
CARD_NAME = "README.md"


class DeviceError(RuntimeError):
    """The requested device is not available with this torch build or machine."""


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The device to run on: the one given, else CUDA, else Apple MPS, else CPU.

    Raises:
        DeviceError: a device was named that this torch build or machine does not have.
    """
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"device {device!r} is not a device name ({exc}); use cpu, cuda, cuda:N or mps") from None
    if resolved.type == "cuda":
        if torch.version.cuda is None:
            raise DeviceError(
                f"device {device!r}: this torch build ({torch.__version__}) has no CUDA support; use cpu, "
                "or install a CUDA build of torch"
            )
        if not torch.cuda.is_available() or (resolved.index or 0) >= torch.cuda.device_count():
            raise DeviceError(f"device {device!r}: no such CUDA device is visible on this machine; use cpu")
    if resolved.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError(f"device {device!r}: Apple MPS is not available here; use cpu")
    return resolved


@dataclass
class BatchResult:
    """What the model made of a batch of articles.

    Attributes:
        probs: per task, ``(articles, labels)`` probabilities; rows of skipped articles are NaN.
        skipped: per article, why it was not classified (``empty_text``, ``no_arabic_text``) or ``None``.
        articles: per article, its windows for the first input group (token counts, truncation);
            ``None`` for an article skipped before tokenisation.
        no_arabic: per article, whether its text has no Arabic letter (scored only on request).
    """

    probs: dict[str, np.ndarray]
    skipped: list[str | None]
    articles: list[EncodedArticle | None]
    no_arabic: list[bool]


@dataclass
class PreparedBatch:
    """A batch cleaned, tokenised and windowed, ready for the model (:meth:`NewsClassifier.prepare`).

    Preparing is pure CPU work on text and holds no model state, so the scorer prepares the next chunk
    in a thread while the model runs on the current one.
    """

    tasks: list[str]
    skipped: list[str | None]
    articles: list[EncodedArticle | None]
    no_arabic: list[bool]
    groups: list[tuple[list[str], list[int], list[EncodedArticle]]]  # tasks, row positions, their windows


@dataclass
class WindowView:
    """One encoder window as text: what the model read of the article in it."""

    text: str
    tokens: int


@dataclass
class Inspection:
    """Exactly what the model reads of one article (see :meth:`NewsClassifier.inspect`).

    Attributes:
        text: the composed input (title and text), before cleaning.
        cleaned: after the checkpoint's preprocessing steps.
        skipped: why the article would not be classified, or ``None``.
        boilerplate_chars: characters of page furniture the cleaner removed.
        preprocessing, strategy, max_length: the checkpoint's settings that shaped the windows.
        inputs: per input group (``article``, or ``article + <pair column>``): token counts and windows.
    """

    text: str
    cleaned: str
    skipped: str | None
    boilerplate_chars: int
    preprocessing: list[str]
    strategy: str
    max_length: int
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_list(value: Any, n: int, name: str) -> list[Any]:
    if value is None:
        return [None] * n
    if isinstance(value, str):
        return [value] * n if n == 1 else _length_error(name, 1, n)
    values = list(value)
    if len(values) != n:
        _length_error(name, len(values), n)
    return values


def _length_error(name: str, got: int, n: int) -> list[Any]:
    raise ValueError(f"{name} has {got} values for {n} texts; give one per text")


class NewsClassifier:
    """A trained multi-task classifier with its tokenizer and preprocessing.

    Load one with :func:`load_classifier` or :meth:`from_pretrained`.

    Args:
        model: the model (moved to ``device`` and put in eval mode).
        tokenizer: its tokenizer.
        device: where the model runs.
        batch_size: the most articles per forward pass.
        source: where the model was loaded from (for provenance).
        precision: ``auto`` (default), ``fp32``, ``bf16``, ``fp16`` or ``int8``: see
            :mod:`aranews.inference.runtime`.
        batch_tokens: the most padded tokens (windows x longest window) per forward pass; batches are
            formed longest first, so padding stays small.
    """

    def __init__(
        self,
        model: MultiTaskClassifier,
        tokenizer: Any,
        device: torch.device | str = "cpu",
        batch_size: int = 64,
        source: str | None = None,
        precision: str | None = "auto",
        batch_tokens: int = 8192,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}; expected an integer >= 1")
        if isinstance(batch_tokens, bool) or not isinstance(batch_tokens, int) or batch_tokens < 1:
            raise ValueError(f"batch_tokens={batch_tokens!r}; expected an integer >= 1")
        self._device = torch.device(device)
        self._model = model.to(self._device).eval()
        self._tokenizer = tokenizer
        self._windower = ArticleWindower.from_config(model.config.model, tokenizer)
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        self.source = source
        self._precision = resolve_precision(precision, self._device)
        if precision in (None, "auto") and self._precision not in TORCH_MODES and self._reads_claims_apart():
            self._precision = auto_precision(self._device)  # pair_encoding: bi, similarity: torch only
        self._runner = make_runner(self._precision, self._model, self._device, source)

    def _reads_claims_apart(self) -> bool:
        return any(self._model.pairs_apart(names) for names in self.config.input_groups().values())

    # -- what the model is --------------------------------------------------------------------------
    @property
    def model(self) -> MultiTaskClassifier:
        self._require_torch_encoder("use its torch model")
        return self._model

    @property
    def embedding_size(self) -> int:
        """The width of the article embeddings (:meth:`features_from_encoded`): the encoder's hidden size."""
        return int(self._model.encoder.config.hidden_size)

    @property
    def holds_reduced_weights(self) -> bool:
        """Whether its linear layers are held in bf16 / fp16 (a bf16 or fp16 classifier that owns its model,
        once it has scored): scores are those of its precision, but saving or exporting it would lose fp32."""
        return bool(getattr(self._runner, "weights_held", False))

    def _require_full_weights(self, what: str) -> None:
        self._require_torch_encoder(what)
        if self.holds_reduced_weights:
            raise RuntimeError(
                f"this classifier holds its weights in {self.precision} for speed; to {what}, load {self.source} "
                "again with precision fp32"
            )

    def _require_torch_encoder(self, what: str) -> None:
        if self._runner.released_encoder:
            raise RuntimeError(
                f"this classifier runs in {self._runner.backend} (precision {self.precision}) and released its torch "
                f"encoder to save memory; to {what}, load {self.source} again with precision fp32 or bf16"
            )

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    @property
    def windower(self) -> ArticleWindower:
        """Cleans, tokenises and windows articles as this model was trained to read them."""
        return self._windower

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def precision(self) -> str:
        """The precision mode the model runs in (``auto`` resolved for this machine)."""
        return self._precision

    @property
    def config(self) -> ClassifierConfig:
        return self._model.config

    @property
    def tasks(self) -> list[TaskSpec]:
        return self._model.config.tasks

    @property
    def labels(self) -> dict[str, list[str]]:
        """Each task's labels, in probability-column order."""
        return {t.name: list(t.labels) for t in self.tasks}

    # -- loading and saving -------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        device: str | torch.device | None = None,
        batch_size: int = 64,
        precision: str | None = "auto",
        batch_tokens: int = 8192,
    ) -> NewsClassifier:
        """Load a model directory written by this library (safetensors weights, no remote code).

        Raises:
            FileNotFoundError: the directory or one of its files is missing.
            ConfigError: the config, weights or tokenizer are invalid or do not belong together.
            DeviceError: ``device`` is not available.
            PrecisionError: ``precision`` is unknown or cannot run on this device or install.
        """
        from transformers import AutoTokenizer

        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no such model directory")
        resolved = resolve_device(device)
        if precision == "int8":
            resolve_precision("int8", resolved)  # a missing onnx extra is said first
            _require_int8_agreement(path)
        model = MultiTaskClassifier.from_pretrained(path, map_location="cpu")
        _check_tokenizer_files(path, model.config.tokenizer)
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
        except (OSError, ValueError) as exc:
            raise ConfigError([f"the tokenizer cannot be loaded ({exc})"], str(path)) from None
        info = model.config.tokenizer
        if info is not None and len(tokenizer) != info.vocab_size:
            raise ConfigError(
                [
                    f"tokenizer: {len(tokenizer)} tokens, but the model was saved with a {info.vocab_size}-token "
                    "tokenizer; the tokenizer files do not belong to this model"
                ],
                str(path),
            )
        classifier = cls(
            model,
            tokenizer,
            resolved,
            batch_size=batch_size,
            source=str(path),
            precision=precision,
            batch_tokens=batch_tokens,
        )
        classifier._runner.release_encoder = True  # nobody else holds this model: int8 may free its encoder
        return classifier

    def save_pretrained(self, directory: str | Path, card: str | None = None) -> Path:
        """Write a self-describing, push-ready model directory.

        Writes ``config.json`` (with the tokenizer's files and size), ``model.safetensors``, the
        tokenizer and ``README.md``: ``card`` when given, else a short card generated from the config.

        Returns:
            ``directory``.
        """
        from aranews.inference.cards import basic_model_card

        self._require_full_weights("save it")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = self._tokenizer.save_pretrained(str(directory))
        files = sorted({Path(f).name for f in written if Path(f).is_file()})
        self.config.tokenizer = TokenizerInfo(vocab_size=len(self._tokenizer), files=files)
        self._model.save_pretrained(directory)
        (directory / CARD_NAME).write_text(card or basic_model_card(self.config), encoding="utf-8")
        return directory

    def push_to_hub(
        self,
        repo_id: str,
        *,
        token: str | None = None,
        private: bool | None = None,
        commit_message: str = "Upload aranews-classifier model",
        card: str | None = None,
    ) -> str:
        """Upload this model (as :meth:`save_pretrained` writes it) to a Hugging Face hub repository.

        Returns:
            The URL of the commit.
        """
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        with tempfile.TemporaryDirectory() as tmp:
            folder = self.save_pretrained(Path(tmp) / "model", card=card or self._saved_card())
            api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=commit_message)
        return str(getattr(info, "commit_url", info))

    def _saved_card(self) -> str | None:
        if self.source and (Path(self.source) / CARD_NAME).is_file():
            return (Path(self.source) / CARD_NAME).read_text(encoding="utf-8")
        return None

    # -- the one path from texts to probabilities ---------------------------------------------------
    def _check_tasks(self, tasks: Sequence[str] | None) -> list[str]:
        names = list(tasks) if tasks is not None else [t.name for t in self.tasks]
        for name in names:
            self.config.task(name)  # KeyError naming the known tasks
        return names

    def _pair_lists(self, names: list[str], n: int, pairs: dict[str, Any] | None) -> dict[str, list[str]]:
        out = {}
        for column in self.config.input_groups(names):
            if column is None:
                continue
            if not pairs or column not in pairs:
                raise ValueError(
                    f"tasks {self.config.input_groups(names)[column]} read the article with its {column!r}: "
                    f"pass pairs={{{column!r}: ...}} with one value per text"
                )
            values = _as_list(pairs[column], n, f"pairs[{column!r}]")
            bad = [i for i, v in enumerate(values) if not isinstance(v, str)]
            if bad:
                raise TypeError(f"pairs[{column!r}][{bad[0]}] is {type(values[bad[0]]).__name__}, not a string")
            out[column] = values
        return out

    def classify(self, texts: Sequence[str], **inputs: Any) -> BatchResult:
        """Probabilities for a batch, with what was skipped and why (the scorer's entry point).

        Args:
            texts: article texts.
            inputs: as for :meth:`prepare`: ``titles`` (one title or ``None`` per text), ``pairs`` (for
                target-conditioned tasks, ``{pair_column: one value per text}``), ``tasks`` (default: all),
                ``score_non_arabic`` (classify texts without an Arabic letter instead of skipping them).
        """
        return self.run(self.prepare(texts, **inputs))

    def prepare(
        self,
        texts: Sequence[str],
        *,
        titles: Sequence[str | None] | None = None,
        pairs: dict[str, Any] | None = None,
        tasks: Sequence[str] | None = None,
        score_non_arabic: bool = False,
    ) -> PreparedBatch:
        """Compose, check, clean, tokenise and window a batch (the text half of :meth:`classify`)."""
        names = self._check_tasks(tasks)
        texts = list(texts)
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise TypeError(f"texts must be strings; item {bad[0]} is {type(texts[bad[0]]).__name__}")
        pair_lists = self._pair_lists(names, len(texts), pairs)
        policy = self.config.model.title
        composed = [compose_text(t, title, policy) for t, title in zip(texts, _as_list(titles, len(texts), "titles"))]
        skipped = [input_problem(t, score_non_arabic) for t in composed]
        no_arabic = [s is None and not has_arabic(t) for t, s in zip(composed, skipped)]
        articles: list[EncodedArticle | None] = [None] * len(texts)
        groups = []
        for group_index, (column, group) in enumerate(self.config.input_groups(names).items()):
            keep = [i for i, s in enumerate(skipped) if s is None]
            pair = None if column is None else [pair_lists[column][i] for i in keep]
            encoded = self._windower.encode([composed[i] for i in keep], pair)
            if group_index == 0:  # text that cleaning empties is skipped for every task
                for i, article in zip(keep, encoded):
                    articles[i] = article
                    if article.text_tokens == 0:
                        skipped[i] = "empty_text"
            rows = [(i, a) for i, a in zip(keep, encoded) if skipped[i] is None]
            groups.append((list(group), [i for i, _ in rows], [a for _, a in rows]))
        return PreparedBatch(names, skipped, articles, no_arabic, groups)

    def run(self, prepared: PreparedBatch) -> BatchResult:
        """The model's probabilities for a prepared batch (the model half of :meth:`classify`)."""
        n = len(prepared.skipped)
        probs = {name: np.full((n, len(self.config.task(name).labels)), np.nan, np.float32) for name in prepared.tasks}
        for group, index, encoded in prepared.groups:
            if index:
                logits = self.logits_from_encoded(encoded, group)
                for name in group:
                    probs[name][index] = self.probabilities(name, logits[name])
        self._log_truncation([a for a in prepared.articles if a is not None])
        return BatchResult(probs, list(prepared.skipped), prepared.articles, prepared.no_arabic)

    def _log_truncation(self, articles: list[EncodedArticle]) -> None:
        truncated = sum(a.truncated for a in articles)
        if truncated:  # truncation is never silent: the scorer records it per row, predict() logs it
            logger.info(
                "%d of %d articles longer than max_length=%d (long_document=%s); %d tokens not seen",
                truncated,
                len(articles),
                self.config.model.max_length,
                self._windower.strategy,
                sum(a.dropped_tokens for a in articles),
            )

    def logits_from_encoded(self, encoded: Sequence[EncodedArticle], tasks: list[str]) -> dict[str, np.ndarray]:
        """Logits of already windowed articles, in token-budget batches; rows in the caller's order."""
        return self._forward_encoded(encoded, tasks, features=False)[0]

    def features_from_encoded(
        self, encoded: Sequence[EncodedArticle], tasks: list[str]
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Logits and, per article, the mean of its windows' pooled encoder outputs (what the heads read):
        the article's embedding, e.g. for choosing diverse articles to label."""
        return self._forward_encoded(encoded, tasks, features=True)

    @torch.inference_mode()
    def _forward_encoded(
        self, encoded: Sequence[EncodedArticle], tasks: list[str], features: bool
    ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        if features and not self._runner.gives_features:
            raise ValueError("article embeddings come from the torch model: load it with precision fp32 or bf16")
        self._model.eval()  # a classifier may share a model that is training (the trainer's evaluation)
        out = {name: np.zeros((len(encoded), len(self.config.task(name).labels)), np.float32) for name in tasks}
        pooled_out = np.zeros((len(encoded), self.embedding_size), np.float32) if features else None
        lengths = [(len(a.input_ids), max(len(w) for w in a.input_ids)) for a in encoded]
        for idx in token_budget_batches(lengths, self.batch_tokens, self.batch_size):
            batch = collate_articles([encoded[i] for i in idx], self._windower.pad_token_id)
            logits, pooled = self._batch_logits(batch, tasks, features)
            for name in tasks:
                out[name][idx] = logits[name].float().cpu().numpy()
            if pooled_out is not None:
                pooled_out[idx] = pooled.float().cpu().numpy()
        return out, pooled_out

    def _batch_logits(
        self, batch: dict[str, torch.Tensor], tasks: list[str], features: bool = False
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        article_index = batch.pop("article_index")
        apart = self._model.pairs_apart(tasks)
        windows, pooled = self._runner.windows(
            {**batch, "article_index": article_index} if apart else batch, tasks, features
        )
        article_index = article_index.to(next(iter(windows.values())).device)
        logits = self._model.pool_windows(windows, self._model.scored_windows(article_index, tasks))
        if pooled is None:
            return logits, None
        return logits, mean_per_article(pooled, article_index, int(article_index.max()) + 1)

    def probabilities(self, name: str, logits: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """Softmax (single-label) or sigmoid (multi-label) of one task's logits, through the task's saved
        calibration (``calibrated=False``: the raw model's probabilities)."""
        task = self.config.task(name)
        return task.kind.probabilities(task.calibrated_logits(logits) if calibrated else logits)

    # -- the public predict API ---------------------------------------------------------------------
    @overload
    def predict_proba(
        self,
        texts: str,
        *,
        title: str | None = ...,
        pairs: dict[str, str] | None = ...,
        tasks: Sequence[str] | None = ...,
        score_non_arabic: bool = ...,
    ) -> dict[str, np.ndarray]: ...
    @overload
    def predict_proba(
        self,
        texts: Sequence[str],
        *,
        title: Sequence[str | None] | None = ...,
        pairs: dict[str, Sequence[str]] | None = ...,
        tasks: Sequence[str] | None = ...,
        score_non_arabic: bool = ...,
    ) -> dict[str, np.ndarray]: ...

    def predict_proba(self, texts, *, title=None, pairs=None, tasks=None, score_non_arabic=False):
        """Per task, the probability of each label, columns in :attr:`labels` order.

        Args:
            texts: one article (``str``) or a list of articles.
            title: the article's title (a ``str``), or one title (or ``None``) per article.
            pairs: for target-conditioned tasks, ``{pair_column: target}`` (a list for a list of texts).
            tasks: the tasks to run (default: all).
            score_non_arabic: classify texts without an Arabic letter instead of skipping them.

        Returns:
            ``{task: array}``; for a ``str`` each array has shape ``(labels,)``, for a list
            ``(len(texts), labels)``. Single-label rows sum to 1; a skipped article's row is NaN.

        Raises:
            TypeError: a text is not a string.
            ValueError: a target-conditioned task lacks its pair texts, or lengths differ.
        """
        single = isinstance(texts, str)
        result = self._classify_any(texts, title, pairs, tasks, score_non_arabic)
        return {k: v[0] for k, v in result.probs.items()} if single else result.probs

    def _classify_any(self, texts, title, pairs, tasks, score_non_arabic) -> BatchResult:
        if isinstance(texts, str):
            texts = [texts]
            title = [title]
            pairs = {k: [v] for k, v in (pairs or {}).items()}
        return self.classify(texts, titles=title, pairs=pairs, tasks=tasks, score_non_arabic=score_non_arabic)

    def decide(
        self,
        result: BatchResult,
        thresholds: dict[str, Sequence[float]] | None = None,
        abstain_below: float | None = None,
    ) -> list[Prediction]:
        """Turn a :class:`BatchResult` into one prediction per article (labels and scores).

        ``abstain_below`` overrides every single-label task's saved ``abstain_below`` (see :class:`TaskSpec`).

        Raises:
            ValueError: ``thresholds`` names an unknown or single-label task, or has the wrong
                number of values, or values outside (0, 1).
        """
        limits = self._thresholds(thresholds or {})
        abstain = self.abstention(abstain_below)
        n = len(result.skipped)
        out: list[Prediction] = [{} for _ in range(n)]
        for name, matrix in result.probs.items():
            task = self.config.task(name)
            for i in range(n):
                if result.skipped[i] is not None:
                    out[i][name] = None
                    continue
                out[i][name] = task.kind.decide(matrix[i], task.labels, limits.get(name), abstain.get(name))
        for i in range(n):
            if result.skipped[i] is not None:
                out[i]["skipped"] = result.skipped[i]
            elif result.no_arabic[i]:
                out[i]["no_arabic"] = True
        return out

    def abstention(self, override: float | None = None) -> dict[str, float]:
        """Per single-label task, the probability below which it gives no label (``override`` or the saved one)."""
        bad = isinstance(override, bool) or not isinstance(override, (int, float)) or not 0.0 < override < 1.0
        if override is not None and bad:
            raise ValueError(f"abstain_below={override!r}; expected a value in (0, 1)")
        out = {}
        for task in self.tasks:
            value = override if override is not None else task.abstain_below
            if value is not None and task.kind.one_label_per_row:
                out[task.name] = value
        return out

    def _thresholds(self, overrides: dict[str, Sequence[float]]) -> dict[str, np.ndarray]:
        limits = {t.name: np.asarray(t.thresholds, np.float32) for t in self.tasks if t.kind.uses_thresholds}
        for name, values in overrides.items():
            task = self.config.task(name)
            if not task.kind.uses_thresholds:
                raise ValueError(
                    f"thresholds[{name!r}]: task {name!r} is single-label; thresholds are for multi-label tasks"
                )
            values = list(values)
            if len(values) != len(task.labels) or not all(
                isinstance(v, (int, float)) and 0.0 < v < 1.0 for v in values
            ):
                raise ValueError(
                    f"thresholds[{name!r}]: got {values!r}; expected {len(task.labels)} values in (0, 1), one per "
                    f"label in the order {task.labels}"
                )
            limits[name] = np.asarray(values, np.float32)
        return limits

    @overload
    def predict(
        self,
        texts: str,
        *,
        title: str | None = ...,
        pairs: dict[str, str] | None = ...,
        tasks: Sequence[str] | None = ...,
        thresholds: dict[str, Sequence[float]] | None = ...,
        score_non_arabic: bool = ...,
        abstain_below: float | None = ...,
    ) -> Prediction: ...
    @overload
    def predict(
        self,
        texts: Sequence[str],
        *,
        title: Sequence[str | None] | None = ...,
        pairs: dict[str, Sequence[str]] | None = ...,
        tasks: Sequence[str] | None = ...,
        thresholds: dict[str, Sequence[float]] | None = ...,
        score_non_arabic: bool = ...,
        abstain_below: float | None = ...,
    ) -> list[Prediction]: ...

    def predict(
        self, texts, *, title=None, pairs=None, tasks=None, thresholds=None, score_non_arabic=False, abstain_below=None
    ):
        """Each task's label and score per article.

        Args:
            texts: one article (``str``) or a list of articles.
            title: the article's title (a ``str``), or one title (or ``None``) per article.
            pairs: for target-conditioned tasks, ``{pair_column: target}`` (a list for a list of texts).
            tasks: the tasks to run (default: all).
            thresholds: per multi-label task, one threshold per label overriding the saved ones.
            abstain_below: a single-label task whose top probability is below this gives ``label: None`` and
                ``uncertain: True`` (default: each task's saved ``abstain_below``, usually none).
            score_non_arabic: classify texts without an Arabic letter (marked ``"no_arabic": True``)
                instead of skipping them.

        Returns:
            For a ``str`` one ``{task: {"label", "score"}}`` dict (multi-label tasks give
            ``{"labels", "scores"}``: every label at or above its threshold); for a list, a list of
            them. An article that cannot be classified gives ``{"skipped": reason, task: None, ...}``
            with reason ``empty_text`` (also: nothing left after cleaning) or ``no_arabic_text``.
        """
        result = self._classify_any(texts, title, pairs, tasks, score_non_arabic)
        predictions = self.decide(result, thresholds, abstain_below)
        return predictions[0] if isinstance(texts, str) else predictions

    def inspect(self, text: str, *, title: str | None = None, pairs: dict[str, str] | None = None) -> Inspection:
        """What the model reads of one article: the composed and cleaned text, its windows as text,
        and how many tokens were seen and dropped, per input group."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        composed = compose_text(text, title, self.config.model.title)
        w = self._windower
        cleaned, removed = w.clean(composed)
        view = Inspection(
            text=composed,
            cleaned=cleaned,
            skipped=input_problem(composed, score_non_arabic=True),
            boilerplate_chars=removed,
            preprocessing=list(w.preprocessing),
            strategy=w.strategy,
            max_length=w.max_length,
        )
        pair_lists = self._pair_lists([t.name for t in self.tasks], 1, pairs)
        for column, names in self.config.input_groups().items():
            article = w.encode([composed], None if column is None else pair_lists[column])[0]
            if article.text_tokens == 0:
                view.skipped = view.skipped or "empty_text"
            key = "article" if column is None else f"article + {column}"
            view.inputs[key] = {
                "tasks": names,
                "n_tokens": article.n_tokens,
                "text_tokens": article.text_tokens,
                "dropped_tokens": article.dropped_tokens,
                "windows": [asdict(v) for v in self._window_views(article, column is not None)],
            }
        return view

    def _window_views(self, article: EncodedArticle, paired: bool) -> list[WindowView]:
        t = self._windower.template
        windows = article.input_ids
        if paired and self.config.model.claim_apart:  # the claim's window first, then the article's
            start, end, windows = len(t.single_prefix), len(t.single_suffix), windows[1:]
        elif paired:
            kept_pair = min(article.n_tokens - article.text_tokens, self._windower.pair_max_length)
            start, end = len(t.pair_prefix) + kept_pair + len(t.pair_middle), len(t.pair_suffix)
        else:
            start, end = len(t.single_prefix), len(t.single_suffix)
        views = []
        for ids in windows:
            body = list(ids[start : len(ids) - end])
            views.append(WindowView(self._tokenizer.decode(body), len(body)))
        return views


def _require_int8_agreement(path: Path) -> None:
    """int8 is offered only for a model whose int8 labels were checked against fp32's on this machine."""
    import os

    from aranews.inference.runtime import int8_refusal

    why = int8_refusal(path)
    if why is not None and os.environ.get("ARANEWS_INT8_UNCHECKED") == "1":  # timing benchmarks on random weights
        logger.warning("precision int8 for %s although %s (ARANEWS_INT8_UNCHECKED=1)", path, why)
        return
    if why is not None:
        raise PrecisionError(
            f"precision int8 for {path}: {why}. int8 is offered only where it agrees with fp32 on at least 99% of "
            f"labels (it changed 4.6-8.9% of the labels of every fine-tuned model measured): run `aranews "
            f"check-precision --model {path} --data DEV.jsonl` (it records the result), or use bf16 / fp32"
        )


def _check_tokenizer_files(path: Path, info: TokenizerInfo | None) -> None:
    if info is None:
        return
    missing = [name for name in info.files if not (path / name).is_file()]
    if missing:
        raise ConfigError(
            [
                f"tokenizer file(s) {missing} listed in {CONFIG_NAME} are missing; the model cannot read text "
                "without the tokenizer it was trained with"
            ],
            str(path),
        )


def load_classifier(path: str | Path, **options: Any) -> NewsClassifier:
    """Load a trained classifier directory for prediction: :meth:`NewsClassifier.from_pretrained`.

    Args:
        path: a directory written by ``aranews train`` (or ``NewsClassifier.save_pretrained``).
        options: keywords of ``from_pretrained``: ``device`` (``"cuda"``, ``"mps"``, ``"cpu"``...; detected
            when ``None``), ``batch_size`` (the most articles per forward pass), ``precision`` (``auto`` per
            machine, ``fp32``, ``bf16``, ``fp16`` on CUDA or ``int8`` with the ``onnx`` extra; see
            :mod:`aranews.inference.runtime`), ``batch_tokens`` (the most padded tokens per forward pass).

    Returns:
        A :class:`NewsClassifier`.
    """
    return NewsClassifier.from_pretrained(path, **options)


def _as_classifier(model: NewsClassifier | str | Path) -> NewsClassifier:
    return model if isinstance(model, NewsClassifier) else load_classifier(model)


def predict_topic(texts: Texts, model: NewsClassifier | str | Path, task: str = "topic", title: Any = None):
    """The topic of one article (``str``) or of each article in a list.

    Args:
        texts: an article or a list of articles.
        model: a loaded classifier, or a model directory (loaded on every call: pass a loaded
            classifier when calling repeatedly).
        task: the task name, if the model calls it something else.
        title: the title of the article, or one per article.

    Returns:
        ``{"label", "score"}`` for a ``str`` (``None`` if the article was skipped); a list for a list.
    """
    result = _as_classifier(model).predict(texts, title=title, tasks=[task])
    return result[task] if isinstance(texts, str) else [r[task] for r in result]


def predict_stance(
    texts: Texts, model: NewsClassifier | str | Path, targets: Any = None, task: str = "stance", title: Any = None
):
    """The stance of one article or of each article in a list.

    Args:
        texts: an article or a list of articles.
        model: a loaded classifier or a model directory.
        targets: for a target- or claim-conditioned stance task, the target of each article (a ``str``
            for a single article).
        task: the task name, if the model calls it something else.
        title: the title of the article, or one per article.

    Returns:
        ``{"label", "score"}`` for a ``str`` (``None`` if the article was skipped); a list for a list.
    """
    clf = _as_classifier(model)
    column = clf.config.task(task).pair_column
    pairs = {column: targets} if column is not None and targets is not None else None
    result = clf.predict(texts, title=title, pairs=pairs, tasks=[task])
    return result[task] if isinstance(texts, str) else [r[task] for r in result]
