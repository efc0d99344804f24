"""Uniform random policy over the admissible actions: the floor every other agent must beat."""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.base import Agent


class RandomAgent(Agent):
    """Picks uniformly among `info["admissible_actions"]`; seeded per episode by the runner."""

    def __init__(self, seed: int = 0):
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)

    def reset(self, task: str, info: dict[str, Any], seed: int | None = None) -> None:
        self._rng = np.random.default_rng([self.seed, seed if seed is not None else 0])

    def act(self, obs: str, info: dict[str, Any]) -> str:
        actions = info["admissible_actions"]
        if not actions:
            raise RuntimeError("the env offers no admissible action")
        return str(actions[int(self._rng.integers(len(actions)))])
