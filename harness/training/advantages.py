"""Advantage estimators: GAE, HiPER's HAE, and the critic-free group baselines (docs/training.md).

Batch layout for every estimator: B trajectories padded to T turns. `mask[B, T]` marks the real
turns, a prefix of each row. `terminated[B]` says the trajectory ended by termination (done: no
bootstrap); otherwise it was cut off and the return is bootstrapped from `last_values[B]`, the
critic's value of the state after the last real turn (default 0). Every output is 0 on padding.

Everything is vectorised over the batch and the turns: the backward recursions of the papers,
`y_t = x_t + c_t * y_{t+1}`, run as a log-depth scan (`discounted_cumsum`), or, when c is one
constant (GAE), as one product with a cached discount matrix, so there is no Python loop over
trajectories or turns. Inputs are read as constants (detached) through zero-copy views and never
written: advantages and returns are regression targets, never differentiated through.

The scans and `gae`/`hae` do their arithmetic in NumPy on the CPU, in float64 for float64 inputs
and in float32 otherwise (half types included), and return tensors of the input's dtype on its
device. At these sizes (B x T ~ 10^4) the cost is per-operation dispatch, about 1 us for a NumPy
call against about 5 us for a torch call on our 2-core CPU, so masks are turned into 0/1 floats
once (float products are cheaper than bool ones) and temporaries are few. A GPU caller pays one
small copy each way.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

GroupIds = Tensor | Sequence[Hashable]


def _compute_dtype(like: Tensor) -> torch.dtype:
    """float64 for float64 values, else float32 (also for half types, which NumPy lacks)."""
    return torch.float64 if like.dtype == torch.float64 else torch.float32


def _numpy(x: Tensor, dtype: torch.dtype) -> np.ndarray:
    """`x` as a NumPy array of `dtype` on the CPU; no copy when it already is one."""
    return (x if x.dtype == dtype else x.to(dtype)).numpy(force=True)


def _tensor(x: np.ndarray, like: Tensor) -> Tensor:
    """`x` as a tensor of `like`'s device and dtype."""
    return torch.from_numpy(x).to(like.device, like.dtype)


def _float_mask(mask: Tensor, like: np.ndarray) -> np.ndarray:
    """The bool mask as 0/1 of `like`'s dtype (float products are cheaper than bool-float ones)."""
    return _numpy(mask, torch.bool).astype(like.dtype)


def _shift(x: np.ndarray) -> np.ndarray:
    """`x[..., t + 1]` at turn t, 0 at the last column (one contiguous copy of the flattened rows)."""
    out = np.empty_like(x)
    out.reshape(-1)[:-1] = x.reshape(-1)[1:]
    out[..., -1] = 0.0
    return out


def _add_bootstrap(v_next: np.ndarray, m: np.ndarray, m_next: np.ndarray, terminated: Tensor,
                   last_values: Tensor | None) -> None:
    """Add the value after each row's last real turn to `v_next` (in place) at that turn: 0 if the
    row terminated or `last_values` is None, else `last_values`. `m_next` is `_shift(m)`."""
    if last_values is not None:
        end = np.where(_numpy(terminated, torch.bool), 0.0, _numpy(last_values, _compute_dtype(last_values)))
        last_turn = m - m_next
        last_turn *= end[:, None].astype(v_next.dtype, copy=False)
        v_next += last_turn


def _scan(y: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Solve `y_t = x_t + c_t * y_{t+1}` backwards along the last axis, in place: `y` holds x on
    entry and y on return; `c` is overwritten. Both C-contiguous, of the same shape.

    Doubling scan: after the step with span `n`, `y_t` holds the sum over `k < t + 2n` and `c_t`
    the product over `s < t + 2n`, so ceil(log2 T) steps cover a row. The steps run on the
    flattened arrays, where a shift by `n` turns is one contiguous slice: setting `c` to 0 on each
    row's last turn (where it multiplies y_T = 0, so the result is unchanged) zeroes every product
    that would reach into the next row.
    """
    c[..., -1] = 0.0
    flat_y, flat_c = y.reshape(-1), c.reshape(-1)
    n, T = 1, y.shape[-1]
    while n < T:
        flat_y[:-n] += flat_y[n:] * flat_c[:-n]
        if 2 * n < T:
            flat_c[:-n] = flat_c[:-n] * flat_c[n:]
        n *= 2
    return y


def discounted_cumsum(x: Tensor, c: Tensor) -> Tensor:
    """Solve `y_t = x_t + c_t * y_{t+1}` backwards along the last axis, with `y_T = 0`.

    That is `y_t = sum_{k>=t} (prod_{s=t}^{k-1} c_s) x_k`. Zeros in `c` (a recursion reset) need
    no special case. Returns a tensor like `x`; the inputs are not modified.
    """
    dtype = _compute_dtype(x)
    return _tensor(_scan(_numpy(x, dtype).copy(), _numpy(c, dtype).copy()), x)


@functools.lru_cache(maxsize=32)
def _discount_matrix(T: int, c: float, dtype: np.dtype) -> np.ndarray:
    """[T, T] matrix `M[k, t] = c^(k - t)` for k >= t, else 0, so that `x @ M` is the discounted
    sum `y_t = sum_{k>=t} c^(k-t) x_k` of each row of x. For a constant c one BLAS product beats
    the scan's log2(T) passes; cached, as a run uses a single (T, c). Read-only."""
    lag = np.arange(T)[:, None] - np.arange(T)[None, :]
    matrix = np.where(lag >= 0, np.float64(c) ** np.maximum(lag, 0), 0.0).astype(dtype)
    matrix.flags.writeable = False
    return matrix


def gae(
    rewards: Tensor,
    values: Tensor,
    mask: Tensor,
    terminated: Tensor,
    gamma: float,
    lam: float,
    last_values: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Generalised Advantage Estimation (Schulman et al. 2016) over turns.

        delta_t = r_t + gamma * V(t+1) - V(t)
        A_t     = delta_t + gamma * lam * A_{t+1}          (A after the last real turn = 0)
        R_t     = A_t + V(t)                               (the lambda-return)

    At the last real turn `V(t+1)` is 0 if the row terminated and `last_values` if it was cut off.
    delta is 0 on padding, so the recursion needs no reset.

    Args:
        rewards, values, mask: [B, T]; `mask` is bool, True on real turns (a prefix of each row).
        terminated: [B] bool.
        gamma, lam: discount and GAE lambda.
        last_values: [B] bootstrap values for truncated rows (default 0).

    Returns:
        (advantages, returns), both [B, T], 0 on padding.
    """
    dtype = _compute_dtype(values)
    V = _numpy(values, dtype)
    m = _float_mask(mask, V)
    V = V * m
    V_next = _shift(V)
    _add_bootstrap(V_next, m, _shift(m), terminated, last_values)
    V_next *= gamma
    delta = _numpy(rewards, dtype) * m
    delta += V_next
    delta -= V
    advantages = delta @ _discount_matrix(m.shape[1], float(gamma * lam), delta.dtype)
    return _tensor(advantages, values), _tensor(advantages + V, values)


class HAEResult(NamedTuple):
    """Output of `hae`, all [B, T] and 0 on padding.

    `adv_high`/`ret_high` are set on boundary turns (the first turn of each segment) and 0 elsewhere.
    """

    adv_low: Tensor
    ret_low: Tensor
    adv_high: Tensor
    ret_high: Tensor
    boundary: Tensor


def hae(
    rewards: Tensor,
    values_low: Tensor,
    values_high: Tensor,
    switch: Tensor,
    mask: Tensor,
    terminated: Tensor,
    gamma: float,
    lam_turn: float,
    lam_seg: float,
    last_values: Tensor | None = None,
) -> HAEResult:
    """Hierarchical Advantage Estimation (HiPER, arXiv 2602.16165; docs/training.md).

    Segment k is the run of turns [b_k, b_{k+1} - 1] (duration d_k) that starts at a boundary:
    a turn with `switch` set, or the first turn. V_end stands for the value after the last real
    turn: 0 if the row terminated, `last_values` if it was cut off (used at both levels).

    Low level (execution), GAE inside each segment only:

        delta_t  = r_t + gamma * Vnext_t - V_low(t)
        Vnext_t  = V_low(t+1)      inside the segment
                 = V_high(b_{k+1}) at the segment's last turn (V_end after the last real turn)
        A_low_t  = delta_t + gamma * lam_turn * A_low_{t+1}     (reset at each segment end)
        R_low_t  = A_low_t + V_low(t)

    High level (planning), semi-Markov GAE over segments:

        R_k      = sum_{j<d_k} gamma^j r_{b_k+j}
        delta_k  = R_k + gamma^{d_k} V_high(b_{k+1}) - V_high(b_k)     (V_end after the last segment)
        A_high_k = delta_k + gamma^{d_k} * lam_seg * A_high_{k+1}
        R_high_k = A_high_k + V_high(b_k)

    Unrolled over turns, A_high_k = e_{b_k} + ... with the per-turn recursion

        e_t = r_t + gamma * [t ends a segment] * Vnext_t - [t is a boundary] * V_high(t)
        G_t = e_t + gamma * (lam_seg if t+1 is a boundary else 1) * G_{t+1},   A_high_k = G_{b_k},

    which is how it is computed here: the weight of turn j in A_high_k is gamma^(j - b_k) times
    lam_seg per boundary crossed, exactly the gamma^{d_k} lam_seg products above.

    Args:
        rewards, values_low, values_high: [B, T] per-turn rewards and the two critics.
        switch: [B, T] bool, the turn starts a new segment (the first turn always does).
        mask: [B, T] bool, real turns (a prefix of each row).
        terminated: [B] bool.
        gamma, lam_turn, lam_seg: discount, low-level lambda, high-level lambda.
        last_values: [B] bootstrap value for truncated rows (default 0).
    """
    dtype = _compute_dtype(values_low)
    V_low = _numpy(values_low, dtype)
    m = _float_mask(mask, V_low)
    bd = _float_mask(switch, V_low) * m  # boundary turns, as 0/1
    bd[:, 0] = m[:, 0]
    m_next = _shift(m)
    inside_next = m_next - _shift(bd)  # turn t + 1 is a real turn of t's segment
    V_low = V_low * m
    V_high = _numpy(values_high, dtype) * m
    r = _numpy(rewards, dtype) * m
    # gamma times the value of turn t + 1 by the critic that values it from t (V_high at a boundary)
    V_start = V_high - V_low
    V_start *= bd
    V_start += V_low
    gV_next = _shift(V_start)
    _add_bootstrap(gV_next, m, m_next, terminated, last_values)
    gV_next *= gamma

    # both levels in one scan: low resets where the next turn is a boundary, high crosses it with
    # lam_seg. `out` ends as adv_low, adv_high, ret_low, ret_high; the scan runs in its first half.
    out = np.empty((4, *m.shape), V_low.dtype)
    np.add(r, gV_next, out=out[0])
    np.multiply(inside_next, gV_next, out=out[1])
    np.subtract(out[0], out[1], out=out[1])  # the next value only where the segment ends
    out[0] -= V_low
    np.multiply(bd, V_high, out=out[2])
    out[1] -= out[2]
    c = np.empty_like(out[:2])
    np.multiply(inside_next, gamma * lam_turn, out=c[0])
    np.multiply(inside_next, gamma * (1.0 - lam_seg), out=c[1])
    c[1] += gamma * lam_seg
    _scan(out[:2], c)
    out[1] *= bd
    np.add(out[0], V_low, out=out[2])
    np.add(out[1], V_high, out=out[3])
    out[3] *= bd
    adv_low, adv_high, ret_low, ret_high = _tensor(out, values_low).unbind()
    return HAEResult(adv_low, ret_low, adv_high, ret_high, torch.from_numpy(bd > 0).to(mask.device))


def segment_returns(
    rewards: Tensor,
    values_high: Tensor,
    switch: Tensor,
    mask: Tensor,
    terminated: Tensor,
    gamma: float,
    last_values: Tensor | None = None,
) -> Tensor:
    """Discounted return to the segment's end, bootstrapped from the next segment's high value.

        G_t = sum_{j=t}^{e_k} gamma^{j-t} r_j + gamma^{e_k + 1 - t} V_high(b_{k+1})

    for turn t of segment k, whose last turn is e_k (V_end after the last real turn, as in `hae`).
    The released HiPER code's switch advantage is `G_t - V_term(t)` (`switch_advantage_return`).
    It equals `hae(...).ret_low` with lam_turn = 1; [B, T], 0 on padding.
    """
    zeros = torch.zeros_like(values_high)
    return hae(rewards, zeros, values_high, switch, mask, terminated, gamma, 1.0, 1.0, last_values).ret_low


def switch_advantage_return(seg_returns: Tensor, values_term: Tensor, mask: Tensor) -> Tensor:
    """Released-code switch advantage: `G_t - V_term(t)` with G from `segment_returns`; [B, T]."""
    return (seg_returns.detach() - values_term.detach()) * mask.to(seg_returns.dtype)


def switch_advantage_paper(
    switch: Tensor, p_switch: Tensor, values_high: Tensor, values_low_prev: Tensor, mask: Tensor
) -> Tensor:
    """Paper's switch (termination) advantage, [B, T]:

        A_switch_t = (q_t - beta_t) * (V_high(s_t) - V_low(s_t, o_{t-1}))

    q_t = 1 if the policy emitted SWITCH else 0; beta_t = P(SWITCH) under the behaviour policy;
    `values_low_prev` is the low critic at s_t under the previous turn's subgoal o_{t-1}. The first
    turn has no previous subgoal and its switch is forced, so it gets 0, as does padding.
    """
    m = mask.to(values_high.dtype).clone()
    m[:, 0] = 0.0
    q = switch.to(m.dtype)
    return (q - p_switch.detach()) * (values_high.detach() - values_low_prev.detach()) * m


def _group_index(groups: GroupIds, device: torch.device) -> Tensor:
    """Map group ids (a tensor, or a sequence of hashables) to 0..G-1, as a long tensor."""
    if isinstance(groups, Tensor):
        return torch.unique(groups, return_inverse=True)[1].to(device)
    index: dict[Hashable, int] = {}
    return torch.tensor([index.setdefault(g, len(index)) for g in groups], dtype=torch.long, device=device)


def _group_sum(x: Tensor, index: Tensor) -> Tensor:
    """Per-group sums of the 1-D `x`, read back at each member: `out[i] = sum_{j: g_j = g_i} x_j`."""
    n_groups = int(index.max()) + 1 if index.numel() else 0
    return torch.zeros(n_groups, dtype=x.dtype, device=x.device).index_add_(0, index, x)[index]


def _normalise_in_groups(x: Tensor, index: Tensor, normalize_std: bool) -> Tensor:
    """`x - mean(x)` within each group (x and index 1-D), divided by `std + 1e-6` (unbiased) if
    `normalize_std`; members of a group of one get 0."""
    n = _group_sum(torch.ones_like(x), index)
    centred = x - _group_sum(x, index) / n
    if normalize_std:
        centred = centred / ((_group_sum(centred**2, index) / (n - 1).clamp(min=1)).sqrt() + 1e-6)
    return torch.where(n > 1, centred, 0.0)


def grpo(returns: Tensor, groups: GroupIds, normalize_std: bool = True) -> Tensor:
    """GRPO's group-relative advantage (Shao et al. 2024), [B]:

        A_i = (R_i - mean_g R) / (std_g R + 1e-6)     (std unbiased; no division if not normalize_std)

    over the rollouts g that share i's group id; a group of one gets 0.
    """
    return _normalise_in_groups(returns.detach(), _group_index(groups, returns.device), normalize_std)


def rloo(returns: Tensor, groups: GroupIds) -> Tensor:
    """REINFORCE leave-one-out (Ahmadian et al. 2024), [B]:

        A_i = R_i - (1 / (n - 1)) * sum_{j in g, j != i} R_j

    with n the size of i's group; a group of one gets 0.
    """
    returns = returns.detach()
    index = _group_index(groups, returns.device)
    n = _group_sum(torch.ones_like(returns), index)
    baseline = (_group_sum(returns, index) - returns) / (n - 1).clamp(min=1)
    return torch.where(n > 1, returns - baseline, 0.0)


def gigpo(
    rewards: Tensor,
    mask: Tensor,
    groups: GroupIds,
    state_keys: Sequence[Sequence[Hashable]] | Tensor,
    gamma: float,
    step_weight: float = 1.0,
    normalize_std: bool = True,
) -> Tensor:
    """GiGPO (Feng et al. 2025): episode-level plus step-level group advantages, [B, T].

        A[b, t]  = A_ep[b] + step_weight * A_step[b, t]
        A_ep     = grpo(sum_t r[b, t], groups, normalize_std)
        G[b, t]  = sum_{k>=t} gamma^(k-t) r[b, k]
        A_step   = G normalised like grpo within each step group: the valid steps that share a
                   trajectory group and an anchor-state key `state_keys[b][t]`.

    0 on padding; `state_keys[b]` needs an entry for each real turn of row b.
    """
    if isinstance(state_keys, Tensor):
        state_keys = state_keys.tolist()
    mask = mask.bool()
    m = mask.to(rewards.dtype)
    r = rewards.detach() * m
    a_ep = grpo(r.sum(dim=1), groups, normalize_std)
    G = discounted_cumsum(r, torch.full_like(r, gamma))
    group_of_row = _group_index(groups, torch.device("cpu")).tolist()
    rows, cols = mask.nonzero(as_tuple=True)
    steps = [(group_of_row[b], state_keys[b][t]) for b, t in zip(rows.tolist(), cols.tolist(), strict=True)]
    a_step = torch.zeros_like(r)
    a_step[rows, cols] = _normalise_in_groups(G[rows, cols], _group_index(steps, r.device), normalize_std)
    return (a_ep[:, None] + step_weight * a_step) * m
