"""The ``coding_audit`` view is declared like every other view: registered, stage-checked, catalogued."""

from __future__ import annotations

from dataclasses import replace

import pytest

from features.catalog import VIEWS
from features.pipeline import CaseFeatures
from features.view import Feature, FeatureStageError
from models.coding.features import CODING_AUDIT, CodingFeatures


def test_coding_audit_is_a_registered_discharge_view_timed_by_the_discharge() -> None:
    view = VIEWS["coding_audit"]
    assert view is CODING_AUDIT
    assert (view.entity, view.stage, view.timestamp) == ("case", "discharge", "discharge_date")
    history = [f for f in view.features if "_prior_" in f.name]
    assert len(history) == 4 and all(f.prior_sources == ("audit_date", "audit_error") for f in history)
    # Registered for the checks, but only the coding model's transformer joins it.
    assert "coding_audit" not in {v.name for v in VIEWS.at("discharge")}
    assert not set(view.names) & set(CaseFeatures("discharge").catalog["feature"])


def test_the_leakage_check_refuses_a_late_field_on_the_coding_audit_view() -> None:
    found_error = Feature("audit_found_error", "审核发现错误", "the audit found an error", ("audit_error",))
    with pytest.raises(FeatureStageError, match=r"audit_found_error.*coding_audit.*audit_error.*audit"):
        replace(CODING_AUDIT, features=(*CODING_AUDIT.features, found_error))
    with pytest.raises(FeatureStageError, match=r"coding_audit.*timed by 'audit_date'"):
        replace(CODING_AUDIT, timestamp="audit_date")
    with pytest.raises(ValueError, match="coding_audit"):
        VIEWS.register(CODING_AUDIT)


def test_the_coding_catalog_lists_the_registered_declaration(demo_hospital) -> None:
    features = CodingFeatures().fit(demo_hospital.cases.head(300))
    catalog = features.catalog
    audit = catalog[catalog["view"] == "coding_audit"]
    assert audit["feature"].tolist() == CODING_AUDIT.names
    assert set(audit["stage"]) == {"discharge"} and catalog["feature"].is_unique
    row = audit.set_index("feature").loc["coder_prior_error_rate"]
    assert (row["sources"], row["prior_sources"]) == ("coder_id", "audit_date, audit_error")
