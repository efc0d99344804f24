"""The native engine against the reference on a CI-sized sample (the full run is
`bench/alfworld_engines.py parity`): every state of the expert's episode, of the scripted tour of
rare actions and of a seeded random episode with invalid commands, both engines in lockstep; and the same through the env on a tree in
the original layout read via `data_dir`."""

import random

import pytest
from test_data import write_game

from hiper_envs.alfworld.dataset import load_tasks
from hiper_envs.alfworld.engine import make_engine
from hiper_envs.alfworld.engine.parity import compare_task
from hiper_envs.alfworld.world import TASK_TYPES


def _sample() -> list:
    """One task per type: the first three types from valid_seen, the other three from valid_unseen."""
    picked = []
    for i, kind in enumerate(TASK_TYPES):
        tasks = load_tasks("valid_seen" if i < 3 else "valid_unseen")
        picked.append(next(t for t in tasks if t.spec.task_type == kind))
    return picked


@pytest.mark.parametrize("task", _sample(), ids=lambda t: t.spec.task_type)
def test_native_matches_the_reference_state_for_state(task):
    result = compare_task(task, lambda g: make_engine("textworld", g), lambda g: make_engine("native", g),
                          random_episodes=1, random_steps=15)
    assert result.steps > 20
    assert result.mismatches == []


def test_real_format_tree_plays_the_same_through_the_env(make_env, tmp_path):
    bundled = load_tasks("valid_unseen")
    for kind in ("pick_cool_then_place_in_recep", "pick_two_obj_and_place"):
        task = next(t for t in bundled if t.spec.task_type == kind)
        write_game(tmp_path, "valid_unseen", f"{kind}-{task.spec.object_target}-None-X-10", task)
    envs = {name: make_env(split="valid_unseen", data_dir=str(tmp_path), engine=name, expert=True)
            for name in ("textworld", "native")}
    keys = ("admissible_actions", "action_valid", "won", "goal_conditions", "progress", "subgoal_index",
            "subgoal_completed", "task", "task_id")
    compared = 0
    for task_id in envs["native"].unwrapped.task_ids:
        (obs_ref, info_ref), (obs, info) = (env.reset(options={"task_id": task_id}) for env in envs.values())
        assert obs == obs_ref
        rng = random.Random(task_id)
        for step in range(30):
            invalid = ["", "TAKE NOTHING", f" {info_ref['admissible_actions'][0]} "]
            action = info_ref["expert_action"] if step % 3 else rng.choice(info_ref["admissible_actions"] + invalid)
            out_ref, out = envs["textworld"].step(action), envs["native"].step(action)
            assert out[:4] == out_ref[:4], (task_id, step, action)
            assert {k: out[4][k] for k in keys} == {k: out_ref[4][k] for k in keys}, (task_id, step, action)
            info_ref, compared = out_ref[4], compared + 1
            if out_ref[2]:
                break
    assert compared >= 10
