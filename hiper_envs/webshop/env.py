"""`HiPER/WebShop-v0`: WebShop with an in-process engine and text observations."""

from __future__ import annotations

import os
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
from hiper_envs.webshop.engine import OBSERVATION_MODES, Session, Shop
from hiper_envs.webshop.expert import expert_action
from hiper_envs.webshop.goals import GOAL_KINDS, SPLITS, split_range
from hiper_envs.webshop.signals import goal_conditions, subgoal_index, subgoals


class WebShopEnv(gym.Env):
    """Shop on a web store for a product matching an instruction, then buy it (Yao et al. 2022).

    ## Description
    Each episode is one goal: an instruction such as ``i need a sulfate free shampoo with scent:
    lavender, and size: 16 fl oz, and price lower than 30.00 dollars``. The agent searches, pages
    through results (top 50, 10 per page), opens products, reads their Description / Features /
    Reviews pages, chooses options and buys. Catalogue, search (BM25), pages and score follow the
    original WebShop; see ``hiper_envs/webshop/README.md`` for what differs.

    ## Action Space
    ``gymnasium.spaces.Text``: ``search[<query>]`` (accepted on any page) or ``click[<x>]`` where
    ``x`` is one of the page's clickables (buttons and product ASINs lowercased, option values).
    ``info["admissible_actions"]`` lists them. Anything else changes nothing (``action_valid`` False).

    ## Observation Space
    ``gymnasium.spaces.Text``: the page, as ``text`` (visible strings joined by `` [SEP] ``), as
    ``text_rich`` (buttons and chosen options tagged) or as ``html``.

    ## Rewards
    ``reward_mode="sparse"``: the task score in [0, 1] on Buy, else 0. ``"progress"``: that plus
    ``shaping_gamma * progress(s') - progress(s)`` over the goal conditions (docs/envs.md, reward modes).
    Success (``info["won"]``) is a score of exactly 1.0.

    ## Episode End
    Terminated after ``click[buy now]``. Truncated by the registered ``TimeLimit`` (15 steps).

    ## Arguments
    * ``split``: ``"test"`` (goals [0, 500) of the fixed shuffle, default), ``"eval"`` ([500, 1500)),
      ``"train"`` (the rest).
    * ``goals``: ``"synthetic"`` (one per product and option combination, default) or ``"human"``.
    * ``observation_mode``: ``"text"`` (default), ``"text_rich"``, ``"html"``.
    * ``reward_mode``: ``"sparse"`` (default) or ``"progress"``; ``shaping_gamma`` (1.0).
    * ``data_dir``: None for the bundled 1,000-product synthetic catalogue, or a folder with the
      original files (``items_shuffle*.json``, ``items_ins_v2*.json``, ``items_human_ins.json``).
    * ``expert``: put the oracle's next action in ``info["expert_action"]``.
    * ``show_attributes``: add the original's optional Attributes sub-page.
    * ``render_mode``: ``"ansi"`` (returns the ``text`` page).

    ``reset(options={"task_id": "17"})`` picks a goal of the split; ``env.unwrapped.task_ids`` lists
    them.

    ## Version History
    * v0: first version.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        split: str = "test",
        goals: str = "synthetic",
        observation_mode: str = "text",
        reward_mode: str = "sparse",
        shaping_gamma: float = 1.0,
        data_dir: str | os.PathLike | None = None,
        expert: bool = False,
        show_attributes: bool = False,
        render_mode: str | None = None,
    ):
        self.split = check_choice("split", split, SPLITS)
        self.goal_kind = check_choice("goals", goals, GOAL_KINDS)
        self.observation_mode = check_choice("observation_mode", observation_mode, OBSERVATION_MODES)
        self.reward_mode = check_choice("reward_mode", reward_mode, REWARD_MODES)
        self.render_mode = check_choice("render_mode", render_mode, [None, *self.metadata["render_modes"]])
        self.shaping_gamma = shaping_gamma
        self.data_dir = data_dir
        self.expert = expert
        self.show_attributes = show_attributes
        self.observation_space = text_space()
        self.action_space = text_space()
        self._shop: Shop | None = None
        self.session: Session | None = None
        self._task_id = ""
        self._steps = 0
        self._progress = 0.0
        self._subgoal_index = 0

    @property
    def shop(self) -> Shop:
        """Catalogue, search index and goals, loaded on first use (shared within the process)."""
        if self._shop is None:
            self._shop = Shop.load(self.data_dir, self.goal_kind)
        return self._shop

    @property
    def task_ids(self) -> list[str]:
        """Ids of the split's goals (their index in the fixed shuffle), in order."""
        return [str(i) for i in split_range(self.split, len(self.shop.goals))]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict]:
        super().reset(seed=seed)
        indices = split_range(self.split, len(self.shop.goals))
        if not indices:
            raise ValueError(f"split {self.split!r} has no {self.goal_kind} goals in this catalogue")
        if options and "task_id" in options:
            ids = self.task_ids
            task_id = resolve_task_id(options["task_id"], set(ids), ids)
        else:
            task_id = str(indices[int(self.np_random.integers(len(indices)))])
        self._task_id = task_id
        self.session = self._start_session(
            Session(self.shop, self.shop.goals[int(task_id)], self.np_random, self.show_attributes)
        )
        self._steps = 0
        conditions = goal_conditions(self.session)
        self._progress = goal_progress(conditions)
        self._subgoal_index = subgoal_index(conditions, len(self.session.goal.attributes))
        return self._observe(), self._info(conditions, action_valid=True, subgoal_completed=False)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        if self.session is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        check_action(action)
        self._steps += 1
        valid, score = self._apply(action)
        conditions = goal_conditions(self.session)
        progress = goal_progress(conditions)
        reward = shaped_reward(score, self._progress, progress, self.reward_mode, self.shaping_gamma)
        index = subgoal_index(conditions, len(self.session.goal.attributes))
        completed = index > self._subgoal_index
        self._progress, self._subgoal_index = progress, index
        info = self._info(conditions, action_valid=valid, subgoal_completed=completed)
        return self._observe(), reward, self.session.done, False, info

    def render(self) -> str | None:
        if self.render_mode == "ansi" and self.session is not None:
            return self.session.observe("text")
        return None

    # --- hooks the browser env overrides -----------------------------------------------------------
    def _start_session(self, session: Session) -> Session:
        return session

    def _apply(self, action: str) -> tuple[bool, float]:
        return self.session.step(action)

    def _observe(self) -> str:
        return self.session.observe(self.observation_mode)

    def _admissible_actions(self) -> list[str]:
        return self.session.admissible_actions()

    # --- info -------------------------------------------------------------------------------------
    def _info(self, conditions: list[dict], action_valid: bool, subgoal_completed: bool) -> dict:
        session = self.session
        goal = session.goal
        info = {
            "task_id": self._task_id,
            "task_hash": goal.task_hash,
            "task": goal.instruction_text,
            "task_type": "shop",
            "admissible_actions": self._admissible_actions(),
            "action_valid": action_valid,
            "won": session.done and session.score == 1.0,
            "score": session.score if session.done else 0.0,
            "goal_conditions": conditions,
            "progress": self._progress,
            "subgoals": subgoals(session),
            "subgoal_index": self._subgoal_index,
            "subgoal_completed": subgoal_completed,
            "steps": self._steps,
            "score_breakdown": dict(session.breakdown),
            "page": session.kind,
        }
        if self.expert:
            info["expert_action"] = expert_action(session)
        return info
