"""One contract for every registered env, bare and wrapped: Gymnasium's checker, the info keys
and their types, non-string actions, the end of an episode, task ids, stepping before reset."""

from __future__ import annotations

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import hiper_envs
from hiper_envs.webshop.browser_env import chromium_available
from hiper_envs.wrappers import PlanExecute

TEXT_IDS = [i for i in hiper_envs.ENV_IDS if "Browser" not in i]
BROWSER = pytest.param("HiPER/WebShop-Browser-v0", marks=[
    pytest.mark.slow, pytest.mark.skipif(not chromium_available(), reason="needs chromium and chromedriver")])
SPLIT = {"HiPER/ALFWorld-v0": "valid_seen", "HiPER/KeyDoor-v0": "valid_seen", "HiPER/WebShop-v0": "test",
         "HiPER/WebShop-Browser-v0": "test"}
INFO_TYPES = {"task_id": str, "task_hash": str, "task": str, "task_type": str, "admissible_actions": list,
              "action_valid": bool, "won": bool, "score": float, "goal_conditions": list, "progress": float,
              "subgoals": list, "subgoal_index": int, "subgoal_completed": bool, "steps": int,
              "score_breakdown": dict}


def make(env_id: str, wrapped: bool, **kwargs) -> gym.Env:
    env = gym.make(env_id, split=SPLIT[env_id], expert=True, **kwargs)
    return PlanExecute(env) if wrapped else env


def check_info(info: dict) -> None:
    for key, kind in INFO_TYPES.items():
        assert isinstance(info[key], kind), (key, info[key])
    assert 0.0 <= info["progress"] <= 1.0 and (info["progress"] == 1.0) == info["won"]


def act(env: gym.Env, info: dict, wrapped: bool) -> str:
    action = info["expert_action"]
    return f"<switch>SWITCH</switch><subgoal>go on</subgoal><action>{action}</action>" if wrapped else action


@pytest.mark.parametrize("env_id", TEXT_IDS)
def test_gymnasium_checker_passes(env_id):
    env = gym.make(env_id, split=SPLIT[env_id])
    try:
        check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()


@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "plan-execute"])
@pytest.mark.parametrize("env_id", [*TEXT_IDS, BROWSER])
def test_contract_over_an_expert_episode(env_id, wrapped):
    env = make(env_id, wrapped)
    try:
        with pytest.raises(gym.error.ResetNeeded):
            env.step("look")
        obs, info = env.reset(seed=0)
        check_info(info)
        for bad in (None, 5, b"look", ["look"]):
            with pytest.raises(TypeError, match="got"):
                env.step(bad)
        terminated = truncated = False
        while not (terminated or truncated):
            obs, reward, terminated, truncated, info = env.step(act(env, info, wrapped))
            check_info(info)
        assert terminated and info["won"]
        steps = info["steps"]
        # after the end every env refuses the same way until reset: the same observation, no reward
        for _ in range(2):
            again, reward, terminated, truncated, refused = env.step(act(env, info, wrapped) if wrapped else "look")
            assert (again, reward, terminated, refused["action_valid"], refused["won"]) == (obs, 0.0, True, False, True)
        assert refused["steps"] == steps + 2
        env.reset(seed=1)
    finally:
        env.close()


@pytest.mark.parametrize("env_id", [*TEXT_IDS, BROWSER])
@pytest.mark.parametrize("task_id", [["x"], "²", "9" * 5000, None.__class__, "no such task", -1, True])
def test_every_env_refuses_an_unknown_task_id_alike(env_id, task_id):
    """The refused reset is the env's first call: the env made by `gymnasium.make` still plays."""
    env = gym.make(env_id, split=SPLIT[env_id], expert=True)
    try:
        with pytest.raises(ValueError, match=r"^unknown task_id .{1,90}; valid choices: '") as caught:
            env.reset(options={"task_id": task_id})
        assert len(str(caught.value)) < 2000
        first = env.unwrapped.task_ids[0]
        _, info = env.reset(options={"task_id": first})
        assert info["task_id"] == first
        assert env.step(info["expert_action"])[4]["steps"] == 1
    finally:
        env.close()


@pytest.mark.parametrize("env_id", TEXT_IDS)
def test_hundreds_of_envs_fit_in_one_host(env_id):
    """An env host keeps hundreds of envs: what is the same for all of them (the text spaces'
    55k-character tables, a split's games) is held once, while each env's spaces sample on their own."""
    import psutil

    first, second = make(env_id, False), make(env_id, False)
    assert first.observation_space.character_list is second.action_space.character_list
    first.observation_space.seed(1)
    second.observation_space.seed(1)
    first.observation_space.sample()
    assert first.observation_space.sample() != second.observation_space.sample()  # own RNG, not one shared
    ids = first.unwrapped.task_ids
    first.reset(options={"task_id": ids[0]})
    before = psutil.Process().memory_info().rss
    envs = [make(env_id, False) for _ in range(32)]
    for i, env in enumerate(envs):
        env.reset(seed=i, options={"task_id": ids[i % len(ids)]})
    assert (psutil.Process().memory_info().rss - before) / len(envs) < 2e6  # bytes per env
