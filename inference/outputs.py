"""The scorer's output: its columns, the scored row of each article, the part files and their assembly.

One schema for every writer and reader: :func:`output_columns` lists the columns, :func:`score_records`
builds the rows (one per article, errors for the ones the classifier skipped), :func:`write_part` writes a
chunk's rows atomically (JSON Lines or Parquet, with the id and kept columns as text in Parquet), and
:func:`assemble` joins the parts into the final file (CSV cells made safe for spreadsheets).
:func:`summarise` counts from the files written, so a summary describes what a user receives.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aranews.inference.config import TaskSpec
from aranews.inference.dates import parse_date
from aranews.inference.files import atomic_output, atomic_write_text
from aranews.inference.readers import iter_scores
from aranews.inference.records import RowSettings

if TYPE_CHECKING:
    from aranews.inference.classifier import NewsClassifier, PreparedBatch

__all__ = [
    "PROVENANCE_COLUMNS",
    "ScoreSummary",
    "assemble",
    "csv_safe",
    "csv_safe_columns",
    "default_shares_method",
    "label_shares",
    "output_columns",
    "prepare_records",
    "read_probabilities",
    "reserved_columns",
    "score_column",
    "score_records",
    "summarise",
    "task_columns",
    "write_part",
    "write_probabilities",
]


@dataclass
class ScoreSummary:
    """What a scoring run did. ``rows == scored + errors`` always holds for a finished run."""

    input: str
    output: str
    errors_file: str
    rows: int = 0
    scored: int = 0
    errors: int = 0
    error_reasons: dict[str, int] = field(default_factory=dict)
    label_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    truncated: int = 0
    flagged_no_arabic: int = 0
    dates_parsed: int = 0
    dates_unparsed: int = 0  # a date column's value that could not be read: kept as written, row scored
    seconds: float = 0.0
    articles_per_second: float = 0.0
    resumed: bool = False
    provenance: dict[str, Any] = field(default_factory=dict)
    shares: dict[str, Any] = field(default_factory=dict)  # per single-label task: estimated label shares
    shares_by: dict[str, Any] = field(default_factory=dict)  # the same per period and per kept `source`
    uncertain: dict[str, int] = field(default_factory=dict)  # per task with abstention: rows given no label

    @property
    def complete(self) -> bool:
        return self.rows == self.scored + self.errors

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoreSummary:
        """A summary from its saved JSON (extra keys, such as the job's identity, are left out)."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def prepare_records(classifier: NewsClassifier, records: list[dict[str, Any]], s: RowSettings) -> PreparedBatch | None:
    """The text half of scoring a chunk (cleaning, tokenising, windowing): runs in the reader thread."""
    if not records:
        return None
    return classifier.prepare(
        [r["text"] for r in records],
        titles=[r["title"] for r in records],
        pairs={c: [r["pairs"][c] for r in records] for c in s.pair_columns} or None,
        score_non_arabic=s.score_non_arabic,
    )


def score_records(
    classifier: NewsClassifier,
    records: list[dict[str, Any]],
    s: RowSettings,
    model_hash: str,
    prepared: PreparedBatch | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Scored rows, and error rows for the articles the classifier skipped (with their reasons)."""
    from aranews.inference.inputs import SKIP_REASONS  # imported here: the schema itself needs no torch

    if not records:
        return [], []
    result = classifier.run(prepared if prepared is not None else prepare_records(classifier, records, s))
    schema = classifier.config.schema_id
    decisions = classifier.decide(result, abstain_below=s.abstain_below)
    abstains = abstaining(classifier.tasks, s)
    scored, skipped = [], []
    for i, (record, decision) in enumerate(zip(records, decisions, strict=True)):
        reason = result.skipped[i]
        if reason is not None:
            skipped.append(
                {"id": record["id"], "location": record["location"], "reason": reason, "detail": SKIP_REASONS[reason]}
            )
            continue
        row: dict[str, Any] = {"id": record["id"]}
        for task in classifier.tasks:
            row[task.name], row[score_column(task.name)] = task.kind.cell(decision[task.name])
            if task.name in abstains:
                row[f"{task.name}_uncertain"] = bool(decision[task.name].get("uncertain"))
            if s.all_probabilities:
                row[f"{task.name}_probs"] = json.dumps(
                    {
                        label: round(float(p), 6)
                        for label, p in zip(task.labels, result.probs[task.name][i], strict=True)
                    },
                    ensure_ascii=False,
                )
        for column, value in record.get("keep", {}).items():
            row[column] = value
        if s.date_column:
            parsed = parse_date(record.get("keep", {}).get(s.date_column))
            row["date_parsed"] = parsed.isoformat() if parsed else None
        article = result.articles[i]
        row["n_tokens"] = article.n_tokens
        row["truncated"] = article.truncated
        row["boilerplate_chars"] = article.boilerplate_chars
        row["no_arabic"] = result.no_arabic[i]
        row[PROBS_KEY] = {t.name: result.probs[t.name][i].tolist() for t in classifier.tasks}  # for the shares
        row["model_sha256"] = model_hash[:16]
        row["label_schema"] = schema
        scored.append(row)
    return scored, skipped


def write_probabilities(
    parts: Path, index: int, rows: list[dict[str, Any]], tasks: Sequence[str], source_column: str | None = None
) -> None:
    """Take each scored row's probabilities out of it (they are not an output column) into one ``.npy`` part per
    task, with the row's day and source beside them (``keys-*.json``), for the label shares computed at the
    commit, over the archive and per period and source (:mod:`aranews.inference.shares`)."""
    import numpy as np

    probabilities = [row.pop(PROBS_KEY, None) for row in rows]
    for j, task in enumerate(tasks):
        matrix = np.asarray([p[task] for p in probabilities if p is not None], dtype=np.float32)
        with atomic_output(parts / f"probs-{index:06d}-{j}.npy", "wb") as handle:
            np.save(handle, matrix, allow_pickle=False)
    keys = [
        [(row.get("date_parsed") or "")[:10] or None, as_text(row.get(source_column)) if source_column else None]
        for row, p in zip(rows, probabilities, strict=True)
        if p is not None
    ]
    atomic_write_text(parts / f"keys-{index:06d}.json", json.dumps(keys, ensure_ascii=False))


def read_probabilities(parts: Path, j: int, n_labels: int) -> Any:
    """Task ``j``'s probabilities of every scored row, in archive order (the chunks' parts joined)."""
    import numpy as np

    arrays = [np.load(p, allow_pickle=False) for p in sorted(parts.glob(f"probs-*-{j}.npy"))]
    arrays = [a.reshape(-1, n_labels) for a in arrays]
    return np.concatenate(arrays) if arrays else np.zeros((0, n_labels), dtype=np.float32)


def read_keys(parts: Path) -> list[list[str | None]]:
    """Every scored row's ``[day, source]``, in the order of :func:`read_probabilities` (parts of a job started
    before they were written: none, and no shares per period or source)."""
    keys: list[list[str | None]] = []
    for path in sorted(parts.glob("keys-*.json")):
        keys.extend(json.loads(path.read_text(encoding="utf-8")))
    return keys


def default_shares_method(task: TaskSpec) -> str:
    """PACC where the model carries its dev error rates, else PCC (models trained before they were stored)."""
    return "pacc" if task.dev_rates else "pcc"


def period_unit(days: Sequence[str]) -> str:
    """``week`` when the dated rows span at most 120 days, else ``month`` (the report's rule)."""
    from datetime import date

    dated = sorted(d for d in days if d)
    if not dated:
        return "month"
    return "week" if (date.fromisoformat(dated[-1]) - date.fromisoformat(dated[0])).days <= 120 else "month"


def period_of(day: str | None, unit: str) -> str | None:
    """The period a day falls in: ``YYYY-MM``, or the Monday (``YYYY-MM-DD``) that starts its week."""
    from datetime import date, timedelta

    if not day:
        return None
    if unit == "month":
        return day[:7]
    d = date.fromisoformat(day)
    return (d - timedelta(days=d.weekday())).isoformat()


MAX_GROUPS = 60  # periods, or sources, with shares estimated; the largest sources first


def label_shares(
    tasks: Sequence[TaskSpec], parts: Path, method: str | None, level: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per single-label task, the estimated share of each label with its interval and the raw count (CC), over
    the archive; and the same per period (when rows have dates) and per source (when a ``source`` column is
    kept), each group with its own interval or "too few rows". Memory: the probabilities (rows x labels)."""
    import numpy as np

    from aranews.inference.shares import DevRates, estimate_shares

    keys = read_keys(parts)
    out: dict[str, Any] = {}
    grouped: dict[str, Any] = {}
    for j, task in enumerate(tasks):
        if not task.kind.one_label_per_row:
            continue
        probs = read_probabilities(parts, j, len(task.labels))
        dev = None
        if task.dev_rates:
            dev = DevRates(np.asarray(task.dev_rates["truth"]), np.asarray(task.dev_rates["probs"], dtype=np.float64))
        chosen = method or default_shares_method(task)  # an adjusted method without dev rates: refused at the start
        out[task.name] = estimate_shares(chosen, probs, task.labels, dev, level=level)
        out[task.name]["raw_count"] = estimate_shares("cc", probs, task.labels, level=level)["labels"]
        if dev is None:
            out[task.name]["note"] = "no dev error rates in this model: shares by PCC and raw count only"
        if len(keys) == len(probs):
            grouped[task.name] = _grouped_shares(keys, probs, task.labels, dev, chosen, level)
    return out, grouped


def _grouped_shares(keys, probs, labels, dev, method: str, level: float) -> dict[str, Any]:
    """``{"unit", "period": {period: shares}, "source": {source: shares}}`` for the groups that have rows."""
    import numpy as np

    from aranews.inference.shares import estimate_shares

    unit = period_unit([day for day, _ in keys if day])
    result: dict[str, Any] = {"unit": unit}
    for name, group_of in (("period", lambda k: period_of(k[0], unit)), ("source", lambda k: k[1])):
        members: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            group = group_of(key)
            if group is not None:
                members.setdefault(group, []).append(i)
        if name == "source":
            chosen = sorted(members, key=lambda g: (-len(members[g]), g))[:MAX_GROUPS]
        else:
            chosen = sorted(members)[-MAX_GROUPS:]  # the latest periods
        result[name] = {
            g: estimate_shares(method, probs[np.asarray(members[g])], labels, dev, level=level) for g in sorted(chosen)
        }
    return result


def write_part(path: Path, rows: list[dict[str, Any]], fmt: str, text_columns: tuple[str, ...] = ()) -> None:
    """One chunk's rows, atomically. In Parquet the ``text_columns`` (the id and the kept archive columns,
    whose values may change type from row to row: ``7`` then ``"a7"``, ``3`` then ``"n/a"``) are written
    as text, so every part has one type per column and the parts always assemble."""
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = [{k: as_text(v) if k in text_columns else v for k, v in row.items()} for row in rows]
        with atomic_output(path, "wb") as handle:
            pq.write_table(pa.Table.from_pylist(rows), handle)
    else:
        with atomic_output(path) as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")


def as_text(value: Any) -> str | None:
    """A cell as text: strings unchanged, ``None`` stays null, anything else as its JSON text."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


# Cells starting with one of these get a leading ' in CSV output: a spreadsheet would run the first five as a
# formula, and a cell that already starts with ' is prefixed too, so readers undo exactly one ' (lossless).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


PROBS_KEY = "__probabilities__"  # each scored row's probabilities, kept in .npy parts for the shares, not written
PROVENANCE_COLUMNS = ("n_tokens", "truncated", "boilerplate_chars", "no_arabic", "model_sha256", "label_schema")


def score_column(task: str) -> str:
    """The column of a task's score (the probability of its label, or the highest of a multi-label's labels)."""
    return f"{task}_score"


def task_columns(task: TaskSpec, all_probabilities: bool = False, abstains: bool = False) -> list[str]:
    """A task's output columns: its label (``|``-joined for multi-label; empty when it abstained), the score,
    whether it abstained, and the probabilities."""
    columns = [task.name, score_column(task.name)] + ([f"{task.name}_uncertain"] if abstains else [])
    return columns + ([f"{task.name}_probs"] if all_probabilities else [])


def abstaining(tasks: Sequence[TaskSpec], s: RowSettings) -> set[str]:
    """The tasks that may give no label: single-label tasks with an ``abstain_below`` (the job's or the model's)."""
    return {t.name for t in tasks if t.kind.one_label_per_row and (s.abstain_below or t.abstain_below) is not None}


def output_columns(tasks: Sequence[TaskSpec], s: RowSettings) -> list[str]:
    """Every column of a scorer output, in order: the one definition the scorer, ``report`` and CSV use."""
    columns, abstains = ["id"], abstaining(tasks, s)
    for task in tasks:
        columns += task_columns(task, s.all_probabilities, task.name in abstains)
    columns += list(s.keep_columns) + (["date_parsed"] if s.date_column else [])
    return columns + list(PROVENANCE_COLUMNS)


def reserved_columns(tasks: Sequence[TaskSpec]) -> set[str]:
    """Names a kept archive column may not have: the scorer's own columns."""
    return {"id", "date_parsed", *PROVENANCE_COLUMNS} | {c for t in tasks for c in task_columns(t, True, True)}


def csv_safe_columns(classifier: NewsClassifier) -> list[str]:
    """The text columns of a CSV output whose cells could start a spreadsheet formula."""
    return ["id", *(t.name for t in classifier.tasks)]


def csv_safe(row: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    """Prefix ``'`` to text cells a spreadsheet would run as a formula (``=cmd|...``, ``@SUM(...)``)."""
    for column in columns:
        value = row.get(column)
        if isinstance(value, str) and value.startswith(_FORMULA_START):
            row[column] = "'" + value
    return row


def assemble(
    parts: list[Path], output: Path, fmt: str, columns: list[str], safe_columns: list[str] | None = None
) -> None:
    """Join the part files into ``output`` (atomically)."""
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        tables = [pq.read_table(p) for p in parts if p.stat().st_size]
        non_empty = [t for t in tables if t.num_rows]
        table = (
            pa.concat_tables(non_empty, promote_options="default") if non_empty else pa.table({c: [] for c in columns})
        )
        with atomic_output(output, "wb") as out:
            pq.write_table(table, out)
        return
    with atomic_output(output, newline="") as out:
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="raise") if fmt == "csv" else None
        if writer:
            writer.writeheader()
        for part in parts:
            with part.open(encoding="utf-8") as handle:
                for line in handle:
                    if writer:
                        writer.writerow(csv_safe(json.loads(line), safe_columns or []))
                    else:
                        out.write(line)


def summarise(
    summary: ScoreSummary,
    output: Path,
    errors_file: Path,
    fmt: str,
    classifier: NewsClassifier,
    date_column: str | None = None,
) -> None:
    """Count from the files actually written, so the summary describes what a user receives."""
    labels: dict[str, Counter] = {t.name: Counter() for t in classifier.tasks}
    uncertain: Counter = Counter()
    for row in iter_scores(output, fmt):
        summary.scored += 1
        truthy = (True, "True", "true")
        summary.truncated += row["truncated"] in truthy
        summary.flagged_no_arabic += row["no_arabic"] in truthy
        if "date_parsed" in row:
            if row["date_parsed"] not in (None, ""):
                summary.dates_parsed += 1
            elif row.get(date_column) not in (None, ""):
                summary.dates_unparsed += 1
        for task in classifier.tasks:
            labels[task.name].update(task.kind.cell_labels(row[task.name]))
            if row.get(f"{task.name}_uncertain") in truthy:
                uncertain[task.name] += 1
            elif f"{task.name}_uncertain" in row:
                uncertain.setdefault(task.name, 0)
    reasons: Counter = Counter()
    with errors_file.open(encoding="utf-8") as handle:
        for line in handle:
            reasons[json.loads(line)["reason"]] += 1
    summary.errors = sum(reasons.values())
    summary.error_reasons = dict(sorted(reasons.items()))
    summary.label_counts = {k: dict(sorted(v.items())) for k, v in labels.items()}
    summary.uncertain = dict(uncertain)
