"""`hiper-bench bench`: throughput of the expert agent stepping an env directly and through the harness.

The difference is the harness's overhead: process hops, transcripts, one SQLite commit per episode.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from agents import make_agent
from harness.sweep import Run, execute, make_agent_entry, make_env_entry, task_order


@dataclass
class Throughput:
    env_id: str
    mode: str  # "direct" or "harness, N workers"
    episodes: int
    steps: int
    seconds: float

    @property
    def episodes_per_s(self) -> float:
        return self.episodes / self.seconds

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds


def direct(env_id: str, split: str, episodes: int, seed: int = 0) -> Throughput:
    """The expert on the env in this process: no harness at all (env construction not timed)."""
    run = Run(make_env_entry(env_id, split), make_agent_entry("expert"), seed, episodes)
    env = run.spec().make()
    agent = make_agent("expert", env_id)
    tasks = task_order(list(env.unwrapped.task_ids), seed, episodes)
    env.reset(options={"task_id": tasks[0]})  # untimed warm-up, as the harness's workers do
    steps = 0
    t0 = time.perf_counter()
    for task_id in tasks:
        obs, info = env.reset(options={"task_id": task_id})
        agent.reset(info["task"], info)
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(agent.act(obs, info))
            steps += 1
            done = terminated or truncated
    seconds = time.perf_counter() - t0
    env.close()
    return Throughput(env_id, "direct", episodes, steps, seconds)


def harness(env_id: str, split: str, episodes: int, workers: int, seed: int = 0) -> Throughput:
    """The expert through `execute` into a scratch store; worker start-up and env builds not timed."""
    run = Run(make_env_entry(env_id, split), make_agent_entry("expert"), seed, episodes)
    with tempfile.TemporaryDirectory() as tmp:
        summary = execute([run], Path(tmp) / "bench.sqlite", workers=workers, progress=False)
    mode = f"harness, {workers} worker{'s' if workers > 1 else ''}"
    return Throughput(env_id, mode, summary.ran, summary.steps, summary.seconds)
