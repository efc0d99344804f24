"""Client for any OpenAI-compatible chat endpoint (`vllm serve`, `hiper-bench serve`, hosted APIs)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx

from agents.backends import Message

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class EndpointError(ConnectionError):
    """The endpoint cannot serve this run at all (unreachable, key refused, no such API)."""


def _reply(response: httpx.Response) -> str:
    response.raise_for_status()
    return response.json()["choices"][0]["message"]["content"] or ""


class OpenAIBackend:
    """POSTs `/chat/completions`, `concurrency` requests at a time, retrying transient failures.

    The API key is read from the environment variable named by `api_key_env`, never passed as a
    keyword: agent keywords are stored with every result row.
    """

    def __init__(self, base_url: str, model: str, max_new_tokens: int = 128, temperature: float = 0.0,
                 top_p: float = 1.0, timeout: float = 60.0, max_retries: int = 4, backoff: float = 0.5,
                 concurrency: int = 8, api_key_env: str = "OPENAI_API_KEY"):
        self.model = model
        self.body = {"max_tokens": int(max_new_tokens), "temperature": float(temperature), "top_p": float(top_p)}
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.concurrency = max(1, int(concurrency))
        key = os.environ.get(api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout,
                                   limits=httpx.Limits(max_connections=self.concurrency))

    def check(self, timeout: float = 10.0) -> None:
        """One cheap request (`GET /models`) before a run: a server that refuses the connection,
        the key (401/403) or has no such API (404) raises `EndpointError` naming the URL, in
        seconds, instead of every step of every episode retrying for minutes."""
        url = f"{str(self.client.base_url).rstrip('/')}/models"
        try:
            response = self.client.get("/models", timeout=timeout)
        except httpx.TransportError as err:
            raise EndpointError(f"cannot reach {url}: {type(err).__name__}: {err or 'no answer'}") from None
        if response.status_code in (401, 403):
            raise EndpointError(f"{url} refused the request ({response.status_code}): check the API key "
                                f"in the environment variable the backend names (api_key_env)")
        if response.status_code == 404:
            raise EndpointError(f"{url} answered 404: base_url is not an OpenAI-compatible API (it usually ends in /v1)")

    def _complete(self, messages: Sequence[Message]) -> str:
        payload = {"model": self.model, "messages": list(messages), **self.body}
        for attempt in range(self.max_retries):
            try:
                response = self.client.post("/chat/completions", json=payload)
            except httpx.TransportError:  # connection refused or reset, timeouts: retry
                pass
            else:
                if response.status_code not in RETRY_STATUS:
                    return _reply(response)
            # Exponential backoff with jitter, so concurrent clients do not retry in lockstep.
            time.sleep(self.backoff * 2**attempt * (0.5 + random.random()))
        return _reply(self.client.post("/chat/completions", json=payload))

    def generate(self, conversations: Sequence[Sequence[Message]]) -> list[str]:
        if len(conversations) == 1:
            return [self._complete(conversations[0])]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(conversations))) as pool:
            return list(pool.map(self._complete, conversations))
