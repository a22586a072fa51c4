"""Benchmark: `caselens train --table` on a real-looking prepared table beside a careful analyst's LightGBM.

    nice -n 10 .venv/bin/python -m experiments.benchmarks.table --rows 60000 --tune-seconds 60

A generated table shaped like a public readmission export (issue 13): three ICD-9 diagnosis columns
with hundreds of Zipf-distributed codes each, payer and specialty columns with dozens of levels,
utilisation counts, repeat patients whose hidden frailty drives both how often they come back and
their outcome, a weak signal spread over code chapters, codes and utilisation, 10% positive. The
same table carries a cost label whose code effects interact with age (deeper trees pay off there).

caselens is trained through the framework exactly as the CLI does (time split by admission quarter:
train, one validation quarter that chooses encodings and calibrates, the last quarter tests). The
plain LightGBM recipes of the issue fit the same training rows and are judged on the same test rows.
"""

from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import typer

from experiments.benchmarks.report import SHARED_CORES, machine_line, write_results

RESULTS = Path(__file__).resolve().parents[1] / "results" / "table.md"
SEED = 13
CODE_COLUMNS = {"diag_1": 900, "diag_2": 800, "diag_3": 700}
LABEL, COST, GROUP, ENTITY = "readmitted", "cost", "admit_date", "patient_id"
REGULARISED = ({"cat_smooth": 50, "min_data_per_group": 200}, {"cat_l2": 30, "max_cat_threshold": 16})
BINS = 10


def _zipf(rng: np.random.Generator, levels: int, size: int, exponent: float = 1.1) -> np.ndarray:
    weights = 1.0 / np.arange(1, levels + 1) ** exponent
    return rng.choice(levels, size=size, p=weights / weights.sum())


def _icd9_universe(rng: np.random.Generator, levels: int) -> np.ndarray:
    """``levels`` distinct ICD-9-looking codes ("428.0", "250.01", "V45.81"), in a random order."""
    codes: set[str] = set()
    while len(codes) < levels:
        head = int(rng.integers(1, 1000))
        kind = rng.random()
        stem = f"V{head % 90:02d}" if kind < 0.05 else f"{head:03d}"
        codes.add(
            stem if rng.random() < 0.3 else f"{stem}.{int(rng.integers(0, 100)):0{int(rng.integers(1, 3))}d}"
        )
    return rng.permutation(sorted(codes))


def generate_table(rows: int, seed: int = SEED) -> pd.DataFrame:
    """A prepared encounter table with a 0/1 readmission label and a cost label (see module docstring)."""
    rng = np.random.default_rng(seed)
    patients = max(rows * 7 // 10, 1)
    frailty = rng.normal(size=patients)
    visits = rng.poisson(0.45 * np.exp(0.6 * frailty)) + 1
    patient = np.repeat(np.arange(patients), visits)[:rows]
    if len(patient) < rows:
        patient = np.r_[patient, rng.integers(0, patients, rows - len(patient))]
    patient = rng.permutation(patient)
    f = frailty[patient]
    start = pd.Timestamp("2021-01-01")
    day = rng.integers(0, 3 * 365, rows)
    table = pd.DataFrame({ENTITY: [f"P{p:06d}" for p in patient], GROUP: start + pd.to_timedelta(day, "D")})
    logit = 0.45 * f
    log_cost = 8.5 + 0.1 * f
    age = np.clip(rng.normal(65, 15, rows), 18, 100).round()
    for column, levels in CODE_COLUMNS.items():
        universe = _icd9_universe(rng, levels)
        chosen = _zipf(rng, levels, rows)
        codes = universe[chosen]
        chapter = pd.Series(codes).str[:2]  # coarse groups share an effect, codes add their own
        chapter_effect = chapter.map(
            dict.fromkeys(chapter.unique(), 0.0)
            | {c: v for c, v in zip(chapter.unique(), rng.normal(0, 0.25, chapter.nunique()), strict=True)}
        ).to_numpy()
        # Rare codes are the atypical, sicker cases: risk rises with a code's rarity rank.
        rarity = np.log1p(np.arange(levels))
        code_effect = (0.12 * (rarity - rarity.mean()) + rng.normal(0, 0.3, levels))[chosen]
        logit = logit + chapter_effect + code_effect
        cost_effect = rng.normal(0, 0.25, levels)[chosen]
        log_cost = log_cost + cost_effect * (1 + (age > 70)) + 0.5 * chapter_effect
        table[column] = np.where(rng.random(rows) < 0.02, None, codes)
    payer = _zipf(rng, 18, rows)
    specialty = _zipf(rng, 70, rows)
    table["payer"] = [f"payer-{p:02d}" for p in payer]
    table["specialty"] = [f"spec-{s:02d}" for s in specialty]
    logit = logit + rng.normal(0, 0.15, 18)[payer] + rng.normal(0, 0.2, 70)[specialty]
    table["age"] = age
    table["gender"] = rng.choice(["Male", "Female"], rows)
    table["time_in_hospital"] = np.clip(rng.poisson(3 + 0.6 * np.exp(0.3 * f)), 1, 14)
    table["num_medications"] = rng.poisson(14 + 2 * np.clip(f, -1, None))
    table["num_lab_procedures"] = rng.poisson(40, rows)
    table["number_emergency"] = rng.poisson(0.15 * np.exp(0.5 * f))
    table["number_outpatient"] = rng.poisson(0.3, rows)
    logit = logit + 0.08 * table["time_in_hospital"] + 0.2 * table["number_emergency"] + 0.01 * (age - 65)
    logit = logit + rng.normal(0, 0.3, rows)
    intercept = _intercept(logit, 0.10)
    table[LABEL] = (rng.random(rows) < 1 / (1 + np.exp(-(logit + intercept)))).astype(int)
    # Long stays of the old in the costliest chapters cost more again: an interaction deep trees find.
    costly = (log_cost - log_cost.mean()) > 0.3
    deep = costly & (age > 75) & (table["time_in_hospital"] > 4) & (table["number_emergency"] > 0)
    log_cost = log_cost + 0.8 * deep + 0.12 * table["time_in_hospital"] + rng.normal(0, 0.35, rows)
    table[COST] = np.exp(log_cost).round(2)
    return table.sort_values(GROUP, ignore_index=True)


def _intercept(logit: pd.Series | np.ndarray, prevalence: float) -> float:
    """The shift that makes the mean probability ``prevalence`` (bisection)."""
    low, high = -20.0, 20.0
    for _ in range(60):
        mid = (low + high) / 2
        if np.mean(1 / (1 + np.exp(-(np.asarray(logit) + mid)))) > prevalence:
            high = mid
        else:
            low = mid
    return (low + high) / 2


def ece_equal_mass(actual: np.ndarray, probability: np.ndarray, bins: int = BINS) -> float:
    """ECE over ``bins`` equal-count bins of the probability: Σ share × |mean probability − rate|."""
    order = np.argsort(probability, kind="stable")
    parts = np.array_split(order, bins)
    return float(sum(len(p) * abs(probability[p].mean() - actual[p].mean()) for p in parts) / len(actual))


def probability_row(actual: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    return {
        "auroc": float(roc_auc_score(actual, probability)),
        "auprc": float(average_precision_score(actual, probability)),
        "brier": float(np.mean((probability - actual) ** 2)),
        "ece": ece_equal_mass(actual, probability),
    }


def cost_row(actual: np.ndarray, predicted: np.ndarray, lower=None, upper=None) -> dict[str, float]:
    found = {"mae": float(np.mean(np.abs(actual - predicted)))}
    if lower is not None:
        found["coverage"] = float(np.mean((actual >= lower) & (actual <= upper)))
    return found


def prior_visits(table: pd.DataFrame) -> np.ndarray:
    """The analyst's history count: the patient's strictly earlier rows in the whole table."""
    from models.history import history_features

    return history_features(table, table, ENTITY, GROUP, [])["history_rows"].to_numpy()


def plain_recipes(
    table: pd.DataFrame, parts: pd.Series, target: str, params: dict[str, Any]
) -> dict[str, dict[str, float]]:
    """The issue's ladder of plain LightGBM recipes, each on the training rows, judged on the test rows."""
    from lightgbm import LGBMClassifier, LGBMRegressor

    from models.comparisons import plain_frames

    features = [c for c in table.columns if c not in (LABEL, COST, GROUP, ENTITY)]
    train, test = (parts == "train").to_numpy(), (parts == "test").to_numpy()
    X, X_test = plain_frames(table.loc[train, features], table.loc[test, features])
    counts = {c: table.loc[train, c].value_counts() for c in CODE_COLUMNS}
    frequency = [
        frame.assign(
            **{c: frame[c].astype(object).map(counts[c]).astype("float64").fillna(0) for c in CODE_COLUMNS}
        )
        for frame in (X, X_test)
    ]
    history = prior_visits(table)
    with_history = [
        frequency[0].assign(prior_visits=history[train]),
        frequency[1].assign(prior_visits=history[test]),
    ]
    base = {**params, "verbose": -1}
    regularised = {**base, **REGULARISED[0]}
    strongest = {**regularised, **REGULARISED[1]}
    ladder = [
        ("plain categorical, caselens params", base, (X, X_test)),
        ("+ cat_smooth=50, min_data_per_group=200", regularised, (X, X_test)),
        ("+ cat_l2=30, max_cat_threshold=16", strongest, (X, X_test)),
        ("codes frequency-encoded", strongest, frequency),
        ("+ history counts", strongest, with_history),
    ]
    y = table.loc[train, target].to_numpy()
    actual = table.loc[test, target].to_numpy()
    found = {}
    for name, recipe, (fit_on, score_on) in ladder:
        if target == LABEL:
            model = LGBMClassifier(**recipe, objective="binary").fit(fit_on, y)
            found[name] = probability_row(actual, model.predict_proba(score_on)[:, 1])
        else:
            model = LGBMRegressor(**recipe).fit(fit_on, np.log1p(y))
            found[name] = cost_row(actual, np.expm1(model.predict(score_on)))
    return found


def caselens_run(
    task_name: str,
    table: pd.DataFrame,
    folder: Path,
    history: bool,
    tune_seconds: float = 0.0,
    min_rows: int = 50,
) -> tuple[dict[str, float], Any, pd.Series]:
    """Train through the framework like `caselens train TASK --table`; figures on the test rows."""
    from contract.settings import Settings
    from models.config import load_config
    from models.tasks import get_task
    from pipelines.training.data import table_data
    from pipelines.training.run import train

    settings = Settings(data_dir=folder, tracking_uri=f"sqlite:///{(folder / 'mlflow.db').resolve()}")
    config = copy.deepcopy(load_config())
    config["split"]["min_rows"] = min_rows
    task = get_task(task_name)
    label, other = (LABEL, COST) if task_name == "readmission" else (COST, LABEL)
    frame = table.drop(columns=[other])
    options = (ENTITY, GROUP, 30.0 if task_name == "readmission" else None) if history else ()
    if not history:
        frame = frame.drop(columns=[ENTITY])
    data = table_data(task, frame, label, GROUP, *options)
    result = train(task, data, config, settings, tune_seconds=tune_seconds)
    from models.split import TimeSplit

    parts = TimeSplit(**config["split"]).assign(frame[GROUP])
    test = (parts == "test").to_numpy()
    import mlflow

    model = mlflow.pyfunc.load_model(f"runs:/{result.run_id}/model").unwrap_python_model()
    predicted = model.predict_frame(data.inputs[test], history=data.history)
    actual = table.loc[test, label].to_numpy()
    if task_name == "readmission":
        row = probability_row(actual, predicted["readmission_probability"].to_numpy())
    else:
        row = cost_row(
            actual,
            predicted["cost"].to_numpy(),
            predicted["cost_lower"].to_numpy(),
            predicted["cost_upper"].to_numpy(),
        )
    return row, result, parts


def _rows(found: dict[str, dict[str, float]], columns: tuple[str, ...]) -> list[str]:
    return [
        f"| {name} | " + " | ".join(f"{v[c]:.4f}" if c != "mae" else f"{v[c]:,.0f}" for c in columns) + " |"
        for name, v in found.items()
    ]


def run(
    rows: int = typer.Option(60_000, "--rows", help="table rows"),
    tune_seconds: float = typer.Option(60.0, "--tune-seconds", help="Optuna budget of the tuned run"),
    output: Path = typer.Option(RESULTS, "--output"),
    min_rows: int = typer.Option(50, "--min-rows", help="smallest split part (lower for toy sizes)"),
    tasks: str = typer.Option("readmission,cost", "--tasks", help="comma-separated: readmission, cost"),
) -> dict[str, dict[str, dict[str, float]]]:
    """Generate, train caselens and the plain recipes, write the results file; return the figures."""
    from models.config import load_config

    started = time.perf_counter()
    table = generate_table(rows)
    config = load_config()
    names = [t.strip() for t in tasks.split(",") if t.strip()]
    figures: dict[str, dict[str, dict[str, float]]] = {}
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        for task_name in names:
            figures[task_name] = {}
            runs = [
                ("caselens defaults, no history", False, 0.0),
                ("caselens defaults, --entity/--order", True, 0.0),
            ]
            if tune_seconds > 0:
                runs.append((f"caselens tuned ({tune_seconds:g} s), --entity/--order", True, tune_seconds))
            for i, (name, history, seconds) in enumerate(runs):
                row, result, parts = caselens_run(
                    task_name, table, Path(folder) / f"{task_name}{i}", history, seconds, min_rows
                )
                figures[task_name][name] = row
                results.setdefault(task_name, result)
            params = dict(config["tasks"][task_name]["lightgbm"])
            target = LABEL if task_name == "readmission" else COST
            figures[task_name] |= plain_recipes(table, parts, target, params)
    first = next(iter(results.values()))
    lines = [
        "# Benchmark: your own table (`caselens train TASK --table`) against plain LightGBM",
        "",
        f"Command: `nice -n 10 .venv/bin/python -m experiments.benchmarks.table --rows {rows} "
        f"--tune-seconds {tune_seconds:g}`",
        "",
        f"Generated table (`generate_table`, seed {SEED}): {rows:,} encounters of "
        f"{table[ENTITY].nunique():,} patients over 3 years, three ICD-9 code columns "
        f"({', '.join(f'{c}: {table[c].nunique()} codes' for c in CODE_COLUMNS)}; Zipf-distributed),"
        f" payer (18 levels), specialty (70), age, sex, five utilisation counts; "
        f"{table[LABEL].mean():.1%} positive. Split by admission quarter: train"
        f" {first.split['train_periods']} ({first.rows['train']:,} rows), validation"
        f" {first.split['validation_periods']} ({first.rows['validation']:,}), test"
        f" {first.split['test_periods']} ({first.rows['test']:,}). The plain recipes fit the training"
        " rows with the task's caselens LightGBM parameters (on log cost for the cost label); ECE uses"
        f" {BINS} equal-mass bins. `--entity/--order` is `--entity {ENTITY} --order {GROUP}` (and"
        " `--label-horizon-days 30` for readmission); without it the patient column is left out.",
        "",
    ]
    if "readmission" in figures:
        lines += _readmission_section(figures["readmission"], results["readmission"])
    if "cost" in figures:
        lines += _cost_section(figures["cost"], results["cost"])
    lines += [
        machine_line(f". {SHARED_CORES} times are indicative; total {time.perf_counter() - started:,.0f} s."),
        "",
    ]
    write_results(lines, output)
    return figures


def _encoding_line(result: Any, metric: str) -> str:
    encoding = result.choices["encoding"]
    return (
        f"Encoding chosen on validation (no-history run): `{encoding['strategy']}`; validation {metric} per"
        " strategy: "
        + ", ".join(f"{k} {v:.5g}" for k, v in encoding["validation"].items())
        + ". Columns: "
        + "; ".join(f"{c} ({v['kind']})" for c, v in encoding["columns"].items())
        + "."
    )


def _readmission_section(found: dict[str, dict[str, float]], result: Any) -> list[str]:
    shown = ("auroc", "auprc", "brier", "ece")
    return [
        "## Readmission (0/1 label), test quarter",
        "",
        "| model | " + " | ".join(shown) + " |",
        "|---|" + "---:|" * len(shown),
        *_rows(found, shown),
        "",
        _encoding_line(result, "Brier"),
        "",
    ]


def _cost_section(found: dict[str, dict[str, float]], result: Any) -> list[str]:
    depth = result.choices.get("depth", {})
    candidates = "; ".join(
        f"depth {c['max_depth']}/{c['num_leaves']} leaves: MAE {c['validation']:,.0f}, {c['explain_ms']} ms"
        for c in depth.get("candidates", [])
    )
    return [
        "## Cost (amount label), test quarter",
        "",
        "| model | mae | coverage of the 80% interval |",
        "|---|---:|---:|",
        *[
            f"| {name} | {v['mae']:,.0f} | " + (f"{v['coverage']:.3f}" if "coverage" in v else "") + " |"
            for name, v in found.items()
        ],
        "",
        _encoding_line(result, "MAE")
        + f" Tree shape chosen on validation within {depth.get('budget_ms')} ms per explained case:"
        f" {depth.get('chosen')} (candidates: {candidates}).",
        "",
    ]


if __name__ == "__main__":
    typer.run(run)
