"""The ward watch-list page: the latest list `caselens watch` wrote, sorted, filtered, by role."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from models.watch_list import LEVELS, WATCH_COLUMNS
from pipelines.watch import LATEST, write_watch
from serving.app import create_app
from serving.cases import CaseIndex
from serving.config import ServingSettings
from serving.routers.watch import NO_WATCH


def watch_rows(cases: pd.DataFrame, n: int = 12, seed: int = 5) -> pd.DataFrame:
    """A ranked watch list in the columns `caselens watch` writes, on some of the world's departments;
    ids that are not in the case store (stays in hospital have no abstract yet) but one that is."""
    rng = np.random.default_rng(seed)
    departments = cases["department"].drop_duplicates().head(3).to_numpy()
    standard = rng.uniform(5_000, 30_000, n).round()
    to_date = standard * rng.uniform(0.2, 1.4, n)
    final = to_date * rng.uniform(1.0, 1.6, n)
    p = rng.uniform(0, 1, n).round(4)
    expected = (p * np.maximum(final - standard, 0)).round(2)
    frame = pd.DataFrame(
        {
            "case_id": [f"S{i:04d}" for i in range(n - 1)] + [cases["case_id"].iloc[0]],
            "department": departments[np.arange(n) % len(departments)],
            "day_of_stay": rng.integers(1, 20, n),
            "cost_to_date": to_date.round(2),
            "pregrouped_drg": "GB25",
            "payment_standard": standard,
            "ratio_to_date": (to_date / standard).round(4),
            "predicted_final_cost": final.round(2),
            "final_cost_lower": (final * 0.8).round(2),
            "final_cost_upper": (final * 1.3).round(2),
            "overrun_probability": p,
            "expected_overrun": expected,
            "warning_level": np.array(LEVELS)[np.arange(n) % 3],
            "top_reasons": "charges to date 已发生费用 = 12,000 (+0.80); day of stay 住院天数 = 9 (+0.30)",
        }
    )
    frame = frame.sort_values("expected_overrun", ascending=False, ignore_index=True)
    frame.insert(0, "rank", np.arange(1, n + 1))
    return frame[list(WATCH_COLUMNS)]


@pytest.fixture(scope="module")
def watch_world(world, tmp_path_factory):
    """An app over a data folder of its own, so the shared world stays without a watch list."""
    settings = world.settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("watch") / "data"})
    cases = CaseIndex(lambda: world.cases)
    app = create_app(settings, ServingSettings(api_keys=str(world.keys_path)), cases=cases)
    with TestClient(app) as client:
        yield settings, client


def head(world, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.keys[role]}"}


def shown_ids(html: str) -> list[str]:
    import re

    return re.findall(r'<td class="stay"><a href="[^"]*">([^<]+)</a>', html)


def test_no_watch_list_is_a_503_saying_what_to_run(world, watch_world) -> None:
    settings, client = watch_world
    if (settings.data_dir / "reports" / LATEST).exists():
        pytest.skip("a watch list was written first in this module")
    answer = client.get("/watch", headers=head(world, "clinician"))
    assert answer.status_code == 503
    assert NO_WATCH in answer.text


def test_page_shows_the_latest_list_sorted_and_filtered(world, watch_world) -> None:
    settings, client = watch_world
    reports = settings.data_dir / "reports"
    older = watch_rows(world.cases, seed=1)
    write_watch(older, pd.Timestamp("2025-06-29"), None, reports)
    rows = watch_rows(world.cases)
    path = write_watch(rows, pd.Timestamp("2025-06-30"), None, reports)
    meta = json.loads((reports / LATEST).read_text(encoding="utf-8"))
    assert meta["file"] == str(path.resolve()) and meta["as_of"] == "2025-06-30"
    assert meta["stays"] == len(rows) and meta["overrun"] == (rows["warning_level"] == "overrun").sum()

    page = client.get("/watch?lang=en", headers=head(world, "clinician"))
    assert page.status_code == 200, page.text
    assert shown_ids(page.text) == rows["case_id"].tolist()  # ranked by expected overrun
    assert "Ward watch list" in page.text and "2025-06-30" in page.text
    assert rows["top_reasons"].iloc[0].split("; ")[0] in page.text
    assert f'href="/cases/{world.cases["case_id"].iloc[0]}?' in page.text  # a stay with a case page
    first = rows.loc[rows["case_id"] != world.cases["case_id"].iloc[0]].iloc[0]
    assert f'href="#stay-{first["rank"]}">{first["case_id"]}<' in page.text  # one without: its section
    assert f'id="stay-{first["rank"]}"' in page.text

    by_p = client.get("/watch?sort=overrun_probability&descending=true", headers=head(world, "admin"))
    expected = rows.sort_values("overrun_probability", ascending=False, kind="stable")["case_id"].tolist()
    assert shown_ids(by_p.text) == expected

    department = rows["department"].iloc[-1]
    one = client.get("/watch", params={"department": department}, headers=head(world, "clinician"))
    assert shown_ids(one.text) == rows.loc[rows["department"] == department, "case_id"].tolist()

    before = client.get("/watch?day=2025-06-29&lang=zh", headers=head(world, "clinician"))
    assert shown_ids(before.text) == older["case_id"].tolist()
    assert "在院预警" in before.text
    assert client.get("/watch?day=2020-01-01", headers=head(world, "clinician")).status_code == 404
    assert client.get("/watch?day=junk", headers=head(world, "clinician")).status_code == 422


def test_only_clinicians_and_admins_read_it(world, watch_world) -> None:
    _, client = watch_world
    anonymous = client.get("/watch", follow_redirects=False)
    assert anonymous.status_code in (303, 307) and anonymous.headers["location"].startswith(
        "/login?next=/watch"
    )
    for role in ("coder", "finance"):
        assert client.get("/watch", headers=head(world, role)).status_code == 403
