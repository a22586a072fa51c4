"""In-stay features at day d are built from what is known by the end of day d: later charges, later
coding and the stay's own discharge abstract cannot reach them, and a view declared at the in-stay
stage cannot even name a discharge field."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from contract.fields import COST_CATEGORIES
from features.instay import InstayFeatures, cut_columns, cut_stays, in_hospital, sample_cuts
from features.pipeline import CaseFeatures
from features.view import Columns, Feature, FeatureStageError, FeatureView
from pipelines.demo import DemoHospital, generate_demo


def _empty(cases: Columns, context: object) -> Columns:
    return {}


@pytest.fixture(scope="module")
def hospital() -> DemoHospital:
    return generate_demo(900, 1, 23)


@pytest.fixture(scope="module")
def cuts(hospital: DemoHospital) -> pd.DataFrame:
    long = hospital.cases[hospital.cases["los_days"] >= 4]
    return sample_cuts(long, np.random.default_rng(1)).head(200)


@pytest.fixture(scope="module")
def fitted(hospital: DemoHospital, cuts: pd.DataFrame) -> InstayFeatures:
    frame = cut_stays(hospital.inpatients, hospital.charges, cuts)
    return InstayFeatures(min_category_count=1).fit(frame, history=hospital.cases)


@pytest.mark.parametrize(
    "source", ["discharge_date", "total_cost", "cost_consumables", "principal_diagnosis", "los_days"]
)
def test_an_in_stay_view_cannot_read_a_discharge_field(source: str) -> None:
    with pytest.raises(FeatureStageError, match="only known at discharge"):
        FeatureView(
            "leak", "case", "in_stay", "x", (Feature("f", "f", "f", (source,)),), _empty, "as_of_date"
        )


@pytest.mark.parametrize("source", ["charges.cost_consumables", "working_diagnoses", "day_of_stay"])
def test_an_admission_view_cannot_read_the_stay_so_far(source: str) -> None:
    with pytest.raises(FeatureStageError, match="only known at in_stay"):
        FeatureView("early", "case", "admission", "x", (Feature("f", "f", "f", (source,)),), _empty)


def test_the_abstracts_charges_are_not_the_charges_to_date() -> None:
    ok = FeatureView(
        "ok",
        "case",
        "in_stay",
        "x",
        (Feature("f", "f", "f", ("charges.cost_consumables",)),),
        _empty,
        "as_of_date",
    )
    assert ok.stage == "in_stay"
    with pytest.raises(FeatureStageError, match="timed by 'discharge_date'"):
        FeatureView("late", "case", "in_stay", "x", (), _empty, "discharge_date")


def test_in_stay_views_stay_out_of_the_case_stages() -> None:
    for stage in ("admission", "discharge"):
        catalog = CaseFeatures(stage).catalog
        assert not set(catalog["stage"]) & {"in_stay"}
        assert "charges_to_date" not in set(catalog["feature"])
    catalog = InstayFeatures().catalog
    assert set(catalog["stage"]) == {"admission", "in_stay"} and catalog["feature"].is_unique


def test_charges_to_date_are_the_days_up_to_the_cut(hospital: DemoHospital, cuts: pd.DataFrame) -> None:
    frame = cut_stays(hospital.inpatients, hospital.charges, cuts)
    days = hospital.charges.merge(cuts, on="case_id")
    upto = days[days["charge_date"] <= days["as_of_date"]].groupby("case_id")[list(COST_CATEGORIES)].sum()
    got = frame.set_index("case_id")[[f"charges.{g}" for g in COST_CATEGORIES]]
    np.testing.assert_allclose(got.loc[upto.index].to_numpy(), upto.to_numpy(), atol=0.006)
    last = (
        days[days["charge_date"] == days["as_of_date"]]
        .set_index("case_id")[list(COST_CATEGORIES)]
        .sum(axis=1)
    )
    np.testing.assert_allclose(
        frame.set_index("case_id").loc[last.index, "charges_last_day"], last, atol=0.01
    )
    assert (frame["day_of_stay"] == (frame["as_of_date"] - frame["admission_date"]).dt.days + 1).all()
    assert not {"discharge_date", "total_cost", "principal_diagnosis"} & set(frame.columns)


def test_tables_given_as_columns_cut_pregroup_and_give_features_as_frames_do(
    hospital: DemoHospital, cuts: pd.DataFrame, fitted: InstayFeatures
) -> None:
    """A request's tables come as columns and stay columns through the cut and pre-grouping (no frame
    built around them): the same cut, pre-grouping and features as the store's frames, row for row
    (the frames' index aside)."""
    as_frames = fitted.pregroup(cut_stays(hospital.inpatients, hospital.charges, cuts))

    def columns(table: pd.DataFrame) -> dict[str, object]:
        return {name: table[name].array for name in table.columns}

    given = cut_columns(*(columns(t) for t in (hospital.inpatients, hospital.charges, cuts)))
    as_columns = fitted.pregroup(given)
    assert isinstance(as_columns, dict) and list(as_columns)[: len(given)] == list(given)  # no frame
    pd.testing.assert_frame_equal(pd.DataFrame(as_columns), as_frames.reset_index(drop=True), check_like=True)
    features = fitted.transform(as_columns)
    assert list(features.index) == list(range(len(cuts)))
    pd.testing.assert_frame_equal(
        features, fitted.transform(as_frames).reset_index(drop=True), check_like=True
    )


def test_features_at_day_d_ignore_everything_after_it(
    hospital: DemoHospital, cuts: pd.DataFrame, fitted: InstayFeatures
) -> None:
    frame = cut_stays(hospital.inpatients, hospital.charges, cuts)
    before = fitted.transform(frame, history=hospital.cases)

    cut_day = hospital.charges["case_id"].map(cuts.set_index("case_id")["as_of_date"])
    later = (hospital.charges["charge_date"] > cut_day).to_numpy()
    charges = hospital.charges.copy()
    charges.loc[later, list(COST_CATEGORIES)] *= 50  # a catastrophic rest of the stay
    records = hospital.inpatients.copy()
    record_day = records["case_id"].map(cuts.set_index("case_id")["as_of_date"])
    after = (records["recorded_date"] > record_day).to_numpy()
    records.loc[after, "working_diagnoses"] = "J96.000|R57.000|A41.900"
    records.loc[after, "procedures_so_far"] = "96.7201"
    history = hospital.cases.copy()
    # The cut stays' own abstracts, where no later stay of the patient reads them as history.
    last = history.groupby("patient_id")["admission_date"].transform("max") == history["admission_date"]
    own = history["case_id"].isin(cuts["case_id"]) & last
    history.loc[own, "total_cost"] *= 50
    history.loc[own, "discharge_date"] += pd.Timedelta(days=40)
    history.loc[own, "principal_diagnosis"] = "A41.900"
    history.loc[own, "discharge_disposition"] = 5
    assert later.any() and after.any() and own.sum() > 100

    changed = cut_stays(records, charges, cuts)
    pd.testing.assert_frame_equal(changed, frame)
    pd.testing.assert_frame_equal(fitted.transform(changed, history=history), before)


def test_the_watch_day_lists_stays_in_hospital(hospital: DemoHospital) -> None:
    last = hospital.cases["discharge_date"].max()
    found = in_hospital(hospital.inpatients, last, hospital.cases[["case_id", "discharge_date"]])
    assert set(found["case_id"]) == set(hospital.in_hospital["case_id"])
    earlier = last - pd.Timedelta(days=30)
    ids = set(
        in_hospital(hospital.inpatients, earlier, hospital.cases[["case_id", "discharge_date"]])["case_id"]
    )
    stays = hospital.cases.set_index("case_id")
    inside = stays[(stays["admission_date"] <= earlier) & (stays["discharge_date"] > earlier)]
    assert ids == set(inside.index)
