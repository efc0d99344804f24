"""Hierarchical plan-execute LLM agent (HiPER): switch, subgoal and action at every step."""

from __future__ import annotations

from typing import Any, ClassVar

from agents.backends import Message
from agents.llm import LLMAgent
from agents.prompts import PLAN_EXECUTE_FORMAT, build_prompt
from hiper_envs.wrappers import FormatError, advance, read_plan_execute


class HiperAgent(LLMAgent):
    """Emits the plan-execute format and runs inside the `PlanExecute` wrapper, which judges each reply
    by the agent's protocol (the `plan_execute` preset for published, `plan_execute_strict` for strict).

    The agent reads its own reply the same way to carry the current subgoal into the next prompt
    (published: the subgoal it last wrote; strict: KEEP carries the current one); the raw reply goes
    to the env, so format errors are penalised and counted as in training.
    """

    wrappers: ClassVar[tuple[str, ...]] = ("plan_execute",)

    @classmethod
    def wrappers_for(cls, kwargs: dict[str, Any]) -> tuple[str, ...]:
        return ("plan_execute_strict",) if kwargs.get("protocol") == "strict" else ("plan_execute",)

    def reset(self, task: str, info: dict[str, Any], seed: int | None = None) -> None:
        super().reset(task, info, seed)
        self.subgoal: str | None = None

    def prompt(self, obs: str, info: dict[str, Any]) -> list[Message]:
        if self.template is not None:
            return self.template.messages(self.task, self.step, self.history, obs, info["admissible_actions"],
                                          self.subgoal)
        return build_prompt(self.guide, self.task, self.step, self.history, obs, info["admissible_actions"],
                            PLAN_EXECUTE_FORMAT, subgoal=self.subgoal, show_subgoal=True)

    def consume(self, obs: str, reply: str) -> str:
        if self.protocol == "published":
            read = read_plan_execute(reply, self.tail)
            if read.subgoal is not None:
                self.subgoal = read.subgoal
            self.history.add(obs, read.action)
            return reply
        try:
            decision, _, self.subgoal = advance(self.subgoal, reply)
            self.history.add(obs, decision.action)
        except FormatError as err:
            self.history.add(obs, f"(invalid output: {err})")
        return reply
