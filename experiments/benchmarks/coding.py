"""Benchmark: the coding-error model and the review queue on the demo hospital, beside the coding team's
rules and the oracle's true error probability.

    .venv/bin/python -m experiments.benchmarks.coding --cases 60000

Generates the demo hospital (3 years, seed 42) and checks that its planted errors leave no fingerprint
(``pipelines.demo.coding.fingerprints``), trains ``coding`` through the framework as ``caselens train
coding`` does (audited cases only, split by discharge quarter) into a temporary MLflow store, fits the
QC coder's rules baseline (``models.coding.rules.RulesBaseline``: a logistic regression on the QC flags
and the coder's prior error rate) on the same training audits, and compares the two per error type on
every stay of the test quarter (the oracle knows the errors of unaudited stays too). It then ranks the
test quarter's audited cases with the review queue (expected value) and reports what share of the
errors and of the money at stake the top 5%, 10% and 20% hold, and how close the queue's what-if money
comes to the money the audits' corrections actually moved. Results go to
``experiments/results/coding.md``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import typer

from experiments.benchmarks.readmission import (
    CASES_OPTION,
    MIN_ROWS_OPTION,
    SEED,
    demo_hospital,
    train_on_demo,
)
from experiments.benchmarks.report import SHARED_CORES, machine_line, peak_memory_mb, write_results
from models.coding.evaluation import SHARES, top_share_yield
from models.coding.rules import RulesBaseline
from models.metrics import ranking_metrics
from pipelines.demo.coding import FINGERPRINT_LIMITS, fingerprints

RESULTS = Path(__file__).resolve().parents[1] / "results" / "coding.md"
TAGS = tuple(f"top{round(s * 100)}pct" for s in SHARES)


def _row(label: str, metrics: dict[str, float], prefix: str = "") -> str:
    names = ["auprc", "auroc"] + [
        f"{k}_{t}" for t in TAGS for k in ("precision", "errors_found", "money_found")
    ]
    return f"| {label} | " + " | ".join(f"{metrics.get(prefix + n, float('nan')):.3f}" for n in names) + " |"


def _quarters(cases: pd.DataFrame, periods: str) -> np.ndarray:
    """Rows discharged within a split's "2023Q1..2025Q2" range."""
    first, last = (pd.Period(p) for p in periods.split(".."))
    quarter = cases["discharge_date"].dt.to_period("Q")
    return ((quarter >= first) & (quarter <= last)).to_numpy()


def per_type(
    frame: pd.DataFrame, oracle: pd.DataFrame, labels: pd.DataFrame, model: object, split: dict[str, str]
) -> tuple[list[str], RulesBaseline]:
    """Model against the QC rules baseline, per error type, on every stay of the test period.

    Both learn from the training period's audits only: the model as trained by the framework, the rules
    baseline here (one logistic regression for any error, one per type, each type against the rest). A
    type is scored among the clean stays (positives: stays with that error, negatives: stays without
    any), with the oracle's error types as truth."""
    train = _quarters(frame, split["train_periods"]) & labels["coding_error"].notna().to_numpy()
    test = _quarters(frame, split["test_periods"])
    X_train = model.features.transform(frame[train], history=frame)
    X_test = model.features.transform(frame[test], history=frame)
    predicted = model.estimator.predict(X_test)
    actual = oracle["true_error_type"].to_numpy(object)[test]
    audited_type = labels["error_type"].to_numpy(object)[train]
    overall = RulesBaseline().fit(X_train, labels["coding_error"].to_numpy()[train])
    rows = []
    for kind in ("any error", *sorted(set(audited_type[pd.notna(audited_type)]))):
        if kind == "any error":
            positive, keep = pd.notna(actual), np.ones(len(actual), dtype=bool)
            model_score, rules = predicted["error_probability"].to_numpy(), overall
        else:
            positive, keep = actual == kind, pd.isna(actual) | (actual == kind)
            model_score = predicted[f"p_{kind}"].to_numpy()
            rules = RulesBaseline().fit(X_train, audited_type == kind)
        rules_score = rules.predict_proba(X_test)
        y = pd.Series(positive[keep].astype(float))
        got = ranking_metrics(y, pd.Series(model_score[keep]))
        base = ranking_metrics(y, pd.Series(rules_score[keep]))
        rows.append(
            f"| {kind} | {int(positive.sum()):,} | {got['auroc']:.3f} | {base['auroc']:.3f} |"
            f" {got['auprc']:.3f} | {base['auprc']:.3f} | {got['prevalence']:.3f} |"
        )
    return rows, overall


def run(cases: int = CASES_OPTION, output: Path = RESULTS, min_rows: int = MIN_ROWS_OPTION) -> str:
    """Train, rank and evaluate; write the results file and return its text."""
    from models.review_queue import QueuePolicy, coding_queue, rank_queue, score_cases
    from models.tasks.coding import ORACLE_COLUMN

    hospital, generated = demo_hospital(cases)
    frame, oracle = hospital.cases, hospital.oracle
    traces = fingerprints(frame, oracle)
    with tempfile.TemporaryDirectory() as folder:
        clock = time.perf_counter()
        result, _, _ = train_on_demo("coding", frame, oracle, Path(folder), min_rows=min_rows)
        seconds = time.perf_counter() - clock
        model = mlflow.pyfunc.load_model("models:/caselens-coding@champion").unwrap_python_model()

    from contract.settings import Settings
    from models.tasks import get_task

    clock = time.perf_counter()
    labels = get_task("coding").labels(frame, Settings())
    test_quarter = pd.Period(result.split["test_periods"].split("..")[-1])
    tested = (frame["discharge_date"].dt.to_period("Q") == test_quarter) & labels["coding_error"].notna()
    audited = frame[tested.to_numpy()]
    scored = score_cases(audited, model, history=frame)
    scored_columns = list(scored.columns)
    queue = rank_queue(scored)
    queue_seconds = time.perf_counter() - clock
    truth = labels.loc[audited.index].set_index(audited["case_id"]).loc[queue["case_id"]]
    error, money = truth["coding_error"].to_numpy(), truth["money_at_stake"].to_numpy()
    by_value = top_share_yield(queue["expected_value"], error, money)
    money_only = rank_queue(queue[scored_columns], QueuePolicy(error_value=0.0)).set_index("case_id")
    by_money = top_share_yield(money_only.loc[queue["case_id"], "expected_value"].to_numpy(), error, money)
    by_probability = top_share_yield(queue["error_probability"], error, money)
    type_rows, rules_baseline = per_type(frame, oracle, labels, model, result.split)
    rules_score = pd.Series(
        rules_baseline.predict_proba(model.features.transform(audited, history=frame)),
        index=audited["case_id"],
    ).loc[queue["case_id"]]  # in the queue's order, like ``error`` and ``money``
    by_rules = ranking_metrics(pd.Series(error), rules_score.reset_index(drop=True))
    by_rules |= top_share_yield(rules_score.to_numpy(), error, money)
    lookup = oracle.set_index("case_id")[ORACLE_COLUMN]
    by_oracle = top_share_yield(lookup.loc[queue["case_id"]].to_numpy(), error, money)

    found = queue.assign(actual_type=truth["error_type"].to_numpy(), actual_money=money)
    found = found[error == 1]
    money_rows = []
    for kind, sub in found.groupby("actual_type"):
        whatif = sub[f"{kind}_money"].to_numpy(float)
        actual = sub["actual_money"].to_numpy(float)
        same_sign = np.mean(np.sign(whatif) == np.sign(actual))
        money_rows.append(
            f"| {kind} | {len(sub)} | {np.median(actual):,.0f} | {np.median(whatif):,.0f} | "
            f"{np.median(np.abs(whatif - actual)):,.0f} | {same_sign:.0%} |"
        )

    period_queue = coding_queue(frame, model, str(test_quarter))
    top = period_queue.head(10)
    m, b = result.metrics, result.baseline_metrics
    yield_rows = [
        f"| {name} | "
        + " | ".join(f"{found_[f'errors_found_{t}']:.1%} / {found_[f'money_found_{t}']:.1%}" for t in TAGS)
        + " |"
        for name, found_ in (
            ("queue: expected value (P × money, upcoding ×3, + ¥3,000 × P(error))", by_value),
            ("queue on money alone (error value 0)", by_money),
            ("model probability alone", by_probability),
            ("oracle: true error probability", by_oracle),
        )
    ]
    return write_results(
        [
            "# Benchmark: coding errors and the coding-review queue",
            "",
            f"Command: `.venv/bin/python -m experiments.benchmarks.coding --cases {cases}`",
            "",
            f"Demo hospital: {cases:,} stays over 3 years (seed {SEED}). Labels are the coding audits"
            " (audited with an error = 1, audited and correct = 0, unaudited = no label). Split by discharge"
            " quarter:"
            f" train {result.split['train_periods']} ({result.rows['train']:,} audited), validation"
            f" {result.split['validation_periods']} ({result.rows['validation']:,}), test"
            f" {result.split['test_periods']} ({result.rows['test']:,}).",
            "",
            "## Fingerprints of the planted errors",
            "",
            "What a naive simulator gives away, measured on this hospital (limits from issue 12;"
            " `pipelines.demo.coding.fingerprints`):",
            "",
            "| measure | value | limit |",
            "|---|---:|---|",
            *[
                f"| {name} | {traces[name]:.1%} | {sense} {limit:.0%} |"
                for name, (sense, limit) in FINGERPRINT_LIMITS.items()
            ],
            "| clean_admission_category_differs (for comparison) |"
            f" {traces['clean_admission_category_differs']:.1%} | |",
            "",
            "## Model against the QC coder's rules, per error type (every stay of the test quarter)",
            "",
            "The rules baseline is a logistic regression on the flags a QC coder trusts (MCC coded, admission"
            " diagnosis of another ICD category than the principal, planned procedure not coded, charges"
            " above twice or below half the DRG's mean, and the coding team's rules: MCC on a stay under 2"
            " days, surgery-level charges without a procedure, symptom principal beside a specific diagnosis,"
            " unspecified principal) and the coder's audited error rate before the case,"
            " fitted on the training period's audits (one per error type, that type against the rest). The"
            " model's score for a type is P(error) × P(type | error). Each type is ranked among the clean"
            " stays (other types left out); truth is the oracle's error type, so unaudited stays count too.",
            "",
            "| error type | errors | AUROC model | AUROC rules | AUPRC model | AUPRC rules | prevalence |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *type_rows,
            "",
            "What the model still reads is what a QC coder reads too, weighed case by case instead of"
            " flag by flag: charges and length of stay against the coded DRG (an unsupported CC/MCC sits on"
            " an uncomplicated stay; a missed operation leaves theatre charges under a medical DRG, which a"
            " cancelled operation does not), whether promoting a secondary diagnosis regroups the case, and"
            " the coder's record. How far apart complicated and uncomplicated stays are is set by the"
            " simulator (docs/demo-hospital.md §2, §4), so these figures are claims about it.",
            "",
            "Rules baseline weights (log-odds per standard deviation, any error): "
            + ", ".join(f"{k} {v:+.2f}" for k, v in rules_baseline.coefficients().items())
            + ".",
            "",
            "## Ranking the test quarter's audited cases",
            "",
            "Precision, share of all errors found and share of all money at stake found (|payment as coded −"
            " payment under the audit's corrected codes|, by regrouping) when reviewing the top 5/10/20%.",
            "",
            "| ranking | auprc | auroc | "
            + " | ".join(f"{k} {t}" for t in TAGS for k in ("precision", "errors", "money"))
            + " |",
            "|---|" + "---:|" * (2 + 3 * len(TAGS)),
            _row("LightGBM coding model", m),
            _row("QC rules baseline (logistic regression on the flags)", by_rules),
            _row("coding-team rules (error rate per rule pattern)", b),
            _row("oracle: true error probability", m, "oracle_"),
            "",
            "Error-type accuracy of the model on the test errors:"
            f" {m.get('error_type_accuracy', float('nan')):.1%}.",
            "",
            "**The queue's yield** (same audited test cases, errors found / money found):",
            "",
            "| ranking | " + " | ".join(TAGS) + " |",
            "|---|" + "---:|" * len(TAGS),
            *yield_rows,
            "",
            "Reading the oracle: its probability is the chance the coder *makes* an error, set before the"
            " codes are written (coder and case complexity). The model reads the coded abstract, where an"
            " error may leave a trace (charges or a stay that do not fit the coded CC/MCC, a principal"
            " whose swap changes the DRG, a planned procedure not coded) but not one that only errors leave,"
            f" so how far it ranks above that prior (AUPRC {m['auprc']:.3f} against"
            f" {m['oracle_auprc']:.3f}) is what the traces are worth.",
            "",
            "## What-if money against the audits' corrections (test errors)",
            "",
            "| actual error type | errors | median actual money | median what-if money |"
            " median |difference| | same direction |",
            "|---|---:|---:|---:|---:|---:|",
            *money_rows,
            "",
            "Money = payment as coded − payment corrected (yuan; positive = overpaid). The what-if of each"
            " type is the queue's guess at the correction (drop the costliest secondary, swap in the first"
            " secondary, code the planned procedure, the ADRG's next heavier split).",
            "",
            f"## The {test_quarter} queue (unaudited cases)",
            "",
            f"{len(period_queue):,} cases; {period_queue['compliance_risk'].mean():.1%} carry a compliance"
            " (overpayment) risk as lead correction; expected value of the top 10%:"
            f" ¥{period_queue['expected_value'].head(max(1, len(period_queue) // 10)).sum():,.0f} of"
            f" ¥{period_queue['expected_value'].sum():,.0f}. Top 10:",
            "",
            "| rank | department | likely error | P(error) | money at stake | expected value |"
            " DRG → what-if | first reason |",
            "|---:|---|---|---:|---:|---:|---|---|",
            *[
                f"| {r.rank} | {r.department} | {r.error_type} | {r.error_probability:.2f} |"
                f" {r.money_at_stake:,.0f} | {r.expected_value:,.0f} | {r.coded_drg} → {r.whatif_drg} |"
                f" {r.reasons[0] if r.reasons else ''} |"
                for r in top.itertuples()
            ],
            "",
            f"Timings: demo generation {generated:.0f} s; training run {seconds:.0f} s (by step"
            f" {result.seconds}); labels + scoring + ranking the audited test cases {queue_seconds:.0f} s."
            f" Peak memory (max RSS) {peak_memory_mb():,.0f} MB.",
            "",
            machine_line(f". {SHARED_CORES} timings are upper bounds."),
            "",
        ],
        output,
    )


if __name__ == "__main__":
    typer.run(run)
