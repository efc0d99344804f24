"""HAE's claims (docs/training.md) on bench/hae_theory.py's toy, seed 0: unbiased with lambda = 1 and
exact critics; the action advantages' variance no higher than flat GAE's, strictly lower when the
subgoal is informative; and the honest caveat that the gradient estimate's variance can be higher."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import hae_theory as ht  # noqa: E402


@pytest.fixture(scope="module")
def rows() -> dict[str, ht.Row]:
    return {row.name: row for row in ht.run(seed=0, samples=20_000)}


def test_exact_gradient_matches_finite_differences() -> None:
    """grad J by enumeration, projected on the direction in which kappa moves the low-level
    logits, equals the central difference of J in kappa."""
    toy = ht.Toy(0, 2, 2.0)
    every = ht.enumerate_trajectories(toy)
    grad = ht.exact_gradient(toy, every)
    # d J / d kappa = sum over theta_L[x, g, a] of dJ/dtheta * (+1 if a == g else -1)
    pull = np.where(np.arange(ht.N_ACTIONS)[None, :] == np.arange(ht.N_SUBGOALS)[:, None], 1.0, -1.0)
    direction = np.concatenate([np.zeros(ht.N_STATES * ht.N_SUBGOALS), np.tile(pull.ravel(), ht.N_STATES)])
    eps = 1e-5
    numeric = (ht.expected_return(ht.Toy(0, 2, 2.0 + eps)) - ht.expected_return(ht.Toy(0, 2, 2.0 - eps))) / (2 * eps)
    assert grad @ direction == pytest.approx(numeric, rel=1e-6, abs=1e-9)


def test_both_estimators_are_unbiased(rows: dict[str, ht.Row]) -> None:
    for row in rows.values():
        for key in ("flat GAE", "HAE"):
            assert row.exact_bias[key] < 1e-12, (row.name, key)
            assert row.mc_max_z[key] < 4.5, (row.name, key)  # 18 parameters x 8 cases at |z| < 4.5


def test_advantage_variance_no_higher_and_strictly_lower_when_informative(rows: dict[str, ht.Row]) -> None:
    for row in rows.values():
        assert row.advantage_ratio <= 1.0 + 1e-12, row.name
        assert row.informative == ("uninformative" not in row.name)
    assert rows["1 segment x 4 turns, uninformative subgoal"].advantage_ratio == pytest.approx(1.0, abs=1e-12)
    assert rows["1 segment x 4 turns, informative subgoal"].advantage_ratio < 0.9
    assert rows["2 segments x 2 turns, informative subgoal"].advantage_ratio < 0.5


def test_gradient_variance_claim_holds_only_for_an_uninformative_subgoal(rows: dict[str, ht.Row]) -> None:
    one_uninformative = rows["1 segment x 4 turns, uninformative subgoal"]
    assert one_uninformative.ratio == pytest.approx(1.0, abs=1e-12)  # the two estimators coincide
    assert rows["2 segments x 2 turns, uninformative subgoal"].ratio < 0.85  # the segment-end bootstrap
    # the honest caveat: with an informative subgoal the gradient estimate can be noisier
    assert rows["1 segment x 4 turns, informative subgoal"].ratio > 1.05
    assert rows["2 segments x 2 turns, informative subgoal"].ratio > 1.0
    for row in rows.values():  # the high-level terms are the same (A_high = G - V at segment starts)
        assert row.high_level_variance["HAE"] == pytest.approx(row.high_level_variance["flat GAE"], rel=1e-12)
        for key in ("flat GAE", "HAE"):  # Monte Carlo agrees with the exact variance
            assert row.mc_variance[key] == pytest.approx(row.variance[key], rel=0.1)
