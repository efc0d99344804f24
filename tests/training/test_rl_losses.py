"""harness.training.losses on hand-worked numbers, masks and edge cases."""

from __future__ import annotations

import math
import statistics

import pytest
import torch

from harness.training.losses import (
    clipped_value_loss,
    entropy,
    kl_k3,
    masked_mean,
    masked_whiten,
    plan_execute_advantages,
    ppo_clip_loss,
)
from harness.training.spans import TagTokens


def test_masked_mean_and_whiten() -> None:
    x = torch.tensor([1.0, 2.0, 3.0, 100.0])
    mask = torch.tensor([True, True, True, False])
    assert masked_mean(x, mask).item() == pytest.approx(2.0)
    assert masked_mean(x, torch.zeros(4, dtype=torch.bool)).item() == 0.0
    # mean 2, unbiased std 1
    torch.testing.assert_close(masked_whiten(x, mask), torch.tensor([-1.0, 0.0, 1.0, 0.0]) / (1 + 1e-6))
    one = torch.tensor([True, False, False, False])
    torch.testing.assert_close(masked_whiten(x, one), torch.zeros(4))


def test_ppo_clip_loss_hand_worked() -> None:
    ratio = torch.tensor([1.5, 0.5, 1.0, 10.0, 7.0])
    A = torch.tensor([1.0, 1.0, -1.0, -1.0, 50.0])
    mask = torch.tensor([True, True, True, True, False])  # the last token must not count
    old = torch.zeros(5)
    logp = ratio.log().requires_grad_()
    # per token: max(-A r, -A clip(r)) = -1.2 (clipped), -0.5, 1, 10 -> dual clip min(10, 3) = 3
    loss, clip_fraction = ppo_clip_loss(logp, old, A, mask, clip_eps=0.2, dual_clip=3.0)
    assert loss.item() == pytest.approx((-1.2 - 0.5 + 1.0 + 3.0) / 4)
    assert clip_fraction.item() == pytest.approx(0.25)
    loss.backward()
    # d/dlogp of -A r is -A r / 4 where unclipped; 0 where clipped (tokens 0 and 3) or masked
    torch.testing.assert_close(logp.grad, torch.tensor([0.0, -0.5 / 4, 1.0 / 4, 0.0, 0.0]))
    loss, _ = ppo_clip_loss(ratio.log(), old, A, mask, clip_eps=0.2, dual_clip=None)
    assert loss.item() == pytest.approx((-1.2 - 0.5 + 1.0 + 10.0) / 4)


def test_ppo_clip_loss_on_policy_is_minus_mean_advantage() -> None:
    logp = torch.randn(3, 7)
    A = torch.randn(3, 7)
    mask = torch.rand(3, 7) > 0.3
    loss, clip_fraction = ppo_clip_loss(logp, logp, A, mask)
    assert loss.item() == pytest.approx(-A[mask].mean().item(), abs=1e-6)
    assert clip_fraction.item() == 0.0


def test_kl_k3() -> None:
    logp = torch.log(torch.tensor([0.5, 0.3, 0.9]))
    ref = torch.log(torch.tensor([0.25, 0.3, 0.01]))
    mask = torch.tensor([True, True, False])
    # token 0: exp(log 0.5) - log 0.5 - 1; token 1: 0; token 2 masked
    assert kl_k3(logp, ref, mask).item() == pytest.approx((0.5 - math.log(0.5) - 1.0) / 2)
    # unbiased for KL(p || q) when the tokens are sampled from p
    p = torch.tensor([0.6, 0.3, 0.1])
    q = torch.tensor([0.2, 0.5, 0.3])
    tokens = torch.multinomial(p, 200_000, replacement=True, generator=torch.Generator().manual_seed(0))
    estimate = kl_k3(p.log()[tokens], q.log()[tokens], torch.ones_like(tokens, dtype=torch.bool))
    assert estimate.item() == pytest.approx((p * (p / q).log()).sum().item(), abs=0.01)


def test_entropy() -> None:
    logits = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [100.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0]]])
    mask = torch.tensor([[True, True, False]])
    assert entropy(logits, mask).item() == pytest.approx(math.log(4) / 2, abs=1e-6)
    p = torch.softmax(logits[0, 2], dim=-1)
    full = torch.ones(1, 3, dtype=torch.bool)
    assert entropy(logits, full).item() == pytest.approx((math.log(4) - (p * p.log()).sum().item()) / 3, abs=1e-6)


def test_clipped_value_loss() -> None:
    V = torch.tensor([1.0, 2.0, 5.0])
    V_old = torch.tensor([0.0, 2.0, 0.0])
    R = torch.tensor([0.5, 3.0, 0.0])
    mask = torch.tensor([True, True, False])
    # token 0: V_clip = 0.2, max((1 - 0.5)^2, (0.2 - 0.5)^2) = 0.25; token 1: 1
    assert clipped_value_loss(V, V_old, R, mask, clip_eps=0.2).item() == pytest.approx(0.5 * 1.25 / 2)
    # clipped the other way: the move is too large and in the wrong direction -> clipped term rules
    assert clipped_value_loss(torch.tensor([-1.0]), torch.tensor([0.0]), torch.tensor([1.0]),
                              torch.tensor([True])).item() == pytest.approx(0.5 * 4.0)


def plan_execute_batch() -> TagTokens:
    # token kinds per turn: w = switch body, s = subgoal body, a = action body, f = format, . = pad
    rows = ["wssaf.", "wsaaf.", "wsaf.."]
    kinds = {k: torch.tensor([[c == k for c in row] for row in rows]) for k in "wsaf."}
    attention = ~kinds["."]
    return TagTokens(attention.long(), attention.long(), kinds["w"], kinds["s"], kinds["a"])


def expected_whiten(values: list[float]) -> list[float]:
    mean, std = statistics.fmean(values), statistics.stdev(values)
    return [(v - mean) / (std + 1e-6) for v in values]


def test_plan_execute_advantages_hand_worked() -> None:
    tags = plan_execute_batch()
    # turn 0: first turn (boundary, forced switch); turn 1: KEEP; turn 2: SWITCH (boundary)
    adv_low = torch.tensor([1.0, 3.0, 2.0], dtype=torch.float64)
    adv_high = torch.tensor([5.0, 7.0, -1.0], dtype=torch.float64)
    adv_switch = torch.tensor([9.0, -1.0, 4.0], dtype=torch.float64)
    boundary = torch.tensor([True, False, True])
    first = torch.tensor([True, False, False])
    valid = torch.ones(3, dtype=torch.bool)
    adv, loss_mask = plan_execute_advantages(tags, adv_low, adv_high, adv_switch, boundary, first, valid)
    expected = torch.zeros(3, 6, dtype=torch.float64)
    low = [(0, 3), (0, 4), (1, 2), (1, 3), (1, 4), (2, 2), (2, 3)]  # action and format tokens
    high = [(0, 1), (0, 2), (2, 1)]  # subgoal tokens of boundary turns only
    switch = [(1, 0), (2, 0)]  # switch tokens except the first turn's
    for cells, a in ((low, adv_low), (high, adv_high), (switch, adv_switch)):
        for (n, k), z in zip(cells, expected_whiten([a[n].item() for n, _ in cells]), strict=True):
            expected[n, k] = z
    torch.testing.assert_close(adv, expected)
    assert sorted(map(tuple, loss_mask.nonzero().tolist())) == sorted(low + high + switch)

    adv, loss_mask = plan_execute_advantages(tags, adv_low, adv_high, adv_switch, boundary, first, valid,
                                             low_on_format_tokens=False)
    actions = [(0, 3), (1, 2), (1, 3), (2, 2)]
    for (n, k), z in zip(actions, expected_whiten([adv_low[n].item() for n, _ in actions]), strict=True):
        assert adv[n, k].item() == pytest.approx(z)
    assert sorted(map(tuple, loss_mask.nonzero().tolist())) == sorted(actions + high + switch)


def test_plan_execute_advantages_invalid_turn_is_all_action() -> None:
    """An output that does not parse (`<subgoal> take the key </action>`: the slip sits inside an
    unclosed subgoal body) chose no subgoal and no switch: every token of it gets A_low, so the
    invalid-format penalty reaches the slip."""
    tags = plan_execute_batch()
    adv_low = torch.tensor([1.0, 3.0, -2.0], dtype=torch.float64)
    adv_high = torch.tensor([5.0, 7.0, -1.0], dtype=torch.float64)
    adv_switch = torch.tensor([9.0, -1.0, 4.0], dtype=torch.float64)
    boundary, first = torch.tensor([True, False, True]), torch.tensor([True, False, False])
    valid = torch.tensor([True, True, False])
    adv, loss_mask = plan_execute_advantages(tags, adv_low, adv_high, adv_switch, boundary, first, valid)
    assert loss_mask[2].tolist() == [True, True, True, True, False, False]
    assert (adv[2, :4] < 0).all()  # the penalised turn's tokens all go down, its "subgoal" included
    high = [(0, 1), (0, 2)]  # the valid boundary turn's subgoal tokens (one value: whitened to 0)
    assert all(loss_mask[n, k] and adv[n, k] == 0 for n, k in high)
    low_cells = [(n, k) for n in range(3) for k in range(6) if loss_mask[n, k] and (n, k) not in high + [(1, 0)]]
    z = expected_whiten([adv_low[n].item() for n, _ in low_cells])
    assert [adv[n, k].item() for n, k in low_cells] == pytest.approx(z)


def test_plan_execute_advantages_missing_tags() -> None:
    """A response with no tag at all: its tokens are format tokens and get A_low; nothing else."""
    attention = torch.tensor([[1, 1, 1], [1, 1, 0]])
    none = torch.zeros(2, 3, dtype=torch.bool)
    tags = TagTokens(attention, attention, none, none, none)
    adv, loss_mask = plan_execute_advantages(
        tags, torch.tensor([1.0, -1.0]), torch.tensor([4.0, 4.0]), torch.tensor([2.0, 2.0]),
        torch.tensor([True, True]), torch.tensor([True, False]), torch.tensor([True, True]),
    )
    assert loss_mask.tolist() == [[True, True, True], [True, True, False]]
    assert (adv[0] > 0).all() and (adv[1, :2] < 0).all() and adv[1, 2] == 0
    _, loss_mask = plan_execute_advantages(
        tags, torch.tensor([1.0, -1.0]), torch.tensor([4.0, 4.0]), torch.tensor([2.0, 2.0]),
        torch.tensor([True, True]), torch.tensor([True, False]), torch.tensor([True, True]),
        low_on_format_tokens=False,
    )
    assert not loss_mask.any()
