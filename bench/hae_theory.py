"""HAE's claims (docs/training.md), tested exactly on a toy MDP where the subgoal reveals a latent subtask.

    .venv/bin/python bench/hae_theory.py [--samples 20000] [--seed 0] [--instances 100]

## The toy
Finite horizon T = 4 turns, states x in {0, 1, 2} (the turn index t is part of the state), actions
a in {0, 1}, subgoals g in {0, 1}; random transition table P(x'|x, a) and rewards r(x, a) (fixed by
the seed), start in x = 0, gamma = 1. The episode is cut into segments of fixed length (2 x 2 turns,
or 1 x 4); the switch is forced at each segment start, so no switch advantage enters the test.

Policy, tabular two-level softmax with parameters theta = (theta_H, theta_L):
    high level, at a segment start:  pi_H(g | x)    = softmax(theta_H[x])
    low level, at every turn:        pi_L(a | x, g) = softmax(theta_L[x, g]),
with theta_L[x, g, a] = base[x, a] + kappa * (+1 if a == g else -1). With kappa > 0 the subgoal is
a latent subtask ("do a = g"): it tells what the agent will do beyond what the state tells. With
kappa = 0 it carries no information (pi_L and everything after it ignore g).

## The gradient, and what each estimator estimates
J(theta) = E[sum_t r_t]. By enumerating all trajectories tau (prob P(tau), return G_0(tau)):

    grad J = sum_tau P(tau) G_0(tau) grad log P(tau),
    grad log P(tau) = sum_{k} grad log pi_H(g_k | x_{b_k}) + sum_t grad log pi_L(a_t | x_t, g_t).

Both estimators are one-trajectory estimates of this same grad J (the flat agent's output at a
segment start is the pair (g, a), whose log-probability is the sum of the two terms):

  flat GAE (lambda = 1, exact V(t, x) = E[G_t | x_t = x], a critic of the state only):
    g_flat = sum_t [ grad log pi_H(g_t | x_t) [t is a boundary] + grad log pi_L(a_t | x_t, g_t) ] * (G_t - V(t, x_t))

  HAE (lambda_turn = lambda_seg = 1, exact critics V_low(t, x, g) = E[G_t | x_t = x, g_t = g] and
  V_high(t, x) = E[G_t | x_t = x] at segment starts; A from `harness.training.advantages.hae`):
    g_HAE = sum_k grad log pi_H(g_k | x_{b_k}) * A_high_k + sum_t grad log pi_L(a_t | x_t, g_t) * A_low_t,
    A_high_k = G_{b_k} - V_high(x_{b_k})
    A_low_t  = sum_{j=t}^{e_k} r_j + V_high(x_{b_{k+1}}) - V_low(x_t, g_k)      (V_high = 0 after T)

Unbiasedness: E[A_low_t | x_t, g_k, a_t] = Q_L(x_t, g_k, a_t) - V_low(x_t, g_k), because V_high is the
exact value at the next segment start and the future after a segment start depends on its state
only; V_low(x_t, g_k) depends on the context (x_t, g_k) and not on a_t, so it is a valid baseline.
Likewise V(t, x_t) for the flat estimator. So E[g_flat] = E[g_HAE] = grad J exactly. At a segment
start V_high = V, so the high-level terms of the two are identical; the difference is the low level:
HAE replaces the return beyond the segment by its exact expectation, and the state-only baseline
by one that also knows g.

## Variance: what is and is not a theorem
For the advantages the claim is a theorem (law of total variance). Each advantage has mean 0 given
its context, so its variance is its mean square, and for the action tokens

    Var(A_low_t) = E[Var(R_seg + V_high(x_{b_{k+1}}) | x_t, g)] <= E[Var(G_t | x_t, g)] <= E[Var(G_t | x_t)] = Var(A_flat_t):

the first step replaces the return after the segment by its expectation given the segment-end
state, the second conditions on g as well as x; the second is an equality iff V_low(x, g) = V(x)
wherever the policy goes, i.e. iff the subgoal carries no information beyond the state.

For the gradient estimate it is not: the variance-optimal baseline of a score-function term is
E[|grad log pi|^2 G] / E[|grad log pi|^2], not the value, and the turns' terms covary. When g
predicts the action (kappa > 0), the rare action that departs from g has the largest score and a
return that looks like the other subtask's, closer to V(x) than to V_low(x, g); a better baseline
on average can then be worse where the score is large. The bench finds such toys (and the
informative configurations of seed 0 are two): the gradient-variance form of the claim fails there.
It does hold whenever the subgoal is uninformative (the only difference is then the segment-end
bootstrap). "Variance" of the gradient is the trace of the covariance of the one-trajectory estimate.

The Monte Carlo columns draw `--samples` trajectories from the exact trajectory distribution and
report the largest |z| of (mean estimate - grad J) / standard error over the parameters that vary.
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import dataclass

import numpy as np
import torch

from harness.training.advantages import gae, hae

N_STATES, N_ACTIONS, N_SUBGOALS, HORIZON = 3, 2, 2, 4
N_PARAMS = N_STATES * N_SUBGOALS + N_STATES * N_SUBGOALS * N_ACTIONS


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Toy:
    """The MDP and the policy, from a seed; `kappa` sets how much the subgoal says about the actions."""

    seed: int
    segment_length: int  # 2: two segments of 2 turns; 4: one segment
    kappa: float

    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(P[x, a, x'], r[x, a], pi_H[x, g], pi_L[x, g, a])."""
        rng = np.random.default_rng(self.seed)
        P = rng.dirichlet(np.ones(N_STATES), size=(N_STATES, N_ACTIONS))
        r = rng.uniform(0.0, 1.0, size=(N_STATES, N_ACTIONS))
        theta_H = rng.normal(0.0, 1.0, size=(N_STATES, N_SUBGOALS))
        base = rng.normal(0.0, 1.0, size=(N_STATES, 1, N_ACTIONS))
        pull = np.where(np.arange(N_ACTIONS)[None, :] == np.arange(N_SUBGOALS)[:, None], 1.0, -1.0)
        return P, r, softmax(theta_H), softmax(base + self.kappa * pull[None])

    @property
    def boundaries(self) -> np.ndarray:
        return np.arange(HORIZON) % self.segment_length == 0


@dataclass
class Trajectories:
    """Every trajectory of a toy (or a sample of them), [N] / [N, T] arrays."""

    prob: np.ndarray
    x: np.ndarray
    g: np.ndarray  # the current segment's subgoal at each turn
    a: np.ndarray
    r: np.ndarray

    def take(self, index: np.ndarray) -> Trajectories:
        return Trajectories(*(v[index] for v in (self.prob, self.x, self.g, self.a, self.r)))


def enumerate_trajectories(toy: Toy) -> Trajectories:
    P, r, pi_H, pi_L = toy.tables()
    boundary = toy.boundaries
    rows = []
    per_turn = [
        itertools.product(range(N_SUBGOALS) if boundary[t] else [None], range(N_ACTIONS), range(N_STATES))
        for t in range(HORIZON)
    ]
    for choices in itertools.product(*(list(c) for c in per_turn)):
        x, g, prob, xs, gs, acts, rews = 0, None, 1.0, [], [], [], []
        for new_g, a, x_next in choices:
            if new_g is not None:
                g = new_g
                prob *= pi_H[x, g]
            prob *= pi_L[x, g, a] * P[x, a, x_next]
            xs.append(x), gs.append(g), acts.append(a), rews.append(r[x, a])
            x = x_next
        rows.append((prob, xs, gs, acts, rews))
    prob, xs, gs, acts, rews = zip(*rows, strict=True)
    return Trajectories(np.array(prob), np.array(xs), np.array(gs), np.array(acts), np.array(rews))


def returns_to_go(r: np.ndarray) -> np.ndarray:
    return np.cumsum(r[:, ::-1], axis=1)[:, ::-1]


def conditional_mean(values: np.ndarray, weights: np.ndarray, keys: np.ndarray, n_keys: int) -> np.ndarray:
    """E[values | key] for each key in 0..n_keys-1, under the weights."""
    total = np.bincount(keys, weights=weights * values, minlength=n_keys)
    mass = np.bincount(keys, weights=weights, minlength=n_keys)
    return total / np.where(mass > 0, mass, 1.0)


def exact_critics(toy: Toy, every: Trajectories) -> tuple[np.ndarray, np.ndarray]:
    """V[t, x] = E[G_t | x_t = x] and V_low[t, x, g] = E[G_t | x_t = x, g_t = g], by enumeration."""
    G = returns_to_go(every.r)
    V = np.zeros((HORIZON, N_STATES))
    V_low = np.zeros((HORIZON, N_STATES, N_SUBGOALS))
    for t in range(HORIZON):
        V[t] = conditional_mean(G[:, t], every.prob, every.x[:, t], N_STATES)
        keys = every.x[:, t] * N_SUBGOALS + every.g[:, t]
        V_low[t] = conditional_mean(G[:, t], every.prob, keys, N_STATES * N_SUBGOALS).reshape(N_STATES, N_SUBGOALS)
    return V, V_low


def scores(toy: Toy, traj: Trajectories) -> tuple[np.ndarray, np.ndarray]:
    """Per-turn grad log pi_H (0 off segment starts) and grad log pi_L over the 18 parameters, [N, T, 18]."""
    _, _, pi_H, pi_L = toy.tables()
    N = len(traj.prob)
    s_high = np.zeros((N, HORIZON, N_PARAMS))
    s_low = np.zeros((N, HORIZON, N_PARAMS))
    n_high = N_STATES * N_SUBGOALS
    rows = np.arange(N)
    for t in range(HORIZON):
        x, g, a = traj.x[:, t], traj.g[:, t], traj.a[:, t]
        if toy.boundaries[t]:
            start = x * N_SUBGOALS
            for j in range(N_SUBGOALS):  # d log softmax(theta[x])_g / d theta[x, j] = [g == j] - pi(j)
                s_high[rows, t, start + j] = (g == j) - pi_H[x, j]
        start = n_high + (x * N_SUBGOALS + g) * N_ACTIONS
        for j in range(N_ACTIONS):
            s_low[rows, t, start + j] = (a == j) - pi_L[x, g, j]
    return s_high, s_low


def estimates(
    toy: Toy, traj: Trajectories, V: np.ndarray, V_low: np.ndarray
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per estimator (flat GAE, HAE; lambda = 1, exact critics): the one-trajectory gradient
    estimates [N, 18] and the advantages given to the action tokens [N, T] (A_t, or A_low_t)."""
    N = len(traj.prob)
    t = np.arange(HORIZON)[None, :]
    as_tensor = torch.from_numpy
    rewards, mask, done = as_tensor(traj.r), torch.ones(N, HORIZON, dtype=torch.bool), torch.ones(N, dtype=torch.bool)
    values = as_tensor(V[t, traj.x])
    switch = torch.from_numpy(np.broadcast_to(toy.boundaries, (N, HORIZON)).copy())
    adv_flat, _ = gae(rewards, values, mask, done, gamma=1.0, lam=1.0)
    out = hae(rewards, as_tensor(V_low[t, traj.x, traj.g]), values, switch, mask, done, 1.0, 1.0, 1.0)
    s_high, s_low = scores(toy, traj)
    flat = np.einsum("ntp,nt->np", s_high + s_low, adv_flat.numpy())
    hier = np.einsum("ntp,nt->np", s_high, out.adv_high.numpy()) + np.einsum("ntp,nt->np", s_low, out.adv_low.numpy())
    return {"flat GAE": (flat, adv_flat.numpy()), "HAE": (hier, out.adv_low.numpy())}


def exact_gradient(toy: Toy, every: Trajectories) -> np.ndarray:
    s_high, s_low = scores(toy, every)
    return np.einsum("n,n,np->p", every.prob, returns_to_go(every.r)[:, 0], (s_high + s_low).sum(axis=1))


def expected_return(toy: Toy) -> float:
    every = enumerate_trajectories(toy)
    return float(every.prob @ every.r.sum(axis=1))


@dataclass
class Row:
    """One configuration: exact bias and variance of each estimator, and a Monte Carlo check."""

    name: str
    informative: bool  # V_low(t, x, g) differs from V(t, x) somewhere
    exact_bias: dict[str, float]  # max |E[estimate] - grad J|
    variance: dict[str, float]  # trace of the exact covariance
    advantage_variance: dict[str, float]  # E[sum_t A_t^2] of the action tokens' advantages (mean 0)
    high_level_variance: dict[str, float]  # the same, theta_H block only
    mc_max_z: dict[str, float]
    mc_variance: dict[str, float]

    @property
    def ratio(self) -> float:
        return self.variance["HAE"] / self.variance["flat GAE"]

    @property
    def advantage_ratio(self) -> float:
        return self.advantage_variance["HAE"] / self.advantage_variance["flat GAE"]


def analyse(name: str, toy: Toy, samples: int, rng: np.random.Generator) -> Row:
    every = enumerate_trajectories(toy)
    V, V_low = exact_critics(toy, every)
    grad = exact_gradient(toy, every)
    exact = estimates(toy, every, V, V_low)
    drawn = rng.choice(len(every.prob), size=samples, p=every.prob / every.prob.sum())
    sampled = estimates(toy, every.take(drawn), V, V_low)
    n_high = N_STATES * N_SUBGOALS
    bias, variance, adv_var, high, max_z, mc_var = {}, {}, {}, {}, {}, {}
    for key, (est, adv) in exact.items():
        adv_var[key] = float(every.prob @ (adv**2).sum(axis=1))
        mean = every.prob @ est
        centred = est - mean
        bias[key] = float(np.abs(mean - grad).max())
        variance[key] = float(every.prob @ (centred**2).sum(axis=1))
        high[key] = float(every.prob @ (centred[:, :n_high] ** 2).sum(axis=1))
        draws = sampled[key][0]
        stderr = draws.std(axis=0, ddof=1) / np.sqrt(samples)
        moving = stderr > 0  # parameters whose score is never 0 along every sampled trajectory
        max_z[key] = float(np.abs((draws.mean(axis=0) - grad)[moving] / stderr[moving]).max())
        mc_var[key] = float(draws.var(axis=0, ddof=1).sum())
    informative = bool(np.abs(V_low - V[:, :, None]).max() > 1e-9)
    return Row(name, informative, bias, variance, adv_var, high, max_z, mc_var)


CONFIGS = (  # name, segment length, kappa
    ("1 segment x 4 turns, uninformative subgoal", 4, 0.0),
    ("1 segment x 4 turns, informative subgoal", 4, 2.0),
    ("2 segments x 2 turns, uninformative subgoal", 2, 0.0),
    ("2 segments x 2 turns, informative subgoal", 2, 2.0),
)


def run(seed: int, samples: int) -> list[Row]:
    rng = np.random.default_rng(seed + 1)
    return [analyse(name, Toy(seed, length, kappa), samples, rng) for name, length, kappa in CONFIGS]


def rate_no_higher(instances: int, segment_length: int, kappa: float) -> dict[str, tuple[int, float]]:
    """Over random toys (seeds 0..instances-1), for the advantages and for the gradient estimate:
    how many toys have HAE's variance <= flat GAE's, and the worst ratio."""
    ratios: dict[str, list[float]] = {"advantages": [], "gradient": []}
    for seed in range(instances):
        toy = Toy(seed, segment_length, kappa)
        every = enumerate_trajectories(toy)
        V, V_low = exact_critics(toy, every)
        var = {}
        for key, (est, adv) in estimates(toy, every, V, V_low).items():
            var[key] = (every.prob @ (adv**2).sum(axis=1), every.prob @ ((est - every.prob @ est) ** 2).sum(axis=1))
        ratios["advantages"].append(var["HAE"][0] / var["flat GAE"][0])
        ratios["gradient"].append(var["HAE"][1] / var["flat GAE"][1])
    return {k: (int((np.array(v) <= 1.0 + 1e-9).sum()), max(v)) for k, v in ratios.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="toy MDP and policy; the sample uses seed + 1")
    parser.add_argument("--samples", type=int, default=20_000, help="Monte Carlo trajectories per configuration")
    parser.add_argument("--instances", type=int, default=100, help="random toys for the no-higher rate (0: skip)")
    args = parser.parse_args()

    print(f"toy seed {args.seed}, {args.samples} sampled trajectories per configuration; exact = over all trajectories")
    print(f"{'configuration':<46}{'info':>5}{'estimator':>10}{'exact bias':>11}{'MC max|z|':>10}"
          f"{'adv var':>9}{'ratio':>7}{'grad var':>10}{'ratio':>7}{'MC grad var':>12}{'theta_H var':>12}")
    for row in run(args.seed, args.samples):
        for key in ("flat GAE", "HAE"):
            hae_row = key == "HAE"
            print(f"{'' if hae_row else row.name:<46}{'yes' if row.informative else 'no':>5}{key:>10}"
                  f"{row.exact_bias[key]:11.1e}{row.mc_max_z[key]:10.2f}"
                  f"{row.advantage_variance[key]:9.4f}{f'{row.advantage_ratio:7.3f}' if hae_row else '':>7}"
                  f"{row.variance[key]:10.4f}{f'{row.ratio:7.3f}' if hae_row else '':>7}"
                  f"{row.mc_variance[key]:12.4f}{row.high_level_variance[key]:12.4f}")
    if args.instances:
        print(f"\nvar(HAE) <= var(flat GAE), exactly, over {args.instances} random toys (held / worst ratio):")
        print(f"  {'configuration':<46}{'advantages':>18}{'gradient':>18}")
        for name, length, kappa in CONFIGS:
            rates = rate_no_higher(args.instances, length, kappa)
            cells = "".join(f"{f'{held}/{args.instances} {worst:.3f}':>18}" for held, worst in rates.values())
            print(f"  {name:<46}{cells}")


if __name__ == "__main__":
    main()
