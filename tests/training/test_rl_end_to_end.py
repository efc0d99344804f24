"""Spans, advantages and losses together on a tiny random causal LM: shapes line up, gradients flow."""

from __future__ import annotations

import torch
from test_rl_spans import CORPUS, make_tokenizer
from tokenizers import pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel

from harness.training.advantages import hae, segment_returns, switch_advantage_return
from harness.training.losses import entropy, kl_k3, plan_execute_advantages, ppo_clip_loss
from harness.training.spans import tag_tokens


def test_one_hae_update_step() -> None:
    torch.manual_seed(0)
    tok = make_tokenizer(pre_tokenizers.ByteLevel(add_prefix_space=False), 400)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=16, n_layer=1, n_head=2))
    # one trajectory of three turns: SWITCH, KEEP, KEEP (CORPUS[0..2]), terminated with reward 1
    tags = tag_tokens(tok, CORPUS)
    switch = torch.tensor([[True, False, False]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    rewards, terminated = torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([True])
    V_low, V_high, V_term = torch.rand(1, 3), torch.rand(1, 3), torch.rand(1, 3)
    out = hae(rewards, V_low, V_high, switch, mask, terminated, 1.0, 1.0, 0.95)
    G = segment_returns(rewards, V_high, switch, mask, terminated, 1.0)
    adv_switch = switch_advantage_return(G, V_term, mask)
    first = torch.tensor([True, False, False])
    advantages, loss_mask = plan_execute_advantages(
        tags, out.adv_low[0], out.adv_high[0], adv_switch[0], out.boundary[0], first, torch.ones(3, dtype=torch.bool)
    )

    logits = model(input_ids=tags.input_ids, attention_mask=tags.attention_mask).logits[:, :-1]
    logprobs = torch.log_softmax(logits, dim=-1).gather(-1, tags.input_ids[:, 1:, None])[..., 0]
    token_mask = loss_mask[:, 1:]  # logits at position l predict token l + 1
    pg_loss, clip_fraction = ppo_clip_loss(logprobs, logprobs.detach(), advantages[:, 1:], token_mask)
    kl = kl_k3(logprobs, logprobs.detach() + 0.1, token_mask)
    loss = pg_loss + 0.01 * kl - 0.001 * entropy(logits, token_mask)
    loss.backward()
    assert torch.isfinite(loss) and clip_fraction.item() == 0.0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert loss_mask.sum() > 0 and not (loss_mask & ~tags.attention_mask.bool()).any()
