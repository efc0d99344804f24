"""Flat LLM agent, ReAct-style: a short thought, then one action."""

from __future__ import annotations

from typing import Any

from agents.backends import Message
from agents.llm import LLMAgent
from agents.prompts import REACT_FORMAT, build_prompt
from hiper_envs.wrappers.protocol import read_flat


class ReActAgent(LLMAgent):
    """Reads the action from its reply by the agent's protocol: published, the first `<action>` body
    lowercased (without one, the reply's tail); strict, the last `<action>` tag (without one, the
    last line). Either way the env judges the action, and the results count invalid ones."""

    def prompt(self, obs: str, info: dict[str, Any]) -> list[Message]:
        if self.template is not None:
            return self.template.messages(self.task, self.step, self.history, obs, info["admissible_actions"])
        return build_prompt(self.guide, self.task, self.step, self.history, obs,
                            info["admissible_actions"], REACT_FORMAT)

    def consume(self, obs: str, reply: str) -> str:
        action = read_flat(reply, self.protocol, self.tail).action
        self.history.add(obs, action)
        return action
