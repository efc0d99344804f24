"""The results store: kill -9 loses and duplicates nothing, foreign files are refused, exports work."""

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import FAKE, fake_run

from harness.errors import HarnessError
from harness.store import COLUMNS, Store
from harness.sweep import execute

BIN = Path(sys.executable).parent / "hiper-bench"


def stored(db: Path) -> list[tuple]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute("SELECT episode, status, started_at, transcript FROM episodes").fetchall()
        except sqlite3.OperationalError:  # the table is not created yet
            return []


@pytest.mark.slow
def test_sigkill_loses_no_episode_and_resume_duplicates_none(tmp_path, subprocess_env):
    db = tmp_path / "r.sqlite"
    cmd = [str(BIN), "run", "--env", FAKE, "--agent", "random", "--split", "test", "--episodes", "40",
           "--workers", "2", "--db", str(db), "--env-kwargs", '{"step_delay": 0.01}', "--no-progress"]
    before: list[tuple] = []
    for kill_after in (4, 15):  # kill twice, at different points, then let it finish
        proc = subprocess.Popen(cmd, env=subprocess_env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(stored(db)) < kill_after and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)  # the parent, which is the only writer
        proc.wait()
        with contextlib.suppress(ProcessLookupError):  # orphaned workers exit by themselves; make sure
            os.killpg(proc.pid, signal.SIGKILL)
        after = stored(db)
        assert set(before) <= set(after), "a committed episode was lost"
        assert 0 < len(after) < 40
        before = after
    subprocess.run(cmd, env=subprocess_env, check=True, capture_output=True)
    final = stored(db)
    episodes = [row[0] for row in final]
    assert sorted(episodes) == list(range(40))  # every episode once: none lost, none duplicated
    assert set(before) <= set(final)  # rows stored before the kills were never rewritten
    assert all(row[1] == "ok" for row in final)


def test_every_row_carries_version_env_split_and_task_hash(tmp_path):
    execute([fake_run("expert", episodes=2)], tmp_path / "r.sqlite", progress=False)
    with Store(tmp_path / "r.sqlite", create=False) as store:
        frame = store.frame()
    assert set(frame.columns) == set(COLUMNS) - {"transcript"}
    assert (frame["package_version"] != "").all() and (frame["env_id"] == FAKE).all()
    assert (frame["split"] == "test").all() and (frame["task_hash"].str.len() > 0).all()


def test_export_parquet_and_csv_round_trip(tmp_path):
    execute([fake_run("expert", episodes=3)], tmp_path / "r.sqlite", progress=False)
    with Store(tmp_path / "r.sqlite", create=False) as store:
        frame = store.frame(transcripts=True)
        pq = pd.read_parquet(store.export(tmp_path / "r.parquet"))
        csv = pd.read_csv(store.export(tmp_path / "r.csv"))
        with pytest.raises(HarnessError, match="parquet or .csv"):
            store.export(tmp_path / "r.xlsx")
    assert pq["transcript"].tolist() == frame["transcript"].tolist()
    assert csv["task_hash"].tolist() == frame["task_hash"].tolist()


def test_wal_mode_and_ok_rows_are_never_overwritten(tmp_path):
    execute([fake_run("expert", episodes=1)], tmp_path / "r.sqlite", progress=False)
    with Store(tmp_path / "r.sqlite") as store:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        row = next(store.rows())
        store.add({**row, "success": 0, "status": "ok"})
        assert next(store.rows())["success"] == 1


@pytest.mark.parametrize("content, message", [
    (b"definitely not a database, just text", "not an SQLite database"),
    (None, "another application"),
])
def test_corrupt_or_foreign_files_are_refused_untouched(tmp_path, content, message):
    path = tmp_path / "x.sqlite"
    if content is None:
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE users (name TEXT)")
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    with pytest.raises(HarnessError, match=message):
        Store(path)
    assert path.read_bytes() == before


def test_a_schema_1_store_is_read_as_is_and_migrated_when_written(tmp_path):
    db = tmp_path / "old.sqlite"
    execute([fake_run("expert", episodes=2)], db, workers=1, progress=False)
    conn = sqlite3.connect(db)  # make it what an earlier version wrote
    for name in ("terminated", "truncated"):
        conn.execute(f'ALTER TABLE episodes DROP COLUMN "{name}"')
    conn.execute("DROP TABLE runs")
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with Store(db, create=False) as store:  # read-only: nothing written
        frame = store.frame()
    assert len(frame) == 2 and frame["terminated"].isna().all()
    assert db.read_bytes() == before
    execute([fake_run("expert", episodes=3)], db, workers=1, progress=False)  # resumes: one more episode
    with Store(db, create=False) as store:
        frame = store.frame()
    assert frame["terminated"].isna().tolist() == [True, True, False] and frame["terminated"].iloc[2] == 1
