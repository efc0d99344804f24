"""Hierarchical plan-execute LLM agent (HiPER): switch, subgoal and action at every step."""

from __future__ import annotations

from typing import Any, ClassVar

from agents.backends import Message
from agents.llm import LLMAgent
from agents.prompts import PLAN_EXECUTE_FORMAT, build_prompt
from hiper_envs.wrappers import FormatError, advance


class HiperAgent(LLMAgent):
    """Emits the SPEC 3 format and runs inside the `PlanExecute` wrapper, which judges each reply.

    The agent parses its own reply with the same parser to carry the current subgoal into the next
    prompt; the raw reply goes to the env, so format errors are penalised and counted as in training.
    """

    wrappers: ClassVar[tuple[str, ...]] = ("plan_execute",)

    def reset(self, task: str, info: dict[str, Any], seed: int | None = None) -> None:
        super().reset(task, info, seed)
        self.subgoal: str | None = None

    def prompt(self, obs: str, info: dict[str, Any]) -> list[Message]:
        return build_prompt(self.guide, self.task, self.step, self.history, obs, info["admissible_actions"],
                            PLAN_EXECUTE_FORMAT, subgoal=self.subgoal, show_subgoal=True)

    def consume(self, obs: str, reply: str) -> str:
        try:
            decision, _, self.subgoal = advance(self.subgoal, reply)
            self.history.add(obs, decision.action)
        except FormatError as err:
            self.history.add(obs, f"(invalid output: {err})")
        return reply
