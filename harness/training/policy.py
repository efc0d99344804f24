"""The trained policy (any transformers causal LM, full or LoRA) with its critic's value heads.

Turns are scored as right-padded `prompt + response` sequences. Positions are *targets*: entry j of
a [N, S - 1] tensor is about token j + 1, predicted by the logits at j. Value heads read hidden
states at chosen positions: the prompt's last token is the state s_t; for HAE's low critic, the
last token of the `<subgoal>` body, so V_low sees the subgoal o_t it conditions on.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from harness.errors import HarnessError

ARCHITECTURE_KEYS = ("model_type", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads")


class CheckpointError(HarnessError):
    """A checkpoint that does not fit the configured model or run."""


def architecture(config: AutoConfig) -> dict[str, object]:
    """The fields that decide whether weights fit a model (aliases such as GPT-2's n_embd resolved)."""
    return {key: getattr(config, key, None) for key in ARCHITECTURE_KEYS}


def check_architecture(saved: dict[str, object], current: dict[str, object], where: str) -> None:
    diff = [f"{k} {saved.get(k)} vs {current.get(k)}" for k in ARCHITECTURE_KEYS if saved.get(k) != current.get(k)]
    if diff:
        raise CheckpointError(f"{where} is from another architecture than this config builds ({', '.join(diff)})")


@dataclass
class Sequences:
    """A batch of turns as model input. `response_mask` and `value_index` are in target positions."""

    input_ids: Tensor  # [N, S] right-padded prompt + response
    attention_mask: Tensor  # [N, S]
    response_mask: Tensor  # [N, S - 1] True where the target token belongs to the response
    prompt_last: Tensor  # [N] position of each prompt's last token (reads V(s_t))

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def select(self, index: Tensor) -> Sequences:
        """Rows `index`, trimmed to the longest of them."""
        length = int(self.attention_mask[index].sum(dim=1).max())
        return Sequences(self.input_ids[index, :length], self.attention_mask[index, :length],
                         self.response_mask[index, :length - 1], self.prompt_last[index])


def make_sequences(prompt_ids: list[list[int]], response_ids: list[list[int]], pad_id: int) -> Sequences:
    """Concatenate each prompt with its response and right-pad the batch."""
    lengths = [len(p) + len(r) for p, r in zip(prompt_ids, response_ids, strict=True)]
    S = max(lengths)
    input_ids = torch.full((len(lengths), S), pad_id, dtype=torch.long)
    attention = torch.zeros(len(lengths), S, dtype=torch.bool)
    response = torch.zeros(len(lengths), S - 1, dtype=torch.bool)
    for n, (p, r) in enumerate(zip(prompt_ids, response_ids, strict=True)):
        input_ids[n, :len(p) + len(r)] = torch.tensor(p + r, dtype=torch.long)
        attention[n, :len(p) + len(r)] = True
        response[n, len(p) - 1:len(p) + len(r) - 1] = True
    prompt_last = torch.tensor([len(p) - 1 for p in prompt_ids], dtype=torch.long)
    return Sequences(input_ids, attention, response, prompt_last)


@dataclass
class Scores:
    logprobs: Tensor  # [N, S - 1] log pi(target token)
    logits: Tensor | None  # [N, S - 1, V] when asked for (entropy)
    hidden: Tensor | None  # [N, S, H] of the critic's backbone, when the policy has value heads


class Policy(nn.Module):
    """A causal LM plus value heads (`heads`, each a Linear on the last hidden state).

    `critic="shared"` reads the policy's own hidden states; `"separate"` gives the critic a copy of
    the backbone with its own weights. With `lora_rank > 0` only LoRA adapters of the LM train, and
    the frozen reference policy is the same model with its adapters switched off.
    """

    def __init__(self, model_dir: str | Path, heads: tuple[str, ...] = (), critic: str = "shared",
                 lora_rank: int = 0, lora_alpha: int = 32, dtype: str = "float32", device: str = "cpu",
                 reference: bool = False):
        super().__init__()
        self.model_dir = str(model_dir)
        torch_dtype = getattr(torch, dtype)
        self.tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(self.model_dir)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=torch_dtype)
        self.lora = lora_rank > 0
        self.reference = copy.deepcopy(model).requires_grad_(False) if reference and not self.lora else None
        if self.lora:
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(model, LoraConfig(r=lora_rank, lora_alpha=lora_alpha,
                                                     target_modules="all-linear", task_type="CAUSAL_LM"))
        self.model = model
        self.critic_backbone = AutoModel.from_pretrained(self.model_dir, dtype=torch_dtype) \
            if heads and critic == "separate" else None
        hidden = model.config.get_text_config().hidden_size
        self.heads = nn.ModuleDict({name: nn.Linear(hidden, 1, dtype=torch_dtype) for name in heads})
        for head in self.heads.values():
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        self.to(device).eval()  # no dropout: the sampling policy and the updated one are the same function
        self.device = torch.device(device)

    @property
    def architecture(self) -> dict[str, object]:
        return architecture(self.model.config)

    def param_groups(self, actor_lr: float, critic_lr: float) -> list[dict]:
        """The LM's trainable weights at the actor's rate; heads and a separate backbone at the critic's."""
        critic = list(self.heads.parameters())
        if self.critic_backbone is not None:
            critic += list(self.critic_backbone.parameters())
        actor = [p for p in self.model.parameters() if p.requires_grad]
        return [g for g in ({"params": actor, "lr": actor_lr}, {"params": critic, "lr": critic_lr}) if g["params"]]

    def score(self, seq: Sequences, with_logits: bool = False, with_values: bool = True) -> Scores:
        """Log-probabilities of each target token, and (for the critic) the last hidden states."""
        seq = Sequences(*(t.to(self.device) for t in (seq.input_ids, seq.attention_mask, seq.response_mask,
                                                       seq.prompt_last)))
        shared = with_values and bool(self.heads) and self.critic_backbone is None
        out = self.model(input_ids=seq.input_ids, attention_mask=seq.attention_mask, output_hidden_states=shared)
        logits = out.logits[:, :-1].float()
        logprobs = torch.log_softmax(logits, dim=-1).gather(-1, seq.input_ids[:, 1:, None])[..., 0]
        hidden = None
        if with_values and self.heads:
            hidden = out.hidden_states[-1] if shared else self.critic_backbone(
                input_ids=seq.input_ids, attention_mask=seq.attention_mask).last_hidden_state
        return Scores(logprobs, logits if with_logits else None, hidden)

    def values(self, hidden: Tensor, head: str, index: Tensor) -> Tensor:
        """[N] value of head `head` read at sequence position `index[n]` of row n."""
        h = hidden[torch.arange(hidden.shape[0], device=hidden.device), index.to(hidden.device)]
        return self.heads[head](h).squeeze(-1).float()

    @torch.no_grad()
    def reference_logprobs(self, seq: Sequences) -> Tensor:
        """Log-probabilities under the frozen initial policy (the KL anchor)."""
        ids, mask = seq.input_ids.to(self.device), seq.attention_mask.to(self.device)
        if self.lora:
            with self.model.disable_adapter():
                logits = self.model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        else:
            logits = self.reference(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        return torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None])[..., 0]

    def save(self, directory: Path) -> None:
        """An ordinary transformers model directory (LoRA merged), so `hf` backends load it as is;
        the critic and, for LoRA, the adapter go to `critic.pt` for resuming."""
        model = copy.deepcopy(self.model).merge_and_unload() if self.lora else self.model
        model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        state = {"heads": self.heads.state_dict(),
                 "critic_backbone": None if self.critic_backbone is None else self.critic_backbone.state_dict(),
                 "adapter": None if not self.lora else {k: v for k, v in self.model.state_dict().items()
                                                        if "lora_" in k}}
        torch.save(state, directory / "critic.pt")
        (directory / "architecture.json").write_text(json.dumps(self.architecture))

    def load(self, directory: Path) -> None:
        """Restore weights saved by `save` into this (identically configured) policy."""
        saved = json.loads((directory / "architecture.json").read_text())
        check_architecture(saved, self.architecture, f"checkpoint {directory}")
        state = torch.load(directory / "critic.pt", map_location=self.device, weights_only=True)
        try:
            if self.lora:
                self.model.load_state_dict(state["adapter"], strict=False)
            else:
                weights = AutoModelForCausalLM.from_pretrained(directory, dtype=self.model.dtype).state_dict()
                self.model.load_state_dict(weights)
            self.heads.load_state_dict(state["heads"])
            if self.critic_backbone is not None:
                self.critic_backbone.load_state_dict(state["critic_backbone"])
        except (RuntimeError, KeyError, AttributeError) as err:
            raise CheckpointError(f"checkpoint {directory} does not fit this config: {str(err).splitlines()[0]}") \
                from err
