"""Policies for the HiPER envs behind one interface (docs/harness.md); `make_agent` builds one by name.

Agent modules are imported on demand, so the random and expert agents need no LLM stack.
"""

from __future__ import annotations

import importlib
from typing import Any

from agents.base import Agent

AGENTS = {
    "random": "agents.random:RandomAgent",
    "expert": "agents.expert:ExpertAgent",
    "react": "agents.react:ReActAgent",
    "hiper": "agents.hiper:HiperAgent",
}


def agent_class(name: str) -> type[Agent]:
    """The class registered as `name`; ValueError lists the names when it is unknown."""
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; choose from {', '.join(AGENTS)}")
    module, _, cls = AGENTS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def make_agent(name: str, env_id: str, **kwargs: Any) -> Agent:
    """Build agent `name` for `env_id` with its keyword arguments."""
    return agent_class(name).for_env(env_id, **kwargs)


__all__ = ["AGENTS", "Agent", "agent_class", "make_agent"]
