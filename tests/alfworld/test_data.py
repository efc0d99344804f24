"""Loading the original json_2.1.1 layout through data_dir, and clear errors for broken data."""

import json
import lzma
from pathlib import Path

import pytest
from alfworld_testkit import play

from hiper_envs.alfworld import dataset
from hiper_envs.alfworld.dataset import load_tasks


def write_game(root: Path, split: str, folder: str, task, solvable: bool = True) -> Path:
    trial = root / "json_2.1.1" / split / folder / "trial_T20190909_000000_000001"
    trial.mkdir(parents=True)
    params = {"object_target": task.spec.object_target, "parent_target": task.spec.parent_target,
              "toggle_target": task.spec.toggle_target, "mrecep_target": "", "object_sliced": False}
    (trial / "traj_data.json").write_text(json.dumps({"task_type": task.spec.task_type, "pddl_params": params}))
    (trial / "initial_state.pddl").write_text(task.game["pddl_problem"])
    (trial / "game.tw-pddl").write_text(json.dumps({**task.game, "solvable": solvable}))
    return trial


@pytest.fixture(scope="module")
def real_tree(tmp_path_factory):
    """A small tree in the original layout, with the cases the original loader skips."""
    root = tmp_path_factory.mktemp("alfworld_data")
    bundled = load_tasks("valid_seen")
    heat = next(t for t in bundled if t.spec.task_type == "pick_heat_then_place_in_recep")
    look = next(t for t in bundled if t.spec.task_type == "look_at_obj_in_light")
    write_game(root, "valid_seen", "pick_heat_then_place_in_recep-Egg-None-Fridge-7", heat)
    write_game(root, "valid_seen", "look_at_obj_in_light-Book-None-DeskLamp-301", look)
    write_game(root, "valid_seen", "pick_and_place_with_movable_recep-Egg-Bowl-Fridge-7", heat)
    write_game(root, "valid_seen", "pick_heat_then_place_in_recep-AppleSliced-None-Fridge-7", heat)
    write_game(root, "valid_seen", "pick_heat_then_place_in_recep-Egg-None-Fridge-8", heat, solvable=False)
    no_game = write_game(root, "valid_seen", "pick_heat_then_place_in_recep-Egg-None-Fridge-9", heat)
    (no_game / "game.tw-pddl").unlink()
    return root


def test_real_tree_loads_like_the_original_loader(real_tree):
    tasks = load_tasks("valid_seen", data_dir=str(real_tree))
    assert [t.task_id for t in tasks] == [
        "look_at_obj_in_light-Book-None-DeskLamp-301/trial_T20190909_000000_000001",
        "pick_heat_then_place_in_recep-Egg-None-Fridge-7/trial_T20190909_000000_000001",
    ]
    assert not any(t.synthetic or t.task_hash.startswith("synth:") for t in tasks)


def test_real_tree_plays_through_the_env(make_env, real_tree, monkeypatch):
    monkeypatch.setenv("ALFWORLD_DATA", str(real_tree))
    env = make_env(split="valid_seen", expert=True, task_types=["pick_heat_then_place_in_recep"])
    _, info = env.reset(seed=0)
    assert info["task_id"].startswith("pick_heat_then_place_in_recep-Egg-None-Fridge-7/")
    _, info = play(env, info, lambda i: i["expert_action"])
    assert info["won"] and info["progress"] == 1.0


def test_corrupt_game_file_is_named(tmp_path):
    task = load_tasks("valid_seen")[0]
    trial = write_game(tmp_path, "valid_seen", "pick_and_place_simple-Mug-None-Desk-7", task)
    (trial / "game.tw-pddl").write_text("{not json")
    with pytest.raises(ValueError, match=r"corrupt ALFWorld data file: .*game\.tw-pddl"):
        load_tasks("valid_seen", data_dir=str(tmp_path))


def test_missing_split_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="split folder not found: .*valid_unseen"):
        load_tasks("valid_unseen", data_dir=str(tmp_path))


def test_corrupt_or_missing_bundled_file_is_named(tmp_path, monkeypatch):
    broken = tmp_path / "valid_seen.jsonl.xz"
    broken.write_bytes(lzma.compress(b'{"task_id": '))
    monkeypatch.setattr(dataset, "bundled_path", lambda split: tmp_path / f"{split}.jsonl.xz")
    dataset._split_tasks.cache_clear()
    try:
        with pytest.raises(ValueError, match="valid_seen.jsonl.xz"):
            load_tasks("valid_seen")
        with pytest.raises(FileNotFoundError, match="train.jsonl.xz"):
            load_tasks("train")
    finally:
        dataset._split_tasks.cache_clear()


def test_bundled_splits_have_the_real_proportions():
    from hiper_envs.alfworld.generate import REAL_COUNTS

    for split in ("valid_seen", "valid_unseen"):
        counts = {}
        for task in load_tasks(split):
            counts[task.spec.task_type] = counts.get(task.spec.task_type, 0) + 1
        assert counts == REAL_COUNTS[split]
    assert len(load_tasks("train")) >= 1000


def test_unseen_floorplans_never_appear_in_seen_splits():
    from hiper_envs.alfworld.generate import UNSEEN_FLOORPLANS

    def floorplan(task):
        return int(task.task_id.split("/")[0].rsplit("-", 1)[1])

    assert {floorplan(t) for t in load_tasks("valid_unseen")} <= set(UNSEEN_FLOORPLANS)
    seen = {floorplan(t) for split in ("train", "valid_seen") for t in load_tasks(split)}
    assert not seen & set(UNSEEN_FLOORPLANS)
