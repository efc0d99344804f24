"""LLM backends behind one interface: a batch of chat conversations in, one completion each out.

Backends are imported lazily by name, so `hf` needs transformers and `vllm` needs vllm only when used.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, Protocol

Message = dict[str, str]

BACKENDS = {
    "hf": "agents.backends.hf:HFBackend",
    "openai": "agents.backends.openai:OpenAIBackend",
    "vllm": "agents.backends.vllm:VLLMBackend",
}


class Backend(Protocol):
    """Generates one assistant reply per conversation; sampling settings are the backend's own."""

    def generate(self, conversations: Sequence[Sequence[Message]]) -> list[str]: ...


def make_backend(name: str, **kwargs: Any) -> Backend:
    """Build the backend registered as `name` with its keyword arguments."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    module, _, cls = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), cls)(**kwargs)


__all__ = ["BACKENDS", "Backend", "Message", "make_backend"]
