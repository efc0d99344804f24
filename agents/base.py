"""The one agent interface the harness drives (docs/harness.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar


class Agent:
    """A policy over text envs. The runner calls `reset` once per episode, then `act` every step.

    Per-episode state lives on the instance and is rebuilt in `reset`, so the runner gives each
    episode a shallow copy of one configured agent (sharing, e.g., a loaded model).
    An agent states what it needs from the env: `env_kwargs` are merged into the env's constructor
    keywords, `wrappers` name presets of `hiper_envs.wrappers.WRAPPERS` applied around it.
    """

    env_kwargs: ClassVar[dict[str, Any]] = {}
    wrappers: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def for_env(cls, env_id: str, **kwargs: Any) -> Agent:
        """Build the agent for `env_id`; agents whose prompts depend on the env override this."""
        return cls(**kwargs)

    @classmethod
    def wrappers_for(cls, kwargs: dict[str, Any]) -> tuple[str, ...]:
        """The wrapper presets an agent built with `kwargs` plays through (an agent whose wrapper
        depends on its options, such as the reply protocol, overrides this)."""
        return cls.wrappers

    def reset(self, task: str, info: dict[str, Any], seed: int | None = None) -> None:
        """Start an episode of `task`; `seed` makes any randomness of the agent reproducible."""

    def act(self, obs: str, info: dict[str, Any]) -> str:
        """The next action (or raw model output, for wrapped envs) for this observation."""
        raise NotImplementedError

    @classmethod
    def act_batch(cls, agents: Sequence[Agent], observations: Sequence[str],
                  infos: Sequence[dict[str, Any]]) -> list[str]:
        """Act for several episodes at once, for loops of one's own (the harness awaits
        `act_async` per episode instead); LLM agents make it one `generate` call."""
        return [agent.act(obs, info) for agent, obs, info in zip(agents, observations, infos, strict=True)]

    async def act_async(self, obs: str, info: dict[str, Any]) -> str:
        """`act`, awaited by the harness: each episode is a coroutine, so an agent that waits on a
        model (LLM agents) lets the other episodes move meanwhile. Others just act."""
        return self.act(obs, info)
