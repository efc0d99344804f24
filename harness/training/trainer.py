"""`hiper-bench train`: HiPER (HAE) and the flat baselines (PPO-GAE, GRPO, RLOO, GiGPO), and SFT.

One iteration, in the order the code runs (`Trainer.iteration`):

1. Rollouts: `num_envs` episodes on training tasks (group algorithms: num_envs / G tasks, G times
   each), played by the recording agent through the harness's env workers; rewards shaped
   (`rollout.shape_rewards`).
2. Scoring: one no-grad pass gives the sampling policy's log-probabilities pi_old, the critic's
   values, and the reference policy's log-probabilities (the KL anchor).
3. Targets: the algorithm's function in `harness.training.algorithms.ALGORITHMS` turns the batch
   and the scored old policy into token advantages, the loss mask and the critic's targets (HAE,
   GAE, GRPO, RLOO, GiGPO or SFT, each written out there beside its equations). Value heads read
   the prompt's last token (state s_t); an algorithm's subgoal heads (HAE's V_low) read the
   subgoal's last token (s_t with the chosen subgoal o_t).
4. Update: `ppo_epochs` passes of minibatches of turns; loss = PPO dual-clip surrogate
   + kl_coef * k3 KL - entropy_coef * entropy + value_coef * (clipped value losses); during the first
   `critic_warmup` iterations only the value losses train. A non-finite loss stops training before
   any weight changes, keeping the last good checkpoint.

SFT iterations instead take passes over expert transcripts, with the `sft` targets (weight 1 on
every reply token): the mean negative log-likelihood of the replies.

Metrics (TensorBoard under OUT/tb, and one JSON line per iteration in OUT/metrics.jsonl):
  rollout/return, rollout/success, rollout/episode_length, rollout/format_valid,
  rollout/switch_rate (hiper: SWITCH turns / turns), rollout/segment_length (turns per segment),
  rollout/env_steps (cumulative), rollout/failed_episodes,
  losses/policy, losses/kl, losses/entropy, losses/clip_fraction, losses/value_<head>,
  losses/sft (sft), tokens/prompt and tokens/response (the update batch's), adv/mean, adv/std,
  adv/min, adv/max (over the turn-level advantage: A_low for hiper), eval/success (harness
  evaluation on `eval_split`), time/rollout_s, time/update_s.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from torch import Tensor

from harness.runner import Pool
from harness.sweep import pool_factory
from harness.training.algorithms import ALGORITHMS, Batch, Targets
from harness.training.config import ConfigError, TrainConfig
from harness.training.losses import clipped_value_loss, entropy, kl_k3, masked_mean, ppo_clip_loss
from harness.training.policy import Policy, Sequences, make_sequences
from harness.training.rollout import (
    PolicyBackend,
    Trajectory,
    collect,
    env_spec,
    expert_demos,
    recording_agent,
    render,
)
from harness.training.spans import TagTokens, tag_tokens

# Config fields a resumed run must share with the run that wrote the checkpoint.
IDENTITY = ("algorithm", "agent", "env_id", "model", "tiny_model", "lora_rank", "critic", "switch_advantage",
            "seed")


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss); the message names the last good checkpoint."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


class Trainer:
    """Runs `cfg` into `cfg.out`, resuming from its last checkpoint when there is one."""

    def __init__(self, cfg: TrainConfig, log: Callable[[str], None] = print):
        self.cfg, self.log = cfg, log
        self.out = Path(cfg.out)
        self.ckpt_root = self.out / "checkpoints"
        self.run_name = cfg.run_name or self.out.name
        if cfg.torch_threads:
            torch.set_num_threads(cfg.torch_threads)
        transformers.utils.logging.disable_progress_bar()
        seed_everything(cfg.seed)
        self.iteration, self.env_steps = 0, 0
        self.task_rng = np.random.default_rng(cfg.seed)
        self._vllm: Any = None
        saved = self._read_latest()
        self.algorithm = ALGORITHMS[cfg.algorithm]
        self.policy = Policy(self._model_dir(), self.algorithm.heads(cfg), cfg.critic, cfg.lora_rank, cfg.lora_alpha,
                             cfg.dtype, cfg.device, reference=cfg.kl_coef > 0 and cfg.algorithm != "sft")
        lr = cfg.sft_lr if cfg.algorithm == "sft" else cfg.actor_lr
        self.optimizer = torch.optim.AdamW(self.policy.param_groups(lr, cfg.critic_lr), weight_decay=cfg.weight_decay)
        if saved is not None:
            self._resume(*saved)
        self.tokenizer = self.policy.tokenizer

    # ---------------------------------------------------------------- model, checkpoints, resume
    def _model_dir(self) -> str:
        """`cfg.model`, or the tiny model built once into OUT/init (vocabulary from expert prompts)."""
        if self.cfg.tiny_model is None:
            return self.cfg.model
        init = self.out / "init"
        if not (init / "config.json").exists():
            from harness.training.tiny import build_tiny_model

            demos = expert_demos(self.cfg, self.cfg.tiny_tokenizer_episodes, self.cfg.seed)
            texts = [render(None, messages) + reply for messages, reply in demos]
            build_tiny_model(self.cfg.tiny_model, texts, init, self.cfg.seed)
        return str(init)

    def _read_latest(self) -> tuple[Path, dict[str, Any]] | None:
        pointer = self.ckpt_root / "latest"
        if not pointer.exists():
            return None
        directory = self.ckpt_root / pointer.read_text().strip()
        try:
            state = torch.load(directory / "trainer.pt", weights_only=False)
        except (OSError, RuntimeError) as err:
            raise ConfigError(f"cannot read checkpoint {directory}: {err}") from err
        saved = state["config"]
        for key in IDENTITY:
            if saved.get(key) != getattr(self.cfg, key):
                raise ConfigError(f"{self.out} holds a run with {key}={saved.get(key)!r}, this config has "
                                  f"{getattr(self.cfg, key)!r}; pass another --out")
        return directory, state

    def _resume(self, directory: Path, state: dict[str, Any]) -> None:
        self.policy.load(directory)
        self.optimizer.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"])
        self.task_rng.bit_generator.state = state["task_rng"]
        self.iteration, self.env_steps = state["iteration"], state["env_steps"]
        self.log(f"resuming from {directory} (iteration {self.iteration})")

    def save(self) -> Path:
        """Write a checkpoint atomically (temporary directory, rename, then the `latest` pointer)."""
        name = f"iter_{self.iteration:06d}"
        final, tmp = self.ckpt_root / name, self.ckpt_root / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.policy.save(tmp)
        torch.save({"iteration": self.iteration, "env_steps": self.env_steps, "optimizer": self.optimizer.state_dict(),
                    "rng": rng_state(), "task_rng": self.task_rng.bit_generator.state,
                    "config": asdict(self.cfg)}, tmp / "trainer.pt")
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        pointer = self.ckpt_root / "latest.tmp"
        pointer.write_text(name)
        os.replace(pointer, self.ckpt_root / "latest")
        for old in sorted(self.ckpt_root.glob("iter_*"))[:-self.cfg.keep_checkpoints]:
            shutil.rmtree(old)
        return final

    def last_checkpoint(self) -> str:
        pointer = self.ckpt_root / "latest"
        return str(self.ckpt_root / pointer.read_text().strip()) if pointer.exists() else "none"

    # ---------------------------------------------------------------- the loop
    def train(self) -> Path | None:
        """Iterate up to `cfg.iterations`; returns the last checkpoint's directory."""
        from torch.utils.tensorboard import SummaryWriter

        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
        metrics_path = self.out / "metrics.jsonl"
        if metrics_path.exists():  # drop lines of iterations after the checkpoint: they are redone
            kept = [line for line in metrics_path.read_text().splitlines()
                    if line and json.loads(line)["iteration"] <= self.iteration]
            metrics_path.write_text("".join(f"{line}\n" for line in kept))
        writer = SummaryWriter(str(self.out / "tb"), purge_step=self.iteration + 1)
        last = None
        try:
            if cfg.algorithm == "sft":
                demos = self._sft_data()
                step = lambda: self.sft_iteration(demos)  # noqa: E731
                self._loop(step, writer, metrics_path)
            else:
                spec = env_spec(cfg, cfg.train_split)
                make_pool = pool_factory(cfg.env_backend, cfg.ray_address)
                with make_pool(cfg.rollout_workers or None, step_timeout=cfg.step_timeout,
                               start_method=cfg.start_method, concurrency=cfg.num_envs) as pool:
                    task_ids = pool.task_ids([spec])[spec.key]
                    self._loop(lambda: self.iteration_rl(pool, spec, task_ids), writer, metrics_path)
            last = Path(self.last_checkpoint())
        finally:
            writer.close()
        return last

    def _loop(self, step: Callable[[], dict[str, float]], writer: Any, metrics_path: Path) -> None:
        cfg = self.cfg
        while self.iteration < cfg.iterations:
            self.iteration += 1
            metrics = step()
            save = self.iteration % cfg.checkpoint_every == 0 or self.iteration == cfg.iterations
            evaluate = cfg.eval_every > 0 and self.iteration % cfg.eval_every == 0
            if save or evaluate:
                checkpoint = self.save()
                if evaluate:
                    metrics["eval/success"] = self.evaluate(checkpoint)
            for key, value in metrics.items():
                writer.add_scalar(key, value, self.iteration)
            writer.flush()
            with metrics_path.open("a") as f:
                f.write(json.dumps({"iteration": self.iteration, "env_steps": self.env_steps, **metrics}) + "\n")
            shown = ", ".join(f"{k} {v:.3g}" for k, v in metrics.items()
                              if k in ("rollout/success", "rollout/return", "losses/sft", "eval/success",
                                       "time/rollout_s", "time/update_s"))
            self.log(f"iteration {self.iteration}/{cfg.iterations}: {shown}")

    # ---------------------------------------------------------------- rollouts
    def _sample_tasks(self, task_ids: list[str]) -> tuple[list[tuple[str, int]], list[int]]:
        """(task, group) per episode: `groups` tasks, each repeated G times for the group algorithms."""
        cfg = self.cfg
        repeat = cfg.num_envs // cfg.groups
        chosen = self.task_rng.choice(len(task_ids), size=cfg.groups, replace=cfg.groups > len(task_ids))
        tasks = [(task_ids[int(i)], g) for g, i in enumerate(chosen) for _ in range(repeat)]
        seeds = [int(s) for s in self.task_rng.integers(2**31, size=len(tasks))]
        return tasks, seeds

    def iteration_rl(self, pool: Pool, spec: Any, task_ids: list[str]) -> dict[str, float]:
        cfg = self.cfg
        t0 = time.perf_counter()
        backend = self._generator()
        tasks, seeds = self._sample_tasks(task_ids)
        trajs, failed = collect(pool, spec, tasks, seeds,
                                lambda: recording_agent(cfg.agent, cfg.env_id, backend, cfg.history, cfg.protocol),
                                cfg)
        if not trajs:
            raise TrainingError(f"every episode of iteration {self.iteration} failed in its env worker")
        self.env_steps += sum(len(t.turns) for t in trajs)
        t1 = time.perf_counter()
        metrics = rollout_metrics(trajs, failed, self.env_steps)
        metrics.update(self.update(trajs))
        if cfg.generation_backend == "vllm":
            sync_vllm(backend, self.policy)
        metrics["time/rollout_s"], metrics["time/update_s"] = t1 - t0, time.perf_counter() - t1
        return metrics

    def _generator(self) -> Any:
        """hf: the live policy through the hf backend. vllm: one engine for the run, loaded from the
        initial weights and kept in sync by `sync_vllm` after every update."""
        cfg = self.cfg
        if cfg.generation_backend == "hf":
            return PolicyBackend(self.policy.model, self.tokenizer, cfg.device, cfg.max_new_tokens, cfg.temperature,
                                 cfg.top_p, cfg.generation_batch_size)
        if self._vllm is None:
            from agents.backends.vllm import VLLMBackend

            self._vllm = VLLMBackend(self.policy.model_dir, max_new_tokens=cfg.max_new_tokens,
                                     temperature=cfg.temperature, top_p=cfg.top_p, gpu_memory_utilization=0.4)
            sync_vllm(self._vllm, self.policy)  # a resumed run's weights
        return self._vllm

    # ---------------------------------------------------------------- batch, advantages, update
    def _sequences(self, trajs: list[Trajectory]) -> tuple[Sequences, TagTokens]:
        """Every turn as prompt + response tokens, with the response's tag masks in target positions."""
        tok = self.tokenizer
        turns = [turn for traj in trajs for turn in traj.turns]
        prompt_ids = tok([render(tok, t.messages) for t in turns], add_special_tokens=False)["input_ids"]
        tags = tag_tokens(tok, [t.response for t in turns])
        keep = tags.attention_mask.bool()
        response_ids, masks = [], {name: [] for name in ("switch", "subgoal", "action")}
        for n in range(len(turns)):
            ids = tags.input_ids[n][keep[n]].tolist()
            eos = len(ids) < self.cfg.max_new_tokens  # generation stopped by itself: learn to stop
            response_ids.append(ids + [tok.eos_token_id] * eos)
            for name in masks:
                masks[name].append(getattr(tags, name)[n][keep[n]].tolist() + [False] * eos)
        seq = make_sequences(prompt_ids, response_ids, tok.pad_token_id)
        placed = {name: torch.zeros_like(seq.response_mask) for name in masks}
        for n, p in enumerate(prompt_ids):
            for name, rows in masks.items():
                placed[name][n, len(p) - 1:len(p) - 1 + len(rows[n])] = torch.tensor(rows[n], dtype=torch.bool)
        return seq, TagTokens(seq.input_ids, seq.response_mask, **placed)

    @torch.no_grad()
    def _score_batch(self, seq: Sequences, index: dict[str, Tensor]) -> dict[str, Tensor]:
        """pi_old and pi_ref log-probabilities [N, S-1] and each head's values [N], in minibatches:
        `V_<head>` at the prompt's last token, and `V_<head>_at_subgoal` at `index` for the subgoal heads."""
        parts: dict[str, list[Tensor]] = {}
        for idx in torch.arange(len(seq)).split(self.cfg.minibatch_size):
            sub = seq.select(idx)
            scores = self.policy.score(sub)
            width = seq.response_mask.shape[1]
            out = {"old_logprobs": _pad_to(scores.logprobs.cpu(), width)}
            if self.policy.reference is not None or (self.policy.lora and self.cfg.kl_coef > 0):
                out["ref_logprobs"] = _pad_to(self.policy.reference_logprobs(sub).cpu(), width)
            for head in self.policy.heads:
                out[f"V_{head}"] = self.policy.values(scores.hidden, head, sub.prompt_last).cpu()
                if head in self.algorithm.subgoal_heads:
                    out[f"V_{head}_at_subgoal"] = self.policy.values(scores.hidden, head, index[head][idx]).cpu()
            for key, value in out.items():
                parts.setdefault(key, []).append(value)
        return {key: torch.cat(value) for key, value in parts.items()}

    @torch.no_grad()
    def _final_values(self, trajs: list[Trajectory], head: str) -> Tensor:
        """[B] value of the state after each cut-off row's last turn (0 for terminated rows)."""
        last = torch.zeros(len(trajs))
        cut = [b for b, t in enumerate(trajs) if t.final_messages is not None]
        if cut and head in self.policy.heads:
            ids = self.tokenizer([render(self.tokenizer, trajs[b].final_messages) for b in cut],
                                 add_special_tokens=False)["input_ids"]
            seq = make_sequences(ids, [[] for _ in ids], self.tokenizer.pad_token_id)
            for chunk in torch.arange(len(cut)).split(self.cfg.minibatch_size):
                sub = seq.select(chunk)
                hidden = self.policy.score(sub).hidden
                last[[cut[int(i)] for i in chunk]] = self.policy.values(hidden, head, sub.prompt_last).cpu()
        return last

    def update(self, trajs: list[Trajectory]) -> dict[str, float]:
        """Score the sampling policy on the batch, take the algorithm's targets, run the PPO update."""
        seq, tags = self._sequences(trajs)
        index = self._value_index(seq, tags)
        old = self._score_batch(seq, index)
        B, T = len(trajs), max(len(t.turns) for t in trajs)
        mask = torch.zeros(B, T, dtype=torch.bool)
        for b, t in enumerate(trajs):
            mask[b, :len(t.turns)] = True
        batch = Batch(seq, tags, old, [turn for t in trajs for turn in t.turns], mask,
                      torch.tensor([t.terminated for t in trajs]), [t.group for t in trajs],
                      lambda head: self._final_values(trajs, head))
        targets = self.algorithm.targets(batch, self.cfg)
        turn_adv = targets.turn_advantages
        response_tokens = int(seq.response_mask.sum())
        metrics = {"tokens/prompt": float(int(seq.attention_mask.sum()) - response_tokens),
                   "tokens/response": float(response_tokens),
                   "adv/mean": turn_adv.mean().item(), "adv/std": turn_adv.std().item() if len(turn_adv) > 1 else 0.0,
                   "adv/min": turn_adv.min().item(), "adv/max": turn_adv.max().item()}
        metrics.update(self._ppo_update(seq, index, targets, old))
        return metrics

    def _value_index(self, seq: Sequences, tags: TagTokens) -> dict[str, Tensor]:
        """Sequence position where each value head reads its state: the prompt's last token (s_t), or
        for the algorithm's subgoal heads the subgoal's last token (s_t with o_t; the prompt's last
        token when the reply has no subgoal). Target position + 1 = sequence position."""
        has_subgoal = tags.subgoal.any(dim=1)
        last_subgoal = tags.subgoal.shape[1] - 1 - tags.subgoal.flip(1).int().argmax(dim=1)
        after_subgoal = torch.where(has_subgoal, last_subgoal + 1, seq.prompt_last)
        return {head: after_subgoal if head in self.algorithm.subgoal_heads else seq.prompt_last
                for head in self.policy.heads}

    def _ppo_update(self, seq: Sequences, index: dict[str, Tensor], targets: Targets,
                    old: dict[str, Tensor]) -> dict[str, float]:
        """`ppo_epochs` passes of minibatches of turns over the loss of the module docstring."""
        cfg = self.cfg
        token_adv, loss_mask = targets.token_advantages, targets.loss_mask
        sums: dict[str, float] = {}
        steps = 0
        actor = self.iteration > cfg.critic_warmup
        for _ in range(cfg.ppo_epochs):
            for idx in torch.randperm(len(seq)).split(cfg.minibatch_size):
                sub = seq.select(idx)
                width = sub.response_mask.shape[1]
                m = loss_mask[idx, :width].to(self.policy.device)
                A = token_adv[idx, :width].to(self.policy.device)
                scores = self.policy.score(sub, with_logits=cfg.entropy_coef > 0)
                logp = scores.logprobs
                pg_loss, clip_fraction = ppo_clip_loss(logp, old["old_logprobs"][idx, :width].to(logp.device), A, m,
                                                       cfg.clip_eps, cfg.dual_clip)
                loss = pg_loss if actor else pg_loss.detach()
                parts = {"losses/policy": pg_loss, "losses/clip_fraction": clip_fraction}
                if "ref_logprobs" in old and actor:
                    kl = kl_k3(logp, old["ref_logprobs"][idx, :width].to(logp.device), m)
                    loss = loss + cfg.kl_coef * kl
                    parts["losses/kl"] = kl
                if scores.logits is not None and actor:
                    ent = entropy(scores.logits, m)
                    loss = loss - cfg.entropy_coef * ent
                    parts["losses/entropy"] = ent
                for head, (returns, turn_mask) in targets.value_targets.items():
                    values = self.policy.values(scores.hidden, head, index[head][idx])
                    read = f"V_{head}_at_subgoal" if head in self.algorithm.subgoal_heads else f"V_{head}"
                    old_values = old[read][idx].to(values.device)
                    v_loss = clipped_value_loss(values, old_values, returns[idx].to(values.device),
                                                turn_mask[idx].to(values.device), cfg.value_clip)
                    loss = loss + cfg.value_coef * v_loss
                    parts[f"losses/value_{head}"] = v_loss
                self._step(loss)
                steps += 1
                for key, value in parts.items():
                    sums[key] = sums.get(key, 0.0) + float(value.detach())
        return {key: value / steps for key, value in sums.items()}

    def _step(self, loss: Tensor) -> None:
        """One optimiser step, refused on a non-finite loss (nothing is applied)."""
        if not torch.isfinite(loss):
            raise TrainingError(f"non-finite loss ({loss.item()}) at iteration {self.iteration}: training stopped; "
                                f"last good checkpoint: {self.last_checkpoint()}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in self.optimizer.param_groups for p in g["params"]],
                                       self.cfg.max_grad_norm)
        self.optimizer.step()

    # ---------------------------------------------------------------- sft
    def _sft_data(self) -> tuple[Sequences, Targets]:
        """The expert transcripts as sequences (reply + end of sequence), and their `sft` targets."""
        tok = self.tokenizer
        demos = expert_demos(self.cfg, self.cfg.sft_episodes, self.cfg.seed + 1)
        prompt_ids = tok([render(tok, m) for m, _ in demos], add_special_tokens=False)["input_ids"]
        replies = tok([r for _, r in demos], add_special_tokens=False)["input_ids"]
        seq = make_sequences(prompt_ids, [r + [tok.eos_token_id] for r in replies], tok.pad_token_id)
        no_turns = torch.zeros(0, 0, dtype=torch.bool)
        batch = Batch(seq, None, {}, [], no_turns, torch.zeros(0, dtype=torch.bool), [], lambda head: torch.zeros(0))
        return seq, self.algorithm.targets(batch, self.cfg)

    def sft_iteration(self, data: tuple[Sequences, Targets]) -> dict[str, float]:
        """One pass of minibatches over the demonstrations: loss = -mean(A * log pi) over the reply tokens."""
        seq, targets = data
        total, steps = 0.0, 0
        for idx in torch.randperm(len(seq)).split(self.cfg.minibatch_size):
            sub = seq.select(idx)
            logp = self.policy.score(sub, with_values=False).logprobs
            width = logp.shape[1]
            A = targets.token_advantages[idx, :width].to(logp.device)
            loss = -masked_mean(logp * A, targets.loss_mask[idx, :width].to(logp.device))
            self._step(loss)
            total, steps = total + loss.item(), steps + 1
        return {"losses/sft": total / steps}

    # ---------------------------------------------------------------- evaluation
    def evaluate(self, checkpoint: Path) -> float:
        """Success rate of the checkpoint as an agent in the harness (stored in `results_db`)."""
        return evaluate_checkpoint(self.cfg, checkpoint, f"{self.run_name}@{self.iteration}")


def evaluate_checkpoint(cfg: TrainConfig, checkpoint: Path, label: str, episodes: int | None = None,
                        split: str | None = None) -> float:
    """Run the checkpoint as `cfg.agent` with the hf backend, as `hiper-bench run` would; success rate."""
    from harness.store import Store
    from harness.sweep import Run, execute, make_agent_entry, make_env_entry

    kwargs = {"backend": "hf", "history": cfg.history, "protocol": cfg.protocol,
              "backend_kwargs": {"model": str(checkpoint.resolve()), "device": cfg.device,
                                 "max_new_tokens": cfg.max_new_tokens, "temperature": cfg.eval_temperature,
                                 "batch_size": cfg.generation_batch_size}}
    run = Run(make_env_entry(cfg.env_id, split or cfg.eval_split, cfg.env_kwargs, cfg.max_steps),
              make_agent_entry(cfg.agent, kwargs, label), cfg.seed, episodes or cfg.eval_episodes)
    execute([run], cfg.results_db, cfg.eval_workers, cfg.step_timeout, progress=False,
            concurrency=cfg.eval_episodes)
    with Store(cfg.results_db) as store:
        rows = list(store.rows("run_id = ? AND status = 'ok'", (run.run_id,)))
    return sum(r["success"] for r in rows) / max(1, len(rows))


def rollout_metrics(trajs: list[Trajectory], failed: int, env_steps: int) -> dict[str, float]:
    turns = [turn for t in trajs for turn in t.turns]
    segments = sum(turn.switch and turn.format_valid for turn in turns)
    return {
        "rollout/return": float(np.mean([sum(turn.reward for turn in t.turns) for t in trajs])),
        "rollout/success": float(np.mean([t.won for t in trajs])),
        "rollout/episode_length": float(np.mean([len(t.turns) for t in trajs])),
        "rollout/format_valid": float(np.mean([turn.format_valid for turn in turns])),
        "rollout/switch_rate": segments / len(turns),
        "rollout/segment_length": len(turns) / max(1, segments),
        "rollout/env_steps": float(env_steps),
        "rollout/failed_episodes": float(failed),
    }


@torch.no_grad()
def sync_vllm(backend: Any, policy: Policy) -> None:
    """Load the policy's current weights into the vLLM engine's model in place (LoRA: merged for the
    copy, then unmerged again).

    Written for vLLM's single-process engine layout (`llm_engine.model_executor.driver_worker`);
    not run here (no GPU). Tensor-parallel engines need the same call on every worker.
    """
    if policy.lora:
        policy.model.merge_adapter()
        state = {k.replace(".base_layer", ""): v for k, v in policy.model.get_base_model().state_dict().items()
                 if "lora_" not in k}
    else:
        state = policy.model.state_dict()
    backend.llm.llm_engine.model_executor.driver_worker.model_runner.model.load_weights(state.items())
    if policy.lora:
        policy.model.unmerge_adapter()


def _pad_to(x: Tensor, width: int) -> Tensor:
    return torch.nn.functional.pad(x, (0, width - x.shape[1]))


def train(config_path: str | Path, out: str | Path | None = None, log: Callable[[str], None] = print,
          overrides: dict[str, Any] | None = None) -> Path | None:
    """Load a config, apply `overrides` (config fields set on the command line) and train it; the entry
    point of `hiper-bench train`."""
    from harness.training.config import load_config

    cfg = load_config(config_path, out)
    if overrides:
        cfg = replace(cfg, **overrides)  # checked again, as in the YAML
    return Trainer(cfg, log).train()


__all__ = ["Trainer", "TrainingError", "evaluate_checkpoint", "train"]
