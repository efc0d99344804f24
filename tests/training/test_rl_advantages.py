"""harness.training.advantages against the per-trajectory loops of harness.training.reference,
hand-worked examples, and the identities between HAE and GAE."""

from __future__ import annotations

import pytest
import torch

from harness.training.advantages import (
    discounted_cumsum,
    gae,
    gigpo,
    grpo,
    hae,
    rloo,
    segment_returns,
    switch_advantage_paper,
    switch_advantage_return,
)
from harness.training.reference import gae_loop, gigpo_loop, grpo_loop, hae_loop, rloo_loop


def random_batch(B: int, T: int, p_switch: float, terminated: str, seed: int, empty_row: bool = False):
    """Random rewards and critics, a random real length per row (at least 1), garbage on padding."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[0] = T  # one full row
    if empty_row:
        lengths[-1] = 0
    mask = torch.arange(T)[None, :] < lengths[:, None]
    rand = lambda: torch.randn(B, T, generator=g, dtype=torch.float64)  # noqa: E731
    garbage = ~mask * 1e3
    switch = torch.rand(B, T, generator=g) < p_switch
    switch |= ~mask & (torch.rand(B, T, generator=g) < 0.5)  # switches on padding must be ignored
    term = {"all": torch.ones(B, dtype=torch.bool), "none": torch.zeros(B, dtype=torch.bool)}.get(
        terminated, torch.rand(B, generator=g) < 0.5
    )
    return dict(
        rewards=rand() + garbage,
        values_low=rand() + garbage,
        values_high=rand() + garbage,
        switch=switch,
        mask=mask,
        terminated=term,
        last_values=torch.randn(B, generator=g, dtype=torch.float64),
    )


SETTINGS = [  # (gamma, lam_turn, lam_seg)
    (1.0, 1.0, 0.95),  # the released runs' defaults
    (0.95, 0.9, 0.8),
    (0.9, 0.0, 0.0),
    (0.5, 1.0, 1.0),
]


def test_discounted_cumsum_matches_the_recursion() -> None:
    g = torch.Generator().manual_seed(0)
    for T in (1, 2, 3, 7, 8, 9, 33):
        x = torch.randn(5, T, generator=g, dtype=torch.float64)
        c = torch.rand(5, T, generator=g, dtype=torch.float64) * (torch.rand(5, T, generator=g) > 0.2)
        expected = torch.zeros_like(x)
        y = torch.zeros(5, dtype=torch.float64)
        for t in reversed(range(T)):
            y = x[:, t] + c[:, t] * y
            expected[:, t] = y
        c_before = c.clone()
        torch.testing.assert_close(discounted_cumsum(x, c), expected)
        assert torch.equal(c, c_before)  # inputs untouched


@pytest.mark.parametrize("T", [1, 2, 5, 16, 17, 50])
@pytest.mark.parametrize("terminated", ["all", "none", "mixed"])
@pytest.mark.parametrize("gamma,lam_turn,lam_seg", SETTINGS)
def test_gae_matches_loop(T: int, terminated: str, gamma: float, lam_turn: float, lam_seg: float) -> None:
    b = random_batch(12, T, 0.0, terminated, seed=T, empty_row=True)
    args = (b["rewards"], b["values_low"], b["mask"], b["terminated"], gamma, lam_turn)
    adv, ret = gae(*args, last_values=b["last_values"])
    adv_ref, ret_ref = gae_loop(*args, last_values=b["last_values"])
    torch.testing.assert_close(adv, adv_ref)
    torch.testing.assert_close(ret, ret_ref)


@pytest.mark.parametrize("T", [1, 2, 5, 16, 17, 50])
@pytest.mark.parametrize("p_switch", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("terminated", ["all", "none", "mixed"])
@pytest.mark.parametrize("gamma,lam_turn,lam_seg", SETTINGS)
def test_hae_matches_loop(
    T: int, p_switch: float, terminated: str, gamma: float, lam_turn: float, lam_seg: float
) -> None:
    b = random_batch(12, T, p_switch, terminated, seed=T + int(10 * p_switch), empty_row=True)
    args = (b["rewards"], b["values_low"], b["values_high"], b["switch"], b["mask"], b["terminated"])
    out = hae(*args, gamma, lam_turn, lam_seg, last_values=b["last_values"])
    ref = hae_loop(*args, gamma, lam_turn, lam_seg, last_values=b["last_values"])
    assert torch.equal(out.boundary, ref["boundary"])
    for field in ("adv_low", "ret_low", "adv_high", "ret_high"):
        torch.testing.assert_close(getattr(out, field), ref[field], msg=field)


def test_hae_without_last_values_bootstraps_zero() -> None:
    b = random_batch(8, 10, 0.3, "none", seed=3)
    args = (b["rewards"], b["values_low"], b["values_high"], b["switch"], b["mask"], b["terminated"])
    out = hae(*args, 0.9, 0.9, 0.9)
    ref = hae(*args, 0.9, 0.9, 0.9, last_values=torch.zeros(8, dtype=torch.float64))
    for x, y in zip(out, ref, strict=True):
        torch.testing.assert_close(x, y)


def test_hae_hand_worked() -> None:
    # Two segments, [0, 1] and [2, 3]; gamma = lam_turn = 1.
    r = torch.tensor([[0.0, 1.0, 0.0, 2.0]])
    V_low = torch.tensor([[0.5, 0.5, 1.0, 1.0]])
    V_high = torch.tensor([[1.0, 1.0, 2.0, 2.0]])
    switch = torch.tensor([[False, False, True, False]])
    mask = torch.ones(1, 4, dtype=torch.bool)
    # Terminated, lam_seg = 1. Low: t=1 delta = 1 + V_high(2) - 0.5 = 2.5, t=0 delta = 0;
    # t=3 delta = 2 - 1 = 1, t=2 delta = 0. High: segment 1 delta = 2 - 2 = 0; segment 0 delta =
    # R_0 + V_high(2) - V_high(0) = 1 + 2 - 1 = 2.
    out = hae(r, V_low, V_high, switch, mask, torch.tensor([True]), 1.0, 1.0, 1.0)
    torch.testing.assert_close(out.adv_low, torch.tensor([[2.5, 2.5, 1.0, 1.0]]))
    torch.testing.assert_close(out.ret_low, torch.tensor([[3.0, 3.0, 2.0, 2.0]]))
    torch.testing.assert_close(out.adv_high, torch.tensor([[2.0, 0.0, 0.0, 0.0]]))
    torch.testing.assert_close(out.ret_high, torch.tensor([[3.0, 0.0, 2.0, 0.0]]))
    assert out.boundary.tolist() == [[True, False, True, False]]
    # Truncated with last_values = 10, lam_seg = 0.5: t=3 delta = 2 + 10 - 1 = 11; segment 1
    # delta = 2 + 10 - 2 = 10, segment 0 A_high = 2 + 0.5 * 10 = 7.
    out = hae(r, V_low, V_high, switch, mask, torch.tensor([False]), 1.0, 1.0, 0.5, torch.tensor([10.0]))
    torch.testing.assert_close(out.adv_low, torch.tensor([[2.5, 2.5, 11.0, 11.0]]))
    torch.testing.assert_close(out.adv_high, torch.tensor([[7.0, 0.0, 10.0, 0.0]]))


@pytest.mark.parametrize("terminated", ["all", "none", "mixed"])
@pytest.mark.parametrize("gamma,lam_turn,lam_seg", SETTINGS)
def test_switch_on_every_turn(terminated: str, gamma: float, lam_turn: float, lam_seg: float) -> None:
    """Every segment lasts one turn, so:
    adv_high/ret_high = GAE(lam = lam_seg) on V_high, on every real turn (all are boundaries);
    adv_low_t = r_t + gamma * V_high(t+1) - V_low(t), the one-step TD error towards the high
    critic (V_end after the last turn), whatever lam_turn: = GAE(lam = 0) on V_high + V_high - V_low.
    """
    b = random_batch(16, 20, 1.0, terminated, seed=7)
    b["switch"] = torch.ones_like(b["mask"])
    out = hae(
        b["rewards"], b["values_low"], b["values_high"], b["switch"], b["mask"], b["terminated"],
        gamma, lam_turn, lam_seg, b["last_values"],
    )
    common = (b["rewards"], b["values_high"], b["mask"], b["terminated"], gamma)
    adv, ret = gae(*common, lam_seg, b["last_values"])
    torch.testing.assert_close(out.adv_high, adv)
    torch.testing.assert_close(out.ret_high, ret)
    assert torch.equal(out.boundary, b["mask"])
    td_high, _ = gae(*common, 0.0, b["last_values"])
    m = b["mask"].double()
    torch.testing.assert_close(out.adv_low, td_high + (b["values_high"] - b["values_low"]) * m)


@pytest.mark.parametrize("terminated", ["all", "none", "mixed"])
@pytest.mark.parametrize("gamma,lam_turn,lam_seg", SETTINGS)
def test_single_segment(terminated: str, gamma: float, lam_turn: float, lam_seg: float) -> None:
    """No switch: one segment per row, so:
    adv_low/ret_low = GAE(lam = lam_turn) on V_low, with the same end bootstrap (0 if terminated,
    last_values if cut off: the segment ends where the trajectory does);
    adv_high/ret_high sit on the first turn only and equal GAE(lam = 1) on V_high there, i.e. the
    discounted Monte Carlo return (plus gamma^L last_values if cut off) minus V_high(0).
    """
    b = random_batch(16, 20, 0.0, terminated, seed=11)
    b["switch"] = torch.zeros_like(b["mask"])
    out = hae(
        b["rewards"], b["values_low"], b["values_high"], b["switch"], b["mask"], b["terminated"],
        gamma, lam_turn, lam_seg, b["last_values"],
    )
    adv, ret = gae(b["rewards"], b["values_low"], b["mask"], b["terminated"], gamma, lam_turn, b["last_values"])
    torch.testing.assert_close(out.adv_low, adv)
    torch.testing.assert_close(out.ret_low, ret)
    mc, mc_ret = gae(b["rewards"], b["values_high"], b["mask"], b["terminated"], gamma, 1.0, b["last_values"])
    first = torch.zeros_like(mc)
    first[:, 0] = 1.0
    torch.testing.assert_close(out.adv_high, mc * first)
    torch.testing.assert_close(out.ret_high, mc_ret * first)


def test_float32_and_detached() -> None:
    b = random_batch(6, 9, 0.3, "mixed", seed=5)
    f = {k: (v.float().requires_grad_() if v.is_floating_point() else v) for k, v in b.items()}
    out = hae(f["rewards"], f["values_low"], f["values_high"], f["switch"], f["mask"], f["terminated"],
              0.95, 0.9, 0.8, f["last_values"])
    ref = hae_loop(b["rewards"], b["values_low"], b["values_high"], b["switch"], b["mask"], b["terminated"],
                   0.95, 0.9, 0.8, b["last_values"])
    for field in ("adv_low", "ret_low", "adv_high", "ret_high"):
        x = getattr(out, field)
        assert x.dtype == torch.float32 and not x.requires_grad
        torch.testing.assert_close(x.double(), ref[field], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_inputs_are_not_modified(dtype: torch.dtype) -> None:
    """The estimators read the caller's tensors through zero-copy NumPy views; none may be written."""
    b = random_batch(5, 7, 0.4, "mixed", seed=9)
    b = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in b.items()}
    before = {k: v.clone() for k, v in b.items()}
    gae(b["rewards"], b["values_low"], b["mask"], b["terminated"], 0.9, 0.8, b["last_values"])
    hae(b["rewards"], b["values_low"], b["values_high"], b["switch"], b["mask"], b["terminated"],
        0.9, 0.8, 0.7, b["last_values"])
    for k, v in b.items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("terminated", ["all", "none", "mixed"])
def test_segment_returns(terminated: str) -> None:
    """G_t = discounted return to the segment end + V_high(next boundary) = ret_low with lam_turn = 1."""
    b = random_batch(10, 15, 0.3, terminated, seed=2)
    G = segment_returns(b["rewards"], b["values_high"], b["switch"], b["mask"], b["terminated"], 0.9,
                        b["last_values"])
    out = hae(b["rewards"], b["values_low"], b["values_high"], b["switch"], b["mask"], b["terminated"],
              0.9, 1.0, 0.3, b["last_values"])
    torch.testing.assert_close(G, out.ret_low)
    # hand-worked row: segments [0, 1] and [2]; gamma = 0.5, terminated
    G = segment_returns(torch.tensor([[1.0, 2.0, 4.0]]), torch.tensor([[0.0, 0.0, 8.0]]),
                        torch.tensor([[False, False, True]]), torch.ones(1, 3, dtype=torch.bool),
                        torch.tensor([True]), 0.5)
    torch.testing.assert_close(G, torch.tensor([[1 + 0.5 * 2 + 0.25 * 8, 2 + 0.5 * 8, 4.0]]))


def test_switch_advantages() -> None:
    mask = torch.tensor([[True, True, True, False]])
    switch = torch.tensor([[True, True, False, True]])
    p = torch.tensor([[0.9, 0.25, 0.25, 0.5]])
    V_high = torch.tensor([[5.0, 2.0, 1.0, 9.0]])
    V_low_prev = torch.tensor([[7.0, 1.0, 3.0, 9.0]])
    # t=0 forced, t=1: (1 - 0.25)(2 - 1), t=2: (0 - 0.25)(1 - 3), t=3 padding
    expected = torch.tensor([[0.0, 0.75, 0.5, 0.0]])
    torch.testing.assert_close(switch_advantage_paper(switch, p, V_high, V_low_prev, mask), expected)
    assert mask.tolist() == [[True, True, True, False]]  # the caller's mask is not modified
    G = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    V_term = torch.tensor([[1.0, 1.0, 1.0, 7.0]])
    torch.testing.assert_close(switch_advantage_return(G, V_term, mask), torch.tensor([[2.0, 1.0, 0.0, 0.0]]))


def test_grpo_and_rloo_hand_worked() -> None:
    R = torch.tensor([1.0, 2.0, 3.0, 5.0])
    groups = torch.tensor([7, 7, 7, 3])
    # group 7: mean 2, unbiased std 1; group 3 has one member -> 0
    torch.testing.assert_close(grpo(R, groups), torch.tensor([-1 / (1 + 1e-6), 0.0, 1 / (1 + 1e-6), 0.0]))
    torch.testing.assert_close(grpo(R, groups, normalize_std=False), torch.tensor([-1.0, 0.0, 1.0, 0.0]))
    torch.testing.assert_close(rloo(R, groups), torch.tensor([1 - 2.5, 2 - 2.0, 3 - 1.5, 0.0]))
    # equal returns: std 0, advantage 0 (not NaN); string ids work
    torch.testing.assert_close(grpo(torch.tensor([4.0, 4.0]), ["a", "a"]), torch.zeros(2))
    assert grpo(torch.zeros(0), torch.zeros(0, dtype=torch.long)).shape == (0,)


@pytest.mark.parametrize("normalize_std", [True, False])
def test_grpo_rloo_match_loop(normalize_std: bool) -> None:
    g = torch.Generator().manual_seed(1)
    R = torch.randn(40, generator=g, dtype=torch.float64)
    groups = torch.randint(0, 12, (40,), generator=g)
    torch.testing.assert_close(grpo(R, groups, normalize_std), grpo_loop(R, groups, normalize_std))
    torch.testing.assert_close(rloo(R, groups), rloo_loop(R, groups))
    names = [f"task-{i}" for i in groups.tolist()]
    torch.testing.assert_close(grpo(R, names, normalize_std), grpo_loop(R, groups, normalize_std))


def test_gigpo_hand_worked() -> None:
    # Rows 0 and 1 share group "g"; row 2 is alone (length 1). gamma = 0.5.
    r = torch.tensor([[0.0, 1.0], [0.0, 0.0], [3.0, 99.0]])
    mask = torch.tensor([[True, True], [True, True], [True, False]])
    keys = [["s0", "s1"], ["s0", "s2"], ["s0"]]
    s = 0.5 / (2**-0.5 + 1e-6)  # a pair {x, y}: +-|x - y|/2 / (|x - y|/sqrt(2) + 1e-6), here |x - y| = 1
    # episode returns 1 and 0 -> +-s; G row 0 = [0.5, 1], row 1 = [0, 0]; only (g, s0) has two
    # members, with returns 0.5 and 0: +-(0.25 / (0.5 / sqrt 2 + 1e-6)); row 2 is a group of one.
    s0 = 0.25 / (0.5 * 2**-0.5 + 1e-6)
    expected = torch.tensor([[s + s0, s], [-s - s0, -s], [0.0, 0.0]])
    torch.testing.assert_close(gigpo(r, mask, ["g", "g", "h"], keys, 0.5), expected)
    torch.testing.assert_close(
        gigpo(r, mask, ["g", "g", "h"], keys, 0.5, step_weight=0.0), torch.tensor([[s, s], [-s, -s], [0.0, 0.0]])
    )


@pytest.mark.parametrize("normalize_std", [True, False])
def test_gigpo_matches_loop(normalize_std: bool) -> None:
    g = torch.Generator().manual_seed(4)
    B, T = 24, 8
    b = random_batch(B, T, 0.0, "all", seed=4)
    groups = torch.randint(0, 4, (B,), generator=g).tolist()
    keys = torch.randint(0, 3, (B, T), generator=g)  # few states, so step groups form
    out = gigpo(b["rewards"], b["mask"], groups, keys, 0.95, 0.7, normalize_std)
    ref = gigpo_loop(b["rewards"], b["mask"], groups, keys.tolist(), 0.95, 0.7, normalize_std)
    torch.testing.assert_close(out, ref)
