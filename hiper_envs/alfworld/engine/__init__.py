"""ALFWorld game engines. Each takes a game definition and exposes `reset()` and `step(command)`,
returning an `EngineState`; `engine="textworld"` is the reference (TextWorld's PDDL engine) and
`engine="native"` the same game in plain Python, transcript for transcript, over 100x faster."""

from hiper_envs.alfworld.engine.base import EngineState, Fact

ENGINES = ("native", "textworld")


def make_engine(name: str, game: dict):
    """Build the engine `name` for one game (a `game.tw-pddl` dict). Imports it lazily."""
    if name == "native":
        from hiper_envs.alfworld.engine.native import NativeEngine

        return NativeEngine(game)
    if name == "textworld":
        from hiper_envs.alfworld.engine.textworld_engine import TextWorldEngine

        return TextWorldEngine(game)
    raise ValueError(f"unknown engine {name!r}; valid choices: {', '.join(map(repr, ENGINES))}")


__all__ = ["ENGINES", "EngineState", "Fact", "make_engine"]
