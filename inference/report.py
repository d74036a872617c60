"""An HTML report of a scored archive: what it says, over time and by source, and where the model was unsure.

``aranews report --scores SCORES --out report.html [--archive ARCHIVE]`` reads the scorer's output once,
streaming, and writes one self-contained HTML file (no network needed to open it: the data and the
drawing code are inside it; charts are SVG drawn in the browser so that the filters can redraw them):

* counts per label per task; label shares over time (by week or by month, chosen from the span of dates);
  shares by source; the second task by the first (stance by topic);
* per label, the most confident example articles, and the least confident articles of the archive, each
  with its id (and, with ``--archive``, its title or first line);
* the scoring summary (``<scores>.summary.json``): rows, scored, errors by reason, model, label schema,
  precision;
* a filter by date range and source that redraws every chart in the browser.

Memory does not grow with the archive: the aggregates are counts per (day, source) cell, which grow
with the span of dates times the number of sources, and the examples are bounded heaps (``examples``
per label, ``uncertain`` overall). Sources beyond the ``max_sources`` largest are pooled as "other".
"""

from __future__ import annotations

import heapq
import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aranews.inference.files import atomic_write_text, check_output_path, finite, refuse_clashes
from aranews.inference.outputs import score_column

__all__ = ["ReportSummary", "write_report"]

NO_DATE = "no date"
NO_SOURCE = "(no source)"
OTHER = "other"


@dataclass
class ReportSummary:
    rows: int
    tasks: list[str]
    days: int
    sources: int
    undated: int
    seconds: float
    bytes: int
    path: str


def _scores_rows(path: Path) -> Iterator[dict[str, Any]]:
    """The scorer's output rows, streamed (``readers`` imports no torch: a report needs no model)."""
    from aranews.inference.readers import iter_scores

    return iter_scores(path)


def _tasks(first: dict[str, Any], summary: dict[str, Any] | None) -> dict[str, list[str]]:
    labels = (summary or {}).get("provenance", {}).get("labels")
    if isinstance(labels, dict) and labels:
        return {k: list(v) for k, v in labels.items() if k in first}
    return {c: [] for c in first if score_column(c) in first}


def _first_line(text: Any, title: Any) -> str:
    if isinstance(title, str) and title.strip():
        return title.strip()[:160]
    if isinstance(text, str):
        for line in text.splitlines():
            if line.strip():
                return line.strip()[:160]
    return ""


class _Tally:
    """What the report keeps of the rows it reads: counts per (day, source) cell and bounded heaps of examples.

    Memory grows with days x sources (and the label pairs seen), never with the number of rows.
    """

    def __init__(self, tasks: dict[str, list[str]], source_column: str, examples: int, uncertain: int) -> None:
        self.tasks, self.names = tasks, list(tasks)
        self.pair = self.names[:2] if len(self.names) >= 2 else None
        self.source_column, self.examples, self.uncertain = source_column, examples, uncertain
        self.cells: dict[tuple[str, str], dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
        self.pair_cells: dict[tuple[str, str], Counter] = defaultdict(Counter)  # (first label, second label)
        self.source_counts: Counter = Counter()
        self.best: dict[tuple[str, str], list] = defaultdict(list)
        self.unsure: list = []
        self.n = self.undated = 0

    def add(self, row: dict[str, Any]) -> None:
        self.n += 1
        date = row.get("date_parsed") or NO_DATE
        self.undated += date == NO_DATE
        source = str(row.get(self.source_column) or NO_SOURCE)
        self.source_counts[source] += 1
        where = (str(date)[:10], source)
        context = {"date": date, "source": source}
        confidence = [c for c in (self._add_task(row, task, where, context) for task in self.names) if c is not None]
        if self.pair and row.get(self.pair[0]) not in (None, "") and row.get(self.pair[1]) not in (None, ""):
            self.pair_cells[where][(str(row[self.pair[0]]), str(row[self.pair[1]]))] += 1
        if confidence:
            low = min(confidence)
            shown = {"id": row.get("id"), "score": round(low, 4), **context, **{t: row.get(t) for t in self.names}}
            _push(self.unsure, (-low, -self.n, shown), self.uncertain)

    def _add_task(self, row: dict[str, Any], task: str, where: tuple[str, str], context: dict) -> float | None:
        """Count one task's label(s); the row's finite score, if any, for the example heaps."""
        label, score = row.get(task), row.get(score_column(task))
        if label in (None, ""):
            return None
        for value in str(label).split("|"):
            self.cells[where][task][value] += 1
            if value not in self.tasks[task]:  # a label the summary did not list (or no summary)
                self.tasks[task].append(value)
        try:
            score = float(score)
        except (TypeError, ValueError):
            return None
        if not math.isfinite(score):  # NaN or Infinity: no confidence to rank by
            return None
        item = (score, -self.n, {"id": row.get("id"), "score": round(score, 4), **context})
        _push(self.best[(task, str(label))], item, self.examples)
        return score

    def payload(self, max_sources: int) -> dict[str, Any]:
        """The data the page draws: sources beyond the ``max_sources`` largest pooled as "other"."""
        tasks, names, pair = self.tasks, self.names, self.pair
        shown = [s for s, _ in self.source_counts.most_common(max_sources)]
        sources = shown + ([OTHER] if len(self.source_counts) > len(shown) else [])
        days = sorted({d for d, _ in self.cells})
        data_cells: dict[tuple[str, str], dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
        data_pairs: dict[tuple[str, str], Counter] = defaultdict(Counter)
        for (day, source), counts in self.cells.items():
            key = (day, source if source in set(shown) else OTHER)
            for task, counter in counts.items():
                data_cells[key][task].update(counter)
            data_pairs[key].update(self.pair_cells.get((day, source), {}))
        day_index, source_index = {d: i for i, d in enumerate(days)}, {s: i for i, s in enumerate(sources)}
        return {
            "tasks": {t: tasks[t] for t in names},
            "pair": pair,
            "days": days,
            "sources": sources,
            # compact: [day index, source index, {task: counts in label order}, pair counts row-major]
            "cells": [
                [
                    day_index[day],
                    source_index[source],
                    {t: [counts.get(t, {}).get(label, 0) for label in tasks[t]] for t in names},
                    [data_pairs[(day, source)].get((a, b), 0) for a in tasks[pair[0]] for b in tasks[pair[1]]]
                    if pair
                    else [],
                ]
                for (day, source), counts in sorted(data_cells.items())
            ],
            "examples": {
                task: {
                    label: [x[2] for x in sorted(heap, reverse=True)]
                    for (t, label), heap in self.best.items()
                    if t == task
                }
                for task in names
            },
            "uncertain": [x[2] for x in sorted(self.unsure, reverse=True)],
            "undated": self.undated,
        }


def _push(heap: list, item: tuple, size: int) -> None:
    """Keep the ``size`` largest items of a stream in a min-heap."""
    if len(heap) < size:
        heapq.heappush(heap, item)
    elif size and item > heap[0]:
        heapq.heapreplace(heap, item)


def write_report(
    scores: str | Path,
    out: str | Path,
    *,
    archive: str | Path | None = None,
    source_column: str = "source",
    examples: int = 3,
    uncertain: int = 25,
    max_sources: int = 30,
    title: str | None = None,
) -> ReportSummary:
    """Write the HTML report of a scorer output (JSON Lines, CSV or Parquet).

    Args:
        scores: the scorer's output; ``<scores>.summary.json`` beside it is read when present.
        out: the HTML file to write.
        archive: the scored archive, read again only for the titles or first lines of the examples shown.
        source_column: the kept column naming the outlet (``--keep-columns ...,source``).
        examples: example articles per label (the most confident).
        uncertain: the least confident articles listed.
        max_sources: sources shown by name; the rest are pooled as "other".
    """
    started = time.perf_counter()
    for name, value in (("examples", examples), ("uncertain", uncertain), ("max_sources", max_sources)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name}={value!r}; expected an integer >= 0")
    scores, out = Path(scores), Path(out)
    summary_path = scores.with_name(scores.name + ".summary.json")
    refuse_clashes({"the scores": scores, "the summary": summary_path, "the archive": archive}, {"--out": out})
    check_output_path("--out", out, create_parent=True)
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else None
    rows = _scores_rows(scores)
    first = next(rows, None)
    if first is None:
        raise ValueError(f"{scores}: no scored rows to report on")
    tasks = _tasks(first, summary)
    if not tasks:
        raise ValueError(f"{scores}: no task columns (a column with a matching <task>_score column) found")
    tally = _Tally(tasks, source_column, examples, uncertain)
    tally.add(first)
    for row in rows:
        tally.add(row)
    data = tally.payload(max_sources)
    if archive is not None:
        _add_titles(Path(archive), data["examples"], data["uncertain"])
    title = title or f"Scored archive: {scores.name}"
    block = _summary_block(summary, tally.n)
    estimates = _estimates(summary)
    atomic_write_text(out, _render({"title": title, **data, "summary": block, "estimates": estimates}))
    return ReportSummary(
        tally.n,
        tally.names,
        len([d for d in data["days"] if d != NO_DATE]),
        len(tally.source_counts),
        tally.undated,
        round(time.perf_counter() - started, 3),
        out.stat().st_size,
        str(out),
    )


def _add_titles(archive: Path, examples: dict[str, dict[str, list]], unsure: list[dict[str, Any]]) -> None:
    """Titles or first lines of the articles shown (one more streaming pass, only their ids kept)."""
    from aranews.inference.readers import read_archive

    wanted: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for items in [*(v for by_label in examples.values() for v in by_label.values()), unsure]:
        for item in items:
            wanted[str(item["id"])].append(item)
    for row in read_archive(archive):
        fields = row.fields or {}
        items = wanted.get(str(fields.get("id")))
        if items:
            for item in items:
                item["headline"] = _first_line(fields.get("text"), fields.get("title"))


def _summary_block(summary: dict[str, Any] | None, n: int) -> dict[str, Any]:
    if not summary:
        return {"scored rows in this file": n}
    p = summary.get("provenance", {})
    block = {
        "input": summary.get("input"),
        "rows": summary.get("rows"),
        "scored": summary.get("scored"),
        "errors": summary.get("errors"),
        "errors by reason": summary.get("error_reasons"),
        "model": p.get("model"),
        "model sha256": (p.get("model_sha256") or "")[:16],
        "label schema": p.get("label_schema"),
        "precision": p.get("precision"),
        "dates read / unreadable": f"{summary.get('dates_parsed', 0)} / {summary.get('dates_unparsed', 0)}",
    }
    for task, n_uncertain in (summary.get("uncertain") or {}).items():
        block[f"{task}: rows given no label (uncertain)"] = n_uncertain
    for task, shares in (summary.get("shares") or {}).items():
        block[f"{task}: estimated shares ({shares.get('method')}, {shares.get('level', 0.9):.0%} interval)"] = (
            _shares_text(shares)
        )
    return block


def _estimates(summary: dict[str, Any] | None) -> dict[str, Any]:
    """The scorer's estimated shares per period and per source, with their intervals (``shares_by``), for the
    charts: each group's ``[name, rows, too few rows, {label: [share, low, high]}]``."""
    out: dict[str, Any] = {}
    for task, by in ((summary or {}).get("shares_by") or {}).items():
        first = next((g for groups in (by.get("period") or {}, by.get("source") or {}) for g in groups.values()), None)
        if first is None:
            continue
        out[task] = {
            "method": first.get("method"),
            "level": first.get("level"),
            "unit": by.get("unit"),
            **{
                name: [
                    [group, g.get("rows"), bool(g.get("too_few_rows")), _interval_triples(g)]
                    for group, g in (by.get(name) or {}).items()
                ]
                for name in ("period", "source")
            },
        }
    return out


def _interval_triples(shares: dict[str, Any]) -> dict[str, list[float | None]]:
    return {
        label: [finite(v.get("share")), finite(v.get("low")), finite(v.get("high"))]
        for label, v in (shares.get("labels") or {}).items()
    }


def _shares_text(shares: dict[str, Any]) -> str:
    """``security 0.31 [0.27-0.35] · diplomacy ...``, or why there is no interval."""
    if shares.get("too_few_rows"):
        return f"too few rows ({shares.get('rows')}) for an interval"
    return " · ".join(
        f"{label} {v['share']:.3f} [{v['low']:.3f}–{v['high']:.3f}]"
        for label, v in (shares.get("labels") or {}).items()
    )


# Characters that could end the <script> element holding the data or start markup inside it (<!--, </script>),
# and the two line separators that older JavaScript parsers read as line ends: written as JSON \\u escapes,
# which mean the same string to JSON.parse. They can only occur inside JSON strings, so this is lossless.
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def script_json(payload: Any) -> str:
    """``payload`` as JSON that can sit inside ``<script type="application/json">`` whatever its strings hold."""
    return json.dumps(finite(payload), ensure_ascii=False, allow_nan=False).translate(_SCRIPT_SAFE)


def _render(payload: dict[str, Any]) -> str:
    """The page: fixed markup and code around the data; every text (the title included) is placed by the
    browser from the data, as text, never pasted into the HTML."""
    return _PAGE_START + script_json(payload) + _PAGE_END


_PAGE_START = """<!DOCTYPE html>
<html lang="ar" dir="rtl">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title></title>
<style>
  :root { --ink: #1d2433; --muted: #5b6473; --line: #e3e6ec; --bg: #f6f7f9; }
  body { font-family: "Noto Naskh Arabic", "Segoe UI", Tahoma, Arial, sans-serif; color: var(--ink);
         background: var(--bg); margin: 0; line-height: 1.5; }
  header { background: #1d2433; color: #fff; padding: 18px 28px; }
  header h1 { margin: 0; font-size: 22px; font-weight: 600; }
  header p { margin: 4px 0 0; color: #c9d0dc; font-size: 14px; }
  main { padding: 18px 28px 40px; display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr));
         gap: 18px; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 18px; }
  section.wide { grid-column: 1 / -1; }
  h2 { font-size: 17px; margin: 0 0 10px; }
  h3 { font-size: 14px; margin: 12px 0 6px; color: var(--muted); }
  .filters { display: flex; flex-wrap: wrap; gap: 14px; align-items: end; }
  .filters label { display: flex; flex-direction: column; font-size: 13px; color: var(--muted); }
  .filters select, .filters input { font-size: 14px; padding: 4px 6px; min-width: 160px; }
  .filters button { font-size: 14px; padding: 6px 14px; }
  #status { font-size: 14px; color: var(--muted); }
  table { border-collapse: collapse; width: 100%; font-size: 13px; }
  th, td { border-bottom: 1px solid var(--line); padding: 5px 6px; text-align: right; vertical-align: top; }
  th { color: var(--muted); font-weight: 600; }
  .ltr { direction: ltr; unicode-bidi: embed; }
  .legend { display: flex; flex-wrap: wrap; gap: 10px; font-size: 12px; margin: 6px 0; }
  .legend span::before { content: ""; display: inline-block; width: 10px; height: 10px; margin-left: 4px;
                         background: var(--c); border-radius: 2px; }
  svg text { font-size: 11px; fill: var(--ink); }
</style>
</head>
<body>
<header><h1 id="title"></h1><p id="status"></p></header>
<main>
  <section class="wide">
    <div class="filters">
      <label>من تاريخ (from) <input type="date" id="from"></label>
      <label>إلى تاريخ (to) <input type="date" id="to"></label>
      <label>المصدر (source) <select id="source"><option value="">كل المصادر (all)</option></select></label>
      <button id="reset" type="button">إعادة (reset)</button>
    </div>
  </section>
  <section id="counts"><h2>عدد المقالات حسب التصنيف (articles per label)</h2><div class="charts"></div></section>
  <section id="pair"><h2>التصنيف الثاني حسب الأول (second task by the first)</h2><div class="charts"></div></section>
  <section id="time" class="wide"><h2>الحصص عبر الزمن (shares over time)</h2><div class="charts"></div></section>
  <section id="bysource" class="wide"><h2>الحصص حسب المصدر (shares by source)</h2><div class="charts"></div></section>
  <section id="examples" class="wide"><h2>أمثلة لكل تصنيف (examples per label, most confident)</h2><div></div></section>
  <section id="uncertain" class="wide"><h2>أقل المقالات ثقة (least confident articles)</h2><div></div></section>
  <section id="summary" class="wide"><h2>ملخص التقييم (scoring summary)</h2><div></div></section>
</main>
<script id="data" type="application/json">"""

_PAGE_END = """</script>
<script>
"use strict";
// Every object is prototype-less, so no label or source name ("constructor", "__proto__") reads an inherited key
const dict = () => Object.create(null);
const D = JSON.parse(document.getElementById("data").textContent,
  (k, v) => (v !== null && typeof v === "object" && !Array.isArray(v)) ? Object.assign(dict(), v) : v);
const COLORS = ["#2f6fdf", "#e4572e", "#29a37a", "#f2a541", "#8e5bd8", "#d6457f", "#3fb5c9", "#7a8699",
                "#b5a642", "#5d3fd3", "#c2571a", "#1f8a70"];
const color = (i) => COLORS[i % COLORS.length];
const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, text) => { const e = document.createElementNS(
  ["svg","rect","text","line","g","title","circle"].includes(tag) ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); if (text !== undefined) e.textContent = text; return e; };

function state() {
  return { from: $("#from").value, to: $("#to").value, source: $("#source").value };
}
const CELLS = D.cells.map(([d, s, c, p]) => {  // back from the compact form: counts keyed by label
  const out = { d: D.days[d], s: D.sources[s], c: dict(), p: dict() };  // p: first task's label -> second's -> n
  for (const [t, counts] of Object.entries(c)) { out.c[t] = dict(); counts.forEach((v, i) => { if (v) out.c[t][D.tasks[t][i]] = v; }); }
  if (D.pair) { const [a, b] = D.pair, nb = D.tasks[b].length;
    p.forEach((v, i) => { if (!v) return; const la = D.tasks[a][Math.floor(i / nb)], lb = D.tasks[b][i % nb];
      out.p[la] = out.p[la] || dict(); out.p[la][lb] = v; }); }
  return out;
});
function selected(f) {
  return CELLS.filter(c => (!f.source || c.s === f.source) &&
    (c.d === "no date" ? !(f.from || f.to) : (!f.from || c.d >= f.from) && (!f.to || c.d <= f.to)));
}
function sum(cells, task) {
  const out = dict(); for (const c of cells) for (const [k, v] of Object.entries(c.c[task] || dict())) out[k] = (out[k] || 0) + v;
  return out;
}
function period(days) {
  const dated = days.filter(d => d !== "no date"); if (!dated.length) return "month";
  const span = (new Date(dated[dated.length - 1]) - new Date(dated[0])) / 864e5;
  return span <= 120 ? "week" : "month";
}
function bucket(day, unit) {
  if (day === "no date") return day;
  if (unit === "month") return day.slice(0, 7);
  const d = new Date(day + "T00:00:00Z"); const wd = (d.getUTCDay() + 6) % 7; d.setUTCDate(d.getUTCDate() - wd);
  return d.toISOString().slice(0, 10);
}
function legend(labels) {
  const box = el("div", { class: "legend" });
  labels.forEach((l, i) => { const s = el("span", { style: `--c:${color(i)}` }, l); box.appendChild(s); });
  return box;
}
function hbars(counts, labels, title) {  // right-to-left bars: label at the right, the bar grows leftwards
  const total = Object.values(counts).reduce((a, b) => a + b, 0) || 1, h = 24, w = 500, room = w - 250;
  const top = Math.max(1, ...labels.map(l => counts[l] || 0));
  const svg = el("svg", { width: w, height: labels.length * h + 8, class: "chart", "data-total": total,
                          viewBox: `0 0 ${w} ${labels.length * h + 8}`, style: "direction: ltr" });
  labels.forEach((l, i) => {
    const v = counts[l] || 0, bw = Math.round(room * v / top), right = w - 140;
    svg.appendChild(el("text", { x: w - 4, y: i * h + 16, "text-anchor": "end" }, l));
    const r = el("rect", { x: right - bw, y: i * h + 5, width: bw, height: h - 9, fill: color(i), rx: 2, class: "bar",
                           "data-label": l, "data-value": v });
    r.appendChild(el("title", {}, `${l}: ${v}`)); svg.appendChild(r);
    svg.appendChild(el("text", { x: right - bw - 6, y: i * h + 16, "text-anchor": "end" },
                       `${v.toLocaleString("en")} · ${Math.round(100 * v / total)}%`));
  });
  const wrap = el("div"); wrap.appendChild(el("h3", {}, title)); wrap.appendChild(svg); return wrap;
}
function stacked(groups, labels, title) {  // groups: [[name, {label: n}]] drawn as 100% columns
  const w = Math.max(520, groups.length * 34 + 60), h = 220, bw = Math.max(8, Math.min(28, (w - 60) / Math.max(1, groups.length) - 6));
  const svg = el("svg", { width: w, height: h + 110, class: "chart", viewBox: `0 0 ${w} ${h + 110}`,
                          "data-groups": groups.length, style: "direction: ltr" });
  groups.forEach(([name, counts], gi) => {
    const total = labels.reduce((a, l) => a + (counts[l] || 0), 0); if (!total) return;
    let y = h; const x = w - 40 - gi * (bw + 6) - bw;
    labels.forEach((l, i) => {
      const v = counts[l] || 0; if (!v) return; const bh = h * v / total; y -= bh;
      const r = el("rect", { x, y, width: bw, height: bh, fill: color(i), class: "bar", "data-label": l, "data-value": v });
      r.appendChild(el("title", {}, `${name} — ${l}: ${v} (${Math.round(100 * v / total)}%)`)); svg.appendChild(r);
    });
    svg.appendChild(el("text", { x: x + bw / 2, y: h + 12, transform: `rotate(-50 ${x + bw / 2} ${h + 12})`,
                                  "text-anchor": "end", class: "ltr" }, name));
  });
  const wrap = el("div"); wrap.appendChild(el("h3", {}, title)); wrap.appendChild(legend(labels)); wrap.appendChild(svg);
  return wrap;
}
function whiskers(groups, labels, title) {  // groups: [name, rows, too few, {label: [share, low, high]}]
  const gw = Math.max(44, labels.length * 12 + 20), w = Math.max(520, groups.length * gw + 90), h = 200;
  const svg = el("svg", { width: w, height: h + 110, class: "chart estimate", viewBox: `0 0 ${w} ${h + 110}`,
                          "data-groups": groups.length, style: "direction: ltr" });
  const y = (v) => 10 + (h - 10) * (1 - v);
  [0, 0.25, 0.5, 0.75, 1].forEach(v => { svg.appendChild(el("line", { x1: 0, x2: w - 44, y1: y(v), y2: y(v), stroke: "#e3e6ec" }));
    svg.appendChild(el("text", { x: w - 40, y: y(v) + 4 }, `${Math.round(100 * v)}%`)); });
  groups.forEach(([name, rows, few, shares], gi) => {
    const x0 = w - 50 - (gi + 1) * gw, mid = x0 + gw / 2;  // right to left, as the page reads
    if (few) {
      svg.appendChild(el("text", { x: mid, y: h / 2, "text-anchor": "middle", class: "few", "data-group": name,
                                   transform: `rotate(-90 ${mid} ${h / 2})` }, `too few rows (${rows})`));
    } else labels.forEach((l, i) => {
      const v = shares[l]; if (!v || v[0] === null || v[1] === null || v[2] === null) return;
      const x = x0 + 10 + i * 12, g = el("g", { class: "interval", "data-group": name, "data-label": l,
                                                "data-share": v[0], "data-low": v[1], "data-high": v[2] });
      g.appendChild(el("line", { x1: x, x2: x, y1: y(v[1]), y2: y(v[2]), stroke: color(i), "stroke-width": 2 }));
      g.appendChild(el("circle", { cx: x, cy: y(v[0]), r: 3.5, fill: color(i) }));
      g.appendChild(el("title", {}, `${name} — ${l}: ${(100 * v[0]).toFixed(1)}% [${(100 * v[1]).toFixed(1)}–${(100 * v[2]).toFixed(1)}%], ${rows} rows`));
      svg.appendChild(g); });
    svg.appendChild(el("text", { x: mid, y: h + 14, transform: `rotate(-50 ${mid} ${h + 14})`, "text-anchor": "end",
                                 class: "ltr" }, `${name} (${rows})`));
  });
  const wrap = el("div"); wrap.appendChild(el("h3", {}, title)); wrap.appendChild(legend(labels)); wrap.appendChild(svg);
  return wrap;
}
function estimated(section, key, what) {  // the scorer's estimates: the whole archive, whatever the filter
  const box = $(section + " .charts");
  for (const [t, e] of Object.entries(D.estimates)) { if (!e[key] || !e[key].length) continue;
    box.appendChild(whiskers(e[key], D.tasks[t], `${t} — ${what}: estimated shares (${e.method}, ` +
      `${Math.round(100 * e.level)}% interval; the whole archive, the filter does not apply)`)); }
}
function table(rows, columns) {
  const t = el("table"), head = el("tr"); columns.forEach(c => head.appendChild(el("th", {}, c[0]))); t.appendChild(head);
  rows.forEach(r => { const tr = el("tr"); columns.forEach(c => tr.appendChild(el("td", c[2] ? { class: c[2] } : {},
    r[c[1]] === undefined || r[c[1]] === null ? "" : String(r[c[1]])))); t.appendChild(tr); });
  return t;
}
function keep(item, f) {
  return (!f.source || item.source === f.source) &&
    (item.date === "no date" ? !(f.from || f.to) : (!f.from || item.date >= f.from) && (!f.to || item.date <= f.to));
}
function draw() {
  const f = state(), cells = selected(f), tasks = Object.keys(D.tasks);
  let n = 0; for (const c of cells) n += Object.values(c.c[tasks[0]] || dict()).reduce((a, b) => a + b, 0);
  $("#status").textContent = `${n} مقالة معروضة (articles shown)` + (D.undated ? ` · ${D.undated} بلا تاريخ في الأرشيف (undated in the archive)` : "");
  $("#status").dataset.shown = n;
  const counts = $("#counts .charts"); counts.replaceChildren();
  tasks.forEach(t => counts.appendChild(hbars(sum(cells, t), D.tasks[t], t)));
  const pair = $("#pair .charts"); pair.replaceChildren();
  if (D.pair) {
    const [a, b] = D.pair, byA = dict();
    for (const c of cells) for (const [la, row] of Object.entries(c.p)) { byA[la] = byA[la] || dict();
      for (const [lb, v] of Object.entries(row)) byA[la][lb] = (byA[la][lb] || 0) + v; }
    pair.appendChild(stacked(D.tasks[a].map(l => [l, byA[l] || dict()]), D.tasks[b], `${b} / ${a}`));
  } else { $("#pair").style.display = "none"; }
  const unit = period(cells.map(c => c.d).sort()), time = $("#time .charts"); time.replaceChildren();
  tasks.forEach(t => { const by = dict();
    for (const c of cells) { const k = bucket(c.d, unit); by[k] = by[k] || dict();
      for (const [l, v] of Object.entries(c.c[t] || dict())) by[k][l] = (by[k][l] || 0) + v; }
    const keys = Object.keys(by).sort(); time.appendChild(stacked(keys.map(k => [k, by[k]]), D.tasks[t],
      `${t} — ${unit === "week" ? "أسبوعيا (weekly)" : "شهريا (monthly)"}`)); });
  const bys = $("#bysource .charts"); bys.replaceChildren();
  tasks.forEach(t => { const by = dict();
    for (const c of cells) { by[c.s] = by[c.s] || dict(); for (const [l, v] of Object.entries(c.c[t] || dict())) by[c.s][l] = (by[c.s][l] || 0) + v; }
    bys.appendChild(stacked(D.sources.filter(s => by[s]).map(s => [s, by[s]]), D.tasks[t], t)); });
  estimated("#time", "period", "per period"); estimated("#bysource", "source", "per source");
  const ex = $("#examples div"); ex.replaceChildren();
  tasks.forEach(t => D.tasks[t].forEach(l => { const items = ((D.examples[t] || dict())[l] || []).filter(i => keep(i, f));
    if (!items.length) return; ex.appendChild(el("h3", {}, `${t}: ${l}`));
    ex.appendChild(table(items, [["id", "id", "ltr"], ["العنوان (headline)", "headline"], ["score", "score", "ltr"],
                                 ["date", "date", "ltr"], ["source", "source"]])); }));
  const un = $("#uncertain div"); un.replaceChildren();
  un.appendChild(table(D.uncertain.filter(i => keep(i, f)), [["id", "id", "ltr"], ["العنوان (headline)", "headline"],
    ["lowest score", "score", "ltr"], ...tasks.map(t => [t, t]), ["date", "date", "ltr"], ["source", "source"]]));
}
function init() {
  document.title = D.title; $("#title").textContent = D.title;
  const sel = $("#source"); D.sources.forEach(s => sel.appendChild(el("option", { value: s }, s)));
  const dated = D.days.filter(d => d !== "no date");
  if (dated.length) { $("#from").min = $("#to").min = dated[0]; $("#from").max = $("#to").max = dated[dated.length - 1]; }
  const params = new URLSearchParams(location.hash.slice(1));  // report.html#source=X&from=2024-01-01
  for (const k of ["from", "to", "source"]) if (params.get(k)) $("#" + k).value = params.get(k);
  ["from", "to", "source"].forEach(k => $("#" + k).addEventListener("change", draw));
  $("#reset").addEventListener("click", () => { $("#from").value = $("#to").value = $("#source").value = ""; draw(); });
  const s = $("#summary div"); s.appendChild(table(Object.entries(D.summary).map(([k, v]) =>
    ({ k, v: typeof v === "object" && v !== null ? JSON.stringify(v) : v })), [["", "k"], ["", "v", "ltr"]]));
  draw();
  document.body.dataset.rendered = document.querySelectorAll("svg.chart").length;
}
init();
</script>
</body>
</html>
"""
