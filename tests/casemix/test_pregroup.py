"""Pre-grouping groups a stay's partial record (coded so far) and prices its DRG under the rules in
force on the day."""

from __future__ import annotations

import pandas as pd
import pytest

from casemix.payment import PaymentRules
from casemix.pregroup import Pregrouper
from contract.errors import InputError


@pytest.fixture(scope="module")
def pregrouper() -> Pregrouper:
    return Pregrouper.for_rules(PaymentRules.load())


def _records(rows: list[tuple[str | None, str | None, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sex": 1,
            "age_years": 70,
            "age_days": None,
            "birth_weight_g": None,
            "admission_diagnosis": "J18.900",
            "working_diagnoses": [r[0] for r in rows],
            "procedures_so_far": [r[1] for r in rows],
            "as_of_date": pd.to_datetime([r[2] for r in rows]),
            "department": "respiratory",
        },
        index=[10 + i for i in range(len(rows))],
    )


def test_partial_records_group_on_what_is_coded_so_far(pregrouper: Pregrouper) -> None:
    records = _records(
        [
            (None, None, "2024-03-01"),  # nothing coded yet: the admission diagnosis
            ("J18.900", None, "2024-03-02"),
            ("J18.900|J96.000", None, "2024-03-04"),  # respiratory failure coded: the MCC split
            ("S72.000", None, "2024-03-04"),
            ("S72.000", "79.3500", "2024-03-05"),  # the operation done: no longer the medical group
        ]
    )
    found = pregrouper.pregroup(records)
    assert list(found.index) == list(records.index)
    assert found["pregroup_drg"].tolist()[:3] == ["ES35", "ES35", "ES31"]
    assert found.loc[12, "payment_standard"] > found.loc[11, "payment_standard"]
    assert found.loc[13, "pregroup_adrg"] == "IR2" and found.loc[14, "pregroup_adrg"] != "IR2"
    assert (found["pregroup_status"] == "grouped").all()


def test_standard_is_rw_times_the_base_rate_in_force_on_the_day(pregrouper: Pregrouper) -> None:
    found = pregrouper.pregroup(_records([("J18.900", None, "2024-12-31"), ("J18.900", None, "2025-01-01")]))
    rates = {r.effective_from.year: r.yuan for r in PaymentRules.load().base_rates}
    rw = found["pregroup_rw"].to_numpy()
    assert found["payment_standard"].tolist() == pytest.approx([rw[0] * rates[2023], rw[1] * rates[2025]])
    # a day before the rules' first rate is priced at the first rate
    early = pregrouper.pregroup(_records([("J18.900", None, "2022-12-20")]))
    assert early["payment_standard"].iloc[0] == pytest.approx(rw[0] * rates[2023])


def test_missing_columns_and_missing_weights_are_input_errors(pregrouper: Pregrouper) -> None:
    with pytest.raises(InputError, match="working_diagnoses"):
        pregrouper.pregroup(_records([("J18.900", None, "2024-03-01")]).drop(columns="working_diagnoses"))
    rules = PaymentRules.load().model_copy(
        update={"calibration": PaymentRules.load().calibration.model_copy(update={"rw_table": None})}
    )
    with pytest.raises(InputError, match="RW table"):
        Pregrouper.for_rules(rules)
