"""A small OpenAI-compatible chat server over any backend (`hiper-bench serve`).

Concurrent requests are gathered into one batch per `generate` call, so a CPU user gets the same
batching the harness gives in-process. Standard library only; bind it to 127.0.0.1 unless you
mean to expose it.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agents.backends import Backend, Message

MAX_BODY_BYTES = 4_000_000


class _Batcher:
    """Runs queued conversations through the backend, up to `batch_size` per call, on one thread."""

    def __init__(self, backend: Backend, batch_size: int):
        self.backend = backend
        self.batch_size = batch_size
        self.requests: queue.Queue[tuple[list[Message], Future[str]]] = queue.Queue()
        threading.Thread(target=self._loop, daemon=True, name="batcher").start()

    def submit(self, messages: list[Message]) -> Future[str]:
        future: Future[str] = Future()
        self.requests.put((messages, future))
        return future

    def _loop(self) -> None:
        while True:
            batch = [self.requests.get()]
            while len(batch) < self.batch_size:
                try:
                    batch.append(self.requests.get_nowait())
                except queue.Empty:
                    break
            try:
                replies = self.backend.generate([messages for messages, _ in batch])
            except Exception as err:  # a failed batch fails its requests, not the server
                for _, future in batch:
                    future.set_exception(err)
                continue
            for (_, future), reply in zip(batch, replies, strict=True):
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
    if body.get("stream"):
        raise ValueError("streaming is not supported")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def make_server(backend: Backend, model_name: str, host: str = "127.0.0.1", port: int = 8000,
                batch_size: int = 8) -> ThreadingHTTPServer:
    """An HTTP server (not yet serving) answering `/v1/models` and `/v1/chat/completions`."""
    batcher = _Batcher(backend, batch_size)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

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
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._error(413, "request body too large")
                return
            try:
                messages = _messages(json.loads(self.rfile.read(length) or b"null"))
            except ValueError as err:  # json.JSONDecodeError is a ValueError too
                self._error(400, str(err))
                return
            try:
                reply = batcher.submit(messages).result()
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
