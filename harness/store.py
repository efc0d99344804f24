"""The results store (docs/harness.md): one SQLite row per finished episode, written by the parent only.

WAL mode and one transaction per episode mean a `kill -9` at any moment leaves every committed
episode intact; the UNIQUE key (run_id, episode) means a resumed run can never store one twice.
A failed episode is stored with status "error" and is retried (and replaced) on the next resume.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import HarnessError

APP = "hiper-bench"
SCHEMA_VERSION = 2  # 2 adds terminated and truncated; a schema 1 store is migrated on opening

COLUMNS: dict[str, str] = {
    "run_id": "TEXT NOT NULL",
    "episode": "INTEGER NOT NULL",
    "status": "TEXT NOT NULL",  # ok | error
    "error": "TEXT",
    "env_id": "TEXT NOT NULL",
    "split": "TEXT NOT NULL",
    "env_config": "TEXT NOT NULL",  # JSON of the EnvSpec: rebuilds the env for verify
    "task_id": "TEXT NOT NULL",
    "task_hash": "TEXT NOT NULL",
    "task_type": "TEXT NOT NULL",
    "agent": "TEXT NOT NULL",  # the label shown in reports
    "agent_config": "TEXT NOT NULL",  # JSON: {"name": ..., "kwargs": {...}}
    "seed": "INTEGER NOT NULL",
    "env_seed": "INTEGER NOT NULL",
    "success": "INTEGER NOT NULL",
    "score": "REAL NOT NULL",
    "progress": "REAL NOT NULL",
    "steps": "INTEGER NOT NULL",
    "return": "REAL NOT NULL",
    "invalid_actions": "INTEGER NOT NULL",
    "switches": "INTEGER NOT NULL",
    "aligned_switches": "INTEGER NOT NULL",
    "subgoals_total": "INTEGER NOT NULL",
    "subgoals_done": "INTEGER NOT NULL",
    "terminated": "INTEGER",  # the env's flags on the last step (NULL in rows of schema 1 stores)
    "truncated": "INTEGER",
    "package_version": "TEXT NOT NULL",
    "started_at": "TEXT NOT NULL",
    "wall_s": "REAL NOT NULL",
    "transcript": "TEXT NOT NULL",  # JSON list of {action, obs, reward, ...}
}


RUNS_TABLE = "CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, planned INTEGER NOT NULL)"


class Store:
    """An open results database. `create=False` refuses to make a new file (read-only commands)."""

    def __init__(self, path: str | Path, create: bool = True):
        self.path = Path(path)
        self.legacy = False  # a schema 1 store opened read-only: no terminated/truncated columns
        if not self.path.exists() and not create:
            raise HarnessError(f"no results database at {self.path}")
        if self.path.is_dir():
            raise HarnessError(f"{self.path} is a directory, not a results database")
        if self.path.exists():
            _check_header(self.path)
            if not create and self.path.stat().st_size == 0:
                raise HarnessError(f"{self.path} is empty: no results database yet")  # and stays so
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except (OSError, sqlite3.Error) as err:
            reason = err.strerror if isinstance(err, OSError) else str(err)
            raise HarnessError(f"cannot open the results database {self.path}: {reason}") from None
        try:
            self._init(writable=create)
        except sqlite3.DatabaseError as err:
            self.conn.close()
            raise HarnessError(f"{self.path} is not a usable SQLite database ({err})") from err

    def _init(self, writable: bool) -> None:
        tables = {row[0] for row in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "meta" not in tables:
            raise HarnessError(f"{self.path} is an SQLite file of another application (tables: "
                               f"{', '.join(sorted(tables))})")
        if "meta" in tables:
            meta = dict(self.conn.execute("SELECT key, value FROM meta"))
            if meta.get("app") != APP:
                raise HarnessError(f"{self.path} is an SQLite file of another application")
            if meta.get("schema") == "1":
                self.legacy = not writable  # read-only commands never write: they read what is there
                if writable:
                    self._migrate_from_1()
            elif meta.get("schema") != str(SCHEMA_VERSION):
                raise HarnessError(f"{self.path} has store schema {meta.get('schema')}, this version reads "
                                   f"{SCHEMA_VERSION}")
        self.conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed episode survives a power cut too, not only a killed process.
        self.conn.execute("PRAGMA synchronous=FULL")
        if not tables:
            cols = ", ".join(f'"{name}" {kind}' for name, kind in COLUMNS.items())
            with self._transaction():
                self.conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                self.conn.executemany("INSERT INTO meta VALUES (?, ?)",
                                      [("app", APP), ("schema", str(SCHEMA_VERSION))])
                self.conn.execute(f"CREATE TABLE episodes ({cols}, PRIMARY KEY (run_id, episode))")
                self.conn.execute(RUNS_TABLE)

    def _migrate_from_1(self) -> None:
        """Schema 1 had no terminated/truncated columns and no plans: add them, empty for old rows."""
        with self._transaction():
            for name in ("terminated", "truncated"):
                self.conn.execute(f'ALTER TABLE episodes ADD COLUMN "{name}" {COLUMNS[name]}')
            self.conn.execute(RUNS_TABLE)
            self.conn.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION),))

    def plan(self, run_id: str, episodes: int) -> None:
        """Record that run `run_id` plays `episodes` episodes (a longer rerun raises it): `verify`
        counts its rows against this, so a deleted row shows."""
        with self._transaction():
            self.conn.execute("INSERT INTO runs VALUES (?, ?) ON CONFLICT (run_id) "
                              "DO UPDATE SET planned = MAX(planned, excluded.planned)", (run_id, int(episodes)))

    def plans(self) -> dict[str, int]:
        """Planned episodes per run (runs of a schema 1 store have none)."""
        if self.legacy:
            return {}
        return dict(self.conn.execute("SELECT run_id, planned FROM runs"))

    def _transaction(self) -> _Commit:
        self.conn.execute("BEGIN IMMEDIATE")
        return _Commit(self.conn)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def done(self, run_id: str) -> set[int]:
        """Episodes of `run_id` stored successfully: a resumed run skips them."""
        rows = self.conn.execute("SELECT episode FROM episodes WHERE run_id = ? AND status = 'ok'", (run_id,))
        return {row[0] for row in rows}

    def add(self, row: dict[str, Any]) -> None:
        """Store one episode in its own transaction. An earlier error row of it is replaced; an ok
        row is never overwritten."""
        missing = set(COLUMNS) - set(row)
        if missing:
            raise ValueError(f"episode row lacks {', '.join(sorted(missing))}")
        names = ", ".join(f'"{c}"' for c in COLUMNS)
        marks = ", ".join("?" for _ in COLUMNS)
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c in COLUMNS)
        with self._transaction():
            self.conn.execute(
                f"INSERT INTO episodes ({names}) VALUES ({marks}) ON CONFLICT (run_id, episode) "
                f"DO UPDATE SET {updates} WHERE episodes.status = 'error'",
                [row[c] for c in COLUMNS],
            )

    def rows(self, where: str = "1", params: tuple = ()) -> Iterator[dict[str, Any]]:
        cursor = self.conn.execute(f"SELECT * FROM episodes WHERE {where} ORDER BY rowid", params)
        names = [d[0] for d in cursor.description]
        for values in cursor:
            yield dict(zip(names, values, strict=True))

    def frame(self, transcripts: bool = False) -> pd.DataFrame:
        """Every row as a DataFrame; JSON columns stay strings, transcripts only when asked for."""
        cols = [c for c in COLUMNS if (transcripts or c != "transcript")
                and not (self.legacy and c in ("terminated", "truncated"))]
        names = ", ".join(f'"{c}"' for c in cols)
        try:
            frame = pd.read_sql_query(f"SELECT {names} FROM episodes ORDER BY rowid", self.conn)
        except pd.errors.DatabaseError as err:  # damaged pages past the header show up only when read
            raise HarnessError(f"{self.path} is damaged or unreadable ({str(err).rsplit(': ', 1)[-1]})") from None
        if self.legacy:
            frame = frame.assign(terminated=None, truncated=None)
        return frame.astype({"success": bool})

    def export(self, out: str | Path) -> Path:
        """Write every row (with transcripts) to `.parquet` or `.csv`, by the file's suffix."""
        out = Path(out)
        frame = self.frame(transcripts=True)
        if out.suffix == ".parquet":
            frame.to_parquet(out, index=False)
        elif out.suffix == ".csv":
            frame.to_csv(out, index=False)
        else:
            raise HarnessError(f"cannot export to {out.name}: use a .parquet or .csv file name")
        return out


class _Commit:
    """Commit on success, roll back on error: one episode is all or nothing."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _check_header(path: Path) -> None:
    """Reject a non-SQLite file before sqlite3 touches it (it would only fail later, less clearly)."""
    with path.open("rb") as f:
        head = f.read(16)
    if head and head != b"SQLite format 3\x00":
        raise HarnessError(f"{path} is not an SQLite database")


def dumps(value: Any) -> str:
    """Canonical JSON for config and transcript columns (numpy scalars become plain numbers)."""
    return json.dumps(value, sort_keys=True, default=_plain)


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} as JSON")
