"""Learning on CPU: a tiny GPT-2 with a word-level tokenizer of KeyDoor's texts (each markup tag one
token), behaviour-cloned briefly from an erring expert, gets clearly better with RL.

The demonstrator plays a random admissible action on 40% of its turns (`sft_noise`), so the clone
wastes steps and often runs out of them on 3-room tasks; RL on the sparse success reward alone has
to learn to stop. The clone is made once per test session for each agent kind and shared by the
algorithms. Success is measured through the harness before and after RL on the same fixed
evaluation set (the first `eval_episodes` episodes of the run's seed on 3-room training tasks),
sampling at temperature 1.0 as the rollouts do. HAE (hiper) and one flat algorithm run here; all
five run, over several seeds, in `bench/learning_curves.py`.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
from learning_curves import clone, rl_recipe  # noqa: E402

from harness.training.trainer import Trainer, evaluate_checkpoint  # noqa: E402

MIN_GAIN = 0.15  # absolute rise of the success rate
SEED = 0


@pytest.fixture(scope="session")
def cloned(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Path, float]]:
    """Per agent kind (hiper or react): the cloned checkpoint and its success rate, made on first use."""
    root = tmp_path_factory.mktemp("learn")

    @functools.cache
    def clone_of(agent: str) -> tuple[Path, float]:
        start = clone(agent, root)
        cfg = rl_recipe("hiper" if agent == "hiper" else "grpo", start, root / f"eval-{agent}", SEED)
        return start, evaluate_checkpoint(cfg, start, f"clone-{agent}")

    return clone_of


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["hiper", "grpo"])
def test_rl_raises_success(cloned: Callable[[str], tuple[Path, float]], tmp_path: Path, algorithm: str) -> None:
    agent = "hiper" if algorithm == "hiper" else "react"
    start, before = cloned(agent)
    cfg = rl_recipe(algorithm, start, tmp_path / algorithm, SEED)
    after = evaluate_checkpoint(cfg, Trainer(cfg, log=print).train(), f"{algorithm}-after")
    print(f"{algorithm}: success {before:.2f} -> {after:.2f} (seed {SEED}, {cfg.eval_episodes} episodes)")
    assert before < 0.75, f"the clone is already too good for RL to show ({before:.2f})"
    assert after - before >= MIN_GAIN, (before, after)
