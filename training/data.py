"""Reading labelled articles and validating them before any model is built.

Files are JSON Lines, CSV or Parquet, read with the scorer's streaming readers (one reader for every
input of the library). Every problem is collected, then reported
together, each with its file, row (1-based data row; for JSON Lines the line number), id, column and
value, so a user fixes a file in one pass.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aranews.inference.config import TaskSpec, input_groups
from aranews.inference.inputs import ArticleWindower, EncodedArticle, compose_text
from aranews.inference.records import id_problem
from aranews.training.config import DataConfig, TaskConfig

__all__ = [
    "DataValidationError",
    "EncodedSplit",
    "LabelledSplit",
    "Problem",
    "encode_split",
    "label_tensor",
    "load_and_validate",
    "load_files",
    "load_split",
    "load_train",
    "resolve_labels",
    "validate_splits",
]

logger = logging.getLogger(__name__)

MAX_REPORTED = 50


class Problem(str):
    """One problem of the labelled data: a record whose message (the string itself) is rendered from its fields.

    It is a ``str`` so that code which printed or joined the problems keeps working; programs read the fields.

    Attributes:
        kind: what is wrong, as a code (``duplicate_id``, ``empty_text``, ``unknown_label``, ``leakage``,
            ``too_few_labels``, ``missing_column``, a reader's reason such as ``invalid_json``, ...).
        detail: the same in words, with what is allowed.
        location: where: ``file:line``, ``file:row N (line L)`` or the file; ``None`` for a whole task.
        id: the row's id, when it has one.
        column: the column concerned.
        value: the offending value.
    """

    kind: str
    detail: str
    location: str | None
    id: str | None
    column: str | None
    value: Any

    def __new__(
        cls,
        kind: str,
        detail: str,
        location: str | None = None,
        id: str | None = None,
        column: str | None = None,
        value: Any = None,
    ) -> Problem:
        where = (location or "") + (f" (id {id!r})" if id is not None else "")
        self = super().__new__(cls, f"{where}: {detail}" if where else detail)
        self.kind, self.detail, self.location, self.id, self.column, self.value = (
            kind,
            detail,
            location,
            id,
            column,
            value,
        )
        return self

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("kind", "detail", "location", "id", "column", "value")}


class DataValidationError(ValueError):
    """The labelled data has problems; ``problems`` lists every one (:class:`Problem` records)."""

    def __init__(self, problems: list[Problem | str]):
        self.problems = problems
        shown = problems[:MAX_REPORTED]
        more = f"\n  ... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
        super().__init__(f"{len(problems)} problem(s) in the data:\n  " + "\n  ".join(shown) + more)


@dataclass
class LabelledSplit:
    """One file of labelled articles.

    Attributes:
        name: ``train``, ``dev`` or ``test``.
        path: the file.
        ids, texts: one per row; each text is composed with :func:`compose_text` (title and text).
        labels: per task, one value per row: a label, a list of labels (multi-label) or ``None``.
        pairs: per pair column (``target``, ``claim``), one string per row.
    """

    name: str
    path: str
    ids: list[str]
    texts: list[str]
    labels: dict[str, list[Any]] = field(default_factory=dict)
    pairs: dict[str, list[str]] = field(default_factory=dict)
    locations: list[str] = field(default_factory=list)  # "file:line" of each row, for messages

    def __len__(self) -> int:
        return len(self.ids)


def _read_rows(path: Path) -> tuple[list[tuple[str, dict[str, Any]]], list[Problem]]:
    """``(location, fields)`` of every readable record, and a problem line for every other one.

    Read by the scorer's streaming readers (:func:`aranews.inference.readers.read_archive`): a byte-order
    mark is accepted, and undecodable bytes, bad JSON, an unbalanced CSV quote or a cut last line are
    reported with their line instead of failing the whole file.
    """
    from aranews.inference.readers import ARCHIVE_KINDS, detect_format, read_archive

    try:
        fmt = detect_format(path)
    except ValueError:
        raise DataValidationError([f"{path}: unsupported file type {path.suffix!r}; use {ARCHIVE_KINDS}"]) from None
    if not path.exists():
        raise FileNotFoundError(f"data file not found: {path}")
    rows: list[tuple[str, dict[str, Any]]] = []
    problems: list[Problem] = []
    try:
        for row in read_archive(path, fmt):
            if row.problem:
                problems.append(Problem(row.problem[0], f"{row.problem[0]}: {row.problem[1]}", row.location))
            else:
                rows.append((row.location, row.fields))
    except ValueError as exc:  # e.g. a CSV header that cannot be read, a file that is not Parquet
        problems.append(Problem("unreadable_file", str(exc)))
    return rows, problems


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def load_split(
    name: str,
    path: str | Path,
    data: DataConfig,
    tasks: Sequence[TaskConfig],
    title: str = "prepend",
    require_labels: bool = True,
) -> tuple[LabelledSplit, list[Problem]]:
    """Read one split and check each row on its own.

    Args:
        name: ``train``, ``dev``, ``test`` or another name for messages.
        path: the file.
        data: the column names.
        tasks: the tasks whose label columns to read.
        title: the model's title policy (``prepend`` or ``ignore``), passed to :func:`compose_text`.
        require_labels: whether every task's label column must exist.

    Returns:
        The split and the list of problems found (empty when the file is clean).
    """
    path = Path(path)
    rows, problems = _read_rows(path)
    if not rows:
        return LabelledSplit(name, str(path), [], []), [*problems, Problem("no_rows", "no rows of data", str(path))]
    columns = set(rows[0][1])
    required = [data.id_column, data.text_column]
    if require_labels:
        required += [t.column for t in tasks]
    required += sorted({t.pair_column for t in tasks if t.pair_column})
    missing = [c for c in required if c not in columns]
    if missing:
        found = Problem(
            "missing_column", f"missing column(s) {missing}; found {sorted(columns)}", str(path), column=missing[0]
        )
        return LabelledSplit(name, str(path), [], []), [*problems, found]
    split = LabelledSplit(name, str(path), [], [])
    seen: dict[str, int] = {}
    for row_number, (where, row) in enumerate(rows, start=1):
        raw_id = row.get(data.id_column)
        id_check = id_problem(raw_id, data.id_column)
        if id_check is not None:
            empty = id_check[0] == "missing_id"
            detail = f"column {data.id_column!r} is empty" if empty else id_check[1]
            problems.append(Problem(id_check[0], detail, where, column=data.id_column, value=raw_id))
            row_id = f"<row {row_number}>"
        else:
            row_id = str(raw_id)
            if row_id in seen:
                detail = f"duplicate id, first seen on row {seen[row_id]}"
                problems.append(Problem("duplicate_id", detail, where, row_id, data.id_column, raw_id))
            seen.setdefault(row_id, row_number)
        text = _row_text(row, where, row_id, data, problems)
        split.ids.append(row_id)
        split.texts.append(compose_text(text, row.get(data.title_column) if data.title_column else None, title))
        split.locations.append(where)
        _row_pairs_and_labels(split, row, where, row_id, tasks, problems)
    return split, problems


def _row_text(row: dict[str, Any], where: str, row_id: str, data: DataConfig, problems: list[Problem]) -> str:
    """The row's text; a text that is not a string, or is empty, is a problem (the row reads as empty)."""
    text = row.get(data.text_column)
    if not isinstance(text, str):
        detail = f"column {data.text_column!r} must be a string, got {type(text).__name__} {text!r}"
        problems.append(Problem("non_string_text", detail, where, row_id, data.text_column, text))
        return ""
    if not text.strip():
        problems.append(
            Problem("empty_text", f"column {data.text_column!r} is empty", where, row_id, data.text_column, text)
        )
    return text


def _row_pairs_and_labels(
    split: LabelledSplit,
    row: dict[str, Any],
    where: str,
    row_id: str,
    tasks: Sequence[TaskConfig],
    problems: list[Problem],
) -> None:
    """Append the row's pair texts and each task's label value (``None``: unlabelled) to the split."""
    for column in sorted({t.pair_column for t in tasks if t.pair_column}):
        value = row.get(column)
        if not isinstance(value, str) or not value.strip():
            detail = f"column {column!r} must be a non-empty string, got {value!r}"
            problems.append(Problem("missing_pair", detail, where, row_id, column, value))
            value = ""
        split.pairs.setdefault(column, []).append(value)
    for task in tasks:
        value = row.get(task.column)
        if _is_missing(value):
            value = None
        else:
            value, expected = task.kind.parse_value(value)
            if expected is not None:
                raw = row.get(task.column)
                detail = f"column {task.column!r} must be {expected}, got {raw!r}"
                problems.append(Problem("invalid_label", detail, where, row_id, task.column, raw))
        split.labels.setdefault(task.name, []).append(value)


def load_files(
    name: str,
    files: str | Path | Sequence[str | Path],
    data: DataConfig,
    tasks: Sequence[TaskConfig],
    title: str = "prepend",
    require_labels: bool = True,
) -> tuple[LabelledSplit, list[Problem]]:
    """One split from one file, or from several read as one (ids unique across them).

    With several files a row may leave a task's column empty (or a file may lack a task's column
    altogether): it then counts for the other tasks only, so newly labelled rows that carry one task's
    label mix with the old ones; every task needs a label in at least one file.
    """
    paths = [files] if isinstance(files, (str, Path)) else list(files)
    if len(paths) == 1:
        return load_split(name, paths[0], data, tasks, title, require_labels)
    merged = LabelledSplit(name, " + ".join(str(p) for p in paths), [], [])
    problems: list[Problem] = []
    first_file: dict[str, str] = {}
    for path in paths:
        split, found = load_split(name, path, data, tasks, title, require_labels=False)
        problems += found
        for where, row_id in zip(split.locations, split.ids):
            if row_id in first_file:
                problems.append(Problem("duplicate_id", f"duplicate id, also in {first_file[row_id]}", where, row_id))
            first_file.setdefault(row_id, str(path))
        merged.ids += split.ids
        merged.texts += split.texts
        merged.locations += split.locations
        for task in tasks:
            values = split.labels.get(task.name) or [None] * len(split.ids)
            merged.labels.setdefault(task.name, []).extend(values)
        for column, values in split.pairs.items():
            merged.pairs.setdefault(column, []).extend(values)
    for task in tasks if require_labels else ():
        if not any(v is not None for v in merged.labels.get(task.name, [])):
            detail = f"no file has a label in column {task.column!r} (task {task.name!r})"
            problems.append(Problem("no_labels", detail, merged.path, column=task.column))
    return merged, problems


def load_train(
    data: DataConfig, tasks: Sequence[TaskConfig], title: str = "prepend"
) -> tuple[LabelledSplit, list[Problem]]:
    """The training split from ``data.train`` (one file or a list, see :func:`load_files`)."""
    return load_files("train", data.train, data, tasks, title)


def _label_values(values: list[Any]) -> list[str]:
    out: list[str] = []
    for v in values:
        if isinstance(v, list):
            out.extend(v)
        elif v is not None:
            out.append(v)
    return out


def resolve_labels(task: TaskConfig, train: LabelledSplit) -> list[str]:
    """The task's label list: as configured, or the sorted labels seen in training."""
    if task.labels is not None:
        return list(task.labels)
    return sorted(set(_label_values(train.labels.get(task.name, []))))


def validate_splits(
    train: LabelledSplit, evals: Sequence[LabelledSplit], tasks: Sequence[TaskConfig], labels: dict[str, list[str]]
) -> list[Problem]:
    """Checks across rows and splits: label sets, label counts, leakage. Returns the problems."""
    problems: list[Problem] = []
    for task in tasks:
        allowed = set(labels[task.name])
        if len(allowed) < 2:
            detail = f"task {task.name!r}: needs at least two labels, found {sorted(allowed)} in {train.path} column {task.column!r}"
            problems.append(Problem("too_few_labels", detail, column=task.column, value=sorted(allowed)))
        for split in (train, *evals):
            for where, row_id, value in zip(split.locations, split.ids, split.labels.get(task.name, [])):
                values = value if isinstance(value, list) else [value] if value is not None else []
                for v in values:
                    if v not in allowed:
                        detail = (
                            f"column {task.column!r} has label {v!r}, not in the label set {sorted(allowed)} of task "
                            f"{task.name!r}"
                        )
                        problems.append(Problem("unknown_label", detail, where, row_id, task.column, v))
        observed = Counter(_label_values(train.labels.get(task.name, [])))
        if len(observed) < 2:
            detail = (
                f"task {task.name!r}: the training data {train.path} has fewer than two distinct labels "
                f"({dict(observed)}); a classifier cannot be trained"
            )
            problems.append(Problem("too_few_distinct_labels", detail, column=task.column, value=dict(observed)))
        labelled = sum(v is not None for v in train.labels.get(task.name, []))
        if labelled == 0:
            detail = f"task {task.name!r}: no row of {train.path} has a {task.column!r} label"
            problems.append(Problem("no_labels", detail, column=task.column))

    # Leakage: the same input (article text, and target / claim where a task reads one) in train and in an
    # evaluation split inflates every figure. The same tweet with another target is another example.
    def inputs(split: LabelledSplit) -> list[tuple[str, ...]]:
        columns = sorted(split.pairs)
        return [(" ".join(t.split()), *(split.pairs[c][i] for c in columns)) for i, t in enumerate(split.texts)]

    seen = {key: (where, row_id) for key, where, row_id in zip(inputs(train), train.locations, train.ids)}
    for split in evals:
        for key, where, row_id in zip(inputs(split), split.locations, split.ids):
            hit = seen.get(key)
            if hit is not None and key[0]:
                what = "same text" + (" and target/claim" if len(key) > 1 else "")
                detail = f"{what} as {hit[0]} (id {hit[1]!r}) (leakage between train and {split.name})"
                problems.append(Problem("leakage", detail, where, row_id))
    return problems


def load_and_validate(
    data: DataConfig, tasks: Sequence[TaskConfig], title: str = "prepend"
) -> tuple[LabelledSplit, dict[str, LabelledSplit], dict[str, list[str]]]:
    """Read train, dev (and test), validate everything, and resolve each task's labels.

    Args:
        data: files and columns.
        tasks: the tasks to learn.
        title: the model's title policy (``model.title``).

    Returns:
        ``(train, {"dev": ..., "test": ...}, {task: labels})``.

    Raises:
        DataValidationError: listing every problem found, with file, row, id, column and value.
    """
    problems: list[Problem] = []
    train, found = load_train(data, tasks, title)
    problems += found
    evals: dict[str, LabelledSplit] = {}
    for name in ("dev", "test"):
        files = getattr(data, name)
        if files:
            split, found = load_files(name, files, data, tasks, title)
            evals[name] = split
            problems += found
    labels = {t.name: resolve_labels(t, train) for t in tasks}
    problems += validate_splits(train, list(evals.values()), tasks, labels)
    if problems:
        raise DataValidationError(problems)
    for split in (train, *evals.values()):
        counts = {t.name: sum(v is not None for v in split.labels[t.name]) for t in tasks}
        logger.info("%s: %d articles from %s; labelled per task: %s", split.name, len(split), split.path, counts)
    return train, evals, labels


def label_tensor(task: TaskSpec, values: list[Any]) -> torch.Tensor:
    """Class ids (``-100`` where unlabelled), or for a multi-label task a 0/1 matrix (``-100`` rows)."""
    return task.kind.label_tensor(task.labels, values)


@dataclass
class EncodedSplit:
    """A split with its articles windowed once per input group, and its label tensors."""

    split: LabelledSplit
    groups: dict[str | None, list[EncodedArticle]]  # by pair column; None: the article alone
    labels: dict[str, torch.Tensor]

    def truncation(self) -> dict[str, Any]:
        """Articles, truncated articles, dropped tokens, windows, mean and max tokens (first input group)."""
        first = next(iter(self.groups.values()))
        tokens = [a.n_tokens for a in first]
        return {
            "articles": len(first),
            "truncated": sum(a.truncated for a in first),
            "dropped_tokens": sum(a.dropped_tokens for a in first),
            "windows": sum(len(a.input_ids) for a in first),
            "mean_tokens": float(np.mean(tokens)) if tokens else 0.0,
            "max_tokens": max(tokens, default=0),
        }

    def labelled(self) -> dict[str, int]:
        """Per task, how many rows carry its label."""
        out = {}
        for name, tensor in self.labels.items():
            present = tensor != -100
            out[name] = int(present.all(dim=-1).sum() if tensor.dim() == 2 else present.sum())
        return out


def encode_split(windower: ArticleWindower, split: LabelledSplit, specs: Sequence[TaskSpec]) -> EncodedSplit:
    """Window a split once per input group and build its label tensors; warn about truncation."""
    groups: dict[str | None, list[EncodedArticle]] = {}
    for column in input_groups(specs):  # None: the article alone
        groups[column] = windower.encode(split.texts, None if column is None else split.pairs[column])
    labels = {spec.name: label_tensor(spec, split.labels[spec.name]) for spec in specs}
    data = EncodedSplit(split, groups, labels)
    stats = data.truncation()
    if stats["truncated"]:
        logger.warning(
            "%s: %d of %d articles exceed max_length=%d; %d tokens not seen by the model (long_document=%s)",
            split.name,
            stats["truncated"],
            stats["articles"],
            windower.max_length,
            stats["dropped_tokens"],
            windower.strategy,
        )
    return data
