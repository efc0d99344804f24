"""Training rollouts take termination from the env's own flags: an episode that ends on its last
allowed step is terminated (no bootstrap), also when it did not win (a WebShop purchase that scores
below 1), and one cut off by the step limit is not."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "harness"))
import fakeenv  # noqa: E402

from harness.envspec import EnvSpec  # noqa: E402
from harness.runner import Pool  # noqa: E402
from harness.training.config import TrainConfig  # noqa: E402
from harness.training.rollout import collect, recording_agent  # noqa: E402

ENV = f"fakeenv:{fakeenv.ENV_ID}"


class CorridorExpertBackend:
    """Answers like a flat agent that plays the corridor's expert policy from the listed actions."""

    def generate(self, conversations):
        replies = []
        for messages in conversations:
            listed = re.findall(r"^- (.+)$", messages[-1]["content"], re.MULTILINE)
            action = next(a for a in ("open door", "take key", "forward") if a in listed)
            replies.append(f"<think>go on</think><action>{action}</action>")
        return replies


@pytest.mark.parametrize(("limit", "trapped", "terminated", "won"),
                         [(6, False, True, True), (6, True, True, False), (3, False, False, False)])
def test_rollout_termination_follows_the_env(limit: int, trapped: bool, terminated: bool, won: bool) -> None:
    cfg = TrainConfig(algorithm="grpo", agent="react", model="x", env_id=ENV, num_envs=2, group_size=2)
    spec = EnvSpec(ENV, {"split": "test", "trapped_door": trapped}, (), limit)
    backend = CorridorExpertBackend()
    with Pool(1) as pool:
        trajs, failed = collect(pool, spec, [("test-0", 0), ("test-0", 0)], [1, 2],
                                lambda: recording_agent("react", ENV, backend, 2, "published"), cfg)
    assert failed == 0 and len(trajs) == 2
    for traj in trajs:
        assert len(traj.turns) == limit and traj.won == won and traj.terminated == terminated
        # a terminated episode is not bootstrapped; a cut-off one keeps the prompt after its last turn
        assert (traj.final_messages is None) == terminated
        assert traj.turns[-1].reward == (10.0 if won else 0.0)
