"""The browser env: real headless Chromium on the Flask site, parity with the text env (slow)."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import hiper_envs  # noqa: F401
from hiper_envs.webshop.browser_env import chromium_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not chromium_available(),
        reason="needs /usr/bin/chromium and chromedriver (apt-get install chromium chromium-driver)",
    ),
]


@pytest.fixture(scope="module")
def browser():
    env = gym.make("HiPER/WebShop-Browser-v0", expert=True, observation_mode="text_rich")
    yield env
    env.close()


def test_check_env():
    env = gym.make("HiPER/WebShop-Browser-v0")
    check_env(env.unwrapped, skip_render_check=True)
    env.close()
    assert env.unwrapped._driver is None and env.unwrapped._server is None


@pytest.mark.parametrize("seed", [0, 1])
def test_parity_with_the_text_env(browser, seed):
    text = gym.make("HiPER/WebShop-v0", expert=True, observation_mode="text_rich")
    rng = np.random.default_rng(seed)
    obs_b, info_b = browser.reset(seed=seed)
    obs_t, info_t = text.reset(seed=seed)
    assert obs_b == obs_t
    # a few detours (sub-pages, another product, back to search, a search off the search page, a bad
    # click), then the expert to the purchase
    detours = ["search[<r>]", "click[next >]", "click[< prev]", "click[nothing]", "search[shampoo]"]
    steps = 0
    while True:
        if steps < len(detours):
            action = detours[steps]
        elif steps < 8:
            pages = [a for a in info_t["admissible_actions"] if a not in ("click[buy now]",)]
            action = str(rng.choice(pages)).replace("<query>", "cotton t-shirt")
        else:
            action = info_t["expert_action"]
        obs_b, r_b, term_b, trunc_b, info_b = browser.step(action)
        obs_t, r_t, term_t, trunc_t, info_t = text.step(action)
        steps += 1
        assert obs_b == obs_t, action
        assert (r_b, term_b) == (r_t, term_t)
        for key in (
            "admissible_actions",
            "action_valid",
            "goal_conditions",
            "progress",
            "subgoal_index",
            "expert_action",
            "score",
            "won",
        ):
            assert info_b[key] == info_t[key], (action, key)
        if term_t:
            break
    assert info_b["won"] and info_b["score_breakdown"] == info_t["score_breakdown"]
    text.close()


def test_hostile_queries_follow_the_text_envs_rules(browser):
    # a lone surrogate cannot be typed into a page: refused by both; a 64 KB query is cut to the same
    # words in both (the browser's URL would otherwise be too long); control characters and bracket
    # soup are searched as text
    text = gym.make("HiPER/WebShop-v0", expert=True, observation_mode="text_rich")
    for query in ["\ud800", "red shoes " * 7000, "a\x00b\x1b[31m", "]][[search[x]]", "  "]:
        browser.reset(seed=3)
        text.reset(seed=3)
        obs_b, _, _, _, info_b = browser.step(f"search[{query}]")
        obs_t, _, _, _, info_t = text.step(f"search[{query}]")
        assert obs_b == obs_t, query[:20]
        for key in ("action_valid", "admissible_actions", "page"):
            assert info_b[key] == info_t[key], (query[:20], key)
        if query == "\ud800":
            assert not info_b["action_valid"] and info_b["page"] == "search"
        if query.startswith("red shoes"):
            assert info_b["action_valid"] and info_b["page"] == "results" and len(info_b["admissible_actions"]) > 2
    text.close()


def test_script_in_a_query_renders_as_text(browser):
    browser.reset(seed=3)
    obs, reward, terminated, truncated, info = browser.step("search[<script>alert(1)</script>]")
    assert info["action_valid"] and "Page 1 (Total results:" in obs
    driver = browser.unwrapped._driver
    assert driver.execute_script("return document.querySelectorAll('script').length") == 0
    assert "alert(1)" in driver.current_url.replace("%28", "(").replace("%29", ")")


def test_crashed_browser_is_restarted_on_reset(browser):
    browser.unwrapped._driver.quit()
    obs, info = browser.reset(seed=4)
    assert obs.startswith("WebShop\n") and info["admissible_actions"] == ["search[<query>]"]
