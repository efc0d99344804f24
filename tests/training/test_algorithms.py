"""Each entry of `ALGORITHMS` on a hand-made batch: its targets equal the plain-loop reference."""

from __future__ import annotations

import pytest
import torch

from harness.training.algorithms import ALGORITHMS, Batch
from harness.training.config import TrainConfig
from harness.training.losses import masked_whiten, plan_execute_advantages
from harness.training.policy import make_sequences
from harness.training.reference import gae_loop, gigpo_loop, grpo_loop, hae_loop, rloo_loop
from harness.training.rollout import Turn
from harness.training.spans import TagTokens

# three episodes (lengths 3, 2, 4) in two groups; the second was cut off, the others terminated
LENGTHS, GROUPS, TERMINATED = (3, 2, 4), (0, 0, 1), (True, False, True)
REWARDS = [[-0.1, 0.0, 10.0], [0.0, -0.4], [0.0, -0.1, 0.0, 10.0]]
SWITCH = [[True, False, True], [True, True], [True, False, False, True]]
OBS = [["a", "b", "c"], ["a", "c"], ["x", "y", "y", "z"]]
VALID = [[True, True, True], [False, True], [True, True, True, True]]
BOOTSTRAP = {"high": torch.tensor([0.0, 2.5, 0.0]), "value": torch.tensor([0.0, 1.5, 0.0])}


def make_batch(old_values: dict[str, list[float]]) -> Batch:
    turns = [Turn([], f"reply {b}.{t}", OBS[b][t], VALID[b][t], SWITCH[b][t], reward=REWARDS[b][t])
             for b, n in enumerate(LENGTHS) for t in range(n)]
    N = len(turns)
    # prompts of 3 tokens, responses of 4: switch, subgoal, subgoal, action
    seq = make_sequences([[1, 2, 3]] * N, [[4, 5, 6, 7]] * N, 0)
    width = seq.response_mask.shape[1]
    masks = {name: torch.zeros(N, width, dtype=torch.bool) for name in ("switch", "subgoal", "action")}
    masks["switch"][:, 2] = True
    masks["subgoal"][:, 3:5] = True
    masks["action"][:, 5] = True
    tags = TagTokens(seq.input_ids, seq.response_mask, **masks)
    mask = torch.zeros(len(LENGTHS), max(LENGTHS), dtype=torch.bool)
    for b, n in enumerate(LENGTHS):
        mask[b, :n] = True
    g = torch.Generator().manual_seed(0)
    old = {"old_logprobs": -torch.rand(N, width, generator=g) * seq.response_mask}
    old.update({key: torch.tensor(values) for key, values in old_values.items()})
    return Batch(seq, tags, old, turns, mask, torch.tensor(TERMINATED), list(GROUPS), BOOTSTRAP.__getitem__)


def grid(batch: Batch, values: torch.Tensor) -> torch.Tensor:
    return batch.grid(values).double()


def values(n: int, seed: int) -> list[float]:
    return torch.rand(n, generator=torch.Generator().manual_seed(seed)).mul(5).tolist()


N = sum(LENGTHS)
CFG = {"model": "x", "gamma": 0.9, "lam": 0.8, "lam_turn": 0.7, "lam_seg": 0.95}


def test_ppo_targets_are_whitened_gae_of_the_loop() -> None:
    batch = make_batch({"V_value": values(N, 1)})
    cfg = TrainConfig(algorithm="ppo", **CFG)
    targets = ALGORITHMS["ppo"].targets(batch, cfg)
    A, R = gae_loop(batch.rewards, grid(batch, batch.old["V_value"]), batch.mask, batch.terminated, 0.9, 0.8,
                    BOOTSTRAP["value"])
    assert torch.allclose(targets.turn_advantages.double(), A[batch.flat], atol=1e-5)
    assert torch.allclose(targets.value_targets["value"][0].double(), R[batch.flat], atol=1e-5)
    expected = masked_whiten(A[batch.flat].float()[:, None].expand_as(batch.seq.response_mask)
                             * batch.seq.response_mask, batch.seq.response_mask)
    assert torch.allclose(targets.token_advantages, expected, atol=1e-5)
    assert torch.equal(targets.loss_mask, batch.seq.response_mask)
    assert ALGORITHMS["ppo"].heads(cfg) == ("value",)


@pytest.mark.parametrize("switch_advantage", ["return", "paper"])
def test_hiper_targets_follow_the_hae_loop(switch_advantage: str) -> None:
    batch = make_batch({"V_low_at_subgoal": values(N, 2), "V_high": values(N, 3), "V_term": values(N, 4),
                        "V_low": values(N, 5)})
    cfg = TrainConfig(algorithm="hiper", switch_advantage=switch_advantage, **CFG)
    targets = ALGORITHMS["hiper"].targets(batch, cfg)
    switch = batch.grid([t.switch for t in batch.turns]).bool()
    ref = hae_loop(batch.rewards, grid(batch, batch.old["V_low_at_subgoal"]), grid(batch, batch.old["V_high"]),
                   switch, batch.mask, batch.terminated, 0.9, 0.7, 0.95, BOOTSTRAP["high"])
    flat = batch.flat
    assert torch.allclose(targets.turn_advantages.double(), ref["adv_low"][flat], atol=1e-5)
    returns, turns = targets.value_targets["high"]
    assert torch.equal(turns, ref["boundary"][flat])
    assert torch.allclose(returns.double()[turns], ref["ret_high"][flat][turns], atol=1e-5)
    assert torch.allclose(targets.value_targets["low"][0].double(), ref["ret_low"][flat], atol=1e-5)
    assert ("term" in targets.value_targets) == (switch_advantage == "return")
    assert ALGORITHMS["hiper"].subgoal_heads == ("low",)
    # the token assignment is the plan-execute one, with the loop's A_low and A_high
    first = torch.zeros_like(batch.mask)
    first[:, 0] = True
    valid = torch.tensor([t.format_valid for t in batch.turns])
    low_only, _ = plan_execute_advantages(batch.tags, ref["adv_low"][flat].float(), ref["adv_high"][flat].float(),
                                          torch.zeros(N), ref["boundary"][flat], first[flat], valid)
    switch_tokens = batch.tags.switch & ~first[flat][:, None] & valid[:, None]
    assert torch.allclose(targets.token_advantages[~switch_tokens], low_only[~switch_tokens], atol=1e-5)


@pytest.mark.parametrize("name", ["grpo", "rloo", "gigpo"])
def test_group_targets_equal_the_loops_on_every_token(name: str) -> None:
    batch = make_batch({})
    cfg = TrainConfig(algorithm=name, group_size=2, num_envs=4, **CFG)
    targets = ALGORITHMS[name].targets(batch, cfg)
    returns = batch.rewards.sum(dim=1)
    if name == "grpo":
        expected = grpo_loop(returns, list(GROUPS))[:, None].expand(batch.mask.shape)[batch.flat]
    elif name == "rloo":
        expected = rloo_loop(returns, list(GROUPS))[:, None].expand(batch.mask.shape)[batch.flat]
    else:
        expected = gigpo_loop(batch.rewards, batch.mask, list(GROUPS), OBS, 0.9)[batch.flat]
    assert torch.allclose(targets.turn_advantages.double(), expected, atol=1e-5)
    mask = batch.seq.response_mask
    assert torch.allclose(targets.token_advantages, expected.float()[:, None] * mask, atol=1e-5)
    assert targets.value_targets == {} and ALGORITHMS[name].heads(cfg) == ()


def test_sft_targets_weight_every_reply_token_once() -> None:
    batch = make_batch({})
    targets = ALGORITHMS["sft"].targets(batch, TrainConfig(algorithm="sft", model="x"))
    assert torch.equal(targets.loss_mask, batch.seq.response_mask)
    assert torch.equal(targets.token_advantages, batch.seq.response_mask.float())


def test_the_table_has_every_configurable_algorithm() -> None:
    from harness.training.config import ALGORITHMS as NAMES

    assert set(ALGORITHMS) == set(NAMES)
