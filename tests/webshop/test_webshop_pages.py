"""Pages: exact text on a tiny catalogue, and text == what BeautifulSoup extracts from the HTML."""

import json

import gymnasium as gym
import pytest
from bs4 import BeautifulSoup
from bs4.element import Comment

import hiper_envs  # noqa: F401  (registers the ids)
from hiper_envs.webshop.engine import Session, Shop
from hiper_envs.webshop.pages import Urls, to_html

SHAMPOO = "Acme Sulfate Free Shampoo for Dry Hair"


def original_text(html: str) -> str:
    """The original's `text` observation: visible strings of html.parser's tree, stripped, [SEP]."""
    ignore = {"style", "script", "head", "title", "meta", "[document]"}
    texts = BeautifulSoup(html, "html.parser").find_all(string=True)
    visible = [t for t in texts if t.parent.name not in ignore and not isinstance(t, Comment)]
    return " [SEP] ".join(t.strip() for t in visible if t != "\n")


def original_text_rich(html: str, options: dict, visited: set) -> str:
    """The original's `text_rich` observation, from the HTML, the chosen options and visited ASINs."""
    ignore = {"style", "script", "head", "title", "meta", "[document]"}
    texts = BeautifulSoup(html, "html.parser").find_all(string=True)
    url = json.dumps(options)
    observation = ""
    for t in texts:
        if t.parent.name in ignore or isinstance(t, Comment) or t == "\n":
            continue
        if t.parent.name == "button":
            shown = f"[button] {t} [button_]"
        elif t.parent.name == "label":
            if f'"{t}"' in url:
                shown = f"  [clicked button] {t} [clicked button_]"
                observation = f"You have clicked {t}.\n" + observation
            else:
                shown = f"  [button] {t} [button_]"
        elif t.parent.get("class") == ["product-link"]:
            shown = (
                f"\n[clicked button] {t} [clicked button_]" if t in visited else f"\n[button] {t} [button_]"
            )
        else:
            shown = str(t)
        observation += shown + "\n"
    return observation


def original_clickables(html: str) -> list[str]:
    soup = BeautifulSoup(html, "html.parser")
    found = {
        b.get_text().lower(): b for b in soup.find_all(class_="btn") + soup.find_all(class_="product-link")
    }
    for radio in soup.select('input[type="radio"]'):
        found[radio.get("value")] = radio
    return list(found)


@pytest.fixture
def tiny_env(tiny_dir):
    env = gym.make("HiPER/WebShop-v0", data_dir=str(tiny_dir), expert=True)
    yield env
    env.close()


def shampoo_task(env, size: str) -> str:
    goals = env.unwrapped.shop.goals
    return next(
        str(i) for i, g in enumerate(goals) if g.asin == "B000000001" and ("size", size) in g.goal_options
    )


def test_exact_observations_for_each_page_kind(tiny_env):
    obs, info = tiny_env.reset(seed=0, options={"task_id": shampoo_task(tiny_env, "16 fl oz")})
    task = info["task"]
    assert task.startswith("i need a sulfate free shampoo with scent: lavender | mint, and size: 16 fl oz")
    head = f"Instruction: [SEP] {task} [SEP] Back to Search"
    assert obs == f"WebShop [SEP] Instruction: [SEP] {task} [SEP] Search"
    assert info["admissible_actions"] == ["search[<query>]"]

    obs, *_, info = tiny_env.step("search[Shampoo]")
    assert (
        obs
        == f"{head} [SEP] Page 1 (Total results: 1) [SEP] Next > [SEP] B000000001 [SEP] {SHAMPOO} [SEP] $12.99"
    )
    assert info["admissible_actions"] == ["click[back to search]", "click[next >]", "click[b000000001]"]

    obs, *_, info = tiny_env.step("click[b000000001]")
    item = (
        f"{head} [SEP] < Prev [SEP] size [SEP] 8 fl oz [SEP] 16 fl oz [SEP] scent [SEP] lavender | mint [SEP] "
        f"{SHAMPOO} [SEP] Price: $12.99 [SEP] Rating: N.A. [SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now"
    )
    assert obs == item
    assert info["admissible_actions"][-3:] == ["click[8 fl oz]", "click[16 fl oz]", "click[lavender | mint]"]

    assert (
        tiny_env.step("click[Features]")[0]
        == f"{head} [SEP] < Prev [SEP] Sulfate free formula [SEP] For dry hair"
    )
    assert tiny_env.step("click[< prev]")[0] == item
    assert tiny_env.step("click[description]")[0] == f"{head} [SEP] < Prev [SEP] A gentle shampoo."
    assert tiny_env.step("click[< prev]")[0] == item
    assert tiny_env.step("click[reviews]")[0] == f"{head} [SEP] < Prev"
    tiny_env.step("click[< prev]")
    tiny_env.step("click[16 fl oz]")
    tiny_env.step("click[lavender | mint]")
    obs, reward, terminated, _, info = tiny_env.step("click[buy now]")
    assert obs == "Thank you for shopping with us! [SEP] Your score (min 0.0, max 1.0) [SEP] 1.0"
    assert (reward, terminated, info["won"], info["admissible_actions"]) == (1.0, True, True, [])


def all_page_sessions(shop: Shop):
    """One session per page kind (and variants), each paired with a name."""
    goal = shop.goals[0]
    rng = __import__("numpy").random.default_rng(0)
    shirt = shop.catalog.by_asin["B000000002"]
    shampoo = shop.catalog.by_asin["B000000001"]

    def fresh(**kw):
        return Session(shop, goal, rng, show_attributes=True, **kw)

    s = fresh()
    yield "search", s
    s = fresh()
    s.goto_results(["<r>"], 1)
    yield "results-random", s
    s = fresh()
    s.goto_results(["zzz", "nothing"], 2)
    yield "results-empty-page-2", s
    s = fresh()
    s.goto_results(["cotton"], 1)
    s.goto_item(shirt, {"color": "black"}, ["cotton"], 1)
    yield "item-chosen", s
    for sub in ("Description", "Features", "Reviews", "Attributes"):
        s = fresh()
        s.goto_sub(shampoo, sub, {"size": "16 fl oz"}, ["shampoo"], 1)
        yield f"sub-{sub}", s
    s = fresh()
    s.goto_results(["shampoo"], 1)
    s.goto_item(shampoo, {}, ["shampoo"], 1)
    s.goto_results(["shampoo", "table"], 1)
    yield "results-visited", s
    s = fresh()
    s.buy(shirt, {"color": "navy blue"})
    yield "done", s


def test_text_equals_beautifulsoup_of_html_for_every_page_kind(tiny_dir):
    shop = Shop.load(tiny_dir, "synthetic")
    kinds = set()
    for name, session in all_page_sessions(shop):
        kinds.add(session.kind)
        html = session.observe("html")
        assert session.observe("text") == original_text(html), name
        rich = original_text_rich(html, session.options, session.visited)
        assert session.observe("text_rich") == rich, name
        assert session.clickables() == original_clickables(html), name
    assert kinds == {"search", "results", "item", "sub", "done"}


def test_text_rich_marks_clicked(tiny_env):
    tiny_env.reset(seed=0, options={"task_id": shampoo_task(tiny_env, "8 fl oz")})
    tiny_env.unwrapped.observation_mode = "text_rich"
    tiny_env.step("search[shampoo]")
    tiny_env.step("click[b000000001]")
    obs = tiny_env.step("click[8 fl oz]")[0]
    assert obs.startswith("You have clicked 8 fl oz.\n")
    assert "  [clicked button] 8 fl oz [clicked button_]\n" in obs
    assert "[button] Buy Now [button_]" in obs


def test_user_text_is_escaped_in_html(tiny_dir):
    shop = Shop.load(tiny_dir, "synthetic")
    session = Session(shop, shop.goals[0], __import__("numpy").random.default_rng(0))
    session.goto_results("<script>alert(1)</script> cotton".split(" "), 1)
    html = to_html(session.view(), Urls("s1"))
    assert "<script>alert" not in html
    assert "Zeta Cotton T-Shirt &lt;b&gt;Bold&lt;/b&gt; &amp; Co" in html
    assert "Zeta Cotton T-Shirt <b>Bold</b> & Co" in session.observe("text")
