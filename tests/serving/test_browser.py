"""What a person sees: headless Chromium against a real uvicorn server on a free loopback port.

Chromium comes from Debian (`make browser` installs it). Without chromium and chromedriver the tests
are skipped, saying so, unless CASELENS_REQUIRE_BROWSER is set (CI sets it): then the run fails.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from tests.serving.ports import free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
MISSING = "chromium/chromedriver not installed: run `make browser`"
if (CHROMIUM is None or CHROMEDRIVER is None) and os.environ.get("CASELENS_REQUIRE_BROWSER", "0") != "0":
    pytest.fail(f"CASELENS_REQUIRE_BROWSER is set but {MISSING}", pytrace=False)
needs_chromium = pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None, reason=MISSING)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)


@pytest.fixture(scope="module")
def server(make_app) -> Iterator[str]:
    yield from serve(make_app())


@pytest.fixture(scope="module")
def forecast_server(world, tmp_path_factory) -> Iterator[str]:
    """A service whose data folder holds a surplus forecast run (with its loss risk) on the world's cases;
    a folder of its own, since the shared world's must stay without a forecast (its 503 is tested)."""
    from pipelines.forecast import price_history, run_surplus_forecast
    from serving.app import create_app
    from serving.config import ServingSettings

    settings = world.settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("forecast") / "data"})
    history = price_history(world.cases)
    run_surplus_forecast(history, 2, settings.data_dir / "forecast", n_draws=50, origins=2, top=5)
    yield from serve(create_app(settings, ServingSettings(api_keys=str(world.keys_path))))


def serve(app) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port until the caller is done with its address."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not running.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="caselens-chromium-")
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def log_in(browser, server: str, key: str, target: str) -> None:
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    browser.get(f"{server}{target}")
    assert "/login" in browser.current_url
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.ui import WebDriverWait

    browser.find_element(By.ID, "key").send_keys(key)
    button = browser.find_element(By.ID, "login")
    button.click()
    WebDriverWait(browser, 20).until(staleness_of(button))


@needs_chromium
def test_case_page_shows_the_waterfall_and_reasons(browser, server, world):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.ui import WebDriverWait

    case_id = world.cases["case_id"].iloc[4]
    log_in(browser, server, world.keys["clinician"], f"/cases/{case_id}?lang=en")
    assert browser.current_url.endswith(f"/cases/{case_id}?lang=en")
    card = browser.find_element(By.ID, "card-cost")
    chart = card.find_element(By.CSS_SELECTOR, "svg.waterfall")
    assert chart.size["width"] > 300 and chart.size["height"] > 100
    bars = chart.find_elements(By.CSS_SELECTOR, "rect")
    assert len(bars) >= 4
    reasons = [li.text for li in card.find_elements(By.CSS_SELECTOR, "ul.reasons li")]
    assert reasons and all("the expected cost by ¥" in r for r in reasons)
    assert card.find_element(By.CSS_SELECTOR, ".value").text.startswith("¥")
    switch = browser.find_element(By.LINK_TEXT, "中文")
    switch.click()
    WebDriverWait(browser, 20).until(staleness_of(switch))
    assert "主要原因" in browser.find_element(By.ID, "card-cost").text


@needs_chromium
def test_queue_sorts_and_filters(browser, server, world):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.ui import Select, WebDriverWait

    log_in(browser, server, world.keys["coder"], "/queue?lang=en")

    def column(css: str) -> list[str]:
        return [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, f"#queue tbody td{css}")]

    def money() -> list[float]:
        return [float(text.strip("¥").replace(",", "")) for text in column(".money")]

    def click_and_wait(element) -> None:
        element.click()
        WebDriverWait(browser, 20).until(staleness_of(element))  # the next page has replaced this one

    assert len(money()) == len(world.queue)
    click_and_wait(browser.find_element(By.CSS_SELECTOR, 'th[data-column="money_at_stake"] a'))  # ascending
    assert money() == sorted(money())
    click_and_wait(browser.find_element(By.CSS_SELECTOR, 'th[data-column="money_at_stake"] a'))  # descending
    assert money() == sorted(money(), reverse=True)

    department = world.queue["department"].iloc[0]
    Select(browser.find_element(By.ID, "department")).select_by_value(department)
    click_and_wait(browser.find_element(By.ID, "apply"))
    shown = column(".department")
    assert shown and set(shown) == {department}
    assert money() == sorted(money(), reverse=True)  # the sort survives filtering


@needs_chromium
def test_home_page_opens_a_case_and_logout_ends_the_session(browser, server, world):
    """The CSP-clean case-id form, and logout through the real form (Origin and CSRF token as sent
    by Chromium): afterwards the old session cookie opens nothing."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    case_id = world.cases["case_id"].iloc[2]
    log_in(browser, server, world.keys["clinician"], "/?lang=en")
    browser.find_element(By.ID, "case-id").send_keys(case_id)
    browser.find_element(By.CSS_SELECTOR, "main form button").click()
    WebDriverWait(browser, 20).until(lambda b: b.current_url.endswith(f"/cases/{case_id}?lang=en"))
    WebDriverWait(browser, 20).until(lambda b: b.find_elements(By.ID, "card-cost"))
    session = browser.get_cookie("caselens_session")
    assert session and session["httpOnly"] and session["sameSite"] == "Strict"
    browser.find_element(By.CSS_SELECTOR, 'form[action="/logout"] button').click()
    WebDriverWait(browser, 20).until(lambda b: "/login" in b.current_url)
    browser.add_cookie({"name": "caselens_session", "value": session["value"], "path": "/"})
    browser.get(f"{server}/cases/{case_id}?lang=en")
    assert "/login" in browser.current_url  # the server forgot the session


@needs_chromium
def test_forecast_page_shows_the_loss_risk_table(browser, forecast_server, world):
    """Finance reads the ranked loss-risk cells under the surplus forecast, in English and Chinese."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.ui import WebDriverWait

    log_in(browser, forecast_server, world.keys["finance"], "/forecast?lang=en")
    assert "Quarterly DRG surplus forecast" in browser.find_element(By.TAG_NAME, "h1").text
    table = browser.find_element(By.ID, "loss-risk")
    assert table.is_displayed() and table.size["width"] > 300
    for chart in ("chart", "loss-chart"):  # the charts load with the login session (no key header)
        image = browser.find_element(By.ID, chart)
        WebDriverWait(browser, 20).until(
            lambda b, i=image: b.execute_script("return arguments[0].complete", i)
        )
        assert browser.execute_script("return arguments[0].naturalWidth", image) > 300, chart
    heads = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    assert sum("P(loss)" in h for h in heads) == 2 and "expected loss" in heads
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert 0 < len(rows) <= 20
    cells = [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]
    assert [c[0] for c in cells] == [str(i) for i in range(1, len(rows) + 1)]
    probabilities = [float(text.split("%")[0]) for c in cells for text in c[3:5]]
    assert all(0 <= p <= 100 for p in probabilities)
    losses = [float(c[5].strip("¥").replace(",", "")) for c in cells]
    assert losses == sorted(losses, reverse=True)
    switch = browser.find_element(By.LINK_TEXT, "中文")
    switch.click()
    WebDriverWait(browser, 20).until(staleness_of(switch))
    assert "亏损概率" in browser.find_element(By.ID, "loss-risk").text
    assert "各科室DRG亏损风险" in browser.page_source
