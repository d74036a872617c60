"""A round trip through Label Studio: selected articles out as tasks with the model's pre-annotations,
the analysts' labels back in as training data.

Export (``aranews labelstudio export``) writes, from a selection file (``aranews select``):

* ``tasks.json``: Label Studio's JSON import format, one task per article (``data`` holds the id, text,
  title and pair columns) with one prediction whose ``result`` has one ``choices`` item per task and
  whose ``score`` is the model's confidence (1 - uncertainty), so Label Studio's "Prediction score"
  column sorts the least confident first;
* ``<tasks>.config.xml``: the labelling interface for the model's schema: the text read right to left,
  one ``Choices`` control per task (``single`` or ``multiple`` choice).

Import (``aranews labelstudio import``) reads Label Studio's JSON export back into the training data
format: per task, the annotators' choice; cancelled (skipped) annotations are left out; a ground-truth
annotation wins; otherwise annotators who disagree make a conflict, reported with every annotator's
choice, and that task's label stays empty. Every task that yields no label is written to the errors file
with its reason, so ``rows = labelled + errors`` always holds.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from aranews.inference.config import TaskSpec

__all__ = ["ImportSummary", "export_tasks", "import_export", "labelling_config"]

TEXT_NAME = "text"


def labelling_config(tasks: Sequence[TaskSpec], title: bool = True, pair_columns: Sequence[str] = ()) -> str:
    """Label Studio's labelling interface for these tasks (XML)."""
    lines = ['<View style="direction: rtl; text-align: right">']
    if title:
        lines.append('  <Header value="$title"/>')
    for column in pair_columns:
        lines.append(f'  <Header value="{column}: ${column}" size="5"/>')
    lines.append(f'  <Text name="{TEXT_NAME}" value="$text"/>')
    for task in tasks:
        choice = "multiple" if task.problem_type == "multi_label" else "single-radio"
        lines.append(f'  <Header value={quoteattr(task.name)} size="4"/>')
        lines.append(
            f'  <Choices name={quoteattr(task.name)} toName="{TEXT_NAME}" choice="{choice}" showInline="true">'
        )
        lines += [f"    <Choice value={quoteattr(label)}/>" for label in task.labels]
        lines.append("  </Choices>")
    lines.append("</View>")
    return "\n".join(lines) + "\n"


def _choices(task: TaskSpec, suggestion: Any) -> list[str]:
    if not isinstance(suggestion, dict):
        return []
    if task.problem_type == "multi_label":
        return [v for v in suggestion.get("labels", []) if v in task.labels]
    label = suggestion.get("label")
    return [label] if label in task.labels else []


def export_tasks(
    selection: str | Path,
    out: str | Path,
    tasks: Sequence[TaskSpec],
    *,
    model_version: str = "aranews",
    text_column: str = "text",
    title_column: str = "title",
    pair_columns: Sequence[str] = (),
) -> tuple[Path, Path, int]:
    """Write Label Studio tasks (with pre-annotations) and the labelling config for a selection file.

    Returns:
        The tasks file, the config file and the number of tasks.

    Raises:
        ValueError: a selection row is not JSON or lacks its id or text (file and line named).
    """
    out = Path(out)
    items = []
    with Path(selection).open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{selection}:{line_number}: not a JSON object ({exc})") from None
            if not isinstance(row, dict) or row.get("id") is None or not isinstance(row.get(text_column), str):
                raise ValueError(f"{selection}:{line_number}: a selection row needs 'id' and a {text_column!r} string")
            data = {"id": row["id"], "text": row[text_column], "title": row.get(title_column) or ""}
            data.update({c: row.get(c) for c in pair_columns})
            result = []
            for task in tasks:
                chosen = _choices(task, row.get(f"suggested_{task.name}"))
                if chosen:
                    result.append(
                        {
                            "from_name": task.name,
                            "to_name": TEXT_NAME,
                            "type": "choices",
                            "value": {"choices": chosen},
                        }
                    )
            item: dict[str, Any] = {"data": data}
            if result:
                confidence = 1.0 - float(row.get("uncertainty", 0.0))
                item["predictions"] = [
                    {"model_version": model_version, "score": round(confidence, 6), "result": result}
                ]
            items.append(item)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(items, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    config = out.with_suffix(".config.xml")
    config.write_text(labelling_config(tasks, title=True, pair_columns=pair_columns), encoding="utf-8")
    return out, config, len(items)


@dataclass
class ImportSummary:
    """What an import read and wrote: ``tasks == labelled + errors``."""

    tasks: int = 0
    labelled: int = 0
    errors: int = 0
    error_reasons: dict[str, int] = field(default_factory=dict)
    conflicts: int = 0
    cancelled_annotations: int = 0
    label_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    unknown_labels: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _annotation_choices(annotation: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in annotation.get("result") or []:
        if isinstance(item, dict) and item.get("type") == "choices":
            choices = (item.get("value") or {}).get("choices")
            if isinstance(choices, list) and item.get("from_name"):
                out[str(item["from_name"])] = [str(c) for c in choices]
    return out


def _decide(votes: list[tuple[Any, bool, list[str]]], multi: bool) -> tuple[Any, list[Any] | None]:
    """The label from annotators' votes ``(annotator, ground_truth, choices)``, or a conflict."""
    truth = [v for v in votes if v[1]]
    if truth:
        votes = truth[:1]
    values = [tuple(sorted(c)) if multi else (c[0] if c else None) for _, _, c in votes]
    counts = Counter(values)
    if len(counts) == 1:
        value = values[0]
        return (list(value) if multi else value), None
    return None, [{"annotator": a, "choices": c} for a, _, c in votes]


def import_export(
    export: str | Path,
    out: str | Path,
    tasks: Sequence[TaskSpec] | None = None,
    *,
    errors: str | Path | None = None,
    text_column: str = "text",
    title_column: str = "title",
) -> ImportSummary:
    """Read a Label Studio JSON export into training rows (JSON Lines); write what could not be used.

    Args:
        export: Label Studio's JSON export (a list of tasks with ``annotations``).
        out: the training file to write (id, text, title, pair columns, one column per task).
        tasks: the model's tasks (their names and labels); default: every ``choices`` control seen.
        errors: rows not labelled, with the reason (default ``<out>.errors.jsonl``).

    Raises:
        ValueError: the file is not a Label Studio JSON export (named, with what was found).
    """
    export, out = Path(export), Path(out)
    errors = Path(errors) if errors else out.with_name(out.name + ".errors.jsonl")
    try:
        items = json.loads(export.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{export}: not JSON ({exc}); export the project from Label Studio as JSON") from None
    if not isinstance(items, list):
        raise ValueError(f"{export}: expected a list of tasks (Label Studio's JSON export), got {type(items).__name__}")
    specs = {t.name: t for t in tasks or []}
    summary = ImportSummary(tasks=len(items))
    rows, bad = [], []

    def fail(position: int, item: Any, reason: str, detail: Any) -> None:
        data = item.get("data") if isinstance(item, dict) else None
        bad.append(
            {
                "task": position,
                "label_studio_id": item.get("id") if isinstance(item, dict) else None,
                "id": data.get("id") if isinstance(data, dict) else None,
                "reason": reason,
                "detail": detail,
            }
        )
        summary.error_reasons[reason] = summary.error_reasons.get(reason, 0) + 1

    for position, item in enumerate(items, 1):
        data = item.get("data") if isinstance(item, dict) else None
        if not isinstance(data, dict) or data.get("id") is None or not isinstance(data.get("text"), str):
            fail(position, item, "unreadable_task", "a task needs data.id and a data.text string")
            continue
        votes_by_task: dict[str, list[tuple[Any, bool, list[str]]]] = {}
        for annotation in item.get("annotations") or []:
            if not isinstance(annotation, dict):
                continue
            if annotation.get("was_cancelled"):
                summary.cancelled_annotations += 1
                continue
            annotator = annotation.get("completed_by")
            annotator = annotator.get("email", annotator.get("id")) if isinstance(annotator, dict) else annotator
            for name, choices in _annotation_choices(annotation).items():
                votes_by_task.setdefault(name, []).append((annotator, bool(annotation.get("ground_truth")), choices))
        if not votes_by_task:
            fail(position, item, "not_annotated", "no submitted annotation (cancelled ones are left out)")
            continue
        row: dict[str, Any] = {"id": data["id"], text_column: data["text"]}
        if data.get("title"):
            row[title_column] = data["title"]
        for key, value in data.items():
            if key not in ("id", "text", "title"):
                row[key] = value
        names = list(specs) or sorted(votes_by_task)
        conflicts = {}
        for name in names:
            votes = votes_by_task.get(name)
            multi = specs[name].problem_type == "multi_label" if name in specs else False
            if not votes:
                row[name] = None  # this task was not labelled: the row trains the other tasks
                continue
            value, conflict = _decide(votes, multi)
            if conflict is not None:
                conflicts[name] = conflict
                row[name] = None
                continue
            row[name] = value
            for label in value if multi else [value]:
                if name in specs and label not in specs[name].labels:
                    known = summary.unknown_labels.setdefault(name, [])
                    if label not in known:
                        known.append(label)
        if conflicts:
            summary.conflicts += 1
            fail(position, item, "annotator_conflict", conflicts)
            continue
        if all(row.get(name) is None for name in names):
            fail(position, item, "no_label", f"no annotation chose a label for {names}")
            continue
        rows.append(row)
        for name in names:
            value = row.get(name)
            if value is None:
                continue
            counts = summary.label_counts.setdefault(name, {})
            for label in value if isinstance(value, list) else [value]:
                counts[label] = counts.get(label, 0) + 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    errors.write_text("".join(json.dumps(b, ensure_ascii=False) + "\n" for b in bad), encoding="utf-8")
    summary.labelled, summary.errors = len(rows), len(bad)
    return summary
