"""Metrics and reports: a pure function of the stored episodes, then Markdown, HTML, JSON and PNG files.

Error episodes (the harness failed, not the agent) are counted but left out of every rate.
"""

from __future__ import annotations

import html
import json
import math
from datetime import datetime, timezone
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from harness.store import SCHEMA_VERSION
from harness.tables import html_page, html_table, markdown_table

REPORT_SCHEMA = 1
Z95 = 1.959963984540054  # two-sided 95% normal quantile
GROUP = ["env_id", "split", "task_set", "agent"]
BUNDLED = "bundled synthetic tasks"
ORIGINAL = "original dataset files"


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion: sane at 0/n and n/n, unlike the normal one."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # Clamped so rounding never puts the estimate outside its own interval.
    return (min(p, max(0.0, center - half)), max(p, min(1.0, center + half)))


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test on the discordant pairs."""
    if a_only + b_only == 0:
        return 1.0
    return float(binomtest(a_only, a_only + b_only, 0.5).pvalue)


def task_set(env_config: str, task_hash: str) -> str:
    """Which tasks a row ran on. A hash that names its provenance ("synth:..." for generated tasks,
    another scheme such as "sha256:..." for dataset files) decides; otherwise the bundled data is
    synthetic unless the env was given `data_dir`."""
    scheme, sep, _ = task_hash.partition(":")
    if sep:
        return BUNDLED if scheme == "synth" else ORIGINAL
    return BUNDLED if json.loads(env_config)["kwargs"].get("data_dir") is None else ORIGINAL


def _rates(frame: pd.DataFrame) -> dict[str, Any]:
    n, k = len(frame), int(frame["success"].sum())
    low, high = wilson(k, n)
    steps = int(frame["steps"].sum())
    return {"n": n, "successes": k, "success": k / n if n else 0.0, "ci_low": low, "ci_high": high,
            "score": float(frame["score"].mean()), "progress": float(frame["progress"].mean()),
            "steps": float(frame["steps"].mean()),
            "invalid_rate": float(frame["invalid_actions"].sum()) / steps if steps else 0.0}


def _format_valid(transcripts: pd.Series) -> float | None:
    """Share of plan-execute replies that were valid (by the run's protocol); None without any."""
    flags = [s["format_valid"] for t in transcripts for s in json.loads(t) if "format_valid" in s]
    return sum(flags) / len(flags) if flags else None


def _noun_source(transcripts: pd.Series) -> str:
    """Which noun finder scored the group's WebShop purchases: spacy, heuristic, both (not one
    benchmark: scores differ between the two), or "" for groups without a purchase."""
    sources = {s["noun_source"] for t in transcripts for s in json.loads(t) if "noun_source" in s}
    return " and ".join(sorted(sources))


def _curve(transcripts: pd.Series) -> list[float]:
    """Mean progress after each step; an episode that ended keeps its final progress."""
    runs = [[s["progress"] for s in json.loads(t)] for t in transcripts]
    length = max((len(r) for r in runs), default=0)
    padded = [r + [r[-1] if r else 0.0] * (length - len(r)) for r in runs]
    return [float(x) for x in np.mean(padded, axis=0)] if padded and length else []


def agent_label(agent: str, agent_config: str) -> str:
    """The agent's name in reports: an LLM agent's reply protocol follows it in brackets, since the
    same model scores differently under the two (`hiper_envs/wrappers/protocol.py`)."""
    protocol = json.loads(agent_config).get("kwargs", {}).get("protocol")
    return f"{agent} [{protocol}]" if protocol else agent


def build_report(frame: pd.DataFrame) -> dict[str, Any]:
    """Everything the report shows, from the store's rows (with transcripts) alone."""
    frame = frame.assign(task_set=[task_set(c, h) for c, h in zip(frame["env_config"], frame["task_hash"], strict=True)],
                         agent=[agent_label(a, c) for a, c in zip(frame["agent"], frame["agent_config"], strict=True)])
    ok = frame[frame["status"] == "ok"]
    errors = frame[frame["status"] != "ok"].groupby(GROUP).size()
    groups, by_type, hierarchical, curves = [], [], [], []
    for key, part in ok.groupby(GROUP, sort=True):
        ident = dict(zip(GROUP, key, strict=True))
        groups.append({**ident, **_rates(part), "errors": int(errors.get(key, 0)),
                       "noun_source": _noun_source(part["transcript"]),
                       "seeds": sorted(int(s) for s in part["seed"].unique()),
                       "package_versions": sorted(part["package_version"].unique()),
                       "task_hashes": int(part["task_hash"].nunique())})
        for task_type, typed in part.groupby("task_type", sort=True):
            by_type.append({**ident, "task_type": task_type, **_rates(typed)})
        switches = int(part["switches"].sum())
        if switches:
            # The first step of an episode is always a switch, so it cannot be aligned with anything.
            chosen = switches - len(part)
            hierarchical.append({
                **ident, "switch_rate": switches / int(part["steps"].sum()),
                "segment_length": int(part["steps"].sum()) / switches,
                "subgoal_alignment": int(part["aligned_switches"].sum()) / chosen if chosen else None,
                "subgoals_completed": int(part["subgoals_done"].sum()) / max(1, int(part["subgoals_total"].sum())),
                "format_valid": _format_valid(part["transcript"]),
            })
        curves.append({**ident, "progress": _curve(part["transcript"])})
    return {
        "report_schema": REPORT_SCHEMA, "store_schema": SCHEMA_VERSION,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "episodes": int(len(ok)), "errors": int(len(frame) - len(ok)),
        "groups": groups, "task_types": by_type, "paired": _paired(ok), "hierarchical": hierarchical,
        "curves": curves,
    }


def _paired(ok: pd.DataFrame) -> list[dict[str, Any]]:
    """McNemar exact test for every pair of agents on the same episodes (seed, episode, task)."""
    out = []
    for key, part in ok.groupby(GROUP[:3], sort=True):
        outcomes = {agent: rows.drop_duplicates(["seed", "episode", "task_hash"]).set_index(
            ["seed", "episode", "task_hash"])["success"] for agent, rows in part.groupby("agent", sort=True)}
        for a, b in combinations(sorted(outcomes), 2):
            joined = pd.concat([outcomes[a].rename("a"), outcomes[b].rename("b")], axis=1, join="inner")
            if joined.empty:
                continue
            a_only = int((joined["a"] & ~joined["b"]).sum())
            b_only = int((~joined["a"] & joined["b"]).sum())
            out.append({**dict(zip(GROUP[:3], key, strict=True)), "agent_a": a, "agent_b": b,
                        "pairs": len(joined), "both": int((joined["a"] & joined["b"]).sum()),
                        "a_only": a_only, "b_only": b_only, "neither": int((~joined["a"] & ~joined["b"]).sum()),
                        "p_value": mcnemar_exact(a_only, b_only)})
    return out


def interval(row: dict[str, Any]) -> str:
    return f"{100 * row['success']:.1f} [{100 * row['ci_low']:.1f}, {100 * row['ci_high']:.1f}]"


TABLES: dict[str, tuple[str, list[tuple[str, Any]]]] = {
    # section: (report key, [(header, field name or function of the row)])
    "Success by env and agent": ("groups", [
        ("env", "env_id"), ("split", "split"), ("tasks", "task_set"), ("agent", "agent"), ("episodes", "n"),
        ("success % [95% Wilson]", interval), ("score", "score"), ("progress", "progress"), ("steps", "steps"),
        ("invalid-action rate", "invalid_rate"), ("errors", "errors"),
        ("seeds", lambda r: ",".join(map(str, r["seeds"]))), ("WebShop nouns", "noun_source")]),
    "Success by task type": ("task_types", [
        ("env", "env_id"), ("split", "split"), ("tasks", "task_set"), ("agent", "agent"),
        ("task type", "task_type"), ("episodes", "n"), ("success % [95% Wilson]", interval), ("score", "score"),
        ("progress", "progress"), ("steps", "steps"), ("invalid-action rate", "invalid_rate")]),
    "Paired comparisons (McNemar exact test on success)": ("paired", [
        ("env", "env_id"), ("split", "split"), ("tasks", "task_set"), ("agent A", "agent_a"),
        ("agent B", "agent_b"), ("pairs", "pairs"), ("both win", "both"), ("only A", "a_only"),
        ("only B", "b_only"), ("neither", "neither"), ("p-value", "p_value")]),
    "Hierarchical agents": ("hierarchical", [
        ("env", "env_id"), ("split", "split"), ("tasks", "task_set"), ("agent", "agent"),
        ("switch rate", "switch_rate"), ("mean segment length", "segment_length"),
        ("subgoal alignment", "subgoal_alignment"), ("canonical subgoals completed", "subgoals_completed"),
        ("format valid", "format_valid")]),
}


def table_rows(report: dict[str, Any], section: str) -> tuple[list[str], list[list[Any]]]:
    key, columns = TABLES[section]
    rows = [[field(r) if callable(field) else r[field] for _, field in columns] for r in report[key]]
    return [h for h, _ in columns], rows


def plot(report: dict[str, Any], out: Path) -> list[Path]:
    """Per env: success by task type with Wilson interval bars, and mean progress over steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def finish(fig: Any, ax: Any, path: Path) -> Path:
        ax.set_title(f"{env_key[0]} {env_key[1]} ({env_key[2]})", fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path

    written = []
    for env_key in sorted({(g["env_id"], g["split"], g["task_set"]) for g in report["groups"]}):
        stem = "_".join(env_key[:2]).replace("/", "-").replace(":", "-")
        typed = [r for r in report["task_types"] if (r["env_id"], r["split"], r["task_set"]) == env_key]
        types = sorted({r["task_type"] for r in typed})
        agents = sorted({r["agent"] for r in typed})
        fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(types) * max(1, len(agents)) / 2), 3.8))
        width = 0.8 / max(1, len(agents))
        for i, agent in enumerate(agents):
            rows = {r["task_type"]: r for r in typed if r["agent"] == agent}
            xs = [t + i * width for t, name in enumerate(types) if name in rows]
            vals = [rows[name] for name in types if name in rows]
            ys = [100 * r["success"] for r in vals]
            err = [[100 * (r["success"] - r["ci_low"]) for r in vals], [100 * (r["ci_high"] - r["success"]) for r in vals]]
            ax.bar(xs, ys, width, yerr=err, capsize=3, label=agent)
        ax.set_xticks([t + width * (len(agents) - 1) / 2 for t in range(len(types))], types, rotation=20,
                      ha="right", fontsize=8)
        ax.set_ylim(0, 105)
        ax.set_ylabel("success % (95% Wilson)")
        written.append(finish(fig, ax, out / f"success_{stem}.png"))

        fig, ax = plt.subplots(figsize=(5, 3.5))
        for curve in report["curves"]:
            if (curve["env_id"], curve["split"], curve["task_set"]) == env_key and curve["progress"]:
                ax.plot(range(1, len(curve["progress"]) + 1), curve["progress"], label=curve["agent"])
        ax.set_xlabel("step")
        ax.set_ylabel("mean goal progress")
        ax.set_ylim(0, 1.05)
        written.append(finish(fig, ax, out / f"progress_{stem}.png"))
    return written


NOUN_NOTE = ("WebShop scores depend on how the goal's product nouns are found: with spaCy's en_core_web_sm "
             "(the original's) or our heuristic when that model is not installed. The column 'WebShop nouns' "
             "says which scored each row; scores of the two are not one benchmark. For exact scoring: "
             "pip install spacy, then python -m spacy download en_core_web_sm (or pip install that model's "
             "wheel copied from a machine that can download it).")


def write_report(report: dict[str, Any], out: Path) -> list[Path]:
    """report.json (the leaderboard's only input), report.md, report.html and the PNG plots."""
    out.mkdir(parents=True, exist_ok=True)
    images = plot(report, out)
    md = [f"# hiper-bench report\n\n{report['episodes']} episodes, {report['errors']} harness errors "
          f"(left out of the rates). Generated {report['generated_at']}.\n"]
    sections = [f"<p class=\"note\">{report['episodes']} episodes, {report['errors']} harness errors (left out "
                f"of the rates). Generated {html.escape(report['generated_at'])}.</p>"]
    if any(g["noun_source"] for g in report["groups"]):
        md.append(NOUN_NOTE + "\n")
        sections.append(f"<p class=\"note\">{html.escape(NOUN_NOTE)}</p>")
    for section in TABLES:
        headers, rows = table_rows(report, section)
        if rows:
            md.append(f"## {section}\n\n{markdown_table(headers, rows)}")
            sections.append(f"<h2>{html.escape(section)}</h2>{html_table(headers, rows)}")
    md.append("## Plots\n\n" + "".join(f"![{p.stem}]({p.name})\n" for p in images))
    sections.append("<h2>Plots</h2>" + "".join(f'<img src="{p.name}" alt="{p.stem}">' for p in images))
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "report.md").write_text("\n".join(md))
    (out / "report.html").write_text(html_page("hiper-bench report", sections))
    return [out / "report.json", out / "report.md", out / "report.html", *images]
