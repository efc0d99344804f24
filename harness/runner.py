"""Runs episodes of agents on envs: one process per env worker, agents in the parent.

Envs live in worker processes (the ALFWorld engine is not thread-safe, and a crashed or hung engine
must not take the run down); agents live in the parent, so an LLM agent batches the generation of
every episode waiting for an action. Each request to a worker has a deadline; a worker that dies,
hangs or raises is replaced and its episode retried once, then reported as an error.
A `Worker` carries env requests to an `EnvHost`: here a local process over a pipe; `harness.ray_backend`
subclasses `Pool` with Ray actors, and the rest of this logic is shared.
Nothing here knows a particular env or agent: it speaks the `info` keys of docs/envs.md and the agent interface.
"""

from __future__ import annotations

import copy
import multiprocessing as mp
import time
import traceback
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import pairwise
from multiprocessing.connection import Connection, wait
from typing import Any

import gymnasium as gym

from agents.base import Agent
from harness.envspec import EnvSpec

MAX_ATTEMPTS = 2  # the first try and one retry
ENV_CACHE = 4  # envs a worker keeps built, so a sweep reuses them across runs


@dataclass
class Job:
    """One episode to run: `agent` is a configured prototype; each attempt gets a fresh copy."""

    spec: EnvSpec
    task_id: str
    env_seed: int
    agent: Agent
    agent_seed: int
    tag: Any = None  # the caller's identity for this episode, handed back untouched
    attempts: int = 0


@dataclass
class Episode:
    """A finished (or failed) episode: its transcript and the env's first and last `info`."""

    job: Job
    started_at: str
    status: str = "ok"
    error: str | None = None
    first_info: dict[str, Any] = field(default_factory=dict)
    last_info: dict[str, Any] = field(default_factory=dict)
    transcript: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0
    started: bool = False  # the reset reply has come
    terminated: bool = False  # the env's own flags on its last step
    truncated: bool = False

    def metrics(self) -> dict[str, Any]:
        """Outcome and behaviour counts from the `info` keys of docs/envs.md (the plan-execute ones for wrapped envs)."""
        steps = [s for s in self.transcript if "obs" in s]  # a failed step has an action and no reply
        info = self.last_info or self.first_info
        switches = sum(bool(s.get("switch")) for s in steps)
        aligned = sum(bool(s.get("switch")) and bool(prev.get("subgoal_completed"))
                      for prev, s in pairwise(steps))
        return {
            "task_id": self.first_info.get("task_id", self.job.task_id),
            "task_hash": self.first_info.get("task_hash", ""),
            "task_type": self.first_info.get("task_type", ""),
            "success": bool(info.get("won", False)),
            "score": float(info.get("score", 0.0)),
            "progress": float(info.get("progress", 0.0)),
            "steps": len(steps),
            "return": float(sum(s["reward"] for s in steps)),
            "invalid_actions": sum(not s["action_valid"] for s in steps),
            "switches": switches,
            "aligned_switches": aligned,
            "subgoals_total": len(info.get("subgoals", [])),
            "subgoals_done": int(info.get("subgoal_index", 0)),
            "terminated": self.terminated,
            "truncated": self.truncated,
        }


class EnvHost:
    """The envs of one worker, whatever carries its requests (a pipe, or a Ray actor call).

    Requests: ("ids", spec) / ("reset", spec, task, seed) / ("step", action). Each gets a reply tuple;
    an env that raises gives ("error", message, traceback).
    """

    def __init__(self) -> None:
        self.envs: OrderedDict[str, gym.Env] = OrderedDict()
        self.env: gym.Env | None = None

    def _get(self, spec: EnvSpec) -> gym.Env:
        if spec.key not in self.envs:
            self.envs[spec.key] = spec.make()
            while len(self.envs) > ENV_CACHE:
                self.envs.popitem(last=False)[1].close()
        self.envs.move_to_end(spec.key)
        return self.envs[spec.key]

    def handle(self, msg: tuple) -> tuple:
        try:
            if msg[0] == "ids":
                self.env = self._get(msg[1])
                ids = list(self.env.unwrapped.task_ids)
                self.env.reset(options={"task_id": ids[0]})  # warm up: engines may load lazily on first reset
                return ("ids", ids)
            if msg[0] == "reset":
                self.env = self._get(msg[1])
                obs, info = self.env.reset(seed=msg[3], options={"task_id": msg[2]})
                return ("obs", obs, 0.0, False, False, info)
            obs, reward, terminated, truncated, info = self.env.step(msg[1])
            return ("obs", obs, float(reward), bool(terminated), bool(truncated), info)
        except Exception as err:
            return ("error", f"{type(err).__name__}: {err}", traceback.format_exc())

    def close(self) -> None:
        for built in self.envs.values():
            built.close()


def _worker_main(conn: Connection) -> None:
    """Serve env requests from the pipe until told to close."""
    host = EnvHost()
    while True:
        try:
            msg = conn.recv()
        except (EOFError, KeyboardInterrupt):
            break
        if msg[0] == "close":
            break
        conn.send(host.handle(msg))
    host.close()


class Worker(ABC):
    """One env host the pool talks to, and the episode it is running; subclasses carry the requests."""

    def __init__(self) -> None:
        self.deadline = float("inf")
        self.job: Job | None = None
        self.agent: Agent | None = None
        self.episode: Episode | None = None
        self.t0 = 0.0

    @abstractmethod
    def handles(self) -> list[Any]:
        """What the pool waits on for this worker's reply or death."""

    @abstractmethod
    def send(self, msg: tuple, timeout: float) -> None:
        """Send a request; its reply is due within `timeout` seconds."""

    @abstractmethod
    def receive(self, ready: list[Any]) -> tuple:
        """The reply to the last request, or ("error", reason) if the worker died or missed its deadline."""

    @abstractmethod
    def kill(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...


class _ProcessWorker(Worker):
    """A worker process and its pipe."""

    def __init__(self, ctx: Any):
        super().__init__()
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child,), daemon=True)
        self.process.start()
        child.close()

    def handles(self) -> list[Any]:
        return [self.conn, self.process.sentinel]

    def send(self, msg: tuple, timeout: float) -> None:
        self.deadline = time.monotonic() + timeout
        try:
            self.conn.send(msg)
        except OSError:  # it died while idle: expire now, so the next wait reports it as dead
            self.deadline = time.monotonic()

    def receive(self, ready: list[Any]) -> tuple:
        if self.conn in ready or self.conn.poll():
            try:
                return self.conn.recv()
            except (EOFError, OSError):  # the pipe closed: the process is dying
                ready = [*ready, self.process.sentinel]
        if self.process.sentinel in ready or not self.process.is_alive():
            self.process.join(5)  # the sentinel fires as the process exits, a moment before it is reaped
            return ("error", f"worker died (exit code {self.process.exitcode})")
        return ("error", "worker timed out")

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()

    def close(self) -> None:
        try:
            self.conn.send(("close",))
        except OSError:
            pass
        self.process.join(5)
        self.kill()


class WorkerFailure(Exception):
    """A worker died, hung past its deadline, or its env raised."""


class Pool:
    """`workers` env processes. Use as a context manager; `task_ids` then `run` as often as needed."""

    def __init__(self, workers: int = 1, step_timeout: float = 60.0, setup_timeout: float = 600.0,
                 start_method: str = "spawn", gather_s: float = 0.02):
        self.size = max(1, int(workers))
        self.gather_s = float(gather_s)
        self.step_timeout = float(step_timeout)
        self.setup_timeout = float(setup_timeout)
        self.ctx = mp.get_context(start_method)
        self.workers: list[Worker] = []

    def __enter__(self) -> Pool:
        self.workers = [self._spawn() for _ in range(self.size)]
        return self

    def __exit__(self, *exc: object) -> None:
        for worker in self.workers:
            worker.close() if exc[0] is None else worker.kill()
        self.workers = []

    def _spawn(self) -> Worker:
        return _ProcessWorker(self.ctx)

    def _wait(self, workers: list[Worker], timeout: float) -> list[Any]:
        """The handles of `workers` that are ready (a reply or a death), waiting at most `timeout` s."""
        return wait([handle for worker in workers for handle in worker.handles()], timeout=timeout)

    def _replace(self, worker: Worker) -> Worker:
        worker.kill()
        fresh = self._spawn()
        self.workers[self.workers.index(worker)] = fresh
        return fresh

    def _receive(self, worker: Worker) -> tuple:
        """The worker's reply; WorkerFailure (and a replaced worker) if it died, hung or raised."""
        return self._read(worker, self._wait([worker], max(0.0, worker.deadline - time.monotonic())))

    def _read(self, worker: Worker, ready: list[Any]) -> tuple:
        msg = worker.receive(ready)
        if msg[0] != "error":
            return msg
        self._replace(worker)  # it died or hung, or its env raised and its state is not trusted
        raise WorkerFailure(msg[1])

    def task_ids(self, specs: Iterable[EnvSpec]) -> dict[str, list[str]]:
        """The split's task ids of each spec, asked of the workers in parallel.

        This builds the envs before any episode starts. When they fit in a worker's cache every
        worker builds every env, so no episode later waits for a (possibly slow) build.
        """
        unique = list({spec.key: spec for spec in specs}.values())
        if len(unique) <= ENV_CACHE:
            shares = [unique for _ in self.workers]
        else:
            shares = [unique[i::self.size] for i in range(self.size)]
        result: dict[str, list[str]] = {}
        for turn in range(max(len(share) for share in shares)):
            asked = [(worker, share[turn]) for worker, share in zip(self.workers, shares, strict=True)
                     if turn < len(share)]
            for worker, spec in asked:
                worker.send(("ids", spec), self.setup_timeout)
            for worker, spec in asked:
                try:
                    result[spec.key] = self._receive(worker)[1]
                except WorkerFailure as err:
                    raise WorkerFailure(f"building {spec.env_id} failed: {err}") from err
        return result

    def run(self, jobs: Iterable[Job], on_done: Callable[[Episode], None]) -> None:
        """Run every job; `on_done` gets each episode (status "ok" or "error") as it ends."""
        queue = deque(jobs)
        while queue or any(w.job is not None for w in self.workers):
            for worker in self.workers:
                if worker.job is None and queue:
                    self._start(worker, queue.popleft())
            busy = [w for w in self.workers if w.job is not None]
            deadline = min(w.deadline for w in busy)
            ready = self._gather(busy, self._wait(busy, max(0.0, deadline - time.monotonic())))
            now = time.monotonic()
            waiting: list[tuple[Worker, str, dict[str, Any]]] = []
            for worker in busy:
                if not (any(handle in ready for handle in worker.handles()) or now >= worker.deadline):
                    continue
                job, episode = worker.job, worker.episode
                try:
                    msg = self._read(worker, ready)
                except WorkerFailure as err:
                    self._clear(worker)
                    self._fail(job, episode, str(err), queue, on_done)
                    continue
                try:
                    ended = self._record(worker, msg)
                except Exception as err:  # the agent's reset failed
                    self._clear(worker)
                    self._fail(job, episode, f"agent error: {type(err).__name__}: {err}", queue, on_done)
                    continue
                if ended:
                    self._clear(worker)
                    on_done(episode)
                else:
                    waiting.append((worker, msg[1], msg[5]))
            self._act(waiting, queue, on_done)

    def _gather(self, busy: list[Worker], ready: list[Any]) -> list[Any]:
        """`ready` plus the replies of the other busy workers that arrive within `gather_s`.

        Env replies come milliseconds apart while one generation takes far longer, so the agents
        that wait together are stepped by one batched `act_batch` call instead of one each."""
        end = time.monotonic() + self.gather_s
        ready = list(ready)
        pending = [w for w in busy if not any(handle in ready for handle in w.handles())]
        while pending and ready and (left := end - time.monotonic()) > 0:
            more = self._wait(pending, left)
            if not more:
                break
            ready += more
            pending = [w for w in pending if not any(handle in more for handle in w.handles())]
        return ready

    def _start(self, worker: Worker, job: Job) -> None:
        worker.job, worker.agent = job, copy.copy(job.agent)
        worker.episode = Episode(job, started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        worker.t0 = time.monotonic()
        worker.send(("reset", job.spec, job.task_id, job.env_seed), self.setup_timeout)

    @staticmethod
    def _clear(worker: Worker) -> None:
        worker.job = worker.agent = worker.episode = None
        worker.deadline = float("inf")

    @staticmethod
    def _record(worker: Worker, msg: tuple) -> bool:
        """Add a reset or step reply to the worker's episode; True when the episode has ended."""
        _, obs, reward, terminated, truncated, info = msg
        episode = worker.episode
        if not episode.started:  # the reply to the reset this worker was sent (its info may be {})
            episode.started = True
            episode.first_info = info
            worker.agent.reset(info.get("task", ""), info, seed=worker.job.agent_seed)
            return False
        entry = episode.transcript[-1]
        entry.update(obs=obs, reward=reward, action_valid=bool(info.get("action_valid", True)),
                     progress=float(info.get("progress", 0.0)),
                     subgoal_completed=bool(info.get("subgoal_completed", False)))
        for key in ("switch", "format_valid"):  # plan-execute wrappers report these
            if key in info:
                entry[key] = bool(info[key])
        noun_source = (info.get("score_breakdown") or {}).get("noun_source")
        if noun_source:  # WebShop after Buy: which noun finder scored the purchase
            entry["noun_source"] = str(noun_source)
        episode.last_info = info
        episode.terminated, episode.truncated = bool(terminated), bool(truncated)
        episode.wall_s = time.monotonic() - worker.t0
        return terminated or truncated

    def _act(self, waiting: list[tuple[Worker, str, dict[str, Any]]], queue: deque[Job],
             on_done: Callable[[Episode], None]) -> None:
        groups: dict[Any, list[tuple[Worker, str, dict[str, Any]]]] = {}
        for item in waiting:
            groups.setdefault(item[0].agent.batch_key(), []).append(item)
        for group in groups.values():
            agents = [w.agent for w, _, _ in group]
            try:
                actions = type(agents[0]).act_batch(agents, [o for _, o, _ in group], [i for _, _, i in group])
            except Exception as err:  # the agent (or its backend) failed: these episodes fail
                for worker, _, _ in group:
                    job, episode = worker.job, worker.episode
                    self._clear(worker)
                    self._fail(job, episode, f"agent error: {type(err).__name__}: {err}", queue, on_done)
                continue
            for (worker, _, _), action in zip(group, actions, strict=True):
                worker.episode.transcript.append({"action": action})
                worker.send(("step", action), self.step_timeout)

    @staticmethod
    def _fail(job: Job, episode: Episode, reason: str, queue: deque[Job],
              on_done: Callable[[Episode], None]) -> None:
        job.attempts += 1
        if job.attempts < MAX_ATTEMPTS:
            queue.appendleft(job)
            return
        episode.status, episode.error = "error", reason
        on_done(episode)
