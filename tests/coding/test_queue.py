"""The review queue's order, compliance weighting, budget, reasons; and the CLI's errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from models.coding.model import ERROR_TYPES
from models.review_queue import QUEUE_COLUMNS, QueuePolicy, rank_queue, select_cases

MONEY_ONLY = QueuePolicy(error_value=0.0)


def scored(rows: list[dict]) -> pd.DataFrame:
    """Scored cases: each row names its p_<type> and <type>_money (0 elsewhere)."""
    out = []
    for i, row in enumerate(rows):
        item = {"case_id": f"c{i}", "department": row.get("department", "cardiology"), "coded_drg": "ES33"}
        item["error_probability"] = sum(row.get(f"p_{t}", 0.0) for t in ERROR_TYPES)
        for t in ERROR_TYPES:
            item[f"p_{t}"] = row.get(f"p_{t}", 0.0)
            item[f"{t}_money"] = row.get(f"{t}_money", 0.0)
            item[f"{t}_drg"] = "ES35" if item[f"{t}_money"] else None
            item[f"{t}_code"] = "E87.200" if item[f"{t}_money"] else None
        out.append(item | {k: v for k, v in row.items() if not k.startswith("p_") and "_money" not in k})
    return pd.DataFrame(out)


def test_queue_orders_by_expected_value():
    queue = rank_queue(
        scored(
            [
                {"p_missed_cc_mcc": 0.5, "missed_cc_mcc_money": -1_000.0},  # 500
                {"p_missed_cc_mcc": 0.1, "missed_cc_mcc_money": -20_000.0},  # 2,000
                {"p_missing_procedure": 0.9, "missing_procedure_money": -1_500.0},  # 1,350
            ]
        ),
        MONEY_ONLY,
    )
    assert list(queue.columns[: len(QUEUE_COLUMNS)]) == list(QUEUE_COLUMNS)
    assert queue["case_id"].tolist() == ["c1", "c2", "c0"]
    assert queue["rank"].tolist() == [1, 2, 3]
    assert queue["expected_value"].tolist() == pytest.approx([2_000.0, 1_350.0, 500.0])
    assert queue["whatif_payment_change"].tolist() == pytest.approx([20_000.0, 1_500.0, 1_000.0])


def test_upcoding_is_weighted_so_it_is_not_buried():
    rows = [
        {"p_missed_cc_mcc": 0.4, "missed_cc_mcc_money": -2_000.0},  # underpaid 800
        {"p_unsupported_cc_mcc": 0.4, "unsupported_cc_mcc_money": 1_000.0},  # overpaid 400 → 1,200 weighted
    ]
    queue = rank_queue(scored(rows), MONEY_ONLY)
    assert queue["case_id"].tolist() == ["c1", "c0"]
    assert queue["compliance_risk"].tolist() == [True, False]
    assert queue.loc[0, "error_type"] == "unsupported_cc_mcc"
    unweighted = rank_queue(scored(rows), QueuePolicy(compliance_weight=1.0, error_value=0.0))
    assert unweighted["case_id"].tolist() == ["c0", "c1"]


def test_lead_correction_sums_every_type_and_budget_cuts():
    rows = [
        {
            "p_unsupported_cc_mcc": 0.2,
            "unsupported_cc_mcc_money": 500.0,
            "p_missed_cc_mcc": 0.3,
            "missed_cc_mcc_money": -4_000.0,
        },
        {"p_wrong_principal": 0.9, "wrong_principal_money": 100.0},
        {},
    ]
    queue = rank_queue(scored(rows), budget=2)  # the default error value adds 3,000 × P(error)
    assert len(queue) == 2
    first = queue.iloc[0]
    assert first["case_id"] == "c0" and first["error_type"] == "missed_cc_mcc"
    assert first["expected_value"] == pytest.approx(0.2 * 500 * 3 + 0.3 * 4_000 + 3_000 * 0.5)
    assert first["whatif_drg"] == "ES35"


def test_reasons_in_words():
    rows = [
        {
            "p_unsupported_cc_mcc": 0.6,
            "unsupported_cc_mcc_money": 3_000.0,
            "mcc_short_stay": 1.0,
            "coder_prior_error_rate": 0.30,
        },
        {"p_missed_cc_mcc": 0.1, "missed_cc_mcc_money": -100.0, "coder_prior_error_rate": 0.05},
        {"p_missed_cc_mcc": 0.1, "missed_cc_mcc_money": -100.0, "coder_prior_error_rate": 0.05},
    ]
    reasons = rank_queue(scored(rows)).iloc[0]["reasons"]
    assert reasons[0] == "without secondary diagnosis E87.200 the case regroups ES33 → ES35, paid ¥3,000 less"
    assert "MCC coded on a stay under 2 days" in reasons
    assert any(r.startswith("coder's error rate in earlier audits is 30%") for r in reasons)


def test_select_cases_by_period_department_and_audit():
    cases = pd.DataFrame(
        {
            "discharge_date": pd.to_datetime(["2025-10-03", "2025-11-20", "2025-12-31", "2026-01-01"]),
            "department": ["a", "b", "a", "a"],
            "audited": pd.array([False, False, True, False], dtype="boolean"),
        }
    )
    assert select_cases(cases, "2025Q4").index.tolist() == [0, 1]
    assert select_cases(cases, "2025-11").index.tolist() == [1]
    assert select_cases(cases, "2025Q4", "a").index.tolist() == [0]
    with pytest.raises(ValueError, match="no unaudited case discharged in 2024Q1"):
        select_cases(cases, "2024Q1")
    with pytest.raises(ValueError, match="is not a period"):
        select_cases(cases, "last quarter")


def test_queue_cli_without_a_store_is_a_clear_error(settings):
    from cli.app import app

    result = CliRunner().invoke(app, ["queue", "coding", "--period", "2025Q4"])
    assert result.exit_code == 2
    assert "error:" in result.output and "Traceback" not in result.output


def test_overpayment_of_a_missed_cc_is_not_a_compliance_risk():
    # an outlier case can be paid less in the heavier DRG: money > 0, but nothing was upcoded
    queue = rank_queue(scored([{"p_missed_cc_mcc": 0.5, "missed_cc_mcc_money": 1_000.0}]), MONEY_ONLY)
    assert not queue.loc[0, "compliance_risk"]
    assert queue.loc[0, "expected_value"] == pytest.approx(500.0)


def test_error_value_keeps_likely_errors_above_speculative_money():
    rows = [
        {"p_unsupported_cc_mcc": 0.9},  # a likely error that moves no money
        {"p_missed_cc_mcc": 0.05, "missed_cc_mcc_money": -40_000.0},  # 2,000 expected
    ]
    assert rank_queue(scored(rows))["case_id"].tolist() == ["c0", "c1"]  # 2,700 + 0 against 2,000 + 150
    assert rank_queue(scored(rows), MONEY_ONLY)["case_id"].tolist() == ["c1", "c0"]


def test_coding_model_without_error_types_spreads_them_evenly():
    from models.coding.model import CodingModel

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=300)})
    labels = pd.DataFrame({"coding_error": (X["a"] + rng.normal(size=300) > 1).astype(float)})
    predicted = CodingModel({"n_estimators": 10, "verbose": -1}).fit(X, labels, X, labels).predict(X)
    parts = predicted[[f"p_{t}" for t in ERROR_TYPES]]
    assert np.allclose(parts.sum(axis=1), predicted["error_probability"])
    assert np.allclose(parts.std(axis=1), 0)


def test_a_case_with_nothing_to_point_at_still_gets_a_reason():
    queue = rank_queue(scored([{"p_wrong_principal": 0.4}]))
    assert queue.loc[0, "reasons"] == [
        "the model gives a 40% chance of a coding error, most likely wrong principal diagnosis"
    ]
