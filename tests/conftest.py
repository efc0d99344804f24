import gymnasium as gym
import pytest

import hiper_envs  # noqa: F401  (registers the ids)


@pytest.fixture(autouse=True)
def _no_user_alfworld_data(monkeypatch):
    """Tests run on bundled data even where a user has set ALFWORLD_DATA to the real dataset."""
    monkeypatch.delenv("ALFWORLD_DATA", raising=False)


@pytest.fixture
def make_env(env_id):
    """Factory for `gym.make(env_id, **kwargs)` that closes every env it made; a test folder's
    conftest names the env with an `env_id` fixture."""
    envs = []

    def _make(**kwargs):
        env = gym.make(env_id, **kwargs)
        envs.append(env)
        return env

    yield _make
    for env in envs:
        env.close()
