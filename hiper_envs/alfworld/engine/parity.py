"""Play one task on two engines side by side and list every difference (the parity suite's core).

Used by `tests/alfworld/test_native_parity.py` (a sample) and `bench/alfworld_engines.py` (every
validation task and a train sample). Each step compares the observation, the sorted admissible
commands, `won`, `action_valid`, the facts, the ground-action spellings, the display names, and the
goal conditions and subgoal index read from the facts.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from hiper_envs.alfworld.dataset import AlfworldTask
from hiper_envs.alfworld.engine.base import EngineState
from hiper_envs.alfworld.expert import Expert
from hiper_envs.alfworld.signals import goal_conditions, subgoal_index
from hiper_envs.alfworld.world import World

# Commands no game accepts, or accepts only once stripped: the invalid-action share of random play.
INVALID = ("", "   ", "take nothing", "look around", "go to", "go to nowhere 99", "open", "examine", "put", "\n")


@dataclass
class Parity:
    steps: int = 0  # states compared (resets included)
    mismatches: list[str] = field(default_factory=list)


def differences(ref: EngineState, other: EngineState, task: AlfworldTask) -> list[str]:
    out = [name for name in ("feedback", "admissible_commands", "won", "action_valid", "facts", "commands", "names")
           if getattr(ref, name) != getattr(other, name)]
    world_ref, world_other = World(ref.facts), World(other.facts)
    if goal_conditions(world_ref, task.spec) != goal_conditions(world_other, task.spec):
        out.append("goal_conditions")
    if subgoal_index(world_ref, task.spec, ref.won) != subgoal_index(world_other, task.spec, other.won):
        out.append("subgoal_index")
    return out


def random_command(rng: random.Random, state: EngineState, rare_first: bool = False) -> str:
    """An admissible command most of the time; else an invalid one, an upper-cased or padded one.
    `rare_first` weights commands other than go to/look/inventory/help up, so that take, move,
    open, close, heat, cool, clean, use, slice and examine all occur in short episodes."""
    roll = rng.random()
    if roll < 0.75 or not state.admissible_commands:
        if not state.admissible_commands:
            return ""
        if not rare_first:
            return rng.choice(state.admissible_commands)
        weights = [1 if c.startswith("go to ") else 0.3 if c in ("look", "inventory", "help") else 6
                   for c in state.admissible_commands]
        return rng.choices(state.admissible_commands, weights)[0]
    if roll < 0.85:
        return rng.choice(INVALID)
    command = rng.choice(state.admissible_commands)
    return command.upper() if roll < 0.93 else f"  {command} \t"


class Tour:
    """A scripted visit of the rare actions: take an object with abilities, heat, cool and clean it
    (examining it after each), put it down; then take a knife, slice something, take the slice,
    examine and heat it. Each step is reached by going to, and opening, what it needs."""

    def __init__(self, state: EngineState, rng: random.Random) -> None:
        world = World(state.facts)
        abilities = ("heatable", "coolable", "cleanable")
        movable = sorted(o for o in world.container_of if o in world.unary("pickupable"))
        rich = [o for o in movable if any(o in world.unary(a) for a in abilities)] or movable
        self.plan: list[tuple[str, ...]] = []
        if rich:
            obj = rng.choice(rich)
            self.plan.append(("pickupobject", obj))
            for ability, action in zip(abilities, ("heatobject", "coolobject", "cleanobject"), strict=True):
                if obj in world.unary(ability):
                    self.plan += [(action, obj), ("examineobject", obj)]
            self.plan.append(("putobject", obj))
        knives = [o for o in movable if world.object_type.get(o) in ("knifetype", "butterknifetype")]
        food = [o for o in movable if o in world.unary("sliceable")]
        if knives and food:
            knife, target = rng.choice(knives), rng.choice(food)
            self.plan += [("pickupobject", knife), ("sliceobject", target), ("putobject", knife),
                          ("pickupobject", target), ("examineobject", target), ("heatobject", target),
                          ("examineobject", target)]

    def next_action(self, state: EngineState) -> str | None:
        world = World(state.facts)
        while self.plan:
            action, obj = self.plan[0]
            for (name, *args), command in sorted(state.commands.items()):
                if name == action and obj in args:
                    self.plan.pop(0)
                    return command
            place = self._place(world, action, obj)
            if place is None:
                self.plan.pop(0)
                continue
            if not world.at(place):
                return next((c for (n, *args), c in state.commands.items() if n == "gotolocation" and args[-1] == place),
                            None)
            if not world.is_accessible(place):
                return next((c for (n, *args), c in state.commands.items() if n == "openobject" and args[-1] == place),
                            None)
            self.plan.pop(0)  # there, open, and still not possible: skip it
        return None

    @staticmethod
    def _place(world: World, action: str, obj: str) -> str | None:
        """The receptacle to stand at (and open) for the action."""
        if action in ("pickupobject", "sliceobject"):
            return world.container_of.get(obj)
        appliance = {"heatobject": "microwave", "coolobject": "fridge", "cleanobject": "sinkbasin"}.get(action)
        if appliance:
            return next(iter(world.receptacles_of(appliance)), None)
        if action == "putobject":
            return next((r for r in sorted(world.receptacle_type) if world.accepts(r, obj)), None)
        return None


def play_pair(task: AlfworldTask, ref, other, policy: str, seed: int, max_steps: int, result: Parity) -> None:
    """Reset both engines, then step both with the same commands until won or `max_steps`."""
    a, b = ref.reset(), other.reset()
    _record(result, task, "reset", a, b)
    rng = random.Random(seed)
    expert = Expert(task.walkthrough, task.spec, replan=list) if policy == "expert" else None
    scripted = expert or (Tour(a, rng) if policy == "tour" else None)
    choose: Callable[[EngineState], str | None] = (scripted.next_action if scripted else
                                                    lambda state: random_command(rng, state, seed % 2 == 1))
    for step in range(max_steps):
        command = choose(a)
        if command is None and policy == "tour":
            return
        if command is None:
            command = random_command(rng, a)
        if expert is not None:
            expert.observe(command)
        a, b = ref.step(command), other.step(command)
        _record(result, task, f"{policy}/{seed} step {step} {command!r}", a, b)
        if a.won and policy == "expert":
            return


def _record(result: Parity, task: AlfworldTask, where: str, a: EngineState, b: EngineState) -> None:
    result.steps += 1
    diff = differences(a, b, task)
    if diff:
        result.mismatches.append(f"{task.task_id} {where}: {', '.join(diff)}")


def compare_task(task: AlfworldTask, make_ref: Callable[[dict], object], make_other: Callable[[dict], object],
                 random_episodes: int = 2, random_steps: int = 25, expert_steps: int = 50,
                 tour_steps: int = 40) -> Parity:
    """The expert's episode, the tour of rare actions and `random_episodes` seeded random ones (odd
    seeds weighted to rare commands), both engines in lockstep."""
    result = Parity()
    ref, other = make_ref(task.game), make_other(task.game)
    play_pair(task, ref, other, "expert", 0, expert_steps, result)
    if tour_steps:
        play_pair(task, ref, other, "tour", 0, tour_steps, result)
    for seed in range(random_episodes):
        play_pair(task, ref, other, "random", seed, random_steps, result)
    return result
