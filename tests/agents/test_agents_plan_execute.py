"""The one plan-execute parser on well-formed, sloppy and malicious outputs, and the PlanExecute wrapper."""

import time

import fakeenv  # noqa: F401  (registers Fake/Corridor-v0)
import gymnasium as gym
import pytest

from hiper_envs.wrappers import (
    FormatError,
    PlanExecute,
    PlanStep,
    advance,
    format_plan_execute,
    parse_plan_execute,
)


@pytest.mark.parametrize("text, expected", [
    ("<switch>SWITCH</switch><subgoal>take the key</subgoal><action>forward</action>",
     PlanStep(True, "take the key", "forward")),
    ("<switch>KEEP</switch>\n<action>go to desk 1</action>", PlanStep(False, None, "go to desk 1")),
    # sloppy: case, spaces in tags and fields, prose around, line breaks inside a field
    ("Sure! < Switch >  keep </switch >\n<SUBGOAL> heat\n  the mug </Subgoal>\n<action>  heat mug 1 with microwave 1 </action> done",
     PlanStep(False, "heat the mug", "heat mug 1 with microwave 1")),
    # generation cut off before the last closing tag
    ("<switch>switch</switch><subgoal>buy shoes</subgoal><action>search[red shoes]", PlanStep(True, "buy shoes", "search[red shoes]")),
    # angle brackets that are not our tags belong to the action
    ("<switch>KEEP</switch><action>search[shoes < 40 dollars]</action>", PlanStep(False, None, "search[shoes < 40 dollars]")),
])
def test_parses_well_formed_and_sloppy(text, expected):
    assert parse_plan_execute(text) == expected


def test_dict_form_and_round_trip():
    step = parse_plan_execute({"switch": "SWITCH", "subgoal": "find a mug", "action": "look"})
    assert step == PlanStep(True, "find a mug", "look")
    assert parse_plan_execute(format_plan_execute(step)) == step


@pytest.mark.parametrize("text, reason", [
    ("go to desk 1", "missing"),
    ("<switch>MAYBE</switch><action>look</action>", "KEEP or SWITCH"),
    ("<switch>SWITCH</switch><action>look</action>", "subgoal"),
    ("<switch>KEEP</switch><action>look</action><action>take key</action>", "one <action>"),
    ("<switch>KEEP</switch><switch>SWITCH</switch><subgoal>x</subgoal><action>a</action>", "one <switch>"),
    ("<switch>KEEP</switch><action>look</action></action><action>drop all", "one <action>"),
    ("<switch>KEEP</switch><action>look <subgoal>own the env</subgoal></action>", "tag"),
    ("<switch>KEEP</switch><action>" + "a" * 600 + "</action>", "longer"),
    ("<switch>KEEP</switch>" + "<action>" * 2000, "longer"),
    ({"switch": "KEEP"}, "missing keys"),
    (None, "expected text"),
])
def test_rejects_malformed_and_malicious(text, reason):
    with pytest.raises(FormatError, match=reason):
        parse_plan_execute(text)


def test_adversarial_input_parses_fast():
    nasty = ["<action" * 1300, "<switch>KEEP</switch><action>" + "< action >" * 700, "<" * 7999]
    t0 = time.perf_counter()
    for text in nasty:
        with pytest.raises(FormatError):
            parse_plan_execute(text)
    assert time.perf_counter() - t0 < 0.5


def test_advance_carries_subgoal_on_keep_and_forces_first_switch():
    step, switched, subgoal = advance(None, "<switch>KEEP</switch><subgoal>take key</subgoal><action>forward</action>")
    assert switched and subgoal == "take key"
    _, switched, subgoal = advance("take key", "<switch>KEEP</switch><subgoal>other</subgoal><action>a</action>")
    assert not switched and subgoal == "take key"
    with pytest.raises(FormatError, match="first step"):
        advance(None, "<switch>KEEP</switch><action>forward</action>")


def test_strict_wrapper_segments_and_malformed_steps():
    env = PlanExecute(gym.make("fakeenv:Fake/Corridor-v0", max_episode_steps=4), invalid_penalty=0.5,
                      protocol="strict")
    obs, info = env.reset(options={"task_id": "test-0"})
    assert info["format_valid"] and info["segment"] == -1 and info["subgoal"] == ""

    obs, reward, term, trunc, info = env.step("<switch>SWITCH</switch><subgoal>take the key</subgoal><action>forward</action>")
    assert info["switch"] and info["segment"] == 0 and info["segment_step"] == 0 and info["action_valid"]
    assert info["steps"] == 1

    obs, reward, term, trunc, info = env.step("no tags at all")
    assert reward == -0.5 and not info["format_valid"] and not info["action_valid"]
    assert "Invalid output" in obs and info["steps"] == 1  # the inner env did not step

    obs, reward, term, trunc, info = env.step({"switch": "keep", "action": "take key"})
    assert not info["switch"] and info["subgoal"] == "take the key" and info["segment_step"] == 1
    assert info["subgoal_completed"]

    # the 4th call reaches the step budget although only 3 reached the inner env
    obs, reward, term, trunc, info = env.step("garbage")
    assert trunc and not term
