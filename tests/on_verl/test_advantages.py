"""HAE and turn-level GAE computed through verl's DataProto (runs in the verl environment) equal the
per-episode reference loops of `harness.training.reference`, read at the positions docs/verl.md
names, in whatever order verl's rows come."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("verl")

from verl import DataProto  # noqa: E402

from harness.on_verl.advantages import compute_advantage  # noqa: E402
from harness.training.config import TrainConfig  # noqa: E402
from harness.training.reference import gae_loop, hae_loop  # noqa: E402

R = 24  # response width


def whiten(x: torch.Tensor) -> torch.Tensor:
    return (x - x.mean()) / (x.std() + 1e-6)


def random_batch(seed: int, flat: bool = False):
    """Episodes of random length; each turn's reply: switch word, subgoal, action at random places."""
    rng = np.random.default_rng(seed)
    rows, spans = [], []
    for b in range(int(rng.integers(3, 7))):
        T, terminated = int(rng.integers(1, 6)), bool(rng.random() < 0.6)
        for t in range(T):
            length = int(rng.integers(10, R + 1))
            sw, sg0 = int(rng.integers(1, 3)), int(rng.integers(3, 5))
            sg1 = sg0 + int(rng.integers(1, 3))
            act0 = sg1 + 1
            act1 = min(act0 + int(rng.integers(1, 3)), length - 1)
            valid = bool(rng.random() < 0.8)
            masks = {name: [0] * length for name in ("switch", "subgoal", "action")}
            if valid and not flat:
                masks["switch"][sw] = 1
                masks["subgoal"][sg0:sg1] = [1] * (sg1 - sg0)
            if valid:
                masks["action"][act0:act1] = [1] * (act1 - act0)
            rows.append({"hiper_episode": f"e{b}", "hiper_turn": t, "hiper_reward": float(rng.normal()),
                         "hiper_switch": t == 0 or bool(rng.random() < 0.4), "hiper_format_valid": valid,
                         "hiper_terminated": terminated, "hiper_won": False,
                         **{f"hiper_{k}_mask": v for k, v in masks.items()}})
            spans.append((length, sw, sg1, valid))
    order = rng.permutation(len(rows))  # verl's rows come in any order
    rows, spans = [rows[i] for i in order], [spans[i] for i in order]
    values = torch.tensor(rng.normal(size=(len(rows), R)), dtype=torch.float32)
    response_mask = torch.zeros(len(rows), R, dtype=torch.long)
    for n, (length, *_) in enumerate(spans):
        response_mask[n, :length] = 1
    columns = {key: np.array([row[key] for row in rows] + [None], dtype=object)[:-1] for key in rows[0]}
    data = DataProto.from_dict(tensors={"values": values, "response_mask": response_mask}, non_tensors=columns)
    return data, rows, spans


def episodes(rows):
    """{episode: [row index of turn 0, 1, ...]}."""
    out: dict[str, list[int]] = {}
    for n, row in sorted(enumerate(rows), key=lambda item: item[1]["hiper_turn"]):
        out.setdefault(row["hiper_episode"], []).append(n)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_hae_through_a_dataproto_equals_the_reference_loops(seed):
    cfg = TrainConfig(model="m", algorithm="hiper", gamma=0.97, lam_turn=0.9, lam_seg=0.8)
    data, rows, spans = random_batch(seed)
    values = data.batch["values"].double().clone()
    out = compute_advantage(data, cfg)
    adv_out, ret_out = out.batch["advantages"].double(), out.batch["returns"].double()
    low_at = {n: (sg1 if valid and sg1 < length else 0) for n, (length, _, sg1, valid) in enumerate(spans)}
    term_at = {n: (sw if valid else 0) for n, (length, sw, _, valid) in enumerate(spans)}
    A_low, A_high, A_sw, expected_ret = {}, {}, {}, {}
    for turns in episodes(rows).values():
        grid = lambda xs: torch.tensor([xs], dtype=torch.float64)  # noqa: E731
        r = grid([rows[n]["hiper_reward"] for n in turns])
        sw = torch.tensor([[rows[n]["hiper_switch"] for n in turns]])
        V_high, V_low = grid([values[n, 0] for n in turns]), grid([values[n, low_at[n]] for n in turns])
        term = torch.tensor([rows[turns[0]]["hiper_terminated"]])
        mask = torch.ones_like(sw)
        h = hae_loop(r, V_low, V_high, sw, mask, term, cfg.gamma, cfg.lam_turn, cfg.lam_seg)
        G = hae_loop(r, torch.zeros_like(V_high), V_high, sw, mask, term, cfg.gamma, 1.0, 1.0)["ret_low"]
        for t, n in enumerate(turns):
            A_low[n], A_sw[n] = h["adv_low"][0, t], G[0, t] - values[n, term_at[n]]
            if h["boundary"][0, t]:
                A_high[n] = h["adv_high"][0, t]
            expected_ret[n] = {low_at[n]: h["ret_low"][0, t], term_at[n]: G[0, t]}
            if h["boundary"][0, t]:
                expected_ret[n][0] = h["ret_high"][0, t]
    # token assignment: A_low on the action and format tokens (every token of a malformed reply),
    # A_high on a segment start's subgoal, A_switch on the switch word after the first turn
    low_tokens, high_tokens, switch_tokens = [], [], []
    for n, row in enumerate(rows):
        length, valid = spans[n][0], row["hiper_format_valid"]
        for j in range(length):
            if valid and row["hiper_subgoal_mask"][j]:
                if n in A_high:
                    high_tokens.append((n, j))
            elif valid and row["hiper_switch_mask"][j]:
                if row["hiper_turn"] > 0:
                    switch_tokens.append((n, j))
            else:
                low_tokens.append((n, j))
    for tokens, source in ((low_tokens, A_low), (high_tokens, A_high), (switch_tokens, A_sw)):
        if len(tokens) >= 2:
            expected = whiten(torch.stack([torch.as_tensor(source[n], dtype=torch.float64) for n, _ in tokens]))
            got = torch.stack([adv_out[n, j] for n, j in tokens])
            torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    assigned = set(low_tokens) | set(high_tokens) | set(switch_tokens)
    for n in range(len(rows)):
        for j in range(R):
            if (n, j) not in assigned:
                assert adv_out[n, j] == 0.0
            target = expected_ret[n].get(j, values[n, j])
            assert ret_out[n, j].item() == pytest.approx(float(target), abs=1e-4), (n, j)


@pytest.mark.parametrize("seed", range(4))
def test_turn_gae_through_a_dataproto_equals_the_reference_loop(seed):
    cfg = TrainConfig(model="m", algorithm="ppo", gamma=0.95, lam=0.9)
    data, rows, spans = random_batch(seed, flat=True)
    values = data.batch["values"].double().clone()
    out = compute_advantage(data, cfg)
    A, ret = {}, {}
    for turns in episodes(rows).values():
        r = torch.tensor([[rows[n]["hiper_reward"] for n in turns]], dtype=torch.float64)
        V = torch.tensor([[values[n, 0] for n in turns]], dtype=torch.float64)
        term = torch.tensor([rows[turns[0]]["hiper_terminated"]])
        a, g = gae_loop(r, V, torch.ones_like(r, dtype=torch.bool), term, cfg.gamma, cfg.lam)
        for t, n in enumerate(turns):
            A[n], ret[n] = a[0, t], g[0, t]
    tokens = [(n, j) for n, (length, *_) in enumerate(spans) for j in range(length)]
    expected = whiten(torch.stack([A[n] for n, _ in tokens]))
    got = torch.stack([out.batch["advantages"][n, j].double() for n, j in tokens])
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    for n in range(len(rows)):
        assert out.batch["returns"][n, 0].item() == pytest.approx(float(ret[n]), abs=1e-4)
        torch.testing.assert_close(out.batch["returns"][n, 1:], values[n, 1:].float())


def test_broken_batches_and_unsupported_settings_are_refused():
    data, rows, _ = random_batch(0)
    with pytest.raises(ValueError, match="switch_advantage: return"):
        compute_advantage(data, TrainConfig(model="m", algorithm="hiper", switch_advantage="paper"))
    with pytest.raises(ValueError, match="no verl estimator"):
        compute_advantage(data, TrainConfig(model="m", algorithm="grpo"))
    twice = data.non_tensor_batch["hiper_turn"].copy()
    twice[:] = 0
    data.non_tensor_batch["hiper_turn"] = twice
    with pytest.raises(ValueError, match="turn 0 twice"):
        compute_advantage(data, TrainConfig(model="m", algorithm="hiper"))
    bare = DataProto.from_dict(tensors={"values": torch.zeros(2, 3), "response_mask": torch.ones(2, 3)})
    with pytest.raises(ValueError, match="no hiper_\\* fields"):
        compute_advantage(bare, TrainConfig(model="m", algorithm="ppo"))
