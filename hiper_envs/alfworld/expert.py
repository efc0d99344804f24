"""An oracle for ALFWorld: the stored walkthrough while the agent follows it, a planner after.

The planner reads the state's facts and decides the next step of the task's only plan shape
(fetch the object, change its state at the appliance, bring it to the receptacle; twice for
pick_two; to a lamp for look). It costs well under a millisecond, against ~2 s for a Fast Downward
replan, and it names actions as the engine does (ground actions looked up in the engine's own
command table), so whatever it proposes is admissible. When the planner has no answer (a state
outside the plan shape, e.g. an object inside a bowl in real ALFRED data) the engine's planner is
asked once and its plan followed until the agent deviates again.
"""

from __future__ import annotations

from collections.abc import Callable

from hiper_envs.alfworld.engine.base import EngineState
from hiper_envs.alfworld.world import STATE_CHANGES, TaskSpec, World


def plan_next_action(state: EngineState, spec: TaskSpec) -> str | None:
    """The next command on a shortest plan of the task's shape, or None if there is none."""
    if state.won:
        return None
    world = World(state.facts)
    step = _next_step(world, spec)
    return _command(state, *step) if step else None


def _next_step(world: World, spec: TaskSpec) -> tuple[str, ...] | None:
    held = world.held
    if held is None:
        candidate = _object_to_fetch(world, spec)
        return _fetch(world, *candidate) if candidate else None
    if world.object_type.get(held) != spec.obj + "type":
        return _put_away(world, held)
    if spec.task_type in STATE_CHANGES:
        predicate, _, appliance, verb = STATE_CHANGES[spec.task_type]
        if held not in world.unary(predicate):
            device = _nearest(world, world.receptacles_of(appliance))
            if device is None:
                return None
            return (f"{verb}object", device, held) if world.at(device) else ("gotolocation", device)
    if spec.task_type == "look_at_obj_in_light":
        return _light(world, spec)
    target = _placement_target(world, spec)
    return _deliver(world, held, target) if target else None


def _cost(world: World, receptacle: str) -> int:
    """Steps to reach the inside of a receptacle: go there, open it."""
    return (0 if world.at(receptacle) else 1) + (0 if world.is_accessible(receptacle) else 1)


def _nearest(world: World, receptacles: list[str]) -> str | None:
    return min(receptacles, key=lambda rec: (_cost(world, rec), rec), default=None)


def _object_to_fetch(world: World, spec: TaskSpec) -> tuple[str, str] | None:
    """(object, receptacle) of the target type worth picking up, cheapest first."""
    change = STATE_CHANGES.get(spec.task_type)
    done = world.unary(change[0]) if change else frozenset()
    keep_in = _placement_target(world, spec) if spec.task_type == "pick_two_obj_and_place" else None
    options = []
    for obj in world.objects_of(spec.obj):
        rec = world.container_of.get(obj)
        if rec is None or obj not in world.unary("pickupable") or rec == keep_in:
            continue
        options.append((_cost(world, rec) + (0 if obj in done or not change else 1), obj, rec))
    return min(options)[1:] if options else None


def _reach_inside(world: World, rec: str) -> tuple[str, ...] | None:
    """The step that brings the agent closer to reaching into `rec`, or None if it can already."""
    if not world.at(rec):
        return ("gotolocation", rec)
    if not world.is_accessible(rec):
        return ("openobject", rec)
    return None


def _fetch(world: World, obj: str, rec: str) -> tuple[str, ...]:
    return _reach_inside(world, rec) or ("pickupobject", obj, rec)


def _deliver(world: World, obj: str, rec: str) -> tuple[str, ...]:
    return _reach_inside(world, rec) or ("putobject", obj, rec)


def _placement_target(world: World, spec: TaskSpec) -> str | None:
    """Receptacle of the target type to fill: for pick_two, the one already holding most targets."""
    receptacles = world.receptacles_of(spec.recep)

    def key(rec: str) -> tuple:
        already = sum(world.object_type.get(o) == spec.obj + "type" for o in world.contents.get(rec, ()))
        return (-already, _cost(world, rec), rec)

    return min(receptacles, key=key, default=None)


def _put_away(world: World, held: str) -> tuple[str, ...] | None:
    """Free the hands: put an unwanted object into the cheapest receptacle that accepts it."""
    target = _nearest(world, [rec for rec in world.receptacle_type if world.accepts(rec, held)])
    return _deliver(world, held, target) if target else None


def _light(world: World, spec: TaskSpec) -> tuple[str, ...] | None:
    lamps = [lamp for lamp in world.objects_of(spec.toggle) if lamp in world.unary("toggleable")]
    placed = [(lamp, world.container_of[lamp]) for lamp in lamps if lamp in world.container_of]
    if not placed:
        return None
    lit = world.unary("istoggled")
    lamp, rec = min(placed, key=lambda p: (p[0] not in lit, _cost(world, p[1]), p[0]))
    return ("toggleobject", lamp, rec) if world.at(rec) else ("gotolocation", rec)


def _command(state: EngineState, action: str, *args: str) -> str | None:
    """The engine's spelling of the ground action `action` whose arguments include `args`."""
    wanted = set(args)
    for (name, *ground), command in state.commands.items():
        if name == action and wanted.issubset(ground) and _last_matches(action, ground, args):
            return command
    return None


def _last_matches(action: str, ground: list[str], args: tuple[str, ...]) -> bool:
    # gotolocation's receptacle is its last argument; the start location must not be mistaken for it.
    return action != "gotolocation" or ground[-1] == args[0]


class Expert:
    """Stateful oracle for one episode: walkthrough first, then the planner, then the engine's."""

    def __init__(self, walkthrough: list[str], spec: TaskSpec, replan: Callable[[], list[str]]) -> None:
        self._plan = list(walkthrough)
        self._spec = spec
        self._replan = replan

    def observe(self, command: str | None) -> None:
        """Record the agent's command: it consumes the plan if it was the plan's next step."""
        if command is None:
            return
        if self._plan and command.strip() == self._plan[0]:
            self._plan.pop(0)
        else:
            self._plan = []

    def next_action(self, state: EngineState) -> str | None:
        if state.won:
            return None
        if self._plan and self._plan[0] in state.admissible_commands:
            return self._plan[0]
        action = plan_next_action(state, self._spec)
        if action is None:
            self._plan = [cmd for cmd in self._replan()]
            action = self._plan[0] if self._plan else None
        return action
