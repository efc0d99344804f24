"""A read-only view of an ALFWorld state (its PDDL facts) and of what a task asks for.

Goal conditions, subgoals and the expert all read the game through this one view, so they agree
with each other and with the engine's own goal check.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from hiper_envs.alfworld.engine.base import Fact

TASK_TYPES = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)

# The state change each "pick_X_then_place" task asks for: (predicate, object property, appliance).
STATE_CHANGES = {
    "pick_clean_then_place_in_recep": ("isclean", "cleanable", "sinkbasin", "clean"),
    "pick_heat_then_place_in_recep": ("ishot", "heatable", "microwave", "heat"),
    "pick_cool_then_place_in_recep": ("iscool", "coolable", "fridge", "cool"),
}


@dataclass(frozen=True)
class TaskSpec:
    """What a task asks for, from `traj_data.json`'s `task_type` and `pddl_params`."""

    task_type: str
    object_target: str  # e.g. "Potato" (ALFRED class name)
    parent_target: str = ""  # e.g. "SinkBasin"; "" for look_at_obj_in_light
    toggle_target: str = ""  # e.g. "DeskLamp"; only for look_at_obj_in_light

    @property
    def obj(self) -> str:
        return self.object_target.lower()

    @property
    def recep(self) -> str:
        return self.parent_target.lower()

    @property
    def toggle(self) -> str:
        return self.toggle_target.lower()


class World:
    """Indexes over one state's facts (all names lowercase, as the PDDL translator makes them)."""

    def __init__(self, facts: Iterable[Fact]) -> None:
        self.facts = frozenset(facts)
        by_pred: dict[str, list[tuple[str, ...]]] = defaultdict(list)
        for fact in self.facts:
            by_pred[fact[0]].append(fact[1:])
        self._by_pred = by_pred

    def args(self, predicate: str) -> list[tuple[str, ...]]:
        return self._by_pred.get(predicate, [])

    def unary(self, predicate: str) -> frozenset[str]:
        return frozenset(a[0] for a in self.args(predicate))

    @cached_property
    def agent_location(self) -> str | None:
        locations = [loc for _, loc in self.args("atlocation")]
        return locations[0] if locations else None

    @cached_property
    def held(self) -> str | None:
        objects = sorted(obj for _, obj in self.args("holds"))
        return objects[0] if objects else None

    @cached_property
    def object_type(self) -> dict[str, str]:
        return {obj: kind for obj, kind in self.args("objecttype")}

    @cached_property
    def receptacle_type(self) -> dict[str, str]:
        return {rec: kind for rec, kind in self.args("receptacletype")}

    @cached_property
    def receptacle_location(self) -> dict[str, str]:
        return {rec: loc for rec, loc in self.args("receptacleatlocation")}

    @cached_property
    def container_of(self) -> dict[str, str]:
        return {obj: rec for obj, rec in self.args("inreceptacle")}

    @cached_property
    def contents(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = defaultdict(list)
        for obj, rec in sorted(self.args("inreceptacle")):
            found[rec].append(obj)
        return found

    @cached_property
    def can_contain(self) -> frozenset[tuple[str, str]]:
        return frozenset((rtype, otype) for rtype, otype in self.args("cancontain"))

    def objects_of(self, type_name: str) -> list[str]:
        kind = type_name + "type"
        return sorted(obj for obj, t in self.object_type.items() if t == kind)

    def receptacles_of(self, type_name: str) -> list[str]:
        kind = type_name + "type"
        return sorted(rec for rec, t in self.receptacle_type.items() if t == kind)

    def is_accessible(self, receptacle: str) -> bool:
        return receptacle not in self.unary("openable") or receptacle in self.unary("opened")

    def at(self, receptacle: str) -> bool:
        return self.receptacle_location.get(receptacle) == self.agent_location

    def accepts(self, receptacle: str, obj: str) -> bool:
        return (self.receptacle_type.get(receptacle), self.object_type.get(obj)) in self.can_contain
