"""PPO losses for token-level policies, and HAE's per-token advantage assignment.

Tensors are [N, L]: N responses (one per turn), L tokens. Every loss is a mean over the tokens
marked by `mask` (verl's "token-mean"), so long and short responses weigh by their tokens. Each
function does one job; the trainer adds them up:

    loss = pg_loss + kl_coef * kl - entropy_coef * entropy + value_coef * sum of value losses
"""

from __future__ import annotations

import torch
from torch import Tensor

from harness.training.spans import TagTokens


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of `x` over the entries where `mask` is True (0 when there are none)."""
    m = mask.to(x.dtype)
    return (x * m).sum() / m.sum().clamp(min=1.0)


def masked_whiten(x: Tensor, mask: Tensor, eps: float = 1e-6) -> Tensor:
    """z-score of `x` over the masked entries, `(x - mean) / (std + eps)` with the unbiased std;
    0 outside the mask (and everywhere when fewer than two entries are masked)."""
    m = mask.to(x.dtype)
    n = m.sum()
    if n < 2:
        return torch.zeros_like(x)
    mean = (x * m).sum() / n
    var = (((x - mean) * m) ** 2).sum() / (n - 1)
    return (x - mean) / (var.sqrt() + eps) * m


def ppo_clip_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    clip_eps: float = 0.2,
    dual_clip: float | None = 3.0,
) -> tuple[Tensor, Tensor]:
    """PPO's clipped surrogate (Schulman et al. 2017) with the dual clip (Ye et al. 2020).

        ratio    = exp(logp - logp_old)
        pg_loss  = max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps))
        pg_loss  = min(pg_loss, -A * dual_clip)       where A < 0 (bounds a huge ratio's push)

    Returns (loss, clip_fraction): the token-mean loss, and the fraction of tokens where the
    clipped term was the larger one.
    """
    ratio = torch.exp(logprobs - old_logprobs)
    pg_loss1 = -advantages * ratio
    pg_loss2 = -advantages * torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    pg_loss = torch.maximum(pg_loss1, pg_loss2)
    if dual_clip is not None:
        pg_loss = torch.where(advantages < 0, torch.minimum(pg_loss, -advantages * dual_clip), pg_loss)
    clip_fraction = masked_mean((pg_loss2 > pg_loss1).to(logprobs.dtype), mask).detach()
    return masked_mean(pg_loss, mask), clip_fraction


def kl_k3(logprobs: Tensor, ref_logprobs: Tensor, mask: Tensor) -> Tensor:
    """Low-variance estimate of KL(pi || pi_ref) from tokens sampled by pi (Schulman's k3):

        k3 = exp(logp_ref - logp) - (logp_ref - logp) - 1   >= 0, unbiased, token-mean.
    """
    log_ratio = ref_logprobs - logprobs
    return masked_mean(torch.exp(log_ratio) - log_ratio - 1.0, mask)


def entropy(logits: Tensor, mask: Tensor) -> Tensor:
    """Token-mean entropy of the policy's next-token distributions, from logits [N, L, V]:

        H = logsumexp(z) - sum_v softmax(z)_v z_v
    """
    probs = torch.softmax(logits, dim=-1)
    return masked_mean(torch.logsumexp(logits, dim=-1) - (probs * logits).sum(dim=-1), mask)


def clipped_value_loss(
    values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor, clip_eps: float = 0.2
) -> Tensor:
    """PPO's clipped value loss, for one critic head (GAE's, or HAE's low, high or term):

        V_clip = V_old + clip(V - V_old, -eps, eps)
        loss   = 0.5 * mean(max((V - R)^2, (V_clip - R)^2))     over `mask`
    """
    v_clipped = old_values + torch.clamp(values - old_values, -clip_eps, clip_eps)
    v_loss = torch.maximum((values - returns) ** 2, (v_clipped - returns) ** 2)
    return 0.5 * masked_mean(v_loss, mask)


def plan_execute_advantages(
    tags: TagTokens,
    adv_low: Tensor,
    adv_high: Tensor,
    adv_switch: Tensor,
    boundary: Tensor,
    first_turn: Tensor,
    valid: Tensor,
    low_on_format_tokens: bool = True,
) -> tuple[Tensor, Tensor]:
    """HiPER's per-token advantages for plan-execute responses (docs/training.md, "token assignment").

    One response per turn n; the turn-level inputs are [N], the token masks in `tags` [N, L]:
    - A_low to the `<action>` body of every turn;
    - A_high to the `<subgoal>` body of boundary turns only (a KEEP copies its subgoal: no choice);
    - A_switch to the `<switch>` body, except on first turns, where the switch is forced. The
      switch advantage is either form of `harness.training.advantages`: `switch_advantage_paper`
      ((q - beta)(V_high - V_low)) or `switch_advantage_return` (the released code's).
    Each advantage is z-normalised separately over its tokens, then the three are summed (their
    token sets are disjoint).

    With `low_on_format_tokens`, the response's other tokens (tags, spaces, end of sequence) also
    get A_low: the format is part of the turn's action, and the invalid-format penalty in r_t can
    only teach through them. A turn whose output does not parse (`valid` False) chose no subgoal and
    no switch: all of its tokens are the failed action and get A_low. (Otherwise the slip itself,
    say `</action>` closing a `<subgoal>`, would sit in a "subgoal body" of a non-boundary turn, get
    no gradient, and grow whenever its valid alternative is pushed down.)

    Returns (advantages [N, L], loss_mask [N, L]): the tokens that got an advantage.
    """
    attention, valid = tags.attention_mask.bool(), valid.bool()[:, None]
    low = tags.action
    if low_on_format_tokens:
        low = low | (attention & ~tags.subgoal & ~tags.switch) | (attention & ~valid)
    high = tags.subgoal & boundary.bool()[:, None] & valid
    switch = tags.switch & ~first_turn.bool()[:, None] & valid
    advantages = (
        masked_whiten(adv_low[:, None].expand_as(low), low)
        + masked_whiten(adv_high[:, None].expand_as(high).to(adv_low.dtype), high)
        + masked_whiten(adv_switch[:, None].expand_as(switch).to(adv_low.dtype), switch)
    )
    return advantages, low | high | switch
