"""Vectorised advantage estimators against the per-trajectory loops that are their readable reference.

    .venv/bin/python bench/advantages_speed.py [--batch 128 1024] [--turns 50] [--repeats 20]

Times `gae` and `hae` (harness.training.advantages) and the plain-Python loops of
harness.training.reference on the same random batch (both include reading the tensors; the loops
convert to Python lists first, their fastest form) and prints the median wall time of each and the
ratio. Target of issue 6: at least 50x at B=128 trajectories x T=50 turns. The vectorised cost is
mostly per-operation dispatch (a few microseconds per torch call) and barely grows with B, while the
loops grow linearly, so the ratio is also shown at a larger batch.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.training.advantages import gae, hae  # noqa: E402
from harness.training.reference import gae_loop, hae_loop  # noqa: E402


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def random_batch(B: int, T: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
    return dict(
        rewards=torch.randn(B, T, generator=g),
        values_low=torch.randn(B, T, generator=g),
        values_high=torch.randn(B, T, generator=g),
        switch=torch.rand(B, T, generator=g) < 0.2,
        mask=torch.arange(T)[None, :] < lengths[:, None],
        terminated=torch.rand(B, generator=g) < 0.5,
        last_values=torch.randn(B, generator=g),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[128, 1024], help="trajectories B")
    parser.add_argument("--turns", type=int, default=50, help="padded turns T")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs; the median is shown")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    T = args.turns
    print(f"T={T} turns, torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats}")
    print(f"{'estimator':<10}{'B':>6}{'vectorised ms':>15}{'loop ms':>12}{'ratio':>9}")
    for B in args.batch:
        b = random_batch(B, T)
        common = (b["mask"], b["terminated"])
        gae_args = (b["rewards"], b["values_low"], *common, 0.99, 0.95, b["last_values"])
        hae_args = (b["rewards"], b["values_low"], b["values_high"], b["switch"], *common, 1.0, 1.0, 0.95,
                    b["last_values"])
        for name, fast, loop, fn_args in (("gae", gae, gae_loop, gae_args), ("hae", hae, hae_loop, hae_args)):
            t_fast = median_seconds(lambda f=fast, a=fn_args: f(*a), args.repeats)
            t_loop = median_seconds(lambda f=loop, a=fn_args: f(*a), max(3, args.repeats // 4))
            print(f"{name:<10}{B:>6}{1e3 * t_fast:>15.3f}{1e3 * t_loop:>12.2f}{t_loop / t_fast:>8.0f}x")


if __name__ == "__main__":
    main()
