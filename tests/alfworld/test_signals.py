"""Goal conditions and subgoal indices on hand-built states: each condition is what the PDDL goal says."""

from hiper_envs.alfworld.signals import goal_conditions, subgoal_index, subgoals
from hiper_envs.alfworld.world import TaskSpec, World

ROOM = {
    ("atlocation", "agent1", "loc_0"),
    ("receptacletype", "sinkbasin_1", "sinkbasintype"),
    ("receptacletype", "microwave_1", "microwavetype"),
    ("receptacletype", "countertop_1", "countertoptype"),
    ("receptacletype", "countertop_2", "countertoptype"),
    ("receptacletype", "sidetable_1", "sidetabletype"),
    ("receptacleatlocation", "countertop_1", "loc_1"),
    ("receptacleatlocation", "countertop_2", "loc_2"),
    ("receptacleatlocation", "microwave_1", "loc_3"),
    ("receptacleatlocation", "sidetable_1", "loc_4"),
    ("objecttype", "apple_1", "appletype"),
    ("objecttype", "apple_2", "appletype"),
    ("objecttype", "lamp_1", "desklamptype"),
    ("heatable", "apple_1"),
    ("heatable", "apple_2"),
    ("toggleable", "lamp_1"),
    ("inreceptacle", "lamp_1", "sidetable_1"),
}
HEAT = TaskSpec("pick_heat_then_place_in_recep", "Apple", "CounterTop")
TWO = TaskSpec("pick_two_obj_and_place", "Apple", "CounterTop")
LOOK = TaskSpec("look_at_obj_in_light", "Apple", "", "DeskLamp")


def signals(spec, *facts, won=False):
    world = World(ROOM | set(facts))
    return [c["satisfied"] for c in goal_conditions(world, spec)], subgoal_index(world, spec, won)


def test_heat_conditions_follow_the_object_that_got_furthest():
    assert signals(HEAT) == ([False, False, False], 0)
    assert signals(HEAT, ("holds", "agent1", "apple_1")) == ([True, False, False], 1)
    assert signals(HEAT, ("holds", "agent1", "apple_1"), ("ishot", "apple_1")) == ([True, True, False], 2)
    # A hot apple put down in the wrong place: the task needs it taken again.
    assert signals(HEAT, ("inreceptacle", "apple_1", "microwave_1"), ("ishot", "apple_1")) == ([False, True, False], 0)
    # A cold apple on the counter is placed but not hot.
    assert signals(HEAT, ("inreceptacle", "apple_2", "countertop_1")) == ([True, False, True], 0)
    done = signals(HEAT, ("inreceptacle", "apple_2", "countertop_1"), ("ishot", "apple_2"), won=True)
    assert done == ([True, True, True], 3)
    assert len(subgoals(HEAT)) == 3 and subgoals(HEAT)[1] == "heat the apple with the microwave"


def test_pick_two_needs_both_objects_in_the_same_receptacle():
    one = ("inreceptacle", "apple_1", "countertop_1")
    assert signals(TWO, one) == ([True, True, False, False], 2)
    assert signals(TWO, one, ("holds", "agent1", "apple_2")) == ([True, True, True, False], 3)
    split = signals(TWO, one, ("inreceptacle", "apple_2", "countertop_2"))
    assert split == ([True, True, False, False], 2)
    both = signals(TWO, one, ("inreceptacle", "apple_2", "countertop_1"), won=True)
    assert both == ([True, True, True, True], 4)


def test_look_needs_the_lit_lamp_where_the_agent_stands():
    holding = ("holds", "agent1", "apple_1")
    assert signals(LOOK, holding) == ([True, False, False], 1)
    lit_far = signals(LOOK, holding, ("istoggled", "lamp_1"))
    assert lit_far == ([True, True, False], 1)
    here = ROOM - {("atlocation", "agent1", "loc_0")} | {("atlocation", "agent1", "loc_4")}
    world = World(here | {holding, ("istoggled", "lamp_1")})
    assert [c["satisfied"] for c in goal_conditions(world, LOOK)] == [True, True, True]
