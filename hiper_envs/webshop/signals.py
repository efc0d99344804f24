"""Subgoal-aware signals (docs/envs.md) read from a session's state.

Goal conditions, in order: a search was made (the session holds a search); the open product (or the
bought one) has the goal's type (``r_type == 1``); it has each goal attribute; each goal option is
chosen; its price is within the budget; it was bought. The product-level tests are the reward's own,
so all conditions hold exactly when the purchase scores 1.0: ``progress`` is 1.0 iff won.

Canonical subgoals: search for the product, open a matching product (type, attributes and price
hold), choose each goal option, buy it. ``subgoal_index`` is the first one not done, in that order.
"""

from __future__ import annotations

from hiper_envs.webshop.engine import Session
from hiper_envs.webshop.reward import attribute_matched, option_matched, price_ok, type_reward


def option_label(option: str | tuple[str, str]) -> str:
    """``("color", "black")`` -> ``"color: black"``; a bare value stays as it is."""
    return option if isinstance(option, str) else f"{option[0]}: {option[1]}"


def goal_conditions(session: Session) -> list[dict]:
    """``{"name", "satisfied"}`` for every condition of the session's goal."""
    goal, product = session.goal, session.product
    has_product = product is not None and session.kind in ("item", "sub", "done")
    chosen = list(session.options.values())
    conditions = [
        ("a search was made", session.keywords is not None),
        (
            f"a product of type '{goal.query}' is open",
            has_product and type_reward(product, goal)["r_type"] == 1.0,
        ),
    ]
    conditions += [
        (f"the product has '{a}'", has_product and attribute_matched(product, a)) for a in goal.attributes
    ]
    conditions += [
        (f"option '{option_label(o)}' is chosen", has_product and option_matched(o, chosen))
        for o in goal.goal_options
    ]
    conditions += [
        (f"the price is at most {goal.price_upper:.2f}", has_product and price_ok(product.price, goal)),
        ("the product was bought", session.done),
    ]
    return [{"name": name, "satisfied": bool(ok)} for name, ok in conditions]


def subgoals(session: Session) -> list[str]:
    goal = session.goal
    return [
        f"search for {goal.query or 'the product'}",
        "open a matching product",
        *(f"choose {option_label(o)}" for o in goal.goal_options),
        "buy it",
    ]


def subgoal_index(conditions: list[dict], n_attributes: int) -> int:
    """Index of the first unfinished canonical subgoal, given the goal conditions."""
    ok = [c["satisfied"] for c in conditions]
    n_options = len(ok) - 4 - n_attributes
    product_ok = ok[1] and all(ok[2 : 2 + n_attributes]) and ok[-2]
    done = [ok[0], product_ok, *ok[2 + n_attributes : 2 + n_attributes + n_options], ok[-1]]
    return next((i for i, d in enumerate(done) if not d), len(done))
