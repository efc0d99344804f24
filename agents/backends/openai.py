"""Client for any OpenAI-compatible chat endpoint (`vllm serve`, `hiper-bench serve`, hosted APIs)."""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections.abc import AsyncIterator, Sequence

import aiohttp

from agents.backends import Message

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_REPLY_BYTES = 32 * 1024 * 1024  # a reply larger than this is refused, not read into memory


class EndpointError(ConnectionError):
    """The endpoint cannot serve this run at all (unreachable, key refused, no such API)."""


class ReplyError(RuntimeError):
    """One request got no usable reply: an error status, a body that is not a chat completion, or
    nothing after every retry. The episode fails; the run goes on."""


class OpenAIBackend:
    """POSTs `/chat/completions` from one async client with pooled keep-alive connections,
    retrying transient failures with backoff.

    Every episode of a run waiting for its action has its request in flight: with `concurrency`
    None (the default) that is the run's `--concurrency`, since each episode waits on at most one
    reply; a number caps the requests in flight (an API's rate limit). The client is aiohttp's:
    httpx's async connection pool spends time quadratic in the requests in flight (measured: at 256
    it held a mock server 6% busy). The API key is read from the environment variable named by
    `api_key_env`, never passed as a keyword: agent keywords are stored with every result row.
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

    def check(self, timeout: float = 10.0) -> None:
        """One cheap request (`GET /models`) before a run: a server that refuses the connection,
        the key (401/403) or has no such API (404) raises `EndpointError` naming the URL, in
        seconds, instead of every step of every episode retrying for minutes."""
        url = f"{self.base_url}/models"

        async def status() -> int:
            async with aiohttp.ClientSession(headers=self.headers) as session, \
                    session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                return response.status

        try:
            code = asyncio.run(status())
        except (aiohttp.ClientError, asyncio.TimeoutError) as err:
            raise EndpointError(f"cannot reach {url}: {type(err).__name__}: {err or 'no answer'}") from None
        if code in (401, 403):
            raise EndpointError(f"{url} refused the request ({code}): check the API key "
                                f"in the environment variable the backend names (api_key_env)")
        if code == 404:
            raise EndpointError(f"{url} answered 404: base_url is not an OpenAI-compatible API (it usually ends in /v1)")

    async def _session_of_loop(self) -> AsyncIterator[aiohttp.ClientSession]:
        """Connections belong to one event loop. The session lives in this async generator, which
        the loop closes when it shuts down (`shutdown_asyncgens`: `asyncio.run`, the runner's pool)."""
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)  # `concurrency` is enforced below
        async with aiohttp.ClientSession(headers=self.headers, connector=connector) as session:
            yield session

    async def _session(self) -> tuple[aiohttp.ClientSession, asyncio.Semaphore | None]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._holder = loop, self._session_of_loop()
            self._client = await anext(self._holder)
            self._slots = None if self.concurrency is None else asyncio.Semaphore(self.concurrency)
        return self._client, self._slots

    async def complete(self, messages: Sequence[Message]) -> str:
        session, slots = await self._session()
        if slots is None:
            return await self._post(session, messages)
        async with slots:
            return await self._post(session, messages)

    async def _post(self, session: aiohttp.ClientSession, messages: Sequence[Message]) -> str:
        url = f"{self.base_url}/chat/completions"
        payload = {"model": self.model, "messages": list(messages), **self.body}
        for attempt in range(self.max_retries + 1):
            try:
                async with session.post(url, json=payload, timeout=aiohttp.ClientTimeout(total=self.timeout)) as response:
                    status, body = response.status, await _read(response)
            except (aiohttp.ClientError, asyncio.TimeoutError) as err:  # refused, reset, cut short, timed out: retry
                failure = f"{type(err).__name__}: {err or 'no answer'}"
            else:
                if status not in RETRY_STATUS:
                    return _reply(url, status, body)
                failure = f"HTTP {status}"
            if attempt < self.max_retries:
                # Exponential backoff with jitter, so concurrent episodes do not retry in lockstep.
                await asyncio.sleep(self.backoff * 2**attempt * (0.5 + random.random()))
        raise ReplyError(f"{url}: no reply after {self.max_retries + 1} tries (last: {failure})")

    def generate(self, conversations: Sequence[Sequence[Message]]) -> list[str]:
        async def every() -> list[str]:
            return list(await asyncio.gather(*(self.complete(c) for c in conversations)))

        return asyncio.run(every())


async def _read(response: aiohttp.ClientResponse) -> bytes:
    body = bytearray()
    async for chunk in response.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > MAX_REPLY_BYTES:
            raise ReplyError(f"{response.url} sent a reply over {MAX_REPLY_BYTES >> 20} MiB")
    return bytes(body)


def _reply(url: str, status: int, body: bytes) -> str:
    """The completion's text, or a `ReplyError` saying what came instead."""
    if status >= 400:
        raise ReplyError(f"{url} answered {status}: {body[:300].decode('utf-8', 'replace')}")
    try:
        content = json.loads(body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise ReplyError(f"{url} answered {status} with no chat completion: "
                         f"{body[:300].decode('utf-8', 'replace')}") from None
    return content if isinstance(content, str) else ""
