"""Product search: BM25 over the documents the original indexes, with its keyword prefixes.

A document is the lowercased ``title + description + first bullet point + option text`` (``"<name>:
<v1>, <v2>, and <name>: ..."``), as the original's Lucene index. The index is a tantivy index
(English stemming, BM25) built once per catalogue content hash under the cache directory,
memory-mapped when opened, and rebuilt when the data change. Queries are reduced to words before
parsing, so no input is query syntax (``men's``, ``color:``, unbalanced quotes are plain words),
and parsed leniently.

Keyword prefixes (first word): ``<r>`` 50 random products, ``<a> <attribute>``, ``<c> <category>``
and ``<q> <query>`` every product with that attribute, category or original query, in catalogue
order. Everything else: the top 50 hits.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import tantivy

from hiper_envs.webshop.catalog import Product, Products, cache_path

SEARCH_RETURN_N = 50
INDEX_VERSION = "1"
_NON_WORD = re.compile(r"[\W_]+")


def document_text(product: Product) -> str:
    """The text the original indexes for a product."""
    option_text = ", and ".join(f"{name}: {', '.join(values)}" for name, values in product.options.items())
    first_bullet = product.bullet_points[0] if product.bullet_points else ""
    return " ".join([product.title, product.description, first_bullet, option_text]).lower()


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("contents", stored=False, tokenizer_name="en_stem")
    builder.add_integer_field("rank", stored=True, indexed=False, fast=True)
    return builder.build()


def index_dir_for(catalog: Products) -> Path:
    """The cache folder of `catalog`'s index: next to its data when writable, else the user cache."""
    return cache_path(catalog.files, f"webshop-index-v{INDEX_VERSION}-{catalog.content_hash}")


def build_index(catalog: Products, path: Path) -> None:
    """Write the tantivy index of `catalog` to `path` (atomically: built aside, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=path.name + ".tmp", dir=path.parent))
    try:
        index = tantivy.Index(_schema(), path=str(tmp))
        writer = index.writer(heap_size=200_000_000, num_threads=1)
        for product in catalog.products:
            writer.add_document(tantivy.Document(contents=document_text(product), rank=product.rank))
        writer.commit()
        writer.wait_merging_threads()
        try:
            tmp.rename(path)
        except OSError:  # another process finished the same index first
            if not path.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class SearchEngine:
    """``search(keywords, rng) -> products`` over one catalogue."""

    def __init__(self, catalog: Products, index_dir: Path | None = None):
        self.catalog = catalog
        self.index_dir = index_dir or index_dir_for(catalog)
        if not (self.index_dir / "meta.json").exists():
            build_index(catalog, self.index_dir)
        self.index = tantivy.Index.open(str(self.index_dir))
        self.searcher = self.index.searcher()

    def bm25(self, text: str, k: int = SEARCH_RETURN_N) -> list[Product]:
        """Top `k` products for free text; any input is accepted."""
        words = _NON_WORD.sub(" ", text).strip()
        if not words:
            return []
        query, _errors = self.index.parse_query_lenient(words, ["contents"])
        hits = self.searcher.search(query, k).hits
        products = self.catalog.products
        return [products[self.searcher.doc(address)["rank"][0]] for _score, address in hits]

    def search(self, keywords: list[str], rng) -> Sequence[Product]:
        """The original's result list for a search split into `keywords` (``rng``: numpy Generator)."""
        head, rest = keywords[0], " ".join(keywords[1:]).strip()
        products = self.catalog.products
        if head == "<r>":
            k = min(SEARCH_RETURN_N, len(products))
            return [products[i] for i in rng.choice(len(products), size=k, replace=False)]
        if head == "<a>":
            return self.catalog.products_by("attribute", rest)
        if head == "<c>":
            return self.catalog.products_by("category", keywords[1].strip() if len(keywords) > 1 else "")
        if head == "<q>":
            return self.catalog.products_by("query", rest)
        return self.bm25(" ".join(keywords))
