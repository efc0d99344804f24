"""ALFWorld env latency on bundled tasks: reset and step (median, p90), random and expert play.

    .venv/bin/python bench/alfworld_speed.py --episodes 6 --engine textworld

The baseline for the faster engine of a later issue; the figures go in the closing note.
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np

import hiper_envs  # noqa: F401


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def measure(policy: str, episodes: int, split: str, engine: str, max_steps: int) -> dict:
    env = gym.make("HiPER/ALFWorld-v0", split=split, engine=engine, expert=policy == "expert")
    rng = np.random.default_rng(0)
    resets, steps, wins = [], [], 0
    for episode in range(episodes):
        start = time.perf_counter()
        _, info = env.reset(seed=episode)
        resets.append(time.perf_counter() - start)
        for _ in range(max_steps):
            action = info["expert_action"] if policy == "expert" else str(rng.choice(info["admissible_actions"]))
            start = time.perf_counter()
            _, _, terminated, truncated, info = env.step(action)
            steps.append(time.perf_counter() - start)
            if terminated or truncated:
                break
        wins += info["won"]
    env.close()
    return {"policy": policy, "episodes": episodes, "wins": wins, "reset_median_ms": 1e3 * statistics.median(resets),
            "reset_p90_ms": 1e3 * percentile(resets, 90), "steps": len(steps),
            "step_median_ms": 1e3 * statistics.median(steps), "step_p90_ms": 1e3 * percentile(steps, 90)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--split", default="valid_seen")
    parser.add_argument("--engine", default="textworld")
    parser.add_argument("--random-steps", type=int, default=20)
    args = parser.parse_args()
    for policy, max_steps in (("random", args.random_steps), ("expert", 50)):
        r = measure(policy, args.episodes, args.split, args.engine, max_steps)
        print(f"{args.engine:9s} {policy:6s} episodes={r['episodes']} wins={r['wins']} "
              f"reset median {r['reset_median_ms']:.0f} ms p90 {r['reset_p90_ms']:.0f} ms | "
              f"step median {r['step_median_ms']:.1f} ms p90 {r['step_p90_ms']:.1f} ms (n={r['steps']})")


if __name__ == "__main__":
    main()
