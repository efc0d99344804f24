"""Shared fixtures: the fake env's runs, and the environment a CLI subprocess needs to import it."""

import os
from pathlib import Path

import pytest

from harness.sweep import Run, make_agent_entry, make_env_entry

FAKE = "fakeenv:Fake/Corridor-v0"
HERE = Path(__file__).resolve().parent


def fake_run(agent: str = "expert", episodes: int | None = None, seed: int = 0, **env_kwargs) -> Run:
    return Run(make_env_entry(FAKE, "test", env_kwargs), make_agent_entry(agent), seed, episodes)


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """os.environ plus PYTHONPATH for `fakeenv`, so `hiper-bench` in a subprocess finds the fake env."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
