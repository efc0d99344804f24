"""`hiper-bench verify`: replay every stored transcript in a fresh env and compare the outcome.

A row fails when the replayed success, score, step count or task hash differs from the stored one:
an edited row, a changed env, or drifted task data all show up here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.base import Agent
from harness.envspec import EnvSpec
from harness.progress import EpisodeProgress
from harness.runner import Episode, Job, Pool
from harness.store import Store

CHECKED = ("success", "score", "steps", "task_hash")


class ReplayAgent(Agent):
    """Plays back a stored list of actions; running out of them before the env ends is a mismatch."""

    def __init__(self, actions: list[str]):
        self.actions = actions
        self.next = 0

    def reset(self, task: str, info: dict[str, Any], seed: int | None = None) -> None:
        self.next = 0

    def act(self, obs: str, info: dict[str, Any]) -> str:
        if self.next >= len(self.actions):
            raise RuntimeError(f"the transcript ended after {len(self.actions)} actions but the env went on")
        self.next += 1
        return self.actions[self.next - 1]


@dataclass
class Mismatch:
    run_id: str
    episode: int
    agent: str
    task_id: str
    problem: str


def _differences(stored: dict[str, Any], replayed: Episode) -> list[str]:
    if replayed.status != "ok":
        return [f"replay failed: {replayed.error}"]
    metrics = replayed.metrics()
    out = []
    for name in CHECKED:
        a, b = stored[name], metrics[name]
        same = math.isclose(a, b, abs_tol=1e-9) if name == "score" else type(b)(a) == b
        if not same:
            out.append(f"{name} stored {a!r}, replayed {b!r}")
    return out


def verify(db: str | Path, workers: int = 1, step_timeout: float = 60.0,
           progress: bool = True) -> tuple[int, list[Mismatch]]:
    """(rows checked, mismatches). Error rows hold no complete transcript and are not replayed."""
    with Store(db, create=False) as store:
        rows = list(store.rows("status = 'ok'"))
    jobs = [Job(EnvSpec.from_json(json.loads(row["env_config"])), row["task_id"], row["env_seed"],
                ReplayAgent([step["action"] for step in json.loads(row["transcript"])]), row["env_seed"], tag=row)
            for row in rows]
    mismatches: list[Mismatch] = []
    if not jobs:
        return 0, mismatches
    with Pool(workers, step_timeout=step_timeout) as pool, \
            EpisodeProgress(len(jobs), "replaying", label="match", enabled=progress) as bar:
        def on_done(episode: Episode) -> None:
            row = episode.job.tag
            problems = _differences(row, episode)
            mismatches.extend(Mismatch(row["run_id"], row["episode"], row["agent"], row["task_id"], p)
                              for p in problems)
            bar.advance(not problems)

        pool.run(jobs, on_done)
    return len(jobs), mismatches
