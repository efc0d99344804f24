"""`hiper-bench verify`: check every stored row, and replay its transcript in a fresh env.

Before replaying, each row is read defensively: JSON columns must parse, numbers must have their
types and ranges, the run id must be the hash of the row's env, agent, label and seed, the env
seed the one its run and index give, and each run must hold as many rows as it planned. Then the
replay must reproduce every field the env decides: success, score, progress, steps, return,
invalid actions, switches, subgoals, termination, the task and its hash, and the whole transcript
(actions, observations, rewards and the per-step flags). Anything else is a MISMATCH line: an
edited or deleted row, a changed env, or drifted task data all show up, and no row can make
verify fail with a traceback. Env ids that name a module to import (`module:Id`) are replayed
only when the caller allows that module.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

import hiper_envs
from agents.base import Agent
from harness.envspec import EnvSpec
from harness.progress import EpisodeProgress
from harness.runner import Episode, Job, Pool
from harness.store import Store
from harness.sweep import DEFAULT_CONCURRENCY, episode_seed, run_id_of

# Fields of a row that replaying its transcript determines (besides the transcript itself).
REPLAYED = ("success", "score", "progress", "steps", "return", "invalid_actions", "switches", "aligned_switches",
            "subgoals_total", "subgoals_done", "terminated", "truncated", "task_id", "task_hash", "task_type")
UNIT = ("score", "progress")  # floats in [0, 1]
COUNTS = ("steps", "invalid_actions", "switches", "aligned_switches", "subgoals_total", "subgoals_done")
# Keys every transcript step has; a step's other keys (switch, format_valid, ...) are compared when
# stored, so rows written before a key was recorded still verify.
STEP_KEYS = frozenset({"action", "obs", "reward", "action_valid", "progress", "subgoal_completed"})


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


class RowError(ValueError):
    """A stored row that cannot be what a run wrote; the message is the MISMATCH reason."""


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, abs_tol=1e-9)
    return a == b


def _json(row: dict[str, Any], column: str, kind: type) -> Any:
    try:
        value = json.loads(row[column])
    except (TypeError, ValueError):
        raise RowError(f"{column} is not JSON") from None
    if not isinstance(value, kind):
        raise RowError(f"{column} is not a JSON {kind.__name__}")
    return value


def _check_env(env_id: Any, allowed_modules: set[str]) -> None:
    if not isinstance(env_id, str):
        raise RowError("env_config has no env id")
    module, _, name = env_id.rpartition(":")
    if module and module not in allowed_modules:
        raise RowError(f"env id {env_id!r} imports module {module!r}; allow it to replay (verify --allow-module)")
    if not module and name not in gym.registry:
        raise RowError(f"env id {env_id!r} is not registered")


def parse_row(row: dict[str, Any], allowed_modules: set[str]) -> tuple[EnvSpec, list[dict[str, Any]]]:
    """The env and transcript of a stored row, after every check that needs no replay (RowError)."""
    env = _json(row, "env_config", dict)
    agent_config = _json(row, "agent_config", dict)
    transcript = _json(row, "transcript", list)
    _check_env(env.get("env_id"), allowed_modules)
    try:
        spec = EnvSpec.from_json(env)
    except (KeyError, TypeError, ValueError) as err:
        raise RowError(f"env_config cannot rebuild an env ({type(err).__name__}: {err})") from None
    for name in ("seed", "env_seed", "episode", *COUNTS):
        if not isinstance(row[name], int) or isinstance(row[name], bool) or (name in COUNTS and row[name] < 0):
            raise RowError(f"{name} {row[name]!r} is not a non-negative integer" if name in COUNTS
                           else f"{name} {row[name]!r} is not an integer")
    if row["success"] not in (0, 1):
        raise RowError(f"success {row['success']!r} is neither 0 nor 1")
    for name in ("score", "progress", "return", "wall_s"):
        value = row[name]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise RowError(f"{name} {value!r} is not a finite number")
        if name in UNIT and not 0.0 <= value <= 1.0:
            raise RowError(f"{name} {value!r} is outside [0, 1]")
    if not all(isinstance(step, dict) and isinstance(step.get("action"), str) for step in transcript):
        raise RowError("a transcript step has no text action")
    if run_id_of(env, agent_config, row["agent"], row["seed"]) != row["run_id"]:
        raise RowError("run_id is not the hash of the row's env, agent, label and seed")
    if row["env_seed"] != episode_seed(row["seed"], row["episode"]):
        raise RowError(f"env_seed {row['env_seed']} is not episode {row['episode']}'s seed of seed {row['seed']}")
    return spec, transcript


def _differences(stored: dict[str, Any], transcript: list[dict[str, Any]], replayed: Episode) -> list[str]:
    if replayed.status != "ok":
        return [f"replay failed: {replayed.error}"]
    metrics = replayed.metrics()
    out = [f"{name} stored {stored[name]!r}, replayed {metrics[name]!r}" for name in REPLAYED
           if stored.get(name) is not None and not _same(stored[name], metrics[name])]  # None: an older store
    for i, (kept, again) in enumerate(zip(transcript, replayed.transcript, strict=False)):
        changed = sorted(key for key in kept.keys() | STEP_KEYS if not _same(kept.get(key), again.get(key)))
        if changed:
            out.append(f"transcript step {i + 1} differs in {', '.join(changed)}")
            break
    if len(transcript) != len(replayed.transcript):
        out.append(f"transcript has {len(transcript)} steps, the replay {len(replayed.transcript)}")
    return out


def _count_problems(rows: list[dict[str, Any]], plans: dict[str, int]) -> list[Mismatch]:
    """Each planned run must hold exactly its planned rows (a deleted row shows here)."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["run_id"]] = counts.get(row["run_id"], 0) + 1
    return [Mismatch(run_id, -1, "-", "-", f"{counts.get(run_id, 0)} rows stored of {planned} planned")
            for run_id, planned in sorted(plans.items()) if counts.get(run_id, 0) != planned]


def verify(db: str | Path, workers: int | None = None, step_timeout: float = 60.0, progress: bool = True,
           allowed_modules: set[str] | frozenset[str] = frozenset(),
           concurrency: int = DEFAULT_CONCURRENCY) -> tuple[int, list[Mismatch]]:
    """(rows checked, mismatches). Error rows hold no complete transcript and are not replayed."""
    gym.register_envs(hiper_envs)
    with Store(db, create=False) as store:
        rows = list(store.rows())
        plans = store.plans()
    mismatches = _count_problems(rows, plans)
    jobs = []
    for row in rows:
        if row["status"] != "ok":
            continue
        try:
            spec, transcript = parse_row(row, set(allowed_modules))
        except RowError as err:
            mismatches.append(Mismatch(str(row["run_id"]), row["episode"], str(row["agent"]), str(row["task_id"]),
                                       str(err)))
            continue
        agent = ReplayAgent([step["action"] for step in transcript])
        jobs.append(Job(spec, row["task_id"], row["env_seed"], agent, row["env_seed"], tag=(row, transcript)))
    checked = len(jobs) + sum(1 for m in mismatches if m.episode >= 0)
    if not jobs:
        return checked, mismatches
    with Pool(workers, step_timeout=step_timeout, concurrency=concurrency) as pool, \
            EpisodeProgress(len(jobs), "replaying", label="match", enabled=progress) as bar:
        def on_done(episode: Episode) -> None:
            row, transcript = episode.job.tag
            problems = _differences(row, transcript, episode)
            mismatches.extend(Mismatch(row["run_id"], row["episode"], row["agent"], row["task_id"], p)
                              for p in problems)
            bar.advance(not problems)

        pool.run(jobs, on_done)
    return checked, mismatches
