"""`hiper-bench train`: bad configs, smoke runs of two algorithms, checkpoints as agents, resume, NaN.

Each run is a tiny random GPT-2 with a word-level tokenizer on KeyDoor, a few turns, one torch thread.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch import Tensor
from typer.testing import CliRunner

from harness.cli import app
from harness.training.config import ConfigError, TrainConfig, config_from_dict, load_config
from harness.training.policy import CheckpointError, Policy, make_sequences
from harness.training.rollout import PolicyBackend, expert_demos, render
from harness.training.tiny import build_tiny_model
from harness.training.trainer import Trainer, TrainingError

SMOKE = Path(__file__).parents[2] / "harness" / "configs" / "train"
TINY = {
    "env_id": "HiPER/KeyDoor-v0", "env_kwargs": {"rooms": [2]}, "train_split": "train", "max_steps": 4,
    "tiny_model": {"model_type": "gpt2", "n_embd": 16, "n_layer": 1, "n_head": 2},
    "tiny_tokenizer_episodes": 4, "num_envs": 4, "group_size": 2, "rollout_workers": 2, "start_method": "fork",
    "torch_threads": 1, "max_new_tokens": 12, "actor_lr": 1e-3, "critic_lr": 1e-3, "minibatch_size": 16,
    "checkpoint_every": 1, "eval_every": 0, "sft_episodes": 4,
}


def tiny(tmp_path: Path, **overrides: object) -> TrainConfig:
    return config_from_dict({**TINY, "out": str(tmp_path / "run"), "results_db": str(tmp_path / "r.sqlite"),
                             **overrides})


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(("data", "message"), [
    ({"algorithm": "dpo", "model": "x"}, "unknown algorithm 'dpo'; choose from hiper, ppo, grpo, rloo, gigpo, sft"),
    ({"model": "x", "actor_learning_rate": 1e-6}, "unknown config key 'actor_learning_rate' (did you mean 'actor_lr'?)"),
    ({"model": "x", "gamma": "high"}, "gamma must be float"),
    ({"algorithm": "grpo", "model": "x", "num_envs": 6, "group_size": 4}, "needs group_size >= 2 dividing"),
    ({"algorithm": "ppo", "agent": "hiper", "model": "x"}, "trains the flat react agent"),
    ({"tiny_model": {}, "model": "x"}, "exactly one of `model` and `tiny_model`"),
    ({"algorithm": "grpo", "model": "x", "critic_warmup": 2}, "critic_warmup needs a critic (hiper or ppo)"),
    ({"algorithm": "sft", "model": "x", "sft_noise": 1.5}, "sft_noise is a probability, got 1.5"),
])
def test_bad_config_is_one_line_exit_2(tmp_path: Path, data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(write(tmp_path, data))
    result = CliRunner().invoke(app, ["train", str(write(tmp_path, data)), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_every_shipped_config_loads() -> None:
    paths = sorted(SMOKE.glob("*.yaml"))
    assert any(p.name.startswith("smoke-") for p in paths) and any("qwen" in p.name for p in paths)
    for path in paths:
        load_config(path)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["hiper", "gigpo"])
def test_smoke_training_writes_metrics_and_a_loadable_agent(tmp_path: Path, algorithm: str) -> None:
    """Two iterations through the CLI; the checkpoint then plays as an agent in `hiper-bench run`."""
    cfg = {**TINY, "algorithm": algorithm, "iterations": 2, "results_db": str(tmp_path / "r.sqlite"),
           "eval_every": 2, "eval_episodes": 2, "eval_workers": 1, "eval_split": "valid_unseen"}
    cfg["env_kwargs"] = {"rooms": [2, 3]}
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(write(tmp_path, cfg)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["iteration"] for m in lines] == [1, 2]
    for key in ("rollout/return", "rollout/success", "losses/policy", "losses/kl", "losses/entropy",
                "losses/clip_fraction", "adv/std", "rollout/switch_rate", "rollout/segment_length"):
        assert all(key in m for m in lines), key
    assert "eval/success" in lines[1]
    if algorithm == "hiper":
        assert {"losses/value_low", "losses/value_high", "losses/value_term"} <= set(lines[0])
    assert list((out / "tb").glob("events.out.tfevents.*"))
    agent = "hiper" if algorithm == "hiper" else "react"
    kwargs = json.dumps({"backend": "hf", "backend_kwargs": {"model": str(out / "checkpoints" / "iter_000002"),
                                                             "max_new_tokens": 12}})
    result = CliRunner().invoke(app, ["run", "--env", "HiPER/KeyDoor-v0", "--split", "valid_unseen", "--agent", agent,
                                      "--episodes", "1", "--max-steps", "2", "--db", str(tmp_path / "r.sqlite"),
                                      "--agent-kwargs", kwargs, "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "1 episodes played" in result.output


@pytest.mark.slow
def test_interrupted_run_resumes_with_nothing_lost(tmp_path: Path) -> None:
    """Two iterations, stop; resume to three: same weights as three uninterrupted iterations.
    One episode per iteration: with several, which prompts share a `generate` batch depends on
    timing, and with it the samples, so two uninterrupted runs would differ too."""
    base = {"algorithm": "ppo", "rollout_workers": 1, "num_envs": 1}
    straight = Trainer(tiny(tmp_path / "a", iterations=3, **base), log=lambda _: None)
    straight.train()
    Trainer(tiny(tmp_path / "b", iterations=2, **base), log=lambda _: None).train()
    lines: list[str] = []
    resumed = Trainer(tiny(tmp_path / "b", iterations=3, **base), log=lines.append)
    assert resumed.iteration == 2 and "resuming" in lines[0]
    resumed.train()
    for p, q in zip(straight.policy.parameters(), resumed.policy.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    metrics = [json.loads(line) for line in (tmp_path / "b" / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["iteration"] for m in metrics] == [1, 2, 3]


def test_checkpoint_of_another_architecture_is_refused(tmp_path: Path) -> None:
    trainer = Trainer(tiny(tmp_path, algorithm="sft", iterations=1), log=lambda _: None)
    trainer.train()
    wider = {**TINY["tiny_model"], "n_embd": 32}
    with pytest.raises(ConfigError, match="holds a run with tiny_model="):
        Trainer(tiny(tmp_path, algorithm="sft", iterations=2, tiny_model=wider))
    # the same run directory's checkpoint loaded into a policy of another width
    other = Trainer(tiny(tmp_path / "other", algorithm="sft", iterations=1, tiny_model=wider), log=lambda _: None)
    with pytest.raises(CheckpointError, match="another architecture.*hidden_size 16 vs 32"):
        other.policy.load(tmp_path / "run" / "checkpoints" / "iter_000001")


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = Trainer(tiny(tmp_path, algorithm="sft", iterations=3), log=lambda _: None)
    good = trainer.sft_iteration
    monkeypatch.setattr(trainer, "sft_iteration",
                        lambda data: good(data) if trainer.iteration < 2 else trainer._step(torch.tensor(float("nan"))))
    with pytest.raises(TrainingError, match=r"non-finite loss \(nan\) at iteration 2.*iter_000001"):
        trainer.train()
    saved = trainer.policy.state_dict()
    assert (tmp_path / "run" / "checkpoints" / "latest").read_text() == "iter_000001"
    resumed = Trainer(tiny(tmp_path, algorithm="sft", iterations=3), log=lambda _: None)
    assert resumed.iteration == 1
    for key, value in resumed.policy.state_dict().items():
        torch.testing.assert_close(value, saved[key])


def test_rollouts_sample_the_policy_they_score(tmp_path: Path) -> None:
    """Regression: rollouts sampled with transformers' default top-k 50 while PPO scored them under the
    full softmax, so pi_old was not the sampling policy. With 200 words, a random model's top-50
    truncation would raise each sampled token's log-probability by about log(200 / 50)."""
    model_dir = build_tiny_model(TINY["tiny_model"], [" ".join(f"w{i}" for i in range(200))], tmp_path / "m", 0)
    policy = Policy(model_dir)
    backend = PolicyBackend(policy.model, policy.tokenizer, "cpu", max_new_tokens=6, temperature=1.0, top_p=1.0,
                            batch_size=4)
    sampled: dict[str, Any] = {}
    generate = policy.model.generate

    def spy(**kwargs: Any) -> Tensor:
        out = generate(**kwargs, output_scores=True, return_dict_in_generate=True)
        sampled.update(sequences=out.sequences, scores=out.scores)
        return out.sequences

    policy.model.generate = spy
    messages = [[{"role": "user", "content": "w1 w2 w3"}], [{"role": "user", "content": "w4"}]]
    backend.generate(messages)
    width = len(sampled["scores"])
    new = sampled["sequences"][:, -width:]
    generated = torch.stack([s.log_softmax(-1) for s in sampled["scores"]], 1).gather(-1, new[..., None])[..., 0]
    tok = policy.tokenizer
    prompts = [tok(render(tok, m), add_special_tokens=False)["input_ids"] for m in messages]
    seq = make_sequences(prompts, new.tolist(), tok.pad_token_id)
    scored = policy.score(seq, with_values=False).logprobs
    for n in range(len(messages)):
        torch.testing.assert_close(generated[n], scored[n][seq.response_mask[n]], atol=1e-4, rtol=0)


def test_critic_warmup_trains_only_the_critic(tmp_path: Path) -> None:
    """With `critic_warmup: 1` the first iteration leaves the policy's LM as it was and moves the
    critic; the second moves the LM too."""
    trainer = Trainer(tiny(tmp_path, algorithm="hiper", critic="separate", critic_warmup=1, iterations=2),
                      log=lambda _: None)

    def snapshot() -> tuple[list[Tensor], list[Tensor]]:
        critic = [*trainer.policy.heads.parameters(), *trainer.policy.critic_backbone.parameters()]
        return ([p.detach().clone() for p in trainer.policy.model.parameters()],
                [p.detach().clone() for p in critic])

    def moved(before: list[Tensor], after: list[Tensor]) -> bool:
        return any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))

    states = [snapshot()]
    original_save = trainer.save

    def save_and_snapshot() -> Path:
        states.append(snapshot())
        return original_save()

    trainer.save = save_and_snapshot  # called after every iteration (checkpoint_every 1)
    trainer.train()
    (lm0, critic0), (lm1, critic1), (lm2, _) = states
    assert not moved(lm0, lm1) and moved(critic0, critic1)
    assert moved(lm1, lm2)


def test_noisy_demonstrator_plays_and_records_random_admissible_actions(tmp_path: Path) -> None:
    """The expert wins each 2-room task in 4 turns and never walks west (the key is in room 1); a
    demonstrator that errs half the time takes longer, and its transcripts show the errors it made."""
    def actions(noise: float) -> list[str]:
        demos = expert_demos(tiny(tmp_path, max_steps=10, sft_noise=noise), 20, seed=3)
        return [re.search(r"<action>(.*?)</action>", reply).group(1) for _, reply in demos]

    clean, noisy = actions(0.0), actions(0.5)
    assert len(clean) == 4 * 20 and "go west" not in clean
    assert len(noisy) > len(clean) and "go west" in noisy
    assert all(re.fullmatch(r"take \w+ key|open \w+ door|go east|go west|take treasure", a) for a in noisy)
