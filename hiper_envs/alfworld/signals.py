"""Subgoal-aware signals for ALFWorld, read from the PDDL facts of the current state (docs/envs.md).

Goal conditions split each task type's PDDL goal (alfworld's goal library) into parts; all of
them hold exactly when the goal does, so `progress` is 1.0 exactly when the game is won. Where a
goal says "there exists an object", the conditions are those of the object that satisfies most.

Subgoals are the canonical ordered decomposition of the task. The subgoal index is read from the
state, not latched: if the agent drops the heated mug on the floor of the wrong room, the index
goes back to "take a mug", which is the truth about what is left to do.
"""

from __future__ import annotations

from hiper_envs.alfworld.world import STATE_CHANGES, TaskSpec, World


def goal_conditions(world: World, spec: TaskSpec) -> list[dict]:
    if spec.task_type == "look_at_obj_in_light":
        conditions = _look_conditions(world, spec)
    elif spec.task_type == "pick_two_obj_and_place":
        conditions = _pick_two_conditions(world, spec)
    else:
        conditions = _place_conditions(world, spec)
    return [{"name": name, "satisfied": bool(ok)} for name, ok in conditions]


def subgoals(spec: TaskSpec) -> list[str]:
    take, put = f"take a {spec.obj}", f"put the {spec.obj} in/on the {spec.recep}"
    if spec.task_type == "look_at_obj_in_light":
        return [take, f"use the {spec.toggle}"]
    if spec.task_type == "pick_two_obj_and_place":
        return [take, put, f"take another {spec.obj}", put]
    if spec.task_type in STATE_CHANGES:
        _, _, appliance, verb = STATE_CHANGES[spec.task_type]
        return [take, f"{verb} the {spec.obj} with the {appliance}", put]
    return [take, put]


def subgoal_index(world: World, spec: TaskSpec, won: bool) -> int:
    """Index of the first unfinished subgoal; len(subgoals) once the task is won."""
    if won:
        return len(subgoals(spec))
    holding = _holds_target(world, spec)
    if spec.task_type == "pick_two_obj_and_place":
        placed = _most_placed(world, spec) >= 1
        return 3 if placed and holding else 2 if placed else 1 if holding else 0
    if spec.task_type in STATE_CHANGES:
        predicate = STATE_CHANGES[spec.task_type][0]
        changed = world.held is not None and world.held in world.unary(predicate)
        return 2 if holding and changed else 1 if holding else 0
    return 1 if holding else 0


def _holds_target(world: World, spec: TaskSpec) -> bool:
    return world.held is not None and world.object_type.get(world.held) == spec.obj + "type"


def _in_target(world: World, spec: TaskSpec, obj: str) -> bool:
    return world.receptacle_type.get(world.container_of.get(obj, "")) == spec.recep + "type"


def _place_conditions(world: World, spec: TaskSpec) -> list[tuple[str, bool]]:
    """pick_and_place_simple and the clean / heat / cool variants."""
    change = STATE_CHANGES.get(spec.task_type)
    best: list[tuple[str, bool]] = []
    for obj in world.objects_of(spec.obj) or [""]:
        placed = bool(obj) and _in_target(world, spec, obj)
        conditions = [(f"a {spec.obj} is held or in a {spec.recep}", placed or obj == world.held)]
        if change:
            predicate, ability, _, verb = change
            done = obj in world.unary(predicate) and obj in world.unary(ability)
            conditions.append((f"the {spec.obj} is {_past(verb)}", done))
        conditions.append((f"the {spec.obj} is in/on a {spec.recep}", placed))
        if sum(ok for _, ok in conditions) > sum(ok for _, ok in best) or not best:
            best = conditions
    return best


def _most_placed(world: World, spec: TaskSpec) -> int:
    """Largest number of target objects inside any one receptacle of the target type."""
    counts = [
        sum(world.object_type.get(obj) == spec.obj + "type" for obj in world.contents.get(rec, ()))
        for rec in world.receptacles_of(spec.recep)
    ]
    return max(counts, default=0)


def _pick_two_conditions(world: World, spec: TaskSpec) -> list[tuple[str, bool]]:
    placed, holding = _most_placed(world, spec), _holds_target(world, spec)
    return [
        (f"a {spec.obj} is held or in a {spec.recep}", holding or placed >= 1),
        (f"a {spec.obj} is in/on a {spec.recep}", placed >= 1),
        (f"a second {spec.obj} is held or in/on that {spec.recep}", placed >= 2 or (placed >= 1 and holding)),
        (f"two {spec.obj}s are in/on the same {spec.recep}", placed >= 2),
    ]


def _look_conditions(world: World, spec: TaskSpec) -> list[tuple[str, bool]]:
    lamps = [lamp for lamp in world.objects_of(spec.toggle) if lamp in world.unary("toggleable")]
    lit = [lamp for lamp in lamps if lamp in world.unary("istoggled")]
    lit_here = [lamp for lamp in lit if world.at(world.container_of.get(lamp, ""))]
    return [
        (f"a {spec.obj} is held", _holds_target(world, spec)),
        (f"a {spec.toggle} is turned on", bool(lit)),
        (f"the agent is at a turned-on {spec.toggle}", bool(lit_here)),
    ]


def _past(verb: str) -> str:
    return {"clean": "clean", "heat": "hot", "cool": "cool"}[verb]
