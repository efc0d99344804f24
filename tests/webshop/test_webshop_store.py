"""The product store: the same products, goals and pages as the in-memory catalogue, and a start-up
that reads no raw file."""

import json
import multiprocessing
import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from conftest import write_tiny

import hiper_envs  # noqa: F401
from hiper_envs.webshop.catalog import (
    BUNDLED_DIR,
    Catalog,
    CatalogError,
    find_data_files,
    product_keys,
    stream_json,
)
from hiper_envs.webshop.engine import Session, Shop
from hiper_envs.webshop.expert import expert_action
from hiper_envs.webshop.generate import write_catalog
from hiper_envs.webshop.goals import GOAL_KINDS, shuffled_goals
from hiper_envs.webshop.store import ProductStore

DETOURS = ["<c> beauty", "<c> fashion", "<r>", "<q> t-shirt", "<a> cotton", "black cotton shirt", "men's"]


@pytest.fixture(scope="module", params=["bundled", "generated", "tiny"])
def data_dir(request, tmp_path_factory):
    if request.param == "bundled":
        return BUNDLED_DIR
    if request.param == "generated":
        return write_catalog(tmp_path_factory.mktemp("generated"), 400, seed=2)["products"].parent
    return write_tiny(tmp_path_factory.mktemp("tiny"))


def transcript(shop: Shop, seed: int) -> list:
    """Pages, clickables and scores of episodes led by the expert with random detours."""
    rng = np.random.default_rng(seed)
    out = []
    for task in rng.choice(len(shop.goals), size=min(6, len(shop.goals)), replace=False):
        session = Session(shop, shop.goals[int(task)], np.random.default_rng(seed), show_attributes=True)
        for _ in range(14):
            if session.done:
                break
            actions = session.admissible_actions()
            if rng.random() < 0.35:
                action = str(rng.choice(actions)).replace("<query>", str(rng.choice(DETOURS)))
            else:
                action = expert_action(session)
            out.append((action, session.step(action), session.observe("text_rich"), session.observe("html")))
            out.append((session.clickables(), session.score, session.breakdown))
    return out


def test_store_equals_the_in_memory_catalogue(data_dir):
    catalog = Catalog.load(data_dir)
    store = ProductStore.open(find_data_files(data_dir))
    assert store.content_hash == catalog.content_hash
    assert len(store.products) == len(catalog.products)
    assert list(store.products) == catalog.products
    assert [store.by_asin[p.asin] for p in catalog.products] == catalog.products
    assert len(store.by_asin) == len(catalog.by_asin) and "B0NOTTHERE" not in store.by_asin
    for field, value in {key for p in catalog.products for key in product_keys(p)}:
        assert list(store.products_by(field, value)) == catalog.products_by(field, value), (field, value)
    assert list(store.products_by("category", "no such category")) == []
    for kind in GOAL_KINDS:
        stored, expected = list(store.goals(kind)), shuffled_goals(catalog, kind)
        assert stored == expected
        assert [g.task_hash for g in stored] == [g.task_hash for g in expected]  # types too (1e6 vs 1e6.0)


def test_stored_and_in_memory_shops_give_the_same_episodes(data_dir):
    catalog = Catalog.load(data_dir)
    for kind in GOAL_KINDS:
        stored = Shop.load(data_dir, kind)
        in_memory = Shop(catalog, shuffled_goals(catalog, kind))
        if len(stored.goals):
            assert transcript(stored, 5) == transcript(in_memory, 5)


def test_lazy_sequences_behave_as_lists():
    store = ProductStore.open(find_data_files(BUNDLED_DIR))
    goals = store.goals("synthetic")
    assert goals[-1] == goals[len(goals) - 1] and goals[2:5] == [goals[2], goals[3], goals[4]]
    with pytest.raises(IndexError):
        goals[len(goals)]
    found = store.products_by("category", "beauty")
    products = list(found)
    assert found[-1] == products[-1] and found[3:7] == products[3:7]
    assert found.index(products[7]) == 7 and products[7] in found
    assert store.products[0] not in found or store.products[0].category == "beauty"
    with pytest.raises(ValueError):
        found.index(products[7], 8)
    with pytest.raises(KeyError):
        store.by_asin["B0NOTTHERE"]


def _first_title(shop: Shop, queue) -> None:
    queue.put(shop.catalog.products[1].title)


def test_a_store_opened_before_a_fork_works_in_the_child():
    shop = Shop.load(None, "synthetic")
    title = shop.catalog.products[1].title
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=_first_title, args=(shop, queue))
    process.start()
    assert queue.get(timeout=30) == title
    process.join(timeout=30)


def test_a_changed_file_gets_a_new_store_even_with_the_same_size_and_mtime(tmp_path):
    data = write_tiny(tmp_path / "data")
    first = ProductStore.open(find_data_files(data))
    path = data / "items_shuffle.json"
    stat = path.stat()
    path.write_text(path.read_text().replace("Oak Coffee Table", "Elm Coffee Table"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = ProductStore.open(find_data_files(data))
    assert second.content_hash != first.content_hash
    assert second.by_asin["B000000003"].title == "Elm Coffee Table"


def test_stream_json_across_chunks_and_bad_files(tmp_path, monkeypatch):
    monkeypatch.setattr("hiper_envs.webshop.catalog.JSON_CHUNK", 5)
    path = tmp_path / "f.json"
    path.write_text('[1, 2.5e3 , {"a": [1, "]"]}, "x,y" ,12345678]')
    assert list(stream_json(path, list)) == [1, 2500.0, {"a": [1, "]"]}, "x,y", 12345678]
    path.write_text('{"a": 1, "b" : {"c": "}"}}')
    assert list(stream_json(path, dict)) == [("a", 1), ("b", {"c": "}"})]
    for bad in ["[1, 2", "[1 2]", '{"a": 1}', "", "[{'a': 1}]"]:
        path.write_text(bad)
        with pytest.raises(CatalogError, match="f.json: not a readable WebShop JSON file"):
            list(stream_json(path, list))


def test_corrupt_files_name_the_file_when_the_store_is_built(tmp_path):
    data = write_tiny(tmp_path / "data")
    (data / "items_human_ins.json").write_text('{"B000000001": [')
    with pytest.raises(CatalogError, match="items_human_ins.json: not a readable"):
        gym.make("HiPER/WebShop-v0", data_dir=data).reset(seed=0)
    write_tiny(data)
    (data / "items_shuffle.json").write_text(json.dumps([{"asin": "B1", "name": "no other fields"}]))
    with pytest.raises(CatalogError, match="items_shuffle.json: product 'B1' is malformed"):
        gym.make("HiPER/WebShop-v0", data_dir=data).reset(seed=0)
    assert not list((data / ".hiper_cache").glob("*.sqlite*"))  # no half-built store is left


START = """
import json, sys, time
import hiper_envs.webshop.catalog, hiper_envs.webshop.search, hiper_envs.webshop.store

def refuse(*args, **kwargs):
    raise AssertionError("start-up rebuilt or rehashed the catalogue")

hiper_envs.webshop.catalog.content_hash = hiper_envs.webshop.store.build_store = refuse
hiper_envs.webshop.search.build_index = refuse
t = time.perf_counter()
import gymnasium as gym
env = gym.make("hiper_envs:HiPER/WebShop-v0", data_dir=sys.argv[1], split="train", expert=True)
obs, info = env.reset(options={"task_id": sys.argv[2]})
obs = env.step(info["expert_action"])[0]
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
found = env.unwrapped.session.goal.asin in obs
print(json.dumps({"s": time.perf_counter() - t, "rss_mib": peak / 1024, "task_hash": info["task_hash"], "found": found}))
"""


@pytest.mark.slow
def test_a_20k_catalogue_starts_from_the_prebuilt_store(tmp_path):
    """The 1.2M benchmark's code path, scaled down: prebuild, then a fresh process that reads no raw
    file, and goals identical to the in-memory ones."""
    data = write_catalog(tmp_path / "data", 20_000, seed=1)["products"].parent
    stored = Shop.load(data, "synthetic")  # prebuild: store and index
    catalog = Catalog.load(data)
    expected = shuffled_goals(catalog, "synthetic")
    assert len(stored.goals) == len(expected) > 100_000
    positions = np.random.default_rng(0).choice(len(expected), size=300, replace=False)
    assert [stored.goals[int(i)] for i in positions] == [expected[i] for i in positions]
    task_id = str(int(positions[positions >= 1500][0]))
    out = subprocess.run(
        [sys.executable, "-c", START, str(data), task_id], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["task_hash"] == expected[int(task_id)].task_hash and result["found"]
    assert result["rss_mib"] < 200  # VmHWM: getrusage would include this (big) parent's peak
