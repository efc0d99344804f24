"""HAE and turn-level GAE on verl's batches: per-turn rows of `hiper_env` (`agent_loop.py`) and the
values of verl's critic in, token advantages and critic targets out, computed by the same functions
as `hiper-bench train` (`harness.training.advantages`, `losses.plan_execute_advantages`).

verl's critic has one value head and reads it at every token: `values[n, j]` is the value of row n's
prompt and its first j reply tokens. HAE needs three values per turn, read at three positions of the
reply (our trainer reads three heads at two positions; one head read at different states is the
same estimator):

    V_high(s_t)        at j = 0, the prompt's end
    V_term(s_t)        before the `<switch>` word (the released code's switch baseline)
    V_low(s_t, o_t)    after the `<subgoal>` body, the subgoal chosen (j = 0 if the reply has none)

Critic targets (`returns`) are R_high at j = 0 on segment starts, R_low after the subgoal and G
before the switch word; every other token's target is its own old value, so verl's value loss
leaves it where it was. Where two reads share a position (a reply without subgoal), R_high wins on
segment starts. After an episode's last turn the value is 0, also for an episode cut off by the
step budget (verl has no forward pass of the state after the last turn).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from harness.training import advantages as adv
from harness.training.config import TrainConfig
from harness.training.losses import masked_whiten, plan_execute_advantages
from harness.training.spans import TAGS, TagTokens


class TurnRows:
    """verl's rows as our [B, T] grids: episode b's turn t is row `rows[b, t]`."""

    def __init__(self, fields: Sequence[Mapping[str, Any]]):
        episodes: dict[str, dict[int, int]] = {}
        for n, row in enumerate(fields):
            turns = episodes.setdefault(str(row["hiper_episode"]), {})
            if int(row["hiper_turn"]) in turns:
                raise ValueError(f"episode {row['hiper_episode']} has turn {row['hiper_turn']} twice")
            turns[int(row["hiper_turn"])] = n
        T = max((len(turns) for turns in episodes.values()), default=0)
        self.mask = torch.zeros(len(episodes), T, dtype=torch.bool)
        self.row = torch.zeros(len(episodes), T, dtype=torch.long)
        for b, turns in enumerate(episodes.values()):
            if sorted(turns) != list(range(len(turns))):
                raise ValueError(f"episode rows must hold turns 0..{len(turns) - 1}, got {sorted(turns)}")
            self.row[b, :len(turns)] = torch.tensor([turns[t] for t in range(len(turns))])
            self.mask[b, :len(turns)] = True
        self.fields = fields
        self.b, self.t = torch.empty(len(fields), dtype=torch.long), torch.empty(len(fields), dtype=torch.long)
        index = self.mask.nonzero(as_tuple=True)
        self.b[self.row[index]], self.t[self.row[index]] = index
        self.terminated = torch.tensor([bool(fields[self.row[b, 0]]["hiper_terminated"]) for b in range(len(episodes))])

    def grid(self, per_row: Tensor | Sequence[float]) -> Tensor:
        """[N] per-row values as the [B, T] grid (0 on padding)."""
        out = torch.zeros(self.mask.shape, dtype=torch.float64)
        out[self.b, self.t] = torch.as_tensor(per_row, dtype=torch.float64)
        return out

    def per_row(self, grid: Tensor) -> Tensor:
        """The [B, T] grid back as [N] per-row values."""
        return grid[self.b, self.t]

    def field(self, key: str) -> Tensor:
        return torch.tensor([float(row[key]) for row in self.fields], dtype=torch.float64)


def tag_masks(fields: Sequence[Mapping[str, Any]], width: int) -> dict[str, Tensor]:
    """Per tag, [N, width] bool: the rows' `hiper_<tag>_mask` lists, right-padded like the responses."""
    masks = {name: torch.zeros(len(fields), width, dtype=torch.bool) for name in TAGS}
    for n, row in enumerate(fields):
        for name in TAGS:
            bits = list(row[f"hiper_{name}_mask"])[:width]
            masks[name][n, :len(bits)] = torch.tensor(bits, dtype=torch.bool)
    return masks


def read_positions(masks: dict[str, Tensor], response_mask: Tensor) -> tuple[Tensor, Tensor]:
    """[N] positions of V_low (after the subgoal's last token) and V_term (before the switch word);
    0 where the reply has no such span or the position falls past the reply's tokens."""
    width = response_mask.shape[1]
    length = response_mask.long().sum(dim=1)
    columns = torch.arange(width)
    after_subgoal = torch.where(masks["subgoal"], columns, -1).max(dim=1).values + 1
    before_switch = torch.where(masks["switch"], columns, width).min(dim=1).values
    low = torch.where((after_subgoal > 0) & (after_subgoal < length), after_subgoal, 0)
    term = torch.where(before_switch < length, before_switch, 0)
    return low, term


def hiper_advantages(values: Tensor, response_mask: Tensor, fields: Sequence[Mapping[str, Any]],
                     cfg: TrainConfig) -> tuple[Tensor, Tensor]:
    """HAE for `hiper_env` rows: (advantages, returns), both like `values` [N, R] (module docstring)."""
    if cfg.switch_advantage != "return":
        raise ValueError("on verl, HAE's switch advantage is the released code's (switch_advantage: return): "
                         "the paper's form needs V_low under the previous subgoal, which one forward pass lacks")
    rows, n = TurnRows(fields), torch.arange(len(fields))
    masks = tag_masks(fields, values.shape[1])
    low_at, term_at = read_positions(masks, response_mask)
    V = values.detach().to(torch.float64)
    V_high, V_low, V_term = rows.grid(V[:, 0]), rows.grid(V[n, low_at]), rows.grid(V[n, term_at])
    rewards, switch = rows.grid(rows.field("hiper_reward")), rows.grid(rows.field("hiper_switch")).bool()
    h = adv.hae(rewards, V_low, V_high, switch, rows.mask, rows.terminated, cfg.gamma, cfg.lam_turn, cfg.lam_seg)
    G = adv.segment_returns(rewards, V_high, switch, rows.mask, rows.terminated, cfg.gamma)
    A_switch = adv.switch_advantage_return(G, V_term, rows.mask)
    boundary = rows.per_row(h.boundary)
    tags = TagTokens(torch.zeros_like(response_mask, dtype=torch.long), response_mask.bool(), **masks)
    valid = rows.field("hiper_format_valid").bool()
    advantages, _ = plan_execute_advantages(tags, rows.per_row(h.adv_low), rows.per_row(h.adv_high),
                                            rows.per_row(A_switch), boundary, rows.t == 0, valid)
    returns = V.clone()
    returns[n, low_at] = rows.per_row(h.ret_low)
    returns[n, term_at] = rows.per_row(G)
    returns[n[boundary], 0] = rows.per_row(h.ret_high)[boundary]
    return advantages.to(values.dtype), returns.to(values.dtype)


def ppo_advantages(values: Tensor, response_mask: Tensor, fields: Sequence[Mapping[str, Any]],
                   cfg: TrainConfig) -> tuple[Tensor, Tensor]:
    """GAE over turns for flat rows (our `ppo`): V(s_t) at j = 0, A_t on every reply token, whitened
    over the batch's tokens; the critic's target R_t at j = 0."""
    rows, n = TurnRows(fields), torch.arange(len(fields))
    V = values.detach().to(torch.float64)
    A, R = adv.gae(rows.grid(rows.field("hiper_reward")), rows.grid(V[:, 0]), rows.mask, rows.terminated,
                   cfg.gamma, cfg.lam)
    mask = response_mask.bool()
    advantages = masked_whiten(rows.per_row(A)[:, None].expand_as(V) * mask, mask)
    returns = V.clone()
    returns[n, 0] = rows.per_row(R)
    return advantages.to(values.dtype), returns.to(values.dtype)


ESTIMATORS = {"hiper": hiper_advantages, "ppo": ppo_advantages}


def rows_of(non_tensor_batch: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """Per-row field dicts from a DataProto's `non_tensor_batch`: the `hiper_*` columns verl makes
    of `extra_fields`, or one `extra_fields` column of dicts."""
    if "extra_fields" in non_tensor_batch:
        return [dict(row) for row in non_tensor_batch["extra_fields"]]
    keys = [key for key in non_tensor_batch if key.startswith("hiper_")]
    if not keys:
        raise ValueError("the batch has no hiper_* fields: were its rows played by the hiper_env agent loop?")
    return [{key: non_tensor_batch[key][n] for key in keys} for n in range(len(non_tensor_batch[keys[0]]))]


def compute_advantage(data: Any, cfg: TrainConfig) -> Any:
    """Set `advantages` and `returns` of a verl `DataProto` (with `values` and `response_mask`) by
    `cfg.algorithm` (hiper or ppo); returns `data`."""
    if cfg.algorithm not in ESTIMATORS:
        raise ValueError(f"algorithm {cfg.algorithm!r} has no verl estimator here; choose from "
                         f"{', '.join(ESTIMATORS)} (verl's own grpo and rloo need none)")
    advantages, returns = ESTIMATORS[cfg.algorithm](data.batch["values"], data.batch["response_mask"],
                                                    rows_of(data.non_tensor_batch), cfg)
    data.batch["advantages"], data.batch["returns"] = advantages, returns
    return data
