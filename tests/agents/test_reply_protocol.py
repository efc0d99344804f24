"""The two reply protocols: what the env receives and whether the reply is valid, on a table of
replies, for flat and plan-execute agents on ALFWorld and WebShop; prompt templates; the stored
protocol of an episode."""

from __future__ import annotations

import json

import fakeenv
import gymnasium as gym
import pytest

from agents import AGENTS, make_agent
from agents.hiper import HiperAgent
from harness.report import build_report
from harness.store import Store
from harness.sweep import Run, execute, make_agent_entry, make_env_entry
from hiper_envs.wrappers import PlanExecute, read_flat, read_plan_execute
from hiper_envs.wrappers.plan_execute import FormatError, parse_plan_execute

PE = "<switch>{s}</switch><subgoal>{g}</subgoal><action>{a}</action>"
TAIL = "the last 30 characters of the lowercased reply"

# reply -> (action sent under published on ALFWorld, valid under published, valid under strict)
PLAN_EXECUTE_TABLE = [
    ("well-formed", PE.format(s="SWITCH", g="find a mug", a="go to desk 1"), "go to desk 1", True, True),
    ("capitalised action", PE.format(s="SWITCH", g="g", a="Go to Cabinet 12"), "go to cabinet 12", True, True),
    ("padded", PE.format(s=" keep ", g=" g ", a="   open drawer 1  "), "open drawer 1", True, True),
    ("keep with subgoal", PE.format(s="KEEP", g="g", a="look"), "look", True, True),
    ("keep without subgoal", "<switch>KEEP</switch><action>look</action>", "look", False, True),
    ("missing switch", "<subgoal>g</subgoal><action>look</action>", "look", False, False),
    ("unknown switch", PE.format(s="MAYBE", g="g", a="look"), "look", False, False),
    ("two action tags", "<switch>SWITCH</switch><subgoal>g</subgoal><action>look</action><action>inventory</action>",
     "look", True, False),
    ("no tags", "I would like to Open the Fridge now please", TAIL, False, False),
    ("cut off", "<switch>SWITCH</switch><subgoal>g</subgoal><action>go to coun", TAIL, False, True),
    ("cjk", PE.format(s="SWITCH", g="找杯子", a="look"), "look", False, True),
]

FLAT_TABLE = [
    ("well-formed", "<think>the mug is on the desk</think><action>go to desk 1</action>", "go to desk 1", True),
    ("capitalised", "<think>t</think><action>Go To Desk 1</action>", "go to desk 1", True),
    ("without think", "<action>go to desk 1</action>", "go to desk 1", False),
    ("two action tags", "<think>t</think><action>look</action> <action>inventory</action>", "look", True),
    ("no tags", "Go To Desk 1", "go to desk 1", False),
    ("cut off", "<think>t</think><action>go to des", TAIL, False),
    ("cjk", "<think>去桌子</think><action>go to desk 1</action>", "go to desk 1", False),
]


@pytest.mark.parametrize(("case", "reply", "action", "published_valid", "strict_valid"), PLAN_EXECUTE_TABLE,
                         ids=[row[0] for row in PLAN_EXECUTE_TABLE])
def test_plan_execute_replies_under_both_protocols(case, reply, action, published_valid, strict_valid):
    read = read_plan_execute(reply, tail=30)
    assert read.action == (reply.lower()[-30:] if action is TAIL else action) and read.valid == published_valid
    try:
        parse_plan_execute(reply)
        strict = True
    except FormatError:
        strict = False
    assert strict == strict_valid


def test_published_tail_is_20_characters_on_webshop():
    reply = "I think I should Search[Red Shoes] now"
    assert read_plan_execute(reply, tail=20).action == reply.lower()[-20:]
    assert read_flat(reply, "published", tail=20).action == reply.lower()[-20:]


@pytest.mark.parametrize(("case", "reply", "action", "valid"), FLAT_TABLE, ids=[row[0] for row in FLAT_TABLE])
def test_flat_replies_under_the_published_protocol(case, reply, action, valid):
    read = read_flat(reply, "published", tail=30)
    assert read.action == (reply.lower()[-30:] if action is TAIL else action) and read.valid == valid


def test_flat_strict_protocol_takes_the_last_tag_as_written():
    assert read_flat("<action>look</action> <action>Go To Desk 1</action>", "strict").action == "Go To Desk 1"
    assert read_flat("thinking...\nGo to desk 1", "strict").action == "Go to desk 1"


@pytest.fixture
def alfworld():
    env = PlanExecute(gym.make("HiPER/ALFWorld-v0", split="valid_seen", expert=True))
    yield env
    env.close()


def test_published_wrapper_steps_the_env_with_the_lowercased_action(alfworld):
    obs, info = alfworld.reset(seed=0, options={"task_id": alfworld.unwrapped.task_ids[0]})
    expert = info["expert_action"]
    # capitalised and without a <subgoal> on SWITCH: invalid, yet the env steps with "go to ..."
    obs, reward, term, trunc, info = alfworld.step(f"<switch>SWITCH</switch><action>{expert.title()}</action>")
    assert info["action_valid"] and not info["format_valid"] and reward == pytest.approx(-0.1)
    assert info["steps"] == 1 and info["switch"] and info["segment"] == 0
    expert = info["expert_action"]
    obs, reward, term, trunc, info = alfworld.step(PE.format(s="KEEP", g="Fetch It", a=expert))
    assert info["format_valid"] and info["action_valid"] and info["steps"] == 2
    assert not info["switch"] and info["subgoal"] == "Fetch It"  # the subgoal the reply wrote


def test_strict_wrapper_does_not_step_on_a_malformed_reply(alfworld):
    strict = PlanExecute(alfworld.env, protocol="strict")
    obs, info = strict.reset(seed=0, options={"task_id": strict.unwrapped.task_ids[0]})
    obs, reward, term, trunc, info = strict.step(f"<switch>SWITCH</switch><action>{info['expert_action']}</action>")
    assert "Invalid output" in obs and info["steps"] == 0 and reward == pytest.approx(-0.1)


def test_webshop_published_action_is_lowercased_and_stepped():
    env = PlanExecute(gym.make("HiPER/WebShop-v0", split="test"))
    try:
        obs, info = env.reset(seed=0, options={"task_id": env.unwrapped.task_ids[0]})
        assert env.tail == 20
        obs, reward, term, trunc, info = env.step(PE.format(s="SWITCH", g="find it", a="Search[Red Shoes]"))
        assert info["format_valid"] and info["action_valid"] and info["steps"] == 1
    finally:
        env.close()


def test_prompt_template_renders_the_documented_fields(tmp_path):
    template = tmp_path / "prompt.txt"
    template.write_text("Task: {task_description} | taken {step_count} | showing {history_length}\n"
                        "{action_history}\nNow step {current_step}: {current_observation}\n"
                        "Subgoal: {current_subgoal}\nActions: [{admissible_actions}] {{literal}}")
    agent = make_agent("hiper", "HiPER/ALFWorld-v0", backend=None, history=2, prompt_template=str(template))
    agent.reset("put a mug on the desk", {})
    for i in range(3):
        agent.consume(f"obs {i}", PE.format(s="SWITCH", g=f"goal {i}", a=f"act {i}"))
        agent.step += 1
    (message,) = agent.prompt("you see a desk", {"admissible_actions": ["go to desk 1", "help", "look"]})
    assert message["role"] == "user"
    assert message["content"] == (
        "Task: put a mug on the desk | taken 3 | showing 2\n"
        "[Observation 2: 'obs 1', Action 2: 'act 1']\n[Observation 3: 'obs 2', Action 3: 'act 2']\n"
        "Now step 4: you see a desk\nSubgoal: goal 2\nActions: ['go to desk 1'\n 'look'] {literal}")


def test_prompt_template_with_an_unknown_field_is_refused(tmp_path):
    template = tmp_path / "prompt.txt"
    template.write_text("{task_descripton}")
    with pytest.raises(ValueError, match="unknown template field 'task_descripton'"):
        make_agent("react", "HiPER/ALFWorld-v0", backend=None, prompt_template=str(template))
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match="unknown template field"):
        make_agent_entry("react", {"prompt_template": str(template)})
    with pytest.raises(HarnessError, match="unknown protocol 'lenient'"):
        make_agent_entry("react", {"protocol": "lenient"})


class OneReply:
    """A backend that always answers the same plan-execute reply, capitalised."""

    def generate(self, conversations):
        return ["<switch>SWITCH</switch><subgoal>Walk</subgoal><action>Forward</action>"] * len(conversations)


class OneReplyHiper(HiperAgent):
    @classmethod
    def for_env(cls, env_id, **kwargs):
        return cls(backend=OneReply(), **kwargs)


@pytest.mark.parametrize("protocol", ["published", "strict", None])
def test_an_episode_stores_its_protocol(tmp_path, monkeypatch, protocol):
    monkeypatch.setitem(AGENTS, "one-reply", f"{__name__}:OneReplyHiper")
    kwargs = {"protocol": protocol} if protocol else {}
    run = Run(make_env_entry(f"fakeenv:{fakeenv.ENV_ID}", "test"), make_agent_entry("one-reply", kwargs), 0, 1)
    execute([run], tmp_path / "r.sqlite", workers=1, progress=False)
    with Store(tmp_path / "r.sqlite", create=False) as store:
        (row,) = store.rows("status = 'ok'")
    expected = protocol or "published"
    assert json.loads(row["agent_config"])["kwargs"]["protocol"] == expected
    assert json.loads(row["env_config"])["wrappers"] == (["plan_execute_strict"] if expected == "strict"
                                                         else ["plan_execute"])
    first = json.loads(row["transcript"])[0]
    # published lowercases "Forward" for the env; strict sends it as written
    assert first["action_valid"] == (expected == "published")
    assert "protocol" not in make_agent_entry("expert").kwargs  # the expert's actions are not replies
    with Store(tmp_path / "r.sqlite", create=False) as store:
        report = build_report(store.frame(transcripts=True))
    (group,) = report["groups"]
    assert group["agent"] == f"one-reply [{expected}]"  # reports and leaderboards name the protocol
    (hierarchical,) = report["hierarchical"]
    assert hierarchical["format_valid"] == 1.0  # the reply is well-formed under both protocols
