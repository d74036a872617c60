"""Archive columns carried through scoring, dates as pages write them, and the HTML report (also opened in
headless Chromium, where available)."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from aranews.inference import load_classifier
from aranews.inference.dates import parse_date
from aranews.inference.report import write_report
from aranews.inference.scoring import score_archive
from tests.helpers import write_jsonl


@pytest.mark.parametrize(
    "text,expected",
    [
        ("12 يونيو 2024", "2024-06-12"),
        ("١٨ فبراير ٢٠٢١", "2021-02-18"),
        ("الأربعاء 18 شباط 2021", "2021-02-18"),
        ("نشر في: 3 تشرين الأول 2023 - 10:45", "2023-10-03"),
        ("15 جوان 2022", "2022-06-15"),
        ("June 12, 2024", "2024-06-12"),
        ("12 Jun 2024", "2024-06-12"),
        ("2024-06-12T08:30:00+03:00", "2024-06-12"),
        ("12/06/2024", "2024-06-12"),  # day first, as Arabic and European pages write it
        ("٢٠٢٤/٦/١", "2024-06-01"),
        ("منذ ساعتين", None),
        ("31/02/2024", None),
        ("", None),
        (None, None),
        (20240612, None),
    ],
)
def test_dates_as_pages_write_them(text, expected):
    parsed = parse_date(text)
    assert (parsed.isoformat() if parsed else None) == expected


def test_scores_carry_kept_columns_and_parsed_dates(trained_model, sample_rows, tmp_path):
    dates = ["12 يونيو 2024", "١٨ فبراير ٢٠٢١", "قبل ساعتين", None]
    rows = [
        {"id": f"k{i}", "text": r["text"], "date": dates[i % 4], "source": f"src{i % 3}", "url": f"https://x/{i}"}
        for i, r in enumerate(sample_rows["dev"][:12])
    ]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    clf = load_classifier(trained_model / "model", precision="fp32")
    summary = score_archive(clf, source, tmp_path / "out.csv", progress=False, keep_columns=["date", "source", "url"])
    import csv

    with (tmp_path / "out.csv").open(encoding="utf-8") as handle:
        out = list(csv.DictReader(handle))
    assert summary.scored == 12  # an unreadable date is never a reason to drop a row
    assert [r["url"] for r in out] == [r["url"] for r in rows]
    assert [r["date"] for r in out] == [d or "" for _, d in zip(range(12), dates * 3)]
    assert [r["date_parsed"] for r in out][:4] == ["2024-06-12", "2021-02-18", "", ""]
    assert (summary.dates_parsed, summary.dates_unparsed) == (6, 3)
    with pytest.raises(ValueError, match="output columns of the scorer"):
        score_archive(clf, source, tmp_path / "o2.jsonl", progress=False, keep_columns=["topic"])


def _scores(tmp_path: Path, n: int = 400) -> Path:
    topics, stances = ["security", "diplomacy", "economy_energy"], ["cooperation", "neutral", "tension"]
    rows = []
    for i in range(n):
        day = dt.date(2024, 1, 1) + dt.timedelta(days=i % 200)
        rows.append(
            {
                "id": f"a{i}",
                "topic": topics[i % 3],
                "topic_score": 0.4 + (i % 50) / 100,
                "stance": stances[(i // 3) % 3],
                "stance_score": 0.5 + (i % 40) / 100,
                "date": day.isoformat() if i % 10 else "أمس",
                "date_parsed": day.isoformat() if i % 10 else None,
                "source": ["الجزيرة", "RT Arabic", "الأناضول"][i % 3],
            }
        )
    path = write_jsonl(tmp_path / "scores.jsonl", rows)
    summary = {"rows": n + 5, "scored": n, "errors": 5, "error_reasons": {"empty_text": 5}, "provenance": {
        "labels": {"topic": topics, "stance": stances}, "precision": "bf16", "label_schema": "v2-abcd1234"}}  # fmt: skip
    path.with_name(path.name + ".summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return path


def _payload(html: str) -> dict:
    data = re.search(r'<script id="data" type="application/json">(.*?)</script>', html, re.S).group(1)
    return json.loads(data.replace("<\\/", "</"))


def test_report_aggregates_and_stays_self_contained(tmp_path):
    scores = _scores(tmp_path)
    archive = write_jsonl(tmp_path / "archive.jsonl", [{"id": f"a{i}", "text": f"عنوان {i}\nنص"} for i in range(400)])
    result = write_report(scores, tmp_path / "report.html", archive=archive, examples=2, uncertain=5)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert '<html lang="ar" dir="rtl">' in html
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", html)  # nothing fetched when opened
    data = _payload(html)
    assert result.rows == 400 and result.undated == 40 and result.sources == 3
    topic_total = sum(sum(cell[2]["topic"]) for cell in data["cells"])
    assert topic_total == 400
    pair_total = sum(sum(cell[3]) for cell in data["cells"])
    assert pair_total == 400
    assert all(len(items) <= 2 for items in data["examples"]["topic"].values())
    assert all(i["headline"].startswith("عنوان") for i in data["examples"]["topic"]["security"])
    assert len(data["uncertain"]) == 5
    lowest = sorted(min(0.4 + (i % 50) / 100, 0.5 + (i % 40) / 100) for i in range(400))[:5]
    assert [u["score"] for u in data["uncertain"]] == pytest.approx(lowest)
    assert data["summary"]["label schema"] == "v2-abcd1234" and data["summary"]["errors by reason"] == {"empty_text": 5}


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _dom(url: str, tmp_path: Path) -> str:
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (apt-get install chromium)")
def test_report_renders_and_filters_in_a_real_browser(tmp_path):
    scores = _scores(tmp_path)
    write_report(scores, tmp_path / "report.html")
    url = (tmp_path / "report.html").as_uri()
    full = _dom(url, tmp_path)
    charts = int(re.search(r'<body data-rendered="(\d+)"', full).group(1))
    assert charts >= 6  # counts x2, pair, time x2, sources x2
    assert re.search(r'id="status" data-shown="400"', full)
    assert len(re.findall(r'<rect [^>]*class="bar"', full)) > 50
    filtered = _dom(url + "#source=RT%20Arabic&from=2024-02-01", tmp_path)
    shown = int(re.search(r'id="status" data-shown="(\d+)"', filtered).group(1))
    expected = sum(
        1
        for i in range(400)
        if i % 3 == 1 and i % 10 and (dt.date(2024, 1, 1) + dt.timedelta(days=i % 200)) >= dt.date(2024, 2, 1)
    )
    assert shown == expected
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,1800",
         f"--screenshot={tmp_path / 'report.png'}", url],
        capture_output=True, timeout=120, cwd=tmp_path, check=True,
    )  # fmt: skip
    assert (tmp_path / "report.png").stat().st_size > 10_000


# -- hostile archives (issue 20): nothing runs, every count is right --------------------------------------
PWN = "document.body.setAttribute('data-pwned', '1')"
HOSTILE = [
    f"<script>{PWN}</script>",
    f'<img src=x onerror="{PWN}">',
    f"<!--<script>{PWN}//",
    f"</script><script>{PWN}</script>",
    "__DATA__",
    "__TITLE__",
    "\u2028\u2029",
]


def _hostile_scores(tmp_path: Path) -> tuple[Path, int]:
    sources = ["__proto__", "constructor", "'quoted'", "hasOwnProperty", *HOSTILE]
    labels = ["__proto__", "constructor", "toString", "<b>bold</b>"]
    rows = []
    for i in range(800):
        score = [0.9, float("nan"), float("inf"), 0.6][i % 4]
        rows.append(
            {
                "id": HOSTILE[i % len(HOSTILE)] + str(i),
                "topic": labels[i % 4],
                "topic_score": score,
                "stance": labels[(i // 4) % 4],
                "stance_score": 0.7,
                "date_parsed": f"2024-0{1 + i % 3}-1{i % 10}",
                "source": sources[i % len(sources)],
            }
        )
    path = tmp_path / "__DATA__ scores.jsonl"  # the file name is the default title
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")  # NaN and Infinity, as a careless writer does
    return path, len(rows)


def test_hostile_values_stay_data(tmp_path):
    scores, n = _hostile_scores(tmp_path)
    for title in (None, f"__DATA__ </title><script>{PWN}</script>"):
        write_report(scores, tmp_path / "report.html", title=title)
        page = (tmp_path / "report.html").read_text(encoding="utf-8")
        assert page.count("<script") == 2 and page.count("</script>") == 2  # the data block and the code
        assert "__DATA__" not in page.split('<script id="data"')[0]  # nothing pasted into the markup
        data = _payload(page)
        assert data["title"] == (title or f"Scored archive: {scores.name}")
        assert sum(sum(cell[2]["topic"]) for cell in data["cells"]) == n
        assert "NaN" not in page and "Infinity" not in page


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (apt-get install chromium)")
def test_hostile_archive_runs_nothing_and_counts_right_in_a_browser(tmp_path):
    scores, n = _hostile_scores(tmp_path)
    write_report(scores, tmp_path / "report.html", title=f"__DATA__ <script>{PWN}</script>", uncertain=50)
    url = (tmp_path / "report.html").as_uri()
    dom = _dom(url, tmp_path)
    assert 'data-pwned="1"' not in dom  # the hostile values are shown as text, never run
    assert re.search(r'<body[^>]* data-rendered="\d+"', dom)  # the page drew (no script error blanked it)
    assert re.search(rf'id="status" data-shown="{n}"', dom)
    bars = re.findall(r'<rect [^>]*data-label="([^"]*)" data-value="(\d+)"', dom)
    topic_bars = [(label, int(v)) for label, v in bars[:4]]  # the first chart: topic counts
    assert sum(v for _, v in topic_bars) == n and all(v == n // 4 for _, v in topic_bars)
    assert "<option value=\"'quoted'\">'quoted'</option>" in dom  # a quoted source keeps both quotes
    proto = _dom(url + "#source=__proto__", tmp_path)
    assert re.search(rf'id="status" data-shown="{len(range(0, n, 11))}"', proto)
