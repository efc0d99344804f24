"""`HiPER/KeyDoor-v0`: fetch keys, open doors, reach the treasure; a tiny text env."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from hiper_envs.common import (
    REWARD_MODES,
    check_action,
    check_choice,
    goal_progress,
    resolve_task_id,
    shaped_reward,
    text_space,
)
from hiper_envs.keydoor.game import NOTHING_HAPPENS, State, task_text
from hiper_envs.keydoor.layouts import ROOM_COUNTS, SPLITS, Layout, split_layouts


class KeyDoorEnv(gym.Env[str, str]):
    """KeyDoor: rooms in a row joined by locked doors; take the treasure in the last room.

    Door i (between rooms i+1 and i+2, 1-based) has a colour and opens with the key of that colour,
    which lies in some room at or before it; a layout may add a distractor key that opens nothing.
    The agent starts in room 1. The shortest solution takes each key, opens each door, walks east
    (back west first when a needed key lies behind) and takes the treasure: 4 to 13 steps.

    ## Observation Space
    `Text`: on reset "Your task is to: take the treasure in room 3." followed by the room's
    description, e.g. "You are in room 1. You see a red key. The red door to the east is locked.
    You carry nothing."; after each step the feedback ("You take the red key.") and the description.
    Every word is in `hiper_envs.keydoor.VOCABULARY`.

    ## Action Space
    `Text`: `take <colour> key`, `open <colour> door`, `go east`, `go west`, `take treasure`. The
    accepted ones are in `info["admissible_actions"]`; anything else yields "Nothing happens." with
    `info["action_valid"] == False` and no change.

    ## Rewards
    `reward_mode="sparse"`: 1.0 on the step that takes the treasure, else 0. `"progress"`: that plus
    the potential-based shaping `shaping_gamma * progress(s') - progress(s)`.

    ## Episode End
    Terminated when the treasure is taken. Truncated by `TimeLimit` after 30 steps
    (`max_episode_steps`).

    ## Info
    Every `info` key of docs/envs.md, plus `expert_action` when `expert=True` (a shortest-plan oracle that
    replans from any state). Subgoals, in order, for each door: "take the red key", "open the red
    door", "go to room 2"; then "take the treasure". The goal conditions are the same facts read
    from the state (each stays true once reached), so `progress` is 1.0 exactly when won.

    ## Arguments
    - `split`: `"train"`, `"valid_seen"` (new key placements in the training scenes) or
      `"valid_unseen"` (scenes, i.e. room count and door colours, never in train); see `layouts`.
    - `rooms`: the room counts to keep, a subset of (2, 3, 4) (default: all). Tasks are generated,
      so there is no `data_dir`.
    - `expert`, `reward_mode`, `shaping_gamma`: see Info and Rewards. `render_mode`: `"ansi"` or None.

    ## Version History
    - v0: initial release.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        split: str = "train",
        rooms: tuple[int, ...] | list[int] | None = None,
        reward_mode: str = "sparse",
        shaping_gamma: float = 1.0,
        expert: bool = False,
        render_mode: str | None = None,
    ) -> None:
        self.split = check_choice("split", split, SPLITS)
        self.rooms = tuple(check_choice("room count", r, ROOM_COUNTS) for r in (rooms or ROOM_COUNTS))
        self.reward_mode = check_choice("reward_mode", reward_mode, REWARD_MODES)
        self.shaping_gamma = float(shaping_gamma)
        self.expert = bool(expert)
        self.render_mode = check_choice("render_mode", render_mode, [None, *self.metadata["render_modes"]])
        self.observation_space = text_space()
        self.action_space = text_space()
        self._tasks = {i: t for i, t in split_layouts(self.split).items() if t.rooms in self.rooms}
        if not self._tasks:
            raise ValueError(f"no KeyDoor tasks with {self.rooms} rooms in split {self.split!r}")
        self._task_ids = list(self._tasks)
        self._state: State | None = None
        self._admissible: list[str] = []
        self._last_obs = ""

    @property
    def task_ids(self) -> list[str]:
        return list(self._task_ids)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict]:
        super().reset(seed=seed)
        task_id = (options or {}).get("task_id")
        if task_id is None:
            task_id = self._task_ids[int(self.np_random.integers(len(self._task_ids)))]
        layout: Layout = self._tasks[resolve_task_id(task_id, self._tasks, self._task_ids)]
        self._state = State.start(layout)
        self._steps = 0
        self._index = 0
        info = self._last_info = self._info(action_valid=True)
        self._last_obs = f"Your task is to: {task_text(layout)}. {self._state.describe()}"
        return self._last_obs, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        state = self._state
        if state is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        check_action(action)
        self._steps += 1
        if state.won:  # refused until reset, as every env refuses after the end: no reward, invalid
            self._last_info = {**self._last_info, "action_valid": False, "subgoal_completed": False,
                               "steps": self._steps}
            return self._last_obs, 0.0, True, False, self._last_info
        progress_before = self._progress
        valid = action in self._admissible
        self._last_obs = f"{state.apply(action)} {state.describe()}" if valid else NOTHING_HAPPENS
        info = self._last_info = self._info(action_valid=valid)
        sparse = 1.0 if state.won else 0.0
        reward = shaped_reward(sparse, progress_before, info["progress"], self.reward_mode, self.shaping_gamma)
        return self._last_obs, reward, state.won, False, info

    def render(self) -> str | None:
        return self._last_obs if self.render_mode == "ansi" else None

    def _info(self, action_valid: bool) -> dict:
        state, subgoals = self._state, self._state.layout.subgoals
        satisfied = state.satisfied()
        index = satisfied.index(False) if False in satisfied else len(satisfied)
        goal = [{"name": name, "satisfied": done} for name, done in zip(subgoals, satisfied, strict=True)]
        self._progress = goal_progress(goal)
        self._admissible = state.admissible_actions()
        info = {
            "task_id": state.layout.task_id,
            "task_hash": state.layout.task_hash,
            "task": task_text(state.layout),
            "task_type": state.layout.task_type,
            "admissible_actions": list(self._admissible),
            "action_valid": action_valid,
            "won": state.won,
            "score": 1.0 if state.won else 0.0,
            "goal_conditions": goal,
            "progress": self._progress,
            "subgoals": list(subgoals),
            "subgoal_index": index,
            "subgoal_completed": index > self._index,
            "steps": self._steps,
            "score_breakdown": {},
        }
        self._index = index
        if self.expert:
            info["expert_action"] = state.expert_action()
        return info
