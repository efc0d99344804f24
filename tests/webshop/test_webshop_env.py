"""The text env: Gymnasium contract, docs/envs.md info, expert, splits, seeding, reward modes, bad input."""

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import hiper_envs  # noqa: F401  (registers the ids)

INFO_KEYS = {
    "task_id",
    "task_hash",
    "task",
    "task_type",
    "admissible_actions",
    "action_valid",
    "won",
    "score",
    "goal_conditions",
    "progress",
    "subgoals",
    "subgoal_index",
    "subgoal_completed",
    "steps",
    "score_breakdown",
}


def make(**kw):
    return gym.make("HiPER/WebShop-v0", **kw)


def check_info(info: dict) -> None:
    assert INFO_KEYS <= set(info)
    assert info["task_type"] == "shop"
    assert all(set(c) == {"name", "satisfied"} for c in info["goal_conditions"])
    satisfied = sum(c["satisfied"] for c in info["goal_conditions"]) / len(info["goal_conditions"])
    assert info["progress"] == pytest.approx(satisfied)
    assert (info["progress"] == 1.0) == info["won"]
    assert 0 <= info["subgoal_index"] <= len(info["subgoals"])


def test_check_env():
    env = make()
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_make_in_a_fresh_interpreter():
    code = (
        "import gymnasium as gym; env = gym.make('hiper_envs:HiPER/WebShop-v0');"
        "obs, info = env.reset(seed=1); print(env.spec.max_episode_steps, obs.startswith('WebShop [SEP]'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["15", "True"]


@pytest.mark.parametrize("goals, n", [("synthetic", 40), ("human", 15)])
def test_expert_wins_sampled_goals_with_progress_one_exactly_at_the_win(goals, n):
    env = make(goals=goals, expert=True, reward_mode="progress")
    ids = env.unwrapped.task_ids
    for task_id in np.random.default_rng(7).choice(ids, size=n, replace=False):
        obs, info = env.reset(options={"task_id": str(task_id)})
        check_info(info)
        assert info["progress"] < 1.0 and info["subgoal_index"] == 0
        start, total, terminated, truncated = info["progress"], 0.0, False, False
        while not (terminated or truncated):
            obs, reward, terminated, truncated, info = env.step(info["expert_action"])
            total += reward
            check_info(info)
            assert info["action_valid"]
            assert info["won"] == terminated
        assert (info["won"], info["score"], info["progress"]) == (True, 1.0, 1.0)
        assert info["subgoal_index"] == len(info["subgoals"])
        assert info["expert_action"] is None
        assert info["score_breakdown"]["r_type"] == 1.0
        assert total == pytest.approx(1.0 + 1.0 - start)  # score 1 plus telescoped shaping
    env.close()


def test_expert_replans_after_deviations():
    env = make(expert=True)
    rng = np.random.default_rng(3)
    for episode in range(8):
        obs, info = env.reset(seed=episode)
        for _ in range(3):  # wander: random admissible clicks (never Buy), or a useless search
            clicks = [
                a for a in info["admissible_actions"] if a.startswith("click[") and a != "click[buy now]"
            ]
            action = (
                rng.choice(clicks) if clicks and rng.random() < 0.7 else "search[something else entirely]"
            )
            obs, _, terminated, _, info = env.step(str(action))
        while not info["won"]:
            obs, _, terminated, truncated, info = env.step(info["expert_action"])
            assert not truncated
        assert info["score"] == 1.0
    env.close()


def test_sparse_reward_only_on_buy_and_truncation_at_15():
    env = make(expert=True)
    obs, info = env.reset(seed=5)
    rewards = []
    while not info["won"]:
        obs, reward, terminated, truncated, info = env.step(info["expert_action"])
        rewards.append(reward)
    assert rewards[-1] == 1.0 and set(rewards[:-1]) == {0.0}
    obs, info = env.reset(seed=5)
    for step in range(15):
        obs, reward, terminated, truncated, info = env.step("click[nothing here]")
        assert (terminated, truncated) == (False, step == 14)
    assert info["steps"] == 15
    env.close()


def test_splits_are_disjoint_and_stable_across_seeds():
    ids = {split: make(split=split).unwrapped.task_ids for split in ("test", "eval", "train")}
    assert ids["test"] == [str(i) for i in range(500)]
    assert ids["eval"] == [str(i) for i in range(500, 1500)]
    assert not set(ids["train"]) & (set(ids["test"]) | set(ids["eval"]))
    hashes = []
    for seed in (0, 1, 99):
        env = make(split="train")
        env.reset(seed=seed)
        hashes.append(env.reset(options={"task_id": ids["train"][0]})[1]["task_hash"])
    assert len(set(hashes)) == 1
    test_env, train_env = make(split="test"), make(split="train")
    test_goals = {g.instruction_text for g in test_env.unwrapped.shop.goals[:500]}
    assert test_env.unwrapped.shop.goals is train_env.unwrapped.shop.goals  # one shuffle, shared
    assert len(test_goals) == 500


def test_same_seed_same_tasks_and_transcript():
    def transcript(seed):
        env = make(expert=True)
        rng = np.random.default_rng(seed)
        out = []
        for episode in range(3):
            obs, info = env.reset(seed=seed if episode == 0 else None)
            out.append((info["task_id"], obs))
            for _ in range(4):
                action = str(rng.choice(info["admissible_actions"])).replace("<query>", "red <r>")
                obs, reward, terminated, truncated, info = env.step(action)
                out.append((action, obs, reward))
                if terminated:
                    break
        return out

    assert transcript(11) == transcript(11)
    assert transcript(11) != transcript(12)


BAD_ACTIONS = [
    "",
    "   ",
    "search[]",
    "click[]",
    "click",
    "click[not on this page]",
    "click[search]",
    "CLICK[back to search]",
    "search [shampoo]",
    "search[a\nb]",
    "x" * 100_000,
    "click[" + "é" * 50_000 + "]",
    "click[💥]",
    "\x00\x01",
    "[]" * 1000,
]


def test_bad_input_changes_nothing():
    env = make(expert=True)
    obs, info = env.reset(seed=2)
    for page in ("search", "results", "item"):
        assert info["page"] == page
        for bad in BAD_ACTIONS:
            obs2, reward, terminated, truncated, info2 = env.step(bad)
            assert (obs2, reward, terminated, info2["action_valid"]) == (obs, 0.0, False, False), repr(
                bad[:30]
            )
            assert info2["admissible_actions"] == info["admissible_actions"]
            check_info(info2)
        next_action = "search[shampoo]" if page == "search" else info["admissible_actions"][-1]
        obs, _, _, _, info = env.step(next_action)
        assert info["action_valid"]
    env.close()


def test_odd_but_valid_searches_are_accepted():
    env = make()
    env.reset(seed=0)
    for query in [
        "men's",
        "color:",
        '"unbalanced',
        "(",
        "AND OR NOT",
        " ",
        "日本語 ✓",
        "<script>alert(1)</script>",
        "q" * 100_000,
        "<c> beauty",
        "<q> shampoo",
        "<a> cotton",
        "<r>",
        "<c>",
    ]:
        obs, reward, terminated, truncated, info = env.step(f"search[{query}]")
        assert info["action_valid"] and not terminated, query[:20]
        assert "Page 1 (Total results: " in obs
    env.close()


def test_prefix_searches():
    env = make()
    env.reset(seed=0)
    shop = env.unwrapped.shop
    obs, *_, info = env.step("search[<c> furniture]")
    n = sum(p.category == "furniture" for p in shop.catalog.products)
    assert f"Page 1 (Total results: {n})" in obs and n > 50
    obs = env.step("search[<r>]")[0]
    assert "(Total results: 50)" in obs
    env.close()


def test_after_buy_nothing_is_accepted():
    env = make(expert=True)
    obs, info = env.reset(seed=4)
    while not info["won"]:
        obs, reward, terminated, truncated, info = env.step(info["expert_action"])
    for action in ("search[x]", "click[buy now]", "click[back to search]"):
        obs2, reward, terminated, truncated, info2 = env.step(action)
        assert (obs2, reward, terminated, info2["action_valid"], info2["score"]) == (
            obs,
            0.0,
            True,
            False,
            1.0,
        )
    env.close()


@pytest.mark.parametrize(
    "kwargs, names",
    [
        ({"split": "valid"}, "'test', 'eval', 'train'"),
        ({"goals": "robot"}, "'synthetic', 'human'"),
        ({"observation_mode": "pixels"}, "'text', 'text_rich', 'html'"),
        ({"reward_mode": "dense"}, "'sparse', 'progress'"),
    ],
)
def test_unknown_choices_raise_naming_valid_ones(kwargs, names):
    with pytest.raises(ValueError, match="valid choices: " + names.replace("(", r"\(")):
        make(**kwargs)


def test_unknown_task_id_raises():
    env = make(split="test")
    for bad in ("500", "-1", "abc", "", 10**9):
        with pytest.raises(ValueError, match="valid choices: '0', '1'"):
            env.reset(options={"task_id": bad})
    assert env.reset(options={"task_id": 499})[1]["task_id"] == "499"


def test_render_and_observation_modes():
    env = make(render_mode="ansi", observation_mode="html")
    obs, info = env.reset(seed=0)
    assert obs.startswith("<!DOCTYPE html>") and "search_input" in obs
    assert env.render().startswith("WebShop [SEP] Instruction:")
    env.close()
