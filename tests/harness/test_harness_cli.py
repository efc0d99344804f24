"""The CLI: bad input is one line, exit 2 and nothing written; verify catches tampered rows."""

import sqlite3

import pytest
from conftest import FAKE
from typer.testing import CliRunner

from harness.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_every_command_has_help():
    for command in ("envs", "run", "sweep", "report", "leaderboard", "verify", "bench", "export", "serve"):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "Usage" in result.output


@pytest.mark.parametrize("yaml_text, message", [
    ("envs: [{id: HiPER/WebShop-v0, split: test}]\nagents: [{name: expert}]\nepisodez: 3\n", "unknown key 'episodez'"),
    ("envs: [{id: HiPER/NoSuch-v0, split: test}]\nagents: [{name: expert}]\n", "unknown env id"),
    ("envs: [{id: HiPER/WebShop-v0, split: test}]\nagents: [{name: expert}]\nepisodes: -3\n", "positive integer"),
    ("envs: [{id: HiPER/WebShop-v0, split: test}]\nagents: [{name: wizard}]\n", "unknown agent"),
    ("envs: [{id: HiPER/WebShop-v0, split: nope}]\nagents: [{name: expert}]\n", "no split 'nope'"),
    ("envs: !!python/object/apply:os.system ['touch pwned']\nagents: []\n", "invalid YAML"),
    ("envs: [unclosed\n", "invalid YAML"),
])
def test_bad_sweep_config_is_one_line_exit_2_nothing_written(tmp_path, monkeypatch, yaml_text, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text(yaml_text)
    result = invoke("sweep", "c.yaml", "--db", "out/r.sqlite")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]  # no db, no folder, no pwned


@pytest.mark.parametrize("args, message", [
    (["--env", "HiPER/Missing-v0", "--agent", "random"], "unknown env id"),
    (["--env", FAKE, "--split", "test", "--agent", "random", "--episodes", "-2"], "positive integer"),
    (["--env", FAKE, "--split", "test", "--agent", "random", "--agent-kwargs", "{oops"], "not valid JSON"),
    (["--env", FAKE, "--split", "test", "--agent", "random", "--agent-kwargs", '{"temperature": 1}'], "unexpected keyword"),
    (["--env", FAKE, "--split", "test", "--agent", "expert", "--env-kwargs", '{"expert": false}'], "needs env keyword"),
    (["--env", FAKE, "--split", "test", "--agent", "random", "--env-kwargs", '{"nosuch": 1}'], "unexpected keyword"),
])
def test_bad_run_arguments(tmp_path, args, message):
    db = tmp_path / "r.sqlite"
    result = invoke("run", *args, "--db", str(db), "--no-progress")
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not db.exists()


@pytest.mark.parametrize("command", ["report", "verify", "leaderboard", "export"])
def test_corrupt_or_foreign_database(tmp_path, command):
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"\x00garbage" * 100)
    for db, message in ((foreign, "another application"), (corrupt, "not an SQLite database"),
                        (tmp_path / "missing.sqlite", "no results database")):
        result = invoke(command, "--db", str(db))
        assert result.exit_code == 2 and message in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.sqlite", "foreign.sqlite"]


def test_run_resumes_verify_passes_then_catches_tampering(tmp_path):
    db = tmp_path / "r.sqlite"
    args = ["run", "--env", FAKE, "--split", "test", "--agent", "random", "--episodes", "6", "--db", str(db),
            "--workers", "2", "--no-progress"]
    assert invoke(*args).exit_code == 0
    again = invoke(*args)
    assert again.exit_code == 0 and "0 episodes played" in again.output and "6 already stored" in again.output

    honest = invoke("verify", "--db", str(db), "--no-progress", "--allow-module", "fakeenv")
    assert honest.exit_code == 0 and "6 episodes checked, 0 mismatched" in honest.output
    # verify never imports a module a row names unless told to
    refused = invoke("verify", "--db", str(db), "--no-progress")
    assert refused.exit_code == 1 and "allow it to replay" in refused.output

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE episodes SET success = 1, score = 1.0 WHERE episode = 2")
        conn.execute("UPDATE episodes SET task_hash = 'forged' WHERE episode = 4")
    tampered = invoke("verify", "--db", str(db), "--no-progress", "--allow-module", "fakeenv")
    assert tampered.exit_code == 1
    assert "episode 2" in tampered.output and "success stored 1, replayed False" in tampered.output
    assert "episode 4" in tampered.output and "task_hash stored 'forged'" in tampered.output
    assert "2 mismatched" in tampered.output


TAMPERING = [
    ("UPDATE episodes SET progress = 0.75 WHERE episode = 1", "progress stored 0.75"),
    ('UPDATE episodes SET "return" = 9.0 WHERE episode = 1', "return stored 9.0"),
    ("UPDATE episodes SET invalid_actions = invalid_actions + 1 WHERE episode = 1", "invalid_actions stored"),
    ("UPDATE episodes SET switches = 3 WHERE episode = 1", "switches stored 3"),
    ("UPDATE episodes SET agent = 'a better agent' WHERE episode = 1", "run_id is not the hash"),
    ("UPDATE episodes SET agent_config = '{\"name\": \"expert\", \"kwargs\": {}}' WHERE episode = 1",
     "run_id is not the hash"),
    ("UPDATE episodes SET env_seed = env_seed + 1 WHERE episode = 1", "env_seed"),
    ("UPDATE episodes SET success = 2 WHERE episode = 1", "success 2 is neither 0 nor 1"),
    ("UPDATE episodes SET score = 'lots' WHERE episode = 1", "score 'lots' is not a finite number"),
    ("UPDATE episodes SET transcript = '[{' WHERE episode = 1", "transcript is not JSON"),
    ("UPDATE episodes SET transcript = '[{\"obs\": \"x\"}]' WHERE episode = 1", "no text action"),
    ("UPDATE episodes SET transcript = replace(transcript, 'You are at', 'You were at') WHERE episode = 1",
     "transcript step 1 differs in obs"),
    ("UPDATE episodes SET transcript = replace(transcript, '\"reward\": 0.0', '\"reward\": 0.5') WHERE episode = 1",
     "differs in reward"),
    ("UPDATE episodes SET env_config = replace(env_config, 'fakeenv:', 'os:') WHERE episode = 1",
     "imports module 'os'"),
    ("DELETE FROM episodes WHERE episode = 1", "5 rows stored of 6 planned"),
]


@pytest.mark.parametrize(("sql", "message"), TAMPERING, ids=[m for _, m in TAMPERING])
def test_verify_catches_every_kind_of_tampering_without_a_traceback(tmp_path, sql, message):
    db = tmp_path / "r.sqlite"
    assert invoke("run", "--env", FAKE, "--split", "test", "--agent", "random", "--episodes", "6", "--db", str(db),
                  "--no-progress").exit_code == 0
    with sqlite3.connect(db) as conn:
        conn.execute(sql)
    result = invoke("verify", "--db", str(db), "--no-progress", "--allow-module", "fakeenv")
    assert result.exit_code == 1  # `invoke` lets any exception through: a traceback fails here
    mismatches = [line for line in result.output.splitlines() if line.startswith("MISMATCH")]
    assert mismatches and all(message in line for line in mismatches[:1]), result.output


def test_sweep_report_leaderboard_export(tmp_path):
    config = tmp_path / "s.yaml"
    config.write_text(f"envs: [{{id: '{FAKE}', split: test}}]\nagents: [{{name: expert}}, {{name: random, label: rnd}}]\n"
                      "seeds: [0, 1]\nepisodes: 3\nworkers: 2\n")
    db = tmp_path / "r.sqlite"
    result = invoke("sweep", str(config), "--db", str(db), "--no-progress")
    assert result.exit_code == 0 and "1 envs x 2 agents x 2 seeds = 4 runs" in result.output
    assert "12 episodes played" in result.output
    assert invoke("report", "--db", str(db), "--out", str(tmp_path / "rep")).exit_code == 0
    assert (tmp_path / "rep" / "report.html").exists()
    assert invoke("leaderboard", "--report", str(tmp_path / "rep" / "report.json"), "--out",
                  str(tmp_path / "lb")).exit_code == 0
    assert "rnd" in (tmp_path / "lb" / "leaderboard.md").read_text()
    assert invoke("export", "--db", str(db), "--out", str(tmp_path / "r.csv")).exit_code == 0
    assert len((tmp_path / "r.csv").read_text().splitlines()) > 12
    assert invoke("sweep", str(config), "--db", str(db), "--backend", "nope").exit_code == 2
    assert invoke("sweep", str(config), "--db", str(db), "--address", "auto").exit_code == 2  # needs ray


def test_envs_lists_every_registered_id(monkeypatch):
    import hiper_envs
    from harness import envspec

    monkeypatch.setattr(envspec, "count_tasks", lambda env_id, split: 7 if split else "unavailable (x)")
    result = invoke("envs")
    assert result.exit_code == 0
    assert all(env_id in result.output for env_id in hiper_envs.ENV_IDS)
    assert "valid_unseen" in result.output and "7" in result.output


@pytest.mark.parametrize("where", ["/proc/hiper-bench/{}", "{tmp}/a-file/{}"])
def test_paths_that_cannot_be_written_are_one_line(tmp_path, where):
    (tmp_path / "a-file").write_text("not a folder")
    db = tmp_path / "r.sqlite"
    assert invoke("run", "--env", FAKE, "--split", "test", "--agent", "random", "--episodes", "2", "--db", str(db),
                  "--no-progress").exit_code == 0
    target = where.replace("{tmp}", str(tmp_path))
    for args in (["run", "--env", FAKE, "--split", "test", "--agent", "random", "--episodes", "2", "--no-progress",
                  "--db", target.format("r.sqlite")],
                 ["report", "--db", str(db), "--out", target.format("report")],
                 ["export", "--db", str(db), "--out", target.format("r.csv")]):
        result = invoke(*args)
        assert result.exit_code == 2, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:")
        assert "hiper-bench" in lines[0] or "a-file" in lines[0]  # names the path


def test_read_only_commands_never_write_and_a_damaged_store_is_one_line(tmp_path):
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    for command in ("report", "verify", "export"):
        extra = ["--out", str(tmp_path / "o.csv")] if command != "verify" else []
        result = invoke(command, "--db", str(empty), *extra)
        assert result.exit_code == 2 and "is empty" in result.stderr
    assert empty.stat().st_size == 0  # nothing written into it
    db = tmp_path / "big.sqlite"
    assert invoke("run", "--env", FAKE, "--split", "test", "--agent", "random", "--episodes", "40", "--db", str(db),
                  "--no-progress", "--seed", "3").exit_code == 0
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = db.stat().st_size
    with db.open("r+b") as f:  # the header and schema stay; the pages with the rows are garbage
        f.seek(2 * 4096)
        f.write(b"\xff" * (size - 2 * 4096))
    for command in ("report", "verify", "export"):
        extra = ["--out", str(tmp_path / "x.csv")] if command != "verify" else []
        result = invoke(command, "--db", str(db), *extra)
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1 and "damaged" in lines[0] and "big.sqlite" in lines[0], command
