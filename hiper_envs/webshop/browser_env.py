"""`HiPER/WebShop-Browser-v0`: the WebShop tasks through headless Chromium on the real site."""

from __future__ import annotations

import os
import secrets
import shutil

from hiper_envs.webshop.engine import Session, parse_action, search_keywords
from hiper_envs.webshop.env import WebShopEnv
from hiper_envs.webshop.pages import (
    SEARCH_BUTTON,
    Node,
    Urls,
    admissible_actions,
    as_parsed,
    clickables,
    to_text,
    to_text_rich,
)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1024",
)
PAGE_TIMEOUT_S = 20.0

# Visible text nodes of the live DOM, with the kind of element holding each (as pages.nodes).
_READ_DOM = """
const skip = new Set(['STYLE', 'SCRIPT', 'HEAD', 'TITLE', 'META']);
const walker = document.createTreeWalker(document.documentElement, NodeFilter.SHOW_TEXT);
const out = [];
let n;
while ((n = walker.nextNode())) {
  const p = n.parentElement;
  if (!p || skip.has(p.tagName)) continue;
  let kind = 'text';
  if (p.tagName === 'BUTTON') kind = 'button';
  else if (p.tagName === 'LABEL') kind = 'option';
  else if (p.tagName === 'A' && p.className === 'product-link') kind = 'product';
  out.push([kind, n.data]);
}
const checked = Array.from(document.querySelectorAll('input[type=radio]:checked')).map(r => r.value);
return [out, checked, !!document.getElementById('search_input')];
"""
_FIND = """
const [kind, target] = arguments;
let el = null;
if (kind === 'option') {
  const radios = Array.from(document.querySelectorAll('input[type=radio]')).filter(r => r.value === target);
  el = radios[radios.length - 1];
} else {
  const sel = kind === 'product' ? 'a.product-link' : 'button.btn';
  el = Array.from(document.querySelectorAll(sel)).find(e => e.textContent.toLowerCase() === target);
}
if (el) window.__hiperOld = true;
return el || null;
"""
_SEARCH = """
const box = document.getElementById('search_input');
box.value = arguments[0];
window.__hiperOld = true;
document.querySelector('#search-form button').click();
"""


def chromium_available() -> bool:
    """True when the system Chromium and its driver are installed."""
    return os.path.exists(CHROMIUM) and bool(shutil.which(CHROMEDRIVER) or os.path.exists(CHROMEDRIVER))


class WebShopBrowserEnv(WebShopEnv):
    """The WebShop tasks played through a real headless Chromium against the WebShop site.

    Same goals, splits, spaces, rewards, episode end, ``info`` and arguments as
    ``HiPER/WebShop-v0`` (see `WebShopEnv`); the pages are served by a Flask app on 127.0.0.1 (a free
    port, a background thread) and every action is a real browser interaction: typing the query and
    pressing Search (or, off the search page, opening the results URL, as the original accepts
    search anywhere), clicking buttons, product links and option radio buttons. ``text`` and
    ``text_rich`` observations are read from the live DOM and equal the text env's for the same
    actions; ``html`` is the browser's serialisation of the DOM.

    Needs ``apt-get install -y chromium chromium-driver`` (``/usr/bin/chromium``,
    ``/usr/bin/chromedriver``) and the ``browser`` extra (selenium). The browser starts on the first
    ``reset`` and is restarted there if it crashed; ``close()`` (or garbage collection) stops the
    browser and the server.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._driver = None
        self._server = None
        self._sid = ""
        self._dom: tuple[list[Node], list[str], bool] = ([], [], False)

    # --- browser and server --------------------------------------------------------------------------
    def _ensure_browser(self) -> None:
        from hiper_envs.webshop.site import SiteServer

        if self._server is None:
            self._server = SiteServer(self.shop)
        if self._driver is not None:
            try:
                self._driver.execute_script("return 1")
                return
            except Exception:  # a crashed or closed browser: start a new one
                self._quit_driver()
        self._driver = self._start_driver()

    @staticmethod
    def _start_driver():
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        if not chromium_available():
            raise RuntimeError(
                f"{CHROMIUM} and {CHROMEDRIVER} are needed: apt-get install -y chromium chromium-driver"
            )
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        driver.set_page_load_timeout(PAGE_TIMEOUT_S)
        return driver

    def _quit_driver(self) -> None:
        driver, self._driver = self._driver, None
        if driver is not None:
            try:
                driver.quit()
            except Exception:  # already gone
                pass

    def close(self) -> None:
        self._quit_driver()
        if self._server is not None:
            self._server.close()
            self._server = None
        super().close()

    def __del__(self):
        if hasattr(self, "_server"):
            self.close()

    # --- hooks ---------------------------------------------------------------------------------------
    def _start_session(self, session: Session) -> Session:
        self._ensure_browser()
        if self._sid:
            self._server.sessions.pop(self._sid, None)
        self._sid = secrets.token_hex(6)
        self._server.sessions[self._sid] = session
        self._driver.get(self._server.url + Urls(self._sid).index())
        self._read_dom()
        return session

    def _read_dom(self) -> None:
        raw, checked, has_search = self._driver.execute_script(_READ_DOM)
        page_nodes = [(kind, s) for kind, text in raw if (s := as_parsed(text)) is not None]
        self._dom = (page_nodes, checked, has_search)

    def _wait_for_new_page(self) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self._driver, PAGE_TIMEOUT_S, poll_frequency=0.01).until(
            lambda d: d.execute_script("return !window.__hiperOld && document.readyState === 'complete'")
        )

    def _apply(self, action: str) -> tuple[bool, float]:
        session = self.session
        if session.done:
            return False, 0.0
        name, arg = parse_action(action)
        page_nodes, _checked, has_search = self._dom
        kinds = {}
        for kind, text in page_nodes:
            kinds.setdefault(text if kind == "option" else text.lower(), kind)
        if name == "search" and arg:
            keywords = search_keywords(arg)
            if keywords is None:
                return False, 0.0
            if has_search:
                self._driver.execute_script(_SEARCH, " ".join(keywords))
            else:
                self._driver.execute_script("window.__hiperOld = true;")
                self._driver.get(self._server.url + Urls(self._sid).results(keywords, 1))
        elif name == "click" and arg and arg != SEARCH_BUTTON.lower() and arg in clickables(page_nodes):
            element = self._driver.execute_script(_FIND, kinds[arg], arg)
            if element is None:
                return False, 0.0
            element.click()
        else:
            return False, 0.0
        self._wait_for_new_page()
        self._read_dom()
        return True, session.score if session.done else 0.0

    def _observe(self) -> str:
        page_nodes, checked, _ = self._dom
        if self.observation_mode == "text":
            return to_text(page_nodes)
        if self.observation_mode == "text_rich":
            return to_text_rich(page_nodes, set(checked), frozenset(self.session.visited))
        return self._driver.page_source

    def _admissible_actions(self) -> list[str]:
        page_nodes, _, has_search = self._dom
        return admissible_actions(page_nodes, has_search)
