"""Every KeyDoor layout, enumerated, and the fixed splits.

A layout is a row of `rooms` rooms joined by locked doors, one colour each; the key of door i
(between rooms i and i+1) lies in some room <= i, so every layout is solvable; optionally one
distractor key of a colour no door has. The treasure is in the last room; the agent starts in
room 0. All layouts of 2-4 rooms over five colours are enumerated (3685 of them).

Splits, as ALFWorld's: a *scene* is the room count and the door colours. Scenes whose hash falls
in bucket 0 of 5 are held out: their layouts form `valid_unseen`. The other scenes' layouts are
shuffled with a fixed seed; the first 100 are `valid_seen` (seen scenes, new key placements), the
rest `train`.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import random
from dataclasses import dataclass

COLORS = ("red", "blue", "green", "yellow", "purple")
ROOM_COUNTS = (2, 3, 4)
SPLITS = ("train", "valid_seen", "valid_unseen")
VALID_SIZE = 100


@dataclass(frozen=True)
class Layout:
    rooms: int
    door_colors: tuple[str, ...]  # door i joins rooms i and i + 1
    key_rooms: tuple[int, ...]  # the room holding door i's key, <= i
    distractor: tuple[str, int] | None  # (colour, room) of a key that opens nothing

    @functools.cached_property
    def task_id(self) -> str:
        """Readable and stable: `3r-red.blue-k01-green@2` (key rooms 0 and 1, a green key in room 2)."""
        extra = "none" if self.distractor is None else f"{self.distractor[0]}@{self.distractor[1]}"
        keys = "".join(map(str, self.key_rooms))
        return f"{self.rooms}r-{'.'.join(self.door_colors)}-k{keys}-{extra}"

    @functools.cached_property
    def task_hash(self) -> str:
        return _hash(self.task_id)

    @functools.cached_property
    def subgoals(self) -> tuple[str, ...]:
        """The canonical decomposition: for door i, take its key, open it, go to room i + 2 (1-based);
        then take the treasure."""
        steps = [(f"take the {c} key", f"open the {c} door", f"go to room {i + 2}") for i, c in enumerate(self.door_colors)]
        return (*(s for triple in steps for s in triple), "take the treasure")

    @property
    def task_type(self) -> str:
        return f"{self.rooms}_rooms"


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _scene_is_unseen(rooms: int, door_colors: tuple[str, ...]) -> bool:
    return int(_hash(f"{rooms}:{','.join(door_colors)}"), 16) % 5 == 0


def all_layouts() -> list[Layout]:
    layouts = []
    for rooms in ROOM_COUNTS:
        doors = rooms - 1
        for door_colors in itertools.permutations(COLORS, doors):
            spare = [c for c in COLORS if c not in door_colors]
            distractors = [None] + [(c, room) for c in spare for room in range(rooms)]
            for key_rooms in itertools.product(*(range(i + 1) for i in range(doors))):
                for distractor in distractors:
                    layouts.append(Layout(rooms, door_colors, key_rooms, distractor))
    return layouts


@functools.cache
def split_layouts(split: str) -> dict[str, Layout]:
    """The split's layouts by task id, in a fixed order (sorted by id)."""
    seen, unseen = [], []
    for layout in all_layouts():
        (unseen if _scene_is_unseen(layout.rooms, layout.door_colors) else seen).append(layout)
    random.Random("keydoor-splits-v0").shuffle(seen)
    chosen = {"valid_unseen": unseen, "valid_seen": seen[:VALID_SIZE], "train": seen[VALID_SIZE:]}[split]
    return {layout.task_id: layout for layout in sorted(chosen, key=lambda x: x.task_id)}
