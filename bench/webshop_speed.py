"""WebShop speed: text-env step and reset latency, against the original's way of making a text page.

    .venv/bin/python bench/webshop_speed.py [--episodes 200] [--original PATH]
        [--products N [--data DIR]]

* ours: `HiPER/WebShop-v0` (text mode) driven by its expert with detours; per-step and reset latency,
  and BM25 search latency (p50/p90).
* original (with ``--original``, a checkout or git directory of princeton-nlp/WebShop, read at run
  time and never copied): for the same pages, what its text env does on every step — compile and
  render the page's Jinja template (``render_template_string``) and parse the HTML with
  BeautifulSoup twice (available actions, then the text observation). Its full env cannot run here:
  it needs Java (pyserini), the spaCy model and its data downloads.
* ``--products N``: also generate an N-product catalogue (into ``--data DIR``, kept and reused when
  it is there, else a temporary folder), prebuild its product store and search index in a fresh
  process (each timed, with that process's peak RSS), then in another fresh process measure start-up
  (import, make, reset, one search) and its peak RSS, then search p50/p90 and step latency there.
  Run it niced on a shared machine: 1.2M products take minutes to generate and to prebuild.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import hiper_envs  # noqa: F401
from hiper_envs.webshop.engine import Session


def percentiles(samples: list[float]) -> str:
    a = np.array(samples) * 1e3
    return f"p50 {np.percentile(a, 50):.3f} ms, p90 {np.percentile(a, 90):.3f} ms, mean {a.mean():.3f} ms (n={len(a)})"


def peak_rss_mib() -> float:
    """This process's peak RSS. Not ``getrusage``'s ``ru_maxrss``: Linux carries a parent's peak over
    fork and exec into the child, so a child of a big process would report the parent's size."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def run_ours(episodes: int, data_dir: str | None = None) -> tuple[list[float], list[float], list[Session]]:
    """Step and reset latencies of the text env, and a copy of each page state visited."""
    env = gym.make("HiPER/WebShop-v0", expert=True, data_dir=data_dir)
    rng = np.random.default_rng(0)
    steps, resets, states = [], [], []
    for episode in range(episodes):
        t = time.perf_counter()
        obs, info = env.reset(seed=episode)
        resets.append(time.perf_counter() - t)
        done = False
        while not done:
            detour = rng.random() < 0.3 and info["admissible_actions"]
            action = str(rng.choice(info["admissible_actions"])) if detour else info["expert_action"]
            action = action.replace("<query>", "cotton shirt") if action else "click[nothing]"
            t = time.perf_counter()
            obs, reward, terminated, truncated, info = env.step(action)
            steps.append(time.perf_counter() - t)
            done = terminated or truncated
            states.append(_snapshot(env.unwrapped.session))
    env.close()
    return steps, resets, states


def _snapshot(session: Session) -> dict:
    return {"view": session.view(), "kind": session.kind}


def original_renderer(path: Path):
    """A function view -> seconds spent the original's way (template compile + render + 2 parses)."""
    from bs4 import BeautifulSoup
    from bs4.element import Comment
    from flask import Flask, render_template_string

    templates = {}
    names = {"search": "search_page", "results": "results_page", "item": "item_page", "done": "done_page"}
    subs = {"Description": "description_page", "Features": "features_page", "Reviews": "review_page"}
    subs["Attributes"] = "attributes_page"
    for name in [*names.values(), *subs.values()]:
        rel = f"web_agent_site/templates/{name}.html"
        if (path / rel).exists():
            templates[name] = (path / rel).read_text()
        else:  # a bare git directory
            templates[name] = subprocess.run(
                ["git", f"--git-dir={path}", "show", f"HEAD:{rel}"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
    app = Flask("original")
    for rule, endpoint in [
        ("/<session_id>", "index"),
        ("/search_results/<session_id>/<keywords>/<page>", "search_results"),
        ("/item_page/<session_id>/<asin>/<keywords>/<page>/<options>", "item_page"),
        ("/item_sub_page/<session_id>/<asin>/<keywords>/<page>/<sub_page>/<options>", "item_sub_page"),
        ("/done/<session_id>/<asin>/<options>", "done"),
    ]:
        app.add_url_rule(rule, endpoint, lambda **_: "")

    def info(p):
        return {
            "asin": p.asin, "Title": p.title, "Price": p.price_tag, "Rating": "N.A.", "MainImage": p.main_image,
            "options": p.options, "option_to_image": {}, "Description": p.description,
            "BulletPoints": p.bullet_points, "Reviews": [], "Attributes": p.attributes, "category": p.category,
            "query": p.query, "product_category": p.product_category,
        }  # fmt: skip

    def to_text(html: str) -> str:
        soup = BeautifulSoup(html, "html.parser")
        soup.find_all(class_="btn"), soup.select('input[type="radio"]')  # available actions
        texts = BeautifulSoup(html, "html.parser").find_all(string=True)
        ignore = {"style", "script", "head", "title", "meta", "[document]"}
        return " [SEP] ".join(
            t.strip()
            for t in texts
            if t.parent.name not in ignore and not isinstance(t, Comment) and t != "\n"
        )

    def render(state: dict) -> float:
        v = state["view"]
        common = {"session_id": "abc", "instruction_text": v.instruction}
        if v.kind == "search":
            name, kw = names["search"], {}
        elif v.kind == "results":
            products = [info(p) for p in v.products]
            name, kw = (
                names["results"],
                {"products": products, "keywords": v.keywords, "page": v.page, "total": v.total},
            )
        elif v.kind == "done":
            name, kw = (
                names["done"],
                {"reward": v.score, "asin": v.product.asin, "options": v.options, "goal": {}},
            )
        else:
            name = names["item"] if v.kind == "item" else subs[v.sub]
            kw = {
                "product_info": info(v.product),
                "keywords": v.keywords,
                "page": v.page,
                "asin": v.product.asin,
            }
            kw |= {"options": v.options, "show_attrs": False}
        t = time.perf_counter()
        with app.test_request_context():
            to_text(render_template_string(templates[name], **common, **kw))
        return time.perf_counter() - t

    return render


def search_latency(queries: int, data_dir: str | None = None) -> list[float]:
    env = gym.make("HiPER/WebShop-v0", data_dir=data_dir)
    env.reset(seed=0)
    shop = env.unwrapped.shop
    goals = shop.goals[:queries]
    out = []
    for goal in goals:
        t = time.perf_counter()
        shop.search.bm25(goal.instruction_text.lower())
        out.append(time.perf_counter() - t)
    return out


def startup(data_dir: str, _episodes: int) -> dict:
    """Make, reset and search once (in a fresh process, whose wall time `child` measures)."""
    env = gym.make("HiPER/WebShop-v0", data_dir=data_dir, split="train")
    env.reset(seed=0)
    env.step("search[cotton t-shirt black]")
    return {"startup_peak_rss_mib": round(peak_rss_mib())}


def prebuild(data_dir: str, _episodes: int) -> dict:
    """Build the product store, then the search index, of `data_dir` (in a fresh process)."""
    from hiper_envs.webshop.catalog import find_data_files
    from hiper_envs.webshop.search import SearchEngine
    from hiper_envs.webshop.store import ProductStore

    t = time.perf_counter()
    store = ProductStore.open(find_data_files(data_dir))
    store_s = time.perf_counter() - t
    t = time.perf_counter()
    SearchEngine(store)
    index_s = time.perf_counter() - t
    return {"store_build_s": round(store_s, 1), "index_build_s": round(index_s, 1),
            "prebuild_peak_rss_mib": round(peak_rss_mib())}  # fmt: skip


def at_scale(data_dir: str, episodes: int) -> dict:
    """Search and step latency on `data_dir` (in a fresh process)."""
    search = np.array(search_latency(300, data_dir)) * 1e3
    steps, _resets, _states = run_ours(episodes, data_dir)
    step = np.array(steps) * 1e3
    return {
        "search_p50_ms": round(float(np.percentile(search, 50)), 2),
        "search_p90_ms": round(float(np.percentile(search, 90)), 2),
        "step_p50_ms": round(float(np.percentile(step, 50)), 3),
        "step_p90_ms": round(float(np.percentile(step, 90)), 3),
        "step_mean_ms": round(float(step.mean()), 3),
        "steps": len(step),
        "peak_rss_after_mib": round(peak_rss_mib()),
    }


PHASES = {"prebuild": prebuild, "startup": startup, "at_scale": at_scale}  # in this order


def child(phase: str, data_dir: str, episodes: int) -> dict:
    """Run `phase` of this script in a fresh process: its JSON result, plus the process's wall time
    (interpreter start and imports included)."""
    cmd = [sys.executable, __file__, "--phase", phase, "--data", data_dir, "--episodes", str(episodes)]
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return {f"{phase}_s": round(time.perf_counter() - t, 2), **json.loads(out.stdout)}


def scale(n_products: int, data_dir: Path | None, episodes: int) -> None:
    from hiper_envs.webshop.generate import write_catalog

    with tempfile.TemporaryDirectory() as tmp:
        out = data_dir or Path(tmp)
        if not (out.is_dir() and any(out.glob(f"items_shuffle_{n_products}.json*"))):
            t = time.perf_counter()
            write_catalog(out, n_products)
            print(json.dumps({"products": n_products, "generate_s": round(time.perf_counter() - t, 1)}))
        for phase in PHASES:
            print(json.dumps({"products": n_products, **child(phase, str(out), episodes)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--original", type=Path, help="princeton-nlp/WebShop checkout or git dir")
    parser.add_argument("--products", type=int, help="also measure start-up at this catalogue size")
    parser.add_argument("--data", type=Path, help="folder for the --products catalogue (kept, reused)")
    parser.add_argument("--phase", choices=list(PHASES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:  # a child process of this script
        print(json.dumps(PHASES[args.phase](str(args.data), args.episodes)))
        return

    bundled = str(Path(hiper_envs.__file__).parent / "webshop" / "data")
    print(json.dumps({"products": 1000, **child("startup", bundled, args.episodes)}))
    steps, resets, states = run_ours(args.episodes)
    print(f"ours   step:  {percentiles(steps)}  -> {len(steps) / sum(steps):.0f} steps/s")
    print(f"ours   reset: {percentiles(resets)}")
    print(f"search (BM25, bundled 1k): {percentiles(search_latency(300))}")
    if args.original:
        render = original_renderer(args.original)
        original = [render(s) for s in states]
        print(f"original text page (compile+render+2 parses): {percentiles(original)}")
        print(f"ratio (original mean / ours mean): {np.mean(original) / np.mean(steps):.1f}x")
    if args.products:
        scale(args.products, args.data, min(args.episodes, 50))


if __name__ == "__main__":
    main()
