"""Goals (the tasks) and their splits (hiper_envs/webshop/README.md).

Synthetic goals: one per product with an instruction and per combination of its option values
(option names sorted), ``<instruction> with <name>: <value>, and ... , and price lower than
<X>.00 dollars``, where X is the larger of two values drawn from the next four multiples of 10
above the price (no price clause, and a bound of 1,000,000, when fewer than two remain).
Human goals: one per human instruction that names at least one attribute.

All goals are shuffled once with the original's fixed seed (233), which no worker seed changes;
splits are index ranges of that order: ``test`` [0, 500), ``eval`` [500, 1500), ``train`` after.
Drawing the price bounds uses a fixed-seed RNG (the original's is unseeded).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import random
import sys
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from hiper_envs.webshop.catalog import Catalog, Product

GOAL_KINDS = ("synthetic", "human")
SPLITS = {"test": (0, 500), "eval": (500, 1500), "train": (1500, None)}
SHUFFLE_SEED = 233
PRICE_BOUND_SEED = 1
PRICE_RANGE = [10.0 * i for i in range(1, 100)]
NO_PRICE_BOUND = 1_000_000


@dataclass(frozen=True)
class Goal:
    """One task: buy `asin` (or anything scoring as well) with these attributes and options."""

    asin: str
    name: str
    query: str
    category: str
    product_category: str
    instruction_text: str
    attributes: tuple[str, ...]
    price_upper: float
    # synthetic goals: ((name, value), ...) from a dict; human goals: bare values from a list
    goal_options: tuple[tuple[str, str], ...] | tuple[str, ...]
    options_named: bool
    weight: float

    @property
    def task_hash(self) -> str:
        """Hash of the full goal record: detects drift of data or derivation."""
        record = json.dumps(asdict(self), sort_keys=True, default=list)
        return hashlib.sha256(record.encode()).hexdigest()[:16]


def _price_upper(price: float, rng: random.Random) -> float:
    first = bisect.bisect_right(PRICE_RANGE, price)
    above = PRICE_RANGE[first : first + 4]
    if len(above) < 2:
        return NO_PRICE_BOUND
    return sorted(rng.sample(above, 2))[1]


def _price_text(price_upper: float) -> str:
    return "" if price_upper == NO_PRICE_BOUND else f", and price lower than {price_upper:.2f} dollars"


def _goal(
    product: Product, text: str, attributes, price_upper, options, named: bool, weight: float = 1.0
) -> Goal:
    return Goal(
        asin=product.asin,
        name=product.title,
        query=product.query,
        category=product.category,
        product_category=product.product_category,
        instruction_text=text,
        attributes=tuple(attributes),
        price_upper=price_upper,
        goal_options=tuple(options),
        options_named=named,
        weight=weight,
    )


class GoalPlan:
    """What the goals need beyond their products, from one pass over the catalogue in order.

    A goal is keyed by ``(rank, sub, price_upper, weight)``: its product's rank; ``sub``, the index of
    its option combination (synthetic) or of its human instruction (human); its price bound, drawn
    here in catalogue order; and its sampling weight. `key` gives the key of the goal at any index
    of the catalogue order, and `goal` turns a key back into the goal, so that goals can be kept as
    keys (``store.py``) and made when asked for.
    """

    def __init__(self, products: Iterable[Product] = ()):
        self._synthetic_rng = random.Random(PRICE_BOUND_SEED)
        self._human_rng = random.Random(PRICE_BOUND_SEED)
        self._counts: Counter[str] = Counter()
        # per product with synthetic goals: rank, price bound, instruction attributes; and the
        # index of its first goal
        self._chosen: list[tuple[int, float, tuple[str, ...]]] = []
        self._starts = array("q")
        self._n_synthetic = 0
        self._human: list[tuple[int, int, float]] = []
        for product in products:
            self.add(product)

    def add(self, product: Product) -> None:
        """Take the next product of the catalogue."""
        if product.instruction_text is not None and product.instruction_attributes:
            n_goals = math.prod(len(values) for values in product.options.values())
            attributes = tuple(sys.intern(a) for a in product.instruction_attributes)
            for attribute in attributes:
                self._counts[attribute] += n_goals
            upper = _price_upper(product.price, self._synthetic_rng)
            self._chosen.append((product.rank, upper, attributes))
            self._starts.append(self._n_synthetic)
            self._n_synthetic += n_goals
        for sub, human in enumerate(product.human_instructions):
            if human.attributes:
                self._human.append((product.rank, sub, _price_upper(product.price, self._human_rng)))

    def count(self, kind: str) -> int:
        return len(self._human) if kind == "human" else self._n_synthetic

    def key(self, kind: str, index: int) -> tuple[int, int, float, float]:
        """The key of goal `index` of `kind` in catalogue order (read once every product is added)."""
        if kind == "human":
            return (*self._human[index], 1.0)
        # the last product starting at or before `index` (one without goals shares the next's start)
        chosen = bisect.bisect_right(self._starts, index) - 1
        rank, upper, attributes = self._chosen[chosen]
        weight = sum(1.0 / self._counts[a] for a in attributes) / len(attributes)
        return rank, index - self._starts[chosen], upper, weight


def goal(kind: str, product: Product, sub: int, price_upper: float, weight: float) -> Goal:
    """The goal of `kind` with key ``(product.rank, sub, price_upper, weight)``."""
    if kind == "human":
        human = product.human_instructions[sub]
        text = human.instruction.strip(".") + _price_text(price_upper)
        return _goal(product, text, human.attributes, price_upper, human.options, False)
    names = sorted(product.options)
    values: list[str] = []
    for name in reversed(names):  # as itertools.product over the sorted names: the last runs fastest
        sub, i = divmod(sub, len(product.options[name]))
        values.append(product.options[name][i])
    pairs = list(zip(names, reversed(values), strict=True))
    option_text = ", and ".join(f"{n}: {v}" for n, v in pairs)
    text = (
        product.instruction_text + (f" with {option_text}" if option_text else "") + _price_text(price_upper)
    )
    return _goal(product, text, product.instruction_attributes, price_upper, pairs, True, weight)


def _goals(catalog: Catalog, kind: str) -> list[Goal]:
    plan = GoalPlan(catalog.products)
    keys = (plan.key(kind, i) for i in range(plan.count(kind)))
    return [goal(kind, catalog.products[rank], *rest) for rank, *rest in keys]


def synthetic_goals(catalog: Catalog) -> list[Goal]:
    """Goals in catalogue order before the shuffle, weighted by mean inverse attribute frequency."""
    return _goals(catalog, "synthetic")


def human_goals(catalog: Catalog) -> list[Goal]:
    """One goal per human instruction with at least one attribute, in catalogue order."""
    return _goals(catalog, "human")


def shuffled_order(n_goals: int) -> array:
    """``order[i]``: the catalogue-order index of the goal at position i of the fixed shuffle."""
    order = array("l", range(n_goals))
    random.Random(SHUFFLE_SEED).shuffle(order)  # the permutation depends on the length only
    return order


def shuffled_goals(catalog: Catalog, kind: str) -> list[Goal]:
    """All goals of `kind` in the one fixed order that the splits index."""
    goals = _goals(catalog, kind)
    return [goals[i] for i in shuffled_order(len(goals))]


def split_range(split: str, n_goals: int) -> range:
    """Indices of `split` in the shuffled goal list."""
    start, stop = SPLITS[split]
    return range(min(start, n_goals), n_goals if stop is None else min(stop, n_goals))
