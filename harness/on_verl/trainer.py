"""verl's synchronous v1 trainer with our advantage step: `trainer.v1.trainer_mode=hiper`.

verl's registered advantage estimators see token rewards and the response mask only, while HAE
needs the critic's values at chosen tokens and each row's turn fields. So the one thing replaced is
the trainer's `_compute_advantage`: it reads `values`, `response_mask` and the rows' `extra_fields`
from verl's TransferQueue, computes HAE (or turn-level GAE) with `advantages.ESTIMATORS`, and writes
`advantages` and `returns` back, as verl's own step does. Rollouts, the critic, the PPO update, FSDP
and vLLM are verl's, untouched.

verl builds its trainer inside a Ray actor, so this module must be imported there: pass
`+ray_kwargs.ray_init.runtime_env.worker_process_setup_hook=harness.on_verl.trainer.setup`
(docs/verl.md has the whole command). The settings come from the `hiper_env` entry of the agent
loop file (`actor_rollout_ref.rollout.agent.agent_loop_config_path`), shared with the rollouts.
"""

from __future__ import annotations

from typing import Any

import torch
import transfer_queue as tq
from omegaconf import OmegaConf
from tensordict import TensorDict
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync
from verl.workers.utils.padding import response_to_nested

from harness.on_verl import LOOP_NAME
from harness.on_verl.advantages import ESTIMATORS
from harness.training.config import ConfigError, TrainConfig, config_from_dict


def setup() -> None:
    """Ray's worker setup hook: importing this module registered the trainer."""


def hiper_config(config: Any) -> TrainConfig:
    """Our settings from the `hiper_env` entry of verl's agent loop file, with the policy's model."""
    path = OmegaConf.select(config, "actor_rollout_ref.rollout.agent.agent_loop_config_path")
    if not path:
        raise ConfigError("trainer_mode hiper needs actor_rollout_ref.rollout.agent.agent_loop_config_path "
                          f"naming a file with a {LOOP_NAME} entry")
    entries = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    entry = next((e for e in entries or [] if isinstance(e, dict) and e.get("name") == LOOP_NAME), None)
    if entry is None:
        raise ConfigError(f"{path} has no entry named {LOOP_NAME}")
    cfg = config_from_dict({**entry.get("hiper", {}), "model": str(config.actor_rollout_ref.model.path)}, str(path))
    if cfg.algorithm not in ESTIMATORS:
        raise ConfigError(f"trainer_mode hiper computes {', '.join(ESTIMATORS)}; for {cfg.algorithm} use verl's "
                          "own trainer_mode sync and algorithm.adv_estimator")
    return cfg


@register_trainer("hiper")
class HiPERTrainer(PPOTrainerSync):
    """`PPOTrainerSync` whose advantages and critic targets are HAE's (or turn-level GAE's)."""

    def _compute_advantage(self, batch: Any, metrics: dict) -> Any:
        cfg = hiper_config(self.config)
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id,
                               select_fields=["response_mask", "values", "extra_fields"])
        response_mask = data["response_mask"]
        padded = data.select("response_mask", "values").to_padded_tensor()
        extra = data["extra_fields"]  # a list of dicts (a NonTensorStack in some tensordict versions)
        rows = [dict(row) for row in (extra.tolist() if hasattr(extra, "tolist") else extra)]
        # verl pads a batch to its mini-batch multiple with copies of the first row's fields (tagged
        # is_padding, nothing trained): they are no turns of ours, and get advantage 0.
        real = [n for n, tag in enumerate(batch.tags) if not tag.get("is_padding", False)]
        turns = [rows[n] for n in real]
        advantages, returns = torch.zeros_like(padded["values"]), padded["values"].clone()
        advantages[real], returns[real] = ESTIMATORS[cfg.algorithm](
            padded["values"][real], padded["response_mask"][real], turns, cfg)
        metrics["hiper/turns"] = len(turns)
        metrics["hiper/episodes"] = len({row["hiper_episode"] for row in turns})
        output = TensorDict({"advantages": response_to_nested(advantages, response_mask),
                             "returns": response_to_nested(returns, response_mask)}, batch_size=len(batch))
        return tq.kv_batch_put(keys=batch.keys, partition_id=batch.partition_id, fields=output)
