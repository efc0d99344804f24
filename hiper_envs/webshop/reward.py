"""The task score of a purchase, as the original computes it (hiper_envs/webshop/README.md).

``score = r_type * (attributes matched + options matched + [price <= bound]) / (n_attributes +
n_options + 1)``. Kept quirks of the original:

* fuzzy scores are ``thefuzz``'s ``token_set_ratio`` (text reduced to ASCII letters and digits,
  lowercased, rounded to an int) and must exceed 85;
* a synthetic goal's options are (name, value) pairs: colour normalisation only fires when one of
  the two *equals* a colour word, and otherwise the pair is compared as its text, so the option name
  takes part in the token set (``('color', 'dark blue')`` matches a chosen ``navy blue``, which
  normalises to ``blue``);
* ``title_score`` divides the distinct shared nouns by the goal name's noun count with repeats;
  an empty noun list gives 0.2.

Nouns come from spaCy's ``en_core_web_sm`` (NOUN/PROPN) when it is installed. Otherwise a heuristic
runs: the name is lowercased and split into alphanumeric words; a word counts as a noun when it has
at least two letters, no digit, is not a function word, colour, size or common adjective, and does
not end in an adjective suffix (-less, -ful, -ous, -able, -ible). ``noun_source()`` says which ran.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

from rapidfuzz import fuzz
from rapidfuzz.utils import default_process

from hiper_envs.webshop.catalog import Product
from hiper_envs.webshop.goals import Goal

MATCH_THRESHOLD = 85
COLORS = tuple(
    sorted(
        """alabaster apricot aqua ash asphalt azure banana beige black blue blush bordeaux bronze brown
        burgundy camel camo caramel champagne charcoal cheetah chestnut chocolate christmas coffee cognac
        copper coral cranberry cream crystal dark denim eggplant elephant espresso fuchsia gold granite
        grape graphite grass gray green grey heather indigo ivory ivy khaki lavender lemon leopard light
        lilac lime magenta maroon mauve merlot midnight mint mocha multicolor mushroom mustard natural
        navy nude olive orange peach pewter pink plum purple rainbow red rose royal rust sand sapphire
        seashell silver skull slate steel stone stonewash sunflower tan taupe teal tiger turquoise violet
        walnut wheat white wine yellow""".split()
    )
)
_LATIN1 = {i: None for i in range(128, 256)}
_NOT_NOUNS = frozenset(
    """a an the and or of for with without to in on at by from into over under up x per pack set pcs
    piece pieces count ct oz fl lb lbs ml mm cm inch inches ft kg g new best premium pro plus mini
    extra large small medium big little long short high low soft hard hot cold warm cool fresh natural
    organic pure original classic modern vintage portable adjustable compatible professional deluxe
    heavy light lightweight thick thin wide slim full double single multi non anti free easy quick
    fast super ultra men women womens mens kids boys girls baby unisex adult s""".split()
) | frozenset(COLORS)
_ADJ_SUFFIXES = ("less", "ful", "ous", "able", "ible")

_spacy_nlp = None
_spacy_checked = False


def _spacy():
    """spaCy's `en_core_web_sm` pipeline, or None when the model is not installed."""
    global _spacy_nlp, _spacy_checked
    if not _spacy_checked:
        _spacy_checked = True
        # importing spaCy takes seconds: only when the model package is there
        if importlib.util.find_spec("en_core_web_sm") is not None:
            import spacy

            _spacy_nlp = spacy.load("en_core_web_sm")
    return _spacy_nlp


def noun_source() -> str:
    """``"spacy"`` when nouns come from `en_core_web_sm`, else ``"heuristic"``."""
    return "spacy" if _spacy() is not None else "heuristic"


@lru_cache(maxsize=1 << 16)
def name_nouns(name: str) -> tuple[str, ...]:
    """The lowercased nouns of a product name, repeats kept (spaCy or the documented heuristic)."""
    nlp = _spacy()
    if nlp is not None:
        return tuple(t.text.lower() for t in nlp(name) if t.pos_ in ("NOUN", "PROPN"))
    words = re.findall(r"[^\W_]+", name.lower())
    return tuple(
        w
        for w in words
        if len(w) >= 2
        and not any(c.isdigit() for c in w)
        and w not in _NOT_NOUNS
        and not w.endswith(_ADJ_SUFFIXES)
    )


def fuzzy_score(a: object, b: object) -> int:
    """``thefuzz.fuzz.token_set_ratio(a, b)``: str(), Latin-1 range dropped, processed, rounded."""
    pa = default_process(str(a).translate(_LATIN1))
    pb = default_process(str(b).translate(_LATIN1))
    return int(round(fuzz.token_set_ratio(pa, pb)))


def normalize_color(option: str | tuple[str, ...]) -> str | tuple[str, ...]:
    """The first colour word contained in `option` (for a tuple: equal to one of its items)."""
    for color in COLORS:
        if color in option:
            return color
    return option


def type_reward(product: Product, goal: Goal) -> dict:
    """``r_type`` with its parts: query match, shared category levels, title noun score."""
    query_match = product.query == goal.query
    bought_levels = {x.strip() for x in product.product_category.split("›")}
    goal_levels = {x.strip() for x in goal.product_category.split("›")}
    category_match = len(bought_levels & goal_levels) >= 2
    desired = name_nouns(goal.name)
    shared = set(name_nouns(product.title)) & set(desired)
    title_score = len(shared) / len(desired) if desired else 0.2
    r_type = 1.0 if (query_match or category_match or title_score > 0.2) else 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return {
        "r_type": r_type,
        "query_match": query_match,
        "category_match": category_match,
        "title_score": title_score,
    }


def attribute_matched(product: Product, attribute: str) -> bool:
    """A goal attribute is in the product's attributes (fuzzy) or in its title, bullets or description."""
    if any(fuzzy_score(p_attr, attribute) > MATCH_THRESHOLD for p_attr in product.attributes):
        return True
    return (
        attribute in product.title.lower()
        or attribute in " ".join(product.bullet_points).lower()
        or attribute in product.description.lower()
    )


def option_matched(goal_option: str | tuple[str, str], chosen: Iterable[str]) -> bool:
    """A goal option is matched by one of the chosen option values (both colour-normalised)."""
    target = normalize_color(goal_option)
    return any(fuzzy_score(normalize_color(value), target) > MATCH_THRESHOLD for value in chosen)


def price_ok(price: float, goal: Goal) -> bool:
    return price <= goal.price_upper


def score_purchase(product: Product, goal: Goal, options: dict[str, str]) -> tuple[float, dict]:
    """The task score of buying `product` with `options` for `goal`, and its breakdown (docs/envs.md)."""
    type_info = type_reward(product, goal)
    n_attr = sum(attribute_matched(product, a) for a in goal.attributes)
    chosen: Sequence[str] = list(options.values())
    n_opt = sum(option_matched(o, chosen) for o in goal.goal_options)
    r_price = price_ok(product.price, goal)
    total = len(goal.attributes) + len(goal.goal_options) + 1
    score = type_info["r_type"] * (n_attr + n_opt + r_price) / total
    breakdown = {
        **type_info,
        "r_att": n_attr / len(goal.attributes) if goal.attributes else None,
        "r_option": n_opt / len(goal.goal_options) if goal.goal_options else None,
        "r_price": r_price,
        "w_att": len(goal.attributes) / total,
        "w_option": len(goal.goal_options) / total,
        "w_price": 1 / total,
        "noun_source": noun_source(),
    }
    return score, breakdown
