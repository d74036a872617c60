"""One article record: how a raw archive row is checked and turned into what the model reads.

Shared by the scorer, ``aranews predict --input``, ``select`` and ``check-precision``: the same ids (strings or
integers, unique), texts, titles and pair columns are accepted everywhere, and a row that is not is one
``(reason, detail)`` problem, never an exception. Also the two ways values are made safe to write:
:func:`json_safe` for ids and details named in error rows, :func:`kept_value` for archive columns kept in
the output.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from aranews.inference.config import TaskSpec
from aranews.inference.files import finite
from aranews.inference.readers import RawRow

__all__ = ["MAX_CHARS", "RowSettings", "check_row", "chunks", "id_problem", "json_safe", "kept_value", "row_error"]

MAX_CHARS = 200_000  # the default longest text (with its title), in characters: longer is ``oversized_text``


@dataclass
class RowSettings:
    """How the archive's rows are read and checked (shared by the scorer and ``aranews predict --input``)."""

    id_column: str
    text_column: str
    title_column: str | None
    pair_columns: dict[str, str]  # model pair column -> archive column
    max_chars: int
    score_non_arabic: bool
    all_probabilities: bool
    keep_columns: tuple[str, ...] = ()  # archive columns copied into the output (date, source, url...)
    date_column: str | None = None  # one of them, also parsed into ``date_parsed`` (ISO)
    abstain_below: float | None = None  # overrides the model's: no label below this top probability

    @classmethod
    def for_tasks(
        cls,
        tasks: Sequence[TaskSpec],
        *,
        id_column: str = "id",
        text_column: str = "text",
        title_column: str | None = "title",
        pair_columns: dict[str, str] | None = None,
        max_chars: int = MAX_CHARS,
        score_non_arabic: bool = False,
        all_probabilities: bool = False,
        keep_columns: Sequence[str] = (),
        date_column: str | None = None,
        abstain_below: float | None = None,
    ) -> RowSettings:
        """The settings for a model's tasks: every pair column the tasks read, found in the archive under
        ``pair_columns[model column]`` (default: the same name)."""
        needed = sorted({t.pair_column for t in tasks if t.pair_column})
        return cls(
            id_column,
            text_column,
            title_column,
            {c: (pair_columns or {}).get(c, c) for c in needed},
            max_chars,
            score_non_arabic,
            all_probabilities,
            tuple(keep_columns),
            date_column,
            abstain_below,
        )


_SURROGATE = re.compile("[\ud800-\udfff]")


def json_safe(value: Any) -> Any:
    """A value that can be written to JSON (and UTF-8): kept when it can, else its ``repr``, shortened.

    For error details and ids named in messages; kept archive columns go through :func:`kept_value`."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str) and not _SURROGATE.search(value):
        return value
    text = repr(value)
    text = _SURROGATE.sub("\ufffd", text)
    return text if len(text) <= 200 else text[:200] + "..."


def kept_value(value: Any) -> Any:
    """An archive value copied into the output (``keep_columns``), whole and valid in every format.

    Strings, integers, booleans, finite numbers and ``None`` are kept; NaN and Infinity become ``None``
    (JSON has neither); lists and objects become their JSON text (never cut); dates their ISO form;
    anything else its ``str``. Lone surrogates, which UTF-8 cannot hold, become U+FFFD.
    """
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (dict, list, tuple)):
        try:
            text = json.dumps(finite(value), ensure_ascii=False, default=str, allow_nan=False)
        except (TypeError, ValueError, RecursionError):  # keys JSON cannot hold, or nested too deeply
            text = str(value)
    elif isinstance(value, str):
        text = value
    elif hasattr(value, "isoformat"):
        text = value.isoformat()
    else:
        text = str(value)
    return _SURROGATE.sub("\ufffd", text)


def id_problem(raw_id: Any, column: str) -> tuple[str, str] | None:
    """Why ``raw_id`` cannot be an article id, as ``(reason, detail)``, or ``None``: ids are non-empty strings
    (valid Unicode) or integers, in the scorer, ``predict --input``, training data and Label Studio imports."""
    if raw_id is None or (isinstance(raw_id, str) and not raw_id.strip()):
        return "missing_id", f"column {column!r} is missing or empty"
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
        return (
            "invalid_id",
            f"column {column!r} is {type(raw_id).__name__} {json_safe(raw_id)}; ids must be strings or integers",
        )
    if isinstance(raw_id, str) and _SURROGATE.search(raw_id):
        return "invalid_id", f"column {column!r} holds a lone surrogate (not valid Unicode)"
    return None


def check_row(row: RawRow, s: RowSettings, seen: set[str]) -> tuple[dict[str, Any] | None, tuple[str, str] | None]:
    """Validate one row's fields: ``(record, None)`` or ``(None, (reason, detail))``.

    Ids are strings or integers; an integer id and its decimal string are the same id (they are in any
    text output). Whether the text can be classified (empty, also after cleaning, or without Arabic) is
    decided by :meth:`NewsClassifier.classify`, the same policy as ``predict``.
    """
    if row.problem:
        return None, row.problem
    f = row.fields
    raw_id = f.get(s.id_column)
    problem = id_problem(raw_id, s.id_column)
    if problem:
        return None, problem
    row_id = str(raw_id)
    if row_id in seen:
        return None, ("duplicate_id", f"id {row_id!r} already seen earlier in the archive")
    seen.add(row_id)
    text = f.get(s.text_column)
    if text is None:
        return None, ("missing_text", f"column {s.text_column!r} is missing")
    if not isinstance(text, str):
        return None, ("non_string_text", f"column {s.text_column!r} is {type(text).__name__}, not a string")
    title = f.get(s.title_column) if s.title_column else None
    title = title if isinstance(title, str) else None
    if len(text) + len(title or "") > s.max_chars:
        return None, ("oversized_text", f"{len(text) + len(title or '')} characters > max_chars={s.max_chars}")
    pairs = {}
    for model_column, column in s.pair_columns.items():
        value = f.get(column)
        if not isinstance(value, str) or not value.strip():
            return None, ("missing_pair", f"column {column!r} (the task's {model_column!r}) is missing or empty")
        pairs[model_column] = value
    for name, value in ((s.text_column, text), (s.title_column, title), *pairs.items()):
        if value and _SURROGATE.search(value):
            return None, ("invalid_unicode", f"column {name!r} holds a lone surrogate (not valid Unicode)")
    record = {"id": raw_id, "text": text, "title": title, "pairs": pairs, "location": row.location}
    if s.keep_columns:
        record["keep"] = {c: kept_value(f.get(c)) for c in s.keep_columns}
    return record, None


def chunks(rows: Iterator[RawRow], size: int) -> Iterator[list[RawRow]]:
    """``rows`` in lists of ``size`` (the last may be shorter)."""
    chunk: list[RawRow] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def row_error(row: RawRow, problem: tuple[str, str], id_column: str) -> dict[str, Any]:
    """The errors-file row of an input row that is not scored: its id (as far as it can be written), where
    it is, and why."""
    return {
        "id": json_safe((row.fields or {}).get(id_column)),
        "location": row.location,
        "reason": problem[0],
        "detail": json_safe(problem[1]),
    }
