"""HiPER/KeyDoor-v0: the Gymnasium contract, the docs/envs.md info, the expert, splits, vocabulary,
bad input, determinism and speed."""

import copy
import subprocess
import sys
import time
from collections import deque

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from hiper_envs.keydoor import VOCABULARY, tokenize
from hiper_envs.keydoor.env import KeyDoorEnv
from hiper_envs.keydoor.game import State
from hiper_envs.keydoor.layouts import SPLITS, split_layouts

INFO_KEYS = {
    "task_id", "task_hash", "task", "task_type", "admissible_actions", "action_valid", "won", "score",
    "goal_conditions", "progress", "subgoals", "subgoal_index", "subgoal_completed", "steps", "score_breakdown",
}


def test_check_env_passes(make_env):
    check_env(make_env().unwrapped, skip_render_check=True)


def test_make_in_a_fresh_interpreter_by_module_prefix():
    code = (
        "import gymnasium as gym\n"
        "env = gym.make('hiper_envs:HiPER/KeyDoor-v0', split='valid_unseen')\n"
        "obs, info = env.reset(seed=0)\n"
        "print(info['task_type'], env.spec.max_episode_steps)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    task_type, max_steps = out.stdout.split()
    assert max_steps == "30" and task_type in ("2_rooms", "3_rooms", "4_rooms")


def shortest_plan_length(state: State) -> int:
    """Breadth-first search over states: the length of a shortest winning action sequence."""
    def key(s: State) -> tuple:
        return s.room, s.furthest, tuple(s.key_at), tuple(s.door_open), s.distractor_at, s.won

    frontier, seen = deque([(state, 0)]), {key(state)}
    while frontier:
        s, depth = frontier.popleft()
        if s.won:
            return depth
        for action in s.admissible_actions():
            nxt = copy.deepcopy(s)
            nxt.apply(action)
            if key(nxt) not in seen:
                seen.add(key(nxt))
                frontier.append((nxt, depth + 1))
    raise AssertionError("unsolvable layout")


def sample_ids(split: str, n: int) -> list[str]:
    ids = list(split_layouts(split))
    return [ids[i] for i in np.random.default_rng(0).choice(len(ids), size=min(n, len(ids)), replace=False)]


@pytest.mark.parametrize("split", SPLITS)
def test_expert_wins_every_sampled_task_by_a_shortest_plan(make_env, split):
    env = make_env(split=split, expert=True)
    for task_id in sample_ids(split, 60):
        obs, info = env.reset(options={"task_id": task_id})
        assert set(info) == INFO_KEYS | {"expert_action"} and info["task_id"] == task_id
        optimum = shortest_plan_length(env.unwrapped._state)
        steps, index = 0, info["subgoal_index"]
        while not info["won"]:
            assert info["progress"] < 1.0 and info["expert_action"] in info["admissible_actions"]
            obs, reward, terminated, truncated, info = env.step(info["expert_action"])
            steps += 1
            assert info["action_valid"] and info["subgoal_index"] >= index
            assert info["subgoal_completed"] == (info["subgoal_index"] > index)
            index = info["subgoal_index"]
            assert (reward, terminated) == ((1.0, True) if info["won"] else (0.0, False))
        assert steps == optimum
        assert info["progress"] == 1.0 and info["score"] == 1.0
        assert info["subgoal_index"] == len(info["subgoals"])
        assert all(c["satisfied"] for c in info["goal_conditions"])


def test_expert_replans_after_random_detours(make_env):
    env = make_env(split="train", expert=True)
    rng = np.random.default_rng(3)
    for episode in range(40):
        obs, info = env.reset(seed=episode)
        for _ in range(int(rng.integers(1, 8))):
            obs, _, terminated, _, info = env.step(str(rng.choice(info["admissible_actions"])))
            if terminated:
                break
        remaining = shortest_plan_length(env.unwrapped._state)
        steps = 0
        while not info["won"]:
            obs, _, _, _, info = env.step(info["expert_action"])
            steps += 1
        assert steps == remaining


def test_info_on_reset_and_subgoal_order(make_env):
    env = make_env(split="valid_seen")
    obs, info = env.reset(seed=2)
    assert obs.startswith("Your task is to: take the treasure in room ")
    assert (info["action_valid"], info["won"], info["steps"], info["progress"]) == (True, False, 0, 0.0)
    assert (info["subgoal_index"], info["subgoal_completed"], info["score_breakdown"]) == (0, False, {})
    n_doors = int(info["task_type"][0]) - 1
    assert len(info["subgoals"]) == 3 * n_doors + 1 and info["subgoals"][-1] == "take the treasure"
    assert [c["name"] for c in info["goal_conditions"]] == info["subgoals"]


def test_progress_reward_mode_telescopes(make_env):
    env = make_env(split="valid_seen", expert=True, reward_mode="progress")
    _, info = env.reset(seed=4)
    total = 0.0
    while not info["won"]:
        _, reward, _, _, info = env.step(info["expert_action"])
        total += reward
    assert total == pytest.approx(2.0)  # sparse 1 + progress from 0 to 1


@pytest.mark.parametrize(
    "action",
    ["", " ", "x" * 100_000, "prendre la clé 🔑", "go east; rm -rf /", "GO WEST", "take", "open red door",
     "go east", "go west", "take treasure", "take purple key "],
)
def test_bad_actions_change_nothing(make_env, action):
    env = make_env(split="train")
    _, info = env.reset(options={"task_id": "3r-red.blue-k00-none"})
    before = copy.deepcopy(env.unwrapped._state)
    obs, reward, terminated, truncated, after = env.step(action)
    assert obs == "Nothing happens."
    assert (after["action_valid"], reward, terminated, after["steps"]) == (False, 0.0, False, 1)
    assert after["admissible_actions"] == info["admissible_actions"]
    assert env.unwrapped._state == before


def test_non_string_action_is_a_type_error(make_env):
    env = make_env()
    env.reset(seed=0)
    with pytest.raises(TypeError, match="an action is a str, got int"):
        env.step(3)


def test_unknown_choices_name_the_valid_ones(make_env):
    with pytest.raises(ValueError, match="valid choices: 'train', 'valid_seen', 'valid_unseen'"):
        make_env(split="test")
    with pytest.raises(ValueError, match="unknown room count 5; valid choices: 2, 3, 4"):
        make_env(rooms=[3, 5])
    with pytest.raises(ValueError, match="'sparse', 'progress'"):
        make_env(reward_mode="dense")
    with pytest.raises(ValueError, match="valid choices: None, 'ansi'"):
        KeyDoorEnv(render_mode="human")
    env = make_env(split="valid_seen")
    with pytest.raises(ValueError, match="unknown task_id 'nope'; valid choices: '"):
        env.reset(options={"task_id": "nope"})
    with pytest.raises(ValueError, match="unknown task_id '2r-"):  # a train task is not in valid_seen
        env.reset(options={"task_id": next(iter(split_layouts("train")))})


def random_transcript(env, seed: int, steps: int = 12) -> list:
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    out = [obs, info["task_id"]]
    for _ in range(steps):
        action = str(rng.choice(info["admissible_actions"] + ["dance"]))
        obs, reward, terminated, truncated, info = env.step(action)
        out.append((action, obs, reward, terminated, truncated))
        if terminated or truncated:
            break
    return out


def test_same_seed_same_transcript(make_env):
    first, second = make_env(), make_env()
    for seed in range(5):
        assert random_transcript(first, seed) == random_transcript(second, seed)
    ids = [first.reset()[1]["task_id"] for _ in range(5)]
    assert ids == [second.reset()[1]["task_id"] for _ in range(5)]
    assert len({first.reset(seed=s)[1]["task_id"] for s in range(20)}) > 1


def test_splits_are_fixed_disjoint_and_unseen_scenes_are_new():
    layouts = {split: split_layouts(split) for split in SPLITS}
    assert [len(layouts[s]) for s in SPLITS] == [2814, 100, 771]
    for tasks in layouts.values():
        assert list(tasks) == sorted(tasks)
        assert len({t.task_hash for t in tasks.values()}) == len(tasks)
        for t in tasks.values():
            assert all(room <= door for door, room in enumerate(t.key_rooms))
    assert not set(layouts["train"]) & set(layouts["valid_seen"])
    scenes = {s: {(t.rooms, t.door_colors) for t in layouts[s].values()} for s in SPLITS}
    assert scenes["valid_seen"] <= scenes["train"]
    assert not scenes["valid_unseen"] & (scenes["train"] | scenes["valid_seen"])


def test_rooms_filter(make_env):
    env = make_env(rooms=[2])
    assert env.unwrapped.task_ids and all(i.startswith("2r-") for i in env.unwrapped.task_ids)
    assert env.reset(seed=0)[1]["task_type"] == "2_rooms"


def test_every_text_is_in_the_vocabulary(make_env):
    env = make_env(split="valid_unseen", expert=True)
    words = set(VOCABULARY)
    assert len(VOCABULARY) == len(words) < 60
    for seed in range(30):
        obs, info = env.reset(seed=seed)
        texts = [obs, info["task"], *info["subgoals"], *info["admissible_actions"]]
        for _ in range(30):
            action = info["expert_action"] if seed % 2 else str(np.random.default_rng(seed).choice(info["admissible_actions"]))
            obs, _, terminated, _, info = env.step(action)
            texts += [obs, action, *info["admissible_actions"]]
            if terminated:
                break
        for text in texts:
            assert set(tokenize(text)) <= words, text


def test_render_ansi_returns_the_last_observation(make_env):
    env = make_env(render_mode="ansi")
    obs, _ = env.reset(seed=0)
    assert env.render() == obs


def test_a_step_costs_microseconds(make_env):
    env = make_env(expert=True).unwrapped
    _, info = env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while steps < 2000:
        _, _, terminated, _, info = env.step(info["expert_action"])
        steps += 1
        if terminated:
            _, info = env.reset()
    per_step = (time.perf_counter() - start) / steps
    assert per_step < 200e-6, f"{per_step * 1e6:.0f} us per step"
