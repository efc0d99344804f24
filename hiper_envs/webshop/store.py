"""The product store: a catalogue persisted in one SQLite file, so that start-up parses no JSON.

It holds the derived products (by rank and ASIN), the keys of the ``<a>``/``<c>``/``<q>`` searches,
and the goals of both kinds as keys (``goals.GoalPlan``) in their shuffled order. It is built once per
catalogue content hash, streaming the raw files (the whole catalogue is never in memory), into the
same cache folder as the search index, and opened read-only: products are decoded when read, and a
goal is made from its key and its product when asked for. Products and goals are exactly those of the
in-memory `Catalog` and `goals.shuffled_goals` (tested), at any catalogue size.
"""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
import sys
import threading
from array import array
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import Any

from hiper_envs.webshop.catalog import (
    HumanInstruction,
    Product,
    cache_path,
    derive_products,
    product_keys,
    stamped_content_hash,
    stream_json,
)
from hiper_envs.webshop.goals import GOAL_KINDS, Goal, GoalPlan, goal, shuffled_order

STORE_VERSION = "2"
PRODUCT_CACHE = 4096  # decoded products kept per store
BATCH = 10_000
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value);
CREATE TABLE products (rank INTEGER PRIMARY KEY, asin TEXT NOT NULL, record TEXT NOT NULL);
CREATE TABLE product_keys (field TEXT NOT NULL, value TEXT NOT NULL, ranks BLOB NOT NULL);
""" + "".join(  # price_upper has no type, so an int bound stays an int (it is part of the task hash)
    f"CREATE TABLE goals_{kind} (position INTEGER PRIMARY KEY, rank INTEGER, sub INTEGER, price_upper, "
    "weight REAL);\n"
    for kind in GOAL_KINDS
)
_INDEXES = """
CREATE UNIQUE INDEX products_asin ON products (asin);
CREATE UNIQUE INDEX product_keys_value ON product_keys (field, value);
"""


def _encode(product: Product) -> str:
    *fields, humans = vars(product).values()  # in field order: human_instructions is the last
    return json.dumps([*fields, [(h.instruction, h.attributes, h.options) for h in humans]])


def _decode(record: str) -> Product:
    *fields, humans = json.loads(record)  # human_instructions is the last field
    return Product(*fields, [HumanInstruction(text, tuple(a), tuple(o)) for text, a, o in humans])


def _pack(ranks: array) -> bytes:
    """Ranks as little-endian int64 (a 240k-product category is one 2 MB row, read in a millisecond)."""
    if sys.byteorder == "big":
        ranks = array(ranks.typecode, ranks)
        ranks.byteswap()
    return ranks.tobytes()


def _unpack(blob: bytes) -> array:
    ranks = array("q", blob)
    if sys.byteorder == "big":
        ranks.byteswap()
    return ranks


class _RawLookup:
    """A raw file keyed by ASIN (``items_ins_v2``, ``items_human_ins``) in a temporary table, so the
    build never holds it in memory; appended in file order and indexed after, which is fast."""

    def __init__(self, db: sqlite3.Connection, name: str, path: Path):
        self.db, self.name = db, name
        db.execute(f"CREATE TEMP TABLE {name} (asin TEXT, record BLOB)")
        rows = ((asin, pickle.dumps(value)) for asin, value in stream_json(path, dict))
        db.executemany(f"INSERT INTO {name} VALUES (?, ?)", rows)
        db.execute(f"CREATE INDEX temp.{name}_asin ON {name} (asin)")

    def get(self, asin: str) -> Any:
        sql = f"SELECT record FROM {self.name} WHERE asin = ? ORDER BY rowid DESC LIMIT 1"  # as a dict: the last
        row = self.db.execute(sql, (asin,)).fetchone()
        return None if row is None else pickle.loads(row[0])  # written by this build just before


def build_store(files: dict[str, Path], path: Path, content_hash: str) -> None:
    """Write the store of the raw `files` to `path` (atomically: written aside, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        with closing(sqlite3.connect(tmp)) as db:
            db.executescript(
                "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -131072;"
                "PRAGMA temp.cache_size = -131072;" + _SCHEMA
            )
            attributes = _RawLookup(db, "raw_attributes", files["attributes"])
            human = _RawLookup(db, "raw_human", files["human"]) if "human" in files else {}
            plan = GoalPlan()
            keyed: defaultdict[tuple[str, str], array] = defaultdict(lambda: array("q"))
            n_products = 0
            products = derive_products(
                stream_json(files["products"], list), attributes, human, files["products"]
            )
            for batch in iter(lambda: list(islice(products, BATCH)), []):
                db.executemany(
                    "INSERT INTO products VALUES (?, ?, ?)", ((p.rank, p.asin, _encode(p)) for p in batch)
                )
                for product in batch:
                    plan.add(product)
                    for key in product_keys(product):
                        keyed[key].append(product.rank)
                n_products += len(batch)
            rows = ((field, value, _pack(ranks)) for (field, value), ranks in keyed.items())
            db.executemany("INSERT INTO product_keys VALUES (?, ?, ?)", rows)
            meta = {"version": STORE_VERSION, "content_hash": content_hash, "products": n_products}
            for kind in GOAL_KINDS:
                meta[f"goals_{kind}"] = _write_goals(db, kind, plan)
            db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
            db.executescript(_INDEXES)
            db.commit()
        os.replace(tmp, path)  # another process may have finished the same store first: same bytes
    finally:
        tmp.unlink(missing_ok=True)


def _write_goals(db: sqlite3.Connection, kind: str, plan: GoalPlan) -> int:
    """Store the goal keys of `kind` in the order of the fixed shuffle; returns their number."""
    n_goals = plan.count(kind)
    rows = ((position, *plan.key(kind, i)) for position, i in enumerate(shuffled_order(n_goals)))
    db.executemany(f"INSERT INTO goals_{kind} VALUES (?, ?, ?, ?, ?)", rows)
    return n_goals


class ProductStore:
    """A built store, opened read-only: the same interface as `Catalog` (``products``, ``by_asin``,
    ``products_by``) plus the shuffled goals of each kind."""

    def __init__(self, path: Path, files: dict[str, Path]):
        self.path = path
        self.files = files
        self._lock = threading.Lock()  # the site's thread and the env share a store
        self._pid = -1
        self._db: sqlite3.Connection | None = None
        meta = dict(self.query("SELECT key, value FROM meta"))
        if meta["version"] != STORE_VERSION:
            raise ValueError(f"{path}: product store version {meta['version']}, expected {STORE_VERSION}")
        self.content_hash: str = meta["content_hash"]
        self._meta = meta
        self.product = lru_cache(maxsize=PRODUCT_CACHE)(self._product)
        self.products = ProductList(self, range(meta["products"]))
        self.by_asin = _ByAsin(self)

    @classmethod
    def open(cls, files: dict[str, Path]) -> ProductStore:
        """The store of the raw `files`, built first when the cache has none for their content."""
        content_hash = stamped_content_hash(files)
        path = cache_path(files, f"webshop-store-v{STORE_VERSION}-{content_hash}.sqlite")
        if not path.exists():
            build_store(files, path, content_hash)
        return cls(path, files)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of a read-only query on the store."""
        with self._lock:
            if self._pid != os.getpid():  # never use a connection across a fork
                uri = f"{self.path.resolve().as_uri()}?mode=ro&immutable=1"
                self._db, self._pid = sqlite3.connect(uri, uri=True, check_same_thread=False), os.getpid()
            return self._db.execute(sql, params).fetchall()

    def _product(self, rank: int) -> Product:
        rows = self.query("SELECT record FROM products WHERE rank = ?", (rank,))
        if not rows:
            raise IndexError(f"no product of rank {rank}")
        return _decode(rows[0][0])

    def products_by(self, field: str, value: str) -> ProductList:
        """Products whose `field` (``attribute``, ``category``, ``query``) is `value`, in order."""
        rows = self.query("SELECT ranks FROM product_keys WHERE field = ? AND value = ?", (field, value))
        return ProductList(self, _unpack(rows[0][0]) if rows else array("q"))

    def rank_of(self, asin: str) -> int | None:
        rows = self.query("SELECT rank FROM products WHERE asin = ?", (asin,))
        return rows[0][0] if rows else None

    def goals(self, kind: str) -> StoredGoals:
        """The goals of `kind` in the fixed shuffle (as `goals.shuffled_goals`)."""
        return StoredGoals(self, kind, self._meta[f"goals_{kind}"])


class ProductList(Sequence[Product]):
    """Products of a store given by rank, decoded when read (a search may find 200k of them)."""

    def __init__(self, store: ProductStore, ranks: Sequence[int]):
        self._store = store
        self._ranks = ranks

    def __len__(self) -> int:
        return len(self._ranks)

    def __getitem__(self, i):  # int -> Product, slice -> list[Product]
        if isinstance(i, slice):
            return [self._store.product(rank) for rank in self._ranks[i]]
        return self._store.product(self._ranks[i])

    def __iter__(self) -> Iterator[Product]:
        return (self._store.product(rank) for rank in self._ranks)

    def __contains__(self, value: object) -> bool:
        return (
            isinstance(value, Product)
            and value.rank in self._ranks
            and value == self._store.product(value.rank)
        )

    def index(self, value: Any, start: int = 0, stop: int | None = None) -> int:
        """The first position of `value` (found by its rank, as a list finds it by equality)."""
        if value in self:
            try:
                return range(len(self))[start:stop][self._ranks[start:stop].index(value.rank)]
            except ValueError:
                pass
        raise ValueError(f"{value!r} is not in the list")


class _ByAsin(Mapping[str, Product]):
    def __init__(self, store: ProductStore):
        self._store = store

    def __getitem__(self, asin: str) -> Product:
        rank = self._store.rank_of(asin)
        if rank is None:
            raise KeyError(asin)
        return self._store.product(rank)

    def __contains__(self, asin: object) -> bool:
        return isinstance(asin, str) and self._store.rank_of(asin) is not None

    def __iter__(self) -> Iterator[str]:
        return (p.asin for p in self._store.products)

    def __len__(self) -> int:
        return len(self._store.products)


class StoredGoals(Sequence[Goal]):
    """The goals of one kind in shuffled order, each made from its stored key when read."""

    def __init__(self, store: ProductStore, kind: str, n_goals: int):
        self._store, self._kind, self._n = store, kind, n_goals
        self._sql = f"SELECT rank, sub, price_upper, weight FROM goals_{kind} WHERE position = ?"

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):  # int -> Goal, slice -> list[Goal]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._n))]
        if not -self._n <= i < self._n:
            raise IndexError(f"goal {i} out of range ({self._n} goals)")
        [(rank, sub, price_upper, weight)] = self._store.query(self._sql, (i % self._n,))
        return goal(self._kind, self._store.product(rank), sub, price_upper, weight)
