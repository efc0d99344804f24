"""Pieces every HiPER env shares: the text spaces, argument checks and the reward modes (docs/envs.md)."""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Sequence
from typing import TypeVar

import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import read_from_shared_memory

T = TypeVar("T")

REWARD_MODES = ("sparse", "progress")

# Observations are page or game text: printable characters of the Basic Multilingual Plane plus
# line breaks and tabs. Gymnasium's default Text charset is alphanumeric only. A string, not a
# set: vector envs share observations as character indices, which must agree across processes.
TEXT_CHARSET = "\t\n\r" + "".join(chr(i) for i in range(0x20, 0xD800) if chr(i).isprintable())


@functools.cache
def _charset_tables() -> spaces.Text:
    """One Text over TEXT_CHARSET whose character tables every UnicodeText shares."""
    return spaces.Text(max_length=1, charset=TEXT_CHARSET)


class UnicodeText(spaces.Text):
    """Gymnasium's Text over TEXT_CHARSET, with a repr that does not print 50k characters.

    Text builds four tables over its charset, about 6 MB for these 55k characters; an env has two
    spaces and an env host keeps hundreds of envs, so every instance shares one set of the tables
    (Text never changes them). Only the sampling RNG is each space's own.
    """

    def __init__(self, max_length: int = 100_000, seed: int | None = None) -> None:
        tables = _charset_tables()
        self._char_set, self._char_list = tables._char_set, tables._char_list
        self._char_index, self._char_str = tables._char_index, tables._char_str
        self.min_length, self.max_length = 0, int(max_length)
        spaces.Space.__init__(self, dtype=str, seed=seed)

    def __repr__(self) -> str:
        return f"UnicodeText(max_length={self.max_length})"


class SharedTextView(Sequence):
    """Live view of text observations in an async vector env's shared memory.

    Gymnasium reads the shared buffer once, when the vector env is built, and relies on the result
    being a view of it; for Text it decodes strings instead, so every later observation would read
    as the first. This view decodes on access; `deepcopy` (what the vector env returns) gives a tuple.
    """

    def __init__(self, space: spaces.Text, shared_memory, n: int) -> None:
        self._space, self._n = space, n
        self._codes = np.frombuffer(shared_memory.get_obj(), dtype=np.int32).reshape(n, space.max_length)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index):
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(self._n)))
        row = self._codes[index]
        codes = row[row < len(self._space.character_set)].tolist()
        return "".join(map(self._space.character_list.__getitem__, codes))

    def __deepcopy__(self, memo) -> tuple[str, ...]:
        return tuple(self)


@read_from_shared_memory.register(UnicodeText)
def _read_unicode_text(space: UnicodeText, shared_memory, n: int = 1) -> SharedTextView:
    return SharedTextView(space, shared_memory, n)


def text_space(max_length: int = 100_000) -> spaces.Text:
    """A Text space wide enough for any observation or action string an env produces."""
    return UnicodeText(max_length=max_length)


def check_action(action: object) -> str:
    """An action is a string; anything else is a caller's bug, not a move in the game (which an
    env answers with its own no-op), so it raises."""
    if not isinstance(action, str):
        raise TypeError(f"an action is a str, got {type(action).__name__}")
    return action


def resolve_task_id(task_id: object, known: Collection[str], listed: Sequence[str]) -> str:
    """`task_id` as one of the split's ids (an int is read as its decimal string); anything else
    raises the same ValueError in every env, naming valid ids."""
    if isinstance(task_id, int) and not isinstance(task_id, bool):
        task_id = str(task_id)
    if not (isinstance(task_id, str) and task_id in known):
        check_choice("task_id", task_id, listed)  # not one of them: raises
    return task_id


def check_choice(kind: str, value: T, choices: Iterable[T]) -> T:
    """Return `value` if it is one of `choices`, else raise a ValueError that lists them."""
    choices = list(choices)
    if value not in choices:
        shown = ", ".join(repr(c) for c in choices[:20]) + (" ..." if len(choices) > 20 else "")
        given = repr(value)
        given = given if len(given) <= 80 else f"{given[:77]}..."
        raise ValueError(f"unknown {kind} {given}; valid choices: {shown}")
    return value


def goal_progress(conditions: Sequence[dict]) -> float:
    """Fraction of goal conditions satisfied (`progress` in docs/envs.md)."""
    if not conditions:
        return 0.0
    return sum(bool(c["satisfied"]) for c in conditions) / len(conditions)


def shaped_reward(
    sparse_reward: float,
    progress_before: float,
    progress_after: float,
    reward_mode: str,
    shaping_gamma: float = 1.0,
) -> float:
    """The reward modes of docs/envs.md: `sparse`, or sparse plus potential-based shaping gamma * phi(s') - phi(s).

    Shaping of this form (Ng et al. 1999) leaves the optimal policies unchanged.
    """
    if reward_mode == "sparse":
        return float(sparse_reward)
    return float(sparse_reward) + shaping_gamma * progress_after - progress_before
