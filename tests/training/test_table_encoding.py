"""Code-aware encoding of a table's text columns and its choice on the validation period."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from models.encoders import ColumnEncoder, code_kind, rollups
from models.table import TableFeatures, choose_strategy, table_params


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["I21.000x001", "E11.900", "J18", "K35.800"], "icd10"),
        (["250.01", "428", "V45.81", "E880.1", "414.0"], "icd9"),
        (["36.1000x001", "81.51", "45", "47.09"], "icd9cm3"),
        (["内科", "外科", "骨科"], "text"),
        (["payer-01", "payer-02"], "text"),
    ],
)
def test_code_columns_are_recognised(values: list[str], kind: str) -> None:
    assert code_kind(pd.Series(values * 3 + [None])) == kind


def test_rollups_follow_the_code_systems() -> None:
    icd9 = pd.DataFrame(rollups(pd.Series(["250.01", "428", "V45.81", None]), "icd9"))
    assert icd9["category"].tolist()[:3] == ["250", "428", "V45"]
    assert icd9["chapter"].tolist()[:3] == ["3", "7", "V"]
    icd10 = pd.DataFrame(rollups(pd.Series(["I21.000x001", "e11.900", "J18.900"]), "icd10"))
    assert icd10["category"].tolist() == ["I21", "E11", "J18"]
    assert icd10["chapter"].tolist() == ["IX", "IV", "X"]
    assert icd10["charlson"].tolist() == [1.0, 1.0, 0.0]  # myocardial infarction, diabetes, pneumonia
    procedures = pd.DataFrame(rollups(pd.Series(["36.1000x001", "81.51"]), "icd9cm3"))
    assert procedures["chapter"].tolist() == ["7", "14"]


def test_unseen_and_rare_levels_are_encoded_alike() -> None:
    train = pd.Series(["a"] * 50 + ["b"] * 40 + ["rare"] * 2)
    y = pd.Series(np.r_[np.ones(25), np.zeros(25), np.ones(10), np.zeros(30), [1, 1]])
    encoder = ColumnEncoder("x", "text", ("categorical", "frequency", "target"), min_count=10)
    encoder.fit_transform(train, y)
    out = encoder.transform(pd.Series(["a", "rare", "never seen", None]))
    assert out["x"].astype(object).tolist()[:3] == ["a", "other", "other"] and pd.isna(out["x"].iloc[3])
    assert out["x__frequency"].tolist()[:3] == pytest.approx([50 / 92, 2 / 92, 0.0])
    assert np.isnan(out["x__frequency"].iloc[3])
    unseen = out["x__target"].iloc[2]
    assert abs(unseen - y.mean()) < 1e-9  # shrunk all the way to the overall rate


def test_target_encoding_of_training_rows_is_out_of_fold() -> None:
    """Two rows per level and a label that is pure noise: in-sample means would rank it perfectly."""
    rng = np.random.default_rng(0)
    levels = np.repeat(np.arange(1500), 2)
    y = pd.Series(rng.integers(0, 2, len(levels)))
    encoder = ColumnEncoder("x", "text", ("target",))
    oof = encoder.fit_transform(pd.Series(levels.astype(str)), y)["x__target"]
    in_sample = y.groupby(levels).transform("mean")
    assert roc_auc_score(y, in_sample) > 0.8
    assert roc_auc_score(y, oof) < 0.55


def _coded(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    codes = np.array([f"{c:03d}.{d}" for c in range(100, 400) for d in range(2)])
    return pd.DataFrame(
        {
            "diag": rng.choice(codes, n),
            "ward": rng.choice(["A", "B", "C"], n),
            "visit_id": [f"V{i}" for i in range(n)],
            "age": rng.integers(20, 90, n).astype(float),
        }
    )


def test_table_features_route_each_column() -> None:
    table = _coded()
    y = pd.Series(np.arange(len(table)) % 2)
    features = TableFeatures(strategy="frequency+target+rollup")
    with pytest.warns(UserWarning, match="identifier-like column"):
        X = features.fit_transform(table, y)
    assert list(X.columns) == [
        "diag__frequency",
        "diag__target",
        "diag__category",
        "diag__chapter",
        "ward",
        "age",
    ]
    assert isinstance(X["ward"].dtype, pd.CategoricalDtype)
    assert features.encodings["diag"]["kind"] == "icd9"
    assert features.encodings["visit_id"]["encoding"].startswith("left out")
    again = features.transform(table)
    pd.testing.assert_frame_equal(again.drop(columns="diag__target"), X.drop(columns="diag__target"))


def test_strategy_is_chosen_on_validation_and_never_sees_the_test_part() -> None:
    table = _coded(1500).drop(columns="visit_id")
    inputs = {"train": table.iloc[:900], "validation": table.iloc[900:1200], "test": table.iloc[1200:]}
    y = pd.Series(np.arange(900) % 2, index=inputs["train"].index)
    seen: list[pd.Index] = []
    wanted = "frequency+rollup"

    def score(X: dict[str, pd.DataFrame]) -> float:
        seen.extend(X[part].index for part in X)
        chosen = "diag__chapter" in X["train"] and not {"diag", "diag__target"} & set(X["train"])
        return 0.1 if chosen else 0.2

    chosen, X, report = choose_strategy(TableFeatures(), inputs, y, None, score, greater_is_better=False)
    assert chosen.strategy == report["strategy"] == wanted
    assert set(report["validation"]) == {
        "categorical",
        "frequency+rollup",
        "frequency+target",
        "frequency+target+rollup",
        "categorical+frequency+rollup",
    }
    assert all(not index.isin(inputs["test"].index).any() for index in seen)
    assert X["test"].index.equals(inputs["test"].index) and "diag__chapter" in X["test"]
    assert report["columns"]["diag"] == {
        "kind": "icd9",
        "encoding": wanted,
        "outputs": ["diag__frequency", "diag__category", "diag__chapter"],
    }


def test_table_defaults_regularise_categoricals_under_the_task_params() -> None:
    config = {"table": {"lightgbm": {"cat_smooth": 50, "cat_l2": 30}}}
    params = table_params({"lightgbm": {"cat_l2": 5, "num_leaves": 31}, "other": 1}, config)
    assert params == {"lightgbm": {"cat_smooth": 50, "cat_l2": 5, "num_leaves": 31}, "other": 1}


def test_identifiers_are_not_codes() -> None:
    assert code_kind(pd.Series([f"P{i:06d}" for i in range(500)])) == "text"
    assert code_kind(pd.Series(["E11.900", "E11", "I21.000x001"])) == "icd10"
