"""The reference engine: TextWorld's PDDL env with alfworld's name demangling.

This is exactly the stack the original ALFWorld text env runs (`PddlEnv` wrapped by
`AlfredDemangler(shuffle=False)`), so feedback and admissible commands are the original's.
Not thread-safe (TextWorld's grammar parser has shared state): use one env per process.
"""

from __future__ import annotations

import textworld
from alfworld.agents.environment.alfred_tw_env import AlfredDemangler
from textworld.envs.pddl import PddlEnv

from hiper_envs.alfworld.engine.base import EngineState, Fact


class TextWorldEngine:
    def __init__(self, game: dict) -> None:
        infos = textworld.EnvInfos(admissible_commands=True, won=True)
        self._env = AlfredDemangler(PddlEnv(infos), shuffle=False)
        self._env.load(game)
        self._names: dict[str, str] = {}

    def reset(self) -> EngineState:
        state = self._env.reset()
        self._names = {key: info.name for key, info in state["_entity_infos"].items()}
        return self._state(state, action_valid=True)

    def step(self, command: str) -> EngineState:
        state, _, _ = self._env.step(command)
        return self._state(state, action_valid=state.get("_last_action") is not None)

    def replan(self) -> list[str]:
        """Fast Downward's plan from the current state, as commands (about 2 s: a last resort)."""
        pddl_state = self._env.unwrapped._pddl_state
        return pddl_state.replan(self._env.unwrapped._entity_infos)

    def _state(self, state, action_valid: bool) -> EngineState:
        facts = frozenset(
            (prop.name, *(var.name for var in prop.arguments)) for prop in state["_facts"]
        )
        commands: dict[Fact, str] = {}
        for action, command in zip(state["_valid_actions"], state["_valid_commands"], strict=True):
            key = (action.name, *(var.name for var in action.mapping.values()))
            commands.setdefault(key, command)
        return EngineState(
            feedback=state.feedback,
            admissible_commands=list(state["admissible_commands"]),
            won=bool(state["won"]),
            facts=facts,
            action_valid=action_valid,
            names=self._names,
            commands=commands,
        )
