"""A tiny deterministic env honouring the contract of docs/envs.md, registered as `Fake/Corridor-v0` for harness tests.

The agent walks a corridor, takes a key and opens the door at the end. Keywords make a host process
die, hang or raise once (marker files record that it happened), or die on every episode of one task,
to test the runner's recovery.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import register, registry

from hiper_envs.common import text_space

ENV_ID = "Fake/Corridor-v0"
SPLITS = {"train": 8, "test": 6}
LENGTH = 4


class CorridorEnv(gym.Env):
    metadata = {"render_modes": ["ansi"]}

    def __init__(self, split: str = "test", expert: bool = False, reward_mode: str = "sparse",
                 render_mode: str | None = None, step_delay: float = 0.0, crash_once: str | None = None,
                 hang_once: str | None = None, raise_once: str | None = None, empty_reset_info: bool = False,
                 trapped_door: bool = False, crash_task: str | None = None):
        self.task_ids = [f"{split}-{i}" for i in range(SPLITS[split])]
        self.expert, self.reward_mode, self.render_mode = expert, reward_mode, render_mode
        self.step_delay = step_delay
        self.empty_reset_info = empty_reset_info  # a legal but bare reset: `info` is {}
        self.trapped_door = trapped_door  # opening the door ends the episode as a loss (like a bad purchase)
        self.faults = {"crash": crash_once, "hang": hang_once, "raise": raise_once}
        self.crash_task = crash_task  # every episode of this task kills its process at step 2
        self.observation_space = text_space()
        self.action_space = text_space()

    def _fault(self) -> None:
        if self.task_id == self.crash_task:
            os.kill(os.getpid(), signal.SIGKILL)
        for kind, marker in self.faults.items():
            if marker and not Path(marker).exists():
                Path(marker).write_text(kind)
                if kind == "crash":
                    os.kill(os.getpid(), signal.SIGKILL)
                if kind == "hang":
                    time.sleep(3600)
                raise RuntimeError("injected failure")

    def _admissible(self) -> list[str]:
        acts = ["wait"]
        if self.pos < LENGTH:
            acts.append("forward")
        if self.pos > 0:
            acts.append("back")
        if self.pos == self.key_pos and not self.has_key:
            acts.append("take key")
        if self.pos == LENGTH and self.has_key and not self.open:
            acts.append("open door")
        return acts

    def _expert(self) -> str:
        if not self.has_key:
            return "take key" if self.pos == self.key_pos else ("forward" if self.pos < self.key_pos else "back")
        return "open door" if self.pos == LENGTH else "forward"

    def _info(self, valid: bool, completed: bool) -> dict[str, Any]:
        conds = [{"name": "holding key", "satisfied": self.has_key}, {"name": "door open", "satisfied": self.open}]
        info = {
            "task_id": self.task_id, "task_hash": hashlib.sha256(self.task_id.encode()).hexdigest()[:12],
            "task": f"take the key at {self.key_pos} and open the door", "task_type": self.task_type,
            "admissible_actions": self._admissible(), "action_valid": valid, "won": self.open,
            "score": float(self.open), "goal_conditions": conds,
            "progress": sum(c["satisfied"] for c in conds) / 2, "subgoals": ["take the key", "open the door"],
            "subgoal_index": int(self.has_key) + int(self.open), "subgoal_completed": completed,
            "steps": self.steps, "score_breakdown": {},
        }
        if self.expert:
            info["expert_action"] = self._expert()
        return info

    def _obs(self) -> str:
        return f"You are at {self.pos}. " + ("You hold the key." if self.has_key else "")

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        self.task_id = options.get("task_id") or self.task_ids[int(self.np_random.integers(len(self.task_ids)))]
        index = self.task_ids.index(self.task_id)
        self.key_pos = 1 + index % 3
        self.task_type = "near" if self.key_pos < 3 else "far"
        self.pos, self.has_key, self.open, self.steps = 0, False, False, 0
        return self._obs(), {} if self.empty_reset_info else self._info(True, False)

    def step(self, action: str):
        if self.step_delay:
            time.sleep(self.step_delay)
        self.steps += 1
        if self.steps == 2:
            self._fault()
        valid = action in self._admissible()
        completed = False
        if valid and action == "forward":
            self.pos += 1
        elif valid and action == "back":
            self.pos -= 1
        elif valid and action == "take key":
            self.has_key = completed = True
        elif valid and action == "open door":
            self.open = completed = True
        obs = self._obs() if valid else "Nothing happens."
        info = self._info(valid, completed)
        if self.trapped_door and self.open:
            info.update(won=False, score=0.0)
            return obs, 0.0, True, False, info
        return obs, float(self.open), self.open, False, info


if ENV_ID not in registry:
    register(id=ENV_ID, entry_point=CorridorEnv, max_episode_steps=12)
