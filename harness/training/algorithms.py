"""The training algorithms, one function each: a batch of turns and the scored old policy in, targets out.

`ALGORITHMS[name]` holds, per algorithm, the value heads its critic has and its `targets` function.
The trainer (`harness.training.trainer`) does the rest the same way for all of them: rollouts,
scoring the sampling policy once (pi_old, the critic's values, the reference), the PPO update with
the targets given here, checkpoints. Read one function top to bottom beside its paper:

    hiper  HAE, HiPER (arXiv 2602.16165): low-level GAE inside each segment, semi-Markov GAE over
           segments, a switch advantage; each given to its own tokens of the plan-execute reply
    ppo    GAE over turns (Schulman et al. 2016) with one critic
    grpo   group-relative episode return (Shao et al. 2024)
    rloo   leave-one-out episode return (Ahmadian et al. 2024)
    gigpo  episode-level plus anchor-state step-level group advantages (Feng et al. 2025)
    sft    behaviour cloning: every reply token is a target with weight 1

Layouts: the estimators (`advantages`) read [B, T] grids (B episodes padded to T turns); the update
reads the N = sum of episode lengths turns as token rows [N, S - 1] (target positions, as in
`policy.Sequences`). `Batch.grid` goes from the turn list to the grid, `Batch.flat` back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from harness.training import advantages as adv
from harness.training.config import TrainConfig
from harness.training.losses import masked_whiten, plan_execute_advantages
from harness.training.policy import Sequences
from harness.training.rollout import Turn
from harness.training.spans import TagTokens


@dataclass
class Batch:
    """One iteration's turns in both layouts, and the sampling policy scored on them.

    `old` holds `old_logprobs` [N, S - 1] and, per value head h, `V_h` [N] read at the prompt's last
    token (the state s_t) and, for the heads an algorithm reads after the subgoal, `V_h_at_subgoal`.
    `bootstrap(h)` is head h's value [B] of the state after each cut-off episode's last turn (0 for
    episodes that terminated).
    """

    seq: Sequences
    tags: TagTokens | None  # None for sft, whose replies are the demonstrator's
    old: dict[str, Tensor]
    turns: Sequence[Turn]
    mask: Tensor  # [B, T] bool: real turns, a prefix of each row
    terminated: Tensor  # [B] bool
    groups: Sequence[int]  # [B] task group of each episode
    bootstrap: Callable[[str], Tensor]

    @property
    def flat(self) -> tuple[Tensor, Tensor]:
        """Index of the real turns of the grid, in the order of `turns`."""
        return self.mask.nonzero(as_tuple=True)

    def grid(self, values: Tensor | Sequence[float]) -> Tensor:
        """[N] per-turn values as a [B, T] grid (0 on padding)."""
        out = torch.zeros(self.mask.shape)
        out[self.flat] = torch.as_tensor(values, dtype=torch.float32)
        return out

    @property
    def rewards(self) -> Tensor:
        return self.grid([turn.reward for turn in self.turns])


class Targets(NamedTuple):
    """What the update trains towards.

    token_advantages, loss_mask: [N, S - 1], the policy-gradient weight of each target token and
    which tokens the policy loss averages over; value_targets: head -> (returns [N], turns [N] bool
    that train it); turn_advantages: [N], the turn-level advantage that is logged (adv/*).
    """

    token_advantages: Tensor
    loss_mask: Tensor
    value_targets: dict[str, tuple[Tensor, Tensor]]
    turn_advantages: Tensor


def hiper(batch: Batch, cfg: TrainConfig) -> Targets:
    """HAE (HiPER). Segments start at SWITCH turns (and the first turn); V_high(s) values a state
    at a segment start, V_low(s, o) a state under the chosen subgoal o (read after `<subgoal>`).

        low level, inside segment k:   A_low_t  = GAE(lam_turn) of r_t + gamma V_low(t+1) - V_low(t),
                                                   V_high(b_{k+1}) after the segment's last turn
        high level, over segments:     A_high_k = GAE(lam_seg) of R_k + gamma^{d_k} V_high(b_{k+1}) - V_high(b_k)
        switch, released code:         A_sw_t   = G_t - V_term(s_t)      (G_t: return to the segment end)
        switch, paper:                 A_sw_t   = (q_t - beta_t)(V_high(s_t) - V_low(s_t, o_{t-1}))

    Tokens: A_low on the action (and format) tokens, A_high on the subgoal of boundary turns,
    A_sw on the switch word, each z-normalised (`losses.plan_execute_advantages`). Critic targets:
    R_low on every turn, R_high on boundary turns, G on every turn (V_term).
    """
    old, mask, flat, every = batch.old, batch.mask, batch.flat, torch.ones(len(batch.turns), dtype=torch.bool)
    rewards = batch.rewards
    switch = batch.grid([turn.switch for turn in batch.turns]).bool()
    V_low, V_high = batch.grid(old["V_low_at_subgoal"]), batch.grid(old["V_high"])
    last_values = batch.bootstrap("high")
    h = adv.hae(rewards, V_low, V_high, switch, mask, batch.terminated, cfg.gamma, cfg.lam_turn, cfg.lam_seg,
                last_values)
    value_targets = {"low": (h.ret_low[flat], every), "high": (h.ret_high[flat], h.boundary[flat])}
    if cfg.switch_advantage == "return":
        G = adv.segment_returns(rewards, V_high, switch, mask, batch.terminated, cfg.gamma, last_values)
        A_switch = adv.switch_advantage_return(G, batch.grid(old["V_term"]), mask)
        value_targets["term"] = (G[flat], every)
    else:
        beta = batch.grid(p_switch(batch.tags, old["old_logprobs"], switch[flat]))
        A_switch = adv.switch_advantage_paper(switch, beta, V_high, batch.grid(old["V_low"]), mask)
    first = torch.zeros_like(mask)
    first[:, 0] = True
    valid = torch.tensor([turn.format_valid for turn in batch.turns])
    token_adv, loss_mask = plan_execute_advantages(batch.tags, h.adv_low[flat], h.adv_high[flat], A_switch[flat],
                                                   h.boundary[flat], first[flat], valid)
    return Targets(token_adv, loss_mask, value_targets, h.adv_low[flat])


def p_switch(tags: TagTokens, old_logprobs: Tensor, switched: Tensor) -> Tensor:
    """beta_t = P(SWITCH) under the sampling policy, per turn. The switch body is one of two words,
    so from the probability p of the emitted body: beta = p after SWITCH, 1 - p after KEEP."""
    p = torch.exp((old_logprobs * tags.switch).sum(dim=1))
    return torch.where(switched, p, 1.0 - p)


def _on_every_token(batch: Batch, turn_adv: Tensor) -> tuple[Tensor, Tensor]:
    """A flat agent's turn advantage on every token of its reply."""
    loss_mask = batch.seq.response_mask
    return turn_adv[:, None].expand_as(loss_mask) * loss_mask, loss_mask


def ppo(batch: Batch, cfg: TrainConfig) -> Targets:
    """PPO with GAE over turns, V read at the prompt's last token:

        delta_t = r_t + gamma V(t+1) - V(t),   A_t = delta_t + gamma lam A_{t+1},   R_t = A_t + V(t)

    A_t on every reply token, whitened over the batch's tokens; the critic regresses R_t.
    """
    A, R = adv.gae(batch.rewards, batch.grid(batch.old["V_value"]), batch.mask, batch.terminated, cfg.gamma,
                   cfg.lam, batch.bootstrap("value"))
    turn_adv = A[batch.flat]
    token_adv, loss_mask = _on_every_token(batch, turn_adv)
    every = torch.ones(len(batch.turns), dtype=torch.bool)
    return Targets(masked_whiten(token_adv, loss_mask), loss_mask, {"value": (R[batch.flat], every)}, turn_adv)


def grpo(batch: Batch, cfg: TrainConfig) -> Targets:
    """GRPO: A_i = (R_i - mean_g R) / (std_g R + 1e-6) for episode i of group g (R: its summed
    reward), on every token of the episode. No critic."""
    A = adv.grpo(batch.rewards.sum(dim=1), batch.groups, cfg.normalize_std)
    turn_adv = A[:, None].expand(batch.mask.shape)[batch.flat]
    return Targets(*_on_every_token(batch, turn_adv), {}, turn_adv)


def rloo(batch: Batch, cfg: TrainConfig) -> Targets:
    """RLOO: A_i = R_i - mean of R_j over the other episodes j of i's group, on every token. No critic."""
    A = adv.rloo(batch.rewards.sum(dim=1), batch.groups)
    turn_adv = A[:, None].expand(batch.mask.shape)[batch.flat]
    return Targets(*_on_every_token(batch, turn_adv), {}, turn_adv)


def gigpo(batch: Batch, cfg: TrainConfig) -> Targets:
    """GiGPO: A[b, t] = A_episode[b] + w * A_step[b, t], the step term normalising the discounted
    return G[b, t] among the turns of the group that saw the same observation (the anchor state)."""
    rows = [[] for _ in range(batch.mask.shape[0])]
    for b, turn in zip(batch.flat[0].tolist(), batch.turns, strict=True):
        rows[b].append(turn.obs)
    A = adv.gigpo(batch.rewards, batch.mask, batch.groups, rows, cfg.gamma, cfg.gigpo_step_weight, cfg.normalize_std)
    turn_adv = A[batch.flat]
    return Targets(*_on_every_token(batch, turn_adv), {}, turn_adv)


def sft(batch: Batch, cfg: TrainConfig) -> Targets:
    """Behaviour cloning: weight 1 on every reply token (and its end of sequence), so the policy loss
    is the mean negative log-likelihood -mean log pi(token). No critic, no rewards."""
    loss_mask = batch.seq.response_mask
    return Targets(loss_mask.float(), loss_mask, {}, torch.ones(len(batch.seq)))


@dataclass(frozen=True)
class Algorithm:
    """An entry of `ALGORITHMS`: its targets, its critic's value heads, and the heads read after the
    reply's subgoal instead of at the prompt's last token."""

    targets: Callable[[Batch, TrainConfig], Targets]
    heads: Callable[[TrainConfig], tuple[str, ...]] = lambda cfg: ()
    subgoal_heads: tuple[str, ...] = ()


ALGORITHMS: dict[str, Algorithm] = {
    "hiper": Algorithm(hiper, lambda cfg: ("low", "high", "term") if cfg.switch_advantage == "return"
                       else ("low", "high"), subgoal_heads=("low",)),
    "ppo": Algorithm(ppo, lambda cfg: ("value",)),
    "grpo": Algorithm(grpo),
    "rloo": Algorithm(rloo),
    "gigpo": Algorithm(gigpo),
    "sft": Algorithm(sft),
}

__all__ = ["ALGORITHMS", "Algorithm", "Batch", "Targets"]
