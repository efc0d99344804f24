"""The shop's state machine: one `Shop` (catalogue, search, goals) and one `Session` per episode.

Transitions (``goto_*``, ``buy``) are shared by the text env, which reaches them through
``search[...]``/``click[...]`` actions with the original's acceptance rules, and by the Flask site,
which reaches them through its URLs.

Acceptance rules (hiper_envs/webshop/README.md): an action must match ``(.+)\\[(.+)\\]`` at its start (no line
breaks); the argument is lowercased. ``search[<query>]`` is accepted on any page (the query is split
on single spaces); ``click[<x>]`` only when ``x`` is one of the page's clickables other than
``search``. Anything else, or any action after Buy, changes nothing and gives reward 0.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from hiper_envs.webshop.catalog import BUNDLED_DIR, Product, Products, find_data_files
from hiper_envs.webshop.goals import Goal
from hiper_envs.webshop.pages import (
    BACK_TO_SEARCH,
    BUY_NOW,
    NEXT_PAGE,
    PREV_PAGE,
    SEARCH_BUTTON,
    SUB_PAGES,
    Node,
    Urls,
    View,
    admissible_actions,
    clickables,
    nodes,
    to_html,
    to_text,
    to_text_rich,
)
from hiper_envs.webshop.reward import score_purchase
from hiper_envs.webshop.search import SearchEngine
from hiper_envs.webshop.store import ProductStore

PRODUCT_WINDOW = 10
OBSERVATION_MODES = ("text", "text_rich", "html")
_ACTION = re.compile(r"(.+)\[(.+)\]")


def parse_action(action: str) -> tuple[str, str | None]:
    """``"click[Buy Now]"`` -> ``("click", "buy now")``; unparsable -> ``(action, None)``."""
    m = _ACTION.match(action)
    if m is None:
        return action, None
    return m.group(1), m.group(2).lower()


MAX_QUERY_CHARS = 2000  # a search's text past this is not searched: a URL carries it in the browser env


def search_keywords(query: str) -> list[str] | None:
    """The words a ``search[...]`` action searches for, the same in the text and the browser env:
    None (the action is refused) for text that is not valid Unicode (a lone surrogate cannot be
    typed into a page); text past `MAX_QUERY_CHARS` characters is left out."""
    try:
        query.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return query[:MAX_QUERY_CHARS].split(" ")


class Shop:
    """A catalogue (the persisted `ProductStore`, or an in-memory `Catalog`), its search engine and
    the shuffled goals of one goal kind."""

    def __init__(self, catalog: Products, goals: Sequence[Goal]):
        self.catalog = catalog
        self.search = SearchEngine(catalog)
        self.goals = goals

    @classmethod
    def load(cls, data_dir: str | os.PathLike | None, goal_kind: str) -> Shop:
        """A shop on the product store of the files, shared by every env of this process on them
        (reopened if they change); the store and the index are built first if not in the cache."""
        files = find_data_files(BUNDLED_DIR if data_dir is None else data_dir)
        stamp = tuple((key, str(p), p.stat().st_size, p.stat().st_mtime_ns) for key, p in files.items())
        return _cached_shop(stamp, goal_kind)


@lru_cache(maxsize=8)
def _cached_store(stamp: tuple) -> ProductStore:
    return ProductStore.open({key: Path(path) for key, path, _size, _mtime in stamp})


@lru_cache(maxsize=8)
def _cached_shop(stamp: tuple, goal_kind: str) -> Shop:
    store = _cached_store(stamp)
    return Shop(store, store.goals(goal_kind))


class Session:
    """One episode's browsing state for one goal."""

    def __init__(self, shop: Shop, goal: Goal, rng: np.random.Generator, show_attributes: bool = False):
        self.shop = shop
        self.goal = goal
        self.rng = rng
        self.show_attributes = show_attributes
        self.kind = "search"
        self.keywords: list[str] | None = None
        self.page = 1
        self.results: Sequence[Product] = []
        self.product: Product | None = None
        self.options: dict[str, str] = {}
        self.sub = ""
        self.visited: set[str] = set()
        self.done = False
        self.score = 0.0
        self.breakdown: dict = {}
        self._nodes: list[Node] | None = None

    # --- transitions (shared with the site) ---------------------------------------------------
    def _moved(self, kind: str) -> None:
        self.kind = kind
        self._nodes = None

    def goto_search(self) -> None:
        """The search page; forgets the search, the product and the visited products."""
        self.keywords, self.page, self.product, self.options = None, 1, None, {}
        self.results, self.visited = [], set()
        self._moved("search")

    def goto_results(self, keywords: list[str], page: int) -> None:
        """Run the search and show results page `page` (10 per page of the result list)."""
        self.keywords, self.page, self.product, self.options = keywords, page, None, {}
        self.results = self.shop.search.search(keywords, self.rng)
        self._moved("results")

    def goto_item(self, product: Product, options: dict[str, str], keywords: list[str], page: int) -> None:
        self.keywords, self.page, self.product, self.options = keywords, page, product, dict(options)
        self.visited.add(product.asin)
        self._moved("item")

    def goto_sub(
        self, product: Product, sub: str, options: dict[str, str], keywords: list[str], page: int
    ) -> None:
        self.goto_item(product, options, keywords, page)
        self.sub = sub
        self._moved("sub")

    def buy(self, product: Product, options: dict[str, str]) -> float:
        """End the episode with this purchase; returns the task score."""
        self.product, self.options = product, dict(options)
        self.score, self.breakdown = score_purchase(product, self.goal, self.options)
        self.done = True
        self._moved("done")
        return self.score

    # --- views ---------------------------------------------------------------------------------
    @property
    def page_products(self) -> list[Product]:
        return self.results[(self.page - 1) * PRODUCT_WINDOW : self.page * PRODUCT_WINDOW]

    def view(self) -> View:
        return View(
            kind=self.kind,
            instruction=self.goal.instruction_text,
            keywords=self.keywords or [],
            page=self.page,
            total=len(self.results),
            products=self.page_products if self.kind == "results" else [],
            product=self.product,
            options=self.options,
            sub=self.sub,
            score=self.score,
            visited=frozenset(self.visited),
            show_attributes=self.show_attributes,
        )

    @property
    def nodes(self) -> list[Node]:
        if self._nodes is None:
            self._nodes = nodes(self.view())
        return self._nodes

    def clickables(self) -> list[str]:
        return clickables(self.nodes)

    def admissible_actions(self) -> list[str]:
        """``search[<query>]`` on the search page, plus ``click[x]`` for every clickable x."""
        return admissible_actions(self.nodes, self.kind == "search")

    def observe(self, mode: str, session_id: str = "env") -> str:
        if mode == "text":
            return to_text(self.nodes)
        if mode == "text_rich":
            return to_text_rich(self.nodes, set(self.options.values()), frozenset(self.visited))
        return to_html(self.view(), Urls(session_id))

    # --- actions -------------------------------------------------------------------------------
    def step(self, action: str) -> tuple[bool, float]:
        """Apply a text action; returns (accepted, reward). A refused action changes nothing."""
        if self.done:
            return False, 0.0
        name, arg = parse_action(action)
        if name == "search" and arg:
            keywords = search_keywords(arg)
            if keywords is None:
                return False, 0.0
            self.goto_results(keywords, 1)
            return True, 0.0
        if name != "click" or arg is None or arg == SEARCH_BUTTON.lower() or arg not in self.clickables():
            return False, 0.0
        return True, self._click(arg)

    def _click(self, target: str) -> float:
        keywords, page = self.keywords or [], self.page
        if target == BUY_NOW.lower():
            return self.buy(self.product, self.options)
        if target == BACK_TO_SEARCH.lower():
            self.goto_search()
        elif target == NEXT_PAGE.lower():
            self.goto_results(keywords, page + 1)
        elif target == PREV_PAGE.lower() and self.kind == "results":
            self.goto_results(keywords, page - 1)
        elif target == PREV_PAGE.lower() and self.kind == "sub":
            self.goto_item(self.product, self.options, keywords, page)
        elif target == PREV_PAGE.lower():
            self.goto_results(keywords, page)
        elif target in (s.lower() for s in SUB_PAGES):
            sub = next(s for s in SUB_PAGES if s.lower() == target)
            self.goto_sub(self.product, sub, self.options, keywords, page)
        elif self.kind == "results":
            product = next(p for p in self.page_products if p.asin.lower() == target)
            self.goto_item(product, {}, keywords, page)
        else:  # an option value: the last option that offers it, as the original's lookup
            name = [n for n, values in self.product.options.items() if target in values][-1]
            self.goto_item(self.product, {**self.options, name: target}, keywords, page)
        return 0.0
