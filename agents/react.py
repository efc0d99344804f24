"""Flat LLM agent, ReAct-style: a short thought, then one action."""

from __future__ import annotations

from typing import Any

from agents.backends import Message
from agents.llm import LLMAgent
from agents.prompts import REACT_FORMAT, build_prompt
from hiper_envs.wrappers import find_tag

MAX_ACTION_CHARS = 200


class ReActAgent(LLMAgent):
    """Reads the action from the last `<action>` tag; without one, the reply's last line is sent as
    is, so the env marks it invalid and the results count it."""

    def prompt(self, obs: str, info: dict[str, Any]) -> list[Message]:
        return build_prompt(self.guide, self.task, self.step, self.history, obs,
                            info["admissible_actions"], REACT_FORMAT)

    def consume(self, obs: str, reply: str) -> str:
        tagged = [a for a in find_tag(reply, "action") if a]
        lines = reply.strip().splitlines() or [""]
        action = " ".join((tagged[-1] if tagged else lines[-1]).split())[:MAX_ACTION_CHARS]
        self.history.add(obs, action)
        return action
