import pytest


@pytest.fixture
def env_id() -> str:
    return "HiPER/ALFWorld-v0"
