"""Runs episodes of agents on envs: every episode its own coroutine, envs in a few host processes.

An episode advances as soon as its own action is ready (no wave waits for the slowest reply), so an
LLM server sees up to `concurrency` requests in flight all the time. Envs live in `workers` host
processes, each keeping many envs (the ALFWorld engine is not thread-safe, and a crashed or hung
engine must not take the run down); agents live in this process, in one asyncio event loop.

A host answers its requests in the order they came. Each request has a deadline counted from when
the host starts on it; a host that dies or misses a deadline is replaced. The episode whose request
it was working on is retried once, then reported as an error; the other episodes it held restart
from their reset without using up their retry. An env that raises fails only its own episode.
A `Host` carries requests to an `EnvHost`: here a local process over a pipe; `harness.ray_backend`
subclasses `Pool` with Ray actors, and the rest of this logic is shared.
Nothing here knows a particular env or agent: it speaks the `info` keys of docs/envs.md and the agent interface.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import multiprocessing as mp
import os
import pickle
import select
import socket
import struct
import time
import traceback
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import pairwise
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import Any

import gymnasium as gym

from agents.base import Agent
from harness.envspec import EnvSpec

MAX_ATTEMPTS = 2  # the first try and one retry
ENV_CACHE = 4  # env configurations a host keeps idle envs of, so a sweep reuses them across runs
WATCH_S = 0.05  # how often deadlines are checked


def default_workers() -> int:
    """Env host processes when the user names none: envs step in well under a millisecond, so a
    few processes keep up with hundreds of episodes; more would only compete with the agents."""
    return max(1, min(4, os.cpu_count() or 1))


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
    """The record of one episode: its reset, each step (action, then the env's reply), and how it
    ended (terminated or truncated by the env, or an error)."""

    job: Job
    started_at: str
    status: str = "ok"
    error: str | None = None
    first_info: dict[str, Any] = field(default_factory=dict)
    last_info: dict[str, Any] = field(default_factory=dict)
    transcript: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0
    terminated: bool = False  # the env's own flags on its last step
    truncated: bool = False
    t0: float = field(default_factory=time.monotonic)

    def begin(self, info: dict[str, Any]) -> None:
        """The reset reply (its info may be {})."""
        self.first_info = info

    def act(self, action: str) -> None:
        self.transcript.append({"action": action})

    def observe(self, reply: tuple) -> bool:
        """Add the env's reply to the last action; True when the episode has ended."""
        _, obs, reward, terminated, truncated, info = reply
        entry = self.transcript[-1]
        entry.update(obs=obs, reward=reward, action_valid=bool(info.get("action_valid", True)),
                     progress=float(info.get("progress", 0.0)),
                     subgoal_completed=bool(info.get("subgoal_completed", False)))
        for key in ("switch", "format_valid"):  # plan-execute wrappers report these
            if key in info:
                entry[key] = bool(info[key])
        noun_source = (info.get("score_breakdown") or {}).get("noun_source")
        if noun_source:  # WebShop after Buy: which noun finder scored the purchase
            entry["noun_source"] = str(noun_source)
        self.last_info = info
        self.terminated, self.truncated = bool(terminated), bool(truncated)
        self.wall_s = time.monotonic() - self.t0
        return self.terminated or self.truncated

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
    """The envs of one host process (or Ray actor): one per episode it is playing, and idle ones.

    Requests: ("ids", spec) / ("reset", slot, spec, task, seed) / ("step", slot, action) /
    ("release", slot). Each gets a reply tuple; an env that raises gives ("error", message,
    traceback) and is closed (its state is not trusted), the others go on.
    """

    def __init__(self) -> None:
        self.idle: OrderedDict[str, list[gym.Env]] = OrderedDict()  # by spec key, least recently used first
        self.playing: dict[int, tuple[str, gym.Env]] = {}

    def _take(self, spec: EnvSpec) -> gym.Env:
        free = self.idle.setdefault(spec.key, [])
        self.idle.move_to_end(spec.key)
        while len(self.idle) > ENV_CACHE:
            for env in self.idle.popitem(last=False)[1]:
                env.close()
        return free.pop() if free else spec.make()

    def _release(self, slot: int) -> None:
        if slot in self.playing:
            key, env = self.playing.pop(slot)
            self.idle.setdefault(key, []).append(env)

    def handle(self, msg: tuple) -> tuple:
        slot = msg[1] if msg[0] in ("reset", "step", "release") else None
        try:
            if msg[0] == "ids":
                env = self._take(msg[1])
                ids = list(env.unwrapped.task_ids)
                env.reset(options={"task_id": ids[0]})  # warm up: engines may load lazily on first reset
                self.idle[msg[1].key].append(env)
                return ("ids", ids)
            if msg[0] == "reset":
                self._release(slot)
                self.playing[slot] = (msg[2].key, self._take(msg[2]))
                obs, info = self.playing[slot][1].reset(seed=msg[4], options={"task_id": msg[3]})
                return ("obs", obs, 0.0, False, False, info)
            if msg[0] == "release":
                self._release(slot)
                return ("released",)
            obs, reward, terminated, truncated, info = self.playing[slot][1].step(msg[2])
            return ("obs", obs, float(reward), bool(terminated), bool(truncated), info)
        except Exception as err:
            if slot in self.playing:
                self.playing.pop(slot)[1].close()
            return ("error", f"{type(err).__name__}: {err}", traceback.format_exc())

    def close(self) -> None:
        for env in [env for envs in self.idle.values() for env in envs] + [e for _, e in self.playing.values()]:
            env.close()


def _host_main(conn: Connection) -> None:
    """Serve env requests from the pipe, in order, until told to close."""
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


class WorkerFailure(Exception):
    """A host died or hung past a deadline, or an env raised.

    `charged` is False for an episode that only shared a host with the one that failed it: it is
    played again without using up its retry."""

    def __init__(self, reason: str, charged: bool = True):
        super().__init__(reason)
        self.charged = charged


@dataclass
class _Request:
    msg: tuple
    timeout: float
    future: asyncio.Future
    sent_at: float


class Host(ABC):
    """The pool's side of one env host: requests in flight, their deadlines, its death.

    Subclasses carry the messages (`_send`) and call `_deliver` with each reply in order, or
    `_die` when the host is gone.
    """

    def __init__(self) -> None:
        self.pending: deque[_Request] = deque()
        self.last_reply_at = 0.0
        self.slots = 0  # episodes placed on this host
        self.failure: tuple[str, Any] | None = None  # why it died, and the slot whose request it was on
        self.loop: asyncio.AbstractEventLoop | None = None
        self.on_death: Callable[[Host], None] | None = None

    def attach(self, loop: asyncio.AbstractEventLoop, on_death: Callable[[Host], None]) -> None:
        """Deliver replies into `loop` from now on; `on_death` hears once that the host is gone."""
        self.loop, self.on_death = loop, on_death

    def detach(self) -> None:
        self.loop = self.on_death = None

    async def request(self, msg: tuple, timeout: float) -> tuple:
        """The host's reply to `msg`; WorkerFailure if it dies or misses the deadline first, or the env raised."""
        reply = await self.submit(msg, timeout)
        if reply[0] == "error":
            raise WorkerFailure(reply[1])
        return reply

    def submit(self, msg: tuple, timeout: float) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        if self.failure is not None:
            future.set_exception(self._failure_for(msg))
            return future
        self.pending.append(_Request(msg, timeout, future, time.monotonic()))
        self._send(msg)
        return future

    def release(self, slot: int) -> None:
        """Return an episode's env to the host's idle envs, without waiting for the reply."""
        if self.failure is None:
            self.submit(("release", slot), 60.0).add_done_callback(lambda f: f.cancelled() or f.exception())

    def overdue(self, now: float) -> bool:
        """The request the host is working on has passed its deadline (counted from when it began)."""
        if not self.pending:
            return False
        head = self.pending[0]
        return now > max(head.sent_at, self.last_reply_at) + head.timeout

    def _deliver(self, reply: tuple) -> None:
        if self.pending:
            self.last_reply_at = time.monotonic()
            request = self.pending.popleft()
            if not request.future.done():
                request.future.set_result(reply)

    def _die(self, reason: str) -> None:
        """The host is gone: fail everything in flight and tell the pool, once."""
        if self.failure is not None:
            return
        head = self.pending[0].msg if self.pending else None
        self.failure = (reason, head[1] if head and head[0] in ("reset", "step") else None)
        while self.pending:
            request = self.pending.popleft()
            if not request.future.done():
                request.future.set_exception(self._failure_for(request.msg))
        on_death = self.on_death
        self.kill()
        if on_death is not None:
            on_death(self)

    def _failure_for(self, msg: tuple) -> WorkerFailure:
        """The failure an episode sees: charged to the one whose request the host was on (to all
        of them when it died between requests, its cause unknown)."""
        reason, culprit = self.failure
        slot = msg[1] if msg[0] in ("reset", "step", "release") else None
        return WorkerFailure(reason, charged=culprit is None or slot == culprit)

    def time_out(self) -> None:
        self._die("worker timed out")

    @abstractmethod
    def _send(self, msg: tuple) -> None: ...

    @abstractmethod
    def kill(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...


class _ProcessHost(Host):
    """A host process and the loop's end of its socket pair, read and written without blocking: a
    request goes out in one system call from the loop (bytes the socket cannot take wait for it to
    become writable), so a host that stops reading never stalls the loop and no thread is woken per
    message. Frames are `multiprocessing.Connection`'s (a big-endian length, then a pickle), so the
    host reads them with `Connection.recv`."""

    def __init__(self, ctx: Any):
        super().__init__()
        ours, child = ctx.Pipe()
        self.process = ctx.Process(target=_host_main, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.sock = socket.socket(fileno=os.dup(ours.fileno()))
        ours.close()
        self.sock.setblocking(False)
        self.incoming, self.outgoing = bytearray(), bytearray()
        self.awaiting_writable = False  # whether the loop watches the socket for room to write

    def attach(self, loop: asyncio.AbstractEventLoop, on_death: Callable[[Host], None]) -> None:
        super().attach(loop, on_death)
        loop.add_reader(self.sock.fileno(), self._readable)
        self._flush()

    def detach(self) -> None:
        if self.loop is not None and self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.loop.remove_writer(self.sock.fileno())
            self.awaiting_writable = False
        super().detach()

    def _readable(self) -> None:
        try:
            while chunk := self.sock.recv(1 << 16):
                self.incoming += chunk
        except BlockingIOError:  # all there is for now
            self._deliver_frames()
            return
        except OSError:
            pass
        self._deliver_frames()  # the pipe closed (recv gave b"" or failed): the process is dying
        self.process.join(5)  # the pipe closes as the process exits, a moment before it is reaped
        self._die(f"worker died (exit code {self.process.exitcode})")

    def _deliver_frames(self) -> None:
        while len(self.incoming) >= 4:
            (size,) = struct.unpack_from("!i", self.incoming)
            start = 4
            if size == -1:  # Connection's header for a payload of 2 GiB or more
                if len(self.incoming) < 12:
                    return
                (size,), start = struct.unpack_from("!Q", self.incoming, 4), 12
            if len(self.incoming) < start + size:
                return
            reply = pickle.loads(self.incoming[start:start + size])
            del self.incoming[:start + size]
            self._deliver(reply)
            if self.failure is not None:
                return

    def _send(self, msg: tuple) -> None:
        payload = ForkingPickler.dumps(msg)
        header = struct.pack("!i", len(payload)) if len(payload) < 2**31 else struct.pack("!iQ", -1, len(payload))
        self.outgoing += header
        self.outgoing += payload
        self._flush()

    def _flush(self) -> None:
        """Write what the socket takes now; wait for it to become writable for the rest."""
        try:
            while self.outgoing:
                del self.outgoing[:self.sock.send(self.outgoing)]
        except BlockingIOError:
            pass
        except OSError:  # the host died: the reader reports it
            self.outgoing.clear()
        if self.loop is not None and self.sock.fileno() >= 0 and bool(self.outgoing) != self.awaiting_writable:
            self.awaiting_writable = bool(self.outgoing)
            if self.awaiting_writable:
                self.loop.add_writer(self.sock.fileno(), self._flush)
            else:
                self.loop.remove_writer(self.sock.fileno())

    def kill(self) -> None:
        self.detach()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.sock.close()

    def close(self) -> None:
        """Ask the host to finish (waiting up to 5 s for it to take the request), then reap it."""
        self.detach()
        self._send(("close",))
        deadline = time.monotonic() + 5.0
        while self.outgoing and time.monotonic() < deadline and self.process.is_alive():
            select.select([], [self.sock], [], 0.1)
            self._flush()
        self.process.join(max(0.0, deadline - time.monotonic()))
        self.kill()


class Pool:
    """`workers` env hosts playing up to `concurrency` episodes at once. Use as a context manager;
    `task_ids` then `run` as often as needed (one event loop serves every call)."""

    def __init__(self, workers: int | None = None, step_timeout: float = 60.0, setup_timeout: float = 600.0,
                 start_method: str = "spawn", concurrency: int = 1):
        self.size = max(1, int(workers or default_workers()))
        self.concurrency = max(1, int(concurrency))
        self.step_timeout = float(step_timeout)
        self.setup_timeout = float(setup_timeout)
        self.ctx = mp.get_context(start_method)
        self.hosts: list[Host] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self._slot_ids = itertools.count()

    def __enter__(self) -> Pool:
        self.loop = asyncio.new_event_loop()
        self.hosts = [self._attached(self._spawn()) for _ in range(self.size)]
        return self

    def __exit__(self, *exc: object) -> None:
        for host in self.hosts:
            host.close() if exc[0] is None else host.kill()
        self.hosts = []
        if self.loop is not None:
            tasks = asyncio.all_tasks(self.loop)  # e.g. a backend's batching loop
            for task in tasks:
                task.cancel()

            async def settle() -> None:
                await asyncio.gather(*tasks, return_exceptions=True)
                await self.loop.shutdown_asyncgens()  # e.g. a backend's HTTP session

            self.loop.run_until_complete(settle())
            self.loop.close()
            self.loop = None

    def _spawn(self) -> Host:
        return _ProcessHost(self.ctx)

    def _attached(self, host: Host) -> Host:
        host.attach(self.loop, self._replace)
        return host

    def _replace(self, dead: Host) -> None:
        """A host died or was killed: a fresh one takes its place for the episodes to come."""
        if dead in self.hosts:
            self.hosts[self.hosts.index(dead)] = self._attached(self._spawn())

    def _host(self) -> Host:
        """The host with the fewest episodes, where the next one is placed."""
        return min(self.hosts, key=lambda host: host.slots)

    async def _watch(self) -> None:
        """Kill hosts that are past a deadline (their episodes then fail and are retried)."""
        while True:
            await asyncio.sleep(WATCH_S)
            now = time.monotonic()
            for host in list(self.hosts):
                if host.overdue(now):
                    host.time_out()

    def _session(self, work: Any) -> Any:
        """Run the coroutine `work` in the pool's loop, with deadlines watched meanwhile."""
        async def watched() -> Any:
            watch = asyncio.ensure_future(self._watch())
            try:
                return await work
            finally:
                watch.cancel()
        return self.loop.run_until_complete(watched())

    def task_ids(self, specs: Iterable[EnvSpec]) -> dict[str, list[str]]:
        """The split's task ids of each spec, asked of the hosts in parallel.

        This builds the envs before any episode starts. When they fit in a host's cache every
        host builds every env, so no episode later waits for a (possibly slow) first build.
        """
        unique = list({spec.key: spec for spec in specs}.values())
        if len(unique) <= ENV_CACHE:
            shares = [unique for _ in self.hosts]
        else:
            shares = [unique[i::self.size] for i in range(self.size)]

        async def ask() -> dict[str, list[str]]:
            asked = [(spec, host.submit(("ids", spec), self.setup_timeout))
                     for host, share in zip(list(self.hosts), shares, strict=True) for spec in share]
            result = {}
            for spec, future in asked:
                try:
                    reply = await future
                except WorkerFailure as err:
                    raise WorkerFailure(f"building {spec.env_id} failed: {err}") from err
                if reply[0] == "error":
                    raise WorkerFailure(f"building {spec.env_id} failed: {reply[1]}")
                result[spec.key] = reply[1]
            return result

        return self._session(ask())

    def run(self, jobs: Iterable[Job], on_done: Callable[[Episode], None]) -> None:
        """Play every job, up to `concurrency` at once; `on_done` gets each episode (status "ok" or
        "error") as it ends, in this thread."""
        queue_ = deque(jobs)

        async def lane() -> None:
            while queue_:
                job = queue_.popleft()
                episode = await self._play(job)
                if episode is None:  # failed, to be played again
                    queue_.appendleft(job)
                else:
                    on_done(episode)

        async def lanes() -> None:
            await asyncio.gather(*(lane() for _ in range(min(self.concurrency, len(queue_)))))

        self._session(lanes())

    async def _play(self, job: Job) -> Episode | None:
        """One attempt at `job`: its episode, or None when it failed and has a retry left."""
        host, slot, agent = self._host(), next(self._slot_ids), copy.copy(job.agent)
        episode = Episode(job, started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        host.slots += 1
        try:
            _, obs, _, _, _, info = await host.request(("reset", slot, job.spec, job.task_id, job.env_seed),
                                                       self.setup_timeout)
            episode.begin(info)
            agent.reset(info.get("task", ""), info, seed=job.agent_seed)
            while True:
                action = await agent.act_async(obs, info)
                episode.act(action)
                reply = await host.request(("step", slot, action), self.step_timeout)
                if episode.observe(reply):
                    return episode
                _, obs, _, _, _, info = reply
        except WorkerFailure as err:
            return self._failed(job, episode, str(err), err.charged)
        except Exception as err:  # the agent (or its backend) failed
            return self._failed(job, episode, f"agent error: {type(err).__name__}: {err}", True)
        finally:
            host.slots -= 1
            host.release(slot)

    @staticmethod
    def _failed(job: Job, episode: Episode, reason: str, charged: bool) -> Episode | None:
        job.attempts += charged
        if job.attempts < MAX_ATTEMPTS:
            return None
        episode.status, episode.error = "error", reason
        return episode
