"""Leaderboards built only from a report (`harness.report` output) plus the published reference file.

Our rows and published rows go in separate tables, labelled with the tasks each was measured on:
results on the bundled synthetic tasks are never presented as results on the real datasets.
"""

from __future__ import annotations

import csv
import html
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.report import REPORT_SCHEMA, interval
from harness.tables import html_page, html_table, markdown_table

REFERENCE = Path(__file__).parent / "reference" / "published.csv"
FAMILIES = {"HiPER/ALFWorld-v0": "ALFWorld", "HiPER/WebShop-v0": "WebShop", "HiPER/WebShop-Browser-v0": "WebShop"}


def family(env_id: str) -> str:
    return FAMILIES.get(env_id.rsplit(":", 1)[-1], env_id)


def load_reference(path: Path = REFERENCE) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _ours(report: dict[str, Any], fam: str, types: list[str]) -> tuple[list[str], list[list[Any]]]:
    by_type = {(r["env_id"], r["split"], r["task_set"], r["agent"], r["task_type"]): r for r in report["task_types"]}
    headers = ["agent", "env", "split", "tasks", "episodes", "success % [95% Wilson]", *types, "score %",
               "seeds", "version", "store schema"]
    rows = []
    for g in report["groups"]:
        if family(g["env_id"]) != fam:
            continue
        key = (g["env_id"], g["split"], g["task_set"], g["agent"])
        cells = [interval(by_type[(*key, t)]) if (*key, t) in by_type else "" for t in types]
        rows.append([g["agent"], g["env_id"], g["split"], g["task_set"], g["n"], interval(g), *cells,
                     f"{100 * g['score']:.1f}", ",".join(map(str, g["seeds"])), ",".join(g["package_versions"]),
                     report["store_schema"]])
    rows.sort(key=lambda r: -float(r[5].split()[0]))
    return headers, rows


def _published(reference: list[dict[str, str]], fam: str, types: list[str]) -> tuple[list[str], list[list[Any]]]:
    cells: dict[tuple[str, str, str, str], dict[str, str]] = defaultdict(dict)
    for r in reference:
        if r["family"] == fam:
            column = r["task_type"] if r["metric"] == "success" else f"{r['metric']}:{r['task_type']}"
            cells[(r["model"], r["method"], r["task_set"], r["source"])][column] = r["value_pct"]
    headers = ["model", "method", "tasks", "success %", *types, "score %", "source"]
    rows = [[model, method, tasks, values.get("all", ""), *(values.get(t, "") for t in types),
             values.get("score:all", ""), source] for (model, method, tasks, source), values in cells.items()]
    return headers, rows


ROW, LABEL, PLOT = 16, 430, 360  # chart geometry: row height, label width, width of 0-100 %
LABEL_CHARS = 70  # what fits in LABEL at the chart's font size; the full label is the bar's tooltip


def success_chart(report: dict[str, Any], reference: list[dict[str, str]], fam: str, types: list[str]) -> str:
    """An inline SVG of success per task type: our agents as bars with their 95% Wilson interval,
    published methods as bars of another colour; every label names its task set, so the eye never
    pairs numbers measured on different tasks. Nothing is fetched: the page stays offline."""
    ours = {"all": [g for g in report["groups"] if family(g["env_id"]) == fam]}
    for t in report["task_types"]:
        if family(t["env_id"]) == fam:
            ours.setdefault(t["task_type"], []).append(t)
    rows: list[tuple[str, str, float, tuple[float, float] | None]] = []  # (kind, label, %, interval)
    for task_type in ["all", *types]:
        mine = [("ours", f"{g['agent']} · {g['task_set']}", 100 * g["success"],
                 (100 * g["ci_low"], 100 * g["ci_high"])) for g in ours.get(task_type, [])]
        theirs = [("published", f"{r['method']} ({r['model']}) · {r['task_set']}", float(r["value_pct"]), None)
                  for r in reference if r["family"] == fam and r["task_type"] == task_type
                  and r["metric"] == "success" and r["value_pct"]]
        if mine or theirs:
            rows.append(("heading", "all task types" if task_type == "all" else task_type, 0.0, None))
            rows += mine + theirs
    height = ROW * (len(rows) + 2)
    parts = [f'<svg class="chart" id="chart-{html.escape(fam)}" xmlns="http://www.w3.org/2000/svg" '
             f'width="{LABEL + PLOT + 40}" height="{height}" role="img" '
             f'aria-label="{html.escape(fam)} success rate per task type, ours and published">']
    for tick in range(0, 101, 25):
        x = LABEL + PLOT * tick / 100
        parts.append(f'<line class="axis" x1="{x}" y1="{ROW}" x2="{x}" y2="{height - ROW}"/>'
                     f'<text x="{x}" y="{ROW - 4}" text-anchor="middle">{tick}%</text>')
    for i, (kind, label, value, ci) in enumerate(rows, start=1):
        y = ROW * i + 2
        if kind == "heading":
            parts.append(f'<text x="0" y="{y + ROW - 4}" font-weight="bold">{html.escape(label)}</text>')
            continue
        shown = label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1] + "…"
        parts.append(f'<text x="{LABEL - 6}" y="{y + ROW - 5}" text-anchor="end">{html.escape(shown)}</text>'
                     f'<rect class="{kind}" x="{LABEL}" y="{y + 2}" width="{PLOT * value / 100:.1f}" '
                     f'height="{ROW - 5}"><title>{html.escape(label)}: {value:.1f}%</title></rect>')
        if ci is not None:
            x0, x1 = (LABEL + PLOT * c / 100 for c in ci)
            parts.append(f'<line class="interval" x1="{x0:.1f}" y1="{y + ROW / 2}" x2="{x1:.1f}" y2="{y + ROW / 2}"/>')
    parts.append("</svg>")
    return "".join(parts)


def build_leaderboard(report: dict[str, Any], reference: list[dict[str, str]]) -> tuple[str, str]:
    """(Markdown, HTML) of the leaderboard. A report lacking a metric is an error, never a zero."""
    if report.get("report_schema") != REPORT_SCHEMA:
        raise HarnessError(f"report schema {report.get('report_schema')!r} is not {REPORT_SCHEMA}")
    fams = sorted({family(g["env_id"]) for g in report["groups"]} | {r["family"] for r in reference})
    md = ["# hiper-bench leaderboard\n",
          "Our results come from the results store through `hiper-bench report`; published results are "
          "copied from their sources (`leaderboards/reference/`). They sit in separate tables: numbers "
          "on different task sets (e.g. our bundled synthetic ALFWorld-format tasks vs. real ALFWorld "
          "valid_seen) are not comparable.\n"]
    sections = ['<p class="note">' + html.escape(md[1]) + "</p>"]
    try:
        for fam in fams:
            types = sorted({t["task_type"] for t in report["task_types"] if family(t["env_id"]) == fam}
                           | {r["task_type"] for r in reference if r["family"] == fam and r["task_type"] != "all"})
            ours, published = _ours(report, fam, types), _published(reference, fam, types)
            md.append(f"## {fam}\n\n### Ours (measured)\n\n" + (markdown_table(*ours) if ours[1] else "No runs yet.\n"))
            md.append("### Published (copied from the sources, other task sets)\n\n" + markdown_table(*published))
            sections.append(f"<h2>{html.escape(fam)}</h2>"
                            '<p class="note">Success % per task type: ours in blue with the 95% Wilson '
                            "interval, published in amber; each label names the tasks it was measured on.</p>"
                            + success_chart(report, reference, fam, types) + "<h3>Ours (measured)</h3>"
                            + (html_table(*ours, table_id=f"ours-{fam}") if ours[1] else "<p>No runs yet.</p>")
                            + "<h3>Published (copied from the sources, other task sets)</h3>"
                            + html_table(*published, table_id=f"published-{fam}",
                                         row_classes=["published"] * len(published[1])))
    except KeyError as err:
        raise HarnessError(f"the report lacks metric {err.args[0]!r}; rebuild it with `hiper-bench report`") from err
    return "\n".join(md), html_page("hiper-bench leaderboard", sections)


def write_leaderboard(report: dict[str, Any], out: Path, reference: list[dict[str, str]] | None = None) -> list[Path]:
    markdown, page = build_leaderboard(report, load_reference() if reference is None else reference)
    out.mkdir(parents=True, exist_ok=True)
    (out / "leaderboard.md").write_text(markdown)
    (out / "index.html").write_text(page)
    return [out / "leaderboard.md", out / "index.html"]
