"""Client for any OpenAI-compatible chat endpoint (`vllm serve`, `hiper-bench serve`, hosted APIs)."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Sequence

import httpx

from agents.backends import Message

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class EndpointError(ConnectionError):
    """The endpoint cannot serve this run at all (unreachable, key refused, no such API)."""


def _reply(response: httpx.Response) -> str:
    response.raise_for_status()
    return response.json()["choices"][0]["message"]["content"] or ""


class OpenAIBackend:
    """POSTs `/chat/completions` from one async client with pooled connections, retrying transient
    failures with backoff.

    Every episode of a run waiting for its action has its request in flight: with `concurrency`
    None (the default) that is the run's `--concurrency`, since each episode waits on at most one
    reply; a number caps the requests in flight (an API's rate limit). The API key is read from the
    environment variable named by `api_key_env`, never passed as a keyword: agent keywords are
    stored with every result row.
    """

    def __init__(self, base_url: str, model: str, max_new_tokens: int = 128, temperature: float = 0.0,
                 top_p: float = 1.0, timeout: float = 60.0, max_retries: int = 4, backoff: float = 0.5,
                 concurrency: int | None = None, api_key_env: str = "OPENAI_API_KEY"):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.body = {"max_tokens": int(max_new_tokens), "temperature": float(temperature), "top_p": float(top_p)}
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.concurrency = None if concurrency is None else max(1, int(concurrency))
        key = os.environ.get(api_key_env)
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore | None]:
        """The client of the running event loop (connections belong to one loop)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
            self._async = httpx.AsyncClient(base_url=self.base_url, headers=self.headers, timeout=self.timeout,
                                            limits=limits)
            self._slots = None if self.concurrency is None else asyncio.Semaphore(self.concurrency)
            self._loop = loop
        return self._async, self._slots

    def check(self, timeout: float = 10.0) -> None:
        """One cheap request (`GET /models`) before a run: a server that refuses the connection,
        the key (401/403) or has no such API (404) raises `EndpointError` naming the URL, in
        seconds, instead of every step of every episode retrying for minutes."""
        url = f"{self.base_url}/models"
        try:
            response = httpx.get(url, headers=self.headers, timeout=timeout)
        except httpx.TransportError as err:
            raise EndpointError(f"cannot reach {url}: {type(err).__name__}: {err or 'no answer'}") from None
        if response.status_code in (401, 403):
            raise EndpointError(f"{url} refused the request ({response.status_code}): check the API key "
                                f"in the environment variable the backend names (api_key_env)")
        if response.status_code == 404:
            raise EndpointError(f"{url} answered 404: base_url is not an OpenAI-compatible API (it usually ends in /v1)")

    async def complete(self, messages: Sequence[Message]) -> str:
        client, slots = self._client()
        if slots is None:
            return await self._post(client, messages)
        async with slots:
            return await self._post(client, messages)

    async def _post(self, client: httpx.AsyncClient, messages: Sequence[Message]) -> str:
        payload = {"model": self.model, "messages": list(messages), **self.body}
        for attempt in range(self.max_retries):
            try:
                response = await client.post("/chat/completions", json=payload)
            except httpx.TransportError:  # connection refused or reset, timeouts: retry
                pass
            else:
                if response.status_code not in RETRY_STATUS:
                    return _reply(response)
            # Exponential backoff with jitter, so concurrent episodes do not retry in lockstep.
            await asyncio.sleep(self.backoff * 2**attempt * (0.5 + random.random()))
        return _reply(await client.post("/chat/completions", json=payload))

    def generate(self, conversations: Sequence[Sequence[Message]]) -> list[str]:
        async def every() -> list[str]:
            try:
                return list(await asyncio.gather(*(self.complete(c) for c in conversations)))
            finally:
                await self._async.aclose()

        return asyncio.run(every())
