"""`hiper_env`: verl's agent loop over a `HiPER/*` env, played by the same agents, prompts and parser
as `hiper-bench run` and `hiper-bench train`.

One dataset row is one episode: its `extra_info` names the task (`task_id`), the env seed
(`seed`) and the split (`split`; default the config's `train_split`); `rollout.n` repeats the row, so the repeats form the task's group. Each turn of the
episode is one output row (verl's v1 trainer takes a list): the turn's prompt, the reply's tokens
as the server generated them, and in `extra_fields` everything the advantage step needs:

    hiper_episode        an id shared by the episode's turns      hiper_turn    0, 1, ...
    hiper_reward         r_t, shaped as in training (`harness.training.rollout.shape_rewards`)
    hiper_switch         the turn starts a segment                hiper_format_valid
    hiper_terminated     the episode ended by termination (no bootstrap); same on every turn
    hiper_won            the episode was won
    hiper_{switch,subgoal,action}_mask   0/1 per response token: the tag bodies
    min_global_steps, max_global_steps   the oldest and newest policy version (verl's step) that
                         generated the episode's replies; verl's trainer reads them from every row

`reward_score` is the episode's return on every row (verl copies the last row's to all), so
critic-free estimators that read one score per episode (GRPO) see the episode's return.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import OmegaConf
from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopMetrics, AgentLoopOutput

from agents.backends import Message
from harness.on_verl import LOOP_NAME
from harness.training.config import TrainConfig, config_from_dict
from harness.training.rollout import (
    Trajectory,
    env_spec,
    inner_reward,
    recording_agent,
    render,
    shape_rewards,
)
from harness.training.spans import TAGS, response_tags


@dataclass
class GeneratedTurn:
    """What the server produced for one turn, in tokens."""

    prompt_ids: list[int]
    response_ids: list[int]
    logprobs: list[float] | None
    tags: dict[str, list[int]]
    versions: tuple[int | None, int | None]  # the server's (min, max)_global_steps for this reply


class ServerBackend:
    """The agent's backend inside verl: renders the agent's prompt with the policy's tokenizer (as
    the `hf` backend does), asks verl's server for the reply's tokens, and keeps every turn's tokens.
    One per episode: `request_id` keeps the episode on one server (verl's sticky sessions)."""

    def __init__(self, loop: AgentLoopBase, sampling_params: dict[str, Any], request_id: str):
        self.loop, self.sampling_params, self.request_id = loop, sampling_params, request_id
        self.turns: list[GeneratedTurn] = []

    async def complete(self, messages: Sequence[Message]) -> str:
        tokenizer, rollout = self.loop.tokenizer, self.loop.rollout_config
        prompt_ids = tokenizer(render(tokenizer, messages), add_special_tokens=False)["input_ids"]
        prompt_ids = prompt_ids[-rollout.prompt_length:]  # verl keeps a prompt's end, as its own loops do
        out = await self.loop.server_manager.generate(self.request_id, prompt_ids=prompt_ids,
                                                      sampling_params=dict(self.sampling_params))
        ids = list(out.token_ids)[:rollout.response_length]
        logprobs = None if out.log_probs is None else [float(p) for p in out.log_probs[:len(ids)]]
        text, tags = response_tags(tokenizer, ids)
        versions = (out.extra_fields.get("min_global_steps"), out.extra_fields.get("max_global_steps"))
        self.turns.append(GeneratedTurn(prompt_ids, ids, logprobs, {k: v.int().tolist() for k, v in tags.items()},
                                        versions))
        return text


class HiPEREnvAgentLoop(AgentLoopBase):
    """Plays one episode of the env named by `hiper` (a `TrainConfig` of ours: env_id, agent,
    protocol, history, max_steps, the reward settings) and returns one output per turn.

    It is reached only through its entry in the agent loop file, which holds `hiper`. It is not
    `@register`ed: registering at import would replace that entry in verl's registry with one
    without settings, and every episode after the first would play verl's defaults."""

    def __init__(self, *args: Any, hiper: dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not hiper:
            raise ValueError(f"the {LOOP_NAME} agent loop needs its `hiper` settings (env_id, max_steps, ...): "
                             "name it through an agent loop file entry (configs/agent_loops/*.yaml)")
        model = str(self.config.actor_rollout_ref.model.path)
        hiper = OmegaConf.to_container(hiper, resolve=True) if OmegaConf.is_config(hiper) else dict(hiper)
        self.cfg: TrainConfig = config_from_dict({**hiper, "model": model}, "hiper_env agent loop")

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> list[AgentLoopOutput]:
        extra = dict(kwargs.get("extra_info") or {})
        if "task_id" not in extra:
            raise ValueError("a hiper_env row needs extra_info.task_id (write rows with harness.on_verl.data)")
        task_id, seed = str(extra["task_id"]), int(extra.get("seed", 0))
        spec = env_spec(self.cfg, str(extra.get("split", self.cfg.train_split)))  # validation rows name theirs
        backend = ServerBackend(self, sampling_params, uuid.uuid4().hex)
        agent = recording_agent(self.cfg.agent, self.cfg.env_id, backend, self.cfg.history, self.cfg.protocol)
        env = spec.make()
        try:
            obs, info = env.reset(seed=seed, options={"task_id": task_id})
            agent.reset(info.get("task", ""), info, seed=seed)
            step_rewards, terminated, truncated = [], False, False
            while not (terminated or truncated):
                action = await agent.act_async(obs, info)
                obs, reward, terminated, truncated, info = env.step(action)
                step_rewards.append(reward)
        finally:
            env.close()
        turns = agent.on_reply.turns
        for turn, reward in zip(turns, step_rewards, strict=True):
            turn.env_reward = inner_reward(spec, turn, reward)
        trajectory = Trajectory(task_id, 0, turns, bool(terminated), bool(info.get("won", False)))
        shape_rewards(trajectory, self.cfg)
        return self._outputs(trajectory, backend.turns)

    def _outputs(self, trajectory: Trajectory, generated: list[GeneratedTurn]) -> list[AgentLoopOutput]:
        episode, total = uuid.uuid4().hex, sum(turn.reward for turn in trajectory.turns)
        oldest = [gen.versions[0] for gen in generated if gen.versions[0] is not None]
        newest = [gen.versions[1] for gen in generated if gen.versions[1] is not None]
        versions = {"min_global_steps": min(oldest, default=None), "max_global_steps": max(newest, default=None)}
        outputs = []
        for t, (turn, gen) in enumerate(zip(trajectory.turns, generated, strict=True)):
            ids, mask, logprobs, tags = gen.response_ids, [1] * len(gen.response_ids), gen.logprobs, gen.tags
            if not ids:  # nothing generated: one end-of-sequence token that is never trained
                ids, mask, logprobs = [self.tokenizer.eos_token_id], [0], None if logprobs is None else [0.0]
                tags = {name: [0] for name in TAGS}
            extra = {"hiper_episode": episode, "hiper_turn": t, "hiper_reward": float(turn.reward),
                     "hiper_switch": bool(turn.switch), "hiper_format_valid": bool(turn.format_valid),
                     "hiper_terminated": trajectory.terminated, "hiper_won": trajectory.won,
                     "reward_extra_info": {}, **versions}
            extra.update({f"hiper_{name}_mask": tags[name] for name in TAGS})
            outputs.append(AgentLoopOutput(prompt_ids=gen.prompt_ids, response_ids=ids, response_mask=mask,
                                           response_logprobs=logprobs, reward_score=float(total),
                                           num_turns=len(generated), metrics=AgentLoopMetrics(), extra_fields=extra))
        return outputs
