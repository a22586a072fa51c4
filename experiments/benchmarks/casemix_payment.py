"""Benchmark: RW tables, weight calibration, DRG payment and casemix indicators for N grouped cases.

    .venv/bin/python -m experiments.benchmarks.casemix_payment --cases 1000000
    taskset -c 0 .venv/bin/python -m experiments.benchmarks.casemix_payment --cases 1000000 --speed-only

Cases are synthetic stays already grouped (about 600 DRGs with log-normal costs around their weight),
so the figures are those of the payment code alone; grouping has its own benchmark. Weights are
estimated from the cases (the fallback: the synthetic DRG codes are not in the demo city's table,
whose read and validation is timed on its own). Also measured: what the trimming fence moves in
total payment, and the case-weighted CCI beside the cost-weighted one. Results go to
``experiments/results/casemix_payment.md``.

``--speed-only`` measures pricing speed alone (``pricing_speed``): one stay, as the in-stay endpoint
prices it (issue 16), and N stays as ``caselens group`` prices them (issue 18: Arrow text columns,
copy-on-write), CPU time on one core under both shipped rule files; results go to
``experiments/results/pricing_speed.md``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import typer

from casemix.grouper import Grouper
from casemix.indicators import casemix_indicators
from casemix.payment import DEFAULT_RULES, POINT_CITY_RULES, PaymentRules, drg_cost, price_cases
from casemix.pregroup import Pregrouper
from casemix.rw_table import read_weights, write_weights
from casemix.settlement import settle_year
from casemix.weights import Calibration, calibrate_weights
from contract.fields import COST_CATEGORIES
from experiments.benchmarks.report import (
    SHARED_CORES,
    load_average,
    machine_line,
    peak_memory_line,
    timed,
    write_results,
)
from pipelines.demo import generate_demo
from pipelines.readers import TEXT

PAYER_SHARES = {1: 0.46, 2: 0.42, 4: 0.01, 5: 0.01, 6: 0.02, 7: 0.06, 8: 0.01, 9: 0.01}  # the demo's
RESULTS = Path(__file__).resolve().parents[1] / "results" / "casemix_payment.md"
SPEED_RESULTS = RESULTS.with_name("pricing_speed.md")
SPEED_COMMAND = ".venv/bin/python -m experiments.benchmarks.casemix_payment"
# One stay in hospital on its 4th day, as the in-stay endpoint pre-groups and prices it.
ONE_STAY = {
    "sex": 1,
    "age_years": 67,
    "age_days": None,
    "birth_weight_g": None,
    "admission_diagnosis": "I21.0",
    "working_diagnoses": "I21.0|I10|E11.9",
    "procedures_so_far": "",
    "as_of_date": pd.Timestamp("2025-03-04"),
    "admission_date": pd.Timestamp("2025-03-01"),
    "day_of_stay": 4,
    "department": "心内科",
    "hospital_id": "H1",
    "patient_id": "P1",
    "insurance_type": 1,
}
DEPARTMENTS = np.array(
    ["心内科", "呼吸科", "骨科", "普外科", "神经内科", "肿瘤科", "妇产科", "儿科", "消化内科", "肾内科"]
)


def grouped_cases(n_cases: int, n_drgs: int = 600, seed: int = 0) -> pd.DataFrame:
    """``n_cases`` grouped stays over 2023–2025: 95% grouped, 3% ungroupable, 2% invalid."""
    rng = np.random.default_rng(seed)
    adrgs = np.array(
        [f"{chr(65 + i // 26 % 26)}{chr(65 + i % 26)}{1 + i // 676}" for i in range(n_drgs // 3 + 1)]
    )
    drgs = np.array([f"{adrgs[i // 3]}{(1, 3, 5)[i % 3]}" for i in range(n_drgs)], dtype=object)
    drg_adrg = np.array([adrgs[i // 3] for i in range(n_drgs)], dtype=object)
    drg_rw = rng.lognormal(0.0, 0.6, n_drgs)
    popularity = rng.dirichlet(np.full(n_drgs, 0.5))
    pick = rng.choice(n_drgs, n_cases, p=popularity)
    status = rng.choice(
        np.array(["grouped", "ungroupable", "invalid"], dtype=object), n_cases, p=[0.95, 0.03, 0.02]
    )
    grouped = status == "grouped"
    total = np.round(drg_rw[pick] * 11000 * rng.lognormal(0.0, 0.45, n_cases), 2)
    total[rng.random(n_cases) < 0.001] = 0.0
    share = rng.dirichlet(np.ones(len(COST_CATEGORIES)), 1)[0]
    los = np.clip(rng.gamma(2.0, 2.0 + 3.0 * drg_rw[pick]), 1, 120).astype(np.int64)
    discharge = np.datetime64("2023-01-01") + rng.integers(0, 3 * 365, n_cases).astype("timedelta64[D]")
    frame = pd.DataFrame(
        {
            "hospital_id": rng.choice(np.array(["H1", "H2"], dtype=object), n_cases, p=[0.8, 0.2]),
            "department": DEPARTMENTS[rng.integers(0, len(DEPARTMENTS), n_cases)].astype(object),
            "status": status,
            "drg": np.where(grouped, drgs[pick], "0000").astype(object),
            "adrg": np.where(grouped, drg_adrg[pick], "00").astype(object),
            "admission_date": pd.to_datetime(discharge - los.astype("timedelta64[D]")),
            "discharge_date": pd.to_datetime(discharge),
            "los_days": los,
            "total_cost": total,
            **{c: total * s for c, s in zip(COST_CATEGORIES, share, strict=True)},
        }
    )
    frame["cost_negotiated_drugs"] = frame["cost_western_drugs"] * rng.choice(
        [0.0, 0.3], n_cases, p=[0.8, 0.2]
    )
    payers = np.array(list(PAYER_SHARES))
    frame["insurance_type"] = payers[rng.choice(len(payers), n_cases, p=list(PAYER_SHARES.values()))]
    patients = rng.integers(0, max(n_cases * 10 // 13, 1), n_cases)
    frame["patient_id"] = pd.Series(patients).map("P{:08d}".format).to_numpy(dtype=object)  # as the demo's
    return frame


def run(
    cases: int = typer.Option(1_000_000, help="number of cases"),
    demo_cases: int = typer.Option(8_000, help="stays of the demo hospital measured against its region"),
    output: Path | None = None,
    speed_only: bool = False,
) -> None:
    """Time the RW table read, calibration, the CSV round trip, pricing and indicators; measure the demo
    hospital against its region; write a report. With ``--speed-only``, pricing speed alone."""
    if speed_only:
        command = f"taskset -c 0 {SPEED_COMMAND} --cases {cases} --speed-only"
        calls = min(1_000, cases // 10)  # one-stay calls timed: fewer at toy sizes
        write_results(pricing_speed(cases, command, calls=calls), output or SPEED_RESULTS)
        return
    output = output or RESULTS
    rules = PaymentRules.load()
    frame, generate_s = timed(lambda: grouped_cases(cases))
    read_weights(rules.calibration.rw_table)  # warm-up: pandera's one-off set-up is not the reader's cost
    insurer, insurer_s = timed(lambda: read_weights(rules.calibration.rw_table))
    inside = drg_cost(frame, rules)
    weights, calibrate_s = timed(lambda: calibrate_weights(frame, rules.calibration, cost=inside))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "weights.csv"
        _, round_trip_s = timed(lambda: read_weights(write_weights(weights, path)))
    priced, price_s = timed(lambda: price_cases(frame, rules, weights))
    by_department, department_s = timed(
        lambda: casemix_indicators(priced, by=("hospital_id", "department"), period="quarter")
    )
    by_drg, drg_s = timed(lambda: casemix_indicators(priced, by=("hospital_id", "drg"), period="month"))
    settled, settle_s = timed(lambda: settle_year(priced, rules))
    outliers = priced["outlier"].value_counts(normalize=True)
    fences = {
        k: calibrate_and_pay(frame, rules, rules.calibration.model_copy(update={"k": k}), inside)
        for k in (1.5, 3.0)
    }
    untrimmed = calibrate_and_pay(frame, rules, rules.calibration.model_copy(update={"trim": "none"}), inside)
    hospitals = casemix_indicators(priced, by=("hospital_id",), period=None)
    n_drgs = frame.loc[frame["status"].eq("grouped"), "drg"].nunique()
    sources = weights["source"].value_counts()
    rows = [
        ("generate synthetic grouped cases", generate_s),
        (f"`read_weights`: read and check the demo city's RW table ({len(insurer)} DRGs)", insurer_s),
        (f"`calibrate_weights` (IQR k = 1.5 trimming, 非稳定组 from ADRG, {len(weights)} DRGs)", calibrate_s),
        ("weight table CSV write + read", round_trip_s),
        ("`price_cases` (default rules)", price_s),
        (f"`casemix_indicators` by hospital, department, quarter ({len(by_department)} rows)", department_s),
        (f"`casemix_indicators` by hospital, DRG, month ({len(by_drg):,} rows)", drg_s),
        (f"`settle_year` with monthly prepayment ({len(settled)} hospital-years)", settle_s),
    ]
    lines = [
        "# Benchmark: DRG weights, payment and casemix indicators",
        "",
        "Command: `.venv/bin/python -m experiments.benchmarks.casemix_payment "
        f"--cases {cases} --demo-cases {demo_cases}`",
        "",
        f"{cases:,} synthetic grouped cases (2023–2025, {n_drgs} DRGs with cases, 5% ungroupable or",
        "invalid; payers in the demo's shares, 1.3 stays a patient), priced and settled with the embedded",
        "default rules (rate method, base rate changing on 2025-01-01, schemes and the fund/patient split,",
        "the 15-day readmission flag) and weights estimated from the cases on cost net of negotiated drugs",
        "(the fallback; the synthetic DRG codes are not in the demo city's RW table). Grouping itself is",
        "not timed here.",
        "",
        "| step | seconds |",
        "|---|---:|",
        *(f"| {name} | {seconds:.2f} |" for name, seconds in rows),
        "",
        f"Outcome shares: high {outliers.get('high', 0):.1%}, low {outliers.get('low', 0):.1%} of the cases "
        f"paid by DRG; {priced['by_item_reason'].notna().mean():.1%} paid by item, "
        f"{(priced['payment_method'] == 'charges').mean():.1%} at charges (payers outside the schemes); "
        f"{priced['readmitted'].mean():.1%} of DRG cases caught by the readmission rule.",
        "",
        f"Weights: {sources.get('drg', 0)} DRGs on their own cases, {sources.get('adrg', 0)} unstable "
        f"(非稳定组) from their ADRG, {n_drgs - len(weights)} without a weight (paid by item).",
        "",
        "Trimming fence, total payment of all cases with weights estimated at each setting: "
        f"Q3 + 1.5·IQR ¥{fences[1.5] / 1e6:,.1f}M, Q3 + 3·IQR ¥{fences[3.0] / 1e6:,.1f}M "
        f"({(fences[3.0] - fences[1.5]) / fences[1.5]:+.2%}), untrimmed ¥{untrimmed / 1e6:,.1f}M "
        f"({(untrimmed - fences[1.5]) / fences[1.5]:+.2%}).",
        "",
        "Consumption index per hospital, case-weighted Σ(kᵢ·nᵢ)/Σnᵢ against cost-weighted Σ/Σ: "
        + ", ".join(
            f"{r.hospital_id} CCI {r.cci:.3f} vs {r.cci_cost_weighted:.3f}, "
            f"TCI {r.tci:.3f} vs {r.tci_days_weighted:.3f}"
            for r in hospitals.itertuples()
        )
        + " (against weights estimated from these same cases, so near 1 by construction).",
        "",
        *demo_against_region(demo_cases, rules),
        "",
        peak_memory_line(),
        "",
        machine_line(f". {SHARED_CORES}"),
        "timings are upper bounds; the work is single-threaded numpy/pandas.",
        "",
    ]
    write_results(lines, output)


def pricing_speed(n_cases: int, command: str, calls: int = 1000, repeats: int = 3) -> list[str]:
    """Report lines: CPU time of pricing one stay (median and 99th percentile of ``calls``; alone and
    within one stay's pre-grouping) and ``n_cases`` stays (fastest of ``repeats``), both shipped rule
    files. The N stays are read as ``caselens group`` reads them: text columns in Arrow, copy-on-write
    on; also without copy-on-write, where the input's columns are copied into the result."""
    frame = grouped_cases(n_cases)
    frame = frame.astype({c: TEXT for c in ("hospital_id", "department", "patient_id")})
    one, stay = frame.iloc[:1], pd.DataFrame([ONE_STAY])
    history = generate_demo(3000, 1, 42).cases  # weights for rules without an RW table (not timed)
    rows = []
    for path in (DEFAULT_RULES, POINT_CITY_RULES):
        rules = PaymentRules.load(path)
        weights = calibrate_weights(frame, rules.calibration, cost=drg_cost(frame, rules))
        per_call = _cpu_per_call(lambda r=rules, w=weights: price_cases(one, r, w), calls)
        rows.append((f"`price_cases`, 1 grouped stay ({len(one.columns)} columns)", path, *per_call))
        pregrouper = Pregrouper.for_rules(rules, history)
        per_call = _cpu_per_call(lambda p=pregrouper: p.pregroup(stay), calls)
        rows.append(("`Pregrouper.pregroup`, 1 stay in hospital (grouping + pricing)", path, *per_call))
        with pd.option_context("mode.copy_on_write", True):
            best = _fastest_cpu(lambda r=rules, w=weights: price_cases(frame, r, w), repeats)
        rows.append(
            (f"`price_cases`, {n_cases:,} stays, copy-on-write (as `caselens group`)", path, best, None)
        )
    best = _fastest_cpu(lambda: price_cases(frame, PaymentRules.load(), weights), repeats)
    rows.append(
        (f"`price_cases`, {n_cases:,} stays, no copy-on-write (input copied)", DEFAULT_RULES, best, None)
    )
    load = load_average()
    return [
        "# Benchmark: pricing speed, one stay and a million, one core",
        "",
        f"Command: `{command}`",
        "",
        "CPU time of this process (the fair figure on shared cores). One stay: median and 99th",
        f"percentile of {calls:,} calls, in milliseconds; {n_cases:,} stays: fastest of {repeats}, in",
        "seconds. The stays are the synthetic grouped cases of this benchmark (95% grouped, payers in the",
        "demo's shares, 1.3 stays a patient so the readmission rule has work, patient ids written as the",
        "demo hospital writes them: P and 8 digits), text columns in Arrow as `caselens group` reads",
        "them; weights estimated from them (not timed).",
        "",
        "| what | rules | median / CPU s | p99 |",
        "|---|---|---:|---:|",
        *(
            f"| {name} | {Path(path).name} | "
            + (f"{value * 1e3:.2f} ms | {p99 * 1e3:.2f} ms |" if p99 is not None else f"{value:.3f} s | |")
            for name, path, value, p99 in rows
        ),
        "",
        machine_line(f", load average {load:.1f} at the end. {SHARED_CORES} CPU time is the figure:"),
        "wall time on a loaded machine says more about the neighbours than the code.",
        "",
    ]


def _cpu_per_call(step: Callable[[], object], calls: int) -> tuple[float, float]:
    """Median and 99th percentile CPU seconds of ``calls`` calls of ``step`` (after one warm-up)."""
    step()
    seconds = []
    for _ in range(calls):
        started = time.process_time()
        step()
        seconds.append(time.process_time() - started)
    return statistics.median(seconds), statistics.quantiles(seconds, n=100)[98]


def _fastest_cpu(step: Callable[[], object], repeats: int) -> float:
    """The fewest CPU seconds ``step`` took in ``repeats`` runs."""
    fastest = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        step()
        fastest = min(fastest, time.process_time() - started)
    return fastest


def demo_against_region(n_cases: int, rules: PaymentRules) -> list[str]:
    """The demo hospital (3 years, seed 42) priced three ways: with the city's published RW table, with
    weights estimated from its own history by today's fallback, and by the former default (own history
    on total cost, IQR k = 3, credibility shrinkage) that paid negotiated drugs twice."""
    cases = generate_demo(n_cases, 3, 42).cases
    grouped = cases.join(Grouper.for_rules(rules).group_frame(cases)[["status", "drg", "adrg"]])
    own = rules.calibration.model_copy(update={"rw_table": None})
    former = own.model_copy(update={"k": 3.0, "unstable": "shrink", "max_cv": None})
    ways = {
        "insurer table (the city's, regional)": read_weights(rules.calibration.rw_table),
        "estimated from own history (fallback)": calibrate_weights(
            grouped, own, cost=drg_cost(grouped, rules)
        ),
        "former default: own history on total cost": calibrate_weights(grouped, former),
    }
    lines = [
        f"## Demo hospital against its region ({n_cases:,} stays, 2023–2025, seed 42)",
        "",
        "| weights | CMI | CCI | TCI | CCI cost-weighted | payment | of which 除外 | surplus | surplus % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    payments = {}
    for name, weights in ways.items():
        priced = price_cases(grouped, rules, weights)
        payments[name] = priced["drg_payment"].sum()
        (row,) = casemix_indicators(priced, by=("hospital_id",), period=None).itertuples()
        lines.append(
            f"| {name} | {row.cmi:.3f} | {row.cci:.3f} | {row.tci:.3f} | {row.cci_cost_weighted:.3f} "
            f"| ¥{row.payment / 1e6:,.2f}M | ¥{priced['outside_payment'].sum() / 1e6:,.2f}M "
            f"| ¥{row.surplus / 1e6:,.2f}M | {row.surplus_rate:.1%} |"
        )
    former_name = list(ways)[-1]
    twice = payments[former_name] - calibrate_and_pay(grouped, rules, former, drg_cost(grouped, rules))
    lines += [
        "",
        "Negotiated drugs paid twice by the former default (its weights include them, then they are",
        f"paid again outside the DRG): ¥{twice / 1e6:,.2f}M "
        f"({twice / payments[former_name]:.1%} of its payment).",
        "Against the city's table the hospital is measured against its region; against its own history",
        "its CCI and TCI are near 1 by construction (trimming puts each standard a little under the mean).",
    ]
    return lines


def calibrate_and_pay(
    grouped: pd.DataFrame, rules: PaymentRules, calibration: Calibration, cost: pd.Series
) -> float:
    """Total payment with weights estimated under ``calibration`` on ``cost``."""
    return float(
        price_cases(grouped, rules, calibrate_weights(grouped, calibration, cost=cost))["drg_payment"].sum()
    )


if __name__ == "__main__":
    typer.run(run)
