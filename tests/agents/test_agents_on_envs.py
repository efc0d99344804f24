"""Each agent on each env: the expert wins every bundled task it plays, the random agent stays valid,
the LLM agents' prompts carry the task, history, observation, subgoal and actions, and a hierarchical run yields its metrics."""

import re

import fakeenv
import gymnasium as gym
import pytest

import hiper_envs
from agents import AGENTS, make_agent
from agents.hiper import HiperAgent
from harness.envspec import count_tasks
from harness.report import build_report
from harness.store import Store
from harness.sweep import Run, execute, make_agent_entry, make_env_entry
from hiper_envs.wrappers import PlanExecute

gym.register_envs(hiper_envs)
REAL = [("HiPER/ALFWorld-v0", "valid_unseen", 6), ("HiPER/WebShop-v0", "test", 8)]


def available(env_id: str, split: str) -> bool:
    return isinstance(count_tasks(env_id, split), int)


class ScriptedBackend:
    """Stands in for a model: reads the prompt like one and answers in the plan-execute format."""

    def generate(self, conversations):
        return [self.reply(c[-1]["content"]) for c in conversations]

    @staticmethod
    def reply(prompt: str) -> str:
        admissible = re.findall(r"^- (.+)$", prompt.split("Admissible actions:")[1], re.MULTILINE)
        action = next((a for a in ("take key", "open door", "forward") if a in admissible), admissible[0])
        observation = prompt.split("Current observation:")[1].split("Current subgoal:")[0]
        if "Current subgoal: None" in prompt:
            return f"<switch>SWITCH</switch><subgoal>take the key</subgoal><action>{action}</action>"
        if "hold the key" in observation and "Current subgoal: take the key" in prompt:
            return f"<switch>SWITCH</switch><subgoal>open the door</subgoal><action>{action}</action>"
        return f"<switch>KEEP</switch><action>{action}</action>"


class ScriptedHiper(HiperAgent):
    @classmethod
    def for_env(cls, env_id, **kwargs):
        return cls(backend=ScriptedBackend(), **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("env_id, split, episodes", REAL)
def test_expert_wins_every_bundled_task_it_runs(tmp_path, env_id, split, episodes):
    if not available(env_id, split):
        pytest.skip(f"{env_id} {split} cannot be built here")
    db = tmp_path / "r.sqlite"
    summary = execute([Run(make_env_entry(env_id, split), make_agent_entry("expert"), 0, episodes)], db,
                      workers=2, progress=False)
    assert summary.ran == episodes and summary.errors == 0 and summary.succeeded == episodes
    with Store(db, create=False) as store:
        frame = store.frame()
    assert frame["success"].all() and (frame["score"] == 1.0).all() and (frame["progress"] == 1.0).all()
    assert (frame["invalid_actions"] == 0).all()


@pytest.mark.parametrize("env_id, split, _", REAL)
def test_random_react_and_hiper_step_real_envs(env_id, split, _):
    if not available(env_id, split):
        pytest.skip(f"{env_id} {split} cannot be built here")

    class Echo:
        """Answers every prompt with the first admissible action, in both formats at once."""

        def generate(self, conversations):
            first = [re.findall(r"^- (.+)$", c[-1]["content"], re.MULTILINE)[0] for c in conversations]
            return [f"<think>ok</think><switch>SWITCH</switch><subgoal>explore</subgoal><action>{a}</action>"
                    for a in first]

    for name, kwargs in (("random", {"seed": 1}), ("react", {"backend": Echo()}), ("hiper", {"backend": Echo()})):
        agent = make_agent(name, env_id, **kwargs)
        env = gym.make(env_id, split=split, max_episode_steps=3)
        env = PlanExecute(env) if agent.wrappers else env
        obs, info = env.reset(options={"task_id": env.unwrapped.task_ids[0]})
        agent.reset(info["task"], info, seed=0)
        if name != "random":
            prompt = agent.prompt(obs, info)[-1]["content"]
            assert info["task"] in prompt and "Admissible actions:" in prompt
            assert all(f"- {a}" in prompt for a in info["admissible_actions"])
            assert ("Current subgoal: None" in prompt) == (name == "hiper")
        done = False
        while not done:
            obs, reward, terminated, truncated, info = env.step(agent.act(obs, info))
            assert info["action_valid"], f"{name} sent an inadmissible action on {env_id}"
            done = terminated or truncated
        env.close()


def test_hierarchical_run_reports_switches_and_subgoal_alignment(tmp_path, monkeypatch):
    monkeypatch.setitem(AGENTS, "scripted-hiper", f"{__name__}:ScriptedHiper")
    run = Run(make_env_entry(f"fakeenv:{fakeenv.ENV_ID}", "test"), make_agent_entry("scripted-hiper"), 0, None)
    summary = execute([run], tmp_path / "r.sqlite", workers=2, progress=False)
    assert summary.succeeded == 6  # the script plays the corridor perfectly
    with Store(tmp_path / "r.sqlite", create=False) as store:
        frame = store.frame(transcripts=True)
    assert (frame["switches"] == 2).all() and (frame["aligned_switches"] == 1).all()
    (h,) = build_report(frame)["hierarchical"]
    assert h["switch_rate"] == pytest.approx(2 / 6) and h["segment_length"] == pytest.approx(3.0)
    assert h["subgoal_alignment"] == 1.0 and h["subgoals_completed"] == 1.0


@pytest.mark.parametrize(("protocol", "after_keep"), [("strict", "s3"), ("published", "re-emitted")])
def test_history_window_keeps_last_k_pairs(protocol: str, after_keep: str):
    agent = make_agent("hiper", "HiPER/ALFWorld-v0", backend=ScriptedBackend(), history=2, protocol=protocol)
    agent.reset("t", {})
    for i in range(4):
        agent.consume(f"obs {i}", f"<switch>SWITCH</switch><subgoal>s{i}</subgoal><action>a{i}</action>")
    assert list(agent.history.pairs) == [("obs 2", "a2"), ("obs 3", "a3")] and agent.subgoal == "s3"
    agent.consume("obs 4", "<switch>KEEP</switch><subgoal>re-emitted</subgoal><action>a4</action>")
    # strict: KEEP carries the current subgoal verbatim; published: the one the reply last wrote
    assert agent.subgoal == after_keep


class FirstListed:
    """Answers every prompt with its first listed action, and counts its `generate` calls."""

    def __init__(self):
        self.calls = []

    def generate(self, conversations):
        self.calls.append(len(conversations))
        return [f"<action>{re.search(r'^- (.+)$', c[-1]['content'], re.MULTILINE)[1]}</action>"
                for c in conversations]


def test_act_batch_asks_a_shared_backend_once_and_acts_as_act_does():
    backend = FirstListed()
    env = gym.make("HiPER/KeyDoor-v0")
    agents, observations, infos = [], [], []
    for i in range(3):
        obs, info = env.reset(seed=i)
        agent = make_agent("react", "HiPER/KeyDoor-v0", backend=backend)
        agent.reset(info["task"], info, seed=i)
        agents.append(agent)
        observations.append(obs)
        infos.append(info)
    batched = type(agents[0]).act_batch(agents, observations, infos)
    assert backend.calls == [3]
    assert batched == [info["admissible_actions"][0] for info in infos]
    assert all(agent.step == 1 for agent in agents)
    other = make_agent("react", "HiPER/KeyDoor-v0", backend=FirstListed())
    with pytest.raises(ValueError, match="share one backend"):
        type(other).act_batch([agents[0], other], observations[:2], infos[:2])
