"""Fuzzing with hypothesis: any action string (any Unicode, surrogates and control characters
included, huge strings, bracket soup, the plan-execute format with junk inside) against every env
id, bare and wrapped, is a step that keeps the contract, never an exception; any non-string is a
TypeError. Random HTTP requests against the WebShop site and `hiper-bench serve` get an answer
below 500, and the servers keep serving."""

from __future__ import annotations

import json
import threading

import gymnasium as gym
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hiper_envs
from hiper_envs.webshop.browser_env import chromium_available
from hiper_envs.wrappers import PlanExecute

SPLIT = {"HiPER/ALFWorld-v0": "valid_seen", "HiPER/KeyDoor-v0": "valid_seen", "HiPER/WebShop-v0": "test",
         "HiPER/WebShop-Browser-v0": "test"}
CHECKS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                  database=None)

any_char = st.characters(exclude_categories=())  # surrogates and control characters too
soup = st.text(alphabet="[]<>/ \n\tsearchclicklookgo1", max_size=80)
framed = st.builds(lambda kind, arg: f"{kind}[{arg}]", st.sampled_from(["search", "click", "go", ""]),
                   st.text(any_char, max_size=200) | soup)
huge = st.builds(lambda piece, n: f"search[{piece * n}]", st.text(any_char, min_size=1, max_size=8),
                 st.integers(1000, 20_000))
plan = st.builds(lambda s, g, a: f"<switch>{s}</switch><subgoal>{g}</subgoal><action>{a}</action>",
                 st.sampled_from(["KEEP", "SWITCH", "", "keep"]) | soup, st.text(any_char, max_size=60), framed | soup)
actions = st.text(any_char, max_size=300) | soup | framed | huge | plan
not_strings = st.none() | st.integers() | st.floats() | st.binary(max_size=20) | st.lists(st.text(max_size=5), max_size=3)

INFO_TYPES = {"task_id": str, "task_hash": str, "task": str, "admissible_actions": list, "action_valid": bool,
              "won": bool, "score": float, "progress": float, "subgoal_index": int, "steps": int}
_envs: dict[tuple[str, bool], gym.Env] = {}


def env_ids() -> list[str]:
    ids = [i for i in hiper_envs.ENV_IDS if "Browser" not in i]
    return ids + (["HiPER/WebShop-Browser-v0"] if chromium_available() else [])


def ready_env(env_id: str, wrapped: bool) -> gym.Env:
    """One env per id and wrapping for the whole module, reset whenever an episode has ended."""
    if (env_id, wrapped) not in _envs:
        env = gym.make(env_id, split=SPLIT[env_id], max_episode_steps=40)
        _envs[env_id, wrapped] = PlanExecute(env) if wrapped else env
        _envs[env_id, wrapped].reset(seed=0)
    return _envs[env_id, wrapped]


@pytest.fixture(scope="module", autouse=True)
def _close_envs():
    yield
    for env in _envs.values():
        env.close()
    _envs.clear()


@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "plan-execute"])
@pytest.mark.parametrize("env_id", env_ids())
def test_any_action_string_is_a_step_that_keeps_the_contract(env_id, wrapped):
    examples = 25 if "Browser" in env_id else CHECKS.max_examples  # a browser step is ~50 ms

    @settings(CHECKS, max_examples=examples)
    @given(action=actions)
    def step_with(action):
        env = ready_env(env_id, wrapped)
        obs, reward, terminated, truncated, info = env.step(action)
        assert isinstance(obs, str) and isinstance(reward, float)
        assert isinstance(terminated, bool) and isinstance(truncated, bool)
        for key, kind in INFO_TYPES.items():
            assert isinstance(info[key], kind), key
        if terminated or truncated:
            env.reset()

    step_with()


@pytest.mark.parametrize("env_id", env_ids())
def test_any_non_string_action_is_a_type_error(env_id):
    @settings(CHECKS, max_examples=30)
    @given(action=not_strings)
    def step_with(action):
        with pytest.raises(TypeError, match="got"):
            ready_env(env_id, False).step(action)

    step_with()


@pytest.fixture(scope="module")
def site():
    from hiper_envs.webshop.engine import Shop
    from hiper_envs.webshop.site import Sessions, create_app

    client = create_app(Shop.load(None, "synthetic"), Sessions()).test_client()
    sid = client.get("/?task_id=0").headers["Location"].rstrip("/").rsplit("/", 1)[1]
    return client, sid


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) |
                           st.text(any_char, max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=4),
                           max_leaves=20)


@settings(CHECKS)
@given(route=st.sampled_from(["/", "/{sid}", "/search_results/{sid}", "/item_page/{sid}/{asin}",
                              "/item_sub_page/{sid}/{asin}/{text}", "/done/{sid}/{asin}", "/{text}",
                              "/static/{text}"]),
       text=st.text(any_char, max_size=40), use_sid=st.booleans(), method=st.sampled_from(["GET", "POST"]),
       params=st.dictionaries(st.sampled_from(["q", "page", "options", "task_id", "x"]),
                              st.text(any_char, max_size=60) | st.builds(json.dumps, json_values), max_size=4),
       form=st.dictionaries(st.sampled_from(["search_query", "y"]), st.text(any_char, max_size=200), max_size=2))
def test_random_requests_to_the_site_get_answers_below_500(site, route, text, use_sid, method, params, form):
    client, sid = site
    segment = text.replace("/", "").replace("?", "")  # one path segment; the query goes in `query_string`
    path = route.format(sid=sid if use_sid else segment, asin="B07JVCXFQ6", text=segment) or "/"
    encode = {k: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for k, v in params.items()}
    data = {k: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for k, v in form.items()}
    response = client.open(path.encode("utf-8", "surrogatepass").decode("utf-8", "replace"), method=method,
                           query_string=encode, data=data if method == "POST" else None)
    assert response.status_code < 500, (path, params, response.status_code)
    assert client.get(f"/search_results/{sid}?q=shampoo").status_code == 200


class Echo:
    max_new_tokens = 4

    def generate(self, conversations, max_new_tokens=None):
        return [c[-1]["content"][:20] for c in conversations]


@pytest.fixture(scope="module")
def served():
    from agents.backends.server import make_server

    server = make_server(Echo(), "echo", port=0, batch_size=4)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@settings(CHECKS)
@given(body=st.builds(lambda v: json.dumps(v).encode(), json_values) | st.binary(max_size=300) |
       st.builds(lambda m, extra: json.dumps({"messages": m, **extra}).encode(),
                 st.lists(st.dictionaries(st.sampled_from(["role", "content", "name"]), json_values, max_size=3),
                          max_size=3),
                 st.dictionaries(st.sampled_from(["max_tokens", "stream", "model", "temperature"]), json_values,
                                 max_size=2)),
       path=st.sampled_from(["/v1/chat/completions", "/v1/models", "/v1/chat/completions/", "/x"]))
def test_random_requests_to_serve_get_answers_below_500(served, body, path):
    response = httpx.post(served + path, content=body, timeout=10)
    assert response.status_code < 500, (body[:100], response.status_code)
    ok = httpx.post(served + "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
    assert ok.status_code == 200
