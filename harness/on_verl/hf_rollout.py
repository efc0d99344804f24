"""The `hf` rollout: verl's token-in, token-out generation served by transformers' `generate`.

verl's rollouts (vLLM, SGLang, TRT-LLM) need an accelerator; this one runs anywhere, one reply at a
time, and exists so that a whole verl training step can run on a CPU (harness.on_verl.cpu). It has the
parts verl's hybrid engine expects of a rollout, registered by name:

* `GenerateServer`, a Ray actor holding a copy of the policy; verl's agent loops call its `generate`;
* `WeightSender`, the rollout object inside each trainer worker: after every update verl hands it the
  actor's weights, and it sends them to the server (verl's `naive` weight sync);
* `HFReplica`, which starts the server when verl builds its rollout replicas.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import ray
import torch
from transformers import AutoModelForCausalLM
from verl.utils.config import omega_conf_to_dataclass
from verl.workers.config import HFModelConfig
from verl.workers.rollout import base as rollout_base
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutReplica, RolloutReplicaRegistry, TokenOutput

NAME = "hf"


def server_name(replica_rank: int) -> str:
    return f"hiper_hf_rollout_{replica_rank}"


class GenerateServer:
    """The policy's copy that generates; replies one at a time (a lock), off the event loop."""

    def __init__(self, config: Any, model_config: Any, replica_rank: int):
        self.config = omega_conf_to_dataclass(config)
        model: HFModelConfig = omega_conf_to_dataclass(model_config, dataclass_type=HFModelConfig)
        self.model = AutoModelForCausalLM.from_pretrained(model.local_path, dtype=torch.float32,
                                                          attn_implementation="sdpa").eval()
        generation = model.generation_config
        self.eos_token_id = (generation.eos_token_id if generation is not None else None) or model.hf_config.eos_token_id
        self.pad_token_id = model.tokenizer.pad_token_id if model.tokenizer.pad_token_id is not None else 0
        self.lock = asyncio.Lock()
        self.global_steps: int | None = None

    def _generate(self, prompt_ids: list[int], params: dict[str, Any]) -> tuple[list[int], list[float] | None]:
        """Sample a reply; its log-probs are log softmax(logits / temperature), as verl's actor scores them."""
        room = self.config.prompt_length + self.config.response_length - len(prompt_ids)
        temperature = float(params.get("temperature", 1.0))
        top_k = int(params.get("top_k", -1) or -1)
        sampling = {"do_sample": True, "temperature": temperature, "top_p": float(params.get("top_p", 1.0)),
                    "top_k": top_k if top_k > 0 else None} if temperature > 0 else {"do_sample": False}
        prompt = torch.tensor([prompt_ids])
        with torch.no_grad():
            out = self.model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt),
                                      max_new_tokens=max(1, min(self.config.response_length, room)),
                                      eos_token_id=self.eos_token_id, pad_token_id=self.pad_token_id,
                                      output_logits=True, return_dict_in_generate=True, **sampling)
        reply = out.sequences[0, prompt.shape[1]:].tolist()
        if not params.get("logprobs"):
            return reply, None
        scale = temperature if temperature > 0 else 1.0
        logits = torch.stack([step[0] for step in out.logits[:len(reply)]]).float() / scale
        return reply, torch.log_softmax(logits, -1).gather(-1, torch.tensor(reply)[:, None])[:, 0].tolist()

    async def generate(self, prompt_ids: list[int], sampling_params: dict[str, Any], request_id: str,
                       image_data: Any = None, video_data: Any = None, **_: Any) -> TokenOutput:
        async with self.lock:
            reply, logprobs = await asyncio.to_thread(self._generate, list(prompt_ids), dict(sampling_params))
        return TokenOutput(token_ids=reply, log_probs=logprobs, stop_reason="completed",
                           extra_fields={"global_steps": self.global_steps})

    async def load_weights(self, state_dict: dict[str, torch.Tensor], global_steps: int | None) -> None:
        async with self.lock:
            missing, unexpected = self.model.load_state_dict(state_dict, strict=False)
        missing = set(missing) - set(self.model.all_tied_weights_keys)  # a tied weight arrives once
        if unexpected or missing:
            raise ValueError(f"the actor's weights do not fit the rollout's model: missing {sorted(missing)[:5]}, "
                             f"unexpected {unexpected[:5]}")
        self.global_steps = global_steps

    # The memory and request controls verl calls on every server: nothing is cached between replies.
    async def wake_up(self) -> None: ...
    async def sleep(self) -> None: ...
    async def clear_kv_cache(self) -> None: ...
    async def release_kv_cache(self) -> None: ...
    async def resume_kv_cache(self) -> None: ...
    async def resume_generation(self) -> None: ...
    async def start_profile(self, **_: Any) -> None: ...
    async def stop_profile(self) -> None: ...

    async def abort_all_requests(self, reject_request: bool = False) -> dict[str, Any]:
        return {"aborted_count": 0, "request_ids": []}


class WeightSender(BaseRollout):
    """The rollout inside a trainer worker: sends the updated actor's weights to its replica's server."""

    def __init__(self, config: Any, model_config: Any, device_mesh: Any, replica_rank: int = -1, **_: Any):
        super().__init__(config, model_config, device_mesh)
        rank = int(os.environ["RANK"])
        size = (self.config.tensor_model_parallel_size * self.config.data_parallel_size
                * self.config.pipeline_model_parallel_size)
        self.replica_rank = rank // size if replica_rank == -1 else replica_rank
        self.sends = rank % size == 0  # one worker per replica sends; every worker gathers (a collective)

    async def resume(self, tags: list[str]) -> None:
        pass

    async def release(self) -> None:
        pass

    async def update_weights(self, weights: Any, global_steps: int | None = None, **_: Any) -> None:
        state = {}
        for name, tensor in weights:
            full = tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor
            state[name] = full.detach().to("cpu", torch.float32)
        if self.sends:
            await ray.get_actor(server_name(self.replica_rank)).load_weights.remote(state, global_steps)


class HFReplica(RolloutReplica):
    """One `GenerateServer` per replica, named so the replica's workers find it."""

    async def launch_servers(self) -> None:
        server = ray.remote(GenerateServer).options(name=server_name(self.replica_rank), num_cpus=0,
                                                    max_concurrency=self.max_concurrency)
        self._server_handle = server.remote(self.config, self.model_config, self.replica_rank)
        self.servers = [self._server_handle]
        self._server_address = f"{NAME}-rollout-{self.replica_rank}"


rollout_base._ROLLOUT_REGISTRY[(NAME, "async")] = f"{__name__}.WeightSender"  # verl has no register function
RolloutReplicaRegistry.register(NAME, lambda: HFReplica)
