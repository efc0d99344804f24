"""KeyDoor's rules and text: the state, the admissible actions, their effects and the subgoals.

Everything here is plain Python over a few small ints, so a step costs microseconds. All text is
built from `VOCABULARY`, so a word-level tokenizer made from it covers every observation,
action, task and subgoal (`tokenize` splits the way such a tokenizer should).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hiper_envs.keydoor.layouts import COLORS, ROOM_COUNTS, Layout

HELD = -1  # key location: carried by the agent
NOTHING_HAPPENS = "Nothing happens."

_WORDS = (
    "your task is to take the treasure in room of you are see a and door east west locked open carry "
    "nothing go won happens key"
)
VOCABULARY: tuple[str, ...] = tuple(
    dict.fromkeys(
        [*_WORDS.split(), *COLORS, *(str(i) for i in range(1, max(ROOM_COUNTS) + 1)), ".", ",", ":", "!"]
    )
)
_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Lower-cased words and punctuation marks, e.g. `"You see a red key."` ->
    `["you", "see", "a", "red", "key", "."]`."""
    return _TOKEN.findall(text.lower())


@dataclass
class State:
    """The mutable part of an episode: where the agent is, where each key is, which doors are open."""

    layout: Layout
    room: int = 0
    furthest: int = 0  # the furthest room reached
    key_at: list[int] = field(default_factory=list)  # per door: its key's room, or HELD
    door_open: list[bool] = field(default_factory=list)
    distractor_at: int | None = None  # room of the distractor key, HELD, or None
    won: bool = False

    @classmethod
    def start(cls, layout: Layout) -> State:
        return cls(
            layout=layout,
            key_at=list(layout.key_rooms),
            door_open=[False] * (layout.rooms - 1),
            distractor_at=None if layout.distractor is None else layout.distractor[1],
        )

    @property
    def last_room(self) -> int:
        return self.layout.rooms - 1

    def keys_here(self) -> list[str]:
        """Colours of the keys lying in the current room (door keys in door order, then the distractor)."""
        colors = [c for c, at in zip(self.layout.door_colors, self.key_at, strict=True) if at == self.room]
        if self.distractor_at == self.room:
            colors.append(self.layout.distractor[0])
        return colors

    def keys_held(self) -> list[str]:
        colors = [c for c, at in zip(self.layout.door_colors, self.key_at, strict=True) if at == HELD]
        if self.distractor_at == HELD:
            colors.append(self.layout.distractor[0])
        return colors

    def admissible_actions(self) -> list[str]:
        actions = [f"take {color} key" for color in self.keys_here()]
        if self.room < self.last_room:
            if self.door_open[self.room]:
                actions.append("go east")
            elif self.key_at[self.room] == HELD:
                actions.append(f"open {self.layout.door_colors[self.room]} door")
        if self.room > 0:
            actions.append("go west")
        if self.room == self.last_room and not self.won:
            actions.append("take treasure")
        return actions

    def apply(self, action: str) -> str:
        """Carry out an admissible action (unchecked) and return its feedback sentence."""
        verb, _, rest = action.partition(" ")
        if action == "go east":
            self.room += 1
            self.furthest = max(self.furthest, self.room)
            return "You go east."
        if action == "go west":
            self.room -= 1
            return "You go west."
        if action == "take treasure":
            self.won = True
            return "You take the treasure. You won!"
        color = rest.split()[0]
        if verb == "open":
            self.door_open[self.room] = True
            return f"You open the {color} door."
        if self.layout.distractor is not None and color == self.layout.distractor[0]:
            self.distractor_at = HELD
        else:
            self.key_at[self.layout.door_colors.index(color)] = HELD
        return f"You take the {color} key."

    def describe(self) -> str:
        """The current room, e.g. "You are in room 1. You see a red key. The red door to the east
        is locked. You carry nothing." """
        parts = [f"You are in room {self.room + 1}."]
        things = [f"a {color} key" for color in self.keys_here()]
        if self.room == self.last_room and not self.won:
            things.append("the treasure")
        parts.append(f"You see {_join(things)}." if things else "You see nothing.")
        if self.room < self.last_room:
            status = "open" if self.door_open[self.room] else "locked"
            parts.append(f"The {self.layout.door_colors[self.room]} door to the east is {status}.")
        held = [f"the {color} key" for color in self.keys_held()]
        parts.append(f"You carry {_join(held)}." if held else "You carry nothing.")
        return " ".join(parts)

    def satisfied(self) -> list[bool]:
        """Whether the state satisfies each of `layout.subgoals`, in order.

        Each stays satisfied once reached (keys are never dropped, doors never close), so the goal
        conditions are these same facts, and all of them hold exactly when the treasure is taken.
        """
        out = []
        for i, at in enumerate(self.key_at):
            out += (at == HELD, self.door_open[i], self.furthest > i)
        out.append(self.won)
        return out

    def expert_action(self) -> str:
        """Next action of a shortest plan from this state (replans from anywhere).

        Every key of a still-locked door must be fetched. If one lies west of here, walk west (any
        optimal plan goes at least that far); take such keys where they lie; open the east door
        when it is locked (its key is then carried: it lies in a room <= its door's); go east.
        The distractor is never worth a step.
        """
        if self.room == self.last_room:
            return "take treasure"
        needed = [at for at in self.key_at if at != HELD]  # a key lies somewhere iff its door is locked
        if self.room in needed:
            return f"take {self.layout.door_colors[self.key_at.index(self.room)]} key"
        if any(at < self.room for at in needed):
            return "go west"
        if not self.door_open[self.room]:
            return f"open {self.layout.door_colors[self.room]} door"
        return "go east"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def task_text(layout: Layout) -> str:
    return f"take the treasure in room {layout.rooms}"
