"""Rollouts: the harness's env workers play the agents being trained, and every turn is recorded.

The trained agents are the evaluation agents (`hiper`, `react`) with a recorder hook: the same
prompts, the same parsing, so a checkpoint behaves in `hiper-bench run` as it did in training.
Episodes are played by the harness's runner, the one rollout path of evaluation and training: each
episode a coroutine, envs in its host processes. The episodes waiting for an action at one moment
share one `generate` call of `PolicyBackend`, the `hf` backend over the live policy (no reload
between updates).

Rewards (docs/training.md) are computed here from the recorded outputs, with the one plan-execute parser:

    r_t = reward_scale * r_env_t                          (r_env: won on the last turn, or the env's)
          - invalid_penalty            if the output is invalid under the protocol (strict: the env
                                       was not stepped, so r_env is 0)
          - keep_consistency_penalty   if a KEEP names a subgoal other than the current one
          - keep_penalty / T           on each KEEP turn of a T-turn episode (hiper)
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents import agent_class
from agents.backends import Message
from agents.backends.hf import HFBackend, plain_chat
from agents.llm import LLMAgent
from harness.envspec import EnvSpec
from harness.runner import Episode, Job, Pool
from harness.training.config import TrainConfig
from hiper_envs.wrappers import (
    FormatError,
    PlanStep,
    advance,
    format_plan_execute,
    read_flat,
    read_plan_execute,
)
from hiper_envs.wrappers.plan_execute import DEFAULT_INVALID_PENALTY


@dataclass
class Turn:
    """One recorded decision: what the model read and wrote, and how the output was judged."""

    messages: list[Message]
    response: str
    obs: str
    format_valid: bool = True
    switch: bool = True  # hiper: a new segment starts here (always on the first turn)
    keep_changed: bool = False  # hiper: KEEP with a subgoal other than the current one
    env_reward: float = 0.0
    reward: float = 0.0  # shaped r_t


@dataclass
class Trajectory:
    task_id: str
    group: int
    turns: list[Turn]
    terminated: bool
    won: bool
    final_messages: list[Message] | None = None  # the prompt after the last turn (bootstrap of a cut-off row)
    info: dict[str, Any] = field(default_factory=dict)


class Recorder:
    """The `on_reply` hook of one episode's agent: records each turn's prompt, reply and verdict.

    A retried episode starts again at step 0, and its record with it. `player` is the agent copy
    the runner played, whose state gives the prompt after the last turn."""

    def __init__(self) -> None:
        self.turns: list[Turn] = []
        self.player: LLMAgent | None = None

    def __call__(self, agent: LLMAgent, obs: str, messages: list[Message], reply: str) -> None:
        if agent.step == 0:
            self.turns.clear()
        self.player = agent
        self.turns.append(Turn(messages, reply, obs, **judge(agent, reply)))


def judge(agent: LLMAgent, reply: str) -> dict[str, bool]:
    """Format verdict of a reply, by the agent's protocol as the env wrapper reads it (before the
    agent consumes it)."""
    if not hasattr(agent, "subgoal"):  # flat agent
        return {"format_valid": read_flat(reply, agent.protocol, agent.tail).valid}
    if agent.protocol == "published":
        read = read_plan_execute(reply, agent.tail)
        first = agent.step == 0
        changed = read.valid and read.switch is False and not first and read.subgoal != agent.subgoal
        return {"format_valid": read.valid, "switch": first or bool(read.switch), "keep_changed": changed}
    try:
        decision, switched, _ = advance(agent.subgoal, reply)
    except FormatError:
        return {"format_valid": False, "switch": False}
    changed = not switched and decision.subgoal is not None and decision.subgoal != agent.subgoal
    return {"format_valid": True, "switch": switched, "keep_changed": changed}


def recording_agent(name: str, env_id: str, backend: Any, history: int, protocol: str) -> LLMAgent:
    """A fresh agent of class `name` (hiper or react) over `backend`, recording its turns."""
    agent = agent_class(name).for_env(env_id, backend=backend, history=history, protocol=protocol)
    agent.on_reply = Recorder()
    return agent


class PolicyBackend(HFBackend):
    """The `hf` backend's chat rendering and batched `generate`, over the model being trained.

    It skips `HFBackend.__init__` (which loads a model from disk) and points at the live model.
    Rollouts sample from the policy itself: the model's own generation defaults (a hub model's
    repetition penalty or top-k) are set aside while generating, else the tokens would come from
    another distribution than the log-probabilities pi_old the update scores them with. (The `hf`
    backend already passes top_k 0 when it samples.)
    """

    def __init__(self, model: Any, tokenizer: Any, device: str, max_new_tokens: int, temperature: float,
                 top_p: float, batch_size: int):
        import torch

        self._torch = torch
        self.model, self.tokenizer, self.device = model, tokenizer, device
        self.tokenizer.padding_side = "left"
        self.max_new_tokens, self.temperature, self.top_p = max_new_tokens, temperature, top_p
        self.batch_size = batch_size

    def generate(self, conversations: Sequence[Sequence[Message]]) -> list[str]:
        from transformers import GenerationConfig

        saved = self.model.generation_config
        self.model.generation_config = GenerationConfig(
            bos_token_id=saved.bos_token_id, eos_token_id=saved.eos_token_id, pad_token_id=saved.pad_token_id)
        try:
            return super().generate(conversations)
        finally:
            self.model.generation_config = saved


def render(tokenizer: Any, messages: Sequence[Message]) -> str:
    """Prompt text exactly as `HFBackend.render` makes it for this tokenizer."""
    if tokenizer is not None and tokenizer.chat_template:
        return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    return plain_chat(messages)


def env_spec(cfg: TrainConfig, split: str, expert: bool = False) -> EnvSpec:
    """The env an agent of `cfg.agent` plays, as the harness builds it for `hiper-bench run`."""
    cls = agent_class(cfg.agent)
    kwargs = {**cfg.env_kwargs, **cls.env_kwargs, "split": split}
    if expert:
        kwargs["expert"] = True
    return EnvSpec(cfg.env_id, kwargs, () if expert else cls.wrappers_for({"protocol": cfg.protocol}), cfg.max_steps)


def shape_rewards(traj: Trajectory, cfg: TrainConfig) -> None:
    """Fill `turn.reward` with r_t (module docstring)."""
    T = len(traj.turns)
    for t, turn in enumerate(traj.turns):
        r_env = float(traj.won and t == T - 1) if cfg.success_reward_only else turn.env_reward
        r = cfg.reward_scale * r_env - (0.0 if turn.format_valid else cfg.invalid_penalty)
        if cfg.agent == "hiper" and turn.format_valid and not turn.switch:
            r -= cfg.keep_penalty / T + cfg.keep_consistency_penalty * turn.keep_changed
        turn.reward = r


def inner_reward(spec: EnvSpec, turn: Turn, step_reward: float) -> float:
    """The env's own reward of a turn's step. The plan-execute wrapper adds -invalid_penalty to an
    invalid reply's step (strict: its whole reward, the env not being stepped); `shape_rewards`
    applies the config's penalty instead."""
    wrapper_penalty = DEFAULT_INVALID_PENALTY if spec.wrappers else 0.0
    return float(step_reward) + (0.0 if turn.format_valid else wrapper_penalty)


def collect(pool: Pool, spec: EnvSpec, tasks: Sequence[tuple[str, int]], seeds: Sequence[int],
            make_agent: Any, cfg: TrainConfig) -> tuple[list[Trajectory], int]:
    """Play one episode per (task id, group) with a fresh recording agent each; returns the finished
    trajectories with shaped rewards, and the number of episodes lost to env failures."""
    agents = [make_agent() for _ in tasks]
    jobs = [Job(spec, task, seed, agent, seed, tag=i)
            for i, ((task, _), seed, agent) in enumerate(zip(tasks, seeds, agents, strict=True))]
    done: dict[int, Trajectory] = {}
    failed = 0

    def on_done(episode: Episode) -> None:
        nonlocal failed
        i = episode.job.tag
        if episode.status != "ok":
            failed += 1
            return
        record = agents[i].on_reply
        turns = list(record.turns)
        for turn, step in zip(turns, episode.transcript, strict=True):
            turn.env_reward = inner_reward(spec, turn, step["reward"])
        info = episode.last_info
        won = bool(info.get("won", False))
        # the env's own flag: a purchase on the last allowed step is terminated (no bootstrap),
        # though the step limit was reached too
        terminated = episode.terminated
        final = None
        if not terminated:
            final = copy.deepcopy(record.player.prompt(episode.transcript[-1]["obs"], info))
        traj = Trajectory(tasks[i][0], tasks[i][1], turns, terminated, won, final, info)
        shape_rewards(traj, cfg)
        done[i] = traj

    pool.run(jobs, on_done)
    return [done[i] for i in sorted(done)], failed


def expert_reply(agent: LLMAgent, info: dict[str, Any], action: str | None = None) -> str:
    """The reply a perfect agent of `agent`'s kind would give: the env's expert action (or `action`),
    with the env's canonical subgoal (`subgoals`, `subgoal_index` in docs/envs.md) as plan or thought."""
    subgoals = info["subgoals"]
    subgoal = subgoals[min(info["subgoal_index"], len(subgoals) - 1)] if subgoals else "finish the task"
    action = str(info["expert_action"]) if action is None else action
    if hasattr(agent, "subgoal"):
        return format_plan_execute(PlanStep(agent.subgoal != subgoal, subgoal, action))
    return f"<think>{subgoal}</think>\n<action>{action}</action>"


def expert_demos(cfg: TrainConfig, episodes: int, seed: int) -> list[tuple[list[Message], str]]:
    """(prompt messages, expert reply) for every turn of `episodes` expert episodes on the training
    split, each rendered by the agent being trained; tasks drawn with `seed`. With `cfg.sft_noise`
    the demonstrator sometimes plays a random admissible action, and the reply records it."""
    spec = env_spec(cfg, cfg.train_split, expert=True)
    env = spec.make()
    agent = agent_class(cfg.agent).for_env(cfg.env_id, backend=None, history=cfg.history)
    rng = np.random.default_rng(seed)
    task_ids = list(env.unwrapped.task_ids)
    demos = []
    try:
        for _ in range(episodes):
            task = task_ids[int(rng.integers(len(task_ids)))]
            obs, info = env.reset(seed=int(rng.integers(2**31)), options={"task_id": task})
            agent.reset(info["task"], info)
            done = False
            while not done:
                messages = agent.prompt(obs, info)
                action = str(info["expert_action"])
                if cfg.sft_noise and rng.random() < cfg.sft_noise:
                    action = str(rng.choice(info["admissible_actions"]))
                reply = expert_reply(agent, info, action)
                demos.append((messages, reply))
                agent.consume(obs, reply)
                agent.step += 1
                obs, _, terminated, truncated, info = env.step(action)
                done = terminated or truncated
    finally:
        env.close()
    return demos
