"""Catalogue loading (original raw files via data_dir), the generator, goals and the search index."""

import gzip
import json
import shutil

import gymnasium as gym
import numpy as np
import pytest
from conftest import write_tiny

import hiper_envs  # noqa: F401
from hiper_envs.webshop.catalog import Catalog, CatalogError, find_data_files
from hiper_envs.webshop.generate import generate, write_catalog
from hiper_envs.webshop.goals import human_goals, shuffled_goals, synthetic_goals
from hiper_envs.webshop.search import SearchEngine, index_dir_for


def test_loader_derives_products_as_the_original(tiny_dir):
    catalog = Catalog.load(tiny_dir)
    assert [p.asin for p in catalog.products] == ["B000000001", "B000000002", "B000000003"]
    shampoo, shirt, table = catalog.products
    assert shampoo.options == {"size": ["8 fl oz", "16 fl oz"], "scent": ["lavender | mint"]}
    assert (shampoo.price_tag, shampoo.price, shampoo.query) == ("$12.99", 12.99, "shampoo")
    assert shampoo.attributes == ["sulfate free", "dry hair"]
    assert shirt.bullet_points == ["Cotton"]
    assert shirt.price_tag == "$5.0 to $9.5" and 5.0 <= shirt.price <= 9.5
    assert (table.price_tag, table.price, table.attributes, table.options) == (
        "$100.0",
        100.0,
        ["DUMMY_ATTR"],
        {},
    )
    assert Catalog.load(tiny_dir).products[1].price == shirt.price  # the range draw is seeded


def test_goals_from_original_files(tiny_dir):
    catalog = Catalog.load(tiny_dir)
    synthetic = synthetic_goals(catalog)
    assert [g.asin for g in synthetic] == ["B000000001", "B000000001", "B000000002", "B000000002"]
    first = synthetic[0]
    assert first.goal_options == (("scent", "lavender | mint"), ("size", "8 fl oz"))
    assert first.price_upper in (30.0, 40.0, 50.0)
    assert first.instruction_text == (
        "i need a sulfate free shampoo with scent: lavender | mint, and size: 8 fl oz, "
        f"and price lower than {first.price_upper:.2f} dollars"
    )
    assert first.weight == pytest.approx(1 / 2)  # 'sulfate free' is in 2 goals
    human = human_goals(catalog)
    assert len(human) == 1  # the instruction without attributes is skipped
    assert human[0].instruction_text.startswith("Find me shampoo for dry hair, and price lower than")
    assert human[0].goal_options == ("16 fl oz",)
    assert [g.asin for g in shuffled_goals(catalog, "synthetic")] == [
        g.asin for g in shuffled_goals(catalog, "synthetic")
    ]


def test_data_dir_env_and_gzip_files(tiny_dir, tmp_path):
    for name in ("items_shuffle.json", "items_ins_v2.json", "items_human_ins.json"):
        (tmp_path / (name + ".gz")).write_bytes(gzip.compress((tiny_dir / name).read_bytes()))
    for data_dir in (tiny_dir, tmp_path):
        env = gym.make("HiPER/WebShop-v0", data_dir=str(data_dir), goals="human", expert=True)
        obs, info = env.reset(seed=0)
        assert env.unwrapped.task_ids == ["0"]
        while not info["won"]:
            obs, reward, terminated, truncated, info = env.step(info["expert_action"])
        assert reward == 1.0
        with pytest.raises(ValueError, match="split 'eval' has no human goals"):
            gym.make("HiPER/WebShop-v0", data_dir=str(data_dir), goals="human", split="eval").reset()


def test_corrupt_or_missing_files_name_the_file(tmp_path):
    with pytest.raises(CatalogError, match="no items_shuffle"):
        find_data_files(tmp_path)
    with pytest.raises(CatalogError, match="is not a directory"):
        find_data_files(tmp_path / "absent")
    write_tiny(tmp_path)
    (tmp_path / "items_ins_v2.json").write_text("{not json")
    with pytest.raises(CatalogError, match="items_ins_v2.json: not a readable"):
        Catalog.load(tmp_path)
    write_tiny(tmp_path)
    (tmp_path / "items_shuffle.json").write_text(json.dumps([{"asin": "B1", "name": "no other fields"}]))
    with pytest.raises(CatalogError, match="items_shuffle.json: product 'B1' is malformed"):
        Catalog.load(tmp_path)
    write_tiny(tmp_path)
    (tmp_path / "items_shuffle_1000.json").write_text("[]")
    assert find_data_files(tmp_path)["products"].name == "items_shuffle.json"  # the full file wins
    (tmp_path / "items_shuffle.json").unlink()
    (tmp_path / "items_shuffle_100.json").write_text("[]")
    with pytest.raises(CatalogError, match="several items_shuffle"):
        find_data_files(tmp_path)


def test_search_index_is_cached_and_rebuilt_when_data_change(tmp_path):
    data = write_tiny(tmp_path / "data")
    catalog = Catalog.load(data)
    index_dir = index_dir_for(catalog)
    assert index_dir.parent == data / ".hiper_cache"
    engine = SearchEngine(catalog)
    assert [p.asin for p in engine.bm25("shampoo")] == ["B000000001"]
    stamp = (index_dir / "meta.json").stat().st_mtime_ns
    SearchEngine(Catalog.load(data))
    assert (index_dir / "meta.json").stat().st_mtime_ns == stamp  # reused, not rebuilt

    products = json.loads((data / "items_shuffle.json").read_text())
    products[2]["name"] = "Oak Shampoo Shelf"
    (data / "items_shuffle.json").write_text(json.dumps(products))
    changed = Catalog.load(data)
    assert changed.content_hash != catalog.content_hash
    assert index_dir_for(changed) != index_dir
    assert {p.asin for p in SearchEngine(changed).bm25("shampoo")} == {"B000000001", "B000000003"}
    env = gym.make("HiPER/WebShop-v0", data_dir=str(data))
    env.reset(seed=0)
    assert "Oak Shampoo Shelf" in env.step("search[shampoo shelf]")[0]


def test_bundled_index_goes_to_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HIPER_BENCH_CACHE", str(tmp_path))
    catalog = Catalog.load()
    assert index_dir_for(catalog).is_relative_to(tmp_path)


def test_search_is_lenient(tiny_dir):
    engine = SearchEngine(Catalog.load(tiny_dir))
    rng = np.random.default_rng(0)
    for query in [
        "men's",
        "color:",
        '"unbalanced',
        "(",
        ")",
        "AND",
        "a:b:c",
        "*",
        "~",
        "^2",
        "",
        "ü",
        "x" * 10_000,
    ]:
        engine.search(query.split(" "), rng)
    assert engine.search(["*"], rng) == []  # no query syntax: '*' is not a wildcard
    assert [p.asin for p in engine.search(["<q>", "coffee", "table"], rng)] == ["B000000003"]
    assert [p.asin for p in engine.search(["<c>", "fashion"], rng)] == ["B000000002"]
    assert [p.asin for p in engine.search(["<a>", "dry", "hair"], rng)] == ["B000000001"]
    assert len(engine.search(["<r>"], rng)) == 3


def test_generator_is_deterministic_and_in_the_original_format(tmp_path):
    a = write_catalog(tmp_path / "a", 60, seed=3, compress=True)
    b = write_catalog(tmp_path / "b", 60, seed=3, compress=True)
    c = write_catalog(tmp_path / "c", 60, seed=4)
    assert all(a[k].read_bytes() == b[k].read_bytes() for k in a)
    raw = json.loads(c["products"].read_text())
    assert len(raw) == 60 and raw != json.loads(gzip.decompress(a["products"].read_bytes()))
    assert set(raw[0]) == {
        "asin",
        "name",
        "full_description",
        "small_description",
        "pricing",
        "images",
        "customization_options",
        "category",
        "query",
        "product_category",
    }
    assert {p["category"] for p in raw} == {"beauty", "grocery", "fashion", "furniture", "electronics"}
    assert len({r["asin"] for r, _, _ in generate(5000)}) == 5000
    catalog = Catalog(find_data_files(tmp_path / "c"))
    assert len(catalog.products) == 60


def test_bundled_catalogue_counts():
    catalog = Catalog.load()
    assert len(catalog.products) == 1000
    assert len(shuffled_goals(catalog, "synthetic")) == 6770
    assert len(shuffled_goals(catalog, "human")) == 2448


def test_copied_data_dir_keeps_working(tiny_dir, tmp_path):
    shutil.copytree(tiny_dir, tmp_path / "copy", ignore=shutil.ignore_patterns(".hiper_cache"))
    env = gym.make("HiPER/WebShop-v0", data_dir=tmp_path / "copy")
    assert env.reset(seed=0)[0].startswith("WebShop [SEP]")
