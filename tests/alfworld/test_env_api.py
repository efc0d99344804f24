"""Registration, the Gymnasium contract, bad input, determinism and parallel use of HiPER/ALFWorld-v0."""

import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from alfworld_testkit import play
from gymnasium.utils.env_checker import check_env

from hiper_envs.alfworld.world import TASK_TYPES


def run_python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return out.stdout


def test_make_in_a_fresh_interpreter_by_module_prefix():
    out = run_python(
        "import gymnasium as gym\n"
        "env = gym.make('hiper_envs:HiPER/ALFWorld-v0', split='valid_seen')\n"
        "obs, info = env.reset(seed=0)\n"
        "print(info['task_type'], env.spec.max_episode_steps)\n"
    )
    task_type, max_steps = out.split()
    assert max_steps == "50" and task_type in TASK_TYPES


def test_import_registers_ids_without_importing_an_engine():
    out = run_python(
        "import sys, time, gymnasium\n"
        "t = time.perf_counter(); import hiper_envs; dt = time.perf_counter() - t\n"
        "heavy = [m for m in ('textworld', 'alfworld', 'fast_downward', 'torch') if m in sys.modules]\n"
        "print(json.dumps({'dt': dt, 'heavy': heavy, 'ids': sorted(i for i in gymnasium.registry if i.startswith('HiPER/'))}))"
        .replace("import sys,", "import json, sys,")
    )
    report = json.loads(out)
    assert report["heavy"] == []
    assert report["dt"] < 0.3
    assert "HiPER/ALFWorld-v0" in report["ids"]


@pytest.mark.parametrize("engine", ["textworld", "native"])
def test_check_env_passes(make_env, engine):
    check_env(make_env(split="valid_seen", engine=engine).unwrapped, skip_render_check=True)


@pytest.mark.parametrize(
    "action",
    ["", " ", "x" * 100_000, "prendre la pomme 🍎 ü", "go to fridge 1; rm -rf / && echo $(whoami)", "GO TO FRIDGE 1",
     "take", "\n\n", "go to nowhere 99"],
    ids=["empty", "space", "100kB", "non-ascii", "shell", "upper", "partial", "newlines", "unknown"],
)
def test_bad_actions_change_nothing(shared_env, action):
    env, first_facts, first_info = shared_env
    obs, reward, terminated, truncated, info = env.step(action)
    assert obs == "Nothing happens."
    assert (info["action_valid"], reward, terminated) == (False, 0.0, False)
    assert info["admissible_actions"] == first_info["admissible_actions"]
    assert info["goal_conditions"] == first_info["goal_conditions"]
    assert env.unwrapped._state.facts == first_facts


@pytest.fixture(scope="module", params=["textworld", "native"])
def shared_env(request):
    env = gym.make("HiPER/ALFWorld-v0", split="valid_seen", max_episode_steps=1000, engine=request.param)
    _, info = env.reset(seed=1)
    yield env, env.unwrapped._state.facts, info
    env.close()


def test_unknown_choices_name_the_valid_ones(make_env):
    with pytest.raises(ValueError, match="valid choices: 'train', 'valid_seen', 'valid_unseen'"):
        make_env(split="test")
    with pytest.raises(ValueError, match="pick_and_place_simple"):
        make_env(task_types=["pick_and_eat"])
    with pytest.raises(ValueError, match="'textworld'"):
        make_env(engine="fast")
    with pytest.raises(ValueError, match="'sparse', 'progress'"):
        make_env(reward_mode="dense")
    env = make_env(split="valid_seen")
    with pytest.raises(ValueError, match="unknown task_id 'nope'; valid choices: 'synth:"):
        env.reset(options={"task_id": "nope"})


def random_transcript(env, seed: int, steps: int = 6) -> list:
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    transcript, _ = play(env, info, lambda i: str(rng.choice(i["admissible_actions"])), max_steps=steps)
    return [obs] + [(a, o, r) for a, o, r, _ in transcript]


def test_same_seed_same_transcript(make_env):
    first, second = make_env(split="valid_unseen"), make_env(split="valid_unseen")
    assert random_transcript(first, 7) == random_transcript(second, 7)
    assert first.reset(seed=11)[1]["task_id"] == second.reset(seed=11)[1]["task_id"]
    ids = [first.reset()[1]["task_id"] for _ in range(3)]
    assert ids == [second.reset()[1]["task_id"] for _ in range(3)]


def test_task_ids_are_fixed_and_sorted(make_env):
    env = make_env(split="valid_seen")
    ids = env.unwrapped.task_ids
    assert ids == sorted(ids) and len(ids) == 140 and all(i.startswith("synth:") for i in ids)


@pytest.mark.parametrize("engine", ["textworld", "native"])
def test_eight_envs_in_one_process_interleaved(make_env, engine):
    envs = [make_env(split="valid_seen", expert=True, engine=engine) for _ in range(8)]
    infos = [env.reset(seed=i)[1] for i, env in enumerate(envs)]
    done = [False] * 8
    for _ in range(50):
        for i, env in enumerate(envs):
            if not done[i]:
                _, _, done[i], _, infos[i] = env.step(infos[i]["expert_action"])
        if all(done):
            break
    assert all(info["won"] for info in infos)


@pytest.mark.parametrize("engine", ["textworld", "native"])
def test_async_vector_env_with_two_workers(engine):
    envs = gym.make_vec("HiPER/ALFWorld-v0", num_envs=2, vectorization_mode="async", split="valid_seen",
                        engine=engine)
    try:
        obs, infos = envs.reset(seed=5)
        assert len(obs) == 2 and all("Your task is to:" in o for o in obs)
        obs, rewards, terminated, truncated, infos = envs.step(["look", "inventory"])
        assert list(infos["action_valid"]) == [True, True]
        assert obs[1] in ("You are not carrying anything.",)
    finally:
        envs.close()


def test_render_ansi_returns_the_last_observation(make_env):
    env = make_env(split="valid_seen", render_mode="ansi")
    obs, _ = env.reset(seed=0)
    assert env.render() == obs
