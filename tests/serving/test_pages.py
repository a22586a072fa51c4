"""Pages over HTTP: login, the case page with its waterfall and reasons, the queue's sorting and filters."""

from __future__ import annotations

import itertools
import re

import pytest
from fastapi.testclient import TestClient

from serving.waterfall import steps
from tests.serving.logins import log_in

pytestmark = pytest.mark.slow


@pytest.fixture
def browser_like(world, make_app):
    """A client with no key that follows the pages like a person (cookies kept, redirects not followed)."""
    with TestClient(make_app(), follow_redirects=False) as client:
        yield client


def test_pages_send_a_person_without_a_key_to_login_and_back(browser_like, world):
    case_id = world.cases["case_id"].iloc[0]
    answer = browser_like.get(f"/cases/{case_id}?lang=en")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=/cases/")
    wrong = log_in(browser_like, "nope", f"/cases/{case_id}")
    assert wrong.status_code == 401 and "密钥无效" in wrong.text
    right = log_in(browser_like, world.keys["clinician"], f"/cases/{case_id}")
    assert right.status_code == 303 and right.headers["location"] == f"/cases/{case_id}"
    cookie = right.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert browser_like.get(f"/cases/{case_id}").status_code == 200
    off_site = log_in(browser_like, world.keys["clinician"], "//evil.example/")
    assert off_site.headers["location"] == "/"


def test_the_home_page_opens_a_case_by_id_without_inline_script(client, world, auth):
    case_id = world.cases["case_id"].iloc[0]
    home = client.get("/?lang=en", headers=auth("clinician")).text
    assert "onsubmit" not in home and 'action="/cases"' in home
    found = client.get(
        "/cases", params={"case_id": case_id, "lang": "en"}, headers=auth("clinician"), follow_redirects=False
    )
    assert found.status_code == 303 and found.headers["location"] == f"/cases/{case_id}?lang=en"


def test_case_page_shows_waterfalls_and_reasons(client, world, auth):
    case_id = world.cases["case_id"].iloc[4]
    page = client.get(f"/cases/{case_id}?lang=en", headers=auth("clinician"))
    assert page.status_code == 200
    html = page.text
    for task in ("cost", "margin", "readmission"):  # a clinician's models; coding is for coders
        assert f'id="card-{task}"' in html
    assert 'id="card-coding"' not in html
    assert html.count('<svg class="waterfall"') == 3
    assert "the expected cost by ¥" in html
    zh = client.get(f"/cases/{case_id}", headers={**auth("clinician"), "Accept-Language": "zh-CN"}).text
    assert "使预计住院费用" in zh and "主要原因" in zh
    assert client.get("/cases/NO-SUCH-CASE", headers=auth("clinician")).status_code == 404


def test_case_page_shows_only_the_models_a_role_may_use(client, world, auth):
    html = client.get(f"/cases/{world.cases['case_id'].iloc[4]}", headers=auth("coder")).text
    assert 'id="card-cost"' not in html and 'id="card-readmission"' not in html


def test_waterfall_steps_end_at_the_prediction():
    explanation = {
        "base_prediction": 10_000.0,
        "rest_effect": 300.0,
        "contributions": [
            {"name": "a", "value": "1", "effect": 4_000.0},
            {"name": "b", "value": "2", "effect": -1_300.0},
        ],
    }
    walked = steps(explanation, other_label="other")
    assert [label for label, _, _ in walked] == ["a = 1", "b = 2", "other"]
    assert walked[0][1] == 10_000.0 and walked[-1][2] == pytest.approx(13_000.0)
    assert all(a[2] == pytest.approx(b[1]) for a, b in itertools.pairwise(walked))


def test_queue_page_sorts_and_filters(client, world, auth):
    html = client.get("/queue?lang=en", headers=auth("coder")).text
    assert "weights: insurer table" in html
    money = [float(m.replace(",", "")) for m in re.findall(r'class="num money">¥([\d,]+)', html)]
    assert len(money) == len(world.queue)
    by_money = client.get("/queue?lang=en&sort=money_at_stake&descending=true", headers=auth("coder")).text
    sorted_money = [float(m.replace(",", "")) for m in re.findall(r'class="num money">¥([\d,]+)', by_money)]
    assert sorted_money == sorted(money, reverse=True)
    department = world.queue["department"].iloc[0]
    filtered = client.get("/queue", params={"department": department}, headers=auth("coder")).text
    shown = re.findall(r'<td class="department">([^<]*)</td>', filtered)
    assert shown and set(shown) == {department}
    assert "GB25 → GB23" in filtered
    assert client.get("/queue", headers=auth("clinician")).status_code == 403
