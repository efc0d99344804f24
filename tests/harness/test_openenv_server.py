"""`hiper-bench serve-env`: OpenEnv's own client plays our envs over loopback and sees exactly what
a caller in process sees, errors included; the server bounds sessions and what it reads."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import httpx
import pytest
from openenv.core import GenericEnvClient
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import hiper_envs

BIN = Path(sys.executable).parent / "hiper-bench"
SPLIT = {"HiPER/ALFWorld-v0": "valid_seen", "HiPER/WebShop-v0": "test", "HiPER/KeyDoor-v0": "valid_seen"}


@contextlib.contextmanager
def serving(env_id: str, *args: str) -> Iterator[str]:
    """`hiper-bench serve-env` on a free port; yields its base URL."""
    proc = subprocess.Popen([str(BIN), "serve-env", env_id, "--split", SPLIT[env_id], "--env-kwargs",
                             '{"expert": true}', "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving "), (line, proc.stderr.read() if proc.poll() is not None else "")
        yield line.split(" on ", 1)[1].split()[0]
    finally:
        proc.terminate()
        proc.wait(10)


def json_round_trip(value: object) -> object:
    return json.loads(json.dumps(value))


def in_process_episode(env_id: str, task_id: str) -> list[tuple]:
    env = gym.make(env_id, split=SPLIT[env_id], expert=True)
    obs, info = env.reset(seed=0, options={"task_id": task_id})
    transcript = [(obs, None, False, False, json_round_trip(info))]
    while not (transcript[-1][2] or transcript[-1][3]):
        obs, reward, terminated, truncated, info = env.step(info["expert_action"])
        transcript.append((obs, reward, terminated, truncated, json_round_trip(info)))
    env.close()
    return transcript


def remote_episode(client, task_id: str) -> list[tuple]:
    def row(result) -> tuple:
        o = result.observation
        assert result.done == (o["terminated"] or o["truncated"])
        return o["text"], result.reward, o["terminated"], o["truncated"], o["info"]

    transcript = [row(client.reset(seed=0, options={"task_id": task_id}))]
    while not (transcript[-1][2] or transcript[-1][3]):
        transcript.append(row(client.step({"action": transcript[-1][4]["expert_action"]})))
    return transcript


@pytest.mark.parametrize("env_id", list(SPLIT))
def test_an_expert_episode_over_openenv_equals_the_one_in_process(env_id):
    task_id = gym.make(env_id, split=SPLIT[env_id]).unwrapped.task_ids[1]
    expected = in_process_episode(env_id, task_id)
    assert expected[-1][2] and expected[-1][4]["won"] and len(expected) > 2
    with serving(env_id) as url, GenericEnvClient(base_url=url).sync() as client:
        assert remote_episode(client, task_id) == expected
        state = client.state()
        assert state["env_id"] == env_id and state["step_count"] == len(expected) - 1


def in_process_error(env: gym.Env, call) -> str:
    with pytest.raises(Exception) as caught:
        call(env)
    return f"{type(caught.value).__name__}: {caught.value}"


def test_bad_input_over_the_wire_gets_the_errors_the_env_raises_in_process():
    env_id = "HiPER/ALFWorld-v0"
    env = gym.make(env_id, split=SPLIT[env_id], expert=True)
    with serving(env_id) as url, GenericEnvClient(base_url=url).sync() as client:
        def same_error(local, remote) -> None:
            expected = in_process_error(env, local)
            with pytest.raises(RuntimeError) as caught:
                remote(client)
            assert f"Server error: {expected} (code: EXECUTION_ERROR)" == str(caught.value)

        same_error(lambda e: e.step("look"), lambda c: c.step({"action": "look"}))  # before reset
        same_error(lambda e: e.reset(options={"task_id": "no-such-task"}),
                   lambda c: c.reset(options={"task_id": "no-such-task"}))
        env.reset(seed=0)
        first = client.reset(seed=0)
        for bad in (None, 5, ["look"], {"go": "north"}):
            same_error(lambda e, bad=bad: e.step(bad), lambda c, bad=bad: c.step({"action": bad}))
        with pytest.raises(RuntimeError, match="unexpected keyword arguments \\['task_id'\\]"):
            client.reset(task_id="x")  # misspelt: refused, never a silently different task
        with pytest.raises(RuntimeError, match="VALIDATION_ERROR"):
            client.step({"action": "look", "extra": 1})
        # after every refusal the session still plays: a step of the episode reset above
        client.reset(seed=0)
        result = client.step({"action": first.observation["info"]["expert_action"]})
        assert result.reward is not None and not result.done
    env.close()


def test_sessions_are_bounded_and_oversized_input_is_refused():
    with serving("HiPER/KeyDoor-v0", "--max-sessions", "2") as url:
        ws_url = url.replace("http://", "ws://") + "/ws"
        with connect(ws_url) as first, connect(ws_url) as second:
            for ws in (first, second):
                ws.send(json.dumps({"type": "reset", "data": {"seed": 0}}))
                assert json.loads(ws.recv(timeout=30))["type"] == "observation"
            with connect(ws_url) as third:  # over the bound: an error frame at once, then the server closes it
                reply = json.loads(third.recv(timeout=30))
                assert reply["type"] == "error" and reply["data"]["code"] == "CAPACITY_REACHED"
            first.send("{not json")
            assert json.loads(first.recv(timeout=30))["data"]["code"] == "INVALID_JSON"
            second.send(json.dumps({"type": "step", "data": {"action": "x" * (2 << 20)}}))
            with pytest.raises(ConnectionClosed) as closed:
                second.recv(timeout=30)
            assert closed.value.rcvd.code == 1009  # message too big
        with connect(ws_url) as again:  # both sessions gone: there is room again
            again.send(json.dumps({"type": "reset", "data": {"seed": 0}}))
            assert json.loads(again.recv(timeout=30))["type"] == "observation"
        big = httpx.post(f"{url}/reset", content=b"{" + b" " * (2 << 20) + b"}",
                         headers={"content-type": "application/json"}, timeout=30)
        assert big.status_code == 413
        assert httpx.get(f"{url}/health", timeout=30).json()["status"] == "healthy"


def test_serve_env_refuses_an_unknown_env_in_one_line():
    done = subprocess.run([str(BIN), "serve-env", "HiPER/Nope-v0"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "unknown env id" in done.stderr
    assert done.stdout == ""


def test_every_text_env_is_served():
    assert set(SPLIT) == {i for i in hiper_envs.ENV_IDS if "Browser" not in i}
