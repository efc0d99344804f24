"""What the flat and the hierarchical LLM agents share: a backend, a history window, one reply per step."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from agents.backends import Backend, Message, awaitable, make_backend
from agents.base import Agent
from agents.prompts import History, PromptTemplate, guide_for
from hiper_envs.wrappers.protocol import DEFAULT_PROTOCOL, check_protocol, tail_chars


class LLMAgent(Agent):
    """Builds a prompt per step, asks the backend for a reply, turns the reply into what `step` takes.

    Subclasses define `prompt` and `consume`. Copies of one agent share its backend, which serves
    the episodes that wait on it together (concurrent requests, or one batched `generate`).
    `on_reply`, when set, sees every reply before the agent consumes it: training records its
    turns through it.
    """

    on_reply: Callable[[LLMAgent, str, list[Message], str], None] | None = None

    def __init__(self, backend: str | Backend = "hf", backend_kwargs: dict[str, Any] | None = None,
                 history: int = 2, guide: str | None = None, protocol: str = DEFAULT_PROTOCOL, tail: int = 30,
                 prompt_template: str | None = None):
        """`protocol` says how replies become actions (`hiper_envs.wrappers.protocol`), `tail` is the
        published protocol's fallback length (set from the env by `for_env`), `prompt_template` a
        file in the HiPER authors' template fields (`agents.prompts.PromptTemplate`)."""
        self.protocol = check_protocol(protocol)
        self.tail = int(tail)
        self.template = PromptTemplate.read(prompt_template) if prompt_template else None
        self.backend = make_backend(backend, **(backend_kwargs or {})) if isinstance(backend, str) else awaitable(backend)
        self.history_k = int(history)
        self.guide = guide or guide_for("")
        self.reset("", {})

    @classmethod
    def for_env(cls, env_id: str, **kwargs: Any) -> Agent:
        kwargs.setdefault("guide", guide_for(env_id))
        kwargs.setdefault("tail", tail_chars(env_id))
        return cls(**kwargs)

    def reset(self, task: str, info: dict[str, Any], seed: int | None = None) -> None:
        self.task = task
        self.history = History(self.history_k)
        self.step = 0

    def prompt(self, obs: str, info: dict[str, Any]) -> list[Message]:
        raise NotImplementedError

    def consume(self, obs: str, reply: str) -> str:
        """Update the episode state with the model's `reply`; return what to send to the env."""
        raise NotImplementedError

    def act(self, obs: str, info: dict[str, Any]) -> str:
        return self.act_batch([self], [obs], [info])[0]

    @classmethod
    def act_batch(cls, agents: Sequence[Agent], observations: Sequence[str],
                  infos: Sequence[dict[str, Any]]) -> list[str]:
        """The prompts of `agents` (LLM agents sharing one backend) in one `generate` call."""
        if not all(isinstance(a, LLMAgent) for a in agents) or len({id(a.backend) for a in agents}) > 1:
            raise ValueError("act_batch needs LLM agents that share one backend")
        prompts = [a.prompt(o, i) for a, o, i in zip(agents, observations, infos, strict=True)]
        replies = agents[0].backend.generate(prompts) if agents else []
        return [a._take(o, m, r) for a, o, m, r in zip(agents, observations, prompts, replies, strict=True)]

    async def act_async(self, obs: str, info: dict[str, Any]) -> str:
        messages = self.prompt(obs, info)
        return self._take(obs, messages, await self.backend.complete(messages))

    def _take(self, obs: str, messages: list[Message], reply: str) -> str:
        if self.on_reply is not None:
            self.on_reply(self, obs, messages, reply)
        action = self.consume(obs, reply)
        self.step += 1
        return action
