"""`trainer_mode=hiper` (runs in the verl environment): Ray's setup hook registers it in verl's
workers, and its advantage step reads verl's TransferQueue and writes back what our estimators
compute, on a local Ray with TransferQueue's own storage."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("verl")

import ray  # noqa: E402
import transfer_queue as tq  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from verl.trainer.ppo.padding_utils import upsample_batch_to_divisible_size  # noqa: E402
from verl.utils.tensordict_utils import list_of_dict_to_tensordict  # noqa: E402

from harness.on_verl.advantages import ESTIMATORS  # noqa: E402
from harness.on_verl.trainer import HiPERTrainer, hiper_config  # noqa: E402
from harness.training.config import ConfigError  # noqa: E402


@pytest.fixture(scope="module")
def transfer_queue():
    # TransferQueue's controller and storage actors hold a CPU each: room for one task more
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
             runtime_env={"worker_process_setup_hook": "harness.on_verl.trainer.setup"})
    tq.init(OmegaConf.create({"backend": {"storage_backend": "SimpleStorage",
                                          "SimpleStorage": {"total_storage_size": 1000, "num_data_storage_units": 1}}}))
    yield
    tq.close()
    ray.shutdown()


def loop_file(tmp_path, **hiper) -> str:
    path = tmp_path / "agent_loops.yaml"
    OmegaConf.save(OmegaConf.create([{"name": "hiper_env", "_target_": "harness.on_verl.agent_loop.HiPEREnvAgentLoop",
                                      "hiper": {"algorithm": "hiper", "env_id": "HiPER/ALFWorld-v0", **hiper}}]), path)
    return str(path)


def trainer_config(path: str | None):
    return OmegaConf.create({"actor_rollout_ref": {"model": {"path": "m"},
                                                   "rollout": {"agent": {"agent_loop_config_path": path}}}})


def turn_row(episode: str, turn: int, length: int, switch: bool, reward: float) -> dict:
    masks = {"hiper_switch_mask": [0, 1] + [0] * (length - 2), "hiper_subgoal_mask": [0, 0, 1, 1] + [0] * (length - 4),
             "hiper_action_mask": [0] * 5 + [1] * (length - 5)}
    extra = {"hiper_episode": episode, "hiper_turn": turn, "hiper_reward": reward, "hiper_switch": switch,
             "hiper_format_valid": True, "hiper_terminated": turn == 1, "hiper_won": False, **masks}
    generator = torch.Generator().manual_seed(turn * 7 + length)
    return {"response_mask": torch.ones(length, dtype=torch.int64), "values": torch.randn(length, generator=generator),
            "extra_fields": extra}


def test_the_setup_hook_registers_the_trainer_in_ray_workers(transfer_queue):
    @ray.remote
    def trainer_class() -> str:
        from verl.trainer.ppo.v1 import get_trainer_cls

        return get_trainer_cls("hiper").__name__

    assert ray.get(trainer_class.remote()) == "HiPERTrainer"


def padded_grid(rows: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(row["values"]) for row in rows)
    values = torch.zeros(len(rows), width)
    response_mask = torch.zeros(len(rows), width, dtype=torch.int64)
    for n, row in enumerate(rows):
        values[n, :len(row["values"])] = row["values"]
        response_mask[n, :len(row["values"])] = 1
    return values, response_mask


@pytest.mark.parametrize("pad_to", [1, 8])
def test_the_advantage_step_writes_what_the_estimator_computes(transfer_queue, tmp_path, pad_to):
    rows = [turn_row("a", 0, 8, True, 0.5), turn_row("b", 0, 9, True, -0.1), turn_row("a", 1, 7, False, 10.0),
            turn_row("b", 1, 8, True, 0.0)]
    meta = tq.kv_batch_put(keys=[f"p{pad_to}k{i}" for i in range(len(rows))], partition_id="train",
                           fields=list_of_dict_to_tensordict(rows), tags=[{"seq_len": 9} for _ in rows])
    # verl pads a batch to its mini-batch multiple with copies of the first row, fields and all
    meta = upsample_batch_to_divisible_size(meta, pad_to, eos_token_id=0)
    assert len(meta) == max(pad_to, len(rows))
    trainer = object.__new__(HiPERTrainer)  # the step needs only the config; verl's workers stay unbuilt
    trainer.config = trainer_config(loop_file(tmp_path, gamma=0.9))
    metrics: dict = {}
    out = trainer._compute_advantage(meta, metrics)
    assert metrics == {"hiper/turns": 4, "hiper/episodes": 2}
    got = tq.kv_batch_get(keys=out.keys, partition_id=out.partition_id, select_fields=["advantages", "returns"])
    got = got.to_padded_tensor()
    values, response_mask = padded_grid(rows)
    advantages, returns = ESTIMATORS["hiper"](values, response_mask, [row["extra_fields"] for row in rows],
                                              hiper_config(trainer.config))
    width = response_mask.shape[1]
    torch.testing.assert_close(got["advantages"][:4, :width] * response_mask, advantages * response_mask)
    torch.testing.assert_close(got["returns"][:4, :width] * response_mask, returns * response_mask)
    assert advantages.abs().sum() > 0
    assert not got["advantages"][4:].any()  # the padding rows


def test_settings_come_from_the_agent_loop_file(tmp_path):
    cfg = hiper_config(trainer_config(loop_file(tmp_path, lam_seg=0.5)))
    assert cfg.lam_seg == 0.5 and cfg.model == "m" and cfg.agent == "hiper"
    with pytest.raises(ConfigError, match="agent_loop_config_path"):
        hiper_config(trainer_config(None))
    with pytest.raises(ConfigError, match="unknown config key 'lam_sge'"):
        hiper_config(trainer_config(loop_file(tmp_path, lam_sge=0.5)))
    with pytest.raises(ConfigError, match="for grpo use verl's own"):
        hiper_config(trainer_config(loop_file(tmp_path, algorithm="grpo", agent="react")))
