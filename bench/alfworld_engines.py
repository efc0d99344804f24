"""The native ALFWorld engine against the reference (TextWorld) engine: parity, then speed.

    nice .venv/bin/python bench/alfworld_engines.py parity --workers 2 --train-sample 60
    .venv/bin/python bench/alfworld_engines.py speed

`parity` plays every task of the bundled validation splits and a seeded sample of train on both
engines in lockstep (the expert's episode, a scripted tour of the rare actions, and seeded random
episodes with invalid, upper-case and padded commands) and compares every state; it prints the steps compared and the mismatches, and
exits 1 if there is any. `speed` measures, side by side on the same tasks: median reset (engine
built, as for a new task, and reset of a loaded one) and step latency, their ratios, peak RSS per
env, and expert episodes/s through the Gymnasium env on 1 and 2 processes.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import resource
import statistics
import subprocess
import sys
import time

import gymnasium as gym

import hiper_envs  # noqa: F401
from hiper_envs.alfworld.dataset import load_tasks
from hiper_envs.alfworld.engine import make_engine
from hiper_envs.alfworld.engine.parity import Parity, compare_task, random_command
from hiper_envs.alfworld.world import TASK_TYPES


def _parity_job(job: tuple[str, str, int, int]) -> Parity:
    split, task_id, episodes, steps = job
    task = next(t for t in load_tasks(split) if t.task_id == task_id)
    result = compare_task(task, lambda g: make_engine("textworld", g), lambda g: make_engine("native", g),
                          random_episodes=episodes, random_steps=steps)
    return result


def parity(args: argparse.Namespace) -> int:
    jobs = [(split, t.task_id, args.random_episodes, args.random_steps)
            for split in ("valid_seen", "valid_unseen") if split in args.splits for t in load_tasks(split)]
    try:
        train = load_tasks("train") if "train" in args.splits else []
    except FileNotFoundError:
        train = []
        print("train split not bundled yet: validation tasks only")
    sample = random.Random(0).sample(train, min(args.train_sample, len(train)))
    jobs += [("train", t.task_id, args.random_episodes, args.random_steps) for t in sample]
    if args.limit:
        jobs = jobs[:args.limit]
    steps, mismatches, start = 0, [], time.perf_counter()
    with mp.Pool(args.workers) as pool:
        for i, result in enumerate(pool.imap_unordered(_parity_job, jobs), 1):
            steps += result.steps
            mismatches += result.mismatches
            for line in result.mismatches[:3]:
                print("MISMATCH", line, flush=True)
            if i % 10 == 0 or i == len(jobs):
                print(f"{i}/{len(jobs)} tasks, {steps} states compared, {len(mismatches)} mismatches "
                      f"({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"parity: {len(jobs)} tasks ({len(jobs) - len(sample)} validation, {len(sample)} train), "
          f"{steps} states compared, {len(mismatches)} mismatches")
    return 1 if mismatches else 0


def _latency(engine_name: str, tasks, steps: int, loads: int) -> dict:
    builds, resets, step_times = [], [], []
    for task in tasks:
        for _ in range(loads):
            start = time.perf_counter()
            engine = make_engine(engine_name, task.game)
            engine.reset()
            builds.append(time.perf_counter() - start)
        for _ in range(loads):
            start = time.perf_counter()
            state = engine.reset()
            resets.append(time.perf_counter() - start)
        rng = random.Random(0)
        for _ in range(steps):
            command = random_command(rng, state)
            start = time.perf_counter()
            state = engine.step(command)
            step_times.append(time.perf_counter() - start)
    return {"build": statistics.median(builds), "reset": statistics.median(resets),
            "step": statistics.median(step_times), "n_steps": len(step_times)}


def _expert_episodes(engine_name: str, episodes: int, seed: int) -> tuple[float, int]:
    """(episodes/s in this process, wins); the clock starts once the env and its tasks are loaded."""
    env = gym.make("HiPER/ALFWorld-v0", split="valid_unseen", engine=engine_name, expert=True)
    env.unwrapped.task_ids  # noqa: B018 - load the tasks before the clock starts
    won, start = 0, time.perf_counter()
    for episode in range(episodes):
        _, info = env.reset(seed=seed + episode)
        for _ in range(50):
            _, _, terminated, truncated, info = env.step(info["expert_action"])
            if terminated or truncated:
                break
        won += info["won"]
    rate = episodes / (time.perf_counter() - start)
    env.close()
    return rate, won


def _episodes_per_second(engine_name: str, processes: int, episodes: int) -> tuple[float, int]:
    """Summed episodes/s of `processes` processes playing at the same time, and their wins."""
    with mp.get_context("spawn").Pool(processes) as pool:
        results = pool.starmap(_expert_episodes, [(engine_name, episodes, 1000 * i) for i in range(processes)])
    return sum(rate for rate, _ in results), sum(won for _, won in results)


_RSS_PROBE = """
import resource, sys, gymnasium as gym, hiper_envs
from hiper_envs.alfworld.dataset import load_tasks
load_tasks("valid_seen")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
envs = [gym.make("HiPER/ALFWorld-v0", split="valid_seen", engine=sys.argv[1], expert=True) for _ in range(int(sys.argv[2]))]
for i, env in enumerate(envs):
    _, info = env.reset(seed=i)
    for _ in range(10):
        _, _, done, _, info = env.step(info["expert_action"])
        if done:
            break
print(base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _peak_rss_mib(engine_name: str, envs: int) -> tuple[float, float]:
    """(peak RSS of a process with one env, extra peak RSS per further env), MiB."""
    def probe(n: int) -> tuple[int, int]:
        out = subprocess.run([sys.executable, "-c", _RSS_PROBE, engine_name, str(n)], capture_output=True,
                             text=True, check=True).stdout.split()
        return int(out[0]), int(out[1])

    _, one = probe(1)
    _, many = probe(envs)
    return one / 1024, (many - one) / 1024 / (envs - 1)


def speed(args: argparse.Namespace) -> int:
    tasks = load_tasks("valid_seen")
    sample = [next(t for t in tasks if t.spec.task_type == kind) for kind in TASK_TYPES]
    ref = _latency("textworld", sample, args.ref_steps, loads=2)
    nat = _latency("native", sample, args.native_steps, loads=20)
    print(f"tasks: {len(sample)} (one per type, valid_seen); random play incl. invalid commands")
    for name, r in (("textworld", ref), ("native", nat)):
        print(f"{name:9s} build+reset median {1e3 * r['build']:8.2f} ms | reset median {1e3 * r['reset']:8.3f} ms | "
              f"step median {1e3 * r['step']:8.3f} ms (n={r['n_steps']})")
    print(f"ratio     build+reset {ref['build'] / nat['build']:6.0f}x | reset {ref['reset'] / nat['reset']:6.0f}x | "
          f"step {ref['step'] / nat['step']:6.0f}x")
    for name in ("textworld", "native"):
        one, extra = _peak_rss_mib(name, 4)
        print(f"{name:9s} peak RSS: {one:.0f} MiB with one env, +{extra:.1f} MiB per further env")
    for name, episodes in (("textworld", args.ref_episodes), ("native", args.native_episodes)):
        for processes in (1, 2):
            rate, wins = _episodes_per_second(name, processes, episodes)
            print(f"{name:9s} expert episodes/s on {processes} process(es): {rate:8.2f} "
                  f"({wins}/{processes * episodes} won)")
    print(f"bench process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("parity")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--random-episodes", type=int, default=2)
    p.add_argument("--random-steps", type=int, default=20)
    p.add_argument("--train-sample", type=int, default=60)
    p.add_argument("--splits", nargs="+", default=["valid_seen", "valid_unseen", "train"])
    p.add_argument("--limit", type=int, default=0, help="only the first N tasks (0: all)")
    s = sub.add_parser("speed")
    s.add_argument("--ref-steps", type=int, default=40)
    s.add_argument("--native-steps", type=int, default=2000)
    s.add_argument("--ref-episodes", type=int, default=3)
    s.add_argument("--native-episodes", type=int, default=200)
    args = parser.parse_args()
    sys.exit(parity(args) if args.command == "parity" else speed(args))


if __name__ == "__main__":
    main()
