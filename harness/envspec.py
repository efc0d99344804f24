"""How the harness names and builds an env: id, constructor keywords, wrapper presets, step budget."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

import hiper_envs
from harness.errors import HarnessError
from hiper_envs.wrappers import WRAPPERS


@dataclass(frozen=True)
class EnvSpec:
    """Everything needed to rebuild an env identically in a worker or in `verify`."""

    env_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    wrappers: tuple[str, ...] = ()
    max_steps: int | None = None

    @property
    def key(self) -> str:
        """Canonical JSON of the spec: equal specs build equal envs."""
        return json.dumps(self.to_json(), sort_keys=True)

    def to_json(self) -> dict[str, Any]:
        return {"env_id": self.env_id, "kwargs": self.kwargs, "wrappers": list(self.wrappers),
                "max_steps": self.max_steps}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EnvSpec:
        return cls(data["env_id"], dict(data["kwargs"]), tuple(data["wrappers"]), data["max_steps"])

    def make(self) -> gym.Env:
        extra = {} if self.max_steps is None else {"max_episode_steps": self.max_steps}
        env = gym.make(self.env_id, **extra, **self.kwargs)
        for name in self.wrappers:
            env = WRAPPERS[name](env)
        return env


def check_env_id(env_id: str) -> None:
    """Raise HarnessError unless `env_id` is registered (a `module:` prefix is imported first)."""
    gym.register_envs(hiper_envs)
    module, _, name = env_id.rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise HarnessError(f"env {env_id!r}: cannot import module {module!r} ({err})") from err
    if name not in gym.registry:
        known = ", ".join(hiper_envs.ENV_IDS)
        raise HarnessError(f"unknown env id {env_id!r}; HiPER ids: {known}")


# docs/envs.md: each env's splits, the evaluation split (the default of `run`) first.
SPLITS = {
    "HiPER/ALFWorld-v0": ("valid_unseen", "valid_seen", "train"),
    "HiPER/WebShop-v0": ("test", "eval", "train"),
    "HiPER/WebShop-Browser-v0": ("test", "eval", "train"),
    "HiPER/KeyDoor-v0": ("valid_unseen", "valid_seen", "train"),
}


def default_split(env_id: str) -> str:
    """The evaluation split of a HiPER env; other envs must be given one."""
    splits = SPLITS.get(env_id.rsplit(":", 1)[-1])
    if splits is None:
        raise HarnessError(f"env {env_id!r} has no default split: pass --split")
    return splits[0]


def check_split(env_id: str, split: str) -> None:
    splits = SPLITS.get(env_id.rsplit(":", 1)[-1])
    if splits is not None and split not in splits:
        raise HarnessError(f"{env_id} has no split {split!r}; splits: {', '.join(splits)}")


def count_tasks(env_id: str, split: str | None) -> int | str:
    """How many tasks the split (None: the env's default) has, or why the env cannot be built here."""
    env = None
    try:
        env = EnvSpec(env_id, {} if split is None else {"split": split}).make()
        return len(env.unwrapped.task_ids)
    except Exception as err:  # shown to the user as the env's status; `envs` must list every id
        return f"unavailable ({type(err).__name__}: {err})"
    finally:
        if env is not None:
            env.close()
