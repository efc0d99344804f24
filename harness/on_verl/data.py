"""verl's dataset for the `hiper_env` agent loop: one parquet row per episode to play.

    python -m harness.on_verl.data --env HiPER/ALFWorld-v0 --split train --out data/alfworld_train.parquet

A row names its task and env seed in `extra_info` and its agent loop in `agent_name`; its `prompt`
is only a label (verl's dataset needs one), since the loop builds every turn's prompt from the env.
Tasks come in the split's fixed order (`env.unwrapped.task_ids`), repeated up to `--episodes`, with
seeds `--seed`, `--seed + 1`, ...; verl shuffles the rows itself (`data.shuffle`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import gymnasium as gym
import pandas as pd

import hiper_envs
from harness.on_verl import LOOP_NAME


def task_rows(env_id: str, split: str, episodes: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """The rows for `episodes` episodes of `env_id`'s `split` (default: each task once)."""
    env = gym.make(env_id, split=split)
    task_ids = list(env.unwrapped.task_ids)
    env.close()
    count = len(task_ids) if episodes is None else episodes
    if count < 1:
        raise ValueError(f"episodes must be at least 1, got {count}")
    return [{"data_source": env_id, "agent_name": LOOP_NAME,
             "prompt": [{"role": "user", "content": f"{env_id} {split} {task_ids[i % len(task_ids)]}"}],
             "reward_model": {"style": "env", "ground_truth": ""},
             "extra_info": {"task_id": task_ids[i % len(task_ids)], "seed": seed + i, "index": i, "split": split}}
            for i in range(count)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, choices=[i for i in hiper_envs.ENV_IDS if "Browser" not in i])
    parser.add_argument("--split", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--episodes", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        rows = task_rows(args.env, args.split, args.episodes, args.seed)
    except ValueError as error:
        parser.error(str(error))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(args.out)
    print(f"wrote {len(rows)} rows to {args.out}")


if __name__ == "__main__":
    main()
