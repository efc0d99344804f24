"""Two whole verl training steps of HAE on ALFWorld, with validation, on the CPU (runs in the verl environment):
verl's `main_ppo` with trainer_mode hiper, our agent loop, the `hf` rollout and verl's FSDP2 actor,
reference and critic (harness/on_verl/cpu.py), a small random model. What it shows: every stage of
verl's step runs on our rows, the episodes keep the agent loop file's settings, the losses stay
finite, and after the first update the rollout generates with the updated weights."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("verl")

from harness.on_verl.data import main as write_rows  # noqa: E402
from harness.training.config import TrainConfig  # noqa: E402
from harness.training.rollout import expert_demos, render  # noqa: E402
from harness.training.tiny import bpe_tokenizer, save_random_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def metrics(tmp_path_factory) -> list[dict]:
    tmp = tmp_path_factory.mktemp("verl_cpu")
    probe = TrainConfig(algorithm="hiper", env_id="HiPER/ALFWorld-v0", tiny_model={}, seed=0)
    texts = [render(None, messages) + reply for messages, reply in expert_demos(probe, 4, 0)]
    model = save_random_model({"model_type": "qwen2", "hidden_size": 32, "intermediate_size": 64,
                               "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2},
                              bpe_tokenizer(texts, 1000), tmp / "model", seed=0)
    for split, episodes in (("train", 4), ("valid_seen", 2)):
        write_rows(["--env", "HiPER/ALFWorld-v0", "--split", split, "--episodes", str(episodes),
                    "--out", str(tmp / f"{split}.parquet")])
    env = {**os.environ, "VERL_PLATFORM": "cpu", "VERL_USE_EXTERNAL_MODULES": "harness.on_verl.cpu",
           "VERL_FILE_LOGGER_PATH": str(tmp / "metrics.jsonl"), "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, "-m", "verl.trainer.main_ppo", f"--config-path={ROOT}/harness/on_verl/configs",
               "--config-name=hiper_alfworld_cpu", f"actor_rollout_ref.model.path={model}",
               f"data.train_files={tmp / 'train.parquet'}", f"data.val_files={tmp / 'valid_seen.parquet'}",
               "trainer.total_training_steps=2", "trainer.logger=[console,file]",
               "trainer.val_before_train=true", "trainer.test_freq=2",  # validation before and after
               f"trainer.default_local_dir={tmp / 'checkpoints'}", f"hydra.run.dir={tmp / 'hydra'}",
               # a large step, so that a rollout still on the old weights would show in the log-probs
               "actor_rollout_ref.actor.optim.lr=0.01"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [json.loads(line)["data"] for line in (tmp / "metrics.jsonl").read_text().splitlines()]


def test_two_steps_run_on_our_rows(metrics):
    validation, metrics = metrics[0], metrics[1:]
    assert [step["training/global_step"] for step in metrics] == [1, 2]
    for step in (validation, metrics[-1]):  # the valid_seen rows, played on their own split
        assert step["val-aux/num_turns/max"] == 3 and "val-core/HiPER/ALFWorld-v0/reward/mean@1" in step
    for step in metrics:
        assert step["hiper/episodes"] == 2  # data.train_batch_size
        # the agent loop file's max_steps (3) held for every episode; a random model never wins
        assert step["hiper/turns"] == 6 and step["num_turns/max"] == 3
        for key in ("actor/pg_loss", "actor/kl_loss", "critic/vf_loss", "actor/grad_norm", "critic/grad_norm"):
            assert math.isfinite(step[key]), key
        assert step["critic/advantages/max"] > step["critic/advantages/min"]


def test_the_rollout_generates_with_the_updated_weights(metrics):
    metrics = metrics[1:]  # the training steps
    # verl compares the rollout's token probabilities with the actor's own. At step 2 the actor has
    # taken one step of lr 0.01: a rollout left on the first weights correlates at 0.1 to 0.3, and
    # differs ten times more on average (measured by loading no weights into the server)
    for step in metrics:
        assert step["training/rollout_actor_probs_pearson_corr"] > 0.9
        assert step["training/rollout_probs_diff_mean"] < 1e-4
