"""The oracle agent: plays the env's own expert plan, so it should win every task it runs."""

from __future__ import annotations

from typing import Any, ClassVar

from agents.base import Agent


class ExpertAgent(Agent):
    """Returns `info["expert_action"]`, which the env provides when built with `expert=True`."""

    env_kwargs: ClassVar[dict[str, Any]] = {"expert": True}

    def act(self, obs: str, info: dict[str, Any]) -> str:
        if "expert_action" not in info:
            raise RuntimeError("the env gave no info['expert_action']; build it with expert=True")
        return str(info["expert_action"])
