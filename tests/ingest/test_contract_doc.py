from __future__ import annotations

from contract.document import DOC_PATH, render_contract_doc
from contract.fields import FIELDS


def test_data_contract_doc_is_up_to_date() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == render_contract_doc(), (
        "docs/data-contract.md is stale: run `.venv/bin/python -m contract.document`"
    )


def test_doc_names_every_field_and_code_meaning() -> None:
    doc = render_contract_doc()
    assert all(f"`{f.name}`" in doc for f in FIELDS)
    for heading in (
        "admission_source",
        "admission_type",
        "sex",
        "insurance_type",
        "discharge_disposition",
        "audit_error_type",
    ):
        assert f"### `{heading}`" in doc
    assert "| 5 | 死亡 | died |" in doc
