"""The advantage estimators as the papers write them: one trajectory, one turn at a time.

This is the version to read. Plain Python floats and loops, checked by eye against the equations
in `advantages` (whose docstrings carry them), not fast: `advantages` computes the same numbers
vectorised over the batch, and the tests hold the two equal on random batches (also with
truncated rows and bootstrap values). `bench/advantages_speed.py` times one against the other.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Hashable, Sequence

import torch
from torch import Tensor


def _rows(*tensors: Tensor) -> list[list]:
    return [t.tolist() for t in tensors]


def gae_loop(rewards: Tensor, values: Tensor, mask: Tensor, terminated: Tensor, gamma: float, lam: float,
             last_values: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """GAE, backwards over each row's real turns: (advantages, lambda-returns), [B, T] float64."""
    r_all, v_all, m_all, term = _rows(rewards, values, mask, terminated)
    boot = [0.0] * len(term) if last_values is None else last_values.tolist()
    adv = [[0.0] * len(row) for row in r_all]
    ret = [[0.0] * len(row) for row in r_all]
    for b, (r, v, m) in enumerate(zip(r_all, v_all, m_all, strict=True)):
        L = sum(m)
        a = 0.0
        for t in reversed(range(L)):
            if t == L - 1:
                v_next = 0.0 if term[b] else boot[b]
                a = 0.0
            else:
                v_next = v[t + 1]
            delta = r[t] + gamma * v_next - v[t]
            a = delta + gamma * lam * a
            adv[b][t] = a
            ret[b][t] = a + v[t]
    return torch.tensor(adv, dtype=torch.float64), torch.tensor(ret, dtype=torch.float64)


def segments(switch_row: list[bool], L: int) -> list[int]:
    """Boundaries b_0 = 0 < b_1 < ... of a trajectory of L real turns."""
    return [t for t in range(L) if t == 0 or switch_row[t]]


def hae_loop(rewards: Tensor, values_low: Tensor, values_high: Tensor, switch: Tensor, mask: Tensor,
             terminated: Tensor, gamma: float, lam_turn: float, lam_seg: float,
             last_values: Tensor | None = None) -> dict[str, Tensor]:
    """HAE, segment by segment: adv_low, ret_low (GAE inside each segment), adv_high, ret_high
    (semi-Markov GAE over segments, on boundary turns) and the boundary mask, [B, T]."""
    r_all, vl_all, vh_all, sw_all, m_all, term = _rows(
        rewards, values_low, values_high, switch, mask, terminated
    )
    boot = [0.0] * len(term) if last_values is None else last_values.tolist()
    B, T = len(r_all), len(r_all[0])
    out = {k: [[0.0] * T for _ in range(B)] for k in ("adv_low", "ret_low", "adv_high", "ret_high")}
    boundary = [[False] * T for _ in range(B)]
    for b in range(B):
        r, vl, vh = r_all[b], vl_all[b], vh_all[b]
        L = sum(m_all[b])
        if L == 0:
            continue
        starts = segments(sw_all[b], L)
        ends = starts[1:] + [L]  # b_{k+1}
        v_end = 0.0 if term[b] else boot[b]
        # value of the next segment's start, V_high(b_{k+1}), or the bootstrap after the last turn
        v_high_next = [vh[e] if e < L else v_end for e in ends]
        # low level: GAE inside each segment
        for k, (s, e) in enumerate(zip(starts, ends, strict=True)):
            a = 0.0
            for t in reversed(range(s, e)):
                if t == e - 1:
                    v_next, a = v_high_next[k], 0.0
                else:
                    v_next = vl[t + 1]
                delta = r[t] + gamma * v_next - vl[t]
                a = delta + gamma * lam_turn * a
                out["adv_low"][b][t] = a
                out["ret_low"][b][t] = a + vl[t]
        # high level: SMDP GAE over segments
        a = 0.0
        for k in reversed(range(len(starts))):
            s, e = starts[k], ends[k]
            d = e - s
            R = sum(gamma**j * r[s + j] for j in range(d))
            delta = R + gamma**d * v_high_next[k] - vh[s]
            a = delta + gamma**d * lam_seg * a
            out["adv_high"][b][s] = a
            out["ret_high"][b][s] = a + vh[s]
            boundary[b][s] = True
    result = {k: torch.tensor(v, dtype=torch.float64) for k, v in out.items()}
    result["boundary"] = torch.tensor(boundary)
    return result


def _ids(groups: Tensor | Sequence[Hashable]) -> list:
    return groups.tolist() if isinstance(groups, torch.Tensor) else list(groups)


def grpo_loop(returns: Tensor, groups: Tensor | Sequence[Hashable], normalize_std: bool = True) -> Tensor:
    """(R_i - group mean) / (group std + 1e-6), one episode at a time; 0 in a group of one."""
    R, g = returns.tolist(), _ids(groups)
    members = defaultdict(list)
    for i, gi in enumerate(g):
        members[gi].append(R[i])
    adv = []
    for i, gi in enumerate(g):
        xs = members[gi]
        if len(xs) == 1:
            adv.append(0.0)
            continue
        a = R[i] - statistics.fmean(xs)
        adv.append(a / (statistics.stdev(xs) + 1e-6) if normalize_std else a)
    return torch.tensor(adv, dtype=torch.float64)


def rloo_loop(returns: Tensor, groups: Tensor | Sequence[Hashable]) -> Tensor:
    """R_i minus the mean of the other episodes of its group; 0 in a group of one."""
    R, g = returns.tolist(), _ids(groups)
    adv = []
    for i, gi in enumerate(g):
        others = [R[j] for j in range(len(R)) if g[j] == gi and j != i]
        adv.append(R[i] - statistics.fmean(others) if others else 0.0)
    return torch.tensor(adv, dtype=torch.float64)


def gigpo_loop(rewards: Tensor, mask: Tensor, groups: Tensor | Sequence[Hashable],
               state_keys: Sequence[Sequence[Hashable]], gamma: float, step_weight: float = 1.0,
               normalize_std: bool = True) -> Tensor:
    """Episode-level GRPO plus step-level groups of turns that share a task group and a state key."""
    r_all, m_all = _rows(rewards, mask)
    groups = _ids(groups)
    B, T = len(r_all), len(r_all[0])
    lengths = [sum(m) for m in m_all]
    episode = torch.tensor([sum(r_all[b][: lengths[b]]) for b in range(B)], dtype=torch.float64)
    a_ep = grpo_loop(episode, groups, normalize_std).tolist()
    G = [[0.0] * T for _ in range(B)]
    for b in range(B):
        g = 0.0
        for t in reversed(range(lengths[b])):
            g = r_all[b][t] + gamma * g
            G[b][t] = g
    step_groups = defaultdict(list)
    for b in range(B):
        for t in range(lengths[b]):
            step_groups[(groups[b], state_keys[b][t])].append((b, t))
    a_step = [[0.0] * T for _ in range(B)]
    for members in step_groups.values():
        xs = [G[b][t] for b, t in members]
        for b, t in members:
            if len(xs) > 1:
                a = G[b][t] - statistics.fmean(xs)
                a_step[b][t] = a / (statistics.stdev(xs) + 1e-6) if normalize_std else a
    adv = [[(a_ep[b] + step_weight * a_step[b][t]) if t < lengths[b] else 0.0 for t in range(T)]
           for b in range(B)]
    return torch.tensor(adv, dtype=torch.float64)
