"""The run-backed endpoints attacked: the surplus forecast, loss risk, cost drivers, in-stay prediction
and the ward watch list, in ``runs_world`` where each has its run or champion (so they answer, not 503).

Other roles, no key, a wrong key, a revoked key and a login session where only header keys count;
poisoned, malformed and oversized bodies and query parameters (each a 4xx naming the field, never a
500); stored-history reads audited and budgeted as on the other prediction endpoints; no patient
identifier in any log line; and a burst of parallel in-stay requests, good and bad mixed, answered
exactly as the same requests one at a time.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.roles import ROLES
from serving.security import add_key, revoke_key
from tests.serving.logins import log_in
from tests.serving.servers import logged_server, serve_logged

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("runs_world")]  # one worker builds runs_world

FINANCE = ("finance", "admin")
WARD = ("clinician", "admin")
# (method, path, roles allowed): the README's table; a body for the POSTs comes from ``body_for``.
ENDPOINTS = [
    ("GET", "/v1/forecast/surplus", FINANCE),
    ("GET", "/v1/forecast/surplus/chart", FINANCE),
    ("GET", "/v1/forecast/loss-risk", FINANCE),
    ("GET", "/v1/forecast/loss-risk/chart", FINANCE),
    ("GET", "/v1/casemix/drivers", FINANCE),
    ("GET", "/v1/casemix/drivers/chart/1", FINANCE),
    ("POST", "/v1/predict/in-stay", WARD),
    ("POST", "/v1/predict/in-stay/batch", WARD),
]
PAGES = [
    ("/forecast", FINANCE),
    ("/forecast/charts/loss-risk.png", FINANCE),
    ("/drivers", FINANCE),
    ("/drivers/chart/1", FINANCE),
    ("/watch", WARD),
]
SECRETS = {"case_id": "C-SECRET-789", "patient_id": "P-SECRET-321"}
FUZZ = settings(deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def pointed(runs_world: Any) -> Iterator[Any]:
    """``runs_world`` with MLflow's environment pointing at its store for the module's requests."""
    with pytest.MonkeyPatch.context() as patch:
        runs_world.pointed(patch)
        yield runs_world


@pytest.fixture(scope="module")
def runs(pointed: Any, make_runs_app: Any) -> Iterator[TestClient]:
    """A client of the runs' service that checks the key file on every request (revocations at once)."""
    with TestClient(make_runs_app(keys_check_seconds=0), follow_redirects=False) as client:
        yield client


def head(world: Any, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.keys[role]}"}


def body_for(path: str, world: Any) -> dict[str, Any] | None:
    if path.endswith("/in-stay"):
        return world.stay(0)
    if path.endswith("/in-stay/batch"):
        return {"stays": [world.stay(0), world.stay(1)]}
    return None


def ask(client: Any, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    return client.request(method, path, json=body, headers=headers)


def audit_entries(world: Any) -> list[dict[str, Any]]:
    path = world.settings.data_dir / "audit.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def locs(answer: Any) -> list[list[Any]]:
    detail = answer.json()["detail"]
    assert isinstance(detail, list), detail  # the documented 422: a list of loc/msg/type
    return [problem["loc"] for problem in detail]


# --- who may ask ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "allowed"), ENDPOINTS)
def test_each_role_is_answered_or_refused_as_the_table_says(runs, pointed, world, method, path, allowed):
    body = body_for(path, pointed)
    for role in ROLES:
        answer = ask(runs, method, path, body, head(world, role))
        if role in allowed:
            assert answer.status_code == 200, (role, answer.text)
        else:
            assert answer.status_code == 403, (role, answer.text)
            assert "may not use this endpoint" in answer.json()["detail"]
    template = path.replace("/chart/1", "/chart/{rank}")  # the audit log names routes by their template
    refused = [e for e in audit_entries(pointed) if e["endpoint"] == template and e["outcome"] == "forbidden"]
    assert {e["role"] for e in refused} >= set(ROLES) - set(allowed)


@pytest.mark.parametrize(("method", "path", "allowed"), ENDPOINTS)
def test_no_key_a_wrong_key_and_a_revoked_key_are_401(runs, pointed, world, method, path, allowed):
    body = body_for(path, pointed)
    key_id = "runs-revoked-" + path.strip("/").replace("/", "-")
    key = add_key(world.keys_path, key_id, "admin")
    assert ask(runs, method, path, body, {"X-API-Key": key}).status_code == 200
    revoke_key(world.keys_path, key_id)
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"X-API-Key": world.keys["admin"] + "x"},
        {"Authorization": f"Bearer {key}"},
        {"X-API-Key": key},
        {"Authorization": f"Basic {world.keys['admin']}"},
    ):
        answer = ask(runs, method, path, body, headers)
        assert answer.status_code == 401, (headers, answer.text)
        assert answer.headers["www-authenticate"] == "Bearer"


def test_sessions_open_the_pages_of_their_role_only_and_never_v1(pointed, make_runs_app, world):
    """A login session is a credential for the pages its role may read; /v1 wants a header key even
    from a logged-in admin; revoking the key ends the session at its next request."""
    key = add_key(world.keys_path, "runs-session-revoked", "finance")
    with TestClient(make_runs_app(keys_check_seconds=0), follow_redirects=False) as person:
        for role in ROLES:
            person.cookies.clear()
            assert log_in(person, world.keys[role]).status_code == 303
            for page, allowed in PAGES:
                assert person.get(page).status_code == (200 if role in allowed else 403), (role, page)
            for method, path, _ in ENDPOINTS:
                answer = ask(person, method, path, body_for(path, pointed), {"Origin": "http://testserver"})
                assert answer.status_code == 401, (role, path)
        person.cookies.clear()
        assert log_in(person, key, "/forecast").status_code == 303
        assert person.get("/forecast").status_code == 200
        revoke_key(world.keys_path, "runs-session-revoked")
        for page, _ in PAGES:
            answer = person.get(page)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login"), page


# --- malformed, poisoned and oversized ----------------------------------------------------------


def test_a_horizon_beyond_the_run_is_the_documented_422_naming_it(runs, world):
    answer = runs.get("/v1/forecast/surplus", params={"horizon": 5}, headers=head(world, "finance"))
    assert answer.status_code == 422
    assert locs(answer) == [["query", "horizon"]] and "exceeds the latest run's 2" in answer.text
    risk = runs.get("/v1/forecast/loss-risk", params={"horizon": 3}, headers=head(world, "finance"))
    assert risk.status_code == 422 and locs(risk) == [["query", "horizon"]]


QUERY_ENDPOINTS = {
    "/v1/forecast/surplus": ("level", "horizon"),
    "/v1/forecast/surplus/chart": ("level",),
    "/v1/forecast/loss-risk": ("horizon", "top", "department"),
    "/v1/casemix/drivers": ("drg", "department", "top", "lang"),
}
# The pages are not in the OpenAPI spec, so the spec's fuzzer never reaches them.
PAGE_QUERIES = {
    "/forecast": ("level", "horizon", "lang"),
    "/drivers": ("drg", "department", "top", "lang"),
    "/watch": ("department", "day", "sort", "descending", "lang"),
    "/queue": ("department", "error_type", "sort", "descending", "lang"),
    "/cases": ("case_id", "lang"),
}
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)  # httpx cannot send a lone surrogate
VALUE = st.one_of(
    TEXT,
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["hospital", "drg", "1", "2", "0", "-1", "50", "1e3", "' OR 1=1 --", "../../etc", "%00"]),
)


@pytest.mark.parametrize("path", list(QUERY_ENDPOINTS))
def test_any_query_is_answered_and_a_422_names_a_parameter_sent(runs, world, path):
    names = QUERY_ENDPOINTS[path]

    @given(params=st.dictionaries(st.sampled_from(names), VALUE, max_size=len(names)))
    @settings(FUZZ, max_examples=40)
    def answered(params: dict[str, str]) -> None:
        answer = runs.get(path, params=params, headers=head(world, "finance"))
        assert answer.status_code in (200, 422), (params, answer.text)
        if answer.status_code == 422:
            for loc in locs(answer):
                assert loc[0] == "query" and loc[1] in params, (params, loc)

    answered()


@pytest.mark.parametrize("path", list(PAGE_QUERIES))
def test_any_page_query_is_answered_never_a_500(runs, world, path):
    names = PAGE_QUERIES[path]

    @given(params=st.dictionaries(st.sampled_from(names), VALUE, max_size=len(names)))
    @settings(FUZZ, max_examples=30)
    def answered(params: dict[str, str]) -> None:
        answer = runs.get(path, params=params, headers=head(world, "admin"))
        assert answer.status_code in (200, 303, 404, 422), (params, answer.text[:300])

    answered()


@pytest.mark.parametrize(
    "prefix", ["/drivers/chart/", "/forecast/charts/", "/cases/", "/v1/casemix/drivers/chart/"]
)
def test_any_path_parameter_is_answered_never_a_500(runs, world, prefix):
    @given(
        tail=TEXT.filter(
            lambda t: t not in ("", ".", "..") and "/" not in t and "?" not in t and "#" not in t
        )
    )
    @settings(FUZZ, max_examples=30)
    def answered(tail: str) -> None:
        answer = runs.get(prefix + quote(tail, safe=""), headers=head(world, "admin"))
        assert answer.status_code in (200, 404, 422), (tail, answer.text[:300])

    answered()


def raw_instay(runs_world: Any) -> str:
    return json.dumps(runs_world.stay(0))


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        (lambda b: b["charges"][0].update(cost_treatment=float("nan")), None),
        (lambda b: b["charges"][0].update(cost_treatment=float("inf")), None),
        (lambda b: b["charges"][0].update(cost_treatment=1e308), ["body", "charges", 0, "cost_treatment"]),
        (lambda b: b["charges"][0].update(charge_date="2025-02-30"), ["body", "charges", 0, "charge_date"]),
        (lambda b: b["record"].update(department="ward\u00007"), ["body", "record", "department"]),
        (lambda b: b["record"].update(department="x" * 100_000), ["body", "record", "department"]),
        (lambda b: b["record"].update(age_years=10**40), ["body", "record", "age_years"]),
        (lambda b: b["record"].update(working_diagnoses=["I10"]), ["body", "record", "working_diagnoses"]),
        (lambda b: b["record"].update(case_id=None), ["body", "record", "case_id"]),
        (lambda b: b.update(charges={"charge_date": "2025-01-01"}), ["body", "charges"]),
        (lambda b: b.update(record=[b["record"]]), ["body", "record"]),
        (lambda b: b.update(charges=[{"charge_date": "2025-01-01"}] * 3651), ["body", "charges"]),
        (lambda b: b.update(as_of_date="2999-01-01"), ["body", "as_of_date"]),
        (lambda b: b.update(history=[]), ["body", "history"]),
    ],
)
def test_poisoned_stays_are_422_naming_the_field(runs, pointed, world, change, loc):
    body = pointed.stay(0)
    change(body)
    raw = json.dumps(body, allow_nan=True)
    headers = {**head(world, "clinician"), "Content-Type": "application/json"}
    answer = runs.post("/v1/predict/in-stay", content=raw, headers=headers)
    assert answer.status_code == 422, answer.text
    found = locs(answer)
    if loc is not None:
        assert loc in found, found
    else:
        assert ["body", "charges", 0, "cost_treatment"] in found or "cost_treatment" in answer.text


def test_a_stay_beyond_3650_days_is_refused_like_any_other_stay(runs, pointed, world):
    """The service refuses stays over 3,650 days at the edge; a stay in hospital since 1990 is one."""
    body = pointed.stay(0)
    body["record"]["admission_date"] = "1990-01-01"
    body["charges"] = []
    answer = runs.post("/v1/predict/in-stay", json=body, headers=head(world, "clinician"))
    assert answer.status_code == 422, answer.text
    assert ["body", "stays", 0, "as_of_date"] in locs(answer)


def test_a_charge_day_sent_twice_is_refused_not_added_up(runs, pointed, world):
    """The store keeps one row per stay and day (a day sent again replaces it): the endpoint must not
    score the stay on twice its cost."""
    body = pointed.stay(0)
    body["charges"].append(dict(body["charges"][0]))
    answer = runs.post("/v1/predict/in-stay", json=body, headers=head(world, "clinician"))
    assert answer.status_code == 422, answer.text
    assert ["body", "stays", 0, "charges", len(body["charges"]) - 1, "charge_date"] in locs(answer)


def test_a_stay_without_its_patient_is_422_naming_the_field(runs, pointed, world):
    body = pointed.stay(0)
    body["record"].pop("patient_id")
    answer = runs.post("/v1/predict/in-stay", json=body, headers=head(world, "clinician"))
    assert answer.status_code == 422, answer.text
    assert ["body", "record", "patient_id"] in locs(answer)
    batch = runs.post(
        "/v1/predict/in-stay/batch", json={"stays": [pointed.stay(1), body]}, headers=head(world, "admin")
    )
    assert batch.status_code == 422 and ["body", "stays", 1, "record", "patient_id"] in locs(batch)


def test_oversized_and_undecodable_bodies(runs, pointed, world):
    headers = {**head(world, "clinician"), "Content-Type": "application/json"}
    stay = pointed.stay(0)
    big = {"stays": [{**stay, "record": {**stay["record"], "case_id": f"C{i}"}} for i in range(51)]}
    assert runs.post("/v1/predict/in-stay/batch", json=big, headers=headers).status_code == 413
    padded = raw_instay(pointed)[:-1] + ', "pad": "' + "x" * 1_100_000 + '"}'  # over max_body_mb 1.0
    assert runs.post("/v1/predict/in-stay", content=padded, headers=headers).status_code == 413
    latin = raw_instay(pointed).replace('"oncology"', '"onc\u00e9"').encode("latin-1", "replace")
    assert runs.post("/v1/predict/in-stay", content=latin, headers=headers).status_code in (400, 422)
    deep = '{"record": ' + "[" * 5000 + "]" * 5000 + "}"
    answer = runs.post("/v1/predict/in-stay", content=deep, headers=headers)
    assert answer.status_code in (400, 422), answer.text
    empty = runs.post("/v1/predict/in-stay/batch", json={"stays": []}, headers=headers)
    assert empty.status_code == 422 and ["body", "stays"] in locs(empty)
    for path, name in (("/v1/forecast/loss-risk", "department"), ("/v1/casemix/drivers", "department")):
        long = runs.get(path, params={name: "x" * 10_000}, headers=head(world, "finance"))
        assert long.status_code == 422 and locs(long) == [["query", name]]


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON value, as a tuple of keys and indexes."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value[:2]):
            found += paths(item, (*prefix, i))
    return found


def test_any_value_anywhere_in_a_stay_is_answered_and_never_a_500(runs, pointed, world):
    """A good stay with one place (a field, a charge, the record, the whole body) replaced by any JSON:
    200, or a 422 whose every problem names a place below the body."""
    good = pointed.stay(0)
    places = [p for p in paths(good) if p]

    @given(place=st.sampled_from(places), value=JSON)
    @settings(FUZZ, max_examples=120)
    def answered(place: tuple, value: Any) -> None:
        body = copy.deepcopy(good)
        target = body
        for step in place[:-1]:
            target = target[step]
        target[place[-1]] = value
        answer = runs.post("/v1/predict/in-stay", json=body, headers=head(world, "clinician"))
        assert answer.status_code in (200, 422), (place, value, answer.text)
        if answer.status_code == 422:
            assert all(len(loc) >= 2 for loc in locs(answer)), (place, value, answer.text)

    answered()


# --- stored history: audited and budgeted ---------------------------------------------------------


def test_in_stay_history_reads_are_audited_and_budgeted(pointed, make_runs_app, world):
    """Each in-stay request reads its patient's stored stays: the audit log names the patients, and a
    key over its look-up budget is refused (429) before anything is read, as on the other predictions."""
    stays = [pointed.stay(i) for i in range(3)]
    patients = [s["record"]["patient_id"] for s in stays]
    with TestClient(make_runs_app(history_lookups_per_minute=2)) as client:
        for stay in stays[:2]:
            assert (
                client.post("/v1/predict/in-stay", json=stay, headers=head(world, "clinician")).status_code
                == 200
            )
        refused = client.post("/v1/predict/in-stay", json=stays[2], headers=head(world, "clinician"))
        assert refused.status_code == 429 and "Retry-After" in refused.headers
    entries = [e for e in audit_entries(pointed) if e["endpoint"] == "/v1/predict/in-stay"][-3:]
    assert [e.get("history_patient_ids") for e in entries] == [[p] for p in patients]
    assert [e["outcome"] for e in entries] == ["allowed", "allowed", "refused: history look-up budget"]
    assert [e["case_ids"] for e in entries] == [[s["record"]["case_id"]] for s in stays]


# --- logs and load, over a real server ----------------------------------------------------------


@pytest.fixture(scope="module")
def server(pointed: Any, make_runs_app: Any) -> Iterator[tuple[str, Any]]:
    yield from serve_logged(make_runs_app())


def secret_stay(runs_world: Any, row: int) -> dict[str, Any]:
    body = runs_world.stay(row)
    body["record"].update(case_id=f"{SECRETS['case_id']}-{row}", patient_id=f"{SECRETS['patient_id']}-{row}")
    return body


def test_no_patient_identifier_reaches_a_log(server, pointed, world):
    url, log = server
    headers = {**head(world, "admin"), "Content-Type": "application/json"}
    good, bad = secret_stay(pointed, 0), secret_stay(pointed, 1)
    bad["charges"][0]["cost_treatment"] = float("nan")
    twice = secret_stay(pointed, 2)
    twice["charges"].append(dict(twice["charges"][0]))
    with httpx.Client(base_url=url, timeout=60) as http:
        assert http.post("/v1/predict/in-stay", json=good, headers=headers).status_code == 200
        for body in (bad, twice, {"stays": [good, good]}):
            path = "/v1/predict/in-stay/batch" if "stays" in body else "/v1/predict/in-stay"
            raw = json.dumps(body, allow_nan=True)
            assert http.post(path, content=raw, headers=headers).status_code == 422
        nobody = {**good, "record": {k: v for k, v in good["record"].items() if k != "patient_id"}}
        assert http.post("/v1/predict/in-stay", json=nobody, headers=headers).status_code == 422
        assert http.post("/v1/predict/in-stay", json=good, headers=head(world, "coder")).status_code == 403
        for path in ("/v1/forecast/loss-risk", "/v1/casemix/drivers"):
            params = {"department": SECRETS["patient_id"]}
            assert http.get(path, params=params, headers=headers).status_code == 200
        assert (
            http.get("/watch", params={"department": SECRETS["case_id"]}, headers=headers).status_code == 200
        )
    written = log.getvalue()
    assert "POST /v1/predict/in-stay" in written  # the log was captured...
    assert "SECRET" not in written  # ...and holds no patient's or case's identifier
    for stay in (pointed.stay(0), pointed.stay(1)):
        assert stay["record"]["case_id"] not in written and stay["record"]["patient_id"] not in written


def test_a_burst_of_good_and_bad_in_stay_requests_is_answered_as_one_at_a_time(pointed, make_runs_app, world):
    """A service just started (its in-stay model not loaded yet) takes a burst from 16 clients: good
    stays, poisoned stays, batches with a poisoned stay among good ones, other roles and no key. Every
    request is answered, none with a 500, each exactly as the same request sent alone afterwards."""
    clinician = {**head(world, "clinician"), "Content-Type": "application/json"}
    coder = {**head(world, "coder"), "Content-Type": "application/json"}
    requests: list[tuple[str, str, dict[str, str]]] = []
    for row in range(12):
        stay = pointed.stay(row)
        requests.append(("/v1/predict/in-stay", json.dumps(stay), clinician))
        poisoned = copy.deepcopy(stay)
        poisoned["charges"][-1]["cost_drugs_western"] = 1  # no such charge group
        requests.append(("/v1/predict/in-stay", json.dumps(poisoned), clinician))
        if row % 3 == 0:
            rows = [pointed.stay(r) for r in range(row, row + 3)]
            requests.append(("/v1/predict/in-stay/batch", json.dumps({"stays": rows}), clinician))
            rows[1]["charges"][0]["cost_blood"] = float("nan")
            requests.append(
                ("/v1/predict/in-stay/batch", json.dumps({"stays": rows}, allow_nan=True), clinician)
            )
            requests.append(
                ("/v1/predict/in-stay", json.dumps(stay).replace('"record"', '"recrod"'), clinician)
            )
            requests.append(("/v1/predict/in-stay", json.dumps(stay), coder))
            requests.append(("/v1/predict/in-stay", json.dumps(stay), {"Content-Type": "application/json"}))

    def send(http: httpx.Client, request: tuple[str, str, dict[str, str]]) -> tuple[int, Any]:
        answer = http.post(request[0], content=request[1], headers=request[2])
        return answer.status_code, answer.json()

    with logged_server(make_runs_app()) as (url, _), httpx.Client(base_url=url, timeout=180) as http:
        with ThreadPoolExecutor(16) as pool:
            together = list(pool.map(lambda r: send(http, r), requests * 2))
        alone = [send(http, r) for r in requests]
    assert sorted({status for status, _ in alone}) == [200, 401, 403, 422]
    assert together == alone * 2
