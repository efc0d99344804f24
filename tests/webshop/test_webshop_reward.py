"""The task score against hand-worked cases of the original formula (hiper_envs/webshop/README.md).

score = r_type * (attributes matched + options matched + [price <= bound]) / (n_attr + n_opt + 1)
"""

import pytest

from hiper_envs.webshop.catalog import Product
from hiper_envs.webshop.goals import Goal
from hiper_envs.webshop.reward import fuzzy_score, normalize_color, option_matched, score_purchase

BOOTS = "Acme Waterproof Hiking Boots"


def product(title=BOOTS, query="hiking boots", category="Clothing › Men › Shoes", **kw) -> Product:
    fields = dict(
        asin="B0BOOTS001",
        title=title,
        description="Great boots.",
        bullet_points=["Lace up"],
        pricing=[40.01],
        price_tag="$40.01",
        price=40.01,
        options={"color": ["black", "navy blue"]},
        attributes=["rubber sole"],
        category="fashion",
        query=query,
        product_category=category,
        main_image="",
        rank=0,
    )
    return Product(**{**fields, **kw})


def goal(
    attributes=("waterproof", "rubber sole", "arch support"), options=(("color", "black"),), **kw
) -> Goal:
    fields = dict(
        asin="B0BOOTS001",
        name=BOOTS,
        query="hiking boots",
        category="fashion",
        product_category="Clothing › Men › Shoes",
        instruction_text="i need waterproof hiking boots",
        attributes=tuple(attributes),
        price_upper=40.0,
        goal_options=tuple(options),
        options_named=True,
        weight=1.0,
    )
    return Goal(**{**fields, **kw})


def test_attribute_via_title_and_price_just_over_the_bound():
    # waterproof: in the title; rubber sole: an attribute; arch support: nowhere -> 2 of 3.
    # color black chosen -> 1 of 1. price 40.01 > 40.00 -> 0. r_type 1 (same query).
    score, info = score_purchase(product(), goal(), {"color": "black"})
    assert score == pytest.approx((2 + 1 + 0) / (3 + 1 + 1))
    assert info["r_att"] == pytest.approx(2 / 3)
    assert (info["r_option"], info["r_price"], info["r_type"], info["query_match"]) == (1.0, False, 1.0, True)
    assert info["noun_source"] in ("spacy", "heuristic")
    # at the bound the price counts
    score, info = score_purchase(product(price=40.0), goal(), {"color": "black"})
    assert (score, info["r_price"]) == (pytest.approx(4 / 5), True)


def test_colour_normalisation_and_named_option_quirk():
    # chosen 'navy blue' normalises to 'blue' (first colour word it contains, in list order);
    # the goal pair ('color', 'dark blue') equals no colour word, so it is compared as its text
    # 'color dark blue', whose token set contains 'blue': matched (score 100 > 85).
    assert normalize_color("navy blue") == "blue"
    assert normalize_color(("color", "dark blue")) == ("color", "dark blue")
    assert normalize_color(("color", "black")) == "black"
    assert fuzzy_score("blue", ("color", "dark blue")) == 100
    assert option_matched(("color", "dark blue"), ["navy blue"])
    assert not option_matched(("color", "dark blue"), ["green"])
    assert option_matched("dark blue", ["navy blue"])  # human goals: bare values, both become 'blue'
    score, info = score_purchase(
        product(price=10.0), goal(options=(("color", "dark blue"),)), {"color": "navy blue"}
    )
    assert (score, info["r_option"]) == (pytest.approx((2 + 1 + 1) / 5), 1.0)
    score, info = score_purchase(product(price=10.0), goal(), {})  # no option chosen
    assert (score, info["r_option"]) == (pytest.approx((2 + 0 + 1) / 5), 0.0)


def test_wrong_type_scores_zero():
    # nothing shared: other query, one category level at most, no shared noun -> title_score 0, r_type 0.
    table = product(title="Oak Coffee Table", query="coffee table", category="Home › Furniture › Tables")
    score, info = score_purchase(table, goal(), {"color": "black"})
    assert (score, info["r_type"], info["title_score"], info["category_match"]) == (0.0, 0.0, 0.0, False)


@pytest.mark.skipif(
    __import__("hiper_envs.webshop.reward", fromlist=["x"]).noun_source() != "heuristic",
    reason="noun counts below are the heuristic's",
)
def test_weak_type_match_halves_the_score():
    # goal nouns: acme hiking boots trail shoes socks (6); bought 'Winter Boots' shares 'boots':
    # title_score 1/6 in [0.1, 0.2] and no query or category match -> r_type 0.5.
    g = goal(name="Acme Hiking Boots Trail Shoes Socks", attributes=("warm",), options=())
    p = product(
        title="Winter Boots",
        query="winter boots",
        category="Clothing › Women › Boots",
        description="Very warm.",
    )
    p.price = 30.0
    score, info = score_purchase(p, g, {})
    assert info["title_score"] == pytest.approx(1 / 6)
    assert (info["r_type"], score) == (0.5, pytest.approx(0.5 * (1 + 1) / 2))


def test_two_category_levels_rescue_the_type():
    # same shared noun as above, but two category levels in common -> r_type 1.
    g = goal(name="Acme Hiking Boots Trail Shoes Socks", attributes=("warm",), options=())
    p = product(
        title="Winter Boots", query="winter boots", category="Clothing › Men › Boots", description="warm"
    )
    assert score_purchase(p, g, {})[1]["category_match"] is True


def test_fuzzy_score_is_thefuzz_token_set_ratio():
    assert fuzzy_score("Long-Lasting", "long lasting") == 100
    assert fuzzy_score("sulfate free shampoo", "shampoo") == 100  # a subset of tokens
    assert fuzzy_score("", "x") == 0
    assert 0 < fuzzy_score("cotton", "cottons") < 100
