"""What every ALFWorld engine returns after reset and step."""

from __future__ import annotations

from dataclasses import dataclass, field

# A ground PDDL fact as a tuple: (predicate, arg1, ...), arguments as the problem spells them
# (mangled THOR ids such as "Apple_bar__plus_01_dot_00_bar_...").
Fact = tuple[str, ...]


@dataclass(frozen=True)
class EngineState:
    feedback: str
    admissible_commands: list[str]
    won: bool
    facts: frozenset[Fact]
    action_valid: bool = True
    # Display name of each entity ("apple 1"), keyed by its PDDL name.
    names: dict[str, str] = field(default_factory=dict, repr=False)
    # The command each applicable ground action is spelled as: {(action, *args): command}.
    commands: dict[Fact, str] = field(default_factory=dict, repr=False)
