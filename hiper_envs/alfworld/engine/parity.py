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


def random_command(rng: random.Random, state: EngineState) -> str:
    """An admissible command most of the time; else an invalid one, an upper-cased or padded one."""
    roll = rng.random()
    if roll < 0.75 or not state.admissible_commands:
        return rng.choice(state.admissible_commands) if state.admissible_commands else ""
    if roll < 0.85:
        return rng.choice(INVALID)
    command = rng.choice(state.admissible_commands)
    return command.upper() if roll < 0.93 else f"  {command} \t"


def play_pair(task: AlfworldTask, ref, other, policy: str, seed: int, max_steps: int, result: Parity) -> None:
    """Reset both engines, then step both with the same commands until won or `max_steps`."""
    a, b = ref.reset(), other.reset()
    _record(result, task, "reset", a, b)
    rng = random.Random(seed)
    expert = Expert(task.walkthrough, task.spec, replan=list) if policy == "expert" else None
    choose: Callable[[EngineState], str | None] = (expert.next_action if expert else
                                                    lambda state: random_command(rng, state))
    for step in range(max_steps):
        command = choose(a)
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
                 random_episodes: int = 2, random_steps: int = 25, expert_steps: int = 50) -> Parity:
    """The expert's episode and `random_episodes` seeded random ones, both engines in lockstep."""
    result = Parity()
    ref, other = make_ref(task.game), make_other(task.game)
    play_pair(task, ref, other, "expert", 0, expert_steps, result)
    for seed in range(random_episodes):
        play_pair(task, ref, other, "random", seed, random_steps, result)
    return result
