"""Security headers on every answer, docs served from local assets under a strict CSP, and the
OpenAPI spec naming how to authenticate."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.slow


def assert_protected(answer) -> None:
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["cache-control"] == "no-store"
    assert "server" not in answer.headers


def test_v1_answers_and_patient_pages_are_never_cached(client, world, auth, admission_body):
    case_id = world.cases["case_id"].iloc[0]
    answers = [
        client.post("/v1/predict/cost", json=admission_body(), headers=auth("finance")),
        client.post("/v1/predict/cost", json=admission_body()),  # 401
        client.post("/v1/predict/cost", json={"case": "nonsense"}, headers=auth("finance")),  # 422
        client.get("/v1/review/queue", headers=auth("coder")),
        client.get(f"/cases/{case_id}", headers=auth("clinician")),
        client.get("/queue", headers=auth("coder")),
        client.get("/login"),
    ]
    assert [a.status_code for a in answers] == [200, 401, 422, 200, 200, 200, 200]
    for answer in answers:
        assert_protected(answer)


def test_docs_load_every_asset_from_this_server(client):
    for page, marker in (("/docs", "SwaggerUIBundle"), ("/redoc", "<redoc")):
        answer = client.get(page)
        assert answer.status_code == 200 and marker in answer.text
        assert "fonts.googleapis" not in answer.text
        urls = re.findall(r'(?:src|href)="([^"]+)"', answer.text)
        assert urls and all(url.startswith("/static/docs/") for url in urls), urls
        for url in urls:
            asset = client.get(url)
            assert asset.status_code == 200 and len(asset.content) > 1000, url
            assert "no-store" not in asset.headers.get("cache-control", "")
        assert_protected(answer)


def test_the_docs_page_allows_exactly_its_own_inline_script(client):
    answer = client.get("/docs")
    policy = answer.headers["content-security-policy"]
    inline = re.findall(r"<script>(.*?)</script>", answer.text, flags=re.DOTALL)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert f"script-src 'self' 'sha256-{digest}';" in policy
    assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";")[0]


def test_the_openapi_spec_declares_the_api_key_schemes(client):
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"}.items() <= schemes["HTTPBearer"].items()
    assert {"type": "apiKey", "in": "header", "name": "X-API-Key"}.items() <= schemes["APIKeyHeader"].items()
    operation = spec["paths"]["/v1/predict/cost"]["post"]
    assert {"HTTPBearer": []} in operation["security"] and {"APIKeyHeader": []} in operation["security"]
    assert "security" not in spec["paths"]["/healthz"]["get"]


def test_docs_can_be_turned_off(make_app):
    with TestClient(make_app(docs=False)) as quiet:
        for path in ("/docs", "/redoc", "/openapi.json", "/static/docs/swagger-ui-bundle.js"):
            assert quiet.get(path).status_code == 404, path
