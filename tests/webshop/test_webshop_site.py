"""The WebShop site under hostile requests: bad parameters get 400 or 404 (never 500), bodies are
bounded, and sessions do not pile up."""

import json

import pytest

from hiper_envs.webshop.engine import Shop
from hiper_envs.webshop.site import MAX_BODY_BYTES, Sessions, create_app


@pytest.fixture()
def site(tiny_dir):
    shop = Shop.load(tiny_dir, "synthetic")
    sessions = Sessions(limit=5)
    app = create_app(shop, sessions)
    return app.test_client(), sessions, shop


def new_session(client, query: str = "") -> str:
    response = client.get("/" + query)
    assert response.status_code == 302
    return response.headers["Location"].rstrip("/").rsplit("/", 1)[1]


def test_bad_parameters_are_client_errors(site):
    client, _, shop = site
    sid = new_session(client, "?task_id=0")
    asin = next(iter(shop.catalog.by_asin))
    for page in ("²", "0", "-1", "9" * 5000, "1.5", ""):
        assert client.get(f"/search_results/{sid}?q=shampoo&page={page}").status_code == 400, page
    deep = "[" * 1500 + "]" * 1500
    assert client.get(f"/item_page/{sid}/{asin}?options={deep}").status_code == 400
    assert client.get(f"/item_page/{sid}/{asin}?options=" + json.dumps({"Size": 3})).status_code == 400
    for task_id in ("²", "9" * 5000, str(len(shop.goals)), "x"):
        assert client.get(f"/?task_id={task_id}").status_code == 404, task_id
    assert client.get("/search_results/nosuchsession?q=a").status_code == 404
    assert client.get(f"/item_page/{sid}/NOSUCHASIN").status_code == 404
    assert client.get(f"/search_results/{sid}?q=shampoo&page=1").status_code == 200


def test_bodies_over_the_limit_are_refused(site):
    client, _, _ = site
    sid = new_session(client)
    response = client.post(f"/{sid}", data={"search_query": "x" * (2 * MAX_BODY_BYTES)})
    assert response.status_code == 413
    assert client.post(f"/{sid}", data={"search_query": "red shampoo"}).status_code == 302


def test_sessions_are_bounded_least_recently_used_first(site):
    client, sessions, _ = site
    first = new_session(client)
    kept = new_session(client)
    for _ in range(3):
        new_session(client)
    assert client.get(f"/{first}").status_code == 200  # touched: now the most recent
    for _ in range(2):
        new_session(client)
    assert len(sessions) == 5
    assert client.get(f"/{first}").status_code == 200
    assert client.get(f"/{kept}").status_code == 404  # the least recently used went first
