"""A run whose LLM endpoint cannot serve it fails before its first episode, in seconds, with one line."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from harness.cli import app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serving(status: int):
    """A server on 127.0.0.1 answering every GET and POST with `status` (and a JSON body)."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            body = json.dumps({"data": [], "error": status}).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def run_react(tmp_path, base_url: str):
    kwargs = {"backend": "openai", "backend_kwargs": {"base_url": base_url, "model": "m", "max_retries": 6}}
    t0 = time.monotonic()
    result = CliRunner().invoke(app, ["run", "--env", "HiPER/KeyDoor-v0", "--agent", "react", "--episodes", "2",
                                      "--agent-kwargs", json.dumps(kwargs), "--db", str(tmp_path / "r.sqlite")])
    return result, time.monotonic() - t0


@pytest.mark.parametrize(("status", "message"), [(None, "cannot reach"), (401, "refused the request (401)"),
                                                 (404, "answered 404")])
def test_an_endpoint_that_cannot_serve_ends_the_run_in_seconds(tmp_path, status, message):
    server = serving(status) if status else None
    port = server.server_address[1] if server else free_port()
    url = f"http://127.0.0.1:{port}/v1"
    try:
        result, seconds = run_react(tmp_path, url)
    finally:
        if server:
            server.shutdown()
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and f"{url}/models" in lines[0]
    assert seconds < 15
    assert not (tmp_path / "r.sqlite").exists()  # nothing written


def test_a_serving_endpoint_passes_the_check():
    from agents.backends.openai import OpenAIBackend

    server = serving(200)
    try:
        OpenAIBackend(f"http://127.0.0.1:{server.server_address[1]}/v1", "m").check()
    finally:
        server.shutdown()
