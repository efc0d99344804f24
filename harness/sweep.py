"""Runs and sweeps: which episodes to play, and playing them into the store, resumably.

A run is one agent on one env split with one seed. Its episodes are tasks drawn from the split's
fixed task order, shuffled by the seed, so any machine plays the same tasks in the same order; a
run's id hashes everything that defines it, so rerunning the same command finds its stored
episodes and skips them. A sweep is the grid envs x agents x seeds, played by one worker pool.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

import hiper_envs
from agents import agent_class, make_agent
from agents.base import Agent
from agents.llm import LLMAgent
from agents.prompts import PromptTemplate
from harness.envspec import EnvSpec, check_env_id, check_split
from harness.errors import HarnessError
from harness.progress import EpisodeProgress
from harness.runner import Episode, Job, Pool, WorkerFailure
from harness.store import Store, dumps
from hiper_envs.wrappers import DEFAULT_PROTOCOL, PROTOCOLS

DEFAULT_CONCURRENCY = 16  # episodes in flight: enough to keep a server batching, cheap for envs
BACKENDS = ("local", "ray")  # where env workers run: local processes, or Ray actors (harness.ray_backend)


def pool_factory(backend: str, address: str | None = None) -> Callable[..., Pool]:
    """The pool class of `backend` (Ray is imported only when asked for); Pool's arguments go to it."""
    if backend not in BACKENDS:
        raise HarnessError(f"backend {backend!r} is not available; choose from {', '.join(BACKENDS)}")
    if backend == "local":
        if address:
            raise HarnessError("--address joins a Ray cluster: it needs --backend ray")
        return Pool
    try:
        from harness.ray_backend import RayPool
    except ImportError as err:
        raise HarnessError(f"backend ray needs Ray: pip install 'hiper-bench[ray]' ({err})") from err
    return functools.partial(RayPool, address=address)


@dataclass(frozen=True)
class EnvEntry:
    env_id: str
    split: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    max_steps: int | None = None


@dataclass(frozen=True)
class AgentEntry:
    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    @property
    def shown(self) -> str:
        return self.label or self.name


@dataclass(frozen=True, eq=False)  # hashed by identity: a sweep keys its bookkeeping by run
class Run:
    env: EnvEntry
    agent: AgentEntry
    seed: int
    episodes: int | None  # None: every task of the split once

    def spec(self) -> EnvSpec:
        """The env this run needs: the user's keywords plus what the agent requires of the env."""
        cls = agent_class(self.agent.name)
        kwargs = {**self.env.kwargs, "split": self.env.split}
        for key, value in cls.env_kwargs.items():
            if kwargs.get(key, value) != value:
                raise HarnessError(f"agent {self.agent.name!r} needs env keyword {key}={value!r}, "
                                   f"got {kwargs[key]!r}")
            kwargs[key] = value
        return EnvSpec(self.env.env_id, kwargs, cls.wrappers_for(self.agent.kwargs), self.env.max_steps)

    @property
    def agent_config(self) -> dict[str, Any]:
        return {"name": self.agent.name, "kwargs": self.agent.kwargs}

    @property
    def run_id(self) -> str:
        return run_id_of(self.spec().to_json(), self.agent_config, self.agent.shown, self.seed)


def run_id_of(env: dict[str, Any], agent_config: dict[str, Any], label: str, seed: int) -> str:
    """A run's id: the hash of everything that decides its episodes, so `verify` can recompute it
    from a stored row and see any of them changed."""
    identity = {"env": env, "agent": agent_config, "label": label, "seed": seed}
    return hashlib.sha256(dumps(identity).encode()).hexdigest()[:16]


@dataclass
class Sweep:
    envs: list[EnvEntry]
    agents: list[AgentEntry]
    seeds: list[int]
    episodes: int | None = None
    workers: int | None = None  # env host processes (None: the harness's default)
    concurrency: int = DEFAULT_CONCURRENCY
    step_timeout: float = 60.0

    def runs(self) -> list[Run]:
        return [Run(env, agent, seed, self.episodes)
                for env in self.envs for agent in self.agents for seed in self.seeds]


def _mapping(value: Any, where: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise HarnessError(f"{where}: expected a mapping, got {type(value).__name__}")
    unknown = set(value) - allowed
    if unknown:
        raise HarnessError(f"{where}: unknown key {sorted(unknown)[0]!r} (allowed: {', '.join(sorted(allowed))})")
    missing = required - set(value)
    if missing:
        raise HarnessError(f"{where}: missing key {sorted(missing)[0]!r}")
    return value


def check_episodes(episodes: Any) -> int | None:
    if episodes is not None and (isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1):
        raise HarnessError(f"episodes must be a positive integer, got {episodes!r}")
    return episodes


def check_kwargs(kwargs: Any, where: str) -> dict[str, Any]:
    if not isinstance(kwargs, dict):
        raise HarnessError(f"{where}: kwargs must be a mapping, got {type(kwargs).__name__}")
    if "split" in kwargs:
        raise HarnessError(f"{where}: give the split as `split`, not inside kwargs")
    return kwargs


def make_env_entry(env_id: str, split: str, kwargs: Any = None, max_steps: Any = None) -> EnvEntry:
    check_env_id(env_id)
    check_split(env_id, split)
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
        raise HarnessError(f"max_steps must be a positive integer, got {max_steps!r}")
    return EnvEntry(env_id, str(split), check_kwargs(kwargs or {}, env_id), max_steps)


def make_agent_entry(name: str, kwargs: Any = None, label: str = "") -> AgentEntry:
    """An agent of the sweep; an LLM agent's reply protocol is always in its kwargs (default
    `published`), so every stored row records which protocol produced it."""
    try:
        cls = agent_class(name)
    except ValueError as err:
        raise HarnessError(str(err)) from err
    kwargs = check_kwargs(kwargs or {}, f"agent {name}")
    if issubclass(cls, LLMAgent):
        kwargs = {**kwargs, "protocol": kwargs.get("protocol", DEFAULT_PROTOCOL)}
        if kwargs["protocol"] not in PROTOCOLS:
            raise HarnessError(f"agent {name}: unknown protocol {kwargs['protocol']!r}; "
                               f"choose from {', '.join(PROTOCOLS)}")
        if kwargs.get("prompt_template") is not None:
            try:
                PromptTemplate.read(str(kwargs["prompt_template"]))
            except ValueError as err:
                raise HarnessError(f"agent {name}: {err}") from err
    return AgentEntry(name, kwargs, str(label))


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep YAML (safely: plain data only); every problem is one HarnessError."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise HarnessError(f"cannot read {path}: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise HarnessError(f"{path}: invalid YAML ({' '.join(str(err).split())})") from err
    top = _mapping(data, str(path), {"envs", "agents", "seeds", "episodes", "workers", "concurrency",
                                     "step_timeout"}, {"envs", "agents"})
    envs, agents = top["envs"], top["agents"]
    if not isinstance(envs, list) or not envs or not isinstance(agents, list) or not agents:
        raise HarnessError(f"{path}: envs and agents must be non-empty lists")
    env_entries = [make_env_entry(**{"env_id" if k == "id" else k: v for k, v in
                                     _mapping(e, f"{path}: envs[{i}]", {"id", "split", "kwargs", "max_steps"},
                                              {"id", "split"}).items()})
                   for i, e in enumerate(envs)]
    agent_entries = [make_agent_entry(**_mapping(a, f"{path}: agents[{i}]", {"name", "kwargs", "label"}, {"name"}))
                     for i, a in enumerate(agents)]
    seeds = top.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise HarnessError(f"{path}: seeds must be a non-empty list of non-negative integers")
    workers = top.get("workers")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise HarnessError(f"{path}: workers must be a positive integer")
    concurrency = top.get("concurrency", DEFAULT_CONCURRENCY)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise HarnessError(f"{path}: concurrency must be a positive integer")
    timeout = top.get("step_timeout", 60.0)
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise HarnessError(f"{path}: step_timeout must be a positive number of seconds")
    return Sweep(env_entries, agent_entries, seeds, check_episodes(top.get("episodes")), workers, concurrency,
                 float(timeout))


def task_order(task_ids: list[str], seed: int, episodes: int | None) -> list[str]:
    """Episode i plays task order[i]: the split's fixed order permuted by `seed`, cycled if needed."""
    perm = np.random.default_rng(seed).permutation(len(task_ids))
    count = len(task_ids) if episodes is None else episodes
    return [task_ids[perm[i % len(task_ids)]] for i in range(count)]


def episode_seed(seed: int, episode: int) -> int:
    """The env (and agent) seed of one episode, independent of the worker that plays it."""
    return int(np.random.SeedSequence([seed, episode]).generate_state(1)[0])


@dataclass
class Summary:
    planned: int = 0
    skipped: int = 0
    ran: int = 0
    succeeded: int = 0
    errors: int = 0
    steps: int = 0
    seconds: float = 0.0  # playing episodes, after env hosts started and envs were built


def _row(run: Run, spec: EnvSpec, index: int, episode: Episode) -> dict[str, Any]:
    return {
        **episode.metrics(), "run_id": run.run_id, "episode": index, "status": episode.status,
        "error": episode.error, "env_id": spec.env_id, "split": run.env.split, "env_config": dumps(spec.to_json()),
        "agent": run.agent.shown, "agent_config": dumps(run.agent_config), "seed": run.seed,
        "env_seed": episode.job.env_seed, "package_version": hiper_envs.__version__,
        "started_at": episode.started_at, "wall_s": episode.wall_s, "transcript": dumps(episode.transcript),
    }


def build_agents(runs: list[Run]) -> dict[Run, Agent]:
    """One agent per (agent config, env), shared by the runs that differ only in seed (an LLM loads once)."""
    built: dict[str, Agent] = {}
    agents = {}
    for run in runs:
        key = dumps([run.agent_config, run.env.env_id])
        if key not in built:
            try:
                built[key] = make_agent(run.agent.name, run.env.env_id, **run.agent.kwargs)
                check = getattr(getattr(built[key], "backend", None), "check", None)
                if check is not None:  # an endpoint that cannot serve fails the run here, in seconds
                    check()
            except (TypeError, ValueError, ConnectionError) as err:
                raise HarnessError(f"agent {run.agent.name!r}: {err}") from err
        agents[run] = built[key]
    return agents


def execute(runs: list[Run], db: str | Path, workers: int | None = None, step_timeout: float = 60.0,
            progress: bool = True, backend: str = "local", address: str | None = None,
            concurrency: int = DEFAULT_CONCURRENCY) -> Summary:
    """Play every episode of `runs` not yet stored in `db`, `concurrency` at a time on `workers` env
    hosts; each one is committed as it ends.

    `backend` "ray" plays them on Ray actors (joining the cluster at `address`, or a local Ray); this
    process still chooses, seeds and stores every episode. Everything that can be checked is checked
    before the database is opened or created.
    """
    make_pool = pool_factory(backend, address)
    specs = {run: run.spec() for run in runs}
    agents = build_agents(runs)
    summary = Summary()
    stored = _stored(db, runs)
    todo = [run for run in runs if run.episodes is None or len(stored[run]) < run.episodes]
    summary.skipped = sum(run.episodes or 0 for run in runs if run not in todo)
    if not todo:
        return summary
    with make_pool(workers, step_timeout=step_timeout, concurrency=concurrency) as pool:
        try:
            task_ids = pool.task_ids(specs[run] for run in todo)
        except WorkerFailure as err:  # an env its config cannot build: the user's input, before any write
            raise HarnessError(str(err)) from err
        with Store(db) as store:
            jobs = []
            for run in todo:
                done = store.done(run.run_id)
                summary.skipped += len(done)
                order = task_order(task_ids[specs[run].key], run.seed, run.episodes)
                store.plan(run.run_id, len(order))
                for index, task_id in enumerate(order):
                    if index not in done:
                        env_seed = episode_seed(run.seed, index)
                        jobs.append(Job(specs[run], task_id, env_seed, agents[run], env_seed, tag=(run, index)))
            summary.planned = len(jobs)

            with EpisodeProgress(len(jobs), "episodes", enabled=progress) as bar:
                def on_done(episode: Episode) -> None:
                    run, index = episode.job.tag
                    row = _row(run, specs[run], index, episode)
                    store.add(row)
                    won = bool(row["success"]) and episode.status == "ok"
                    summary.ran += 1
                    summary.steps += row["steps"]
                    summary.errors += episode.status == "error"
                    summary.succeeded += won
                    bar.advance(won, summary.errors)

                t0 = time.perf_counter()
                pool.run(jobs, on_done)
                summary.seconds = time.perf_counter() - t0
    return summary


def _stored(db: str | Path, runs: list[Run]) -> dict[Run, set[int]]:
    """Each run's episodes already in `db`, read without writing (none when there is no store yet)."""
    path = Path(db)
    if not path.exists() or (path.is_file() and path.stat().st_size == 0):
        return {run: set() for run in runs}
    with Store(path, create=False) as store:
        return {run: store.done(run.run_id) for run in runs}


def parse_json_arg(text: str | None, what: str) -> dict[str, Any]:
    """Parse a `--*-kwargs` JSON object given on the command line."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise HarnessError(f"{what} is not valid JSON: {err.msg} at character {err.pos}") from err
    if not isinstance(value, dict):
        raise HarnessError(f"{what} must be a JSON object")
    return value
