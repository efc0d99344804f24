"""The Ray backend (`--backend ray`): env workers are Ray actors, on this machine or across a cluster.

Only the transport differs from the local pool: agents, seeding, retries and the results store stay
in this process (the driver), and each actor holds the same `EnvHost` a local worker process does, so
a Ray sweep plays and stores exactly the episodes a local sweep does. An actor that dies (its process
or its node lost) or misses its deadline is killed and replaced, and its episode retried, as a local
worker is. Each actor asks for one CPU, so Ray spreads the workers over the cluster's nodes; every
node needs the package installed (the Docker images) and the env data it plays.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import ray
from ray.exceptions import RayActorError, RayError

from harness.errors import HarnessError
from harness.runner import EnvHost, Pool, Worker


@ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)  # the pool retries episodes, not Ray
class EnvActor:
    """An `EnvHost` in a Ray worker process."""

    def __init__(self) -> None:
        self.host = EnvHost()

    def handle(self, msg: tuple) -> tuple:
        return self.host.handle(msg)

    def close(self) -> None:
        self.host.close()


class _ActorWorker(Worker):
    """An actor and the reference to the reply it owes."""

    def __init__(self) -> None:
        super().__init__()
        self.actor = EnvActor.remote()
        self.pending: ray.ObjectRef | None = None

    def handles(self) -> list[Any]:
        return [] if self.pending is None else [self.pending]

    def send(self, msg: tuple, timeout: float) -> None:
        self.deadline = time.monotonic() + timeout
        self.pending = self.actor.handle.remote(msg)  # never raises: a dead actor fails the reference

    def receive(self, ready: list[Any]) -> tuple:
        ref, self.pending = self.pending, None
        if ref is None or (ref not in ready and not ray.wait([ref], timeout=0)[0]):
            return ("error", "worker timed out")
        try:
            return ray.get(ref)
        except RayActorError as err:
            return ("error", f"worker died ({type(err).__name__})")
        except RayError as err:
            return ("error", f"worker failed ({type(err).__name__})")

    def kill(self) -> None:
        ray.kill(self.actor, no_restart=True)

    def close(self) -> None:
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

    def __init__(self, workers: int = 1, step_timeout: float = 60.0, setup_timeout: float = 600.0,
                 start_method: str = "spawn", address: str | None = None):
        super().__init__(workers, step_timeout, setup_timeout, start_method)  # start_method: unused by actors
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

    def _spawn(self) -> Worker:
        return _ActorWorker()

    def _wait(self, workers: list[Worker], timeout: float) -> list[Any]:
        refs = [handle for worker in workers for handle in worker.handles()]
        if not refs:
            return []
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:  # take every reply already in, so the agents batch them together
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        return ready
