import pytest


@pytest.fixture(autouse=True)
def _no_user_alfworld_data(monkeypatch):
    """Tests run on bundled data even where a user has set ALFWORLD_DATA to the real dataset."""
    monkeypatch.delenv("ALFWORLD_DATA", raising=False)
