"""The asynchronous engine: concurrency changes how fast episodes run, never what they are; an LLM
server sees as many requests in flight as episodes; a crashed host costs a retry only to the
episode that crashed it."""

import json
import sys
from pathlib import Path

import httpx
import pytest
from conftest import FAKE, fake_run

from harness.store import Store
from harness.sweep import Run, execute, make_agent_entry, make_env_entry

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
from llm_throughput import start_mock, stop_mock  # noqa: E402

FIELDS = ("episode", "task_id", "env_seed", "status", "success", "steps", "terminated", "truncated", "score",
          "transcript")


def stored(db):
    with Store(db, create=False) as store:
        return sorted(tuple(row[f] for f in FIELDS) for row in store.rows())


@pytest.fixture()
def mock_server():
    servers = []

    def start(median, sigma):
        process, url = start_mock(median, sigma, seed=len(servers))
        servers.append(process)
        return url

    yield start
    for process in servers:
        stop_mock(process)


def react_over(url: str, episodes: int, max_steps: int) -> Run:
    kwargs = {"backend": "openai", "backend_kwargs": {"base_url": url, "model": "mock", "max_retries": 1}}
    return Run(make_env_entry(FAKE, "test", max_steps=max_steps), make_agent_entry("react", kwargs), 3, episodes)


def test_expert_rows_are_the_same_at_any_concurrency(tmp_path):
    for c in (1, 64):
        execute([fake_run("expert", episodes=64, seed=2)], tmp_path / f"c{c}.sqlite", workers=2, concurrency=c,
                progress=False)
    one, many = stored(tmp_path / "c1.sqlite"), stored(tmp_path / "c64.sqlite")
    assert len(one) == 64 and one == many


def test_llm_transcripts_are_the_same_at_any_concurrency(tmp_path, mock_server):
    # the mock's reply is a function of the prompt; its latency is random, so replies come back
    # in a different order every run, and at concurrency 64 episodes interleave differently
    url = mock_server(0.005, 1.0)
    for c in (1, 64):
        summary = execute([react_over(url, 64, 5)], tmp_path / f"c{c}.sqlite", workers=2, concurrency=c,
                          progress=False)
        assert summary.errors == 0
    one, many = stored(tmp_path / "c1.sqlite"), stored(tmp_path / "c64.sqlite")
    actions = {step["action"] for row in one for step in json.loads(row[-1])}
    assert len(actions) > 2  # the mock does choose among the listed actions
    assert len(one) == 64 and one == many


def test_an_llm_server_sees_every_episode_in_flight(tmp_path, mock_server):
    url = mock_server(0.3, 0.3)
    summary = execute([react_over(url, 128, 3)], tmp_path / "r.sqlite", concurrency=64, progress=False)
    assert summary.errors == 0
    stats = httpx.get(url.removesuffix("/v1") + "/stats").json()
    assert len(stats["intervals"]) == 128 * 3
    assert stats["peak"] >= 0.9 * 64


def test_a_crashing_episode_uses_its_retries_but_not_those_of_episodes_sharing_its_host(tmp_path):
    # one host, every episode in flight on it: each crash of test-2 kills the others' envs too
    run = fake_run("expert", crash_task="test-2")
    summary = execute([run], tmp_path / "r.sqlite", workers=1, concurrency=6, progress=False)
    assert summary.ran == 6 and summary.errors == 1
    rows = stored(tmp_path / "r.sqlite")
    assert [(r[1], r[3]) for r in rows if r[3] != "ok"] == [("test-2", "error")]
    assert all(r[4] == 1 for r in rows if r[3] == "ok")
