"""The Ray backend (`--backend ray`): env hosts are Ray actors, on this machine or across a cluster.

Only the transport differs from the local pool: agents, seeding, retries and the results store stay
in this process (the driver), and each actor holds the same `EnvHost` (many envs) a local host
process does, so a Ray sweep plays and stores exactly the episodes a local sweep does. An actor that
dies (its process or its node lost) or misses its deadline is killed and replaced, and its episodes
retried, as a local host's are. Each actor asks for one CPU, so Ray spreads the hosts over the
cluster's nodes; every
node needs the package installed (the Docker images) and the env data it plays.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Callable

import ray
from ray.exceptions import RayActorError, RayError

from harness.errors import HarnessError
from harness.runner import EnvHost, Host, Pool


@ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)  # the pool retries episodes, not Ray
class EnvActor:
    """An `EnvHost` in a Ray worker process."""

    def __init__(self) -> None:
        self.host = EnvHost()

    def handle(self, msg: tuple) -> tuple:
        return self.host.handle(msg)

    def close(self) -> None:
        self.host.close()


class _ActorHost(Host):
    """An actor, and a task that hands its replies to the pool in the order they were asked for
    (an actor runs its calls one at a time, in order, as a host process does)."""

    def __init__(self) -> None:
        super().__init__()
        self.actor = EnvActor.remote()
        self.refs: deque[ray.ObjectRef] = deque()
        self.arrived = asyncio.Event()
        self.collector: asyncio.Task | None = None

    def attach(self, loop: asyncio.AbstractEventLoop, on_death: Callable[[Host], None]) -> None:
        super().attach(loop, on_death)
        self.arrived = asyncio.Event()
        self.collector = loop.create_task(self._collect())

    def detach(self) -> None:
        if self.collector is not None:
            self.collector.cancel()
            self.collector = None
        super().detach()

    def _send(self, msg: tuple) -> None:
        self.refs.append(self.actor.handle.remote(msg))  # never raises: a dead actor fails the reference
        self.arrived.set()

    async def _collect(self) -> None:
        while True:
            while not self.refs:
                self.arrived.clear()
                await self.arrived.wait()
            try:
                reply = await self.refs[0]
            except RayActorError as err:
                self._die(f"worker died ({type(err).__name__})")
                return
            except RayError as err:
                self._die(f"worker failed ({type(err).__name__})")
                return
            self.refs.popleft()
            self._deliver(reply)

    def kill(self) -> None:
        self.detach()
        ray.kill(self.actor, no_restart=True)

    def close(self) -> None:
        self.detach()
        try:
            ray.get(self.actor.close.remote(), timeout=5)
        except RayError:  # dead or stuck: killing it is all that is left
            pass
        self.kill()


def check_reachable(address: str) -> None:
    """Fail in seconds, not after minutes of Ray's retries, when a host:port answers nothing."""
    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return  # "auto" and ray:// client addresses: Ray resolves them
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as err:
        raise HarnessError(f"cannot reach a Ray cluster at {address}: {err.strerror or err}") from err


class RayPool(Pool):
    """`workers` env actors. Joins the cluster at `address`, or starts a local Ray (stopped on exit).

    A Ray already initialised in this process (a test's, or a caller's) is used as it is.
    """

    def __init__(self, workers: int | None = None, step_timeout: float = 60.0, setup_timeout: float = 600.0,
                 start_method: str = "spawn", concurrency: int = 1, address: str | None = None):
        super().__init__(workers, step_timeout, setup_timeout, start_method, concurrency)  # start_method: unused
        self.address = address
        self.started = False

    def __enter__(self) -> RayPool:
        if not ray.is_initialized():
            if self.address:
                check_reachable(self.address)
            try:
                ray.init(address=self.address, include_dashboard=False)
            except (ConnectionError, ValueError, RuntimeError) as err:
                raise HarnessError(f"cannot start or join Ray at {self.address or 'a new local instance'}: "
                                   f"{err}") from err
            self.started = True
        cpus = ray.cluster_resources().get("CPU", 0)
        if self.size > cpus:
            self._shutdown()
            raise HarnessError(f"--workers {self.size} needs {self.size} CPUs (one per env actor); "
                               f"the Ray cluster has {cpus:g}")
        super().__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            super().__exit__(*exc)
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        if self.started:
            ray.shutdown()
            self.started = False

    def _spawn(self) -> Host:
        return _ActorHost()
