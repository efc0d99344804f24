"""LLM backends behind one interface: one chat conversation in, one completion out, awaited.

The harness runs every episode as its own coroutine, so a backend answers `complete` for one
conversation at a time and many are in flight together. `generate` is the same for a list of
conversations, for callers outside an event loop. Backends are imported lazily by name, so `hf`
needs transformers and `vllm` needs vllm only when used.
"""

from __future__ import annotations

import asyncio
import importlib
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

Message = dict[str, str]

BACKENDS = {
    "hf": "agents.backends.hf:HFBackend",
    "openai": "agents.backends.openai:OpenAIBackend",
    "vllm": "agents.backends.vllm:VLLMBackend",
}


class Backend(Protocol):
    """Generates one assistant reply per conversation; sampling settings are the backend's own.

    A backend of one's own may define only `generate`: agents then call it through `awaitable`."""

    async def complete(self, messages: Sequence[Message]) -> str: ...

    def generate(self, conversations: Sequence[Sequence[Message]]) -> list[str]: ...


def generate_apart(generate: Callable[[list[Sequence[Message]]], list[str]],
                   conversations: list[Sequence[Message]]) -> list[str | Exception]:
    """`generate(conversations)`, or where that raises, each conversation on its own: one bad
    conversation (a lone surrogate, a prompt past the context) fails itself, not its batch."""
    try:
        return list(generate(conversations))
    except Exception as err:
        if len(conversations) == 1:
            return [err]
    replies: list[str | Exception] = []
    for conversation in conversations:
        try:
            replies += generate([conversation])
        except Exception as err:
            replies.append(err)
    return replies


class BatchedBackend:
    """For backends whose model generates a whole batch at once (transformers, vLLM's `LLM`).

    `complete` puts its conversation on a queue; one loop takes every conversation waiting at that
    moment into a single `generate` call, run on a thread so the episodes' coroutines keep stepping
    their envs meanwhile. Conversations that arrive during a call form the next batch.
    Subclasses define `generate`.
    """

    _loop: asyncio.AbstractEventLoop | None = None

    def generate(self, conversations: Sequence[Sequence[Message]]) -> list[str]:
        raise NotImplementedError

    async def complete(self, messages: Sequence[Message]) -> str:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first use, or a new event loop: its own queue and batching task
            if self._loop is not None:
                self._thread.shutdown(wait=False)
                if not self._loop.is_closed():  # the old loop ends the task when it runs again, and
                    self._batching.cancel()     # holds it until then (else it is collected pending)
            self._loop, self._waiting = loop, []
            self._wakeup = asyncio.Event()
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="generate")
            self._batching = loop.create_task(self._batch_loop())
        future: asyncio.Future[str] = loop.create_future()
        self._waiting.append((messages, future))
        self._wakeup.set()
        return await future

    async def _batch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            await asyncio.sleep(0)  # let episodes whose env replies are already in join this batch
            self._wakeup.clear()
            batch, self._waiting = self._waiting, []
            batch = [(m, f) for m, f in batch if not f.done()]  # an episode cancelled meanwhile
            if not batch:
                continue
            conversations = [m for m, _ in batch]
            replies = await loop.run_in_executor(self._thread, generate_apart, self.generate, conversations)
            for (_, future), reply in zip(batch, replies, strict=True):
                if future.done():
                    continue
                if isinstance(reply, Exception):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)


class _Batching(BatchedBackend):
    """Gives a backend that only has `generate` (one written before `complete`, a test double) the
    batching loop, so the episodes waiting on it still share its calls."""

    def __init__(self, inner: Any):
        self.inner = inner

    def generate(self, conversations: Sequence[Sequence[Message]]) -> list[str]:
        return self.inner.generate(conversations)


_batching: weakref.WeakKeyDictionary[Any, _Batching] = weakref.WeakKeyDictionary()


def awaitable(backend: Any) -> Backend:
    """`backend` itself when it can `complete`, else `backend` behind a batching loop: one loop per
    backend, so every agent built over it shares the loop's batches."""
    if hasattr(backend, "complete"):
        return backend
    try:
        if backend not in _batching:
            _batching[backend] = _Batching(backend)
        return _batching[backend]
    except TypeError:  # an object that cannot be weakly referenced gets a loop of its own
        return _Batching(backend)


def make_backend(name: str, **kwargs: Any) -> Backend:
    """Build the backend registered as `name` with its keyword arguments."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    module, _, cls = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), cls)(**kwargs)


__all__ = ["BACKENDS", "Backend", "BatchedBackend", "Message", "awaitable", "generate_apart", "make_backend"]
