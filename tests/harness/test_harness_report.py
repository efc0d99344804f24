"""Metrics against hand-computed values; report and leaderboard files; the page in headless Chromium."""

import json
import shutil
from itertools import pairwise
from pathlib import Path

import pytest
from conftest import fake_run

from harness.errors import HarnessError
from harness.report import build_report, mcnemar_exact, wilson, write_report
from harness.store import Store
from harness.sweep import execute
from leaderboards.build import build_leaderboard, load_reference, write_leaderboard


def test_wilson_matches_hand_computed_values():
    # 8/10, z = 1.96: centre (0.8 + 0.19208) / 1.38416 = 0.71679, half-width 0.23974 (by hand)
    low, high = wilson(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    # 0/n: the upper bound is z^2 / (n + z^2) = 3.8415 / 23.8415 for n = 20
    assert wilson(0, 20) == pytest.approx((0.0, 3.841459 / 23.841459), abs=1e-6)
    assert wilson(20, 20) == pytest.approx((1 - 3.841459 / 23.841459, 1.0), abs=1e-6)
    assert wilson(0, 0) == (0.0, 1.0)


def test_mcnemar_exact_matches_binomial_tail():
    assert mcnemar_exact(6, 0) == pytest.approx(2 * 0.5**6)  # 0.03125
    assert mcnemar_exact(1, 9) == pytest.approx(2 * 11 / 1024)  # P(X<=1 | n=10) doubled
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(5, 5) == 1.0


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    db = tmp_path_factory.mktemp("db") / "r.sqlite"
    execute([fake_run("expert"), fake_run("random", episodes=6)], db, workers=2, progress=False)
    with Store(db, create=False) as store:
        return build_report(store.frame(transcripts=True))


def test_report_numbers(report):
    groups = {g["agent"]: g for g in report["groups"]}
    assert groups["expert"]["n"] == 6 and groups["expert"]["success"] == 1.0
    assert groups["expert"]["ci_low"] == pytest.approx(wilson(6, 6)[0])
    assert groups["expert"]["steps"] == 6.0 and groups["expert"]["invalid_rate"] == 0.0
    assert {t["task_type"] for t in report["task_types"]} == {"near", "far"}
    (pair,) = report["paired"]
    assert pair["pairs"] == 6 and pair["a_only"] + pair["both"] == 6
    assert pair["p_value"] == pytest.approx(mcnemar_exact(pair["a_only"], pair["b_only"]))
    expert_curve = next(c for c in report["curves"] if c["agent"] == "expert")["progress"]
    assert expert_curve[-1] == 1.0 and all(a <= b for a, b in pairwise(expert_curve))


def test_report_and_leaderboard_files(report, tmp_path):
    written = write_report(report, tmp_path / "report")
    assert all(p.exists() and p.stat().st_size > 0 for p in written)
    assert sum(p.suffix == ".png" for p in written) == 2
    assert json.loads((tmp_path / "report" / "report.json").read_text())["groups"] == report["groups"]
    md = (tmp_path / "report" / "report.md").read_text()
    assert "100.0 [61.0, 100.0]" in md  # expert 6/6 with its Wilson interval

    files = write_leaderboard(report, tmp_path / "lb")
    text = files[0].read_text()
    assert "Published (copied from the sources" in text and "GiGPO (arXiv 2505.10978) Table 1" in text
    assert "bundled synthetic tasks" in text and "ALFWorld valid_seen (verl-agent split)" in text


def test_leaderboard_refuses_a_report_missing_a_metric(report):
    broken = json.loads(json.dumps(report))
    del broken["groups"][0]["ci_low"]
    with pytest.raises(HarnessError, match="lacks metric 'ci_low'"):
        build_leaderboard(broken, load_reference())


def test_reference_numbers_are_the_published_ones():
    ref = {(r["family"], r["model"], r["method"], r["task_type"], r["metric"]): float(r["value_pct"])
           for r in load_reference()}
    assert len(ref) == len(load_reference())  # one value per cell
    assert ref[("ALFWorld", "Qwen2.5-7B", "HiPER", "all", "success")] == 97.4
    assert ref[("WebShop", "Qwen2.5-7B", "HiPER", "all", "success")] == 83.3
    assert ref[("WebShop", "closed", "GPT-4o", "all", "score")] == 31.8
    assert ref[("ALFWorld", "Qwen2.5-1.5B", "GiGPO", "pick_two_obj_and_place", "success")] == 76.4
    assert ("ALFWorld", "Qwen2.5-7B", "HiPER", "pick_and_place_simple", "success") not in ref  # not guessed


SCREENSHOT = Path(__file__).parents[2] / "runs" / "screenshots" / "leaderboard.png"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromedriver") is None, reason="needs Debian's chromium-driver (CI installs it)")
def test_leaderboard_page_renders_sorts_and_filters_offline_in_headless_chromium(report, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.common.by import By

    (page,) = [p for p in write_leaderboard(report, tmp_path) if p.suffix == ".html"]
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1400,2400"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which("chromedriver")))
    try:
        driver.get(page.as_uri())
        table = driver.find_element(By.ID, "published-ALFWorld")
        assert "ready" in table.get_attribute("class")  # the inline script ran
        rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert len(rows) == 18
        header = table.find_elements(By.TAG_NAME, "th")[3]  # success %
        header.click()
        header.click()  # descending
        values = [r.find_elements(By.TAG_NAME, "td")[3].text for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
        assert values[0] == "97.4" and values == sorted(values, key=float, reverse=True)
        # the filter box above a table keeps the rows holding every typed word
        ours = driver.find_element(By.ID, "ours-fakeenv:Fake/Corridor-v0")
        box = ours.find_element(By.XPATH, "preceding-sibling::input[1]")
        box.send_keys("random")
        shown = [r.text for r in ours.find_elements(By.CSS_SELECTOR, "tbody tr") if r.is_displayed()]
        assert len(shown) == 1 and "random" in shown[0]
        box.clear()
        box.send_keys("no such agent")
        assert not [r for r in ours.find_elements(By.CSS_SELECTOR, "tbody tr") if r.is_displayed()]
        # the chart: our bars with intervals and the published bars, every label naming its tasks
        chart = driver.find_element(By.ID, "chart-ALFWorld")
        assert len(chart.find_elements(By.CSS_SELECTOR, "rect.published")) >= 18
        ours_chart = driver.find_element(By.ID, "chart-fakeenv:Fake/Corridor-v0")
        assert len(ours_chart.find_elements(By.CSS_SELECTOR, "rect.ours")) >= 2
        assert len(ours_chart.find_elements(By.CSS_SELECTOR, "line.interval")) >= 2
        # offline: nothing but the page itself was loaded, and nothing complained
        resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert resources == []
        problems = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
        assert problems == []
        box.clear()
        driver.execute_script("window.scrollTo(0, 0)")
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(SCREENSHOT))
    finally:
        driver.quit()


def test_webshop_rows_say_which_noun_finder_scored_them(tmp_path):
    from harness.sweep import Run, make_agent_entry, make_env_entry

    run = Run(make_env_entry("HiPER/WebShop-v0", "test"), make_agent_entry("expert"), 0, 2)
    execute([run], tmp_path / "r.sqlite", workers=1, progress=False)
    with Store(tmp_path / "r.sqlite", create=False) as store:
        report = build_report(store.frame(transcripts=True))
    (group,) = report["groups"]
    assert group["noun_source"] in ("spacy", "heuristic")
    files = write_report(report, tmp_path / "out")
    text = (tmp_path / "out" / "report.md").read_text()
    assert "WebShop nouns" in text and "en_core_web_sm" in text and files
