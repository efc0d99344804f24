"""Pieces every HiPER env shares: the text spaces, argument checks and the reward modes (SPEC 2)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from gymnasium import spaces

T = TypeVar("T")

REWARD_MODES = ("sparse", "progress")

# Observations are page or game text: printable characters of the Basic Multilingual Plane plus
# line breaks and tabs. Gymnasium's default Text charset is alphanumeric only.
TEXT_CHARSET = frozenset(
    [chr(i) for i in range(0x20, 0xD800) if chr(i).isprintable()] + ["\n", "\t", "\r"]
)


def text_space(max_length: int = 100_000) -> spaces.Text:
    """A Text space wide enough for any observation or action string an env produces."""
    return spaces.Text(max_length=max_length, min_length=0, charset=TEXT_CHARSET)


def check_choice(kind: str, value: T, choices: Iterable[T]) -> T:
    """Return `value` if it is one of `choices`, else raise a ValueError that lists them."""
    choices = list(choices)
    if value not in choices:
        shown = ", ".join(repr(c) for c in choices[:20]) + (" ..." if len(choices) > 20 else "")
        raise ValueError(f"unknown {kind} {value!r}; valid choices: {shown}")
    return value


def goal_progress(conditions: Sequence[dict]) -> float:
    """Fraction of goal conditions satisfied (SPEC 2.1 `progress`)."""
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
    """SPEC 2.2: `sparse`, or sparse plus potential-based shaping gamma * phi(s') - phi(s).

    Shaping of this form (Ng et al. 1999) leaves the optimal policies unchanged.
    """
    if reward_mode == "sparse":
        return float(sparse_reward)
    return float(sparse_reward) + shaping_gamma * progress_after - progress_before
