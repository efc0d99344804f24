"""A small OpenAI-compatible chat server over any backend (`hiper-bench serve`).

Concurrent requests are gathered into one batch per `generate` call, so a CPU user gets the same
batching the harness gives in-process. Standard library only; bind it to 127.0.0.1 unless you
mean to expose it. Every request is judged on its own: a malformed one gets 400 (413 when too
large), and one that the model cannot take (a prompt past its context) fails alone, never the
requests batched with it. Bodies are read up to `MAX_BODY_BYTES` whatever the headers claim, and a
client silent for `TIMEOUT_S` is dropped.
"""

from __future__ import annotations

import functools
import json
import queue
import threading
import time
import uuid
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agents.backends import Backend, Message, generate_apart

MAX_BODY_BYTES = 4_000_000
TIMEOUT_S = 30.0  # socket timeout: a body shorter than its Content-Length cannot hold a handler


class RequestError(ValueError):
    """The client's fault: answered with `status` and the message, never with a traceback."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class _Batcher:
    """Runs queued conversations through the backend on one thread, up to `batch_size` per call;
    a batch holds requests of one `max_tokens` (the oldest waiting request's), the others wait."""

    def __init__(self, backend: Backend, batch_size: int):
        self.backend = backend
        self.batch_size = batch_size
        self.requests: queue.Queue[tuple[list[Message], int | None, Future[str]]] = queue.Queue()
        self.waiting: list[tuple[list[Message], int | None, Future[str]]] = []
        threading.Thread(target=self._loop, daemon=True, name="batcher").start()

    def submit(self, messages: list[Message], max_tokens: int | None) -> Future[str]:
        future: Future[str] = Future()
        self.requests.put((messages, max_tokens, future))
        return future

    def _loop(self) -> None:
        while True:
            if not self.waiting:
                self.waiting.append(self.requests.get())
            while True:
                try:
                    self.waiting.append(self.requests.get_nowait())
                except queue.Empty:
                    break
            tokens = self.waiting[0][1]
            batch: list[tuple[list[Message], int | None, Future[str]]] = []
            rest: list[tuple[list[Message], int | None, Future[str]]] = []
            for request in self.waiting:
                (batch if request[1] == tokens and len(batch) < self.batch_size else rest).append(request)
            self.waiting = rest
            generate = self.backend.generate if tokens is None else \
                functools.partial(self.backend.generate, max_new_tokens=tokens)
            for (_, _, future), reply in zip(batch, generate_apart(generate, [m for m, _, _ in batch]), strict=True):
                if isinstance(reply, Exception):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)


def _messages(body: Any) -> list[Message]:
    """The validated `messages` of a chat request; raises ValueError with the reason."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list")
    for message in messages:
        if not (isinstance(message, dict) and isinstance(message.get("role"), str)
                and isinstance(message.get("content"), str)):
            raise ValueError("each message needs a string 'role' and 'content'")
        try:
            message["content"].encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("message content is not valid Unicode (a lone surrogate)") from None
    if body.get("stream"):
        raise ValueError("streaming is not supported")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _max_tokens(body: dict[str, Any], cap: int | None) -> int | None:
    """The request's `max_tokens` (or `max_completion_tokens`), at most the server's cap; None
    when the backend takes no such limit."""
    asked = body.get("max_tokens", body.get("max_completion_tokens"))
    if asked is None or cap is None:
        return None
    if isinstance(asked, bool) or not isinstance(asked, int) or asked < 1:
        raise ValueError("'max_tokens' must be a positive integer")
    return min(asked, cap)


def _content_length(value: str | None) -> int:
    if value is None:
        return 0
    if not value.strip().isascii() or not value.strip().isdigit():
        raise RequestError(f"invalid Content-Length {value[:40]!r}")
    length = int(value)
    if length > MAX_BODY_BYTES:
        raise RequestError(f"request body over {MAX_BODY_BYTES} bytes", 413)
    return length


def make_server(backend: Backend, model_name: str, host: str = "127.0.0.1", port: int = 8000,
                batch_size: int = 8) -> ThreadingHTTPServer:
    """An HTTP server (not yet serving) answering `/v1/models` and `/v1/chat/completions`.

    A request's `max_tokens` is honoured up to the backend's own `max_new_tokens` (the server's
    cap) when the backend has one."""
    batcher = _Batcher(backend, batch_size)
    cap = getattr(backend, "max_new_tokens", None)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = TIMEOUT_S

        def log_message(self, format: str, *args: Any) -> None:  # quiet: one line per request is noise
            pass

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            self._send(status, {"error": {"message": message, "type": "invalid_request_error"}})

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": model_name, "object": "model"}]})
            else:
                self._error(404, f"no route {self.path}")

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._error(404, f"no route {self.path}")
                return
            try:
                length = _content_length(self.headers.get("Content-Length"))
                raw = self.rfile.read(length)
                if len(raw) < length:
                    raise RequestError("request body shorter than its Content-Length")
                body = json.loads(raw or b"null")
                messages, max_tokens = _messages(body), _max_tokens(body, cap)
            except RequestError as err:  # the body's framing is unknown: answer, then close
                self.close_connection = True
                self._error(err.status, str(err))
                return
            except (ValueError, RecursionError) as err:  # bad JSON (or nested past the parser) or fields
                self._error(400, str(err) if isinstance(err, ValueError) else "JSON nested too deeply")
                return
            try:
                reply = batcher.submit(messages, max_tokens).result()
            except ValueError as err:  # this request alone: e.g. a prompt longer than the context
                self._error(400, f"cannot generate for this request: {err}")
                return
            except Exception as err:
                self._error(500, f"generation failed: {type(err).__name__}: {err}")
                return
            self._send(200, {
                "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": model_name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                             "finish_reason": "stop"}],
            })

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
