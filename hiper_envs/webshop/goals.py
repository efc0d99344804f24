"""Goals (the tasks) and their splits (REFERENCE B.4).

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

import hashlib
import itertools
import json
import random
from collections import Counter
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


def _price_bound(price: float, rng: random.Random) -> tuple[float, str]:
    above = [p for p in PRICE_RANGE if p > price][:4]
    if len(above) < 2:
        return NO_PRICE_BOUND, ""
    upper = sorted(rng.sample(above, 2))[1]
    return upper, f", and price lower than {upper:.2f} dollars"


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


def synthetic_goals(catalog: Catalog) -> list[Goal]:
    """Goals in catalogue order before the shuffle, weighted by mean inverse attribute frequency."""
    rng = random.Random(PRICE_BOUND_SEED)
    chosen = [p for p in catalog.products if p.instruction_text is not None and p.instruction_attributes]
    bounds = [_price_bound(p.price, rng) for p in chosen]
    counts: Counter = Counter()
    for product in chosen:
        n_goals = 1
        for values in product.options.values():
            n_goals *= len(values)
        for attribute in product.instruction_attributes:
            counts[attribute] += n_goals
    goals: list[Goal] = []
    for product, (price_upper, price_text) in zip(chosen, bounds, strict=True):
        attributes = product.instruction_attributes
        weight = sum(1.0 / counts[a] for a in attributes) / len(attributes)
        names = sorted(product.options)
        for combination in itertools.product(*(product.options[n] for n in names)):
            pairs = list(zip(names, combination, strict=True))
            option_text = ", and ".join(f"{n}: {v}" for n, v in pairs)
            text = product.instruction_text + (f" with {option_text}" if option_text else "") + price_text
            goals.append(_goal(product, text, attributes, price_upper, pairs, True, weight))
    return goals


def human_goals(catalog: Catalog) -> list[Goal]:
    """One goal per human instruction with at least one attribute, in catalogue order."""
    rng = random.Random(PRICE_BOUND_SEED)
    goals: list[Goal] = []
    for product in catalog.products:
        for human in product.human_instructions:
            if not human.attributes:
                continue
            price_upper, price_text = _price_bound(product.price, rng)
            text = human.instruction.strip(".") + price_text
            goals.append(_goal(product, text, human.attributes, price_upper, human.options, False))
    return goals


def shuffled_goals(catalog: Catalog, kind: str) -> list[Goal]:
    """All goals of `kind` in the one fixed order that the splits index."""
    goals = synthetic_goals(catalog) if kind == "synthetic" else human_goals(catalog)
    random.Random(SHUFFLE_SEED).shuffle(goals)
    return goals


def split_range(split: str, n_goals: int) -> range:
    """Indices of `split` in the shuffled goal list."""
    start, stop = SPLITS[split]
    return range(min(start, n_goals), n_goals if stop is None else min(stop, n_goals))
