"""The Ray backend on a local Ray (2 CPUs, no dashboard): the local backend's rows, kills survived, resume.

Ray starts once for the module (about 10 s here); the driver-kill test starts its own in subprocesses.
"""

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import FAKE, fake_run

from harness.errors import HarnessError
from harness.sweep import execute, load_sweep

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow

BIN = Path(sys.executable).with_name("hiper-bench")
HERE = Path(__file__).resolve().parent  # fakeenv.py
KEY = ("env_id", "agent", "seed", "episode", "task_id", "task_hash", "success", "score", "status", "transcript")


@pytest.fixture(scope="module")
def local_ray():
    """Ray's workers get the driver's script folder and working directory on sys.path, not tests/harness."""
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": str(HERE)}})
    yield
    ray.shutdown()


def stored(db: Path, columns: tuple[str, ...] = KEY) -> list[tuple]:
    if not db.exists():
        return []
    conn = sqlite3.connect(db)
    try:
        return sorted(conn.execute(f"SELECT {', '.join(columns)} FROM episodes"))
    except sqlite3.OperationalError:  # created but not yet initialised
        return []
    finally:
        conn.close()


def descends_from_us(pid: int) -> bool:
    while pid > 1:
        pid = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
        if pid == os.getpid():
            return True
    return False


def actor_pids() -> list[int]:
    """Processes of this test's live env actors (Ray titles them `ray::EnvActor...`)."""
    pids = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError):
            if (proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(b"ray::EnvActor")
                    and descends_from_us(int(proc.name))):
                pids.append(int(proc.name))
    return pids


def test_ray_sweep_stores_the_rows_of_the_local_sweep(tmp_path, local_ray):
    config = tmp_path / "sweep.yaml"
    config.write_text("envs: [{id: HiPER/WebShop-v0, split: test}]\n"
                      "agents: [{name: expert}, {name: random}]\nseeds: [0, 1]\nepisodes: 5\nworkers: 2\n")
    grid = load_sweep(config)
    local = execute(grid.runs(), tmp_path / "local.sqlite", workers=2, progress=False)
    on_ray = execute(grid.runs(), tmp_path / "ray.sqlite", workers=2, progress=False, backend="ray")
    assert local.ran == on_ray.ran == 20 and on_ray.errors == 0 and on_ray.succeeded == local.succeeded > 0
    assert stored(tmp_path / "ray.sqlite") == stored(tmp_path / "local.sqlite")


def test_local_backend_does_not_import_ray(tmp_path, subprocess_env):
    code = ("import sys; from harness.sweep import execute, make_agent_entry, make_env_entry, Run; "
            f"execute([Run(make_env_entry({FAKE!r}, 'test'), make_agent_entry('expert'), 0, 2)], "
            f"{str(tmp_path / 'r.sqlite')!r}, progress=False); assert 'ray' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], env=subprocess_env, check=True)


def test_actor_that_kills_itself_mid_episode_is_replaced_and_its_episode_retried(tmp_path, local_ray):
    marker = tmp_path / "crash.marker"  # the fake env SIGKILLs its own process at step 2 of one episode
    summary = execute([fake_run("expert", crash_once=str(marker))], tmp_path / "r.sqlite", workers=2,
                      progress=False, backend="ray")
    assert marker.exists() and summary.ran == 6 and summary.errors == 0 and summary.succeeded == 6
    rows = stored(tmp_path / "r.sqlite", ("episode", "status", "steps"))
    assert rows == [(episode, "ok", 6) for episode in range(6)]


def test_actor_killed_from_outside_mid_sweep_loses_nothing(tmp_path, local_ray):
    db = tmp_path / "r.sqlite"
    killed: list[int] = []

    def kill_one_actor_after_the_first_episode() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (stored(db) and actor_pids()):
            time.sleep(0.02)
        pids = actor_pids()
        if pids:
            os.kill(pids[0], signal.SIGKILL)  # the actor is stepping an episode: steps take 30 ms
            killed.append(pids[0])

    thread = threading.Thread(target=kill_one_actor_after_the_first_episode)
    thread.start()
    try:
        summary = execute([fake_run("expert", episodes=16, step_delay=0.03)], db, workers=2, progress=False,
                          backend="ray")
    finally:
        thread.join()
    assert killed, "no actor was found to kill"
    assert summary.ran == 16 and summary.errors == 0 and summary.succeeded == 16
    assert [row[:2] for row in stored(db, ("episode", "status"))] == [(e, "ok") for e in range(16)]


def test_resume_after_killing_the_driver(tmp_path, subprocess_env):
    config = tmp_path / "sweep.yaml"
    config.write_text(f"envs: [{{id: '{FAKE}', split: test, kwargs: {{step_delay: 0.02}}}}]\n"
                      "agents: [{name: random}]\nseeds: [0, 1]\nepisodes: 15\nworkers: 2\n")
    db = tmp_path / "r.sqlite"
    cmd = [str(BIN), "sweep", str(config), "--db", str(db), "--backend", "ray", "--no-progress"]
    proc = subprocess.Popen(cmd, env=subprocess_env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(stored(db)) < 4 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # the driver: the only writer of the store
    proc.wait()
    with contextlib.suppress(ProcessLookupError):  # the local Ray it started goes too
        os.killpg(proc.pid, signal.SIGKILL)
    before = stored(db)
    assert 4 <= len(before) < 30, "the driver was not killed mid-sweep"

    subprocess.run(cmd, env=subprocess_env, check=True, capture_output=True, timeout=300)
    final = stored(db)
    assert set(before) <= set(final)  # rows stored before the kill were never rewritten
    assert sorted((row[2], row[3]) for row in final) == [(s, e) for s in (0, 1) for e in range(15)]
    assert all(row[KEY.index("status")] == "ok" for row in final)


def test_training_rollouts_on_ray_actors(tmp_path, local_ray, monkeypatch):
    """`env_backend: ray` (`train --backend ray`): one PPO iteration whose env workers are Ray actors."""
    pytest.importorskip("torch")
    from harness import ray_backend
    from harness.training.config import config_from_dict
    from harness.training.trainer import Trainer

    spawned = []
    spawn = ray_backend.RayPool._spawn
    monkeypatch.setattr(ray_backend.RayPool, "_spawn", lambda pool: spawned.append(1) or spawn(pool))
    cfg = config_from_dict({
        "algorithm": "ppo", "env_id": "HiPER/KeyDoor-v0", "env_kwargs": {"rooms": [2]}, "max_steps": 4,
        "tiny_model": {"model_type": "gpt2", "n_embd": 16, "n_layer": 1, "n_head": 2},
        "tiny_tokenizer_episodes": 4, "iterations": 1, "num_envs": 4, "rollout_workers": 2, "torch_threads": 1,
        "max_new_tokens": 12, "minibatch_size": 16, "checkpoint_every": 1, "eval_every": 0,
        "env_backend": "ray", "out": str(tmp_path / "run"), "results_db": str(tmp_path / "r.sqlite")})
    last = Trainer(cfg, log=lambda _: None).train()
    assert len(spawned) == 2 and last is not None and last.is_dir()
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["rollout/failed_episodes"] == 0 and metrics[-1]["rollout/env_steps"] > 0


def test_more_workers_than_cluster_cpus_is_one_clear_error(tmp_path, local_ray):
    with pytest.raises(HarnessError, match="--workers 3 needs 3 CPUs"):
        execute([fake_run("expert", episodes=1)], tmp_path / "r.sqlite", workers=3, progress=False, backend="ray")


def test_unreachable_cluster_exits_2_in_seconds(tmp_path):
    result = subprocess.run([str(BIN), "run", "--env", "HiPER/WebShop-v0", "--agent", "expert", "--episodes", "1",
                             "--db", str(tmp_path / "r.sqlite"), "--backend", "ray", "--address", "127.0.0.1:1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "cannot reach a Ray cluster at 127.0.0.1:1" in result.stderr
