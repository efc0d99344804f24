"""Learning on CPU: a tiny GPT-2, briefly behaviour-cloned on KeyDoor, gets clearly better with
each algorithm. Success is measured through the harness (32 training tasks, sampling at temperature
1.0, the rollout policy), before and after RL, with fixed seeds."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
from learning_curves import recipe  # noqa: E402

from agents.rl.trainer import Trainer, evaluate_checkpoint  # noqa: E402

BC_ITERATIONS = 6
RL_ITERATIONS = 8
MIN_GAIN = 0.15  # absolute rise of the success rate


@pytest.fixture(scope="module")
def cloned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, float]]:
    """Per agent kind: the briefly cloned checkpoint and its success rate."""
    root = tmp_path_factory.mktemp("learn")
    out = {}
    for agent in ("hiper", "react"):
        cfg = recipe("sft", root / f"sft-{agent}", agent=agent, iterations=BC_ITERATIONS,
                     checkpoint_every=BC_ITERATIONS)
        checkpoint = Trainer(cfg, log=lambda _: None).train()
        out[agent] = (checkpoint, evaluate_checkpoint(cfg, checkpoint, f"bc-{agent}"))
    return out


@pytest.mark.slow
@pytest.mark.skip(reason="not calibrated yet: after 6 BC epochs (token loss 0.23) the tiny model wins 0/32 "
                         "and writes a valid reply on ~2% of turns at temperature 1.0, so RL on the sparse "
                         "reward has no signal (hiper measured 0.00 -> 0.00 in 8 iterations)")
@pytest.mark.parametrize("algorithm", ["hiper", "ppo", "grpo", "rloo", "gigpo"])
def test_rl_raises_success(cloned: dict[str, tuple[Path, float]], tmp_path: Path, algorithm: str) -> None:
    agent = "hiper" if algorithm == "hiper" else "react"
    start, before = cloned[agent]
    cfg = recipe("rl", tmp_path / algorithm, algorithm=algorithm, agent=agent, model=str(start),
                 iterations=RL_ITERATIONS, seed=0)
    after = evaluate_checkpoint(cfg, Trainer(cfg, log=lambda _: None).train(), f"{algorithm}-after")
    print(f"{algorithm}: success {before:.2f} -> {after:.2f}")
    assert after - before >= MIN_GAIN, (before, after)
