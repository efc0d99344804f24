"""The oracle: the next action that leads to the goal product with its options, from any page.

It decides from the state alone, so it replans after any deviation: search for the goal product's
title (the title and first bullet point if that search missed it), page to it, open it, choose each
goal option not yet chosen, buy. Sub-pages and other products are left with ``< Prev``.
"""

from __future__ import annotations

import re

from hiper_envs.webshop.catalog import Product
from hiper_envs.webshop.engine import PRODUCT_WINDOW, Session
from hiper_envs.webshop.goals import Goal
from hiper_envs.webshop.reward import option_matched


def wanted_options(goal: Goal, product: Product) -> dict[str, str]:
    """The option values to choose on `product` for `goal` (option name -> value)."""
    wanted: dict[str, str] = {}
    for option in goal.goal_options:
        if isinstance(option, tuple):
            name, value = option
            if value in product.options.get(name, ()):
                wanted[name] = value
            continue
        offered = [(n, v) for n, values in product.options.items() for v in values]
        exact = [(n, v) for n, v in offered if v == option]
        close = exact or [(n, v) for n, v in offered if option_matched(option, [v])]
        if close:
            wanted.setdefault(*close[0])
    return wanted


def _query(text: str) -> str:
    """Lowercased words of `text` that parse as one search argument (no brackets or line breaks)."""
    return re.sub(r"[\[\]\s]+", " ", text.lower()).strip()


def _search_action(session: Session, target: Product) -> str:
    query = _query(target.title)
    if session.keywords == query.split(" ") and target.bullet_points:
        query = _query(f"{target.title} {target.bullet_points[0]}")
    return f"search[{query}]"


def expert_action(session: Session) -> str | None:
    """The oracle's next action (None once the episode is over)."""
    if session.done:
        return None
    target = session.shop.catalog.by_asin[session.goal.asin]
    on_target = session.product is not None and session.product.asin == target.asin
    if session.kind == "item" and on_target:
        for name, value in wanted_options(session.goal, target).items():
            offering = [n for n, values in target.options.items() if value in values]
            if session.options.get(name) != value and offering[-1] == name:
                return f"click[{value}]"
        return "click[buy now]"
    if session.kind == "sub" and on_target:
        return "click[< prev]"
    in_results = target in session.results
    if session.kind == "results" and in_results:
        target_page = session.results.index(target) // PRODUCT_WINDOW + 1
        if target_page == session.page:
            return f"click[{target.asin.lower()}]"
        return "click[next >]" if target_page > session.page else "click[< prev]"
    if session.kind in ("item", "sub") and in_results:
        return "click[< prev]"
    return _search_action(session, target)
