"""Rollout engine throughput against an OpenAI-compatible server: how busy does the harness keep it?

    .venv/bin/python bench/llm_throughput.py [--concurrency 16 64 256] [--envs alfworld webshop]
        [--median 0.4] [--sigma 0.5] [--steps 8] [--short-steps 2] [--harness DIR] [--workers W]

Starts a mock chat-completions server in its own process (replies after a lognormal delay with the
given median and sigma; the reply picks one of the prompt's admissible actions, by a hash of the
prompt, so a run is repeatable), then for each env and concurrency C plays 4C episodes with
`hiper-bench run --agent react` over the `openai` backend, exactly as a user would, and prints:

* steps/s in steady state, the server-bound ideal C / mean latency, and their ratio;
* occupancy: requests in flight / C, time-averaged from 20% to 80% of the span between the first
  request and the last reply (ramp-up and the final drain are left out), and the peak in flight;
* harness CPU per LLM step, marginal: user + system time of the run and every process it started,
  for `--steps` minus `--short-steps` step limits, over the difference in steps (start-up cancels);
* peak RSS summed over every process of the run (sampled every 0.2 s) at `--steps`;
* for reference, the CPU per step of the env alone, stepped in this process with the same kind of
  actions: the part of the harness's figure that is the env's own work.

`--harness DIR` runs the harness of another checkout (e.g. a `git worktree` of an older commit) with
this environment: an engine without `--concurrency` gets `--workers C` and a backend that sends C
requests at a time, its way of keeping C episodes in flight. `serve` runs only the mock server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
ENVS = {"alfworld": ("HiPER/ALFWorld-v0", {"engine": "native"}), "webshop": ("HiPER/WebShop-v0", {})}
MAX_HEAD = 64 * 1024  # bytes of request line and headers the mock server reads
MAX_BODY = 4 * 1024 * 1024
IDLE_S = 60.0  # a keep-alive connection silent this long is closed


# --- the mock server ---------------------------------------------------------------------------

def mock_reply(body: bytes) -> str:
    """A react-format reply naming one of the prompt's admissible actions, chosen by the prompt's hash."""
    try:
        prompt = json.loads(body)["messages"][-1]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        prompt = ""
    listed = prompt.rpartition("Admissible actions:\n")[2].split("\n\n")[0].splitlines()
    actions = [line[2:] for line in listed if line.startswith("- ") and "<" not in line]
    action = actions[zlib.crc32(prompt.encode()) % len(actions)] if actions else "look"
    return f"<think>mock</think>\n<action>{action}</action>"


class MockServer:
    """Chat completions after a lognormal delay; `/stats` gives every request's (start, end) and the
    peak in flight, `/reset-stats` clears them. Binds 127.0.0.1; reads are bounded in size and time."""

    def __init__(self, median: float, sigma: float, seed: int = 0):
        self.mu, self.sigma = math.log(median), sigma
        self.random = random.Random(seed)
        self.reset_stats()

    def reset_stats(self) -> None:
        self.intervals: list[tuple[float, float]] = []
        self.in_flight = self.peak = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_S)
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, path, _ = (request_line.split(" ") + ["", ""])[:3]
                headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
                length = int(headers.get("content-length", "0") or 0)
                if not 0 <= length <= MAX_BODY:
                    await self.respond(writer, 413, {"error": {"message": "body too large"}})
                    return
                body = await asyncio.wait_for(reader.readexactly(length), IDLE_S)
                status, payload = await self.route(method, path, body)
                await self.respond(writer, status, payload)
                if headers.get("connection", "").lower() == "close":
                    return
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError, ValueError):
            return
        finally:
            writer.close()

    async def route(self, method: str, path: str, body: bytes) -> tuple[int, dict]:
        if method == "GET" and path == "/v1/models":
            return 200, {"object": "list", "data": [{"id": "mock", "object": "model"}]}
        if method == "POST" and path == "/v1/chat/completions":
            return 200, await self.complete(body)
        if method == "GET" and path == "/stats":
            return 200, {"intervals": self.intervals, "peak": self.peak}
        if method == "POST" and path == "/reset-stats":
            self.reset_stats()
            return 200, {}
        return 404, {"error": {"message": f"no route {method} {path}"}}

    async def complete(self, body: bytes) -> dict:
        start = time.monotonic()
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.random.lognormvariate(self.mu, self.sigma))
        finally:
            self.in_flight -= 1
        self.intervals.append((start, time.monotonic()))
        message = {"role": "assistant", "content": mock_reply(body)}
        return {"id": "mock", "object": "chat.completion", "model": "mock",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}

    @staticmethod
    async def respond(writer: asyncio.StreamWriter, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                     "\r\n".encode() + data)
        await writer.drain()


async def serve(median: float, sigma: float, seed: int) -> None:
    """Serve until stdin closes; the first line of stdout is the port."""
    server = MockServer(median, sigma, seed)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, limit=MAX_HEAD, backlog=1024)
    print(listener.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def start_mock(median: float, sigma: float, seed: int = 0) -> tuple[subprocess.Popen, str]:
    """The mock server in its own process, and its base URL (ends in /v1)."""
    process = subprocess.Popen([sys.executable, __file__, "serve", "--median", str(median), "--sigma", str(sigma),
                                "--seed", str(seed)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    port = process.stdout.readline().strip()
    if not port.isdigit():
        process.kill()
        raise RuntimeError("the mock server did not start")
    return process, f"http://127.0.0.1:{port}/v1"


def stop_mock(process: subprocess.Popen) -> None:
    process.stdin.close()  # the server's cue to stop
    process.wait(10)
    process.stdout.close()


# --- measuring one run -------------------------------------------------------------------------

def occupancy(intervals: list[tuple[float, float]], concurrency: int) -> dict[str, float]:
    """Steady-state measures: in flight / C and replies per second from 20% to 80% of the span."""
    first, last = min(s for s, _ in intervals), max(e for _, e in intervals)
    lo, hi = first + 0.2 * (last - first), first + 0.8 * (last - first)
    busy = sum(max(0.0, min(e, hi) - max(s, lo)) for s, e in intervals)
    ended = sum(lo <= e < hi for _, e in intervals)
    latency = sum(e - s for s, e in intervals) / len(intervals)
    return {"occupancy": busy / (hi - lo) / concurrency, "steps_per_s": ended / (hi - lo),
            "ideal": concurrency / latency, "latency": latency}


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def play(harness: Path, url: str, env: str, concurrency: int, max_steps: int, db: Path,
         workers: int | None = None) -> dict[str, float]:
    """One `hiper-bench run` at this concurrency: its CPU seconds (all its processes), peak summed RSS."""
    env_id, env_kwargs = ENVS[env]
    cli = [sys.executable, "-c", "from harness.cli import app; app()"]  # the checkout's harness, run from it
    help_text = subprocess.run([*cli, "run", "--help"], cwd=harness, capture_output=True, text=True).stdout
    backend = {"base_url": url, "model": "mock", "max_new_tokens": 64}
    if "--concurrency" in help_text:
        parallel = ["--concurrency", str(concurrency), *(["--workers", str(workers)] if workers else [])]
    else:  # the lockstep engine: one process per episode, the backend sending all at once
        parallel, backend["concurrency"] = ["--workers", str(concurrency)], concurrency
    command = [*cli, "run", "--env", env_id, "--agent", "react",
               "--agent-kwargs", json.dumps({"backend": "openai", "backend_kwargs": backend}),
               "--env-kwargs", json.dumps(env_kwargs), "--episodes", str(4 * concurrency),
               "--max-steps", str(max_steps), "--db", str(db), "--no-progress", *parallel]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(command, cwd=harness, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watched, peak = psutil.Process(process.pid), 0
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
    reader.start()
    while process.poll() is None:
        try:
            peak = max(peak, tree_rss(watched))
        except psutil.Error:
            pass
        time.sleep(0.2)
    reader.join()
    if process.returncode != 0:
        raise RuntimeError(f"the run failed ({process.returncode}):\n{''.join(output)[-2000:]}")
    if " 0 errors" not in "".join(output):  # every episode must have played for the counts to mean anything
        raise RuntimeError(f"episodes failed:\n{''.join(output)[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"cpu_s": cpu, "rss": peak}


def measure(harness: Path, url: str, env: str, concurrency: int, steps: int, short: int,
            workers: int | None = None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for label, max_steps in (("short", short), ("long", steps)):
            httpx.post(f"{url.removesuffix('/v1')}/reset-stats")
            run = play(harness, url, env, concurrency, max_steps, Path(tmp) / f"{label}.sqlite", workers)
            stats = httpx.get(f"{url.removesuffix('/v1')}/stats").json()
            results[label] = {**run, "steps": len(stats["intervals"]), "peak": stats["peak"],
                              **occupancy(stats["intervals"], concurrency)}
    long, short_run = results["long"], results["short"]
    marginal = (long["cpu_s"] - short_run["cpu_s"]) / max(1, long["steps"] - short_run["steps"])
    return {**long, "cpu_ms_per_step": 1e3 * marginal}


def env_alone_ms(env: str, episodes: int = 200, max_steps: int = 8) -> float:
    """CPU per step of the env by itself (resets left out, as the marginal figure leaves them out)."""
    import gymnasium as gym

    import hiper_envs  # noqa: F401

    env_id, env_kwargs = ENVS[env]
    game = gym.make(env_id, max_episode_steps=max_steps, **env_kwargs)
    ids, pick, spent, steps = game.unwrapped.task_ids, random.Random(0), 0.0, 0
    for i in range(episodes):
        _, info = game.reset(seed=i, options={"task_id": ids[(7 * i) % len(ids)]})
        done = False
        while not done:
            action = pick.choice([a for a in info["admissible_actions"] if "<" not in a] or ["look"])
            start = time.process_time()
            _, _, terminated, truncated, info = game.step(action)
            spent, steps, done = spent + time.process_time() - start, steps + 1, terminated or truncated
    game.close()
    return 1e3 * spent / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", nargs="?", choices=["bench", "serve"], default="bench")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--envs", nargs="+", choices=sorted(ENVS), default=sorted(ENVS))
    parser.add_argument("--median", type=float, default=0.4, help="median reply latency, seconds")
    parser.add_argument("--sigma", type=float, default=0.5, help="sigma of the log of the latency")
    parser.add_argument("--steps", type=int, default=8, help="step limit of the long runs")
    parser.add_argument("--short-steps", type=int, default=2, help="step limit of the short runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--harness", type=Path, default=ROOT, help="checkout whose harness runs")
    parser.add_argument("--workers", type=int, help="env host processes (default: the harness's own default)")
    args = parser.parse_args()
    if args.mode == "serve":
        asyncio.run(serve(args.median, args.sigma, args.seed))
        return
    server, url = start_mock(args.median, args.sigma, args.seed)
    print(f"harness {args.harness} | mock server: lognormal latency, median {args.median} s, sigma {args.sigma} | "
          f"4C episodes, max steps {args.steps} (CPU: minus {args.short_steps}) | {os.cpu_count()} CPUs | "
          f"workers {args.workers or 'default'}")
    print(f"{'env':9} {'C':>4} {'steps/s':>8} {'ideal':>7} {'ratio':>6} {'occupancy':>9} {'peak in flight':>14} "
          f"{'CPU ms/step':>11} {'env alone':>9} {'peak RSS MB':>11}")
    try:
        for env in args.envs:
            alone = env_alone_ms(env)
            for c in args.concurrency:
                r = measure(args.harness.resolve(), url, env, c, args.steps, args.short_steps, args.workers)
                print(f"{env:9} {c:>4} {r['steps_per_s']:>8.1f} {r['ideal']:>7.1f} {r['steps_per_s'] / r['ideal']:>6.2f} "
                      f"{r['occupancy']:>9.2f} {r['peak']:>14} {r['cpu_ms_per_step']:>11.2f} {alone:>9.2f} {r['rss'] / 2**20:>11.0f}",
                      flush=True)
    finally:
        stop_mock(server)


if __name__ == "__main__":
    main()
