"""Any registered env served under OpenEnv's server API, so trainers that speak OpenEnv (TRL, SkyRL,
torchforge, Unsloth, ART) drive our envs over the network: `hiper-bench serve-env ID`.

Each WebSocket session (`/ws`, what `openenv.core.EnvClient` opens) gets its own env instance,
built from the same `EnvSpec` the runner uses; the server holds at most `max_sessions` of them and
drops one idle for `idle_timeout` seconds. A step carries the text command in `{"action": ...}`;
the observation carries the env's text, its `info` dict, and `terminated`/`truncated`, with
`done` = either and `reward` the env's reward (None after a reset). What the env refuses in
process (a non-string action, stepping before reset, an unknown task id) comes back as OpenEnv's
error frame, with the same exception type and message. The server binds 127.0.0.1 and bounds
what it reads: a WebSocket frame or an HTTP body over `MAX_MESSAGE_BYTES` is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from openenv.core.env_server import (
    Action,
    ConcurrencyConfig,
    Environment,
    Observation,
    State,
    create_fastapi_app,
)
from pydantic import Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harness.envspec import EnvSpec

MAX_MESSAGE_BYTES = 1 << 20  # an action, a reset request: a few KB; observations go the other way


class TextAction(Action):
    """One move: the command the env reads (any JSON value is passed on, so the env itself
    refuses a non-string exactly as it does in process)."""

    action: Any = Field(description="The text command, e.g. 'go to countertop 1'.")


class TextObservation(Observation):
    """What `reset` and `step` return in process, as one JSON object."""

    text: str = Field(description="The env's observation text.")
    info: dict[str, Any] = Field(default_factory=dict, description="The env's info dict (docs/envs.md).")
    terminated: bool = Field(default=False, description="The task ended (won, or lost for good).")
    truncated: bool = Field(default=False, description="The step budget ran out.")


class EpisodeState(State):
    """`State` plus which env the session plays."""

    env_id: str = Field(description="The registered env id this session plays.")


class GymnasiumEnvironment(Environment[TextAction, TextObservation, EpisodeState]):
    """One session's env: OpenEnv's `Environment` over a Gymnasium env built from `spec`."""

    SUPPORTS_CONCURRENT_SESSIONS = True  # every session builds its own env; nothing is shared

    def __init__(self, spec: EnvSpec):
        super().__init__()
        self.spec = spec
        self.env = spec.make()
        self._state = EpisodeState(env_id=spec.env_id)

    def reset(self, seed: int | None = None, episode_id: str | None = None, options: dict | None = None,
              **unknown: Any) -> TextObservation:
        """Gymnasium's `reset(seed, options)` (e.g. `options={"task_id": ...}`); OpenEnv's
        `episode_id` names the episode in `state`. Other keywords are refused, not dropped, so a
        misspelt one never silently plays a different task."""
        with _reported():
            if unknown:
                raise TypeError(f"reset() got unexpected keyword arguments {sorted(unknown)}; "
                                "pass seed, episode_id and options (e.g. options={'task_id': ...})")
            text, info = self.env.reset(seed=seed, options=options)
        self._state = EpisodeState(env_id=self.spec.env_id, episode_id=episode_id, step_count=0)
        return TextObservation(text=text, info=info)

    def step(self, action: TextAction, timeout_s: float | None = None, **kwargs: Any) -> TextObservation:
        with _reported():
            text, reward, terminated, truncated, info = self.env.step(action.action)
        self._state.step_count += 1
        return TextObservation(text=text, info=info, terminated=terminated, truncated=truncated,
                               done=terminated or truncated, reward=float(reward))

    @property
    def state(self) -> EpisodeState:
        return self._state

    def close(self) -> None:
        self.env.close()


@contextlib.contextmanager
def _reported() -> Iterator[None]:
    """Re-raise what the env raises as `TypeName: message`: OpenEnv sends the client only
    `str(error)`, and the type is half of what the client needs to know."""
    try:
        yield
    except Exception as error:
        raise RuntimeError(f"{type(error).__name__}: {error}") from error


class _BoundedBodies:
    """ASGI middleware: reads an HTTP body itself, at most `limit` bytes within `seconds`, and
    answers 413 (too big), 408 (too slow) or 400 (a bad Content-Length) before the app sees it."""

    def __init__(self, app: ASGIApp, limit: int, seconds: float = 30.0):
        self.app, self.limit, self.seconds = app, limit, seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and not (declared.isdigit() and len(declared) < 20):
            return await _answer(send, 400, "bad Content-Length")
        if declared is not None and int(declared) > self.limit:
            return await _answer(send, 413, f"request body over {self.limit} bytes")
        body = bytearray()
        try:
            async with asyncio.timeout(self.seconds):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        return None  # the client went away
                    body += message.get("body", b"")
                    if len(body) > self.limit:
                        return await _answer(send, 413, f"request body over {self.limit} bytes")
                    if not message.get("more_body"):
                        break
        except TimeoutError:
            return await _answer(send, 408, f"request body not received within {self.seconds:g} s")
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        return await self.app(scope, replay, send)


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def make_app(spec: EnvSpec, max_sessions: int = 64, idle_timeout: float = 600.0) -> FastAPI:
    """OpenEnv's FastAPI app (no Gradio UI) serving `spec`, one env per session."""
    spec.make().close()  # a spec that cannot build fails here, once, not in every session
    app = create_fastapi_app(lambda: GymnasiumEnvironment(spec), TextAction, TextObservation,
                             concurrency_config=ConcurrencyConfig(max_concurrent_envs=max_sessions,
                                                                  session_timeout=idle_timeout),
                             env_name=spec.env_id, state_cls=EpisodeState, mode="simulation")
    app.add_middleware(_BoundedBodies, limit=MAX_MESSAGE_BYTES)
    return app


def listen(port: int) -> socket.socket:
    """A socket listening on 127.0.0.1:`port` (0: any free port), for `serve` to accept on:
    clients that connect before the server loop starts wait in the backlog, not refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    return sock


def serve(app: FastAPI, sock: socket.socket) -> None:
    """Serve `app` on `sock` until interrupted; WebSocket frames are bounded like HTTP bodies."""
    import uvicorn

    config = uvicorn.Config(app, ws_max_size=MAX_MESSAGE_BYTES, log_level="warning", timeout_keep_alive=30)
    uvicorn.Server(config).run(sockets=[sock])
