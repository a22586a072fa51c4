"""The ward watch-list page in headless Chromium: the rows of the latest list, sorting by a column
header, the department filter and the switch to Chinese (see test_browser.py for the browser and server)."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.watch import write_watch
from tests.serving.test_browser import browser, log_in, needs_chromium, serve  # noqa: F401 (fixtures)
from tests.serving.test_watch_page import watch_rows

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def watch_server(world, tmp_path_factory):
    """A service whose data folder holds a watch list (a folder of its own: the world's has none)."""
    from serving.app import create_app
    from serving.cases import CaseIndex
    from serving.config import ServingSettings

    settings = world.settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("watch") / "data"})
    rows = watch_rows(world.cases)
    write_watch(rows, pd.Timestamp("2025-06-30"), None, settings.data_dir / "reports")
    app = create_app(
        settings, ServingSettings(api_keys=str(world.keys_path)), cases=CaseIndex(lambda: world.cases)
    )
    for address in serve(app):
        yield address, rows


@needs_chromium
def test_watch_page_sorts_filters_and_switches_language(browser, watch_server, world):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.ui import Select, WebDriverWait

    server, rows = watch_server

    def stays() -> list[str]:
        return [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#watch td.stay")]

    def click_and_wait(element) -> None:
        element.click()
        WebDriverWait(browser, 20).until(staleness_of(element))

    log_in(browser, server, world.keys["clinician"], "/watch?lang=en")
    assert browser.current_url.endswith("/watch?lang=en")
    assert stays() == rows["case_id"].tolist()
    expected = [
        float(td.text.strip("¥").replace(",", ""))
        for td in browser.find_elements(By.CSS_SELECTOR, "td.expected")
    ]
    assert expected == sorted(expected, reverse=True)

    header = browser.find_element(By.CSS_SELECTOR, 'th[data-column="overrun_probability"] a')
    click_and_wait(header)
    assert stays() == rows.sort_values("overrun_probability", kind="stable")["case_id"].tolist()
    click_and_wait(browser.find_element(By.CSS_SELECTOR, 'th[data-column="overrun_probability"] a'))
    assert (
        stays() == rows.sort_values("overrun_probability", ascending=False, kind="stable")["case_id"].tolist()
    )

    department = rows["department"].iloc[-1]
    Select(browser.find_element(By.ID, "department")).select_by_value(department)
    click_and_wait(browser.find_element(By.ID, "apply"))
    assert {td.text for td in browser.find_elements(By.CSS_SELECTOR, "#watch td.department")} == {department}
    assert stays() == (
        rows[rows["department"] == department]
        .sort_values("overrun_probability", ascending=False, kind="stable")["case_id"]
        .tolist()
    )  # the filter keeps the sort

    click_and_wait(browser.find_element(By.LINK_TEXT, "中文"))  # the switch starts the list afresh
    assert "在院预警" in browser.find_element(By.TAG_NAME, "h1").text
    levels = {td.text for td in browser.find_elements(By.CSS_SELECTOR, "#watch td.level")}
    assert levels == {"超支", "关注", "正常"} and stays() == rows["case_id"].tolist()

    link = browser.find_element(By.CSS_SELECTOR, '#watch td.stay a[href^="#stay-"]')
    target = link.get_attribute("href").split("#")[1]
    link.click()
    assert browser.find_element(By.ID, target).find_element(By.CSS_SELECTOR, "ul.reasons li").text
