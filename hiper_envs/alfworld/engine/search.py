"""Uniform-cost search for a short winning plan from a native engine's current state.

The expert's planner covers the task shapes; this is its fallback for any other state, in place of
the reference engine's Fast Downward replan (~2 s). It searches a reduction of the state that keeps
what the goal and the preconditions depend on: the agent's location, the held object, where the
objects of the goal's types are, which receptacles are open, and the goal objects' flags. Moving
other objects never helps (the domain has no capacities) and closing never does, so other objects
are only ever put down, goal objects only into receptacles of a type the goal names, and an `open`
is taken together with the take or put that needs it. A plan in the reduction is a plan in the
game, shortest among those of that form.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from hiper_envs.alfworld.engine.base import Fact

if TYPE_CHECKING:
    from hiper_envs.alfworld.engine.native import NativeEngine

FLAGS = ("isclean", "ishot", "iscool", "istoggled", "issliced")
CHANGES = {"cleanobject": ("isclean", None), "heatobject": ("ishot", "iscool"), "coolobject": ("iscool", "ishot")}
MAX_STATES = 200_000

# (location, held object or "", {(object, receptacle)} of goal objects, {opened}, {(flag, object)})
State = tuple[str, str, frozenset, frozenset, frozenset]


def shortest_plan(engine: NativeEngine, max_states: int = MAX_STATES) -> list[str]:
    """Commands of a plan to the goal, or [] if none is found within `max_states` states."""
    from hiper_envs.alfworld.engine.native import APPLIANCES

    if len(engine._agents) != 1:
        return []
    agent = engine._agents[0]
    facts = engine._by_pred
    names = _goal_names(engine)
    relevant = frozenset(o for o, kinds in engine._otypes.items() if o in names or names.intersection(kinds))
    locations = [loc for a, loc in facts.get("atlocation", ()) if a == agent]
    if not locations:
        return []
    held = next((obj for a, obj in facts.get("holds", ()) if a == agent), "")
    start: State = (
        locations[0], held,
        frozenset((o, r) for o, r in facts.get("inreceptacle", ()) if o in relevant),
        frozenset(r for (r,) in facts.get("opened", ())),
        frozenset((p, o) for p in FLAGS for (o,) in facts.get(p, ()) if o in relevant),
    )
    static = {pred: args for pred, args in facts.items() if pred not in _DYNAMIC_PREDICATES}

    def won(state: State) -> bool:
        loc, obj, placed, opened, flags = state
        view = dict(static)
        view["atlocation"] = {(agent, loc)}
        view["holds"] = {(agent, obj)} if obj else set()
        view["holdsany"] = {(agent,)} if obj else set()
        view["inreceptacle"] = set(placed)
        view["opened"] = {(r,) for r in opened}
        for pred in FLAGS:
            view[pred] = {(o,) for p, o in flags if p == pred}
        return engine._goal(view)

    def successors(state: State):
        """(ground actions, next state): an `open` is fused with the take or put that needs it."""
        loc, obj, placed, opened, flags = state
        seen_places = set()
        for r, lend in engine._receptacle_places:
            if lend != loc and lend not in seen_places:
                seen_places.add(lend)
                yield (("gotolocation", agent, loc, lend, r),), (lend, obj, placed, opened, flags)
        for r in engine._receptacles_at.get(loc, ()):
            closed = r in engine._unary["openable"] and r not in opened
            opening = (("openobject", agent, loc, r),) if closed else ()
            now_open = opened | {r} if closed else opened
            for o, where in placed:
                if where != r:
                    continue
                if not obj and o in engine._unary["pickupable"]:
                    yield (*opening, ("pickupobject", agent, loc, o, r)), (loc, o, placed - {(o, r)}, now_open, flags)
                if o in engine._unary["toggleable"]:
                    yield (("toggleobject", agent, loc, o, r),), (loc, obj, placed, opened, flags | {("istoggled", o)})
            if not obj:
                continue
            pair = next(((ot, rt) for ot in engine._otypes.get(obj, ()) for rt in engine._rtypes.get(r, ())
                         if (rt, ot) in engine._can_contain), None)
            if pair and (obj not in relevant or names.intersection(engine._rtypes.get(r, ()))):
                now = placed | {(obj, r)} if obj in relevant else placed
                yield (*opening, ("putobject", agent, loc, obj, r, *pair)), (loc, "", now, now_open, flags)
            for action, (appliance, ability) in APPLIANCES.items():
                if obj in relevant and obj in engine._unary[ability] and appliance in engine._rtypes.get(r, ()):
                    made, undone = CHANGES[action]
                    new = (flags - {(undone, obj)}) | {(made, obj)}
                    yield ((action, agent, loc, r, obj),), (loc, obj, placed, opened, new)

    if won(start):
        return []
    best: dict[State, int] = {start: 0}
    parents: dict[State, tuple[State, tuple[Fact, ...]] | None] = {start: None}
    heap = [(0, 0, start)]
    counter = 0
    while heap and len(best) < max_states:
        cost, _, state = heapq.heappop(heap)
        if cost > best[state]:
            continue
        if won(state):
            return _commands(engine, parents, state)
        for keys, nxt in successors(state):
            if cost + len(keys) < best.get(nxt, max_states):
                best[nxt] = cost + len(keys)
                parents[nxt] = (state, keys)
                counter += 1
                heapq.heappush(heap, (cost + len(keys), counter, nxt))
    return []


_DYNAMIC_PREDICATES = frozenset({"atlocation", "holds", "holdsany", "inreceptacle", "opened", *FLAGS})


def _goal_names(engine: NativeEngine) -> frozenset[str]:
    """The constants the goal names (object and receptacle types, objects)."""
    names = set()
    stack = [engine._goal_formula]
    while stack:
        part = stack.pop()
        if isinstance(part, list):
            stack.extend(part)
        elif not part.startswith("?"):
            names.add(part)
    return frozenset(names)


def _commands(engine: NativeEngine, parents: dict, state: State) -> list[str]:
    steps = []
    while parents[state] is not None:
        state, keys = parents[state]
        steps.append(keys)
    return [engine._spell(key) for keys in reversed(steps) for key in keys]
