"""The package layers point one way (hiper_envs <- agents <- harness <- leaderboards <- the CLI),
checked by import-linter with the contracts in pyproject.toml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("hiper_envs", "agents", "harness", "leaderboards")
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), str(root / "pyproject.toml"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_project_keeps_its_layers() -> None:
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(("module", "upward", "contract"), [
    ("harness/training/rollout.py", "from harness.cli import app", "nothing imports it"),
    ("agents/llm.py", "from harness.training.trainer import Trainer", "hiper_envs <- agents"),
    ("hiper_envs/keydoor/env.py", "import agents.react", "hiper_envs <- agents"),
    ("harness/report.py", "from leaderboards import build", "hiper_envs <- agents"),
])
def test_an_upward_import_breaks_a_contract(tmp_path: Path, module: str, upward: str, contract: str) -> None:
    """A copy of the packages with one import against the layers (inside a function, where only a
    static graph sees it) fails the check."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("data", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    path = tmp_path / module
    path.write_text(path.read_text() + f"\n\ndef _upward():\n    {upward}\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and contract in result.stdout
