"""``price_cases`` gives what it gave before it computed on NumPy arrays: every rule branch (short and
long stays, per diem, high/low outliers, by item, outside the DRG, readmission, point values given and
from budgets, the patient's share, cost-to-charge) under both shipped rule files and variants, one row
at a time as for the whole frame, and the same errors naming row and field."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from casemix.payment import PRICED_COLUMNS, price_cases
from contract.errors import InputError
from tests.casemix.pricing_cases import VARIANTS, expected, priced, variant_cases, weights


@pytest.mark.parametrize("name", list(VARIANTS))
def test_priced_as_the_stored_expectation(name: str) -> None:
    pd.testing.assert_frame_equal(priced(name), expected(name), check_exact=False, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("name", ["default", "rate_extras", "bare"])
def test_one_row_at_a_time_as_in_the_frame(name: str) -> None:
    """A one-row frame is priced by the same code as a million: each row alone gives its row of the
    whole frame (readmission looks across stays, so only stays it did not catch are compared)."""
    frame, rules = variant_cases(name), VARIANTS[name]()
    whole = expected(name)
    caught = whole["readmitted"].fillna(False).to_numpy(dtype=bool)
    alone = [
        price_cases(frame.loc[[label]], rules, weights())[list(PRICED_COLUMNS)]
        for label in frame.index[:150][~caught[:150]]
    ]
    together = pd.concat(alone)
    pd.testing.assert_frame_equal(
        together.drop(columns="readmitted"),
        whole.loc[together.index].drop(columns="readmitted"),
        check_exact=False,
        rtol=1e-12,
        atol=1e-9,
    )


def _set(column: str, label: int, value: object) -> Callable[[pd.DataFrame], None]:
    def mutate(frame: pd.DataFrame) -> None:
        frame[column] = frame[column].astype(object if value is None else frame[column].dtype)
        frame.loc[label, column] = value

    return mutate


ERRORS = [
    ("default", _set("discharge_date", 1003, pd.NaT), "row 1003: discharge_date is missing (1 rows)"),
    ("default", _set("los_days", 1007, None), "row 1007: los_days is missing (1 rows)"),
    ("default", _set("total_cost", 1011, -1.0), "row 1011: total_cost is missing or negative (1 rows)"),
    ("default", _set("insurance_type", 1400, None), "row 1400: insurance_type is missing (1 rows)"),
    (
        "default",
        _set("discharge_date", 1020, pd.Timestamp("2022-12-31")),
        "row 1020: discharge_date is before the first base rate (2023-01-01) (1 rows)",
    ),
    (
        "point_city",
        _set("discharge_date", 1021, pd.Timestamp("2026-01-02")),
        "row 1021: discharge_date falls in a year with no point value (1 rows)",
    ),
    (
        "default",
        _set("cost_negotiated_drugs", 1030, 1e9),
        "row 1030: cost_negotiated_drugs (paid outside the DRG) exceeds total_cost (1 rows)",
    ),
    (
        "point_city",
        _set("cost_new_technology", 1030, 1e9),
        "row 1030: cost_negotiated_drugs+cost_new_technology (paid outside the DRG) exceeds total_cost"
        " (1 rows)",
    ),
    (
        "default",
        _set("cost_self_funded", 1031, 1e9),
        "row 1031: cost_self_funded+cost_first_self_paid exceeds total_cost (1 rows)",
    ),
    (
        "default",
        lambda f: f.drop(columns=["los_days", "department"], inplace=True),
        "cannot price cases: missing columns ['department', 'los_days']",
    ),
    (
        "rate_extras",
        lambda f: f.drop(columns=["patient_id"], inplace=True),
        "cannot price cases: missing columns ['patient_id']",
    ),
]


@pytest.mark.parametrize(("name", "mutate", "message"), ERRORS)
def test_errors_name_the_row_and_field(
    name: str, mutate: Callable[[pd.DataFrame], None], message: str
) -> None:
    frame = variant_cases(name)
    mutate(frame)
    with pytest.raises(InputError) as raised:
        price_cases(frame, VARIANTS[name](), weights())
    assert str(raised.value) == message


def test_a_missing_average_cost_names_the_first_row_and_counts_them() -> None:
    frame = variant_cases("rate_extras")
    with pytest.raises(InputError) as raised:
        price_cases(frame, VARIANTS["rate_extras"](), weights().drop(columns="mean_cost"))
    by_drg = expected("rate_extras")["payment_method"].eq("rate")
    first = frame.index[np.flatnonzero(by_drg.to_numpy())[0]]
    assert str(raised.value) == (
        f"row {first}: standard_cost (the DRG's mean_cost in the weight table) is missing; "
        f"outliers.base = 'drg_mean_cost' needs it ({int(by_drg.sum())} rows)"
    )


@pytest.mark.parametrize("name", ["default", "point_extras"])
def test_stays_with_times_of_day_are_priced_alike(name: str) -> None:
    """Dates with a time of day (not whole days) are ordered for the readmission rule without packing
    them into days: an hour later on every date changes no gap, so nothing priced changes."""
    frame = variant_cases(name)
    for column in ("admission_date", "discharge_date"):
        frame[column] = frame[column] + pd.Timedelta(hours=1)
    got = price_cases(frame, VARIANTS[name](), weights())[list(PRICED_COLUMNS)]
    pd.testing.assert_frame_equal(got, expected(name), check_exact=False, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("unit", ["D", "h"])
def test_stays_are_ordered_as_lexsort_orders_them(unit: str) -> None:
    """The readmission rule's order (patient, admission, discharge, then position among equal stays)
    is ``np.lexsort``'s, packed or not; many stays share patient and dates here."""
    from casemix.payment import _sorted_stays

    rng = np.random.default_rng(7)
    key = rng.integers(0, 50, 5000)
    admitted = (
        np.datetime64("2024-01-01") + rng.integers(0, 20, 5000).astype(f"timedelta64[{unit}]")
    ).astype("datetime64[ns]")
    discharged = admitted + rng.integers(0, 5, 5000).astype("timedelta64[D]")
    admitted, discharged = admitted.view(np.int64), discharged.view(np.int64)
    expected_order = np.lexsort((discharged, admitted, key))
    np.testing.assert_array_equal(_sorted_stays(key, admitted, discharged), expected_order)


@pytest.mark.parametrize(
    "form",
    ["{:05d}", "{:05d}000", "P{:05d}", "HOSPITAL-A-{:08d}", "{:05d}-HOSPITAL-A", "{}"],
    ids=["digits", "sparse-digits", "prefix", "long-prefix", "long-suffix", "mixed-widths"],
)
@pytest.mark.parametrize("name", ["default", "rate_extras", "point_extras"])
def test_patient_ids_in_arrow_link_stays_as_python_text_does(name: str, form: str) -> None:
    """The readmission rule links stays by patient id however the ids are written and held: Arrow ids
    of one width are numbered from their bytes (short ones, or a shared prefix before the last 8 bytes:
    as a number when they are digits close together, else by sorting), other ids are factorised; the
    patients, and so the priced frame, are the same."""
    frame = variant_cases(name)
    number = frame["patient_id"].str[1:].astype(int)
    frame["patient_id"] = number.map(form.format).astype("string[pyarrow]")
    got = price_cases(frame, VARIANTS[name](), weights())[list(PRICED_COLUMNS)]
    pd.testing.assert_frame_equal(got, expected(name), check_exact=False, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize(
    "ids",
    [
        ["P001", "P002", "P001", None, "P003", None],
        ["A-0000000001", "A-0000000002", "A-0000000001", "B-0000000001"],
        ["x", "", "x", ""],
        ["", "", ""],
        ["0012", "7777", "0012", "9999"],
        ["31", "30", "29", "31", "29"],
    ],
)
def test_id_codes_number_ids_as_factorize_does(ids: list[str | None]) -> None:
    """Equal ids get equal codes and different ids different ones, under 4 × the ids (``np.bincount``
    counts them); a missing id is -1."""
    from casemix.payment import _id_codes

    codes = _id_codes(pd.Series(ids, dtype="string[pyarrow]"))
    reference = pd.factorize(pd.Series(ids, dtype=object))[0]
    np.testing.assert_array_equal(codes < 0, reference < 0)
    assert codes.max() < 4 * len(ids)
    for i, j in np.ndindex(len(ids), len(ids)):
        if reference[i] >= 0 and reference[j] >= 0:
            assert (codes[i] == codes[j]) == (reference[i] == reference[j])


def test_discharge_years_are_the_calendar_years() -> None:
    """The point value's year is the discharge's calendar year: a stay ending on 31 December late in
    the evening is in that year, on 1 January at midnight in the next, before 1970 too."""
    from casemix.payment import _years

    dates = pd.to_datetime(
        ["2023-12-31 23:59", "2024-01-01 00:00", "2026-06-30 00:00", "1969-12-31 00:00", "2024-02-29 12:00"]
    ).as_unit("ns")
    frame = pd.DataFrame({"discharge_date": dates})
    np.testing.assert_array_equal(_years(frame), dates.year.to_numpy())
    assert _years(frame.iloc[:0]).shape == (0,)


@pytest.mark.parametrize("hospitals", ["one", "three", "one-and-unknown"])
def test_hospital_ids_in_arrow_link_stays_as_python_text_does(hospitals: str) -> None:
    """A stay is linked to the same patient's next stay at the same hospital only: a file of one
    hospital (told from Arrow ids' bytes, not factorised) links across all of them, as Python text
    does; several hospitals, or an unknown one, are factorised."""
    frame, rules = variant_cases("rate_extras"), VARIANTS["rate_extras"]()
    if hospitals != "three":
        frame["hospital_id"] = "H1"
    if hospitals == "one-and-unknown":
        frame.loc[frame.index[::7], "hospital_id"] = None
    as_python = price_cases(frame, rules, weights())[list(PRICED_COLUMNS)]
    frame = frame.astype({"hospital_id": "string[pyarrow]", "patient_id": "string[pyarrow]"})
    got = price_cases(frame, rules, weights())[list(PRICED_COLUMNS)]
    pd.testing.assert_frame_equal(got, as_python, check_exact=True)
    if hospitals == "one":  # (more stays are linked across what were three hospitals)
        assert got["readmitted"].sum() > expected("rate_extras")["readmitted"].sum()
