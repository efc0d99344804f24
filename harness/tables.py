"""Markdown and static HTML tables for reports and leaderboards: no network, no template engine."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

# Click a header to sort by it; numbers sort numerically (an interval sorts by its first number).
# Type in the box above a table to filter its rows.
SORT_SCRIPT = r"""
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var body = table.tBodies[0], rows = Array.from(body.rows);
      var asc = th.dataset.order !== "asc";
      table.querySelectorAll("th").forEach(function (h) { delete h.dataset.order; });
      th.dataset.order = asc ? "asc" : "desc";
      var key = function (row) {
        var text = row.cells[col].dataset.sort || row.cells[col].textContent.trim();
        var num = parseFloat(text);
        return isNaN(num) ? text.toLowerCase() : num;
      };
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (typeof x !== typeof y) { x = String(x); y = String(y); }
        return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
  table.classList.add("ready");
});
// A filter box above each table: rows whose text does not contain every typed word are hidden.
document.querySelectorAll("table.sortable").forEach(function (table) {
  var box = document.createElement("input");
  box.type = "search";
  box.className = "filter";
  box.placeholder = "filter rows";
  box.setAttribute("aria-label", "filter the rows of the next table");
  box.addEventListener("input", function () {
    var words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
    Array.from(table.tBodies[0].rows).forEach(function (row) {
      var text = row.textContent.toLowerCase();
      row.hidden = !words.every(function (w) { return text.indexOf(w) >= 0; });
    });
  });
  table.parentNode.insertBefore(box, table);
});
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f3f3f3; cursor: pointer; }
td:first-child, th:first-child { text-align: left; }
tr.published td { background: #fbf7e8; }
.note { color: #555; max-width: 60em; }
input.filter { margin-top: 0.5em; padding: 0.2em 0.4em; width: 20em; }
svg.chart text { font-size: 11px; fill: #222; }
svg.chart .ours { fill: #3b6ea8; }
svg.chart .published { fill: #d9a441; }
svg.chart .interval { stroke: #111; stroke-width: 1.5; }
svg.chart .axis { stroke: #999; stroke-width: 1; }
"""


def cell(value: Any) -> str:
    """How a value is shown: floats to 3 decimals, None as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    out = [line(headers), "|" + "|".join("---" for _ in headers) + "|"]
    out += [line([cell(v) for v in row]) for row in rows]
    return "\n".join(out) + "\n"


def html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], table_id: str = "",
               row_classes: Sequence[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{html.escape(row_classes[i])}"' if row_classes and row_classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(cell(v))}</td>" for v in row) + "</tr>")
    ident = f' id="{html.escape(table_id)}"' if table_id else ""
    return (f'<table class="sortable"{ident}><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def html_page(title: str, sections: Sequence[str]) -> str:
    """A self-contained page: inline style and script, nothing fetched."""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>\n"
            + "\n".join(sections) + f"\n<script>{SORT_SCRIPT}</script></body></html>\n")
