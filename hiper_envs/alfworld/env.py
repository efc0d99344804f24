"""`HiPER/ALFWorld-v0`: ALFWorld's text household tasks as a Gymnasium env."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from hiper_envs.alfworld.dataset import SPLITS, AlfworldTask, load_tasks
from hiper_envs.alfworld.engine import ENGINES, EngineState, make_engine
from hiper_envs.alfworld.expert import Expert
from hiper_envs.alfworld.signals import goal_conditions, subgoal_index, subgoals
from hiper_envs.alfworld.world import TASK_TYPES, World
from hiper_envs.common import (
    REWARD_MODES,
    check_action,
    check_choice,
    goal_progress,
    resolve_task_id,
    shaped_reward,
    text_space,
)


class ALFWorldEnv(gym.Env[str, str]):
    """ALFWorld (Shridhar et al., 2021): reach a household goal by text commands.

    The game is played by the native engine: alfworld's domain and the game's own grammar
    reimplemented in plain Python, state for state equal to the original engine stack (TextWorld's
    PDDL engine with alfworld's name demangling, `engine="textworld"`), so observations and
    admissible commands are exactly the original ALFWorld text env's, over 100x faster.

    ## Observation Space
    `Text`: on reset the game intro (the room, then "Your task is to: ..."); after each step the
    engine's feedback, e.g. "You arrive at fridge 1. The fridge 1 is closed."

    ## Action Space
    `Text`: a command such as `go to fridge 1`, `take apple 1 from countertop 2`,
    `heat apple 1 with microwave 1`. The accepted commands are in `info["admissible_actions"]`;
    anything else yields "Nothing happens." with `info["action_valid"] == False` and no change.

    ## Rewards
    `reward_mode="sparse"`: 1.0 on the step that wins, else 0. `"progress"`: that plus the
    potential-based shaping `shaping_gamma * progress(s') - progress(s)` over the goal conditions.

    ## Episode End
    Terminated when the task is won. Truncated by `TimeLimit` after 50 steps (`max_episode_steps`).

    ## Info
    Every `info` key of docs/envs.md, plus `expert_action` when `expert=True`. Goal conditions, `progress`
    and the subgoal signals are read from the PDDL facts of the current state.

    ## Arguments
    - `split`: `"train"`, `"valid_seen"` or `"valid_unseen"`.
    - `task_types`: a subset of the six task types (default: all).
    - `data_dir`: `None` for the bundled ALFWorld-format synthetic tasks (or `$ALFWORLD_DATA` when
      set); a path to an original `json_2.1.1` tree to play the real ALFWorld games.
    - `engine`: `"native"` (default) or `"textworld"` (the reference engine: slow, one env per
      process). The native engine plays games of alfworld's `alfred.pddl` domain only.
    - `expert`: put the next action of an oracle that wins from the current state in `info`.
    - `reward_mode`, `shaping_gamma`: see Rewards. `render_mode`: `"ansi"` or None.

    ## Version History
    - v0: initial release.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        split: str = "train",
        task_types: tuple[str, ...] | list[str] | None = None,
        reward_mode: str = "sparse",
        shaping_gamma: float = 1.0,
        data_dir: str | None = None,
        engine: str = "native",
        expert: bool = False,
        render_mode: str | None = None,
    ) -> None:
        self.split = check_choice("split", split, SPLITS)
        self.task_types = tuple(check_choice("task type", t, TASK_TYPES) for t in (task_types or TASK_TYPES))
        self.reward_mode = check_choice("reward_mode", reward_mode, REWARD_MODES)
        self.shaping_gamma = float(shaping_gamma)
        self.data_dir = None if data_dir is None else str(data_dir)
        self.engine_name = check_choice("engine", engine, ENGINES)
        self.expert = bool(expert)
        self.render_mode = check_choice("render_mode", render_mode, [None, *self.metadata["render_modes"]])
        self.observation_space = text_space()
        self.action_space = text_space()
        self._tasks: dict[str, AlfworldTask] | None = None
        self._engine = None
        self._engine_task_id: str | None = None
        self._task: AlfworldTask | None = None
        self._state: EngineState | None = None
        self._expert: Expert | None = None
        self._last_obs = ""
        self._progress, self._subgoal_index = 0.0, 0  # the last state's signals: a step's reward and subgoal_completed compare with them

    @property
    def tasks(self) -> dict[str, AlfworldTask]:
        if self._tasks is None:
            tasks = load_tasks(self.split, self.task_types, self.data_dir)
            if not tasks:
                raise ValueError(f"no ALFWorld tasks of types {self.task_types} in split {self.split!r}")
            self._tasks = {task.task_id: task for task in tasks}
        return self._tasks

    @property
    def task_ids(self) -> list[str]:
        return list(self.tasks)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict]:
        super().reset(seed=seed)
        task_id = (options or {}).get("task_id")
        if task_id is None:
            ids = self.task_ids
            task_id = ids[int(self.np_random.integers(len(ids)))]
        task = self.tasks[resolve_task_id(task_id, self.tasks, self.task_ids)]
        if self._engine_task_id != task.task_id:
            self._engine = make_engine(self.engine_name, task.game)
            self._engine_task_id = task.task_id
        self._task = task
        self._state = self._engine.reset()
        self._steps = 0
        if self.expert:
            self._expert = Expert(task.walkthrough, task.spec, self._engine.replan)
        info = self._info(previous_index=None)
        self._progress, self._subgoal_index = info["progress"], info["subgoal_index"]
        self._last_obs, self._last_info = self._state.feedback, info
        return self._last_obs, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        command = check_action(action)
        if self._state.won:
            return self._refuse()
        previous = self._state
        self._state = self._engine.step(command)
        self._steps += 1
        if self._expert is not None:
            self._expert.observe(command)
        info = self._info(self._subgoal_index)
        sparse = 1.0 if self._state.won and not previous.won else 0.0
        reward = shaped_reward(sparse, self._progress, info["progress"], self.reward_mode, self.shaping_gamma)
        self._progress, self._subgoal_index = info["progress"], info["subgoal_index"]
        self._last_obs, self._last_info = self._state.feedback, info
        return self._last_obs, reward, self._state.won, False, info

    def _refuse(self) -> tuple[str, float, bool, bool, dict]:
        """After the task is won every action is refused until reset (as WebShop refuses after Buy):
        the last observation again, no reward, `action_valid` False."""
        self._steps += 1
        self._last_info = {**self._last_info, "action_valid": False, "subgoal_completed": False, "steps": self._steps}
        return self._last_obs, 0.0, True, False, self._last_info

    def render(self) -> str | None:
        return self._last_obs if self.render_mode == "ansi" else None

    def _info(self, previous_index: int | None) -> dict:
        state, task = self._state, self._task
        world = World(state.facts)
        conditions = goal_conditions(world, task.spec)
        index = subgoal_index(world, task.spec, state.won)
        progress = goal_progress(conditions)
        info = {
            "task_id": task.task_id,
            "task_hash": task.task_hash,
            "task": task.task_text,
            "task_type": task.spec.task_type,
            "admissible_actions": list(state.admissible_commands),
            "action_valid": state.action_valid,
            "won": state.won,
            "score": 1.0 if state.won else 0.0,
            "goal_conditions": conditions,
            "progress": progress,
            "subgoals": subgoals(task.spec),
            "subgoal_index": index,
            "subgoal_completed": previous_index is not None and index > previous_index,
            "steps": self._steps,
            "score_breakdown": {},
        }
        if self._expert is not None:
            info["expert_action"] = self._expert.next_action(state)
        return info
