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
from aranews.inference.files import atomic_output, atomic_write_text, check_output_path, refuse_clashes
from aranews.inference.records import id_problem, json_safe
from aranews.inference.task_kinds import DEFAULT_KIND, TaskKind

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
        choice = task.kind.label_studio_choice
        lines.append(f'  <Header value={quoteattr(task.name)} size="4"/>')
        lines.append(
            f'  <Choices name={quoteattr(task.name)} toName="{TEXT_NAME}" choice="{choice}" showInline="true">'
        )
        lines += [f"    <Choice value={quoteattr(label)}/>" for label in task.labels]
        lines.append("  </Choices>")
    lines.append("</View>")
    return "\n".join(lines) + "\n"


def _choices(task: TaskSpec, suggestion: Any) -> list[str]:
    return [v for v in task.kind.decision_labels(suggestion) if v in task.labels]


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
    config = out.with_suffix(".config.xml")
    refuse_clashes({"--selection": selection}, {"--out": out, "the labelling config": config})
    check_output_path("--out", out, create_parent=True)
    items = []
    with Path(selection).open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{selection}:{line_number}: not a JSON object ({exc})") from None
            except RecursionError:
                raise ValueError(f"{selection}:{line_number}: nested too deeply to read as JSON") from None
            if (
                not isinstance(row, dict)
                or id_problem(row.get("id"), "id")
                or not isinstance(row.get(text_column), str)
            ):
                raise ValueError(
                    f"{selection}:{line_number}: a selection row needs an 'id' (string or integer) and a "
                    f"{text_column!r} string"
                )
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
                confidence = _confidence(row.get("uncertainty", 0.0), selection, line_number)
                item["predictions"] = [
                    {"model_version": model_version, "score": round(confidence, 6), "result": result}
                ]
            items.append(item)
    atomic_write_text(out, json.dumps(items, ensure_ascii=False, indent=1) + "\n")
    atomic_write_text(config, labelling_config(tasks, title=True, pair_columns=pair_columns))
    return out, config, len(items)


def _confidence(uncertainty: Any, selection: str | Path, line_number: int) -> float:
    """Label Studio's prediction score: 1 - the selection's uncertainty (a number in [0, 1])."""
    if isinstance(uncertainty, bool) or not isinstance(uncertainty, (int, float)) or not 0 <= uncertainty <= 1:
        raise ValueError(
            f"{selection}:{line_number}: uncertainty {json_safe(uncertainty)}; expected a number in [0, 1]"
        )
    return 1.0 - float(uncertainty)


@dataclass
class ImportSummary:
    """What an import read and wrote: ``tasks == labelled + errors`` (every task is a training row or an
    error row); ``partial`` labelled rows also have an error row for the task whose annotators disagreed."""

    tasks: int = 0
    labelled: int = 0
    errors: int = 0
    error_reasons: dict[str, int] = field(default_factory=dict)
    conflicts: int = 0  # tasks of rows (labelled or not) whose annotators disagreed
    partial: int = 0  # labelled rows written without the label of a task in conflict
    cancelled_annotations: int = 0
    label_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    unknown_labels: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Malformed(ValueError):
    """One task of the export is not in Label Studio's format (the import goes on without it)."""


def _annotation_choices(annotation: Any) -> dict[str, list[str]]:
    """``{control name: choices}`` of one annotation; raises :class:`_Malformed` naming what is wrong."""
    if not isinstance(annotation, dict):
        raise _Malformed(f"an annotation is {type(annotation).__name__}, not an object")
    result = annotation.get("result")
    if result is None:
        return {}
    if not isinstance(result, list):
        raise _Malformed(f"an annotation's result is {type(result).__name__}, not a list")
    out: dict[str, list[str]] = {}
    for item in result:
        if not isinstance(item, dict) or item.get("type") != "choices":
            continue  # other controls (text areas, spans) are not labels of a task
        value, name = item.get("value"), item.get("from_name")
        if not isinstance(name, str) or not name:
            raise _Malformed(f"a choices result has from_name {name!r}, not a control name")
        choices = value.get("choices") if isinstance(value, dict) else None
        if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
            raise _Malformed(f"the choices of {name!r} are {json_safe(value)}, not a list of labels")
        out[name] = list(choices)
    return out


def _decide(votes: list[tuple[Any, bool, list[str]]], kind: TaskKind) -> tuple[Any, list[Any] | None]:
    """The label from annotators' votes ``(annotator, ground_truth, choices)``, or a conflict."""
    truth = [v for v in votes if v[1]]
    if truth:
        votes = truth[:1]
    values = [kind.vote(c) for _, _, c in votes]
    counts = Counter(values)
    if len(counts) == 1:
        return kind.from_vote(values[0]), None
    return None, [{"annotator": a, "choices": c} for a, _, c in votes]


def _votes(item: dict[str, Any], summary: ImportSummary) -> dict[str, list[tuple[Any, bool, list[str]]]]:
    """Per control, the submitted annotations' ``(annotator, ground_truth, choices)``."""
    annotations = item.get("annotations")
    if annotations is None:
        annotations = []
    if not isinstance(annotations, list):
        raise _Malformed(f"annotations is {type(annotations).__name__} {json_safe(annotations)}, not a list")
    votes: dict[str, list[tuple[Any, bool, list[str]]]] = {}
    for annotation in annotations:
        choices = _annotation_choices(annotation)
        if annotation.get("was_cancelled"):
            summary.cancelled_annotations += 1
            continue
        annotator = annotation.get("completed_by")
        annotator = annotator.get("email", annotator.get("id")) if isinstance(annotator, dict) else annotator
        for name, chosen in choices.items():
            votes.setdefault(name, []).append((json_safe(annotator), bool(annotation.get("ground_truth")), chosen))
    return votes


def _data_problem(data: Any) -> tuple[str, str] | None:
    """Why a task's data cannot be a training row (checked as ``aranews train`` checks rows), or ``None``."""
    if not isinstance(data, dict):
        return "unreadable_task", "a task needs a data object with id and text"
    problem = id_problem(data.get("id"), "data.id")
    if problem is not None:
        return "unreadable_task" if problem[0] == "missing_id" else problem[0], problem[1]
    text = data.get("text")
    if not isinstance(text, str):
        return "unreadable_task", f"data.text is {type(text).__name__} {json_safe(text)}, not a string"
    if not text.strip():
        return "empty_text", "data.text is empty"
    for key, value in data.items():
        if isinstance(value, str) and any("\ud800" <= c <= "\udfff" for c in value):
            return "invalid_unicode", f"data.{key} holds a lone surrogate (not valid Unicode)"
    return None


def _read_export(export: Path) -> list[Any]:
    try:
        items = json.loads(export.read_text(encoding="utf-8-sig"))  # a byte-order mark is read, not refused
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{export}: not UTF-8 text (byte {exc.start}); export the project from Label Studio as JSON"
        ) from None
    except ValueError as exc:
        raise ValueError(f"{export}: not JSON ({exc}); export the project from Label Studio as JSON") from None
    except RecursionError:
        raise ValueError(
            f"{export}: nested too deeply to read as JSON; export the project from Label Studio as JSON"
        ) from None
    if not isinstance(items, list):
        raise ValueError(f"{export}: expected a list of tasks (Label Studio's JSON export), got {type(items).__name__}")
    return items


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

    Each task (a row) is decided per labelling task and per label: an agreed label is kept even when the
    annotators of another task of the same row disagree (that task is left empty, as a row that carries
    one task's label only, and the conflict is written to the errors file with ``row_written: true``).
    A task that is malformed, has an id or text ``aranews train`` would refuse, repeats an id already
    written, or yields no label at all is one error row naming its position; the import goes on.

    Args:
        export: Label Studio's JSON export (a list of tasks with ``annotations``).
        out: the training file to write (id, text, title, pair columns, one column per task).
        tasks: the model's tasks (their names and labels); default: every ``choices`` control seen.
        errors: rows not labelled, with the reason (default ``<out>.errors.jsonl``).

    Raises:
        ValueError: the file is not a Label Studio JSON export (named, with what was found), or an output
            is the export.
    """
    export, out = Path(export), Path(out)
    errors = Path(errors) if errors else out.with_name(out.name + ".errors.jsonl")
    refuse_clashes({"the Label Studio export": export}, {"--out": out, "--errors": errors})
    check_output_path("--out", out, create_parent=True)
    check_output_path("--errors", errors, create_parent=True)
    items = _read_export(export)
    importer = _Importer({t.name: t for t in tasks or []}, ImportSummary(tasks=len(items)), text_column, title_column)
    for position, item in enumerate(items, 1):
        importer.take(position, item)
    with atomic_output(out) as handle:
        handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in importer.rows)
    with atomic_output(errors) as handle:
        handle.writelines(json.dumps(b, ensure_ascii=False) + "\n" for b in importer.bad)
    summary = importer.summary
    summary.labelled = len(importer.rows)
    summary.errors = len(importer.bad) - summary.partial
    return summary


class _Importer:
    """Turns the export's tasks, one at a time, into training rows and error rows."""

    def __init__(self, specs: dict[str, TaskSpec], summary: ImportSummary, text_column: str, title_column: str):
        self.specs, self.summary = specs, summary
        self.text_column, self.title_column = text_column, title_column
        self.rows: list[dict[str, Any]] = []
        self.bad: list[dict[str, Any]] = []
        self.written: dict[str, int] = {}  # id -> position of the task that gave its row

    def fail(self, position: int, item: Any, reason: str, detail: Any, row_written: bool = False) -> None:
        data = item.get("data") if isinstance(item, dict) else None
        self.bad.append(
            {
                "task": position,
                "label_studio_id": json_safe(item.get("id")) if isinstance(item, dict) else None,
                "id": json_safe(data.get("id")) if isinstance(data, dict) else None,
                "reason": reason,
                "detail": detail,
                "row_written": row_written,
            }
        )
        if not row_written:
            self.summary.error_reasons[reason] = self.summary.error_reasons.get(reason, 0) + 1

    def take(self, position: int, item: Any) -> None:
        """One task of the export: a training row (perhaps with a conflict noted), or an error row."""
        data = item.get("data") if isinstance(item, dict) else None
        problem = _data_problem(data)
        if problem is not None:
            return self.fail(position, item, *problem)
        try:
            votes_by_task = _votes(item, self.summary)
        except _Malformed as exc:
            return self.fail(position, item, "malformed_task", str(exc))
        if not votes_by_task:
            return self.fail(position, item, "not_annotated", "no submitted annotation (cancelled ones are left out)")
        row_id = str(data["id"])
        if row_id in self.written:
            detail = f"id {row_id!r} was already written from task {self.written[row_id]}"
            return self.fail(position, item, "duplicate_id", detail)
        row, conflicts = _row(data, votes_by_task, self.specs, self.summary, self.text_column, self.title_column)
        names = list(self.specs) or sorted(votes_by_task)
        self.summary.conflicts += len(conflicts)
        if all(row.get(name) is None for name in names):
            if conflicts:
                return self.fail(position, item, "annotator_conflict", conflicts)
            return self.fail(position, item, "no_label", f"no annotation chose a label for {names}")
        if conflicts:
            self.summary.partial += 1
            self.fail(position, item, "annotator_conflict", conflicts, row_written=True)
        self.written[row_id] = position
        self.rows.append(row)
        for name in names:
            value = row.get(name)
            counts = self.summary.label_counts.setdefault(name, {}) if value is not None else {}
            for label in value if isinstance(value, list) else [] if value is None else [value]:
                counts[label] = counts.get(label, 0) + 1
        return None


def _row(
    data: dict[str, Any],
    votes_by_task: dict[str, list[tuple[Any, bool, list[str]]]],
    specs: dict[str, TaskSpec],
    summary: ImportSummary,
    text_column: str,
    title_column: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The training row of one task's data and votes, and the labelling tasks in conflict (left empty)."""
    row: dict[str, Any] = {"id": data["id"], text_column: data["text"]}
    if data.get("title"):
        row[title_column] = data["title"]
    for key, value in data.items():
        if key not in ("id", "text", "title"):
            row[key] = value
    conflicts = {}
    for name in list(specs) or sorted(votes_by_task):
        votes = votes_by_task.get(name)
        kind = specs[name].kind if name in specs else DEFAULT_KIND
        row[name] = None  # not labelled (or in conflict): the row trains the other tasks
        if not votes:
            continue
        value, conflict = _decide(votes, kind)
        if conflict is not None:
            conflicts[name] = conflict
            continue
        row[name] = value
        for label in kind.values_of(value):
            if name in specs and label not in specs[name].labels:
                known = summary.unknown_labels.setdefault(name, [])
                if label not in known:
                    known.append(label)
    return row, conflicts
