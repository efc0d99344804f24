"""The product catalogue: reads WebShop's raw files and derives products as the original loader does.

Raw files (hiper_envs/webshop/README.md), plain ``.json`` or gzip-compressed ``.json.gz``:

* ``items_shuffle*.json``: list of products ``{asin, name, full_description, small_description,
  pricing, images, customization_options, category, query, product_category}``;
* ``items_ins_v2*.json``: ``{asin: {attributes, instruction, instruction_attributes}}``;
* ``items_human_ins*.json`` (optional): ``{asin: [{instruction, instruction_attributes,
  instruction_options}]}``.

Derivation rules kept from the original: ASINs that are ``"nan"``, longer than 10 characters or
repeated are skipped; option names and values are lowercased, values stripped and ``/`` becomes
`` | ``; a missing price is ``$100.0``; a price range keeps its first two bounds and the product's
price is drawn uniformly in it (with a fixed-seed RNG here, unseeded in the original); products
without attributes get ``["DUMMY_ATTR"]``; the query is lowercased and stripped.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, Protocol

BUNDLED_DIR = Path(__file__).parent / "data"
FILE_PATTERNS = {"products": "items_shuffle", "attributes": "items_ins_v2", "human": "items_human_ins"}
PRICE_SEED = 0
JSON_CHUNK = 1 << 20
JSON_MAX_ITEM = 64 << 20  # no product or instruction list is anywhere near this


class CatalogError(ValueError):
    """A data file is missing or does not have WebShop's format; the message names the file."""


@dataclass(frozen=True)
class HumanInstruction:
    instruction: str
    attributes: tuple[str, ...]
    options: tuple[str, ...]


@dataclass
class Product:
    """One product as the pages and the reward see it (the original's derived fields)."""

    asin: str
    title: str
    description: str
    bullet_points: list[str]
    pricing: list[float]
    price_tag: str
    price: float
    options: dict[str, list[str]]
    attributes: list[str]
    category: str
    query: str
    product_category: str
    main_image: str
    rank: int
    instruction_text: str | None = None
    instruction_attributes: list[str] = field(default_factory=list)
    human_instructions: list[HumanInstruction] = field(default_factory=list)


class Lookup(Protocol):
    """What the derivation reads the attribute and human-instruction files through (a dict will do)."""

    def get(self, asin: str) -> Any: ...


class Products(Protocol):
    """A catalogue as the search, the engine and the site read it: the in-memory `Catalog` or the
    persisted `ProductStore`."""

    files: dict[str, Path]
    content_hash: str

    @property
    def products(self) -> Sequence[Product]: ...  # by rank

    @property
    def by_asin(self) -> Mapping[str, Product]: ...

    def products_by(self, field: str, value: str) -> Sequence[Product]: ...


def cache_root() -> Path:
    """Where derived data (search indexes) go: ``$HIPER_BENCH_CACHE`` or the user's cache dir."""
    if os.environ.get("HIPER_BENCH_CACHE"):
        return Path(os.environ["HIPER_BENCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hiper-bench"


def cache_path(files: dict[str, Path], name: str) -> Path:
    """Where a cache derived from `files` goes: ``.hiper_cache/`` next to the data when that folder is
    writable (and not the bundled data), else the user cache."""
    data_dir = files["products"].parent
    if os.access(data_dir, os.W_OK) and not data_dir.samefile(BUNDLED_DIR):
        return data_dir / ".hiper_cache" / name
    return cache_root() / "webshop" / name


def find_data_files(data_dir: str | os.PathLike) -> dict[str, Path]:
    """Locate the raw files in `data_dir` (``products`` and ``attributes`` required)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise CatalogError(f"WebShop data_dir {str(data_dir)!r} is not a directory")
    found: dict[str, Path] = {}
    for key, stem in FILE_PATTERNS.items():
        matches = sorted(p for p in data_dir.iterdir() if re.fullmatch(rf"{stem}.*\.json(\.gz)?", p.name))
        exact = [p for p in matches if p.name in (f"{stem}.json", f"{stem}.json.gz")]
        if len(matches) > 1 and len(exact) == 1:
            matches = exact
        if len(matches) > 1:
            names = ", ".join(p.name for p in matches)
            raise CatalogError(f"several {stem}*.json files in {data_dir} ({names}); keep one")
        if matches:
            found[key] = matches[0]
        elif key != "human":
            raise CatalogError(f"no {stem}*.json file in WebShop data_dir {data_dir}")
    return found


def content_hash(paths: list[Path]) -> str:
    """A short hash of the files' names and bytes: keys the caches built from them."""
    digest = hashlib.blake2b(digest_size=12)
    for path in sorted(paths):
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def stamped_content_hash(files: dict[str, Path]) -> str:
    """`content_hash` of `files`, remembered in the cache under the files' names, sizes, inodes and
    change times, so a large catalogue is hashed once rather than at every start."""
    stamp = hashlib.blake2b(digest_size=12)
    for path in sorted(files.values()):
        st = path.stat()
        stamp.update(
            f"{path.resolve()}\0{st.st_size}\0{st.st_ino}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0".encode()
        )
    memo = cache_path(files, f"webshop-hash-{stamp.hexdigest()}")
    if memo.exists():
        return memo.read_text()
    digest = content_hash(list(files.values()))
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_name(f"{memo.name}.{os.getpid()}.tmp")
    tmp.write_text(digest)
    os.replace(tmp, memo)
    return digest


def read_json(path: Path) -> Any:
    """Load one raw file, raising CatalogError that names it when it is unreadable."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            return json.load(f)
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CatalogError(f"{path}: not a readable WebShop JSON file ({e})") from e


class _JsonReader:
    """Reads JSON values one after another from a text file, holding about one chunk at a time."""

    def __init__(self, f: IO[str]):
        self.f = f
        self.buf, self.pos, self.eof = "", 0, False
        self.decoder = json.JSONDecoder()

    def fill(self) -> bool:
        """Read the next chunk (False at the end of the file)."""
        chunk = self.f.read(JSON_CHUNK)
        self.buf, self.pos, self.eof = self.buf[self.pos :] + chunk, 0, not chunk
        return bool(chunk)

    def peek(self) -> str:
        """The next character that is not white space ("" at the end of the file)."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\n\r":
                self.pos += 1
            if self.pos < len(self.buf) or not self.fill():
                return self.buf[self.pos : self.pos + 1]

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise json.JSONDecodeError(f"expected {char!r}", self.buf, self.pos)
        self.pos += 1

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                item, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError:
                if len(self.buf) - self.pos > JSON_MAX_ITEM or not self.fill():
                    raise
                continue
            if end < len(self.buf) or self.eof or not self.fill():  # a number may go on in the next chunk
                self.pos = end
                return item


def stream_json(path: Path, container: type[list] | type[dict]) -> Iterator[Any]:
    """The items of a file holding one JSON list, or the ``(key, value)`` pairs of one holding an
    object, decoded one at a time (a 1.2M-product file never sits in memory whole)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    close = "]" if container is list else "}"
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            reader = _JsonReader(f)
            reader.expect("[" if container is list else "{")
            first = True
            while reader.peek() != close:
                if not first:
                    reader.expect(",")
                first = False
                if container is list:
                    yield reader.value()
                    continue
                key = reader.value()
                if not isinstance(key, str):
                    raise json.JSONDecodeError("expected a string key", reader.buf, reader.pos)
                reader.expect(":")
                yield key, reader.value()
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as e:
        kind = "list" if container is list else "object"
        raise CatalogError(f"{path}: not a readable WebShop JSON file with one {kind} ({e})") from e


def parse_pricing(pricing: str | None) -> tuple[list[float], str]:
    """``"$12.99 - $19.99"`` -> ``([12.99, 19.99], "$12.99 to $19.99")``; missing -> 100.0."""
    if not pricing:
        return [100.0], "$100.0"
    values = [float(Decimal(re.sub(r"[^\d.]", "", part))) for part in pricing.split("$")[1:]]
    if not values:
        raise InvalidOperation(pricing)
    if len(values) == 1:
        return values, f"${values[0]}"
    return values[:2], f"${values[0]} to ${values[1]}"


def _options(raw: dict | None) -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    for name, contents in (raw or {}).items():
        if contents is None:
            continue
        options[name.lower()] = [c["value"].strip().replace("/", " | ").lower() for c in contents]
    return options


def derive_products(
    raw_products: Iterable[Any], attributes: Lookup, human: Lookup, path: Path
) -> Iterator[Product]:
    """Products in catalogue order, as the original derives them; `path` names the products file."""
    seen: set[str] = set()
    price_rng = random.Random(PRICE_SEED)
    for raw in raw_products:
        try:
            asin = raw["asin"]
            if asin == "nan" or len(asin) > 10 or asin in seen:
                continue
            product = _derive(raw, attributes.get(asin) or {}, human.get(asin) or [], len(seen), price_rng)
        except (KeyError, TypeError, AttributeError, IndexError, InvalidOperation) as e:
            asin = raw.get("asin") if isinstance(raw, dict) else None
            raise CatalogError(f"{path}: product {asin!r} is malformed ({e!r})") from e
        seen.add(asin)
        yield product


def _derive(raw: dict, info: dict, human: list, rank: int, price_rng: random.Random) -> Product:
    pricing, price_tag = parse_pricing(raw.get("pricing"))
    price = pricing[0] if len(pricing) == 1 else price_rng.uniform(*pricing[:2])
    small = raw["small_description"]
    images = raw.get("images") or [""]
    return Product(
        asin=raw["asin"],
        title=raw["name"],
        description=raw["full_description"],
        bullet_points=list(small) if isinstance(small, list) else [small],
        pricing=pricing,
        price_tag=price_tag,
        price=price,
        options=_options(raw["customization_options"]),
        attributes=list(info["attributes"]) if "attributes" in info else ["DUMMY_ATTR"],
        category=raw["category"],
        query=raw["query"].lower().strip(),
        product_category=raw["product_category"],
        main_image=images[0] or "",
        rank=rank,
        instruction_text=info.get("instruction"),
        instruction_attributes=list(info.get("instruction_attributes") or []),
        human_instructions=[
            HumanInstruction(
                h["instruction"],
                tuple(h["instruction_attributes"]),
                tuple(h.get("instruction_options") or ()),
            )
            for h in human
        ],
    )


def product_keys(product: Product) -> Iterator[tuple[str, str]]:
    """The ``(field, value)`` pairs the ``<a>``, ``<c>`` and ``<q>`` searches find `product` by."""
    for attribute in product.attributes:
        yield "attribute", attribute
    yield "category", product.category
    yield "query", product.query


class Catalog:
    """The whole catalogue in memory, read from the raw files: for small catalogues and as the
    reference that the persisted `ProductStore` (``store.py``) is tested against."""

    def __init__(self, files: dict[str, Path]):
        self.files = files
        self.content_hash = content_hash(list(files.values()))
        raw_products = read_json(files["products"])
        attributes = read_json(files["attributes"])
        human = read_json(files["human"]) if "human" in files else {}
        if (
            not isinstance(raw_products, list)
            or not isinstance(attributes, dict)
            or not isinstance(human, dict)
        ):
            raise CatalogError(f"{files['products']}: expected a list of products and dicts keyed by ASIN")
        self.products: list[Product] = list(
            derive_products(raw_products, attributes, human, files["products"])
        )
        self.by_asin: dict[str, Product] = {p.asin: p for p in self.products}
        self._by_key: dict[tuple[str, str], list[Product]] = defaultdict(list)
        for product in self.products:
            for key in product_keys(product):
                self._by_key[key].append(product)

    @classmethod
    def load(cls, data_dir: str | os.PathLike | None = None) -> Catalog:
        """The bundled synthetic catalogue (None) or the original files found in `data_dir`."""
        return cls(find_data_files(BUNDLED_DIR if data_dir is None else data_dir))

    def products_by(self, field: str, value: str) -> list[Product]:
        """Products whose `field` (``attribute``, ``category``, ``query``) is `value`, in order."""
        return list(self._by_key.get((field, value), []))
