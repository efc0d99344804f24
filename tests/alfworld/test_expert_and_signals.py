"""The expert wins every sampled task, and the subgoal signals agree with the engine's win flag."""

import pytest
from alfworld_testkit import play, sample_task_ids

from hiper_envs.alfworld.world import TASK_TYPES

CASES = [(split, task_id) for split in ("valid_seen", "valid_unseen") for task_id in sample_task_ids(split)]


@pytest.mark.parametrize("engine", ["textworld", "native"])
@pytest.mark.parametrize(("split", "task_id"), CASES, ids=[c[1].split("/")[0] for c in CASES])
def test_expert_wins_and_signals_track_the_state(make_env, split, task_id, engine):
    env = make_env(split=split, expert=True, reward_mode="progress", engine=engine)
    obs, info = env.reset(options={"task_id": task_id})
    assert info["task_id"] == task_id and obs.endswith(f"Your task is to: {info['task']}.")
    assert info["subgoal_index"] == 0 and info["progress"] < 1.0 and not info["won"]
    completed = 0
    transcript, info = play(env, info, lambda i: i["expert_action"])
    for action, _, _, step_info in transcript:
        assert step_info["action_valid"], action
        assert (step_info["progress"] == 1.0) == step_info["won"]
        completed += step_info["subgoal_completed"]
    assert info["won"] and transcript[-1][3]["score"] == 1.0
    assert info["progress"] == 1.0 and all(c["satisfied"] for c in info["goal_conditions"])
    assert info["subgoal_index"] == len(info["subgoals"]) == completed
    # With gamma = 1 the shaping telescopes: the return is the win plus the progress gained.
    _, first = env.reset(options={"task_id": task_id})
    assert sum(r for _, _, r, _ in transcript) == pytest.approx(1.0 + 1.0 - first["progress"])


def test_expert_recovers_after_the_agent_deviates(make_env):
    env = make_env(split="valid_seen", expert=True, task_types=["pick_two_obj_and_place"])
    _, info = env.reset(seed=3)
    wrong = [a for a in info["admissible_actions"] if a.startswith("go to") and a != info["expert_action"]]
    for action in wrong[:3]:
        _, _, _, _, info = env.step(action)
    assert info["expert_action"] in info["admissible_actions"]
    _, info = play(env, info, lambda i: i["expert_action"])
    assert info["won"]


def test_every_task_type_has_a_sample():
    assert len(CASES) == 2 * len(TASK_TYPES)
