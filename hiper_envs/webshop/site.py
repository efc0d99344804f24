"""The WebShop site: a Flask app serving the engine's pages, and a server for it on 127.0.0.1.

Routes (state lives in a server-side session per id; links carry the search and chosen options):
``/<sid>`` search page (POST ``search_query`` to search), ``/search_results/<sid>?q=&page=``,
``/item_page/<sid>/<asin>?q=&page=&options=``, ``/item_sub_page/<sid>/<asin>/<sub>?...``,
``/done/<sid>/<asin>?options=``, and ``/`` which opens a session on a goal (``?task_id=``, else
random). Pages load only ``/static`` files; all text is escaped by the templates. Bad parameters
get 400 (404 for an unknown session, product or task), bodies over `MAX_BODY_BYTES` 413, and at
most `MAX_SESSIONS` sessions are kept (the least recently used is dropped).

    python -m hiper_envs.webshop.site [--port 3000] [--goals human]   # browse it yourself
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import threading
from collections import OrderedDict

import numpy as np
from flask import Flask, Response, abort, redirect, request
from werkzeug.serving import make_server

from hiper_envs.webshop.catalog import Product
from hiper_envs.webshop.engine import Session, Shop
from hiper_envs.webshop.pages import STATIC_DIR, SUB_PAGES, Urls, to_html

MAX_BODY_BYTES = 64 * 1024  # a search form is a few hundred bytes
MAX_SESSIONS = 1000
MAX_DIGITS = 9  # of a page number or task index


class Sessions(OrderedDict):
    """Session ids to live sessions, least recently used first; past `limit`, the oldest go."""

    def __init__(self, limit: int = MAX_SESSIONS):
        super().__init__()
        self.limit = limit
        self.lock = threading.Lock()

    def __getitem__(self, sid: str) -> Session:
        with self.lock:
            self.move_to_end(sid)
            return super().__getitem__(sid)

    def __setitem__(self, sid: str, session: Session) -> None:
        with self.lock:
            super().__setitem__(sid, session)
            self.move_to_end(sid)
            while len(self) > self.limit:
                self.popitem(last=False)


def _natural(text: str) -> int | None:
    """`text` as a non-negative integer when it is one written in ASCII digits (not "²", not 5,000 digits)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= MAX_DIGITS else None


def create_app(shop: Shop, sessions: Sessions) -> Flask:
    """The site over `shop`; `sessions` maps session ids to live sessions (shared with the caller)."""
    app = Flask(__name__, static_folder=str(STATIC_DIR), static_url_path="/static")
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES, MAX_FORM_MEMORY_SIZE=MAX_BODY_BYTES)
    rng = np.random.default_rng()

    def session_of(sid: str) -> Session:
        try:
            return sessions[sid]
        except KeyError:
            abort(404, f"unknown session {sid[:40]!r}")

    def product_of(asin: str) -> Product:
        if asin not in shop.catalog.by_asin:
            abort(404, f"unknown product {asin[:40]!r}")
        return shop.catalog.by_asin[asin]

    def keywords_page() -> tuple[list[str], int]:
        page = _natural(request.args.get("page", "1"))
        if not page:
            abort(400, "page must be a positive integer")
        return request.args.get("q", "").split(" "), page

    def chosen_options() -> dict[str, str]:
        try:
            options = json.loads(request.args.get("options", "{}"))
        except (json.JSONDecodeError, RecursionError):
            abort(400, "options must be a JSON object")
        if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
            abort(400, "options must map option names to values")
        return options

    def page(sid: str, session: Session) -> Response:
        return Response(to_html(session.view(), Urls(sid)), mimetype="text/html")

    @app.route("/")
    def new_session():
        task_id = request.args.get("task_id")
        index = None if task_id is None else _natural(task_id)
        if task_id is not None and (index is None or index >= len(shop.goals)):
            abort(404, f"unknown task {task_id[:40]!r}: task ids are 0 to {len(shop.goals) - 1}")
        sid = secrets.token_hex(5)
        goal = shop.goals[int(rng.integers(len(shop.goals))) if index is None else index]
        sessions[sid] = Session(shop, goal, rng)
        return redirect(Urls(sid).index())

    @app.route("/<sid>", methods=["GET", "POST"])
    def index(sid: str):
        session = session_of(sid)
        if request.method == "POST" and "search_query" in request.form:
            return redirect(Urls(sid).results(request.form["search_query"].lower().split(" "), 1))
        session.goto_search()
        return page(sid, session)

    @app.route("/search_results/<sid>", methods=["GET", "POST"])
    def search_results(sid: str):
        session = session_of(sid)
        session.goto_results(*keywords_page())
        return page(sid, session)

    @app.route("/item_page/<sid>/<asin>", methods=["GET", "POST"])
    def item_page(sid: str, asin: str):
        session = session_of(sid)
        session.goto_item(product_of(asin), chosen_options(), *keywords_page())
        return page(sid, session)

    @app.route("/item_sub_page/<sid>/<asin>/<sub>", methods=["GET", "POST"])
    def item_sub_page(sid: str, asin: str, sub: str):
        if sub not in SUB_PAGES:
            abort(404, f"unknown sub-page {sub!r}")
        session = session_of(sid)
        session.goto_sub(product_of(asin), sub, chosen_options(), *keywords_page())
        return page(sid, session)

    @app.route("/done/<sid>/<asin>", methods=["GET", "POST"])
    def done(sid: str, asin: str):
        session = session_of(sid)
        if not session.done:
            session.buy(product_of(asin), chosen_options())
        return page(sid, session)

    return app


class SiteServer:
    """The site served by a background thread on 127.0.0.1 at a free port."""

    def __init__(self, shop: Shop):
        self.sessions = Sessions()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = make_server("127.0.0.1", 0, create_app(shop, self.sessions), threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="webshop-site", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the WebShop site on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--goals", default="synthetic", choices=("synthetic", "human"))
    parser.add_argument("--data-dir", default=None, help="folder with the original files (default: bundled)")
    args = parser.parse_args(argv)
    create_app(Shop.load(args.data_dir, args.goals), Sessions()).run(host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
