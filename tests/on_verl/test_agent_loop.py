"""verl's agent loop over our envs (runs in the verl environment, `make verl-env`): driven by a fake
server that replays scripted replies, it yields per turn the tokens the server sent, the tag-body
masks, the shaped rewards and the episode's end, also for a malformed reply and a cut-off episode."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("verl")

from omegaconf import OmegaConf  # noqa: E402
from verl.experimental.agent_loop.agent_loop import DictConfigWrap  # noqa: E402
from verl.utils.dataset.rl_dataset import RLHFDataset  # noqa: E402
from verl.workers.rollout.replica import TokenOutput  # noqa: E402

from agents import agent_class  # noqa: E402
from harness.on_verl.agent_loop import HiPEREnvAgentLoop  # noqa: E402
from harness.training.rollout import expert_reply, render  # noqa: E402
from harness.training.tiny import bpe_tokenizer  # noqa: E402
from hiper_envs.wrappers import read_flat, read_plan_execute  # noqa: E402

SPLIT = {"HiPER/ALFWorld-v0": "valid_seen", "HiPER/WebShop-v0": "test"}
MALFORMED = "I would rather look around first."


class ScriptedServer:
    """verl's server manager, replying with the next scripted text's tokens (and an end of sequence);
    the policy version it reports moves on every second reply, as if weights were synced mid-episode."""

    def __init__(self, tokenizer, replies: list[str]):
        self.tokenizer, self.replies, self.requests = tokenizer, list(replies), []

    async def generate(self, request_id, *, prompt_ids, sampling_params, **kwargs) -> TokenOutput:
        self.requests.append((request_id, list(prompt_ids)))
        ids = self.tokenizer(self.replies.pop(0), add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id]
        version = 3 + len(self.requests) // 2
        return TokenOutput(token_ids=ids, log_probs=[-0.5] * len(ids),
                           extra_fields={"global_steps": version, "min_global_steps": version,
                                         "max_global_steps": version})


def scripted_episode(env_id: str, agent_name: str, malformed_at: int | None, max_steps: int | None):
    """An episode played in process by the agent the loop uses, the env's expert replying (and
    `MALFORMED` at turn `malformed_at`): the replies, the prompts, and what the env said."""
    import gymnasium as gym

    from harness.envspec import EnvSpec

    cls = agent_class(agent_name)
    spec = EnvSpec(env_id, {"split": SPLIT[env_id], "expert": True}, cls.wrappers_for({"protocol": "published"}),
                   max_steps)
    env, agent = spec.make(), cls.for_env(env_id, backend=None, history=2)
    task_id = gym.make(env_id, split=SPLIT[env_id]).unwrapped.task_ids[2]
    obs, info = env.reset(seed=0, options={"task_id": task_id})
    agent.reset(info["task"], info)
    replies, prompts, steps = [], [], []
    done = False
    while not done:
        prompts.append(agent.prompt(obs, info))
        replies.append(MALFORMED if len(replies) == malformed_at else expert_reply(agent, info))
        action = agent._take(obs, prompts[-1], replies[-1])
        obs, reward, terminated, truncated, info = env.step(action)
        steps.append((reward, terminated, truncated))
        done = terminated or truncated
    env.close()
    return task_id, replies, prompts, steps, info


def run_loop(env_id: str, agent_name: str, replies: list[str], prompts, task_id: str | None, max_steps: int | None,
             with_settings: bool = True):
    tokenizer = bpe_tokenizer([render(None, p) for p in prompts] + replies, vocab_size=600)
    tokenizer.chat_template = None  # prompts rendered as the `hf` backend renders them without a template
    config = OmegaConf.create({"actor_rollout_ref": {"rollout": {"prompt_length": 4096, "response_length": 256},
                                                     "model": {"path": "tiny"}},
                               "data": {"apply_chat_template_kwargs": {}}})
    server = ScriptedServer(tokenizer, replies)
    algorithm = "hiper" if agent_name == "hiper" else "ppo"
    loop = HiPEREnvAgentLoop(trainer_config=DictConfigWrap(config), server_manager=server, tokenizer=tokenizer,
                             processor=None, dataset_cls=RLHFDataset, data_config=DictConfigWrap(config.data),
                             hiper={"algorithm": algorithm, "env_id": env_id, "train_split": "train",
                                    "max_steps": max_steps} if with_settings else None)
    # an evaluation row: its split is not the training one
    extra_info = {} if task_id is None else {"task_id": task_id, "seed": 0, "split": SPLIT[env_id]}
    outputs = asyncio.run(loop.run({"temperature": 1.0}, raw_prompt=[], extra_info=extra_info))
    return tokenizer, server, outputs


def body(tokenizer, ids: list[int], mask: list[int]) -> str:
    return tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if m]).strip()


@pytest.mark.parametrize(("env_id", "agent_name", "malformed_at", "max_steps"), [
    ("HiPER/ALFWorld-v0", "hiper", 1, None),
    ("HiPER/WebShop-v0", "hiper", 0, None),
    ("HiPER/WebShop-v0", "react", 1, None),
    ("HiPER/ALFWorld-v0", "hiper", None, 3),  # cut off by the step budget
])
def test_one_row_per_turn_with_the_tokens_masks_rewards_and_end_of_the_episode(env_id, agent_name, malformed_at,
                                                                               max_steps):
    task_id, replies, prompts, steps, last_info = scripted_episode(env_id, agent_name, malformed_at, max_steps)
    tokenizer, server, outputs = run_loop(env_id, agent_name, replies, prompts, task_id, max_steps)
    T = len(replies)
    assert len(outputs) == T and server.replies == []
    assert len({request_id for request_id, _ in server.requests}) == 1  # one sticky session per episode
    terminated, truncated = steps[-1][1], steps[-1][2]
    assert terminated == (max_steps is None) == (not truncated) and last_info["won"] == terminated
    episode_ids = {out.extra_fields["hiper_episode"] for out in outputs}
    assert len(episode_ids) == 1
    for t, (out, reply, prompt) in enumerate(zip(outputs, replies, prompts, strict=True)):
        extra = out.extra_fields
        assert out.prompt_ids == tokenizer(render(tokenizer, prompt), add_special_tokens=False)["input_ids"]
        assert out.prompt_ids == server.requests[t][1]
        assert out.response_ids == tokenizer(reply, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        assert out.response_mask == [1] * len(out.response_ids)
        assert out.response_logprobs == [-0.5] * len(out.response_ids)
        assert out.num_turns == T and extra["hiper_turn"] == t
        assert (extra["min_global_steps"], extra["max_global_steps"]) == (3, 3 + T // 2)  # the oldest and newest version
        assert extra["hiper_terminated"] == terminated and extra["hiper_won"] == last_info["won"]
        valid = t != malformed_at
        assert extra["hiper_format_valid"] == valid
        masks = {name: extra[f"hiper_{name}_mask"] for name in ("switch", "subgoal", "action")}
        assert all(len(m) == len(out.response_ids) for m in masks.values())
        if agent_name == "hiper":
            read = read_plan_execute(reply, 30)
            if valid:
                assert body(tokenizer, out.response_ids, masks["switch"]) == ("SWITCH" if read.switch else "KEEP")
                assert body(tokenizer, out.response_ids, masks["subgoal"]) == read.subgoal
                assert extra["hiper_switch"] == (t == 0 or read.switch)
        else:
            assert not any(masks["switch"]) and not any(masks["subgoal"])
            read = read_flat(reply, "published", 30)
        if valid:
            assert body(tokenizer, out.response_ids, masks["action"]).lower() == read.action
        else:
            assert not any(any(m) for m in masks.values())
    # r_t = 10 x won on the last turn - 0.1 if malformed - 0.3 / T per KEEP (the released shaping)
    for t, out in enumerate(outputs):
        expected = 10.0 * (terminated and t == T - 1) - 0.1 * (t == malformed_at)
        if agent_name == "hiper" and t != malformed_at and not out.extra_fields["hiper_switch"]:
            expected -= 0.3 / T
        assert out.extra_fields["hiper_reward"] == pytest.approx(expected)
        assert out.reward_score == pytest.approx(sum(o.extra_fields["hiper_reward"] for o in outputs))


def test_a_row_without_a_task_is_refused():
    with pytest.raises(ValueError, match="extra_info.task_id"):
        run_loop("HiPER/WebShop-v0", "react", ["x"], [[{"role": "user", "content": "x"}]], None, None)


def test_the_agent_loop_file_keeps_its_settings_once_the_loop_is_imported():
    # verl's worker loads the agent loop file into its registry, and the loop's module is imported
    # only when the first episode is instantiated: that import must not replace the file's entry
    script = """
import sys
from omegaconf import OmegaConf
from verl.experimental.agent_loop.agent_loop import _agent_loop_registry
for entry in OmegaConf.load(sys.argv[1]):
    _agent_loop_registry[entry.name] = entry
import harness.on_verl.agent_loop
print(OmegaConf.select(OmegaConf.create(dict(_agent_loop_registry["hiper_env"])), "hiper.max_steps"))
"""
    path = Path(__file__).resolve().parents[2] / "harness/on_verl/configs/agent_loops/alfworld_cpu.yaml"
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "3"


def test_the_loop_refuses_to_run_without_its_settings():
    with pytest.raises(ValueError, match="needs its `hiper` settings"):
        run_loop("HiPER/ALFWorld-v0", "hiper", ["x"], [[{"role": "user", "content": "x"}]], None, None,
                 with_settings=False)
