"""`hiper-bench train CONFIG --plan`: the device memory a training config needs, before it runs.

The model is built on PyTorch's meta device (shapes, no weights), so the plan costs seconds even
for a 7B config and needs only the model's `config.json` (a local directory or the hub cache).
With b bytes per parameter (the config's dtype), P the LM's parameters, C a separate critic
backbone's, R the trainable ones (the LM's, or the LoRA adapters', plus the critic's):

    parameters  = b * (P [policy] + P [frozen reference, when KL is on without LoRA] + C + LoRA)
    gradients   = b * R
    optimizer   = 2 * b * R                  (AdamW's two moments, kept in the parameters' dtype)
    activations = one minibatch of `minibatch_size` sequences of S tokens through forward and backward:
                  per token and layer b * (6h + 2 kv + 4 i) saved for backward (h hidden, i MLP, kv the
                  key/value width), for the policy and a separate critic, plus the logits:
                  V * (b + 16) bytes a token (the model's logits, their float32 copy, log-softmax and
                  its gradient, and the softmax of the entropy bonus)
    generation  = hf: the KV cache of `generation_batch_size` sequences of S tokens;
                  vllm: the 40% of the device the trainer gives the engine
    total       = parameters + gradients + optimizer + max(activations, generation)

S is the longest prompt of a few expert episodes (rendered as training renders them, tokenized by
the model's tokenizer) plus `max_new_tokens`. The activation term is an estimate (attention kernels
and allocator slack vary); `bench/gpu_train.py` prints it beside the measured peak.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from harness.training.config import ConfigError, TrainConfig

GIB = 1024**3


@dataclass
class MemoryPlan:
    """Bytes per part of a training run on `device`, and what the device holds (`visible`)."""

    device: str
    sequence_tokens: int
    parameters: int
    gradients: int
    optimizer: int
    activations: int
    generation: int
    visible: int

    @property
    def total(self) -> int:
        return self.parameters + self.gradients + self.optimizer + max(self.activations, self.generation)

    @property
    def fits(self) -> bool:
        return self.total <= self.visible

    def table(self) -> str:
        rows = [("parameters", self.parameters), ("gradients", self.gradients), ("optimizer", self.optimizer),
                ("activations", self.activations), ("generation", self.generation), ("total", self.total),
                (f"visible ({self.device})", self.visible)]
        lines = [f"memory plan (sequences of up to {self.sequence_tokens} tokens)"]
        lines += [f"  {name:<22} {size / GIB:9.2f} GiB" for name, size in rows]
        return "\n".join(lines)


def visible_memory(device: str) -> int:
    """Total memory of `device`: the GPU's for cuda, the machine's RAM for cpu."""
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device} is not visible here (torch sees no CUDA device)")
        return torch.cuda.mem_get_info(torch.device(device))[1]
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _model_config(cfg: TrainConfig, vocab_size: int) -> object:
    from transformers import AutoConfig

    if cfg.tiny_model is not None:
        kwargs = dict(cfg.tiny_model)
        kwargs.setdefault("bos_token_id", 0)  # shapes only: any id inside the vocabulary
        kwargs.setdefault("eos_token_id", 0)
        return AutoConfig.for_model(kwargs.pop("model_type", "gpt2"), vocab_size=vocab_size, **kwargs)
    try:
        return AutoConfig.from_pretrained(cfg.model)
    except Exception as err:  # noqa: BLE001  (transformers raises many kinds for an unusable config)
        raise ConfigError(f"cannot read the config of model {cfg.model!r}: {str(err).splitlines()[0]}") from err


def _tokenizer(cfg: TrainConfig, texts: list[str]) -> object:
    from transformers import AutoTokenizer

    if cfg.tiny_model is not None:
        from harness.training.tiny import word_tokenizer

        return word_tokenizer(texts)
    try:
        return AutoTokenizer.from_pretrained(cfg.model)
    except Exception as err:  # noqa: BLE001
        raise ConfigError(f"cannot read the tokenizer of model {cfg.model!r}: {str(err).splitlines()[0]}") from err


def sequence_tokens(cfg: TrainConfig, episodes: int = 4) -> tuple[int, int]:
    """(S, vocabulary size): the longest expert prompt of `episodes` episodes plus `max_new_tokens`."""
    from harness.training.rollout import expert_demos, render

    demos = expert_demos(cfg, episodes, cfg.seed)
    tokenizer = _tokenizer(cfg, [render(None, m) + reply for m, reply in demos])
    prompts = [render(tokenizer, messages) for messages, _ in demos]
    longest = max(len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"])
    return longest + cfg.max_new_tokens, len(tokenizer)


def _lora_parameters(model: torch.nn.Module, rank: int) -> int:
    """rank * (in + out) for every Linear but the output layer (peft's `all-linear`)."""
    output = model.get_output_embeddings()
    return sum(rank * (m.in_features + m.out_features) for m in model.modules()
               if isinstance(m, torch.nn.Linear) and m is not output)


def plan(cfg: TrainConfig, sequence: tuple[int, int] | None = None) -> MemoryPlan:
    """The memory plan of `cfg` (module docstring); `sequence` is `sequence_tokens(cfg)` when the
    caller has measured it already."""
    from transformers import AutoModel, AutoModelForCausalLM

    from harness.training.algorithms import ALGORITHMS

    S, vocab = sequence or sequence_tokens(cfg)
    config = _model_config(cfg, vocab)
    with torch.device("meta"):
        lm = AutoModelForCausalLM.from_config(config)
        backbone = AutoModel.from_config(config)
    P = sum(p.numel() for p in lm.parameters())
    text = config.get_text_config()
    h, i, layers = text.hidden_size, getattr(text, "intermediate_size", 4 * text.hidden_size), text.num_hidden_layers
    kv = h * (getattr(text, "num_key_value_heads", None) or text.num_attention_heads) // text.num_attention_heads
    V = text.vocab_size
    b = torch.finfo(getattr(torch, cfg.dtype)).bits // 8

    separate = bool(ALGORITHMS[cfg.algorithm].heads(cfg)) and cfg.critic == "separate"
    C = sum(p.numel() for p in backbone.parameters()) if separate else 0
    lora = _lora_parameters(lm, cfg.lora_rank) if cfg.lora_rank else 0
    reference = P if cfg.kl_coef > 0 and not cfg.lora_rank and cfg.algorithm != "sft" else 0
    trainable = (lora or P) + C

    tokens = cfg.minibatch_size * S
    per_layer = b * (6 * h + 2 * kv + 4 * i)
    activations = tokens * (per_layer * layers * (1 + separate) + V * (b + 16))
    if cfg.generation_backend == "vllm":
        generation = int(0.4 * visible_memory(cfg.device))
    else:
        generation = cfg.generation_batch_size * S * layers * 2 * kv * b
    return MemoryPlan(cfg.device, S, b * (P + reference + C + lora), b * trainable, 2 * b * trainable,
                      activations, generation, visible_memory(cfg.device))


__all__ = ["MemoryPlan", "plan", "sequence_tokens", "visible_memory"]
