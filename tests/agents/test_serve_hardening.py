"""`hiper-bench serve` under hostile requests: bounded bodies whatever the headers say, a bad request
fails alone (400, not its batch's 500), `max_tokens` honoured up to the server's cap, no hang on a
short body, and a bad --model is one line."""

import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from agents.backends import server as serve_module
from agents.backends.server import make_server


class Echo:
    """Replies with the last message's words, as many as `max_new_tokens`; a prompt naming
    'overflow' is past its context (a ValueError, like the hf backend's), and it counts its batches."""

    max_new_tokens = 5

    def __init__(self):
        self.batches = []

    def generate(self, conversations, max_new_tokens=None):
        self.batches.append((len(conversations), max_new_tokens))
        if any("overflow" in c[-1]["content"] for c in conversations):
            raise ValueError("a prompt of 9999 tokens and 5 new ones exceed the model's context of 64")
        n = max_new_tokens or self.max_new_tokens
        time.sleep(0.05)  # long enough for concurrent requests to share a batch
        return [" ".join(c[-1]["content"].split()[:n]) for c in conversations]


@pytest.fixture()
def served(monkeypatch):
    monkeypatch.setattr(serve_module, "TIMEOUT_S", 1.0)
    backend = Echo()
    server = make_server(backend, "echo", port=0, batch_size=8)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], backend
    server.shutdown()
    server.server_close()


def chat(port, content, **extra):
    return httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=10,
                      json={"model": "echo", "messages": [{"role": "user", "content": content}], **extra})


def raw(port, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_a_bad_request_fails_alone_and_as_the_clients_fault(served):
    port, backend = served
    replies = {}

    def ask(name, content):
        replies[name] = chat(port, content)

    threads = [threading.Thread(target=ask, args=(f"good{i}", f"one two three {i}")) for i in range(4)]
    threads.append(threading.Thread(target=ask, args=("bad", "overflow please")))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(replies[f"good{i}"].status_code == 200 for i in range(4))
    assert replies["good2"].json()["choices"][0]["message"]["content"] == "one two three 2"
    assert replies["bad"].status_code == 400 and "context" in replies["bad"].json()["error"]["message"]
    assert max(size for size, _ in backend.batches) > 1  # they were batched together, then split


def test_malformed_requests_get_400_without_killing_the_server(served):
    port, _ = served
    lone_surrogate = b'{"messages": [{"role": "user", "content": "\\ud800"}]}'
    response = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", content=lone_surrogate)
    assert response.status_code == 400 and "Unicode" in response.json()["error"]["message"]
    deep = b"[" * 100_000 + b"]" * 100_000
    assert httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", content=deep).status_code == 400
    for bad in (0, -3, "many", True):
        assert chat(port, "hi", max_tokens=bad).status_code == 400
    for length in (b"-1", b"abc", b"\xc2\xb2"):
        reply = raw(port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " + length +
                    b"\r\n\r\n" + b"x" * 100)
        assert reply.startswith(b"HTTP/1.1 400"), reply[:80]
    assert chat(port, "still alive").status_code == 200


def test_bodies_are_bounded_whatever_the_headers_say(served):
    port, _ = served
    big = serve_module.MAX_BODY_BYTES + 1
    reply = raw(port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(big).encode() +
                b"\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 413")
    # a body shorter than its Content-Length: the server gives up after its timeout, not never
    started = time.monotonic()
    raw_reply = raw(port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{")
    assert time.monotonic() - started < 5 and not raw_reply.startswith(b"HTTP/1.1 200")
    assert chat(port, "still alive").status_code == 200


def test_max_tokens_is_honoured_up_to_the_servers_cap(served):
    port, backend = served
    words = "a b c d e f g h"
    assert chat(port, words, max_tokens=2).json()["choices"][0]["message"]["content"] == "a b"
    assert chat(port, words, max_tokens=100).json()["choices"][0]["message"]["content"] == "a b c d e"
    assert chat(port, words).json()["choices"][0]["message"]["content"] == "a b c d e"
    assert (1, 2) in backend.batches and (1, 5) in backend.batches


def test_serve_with_a_missing_model_is_one_line():
    result = subprocess.run([sys.executable, "-c", "from harness.cli import app; app()", "serve",
                             "--model", "/nonexistent/model", "--port", "0"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: --model /nonexistent/model: no such directory"]
    assert "serving" not in result.stdout
