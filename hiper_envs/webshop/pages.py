"""The pages: one view of the state, rendered as text, rich text, HTML, and its clickables.

The ``text`` observation is built straight from the view, with no HTML parse. It equals what the
original extracts from the page's HTML (visible strings as BeautifulSoup's ``html.parser`` yields
them, ``"\\n"`` dropped, stripped, joined with `` [SEP] ``); tests check this for every page kind.
``text_rich`` follows the original's rich format: ``[button] X [button_]``, chosen options and
visited products as ``[clicked button] X [clicked button_]``, ``You have clicked <value>.`` first.
HTML comes from Jinja templates compiled once and shared with the Flask site.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, urlencode

import jinja2

from hiper_envs.webshop.catalog import Product

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
PAGE_KINDS = ("search", "results", "item", "sub", "done")
SUB_PAGES = ("Description", "Features", "Reviews", "Attributes")
BACK_TO_SEARCH, PREV_PAGE, NEXT_PAGE, BUY_NOW, SEARCH_BUTTON = (
    "Back to Search",
    "< Prev",
    "Next >",
    "Buy Now",
    "Search",
)
_ASCII_SPACES = frozenset("\x20\x0a\x09\x0c\x0d")

# Node kinds: "text" (plain), "button", "product" (a result's ASIN link), "option" (a radio label).
Node = tuple[str, str]


@dataclass
class View:
    """Everything a page shows."""

    kind: str
    instruction: str
    keywords: list[str] = field(default_factory=list)
    page: int = 1
    total: int = 0
    products: list[Product] = field(default_factory=list)
    product: Product | None = None
    options: dict[str, str] = field(default_factory=dict)
    sub: str = ""
    score: float = 0.0
    visited: frozenset[str] = frozenset()
    show_attributes: bool = False

    @property
    def sub_pages(self) -> tuple[str, ...]:
        return SUB_PAGES if self.show_attributes else SUB_PAGES[:3]


def as_parsed(text: str) -> str | None:
    """The string BeautifulSoup's html.parser keeps for element text `text` (None: no string)."""
    if not text:
        return None
    if all(c in _ASCII_SPACES for c in text):
        return "\n" if "\n" in text else " "
    return text


def nodes(v: View) -> list[Node]:
    """The visible strings of the page in document order, with what kind of element holds each."""
    out: list[Node] = []
    if v.kind == "search":
        out += [("text", "WebShop")]
    if v.kind != "done":
        out += [("text", "Instruction:"), ("text", v.instruction)]
    if v.kind in ("results", "item", "sub"):
        out.append(("button", BACK_TO_SEARCH))
    if v.kind == "search":
        out.append(("button", SEARCH_BUTTON))
    elif v.kind == "results":
        out.append(("text", f"Page {v.page} (Total results: {v.total})"))
        if v.page > 1:
            out.append(("button", PREV_PAGE))
        out.append(("button", NEXT_PAGE))
        for p in v.products:
            out += [("product", p.asin), ("text", p.title), ("text", p.price_tag)]
    elif v.kind == "item":
        p = v.product
        out.append(("button", PREV_PAGE))
        for name, values in p.options.items():
            out.append(("text", name))
            out += [("option", value) for value in values]
        out += [("text", p.title), ("text", f"Price: {p.price_tag}"), ("text", "Rating: N.A.")]
        out += [("button", sub) for sub in v.sub_pages]
        out.append(("button", BUY_NOW))
    elif v.kind == "sub":
        p = v.product
        out.append(("button", PREV_PAGE))
        if v.sub == "Description":
            out.append(("text", p.description))
        elif v.sub == "Features":
            out += [("text", b) for b in p.bullet_points]
        elif v.sub == "Attributes":
            out += [("text", a) for a in p.attributes]
            out += [("text", p.category), ("text", p.query), ("text", p.product_category)]
    elif v.kind == "done":
        out += [
            ("text", "Thank you for shopping with us!"),
            ("text", "Your score (min 0.0, max 1.0)"),
            ("text", str(v.score)),
        ]
    return [(kind, s) for kind, text in out if (s := as_parsed(text)) is not None]


def to_text(page_nodes: list[Node]) -> str:
    """The ``text`` observation: stripped strings joined with `` [SEP] ``."""
    return " [SEP] ".join(text.strip() for _kind, text in page_nodes if text != "\n")


def to_text_rich(page_nodes: list[Node], chosen: set[str], visited: frozenset[str]) -> str:
    """The ``text_rich`` observation (the original's tagged format)."""
    observation = ""
    for kind, text in page_nodes:
        if text == "\n":
            continue
        if kind == "button":
            shown = f"[button] {text} [button_]"
        elif kind == "option":
            if text in chosen:
                shown = f"  [clicked button] {text} [clicked button_]"
                observation = f"You have clicked {text}.\n" + observation
            else:
                shown = f"  [button] {text} [button_]"
        elif kind == "product":
            tag = "clicked button" if text in visited else "button"
            shown = f"\n[{tag}] {text} [{tag}_]"
        else:
            shown = text
        observation += shown + "\n"
    return observation


def clickables(page_nodes: list[Node]) -> list[str]:
    """Button texts and product ASINs lowercased, then option values, each once (the original's order)."""
    names = [t.lower() for k, t in page_nodes if k == "button"] + [
        t.lower() for k, t in page_nodes if k == "product"
    ]
    names += [t for k, t in page_nodes if k == "option"]
    return list(dict.fromkeys(names))


def admissible_actions(page_nodes: list[Node], has_search_bar: bool) -> list[str]:
    """``search[<query>]`` where a search bar is, plus ``click[x]`` for every clickable but Search."""
    actions = ["search[<query>]"] if has_search_bar else []
    return actions + [f"click[{c}]" for c in clickables(page_nodes) if c != SEARCH_BUTTON.lower()]


class Urls:
    """The site's URL scheme for one session; templates use it for every link and form."""

    def __init__(self, session_id: str):
        self.sid = quote(session_id, safe="")

    @staticmethod
    def static(name: str) -> str:
        return f"/static/{name}"

    def index(self) -> str:
        return f"/{self.sid}"

    def results(self, keywords: list[str], page: int) -> str:
        return f"/search_results/{self.sid}?" + urlencode({"q": " ".join(keywords), "page": page})

    def item(
        self, asin: str, keywords: list[str], page: int, options: dict, choose: tuple | None = None
    ) -> str:
        if choose is not None:
            options = {**options, choose[0]: choose[1]}
        query = urlencode({"q": " ".join(keywords), "page": page, "options": json.dumps(options)})
        return f"/item_page/{self.sid}/{quote(asin, safe='')}?{query}"

    def sub(self, asin: str, sub: str, keywords: list[str], page: int, options: dict) -> str:
        query = urlencode({"q": " ".join(keywords), "page": page, "options": json.dumps(options)})
        return f"/item_sub_page/{self.sid}/{quote(asin, safe='')}/{sub}?{query}"

    def done(self, asin: str, options: dict) -> str:
        return f"/done/{self.sid}/{quote(asin, safe='')}?" + urlencode({"options": json.dumps(options)})


@lru_cache(maxsize=1)
def templates() -> jinja2.Environment:
    """The page templates, compiled once per process."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    for kind in PAGE_KINDS:
        env.get_template(f"{kind}.html")
    return env


def to_html(v: View, urls: Urls) -> str:
    """The page's HTML, as the site serves it."""
    return templates().get_template(f"{v.kind}.html").render(v=v, urls=urls)
