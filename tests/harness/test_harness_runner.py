"""The worker pool: fixed task order, and recovery from workers that die, hang or raise."""

import json
import threading
import time

import pytest
from conftest import FAKE, fake_run

from agents import AGENTS
from agents.base import Agent
from harness.store import Store
from harness.sweep import Run, execute, make_agent_entry, make_env_entry, task_order


def rows(db):
    with Store(db, create=False) as store:
        return list(store.rows())


def test_task_order_is_fixed_by_seed_and_cycles():
    ids = [f"t{i}" for i in range(5)]
    assert task_order(ids, 3, None) == task_order(list(ids), 3, None)
    assert sorted(task_order(ids, 3, None)) == ids  # one pass covers every task once
    assert task_order(ids, 3, None) != task_order(ids, 4, None)
    assert task_order(ids, 3, 7)[5:] == task_order(ids, 3, None)[:2]


def test_expert_wins_every_task_and_two_workers_match_one(tmp_path):
    one = execute([fake_run("expert")], tmp_path / "a.sqlite", workers=1, progress=False)
    two = execute([fake_run("expert")], tmp_path / "b.sqlite", workers=2, progress=False)
    assert one.ran == two.ran == 6 and one.succeeded == 6 and one.errors == 0
    a = {(r["episode"], r["task_id"], r["transcript"]) for r in rows(tmp_path / "a.sqlite")}
    b = {(r["episode"], r["task_id"], r["transcript"]) for r in rows(tmp_path / "b.sqlite")}
    assert a == b  # same tasks, same transcripts, whatever the parallelism


def test_random_agent_is_reproducible(tmp_path):
    for name in ("a", "b"):
        execute([fake_run("random", episodes=8, seed=5)], tmp_path / f"{name}.sqlite", workers=2, progress=False)
    key = lambda r: (r["episode"], r["transcript"])  # noqa: E731
    assert sorted(map(key, rows(tmp_path / "a.sqlite"))) == sorted(map(key, rows(tmp_path / "b.sqlite")))


@pytest.mark.parametrize("fault", ["crash_once", "raise_once"])
def test_failed_worker_is_replaced_and_episode_retried(tmp_path, fault):
    marker = tmp_path / "fault.marker"
    summary = execute([fake_run("expert", **{fault: str(marker)})], tmp_path / "r.sqlite", workers=2, progress=False)
    assert marker.exists()  # the fault did happen, in the middle of an episode
    assert summary.ran == 6 and summary.errors == 0 and summary.succeeded == 6
    stored = rows(tmp_path / "r.sqlite")
    assert sorted(r["episode"] for r in stored) == list(range(6))
    assert all(r["status"] == "ok" and r["steps"] == 6 for r in stored)


def test_hung_worker_times_out_and_is_replaced(tmp_path):
    marker = tmp_path / "hang.marker"
    summary = execute([fake_run("expert", episodes=3, hang_once=str(marker))], tmp_path / "r.sqlite",
                      workers=1, step_timeout=1.5, progress=False)
    assert marker.exists() and summary.errors == 0 and summary.succeeded == 3


def test_episode_failing_twice_is_stored_as_error_then_retried_on_resume(tmp_path):
    run = fake_run("expert", episodes=1, crash_once=str(tmp_path / "m"))
    db = tmp_path / "r.sqlite"
    stop = threading.Event()

    def keep_deleting():  # the crash marker keeps vanishing, so every attempt crashes
        while not stop.is_set():
            (tmp_path / "m").unlink(missing_ok=True)
            time.sleep(0.01)

    thread = threading.Thread(target=keep_deleting)
    thread.start()
    try:
        summary = execute([run], db, workers=1, progress=False)
    finally:
        stop.set()
        thread.join()
    assert summary.errors == 1
    (row,) = rows(db)
    assert row["status"] == "error" and "died" in row["error"]
    json.loads(row["transcript"])  # the partial transcript is kept for diagnosis

    summary = execute([run], db, workers=1, progress=False)  # marker now stays: one crash, then success
    (row,) = rows(db)
    assert summary.ran == 1 and row["status"] == "ok" and row["success"] == 1


class WalkerAgent(Agent):
    """Plays the corridor from the observation alone: it needs no `info`, not even at reset."""

    def act(self, obs, info):
        return "forward"


def test_an_env_whose_reset_info_is_empty_still_plays(tmp_path, monkeypatch):
    monkeypatch.setitem(AGENTS, "walker", f"{__name__}:WalkerAgent")
    run = Run(make_env_entry(FAKE, "test", {"empty_reset_info": True}), make_agent_entry("walker"), 0, 2)
    summary = execute([run], tmp_path / "r.sqlite", workers=1, progress=False)
    assert summary.errors == 0
    stored = rows(tmp_path / "r.sqlite")
    # the first step's reply is a step (4 forwards reach the door, then nothing happens), not a reset
    assert [r["steps"] for r in stored] == [12, 12]
    assert all(r["truncated"] == 1 and r["terminated"] == 0 for r in stored)


def test_terminated_and_truncated_are_stored_as_the_env_gave_them(tmp_path):
    # the expert wins in 6 steps: with a limit of 6 the last allowed step terminates the episode
    run = Run(make_env_entry(FAKE, "test", max_steps=6), make_agent_entry("expert"), 0, 2)
    execute([run], tmp_path / "r.sqlite", workers=1, progress=False)
    assert [(r["success"], r["terminated"], r["truncated"]) for r in rows(tmp_path / "r.sqlite")] == [(1, 1, 1)] * 2
    run = Run(make_env_entry(FAKE, "test", max_steps=3), make_agent_entry("expert"), 0, 2)
    execute([run], tmp_path / "s.sqlite", workers=1, progress=False)
    assert [(r["success"], r["terminated"], r["truncated"]) for r in rows(tmp_path / "s.sqlite")] == [(0, 0, 1)] * 2
