"""`TrainConfig`: every setting of `hiper-bench train`, read from YAML; defaults are the released runs'.

Defaults follow docs/training.md (HiPER's released ALFWorld runs) unless a field says otherwise. The
YAML is flat: one key per field below. An unknown key or algorithm is an error naming the closest
valid one, so a typo never silently trains with a default.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError

ALGORITHMS = ("hiper", "ppo", "grpo", "rloo", "gigpo", "sft")
CRITIC_FREE = ("grpo", "rloo", "gigpo")


class ConfigError(HarnessError):
    """A training config that cannot be used; the CLI shows the message as one line (exit 2)."""


@dataclass
class TrainConfig:
    # --- what to train
    algorithm: str = "hiper"
    """hiper (HAE, plan-execute agent), ppo (GAE, flat agent), grpo, rloo, gigpo (flat, critic-free,
    group rollouts) or sft (behaviour cloning from expert transcripts)."""
    agent: str = ""
    """The agent whose prompts and output format are trained: hiper or react. Empty: hiper for
    `hiper` and `sft`, react for the flat algorithms."""
    env_id: str = "HiPER/ALFWorld-v0"
    """Gymnasium id of the env to train on."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra env constructor keywords (the split is set by `train_split`/`eval_split`)."""
    protocol: str = "published"
    """How replies become actions and are judged: `published` (the HiPER/verl-agent protocol: the
    env is always stepped, lowercased first `<action>` body) or `strict` (a malformed reply does
    not step the env); see `hiper_envs/wrappers/protocol.py`."""
    train_split: str = "train"
    """Split whose tasks are sampled for rollouts."""
    max_steps: int | None = None
    """Turns per episode (None: the env's `max_episode_steps`)."""

    # --- policy and critic
    model: str = ""
    """transformers causal LM: a hub id or a local directory (an earlier checkpoint works too)."""
    tiny_model: dict[str, Any] | None = None
    """Instead of `model`: a randomly initialised model of this `transformers` config (e.g.
    `{model_type: gpt2, n_embd: 64, n_layer: 2, n_head: 4}`) with a word-level tokenizer built from
    the env's expert prompts. For CPU smoke and learning runs; nothing is downloaded."""
    tiny_tokenizer_episodes: int = 32
    """Expert episodes whose prompts and replies make the tiny model's vocabulary."""
    dtype: str = "float32"
    """Parameter dtype: float32, bfloat16 or float16."""
    device: str = "cpu"
    """torch device of policy and critic (cuda on GPU)."""
    torch_threads: int = 0
    """CPU threads of torch (0: torch's default). 1 is much faster on a busy shared CPU."""
    lora_rank: int = 0
    """LoRA rank of the policy adapter (peft); 0 fine-tunes every weight."""
    lora_alpha: int = 32
    """LoRA scaling numerator (the update is scaled by alpha / rank)."""
    critic: str = "shared"
    """Value heads on the policy's backbone (`shared`) or on a copy of it with its own weights
    (`separate`). hiper has heads low, high and term; ppo one head; the others none."""

    # --- rollouts
    iterations: int = 150
    """Training iterations (sft: passes over the expert transcripts)."""
    num_envs: int = 128
    """Episodes per iteration. Group algorithms play num_envs / group_size tasks, group_size times each."""
    group_size: int = 8
    """G: rollouts of the same task per group (grpo, rloo, gigpo; ignored by the others)."""
    rollout_workers: int = 0
    """Env host processes of the harness runner (each keeps many envs); 0: its default (up to 4).
    Every episode of an iteration is in flight at once."""
    start_method: str = "spawn"
    """multiprocessing start method of the env hosts; fork starts cheap envs faster on Linux."""
    step_timeout: float = 120.0
    """Seconds an env step may take before its host is replaced and the episode replayed."""
    env_backend: str = "local"
    """Where rollout env hosts run: local (processes here) or ray (Ray actors, one CPU each, on the
    cluster at `ray_address`; the policy, generation and the update stay in this process)."""
    ray_address: str | None = None
    """Ray cluster to join with env_backend ray (None: RAY_ADDRESS, else a local Ray)."""
    history: int = 2
    """(observation, action) pairs shown in the prompt (the released runs show 2)."""
    max_new_tokens: int = 128
    """Tokens generated per turn."""
    temperature: float = 1.0
    """Sampling temperature of training rollouts."""
    top_p: float = 1.0
    """Nucleus sampling of training rollouts."""
    generation_backend: str = "hf"
    """hf (transformers generate on the policy itself) or vllm (GPU; weights synced after every update)."""
    generation_batch_size: int = 64
    """Prompts generated together."""

    # --- rewards (docs/training.md)
    reward_scale: float = 10.0
    """r = reward_scale x the env's reward (10 on success for the sparse envs)."""
    success_reward_only: bool = True
    """Use `won` (1 on the winning turn) as the env reward, as the released runs; False: the env's own
    reward (WebShop's partial score, progress shaping)."""
    invalid_penalty: float = 0.1
    """Subtracted on a turn whose output the format parser rejects."""
    keep_penalty: float = 0.3
    """HiPER KEEP penalty p, spread as p / T over the KEEP turns of a T-turn episode (WebShop: 3.5)."""
    keep_consistency_penalty: float = 0.3
    """HiPER penalty on a KEEP turn whose <subgoal> differs from the current subgoal."""

    # --- advantages
    gamma: float = 1.0
    """Discount per turn (GiGPO's runs: 0.95)."""
    lam: float = 1.0
    """GAE lambda (ppo)."""
    lam_turn: float = 1.0
    """HAE low-level lambda within a segment."""
    lam_seg: float = 0.95
    """HAE high-level lambda across segments."""
    switch_advantage: str = "return"
    """HAE switch advantage: `return` (released code: G_t - V_term) or `paper` ((q - beta)(V_high - V_low))."""
    normalize_std: bool = True
    """Divide group advantages (grpo, gigpo) by the group's std."""
    gigpo_step_weight: float = 1.0
    """Weight of GiGPO's step-level advantage."""

    # --- optimisation
    actor_lr: float = 1e-6
    """Learning rate of the policy (and a shared backbone)."""
    critic_lr: float = 1e-5
    """Learning rate of the value heads (and a separate critic backbone)."""
    ppo_epochs: int = 1
    """Passes over each iteration's batch."""
    minibatch_size: int = 256
    """Turns per optimiser step."""
    clip_eps: float = 0.2
    """PPO ratio clip."""
    dual_clip: float = 3.0
    """PPO dual clip c for negative advantages."""
    critic_warmup: int = 0
    """First iterations that train only the critic (verl's `critic_warmup`; a shared backbone still
    learns through the value losses): HAE's low-level advantage bootstraps from V_high after every
    segment, so an untrained critic makes it noise."""
    value_clip: float = 0.5
    """Clip of the value update around the rollout's values."""
    value_coef: float = 1.0
    """Weight of the value losses."""
    kl_coef: float = 0.01
    """Weight of the k3 KL to the frozen initial policy (0 skips the reference)."""
    entropy_coef: float = 0.001
    """Weight of the entropy bonus."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    weight_decay: float = 0.0
    """AdamW weight decay."""

    # --- sft
    sft_episodes: int = 256
    """Expert episodes recorded as the behaviour-cloning set (sft)."""
    sft_lr: float = 1e-5
    """Learning rate of behaviour cloning."""
    sft_noise: float = 0.0
    """Chance that a demonstration turn plays a uniformly random admissible action in place of the
    expert's (an imperfect demonstrator; the expert then recovers from where it landed)."""

    # --- bookkeeping
    seed: int = 0
    """Seeds task sampling, sampling and initialisation."""
    checkpoint_every: int = 10
    """Iterations between checkpoints (the last iteration is always saved)."""
    keep_checkpoints: int = 3
    """Most recent checkpoints kept on disk."""
    eval_every: int = 5
    """Iterations between evaluations through the harness (0: none)."""
    eval_split: str = "valid_seen"
    """Split evaluated."""
    eval_episodes: int = 128
    """Episodes per evaluation."""
    eval_temperature: float = 0.4
    """Sampling temperature of evaluation (0: greedy)."""
    eval_workers: int = 4
    """Env host processes of evaluation (its episodes are all in flight at once)."""
    results_db: str = "runs/results.sqlite"
    """Results store that evaluations are written to."""
    run_name: str = ""
    """Label of this run in the store and reports (default: the output directory's name)."""
    out: str = "runs/train/run"
    """Output directory (checkpoints, TensorBoard, metrics.jsonl); `--out` overrides it."""

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(f"unknown algorithm {self.algorithm!r}; choose from {', '.join(ALGORITHMS)}")
        if not self.agent:
            self.agent = "hiper" if self.algorithm in ("hiper", "sft") else "react"
        if self.agent not in ("hiper", "react"):
            raise ConfigError(f"agent must be hiper or react, got {self.agent!r}")
        if self.algorithm == "hiper" and self.agent != "hiper":
            raise ConfigError("algorithm hiper trains the hiper (plan-execute) agent")
        if self.algorithm in ("ppo", *CRITIC_FREE) and self.agent != "react":
            raise ConfigError(f"algorithm {self.algorithm} trains the flat react agent (use hiper for HAE)")
        if bool(self.model) == (self.tiny_model is not None):
            raise ConfigError("give exactly one of `model` and `tiny_model`")
        choices = {"critic": ("shared", "separate"), "switch_advantage": ("return", "paper"),
                   "generation_backend": ("hf", "vllm"), "start_method": ("spawn", "fork", "forkserver"),
                   "env_backend": ("local", "ray"), "protocol": ("published", "strict"),
                   "dtype": ("float32", "bfloat16", "float16")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.algorithm in CRITIC_FREE and (self.group_size < 2 or self.num_envs % self.group_size):
            raise ConfigError(f"{self.algorithm} needs group_size >= 2 dividing num_envs "
                              f"({self.num_envs} / {self.group_size})")
        if self.critic_warmup and self.algorithm not in ("hiper", "ppo"):
            raise ConfigError(f"critic_warmup needs a critic (hiper or ppo); {self.algorithm} has none")
        if not 0.0 <= self.sft_noise <= 1.0:
            raise ConfigError(f"sft_noise is a probability, got {self.sft_noise}")
        for name in ("iterations", "num_envs", "minibatch_size", "ppo_epochs", "max_new_tokens",
                     "checkpoint_every", "keep_checkpoints", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")

    @property
    def groups(self) -> int:
        """Distinct tasks per iteration."""
        return self.num_envs // self.group_size if self.algorithm in CRITIC_FREE else self.num_envs


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def config_from_dict(data: dict[str, Any], where: str = "config") -> TrainConfig:
    """Build a config, refusing unknown keys (naming the closest field) and values of the wrong type."""
    for key, value in data.items():
        if key not in FIELDS:
            close = difflib.get_close_matches(str(key), FIELDS, n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown config key {key!r}{hint}")
        _check_type(key, value, where)
    try:
        return TrainConfig(**data)
    except TypeError as err:
        raise ConfigError(f"{where}: {err}") from err


def _check_type(key: str, value: Any, where: str) -> None:
    default = FIELDS[key].default
    if default is dataclasses.MISSING or default is None or value is None:
        return
    expected = float if isinstance(default, float) else type(default)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) if expected is float \
        else isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    if not ok:
        raise ConfigError(f"{where}: {key} must be {expected.__name__}, got {value!r}")


def load_config(path: str | Path, out: str | Path | None = None) -> TrainConfig:
    """Read a training YAML (plain data only); `out` overrides its output directory."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML ({' '.join(str(err).split())})") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys")
    if out is not None:
        data["out"] = str(out)
    return config_from_dict(data, str(path))
