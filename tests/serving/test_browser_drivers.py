"""The cost-driver page in headless Chromium: ranked cells, a loaded bar chart per cell, the filter and
the switch to Chinese (see test_browser.py for how the browser and server run)."""

from __future__ import annotations

import pytest

from pipelines.drivers import run_drivers
from pipelines.forecast import price_history
from tests.serving.test_browser import browser, log_in, needs_chromium, server  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def drivers_run(world):
    """The latest run where the world's service reads it."""
    priced = price_history(world.cases).cases
    return run_drivers(priced, world.settings.data_dir / "drivers", period="year", top=3, min_cases=1)


@needs_chromium
def test_drivers_page_shows_ranked_cells_with_a_chart_each(browser, server, world, drivers_run):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.ui import Select, WebDriverWait

    cells = drivers_run.cells
    assert len(cells) >= 2
    log_in(browser, server, world.keys["finance"], "/drivers?lang=en")
    assert browser.current_url.endswith("/drivers?lang=en")
    rows = browser.find_elements(By.CSS_SELECTOR, "#cells tbody tr")
    assert len(rows) == len(cells)
    gaps = [
        float(td.text.strip("¥").replace(",", "")) for td in browser.find_elements(By.CSS_SELECTOR, "td.gap")
    ]
    assert gaps == sorted(gaps, reverse=True) and gaps[0] > 0
    sections = browser.find_elements(By.CSS_SELECTOR, "section.cell")
    assert len(sections) == len(cells)
    for section in sections:
        assert "over the benchmark" in section.find_element(By.CSS_SELECTOR, "p.sentence").text
        chart = section.find_element(By.CSS_SELECTOR, "img.chart")
        WebDriverWait(browser, 20).until(
            lambda b, c=chart: b.execute_script("return arguments[0].complete", c)
        )
        assert browser.execute_script("return arguments[0].naturalWidth", chart) > 300  # the PNG loaded

    department = cells["department"].iloc[-1]
    Select(browser.find_element(By.ID, "department")).select_by_value(department)
    apply = browser.find_element(By.ID, "apply")
    apply.click()
    WebDriverWait(browser, 20).until(staleness_of(apply))
    shown = {td.text for td in browser.find_elements(By.CSS_SELECTOR, "#cells td.department")}
    assert shown == {department}

    switch = browser.find_element(By.LINK_TEXT, "中文")
    switch.click()
    WebDriverWait(browser, 20).until(staleness_of(switch))
    assert "DRG成本驱动因素" in browser.find_element(By.TAG_NAME, "h1").text
    assert "超出基准" in browser.find_element(By.CSS_SELECTOR, "section.cell p.sentence").text
