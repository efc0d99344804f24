"""`hiper-bench serve-env` over loopback: expert episodes played by OpenEnv's own client, against the
same episodes played in process.

    .venv/bin/python bench/openenv_roundtrip.py [--envs HiPER/ALFWorld-v0 HiPER/WebShop-v0]
        [--episodes 20] [--clients 1 8]

For each env it starts the server (a subprocess, as a user would), then plays `--episodes` expert
episodes (tasks in the split's order, `seed=0`) with N clients at once (threads, one WebSocket
session each), and prints steps/s, the median round trip of one step, and the ratio to the same
episodes stepped in this process (the env's own speed: what the network and JSON cost on top).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gymnasium as gym
from openenv.core import GenericEnvClient

import hiper_envs  # noqa: F401

SPLIT = {"HiPER/ALFWorld-v0": "valid_seen", "HiPER/WebShop-v0": "test", "HiPER/KeyDoor-v0": "valid_seen"}


def in_process(env_id: str, tasks: list[str]) -> tuple[int, float]:
    env = gym.make(env_id, split=SPLIT[env_id], expert=True)
    steps, start = 0, time.perf_counter()
    for task in tasks:
        _, info = env.reset(seed=0, options={"task_id": task})
        done = False
        while not done:
            _, _, terminated, truncated, info = env.step(info["expert_action"])
            steps, done = steps + 1, terminated or truncated
    return steps, time.perf_counter() - start


def over_openenv(url: str, tasks: list[str]) -> tuple[int, list[float]]:
    trips = []
    with GenericEnvClient(base_url=url, message_timeout_s=120).sync() as client:
        for task in tasks:
            result = client.reset(seed=0, options={"task_id": task})
            while not result.done:
                start = time.perf_counter()
                result = client.step({"action": result.observation["info"]["expert_action"]})
                trips.append(time.perf_counter() - start)
    return len(trips), trips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=["HiPER/ALFWorld-v0", "HiPER/WebShop-v0"])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    binary = Path(sys.executable).parent / "hiper-bench"
    print(f"{'env':20} {'clients':>7} {'steps':>6} {'steps/s':>8} {'in-process':>10} {'ratio':>6} {'median trip ms':>14}")
    for env_id in args.envs:
        ids = gym.make(env_id, split=SPLIT[env_id]).unwrapped.task_ids
        tasks = [ids[i % len(ids)] for i in range(args.episodes)]
        local_steps, local_seconds = in_process(env_id, tasks)
        proc = subprocess.Popen([str(binary), "serve-env", env_id, "--split", SPLIT[env_id], "--env-kwargs",
                                 '{"expert": true}', "--port", "0"], stdout=subprocess.PIPE, text=True)
        try:
            url = proc.stdout.readline().split(" on ", 1)[1].split()[0]
            for clients in args.clients:
                shares = [tasks[i::clients] for i in range(clients)]
                start = time.perf_counter()
                with ThreadPoolExecutor(clients) as pool:
                    results = list(pool.map(over_openenv, [url] * clients, shares))
                seconds = time.perf_counter() - start
                steps = sum(n for n, _ in results)
                trips = [t for _, share in results for t in share]
                rate, local_rate = steps / seconds, local_steps / local_seconds
                print(f"{env_id:20} {clients:>7} {steps:>6} {rate:>8.1f} {local_rate:>10.1f} "
                      f"{rate / local_rate:>6.3f} {1000 * statistics.median(trips):>14.2f}", flush=True)
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
