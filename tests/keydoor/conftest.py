import gymnasium as gym
import pytest

import hiper_envs  # noqa: F401  (registers the ids)


@pytest.fixture
def make_env():
    envs = []

    def _make(**kwargs):
        env = gym.make("HiPER/KeyDoor-v0", **kwargs)
        envs.append(env)
        return env

    yield _make
    for env in envs:
        env.close()
