"""The hospital's year-end settlement as the insurer will compute it, from the surplus forecast.

The forecast projects the payment and charges of *all* cases per quarter; the insurer settles only the
insured ones, splits each payment into the fund's and the patient's share, prepays months and clears
the year (``casemix.settlement``). The translation keeps, from the last ``RECENT_QUARTERS``
history quarters, four ratios to the charges (they move slowly and the rules make them):

- ``insured``: the insured cases' share of all charges (the rest is paid at charges, so the payment of
  the uninsured is their charges and the insured cases' DRG payment is payment − (1 − insured) × charges);
- ``patient``: the patients' share of the insured charges (deductible, 先自付, 全自费, the schemes' part);
- ``floor``: what the fund pays above DRG payment − patient share (cases where the fund's share is
  floored at 0), over the insured charges;
- ``deductions``: review deductions over the insured charges.

A settlement year is the history quarters already in it (their cases, summed as the insurer does) plus
the forecast quarters (the point forecast, and each simulation draw for the interval). The clearing
is not linear (tiers), so the interval is the clearing of every draw, not the point ± a spread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from casemix.payment import PaymentRules
from casemix.settlement import SETTLEMENT_COLUMNS, SUMMED_COLUMNS, clear_years, year_sums
from contract.errors import ConfigError, InputError

RECENT_QUARTERS = 4
HOSPITAL = "hospital"
INTERVAL_COLUMNS: tuple[str, ...] = (
    "balance",
    "balance_rate",
    "fund_due",
    "fund_final",
    "prepaid",
    "cleared",
    "surplus_kept",
    "surplus_withheld",
    "overrun_shared",
    "settled_margin",
)
FORECAST_SETTLEMENT_COLUMNS: tuple[str, ...] = (
    "year",
    "quarters_actual",
    "quarters_forecast",
    *SETTLEMENT_COLUMNS,
    *(f"{c}_{b}" for c in INTERVAL_COLUMNS for b in ("lo80", "hi80")),
)


@dataclass(frozen=True)
class Shares:
    """The ratios to charges that turn all cases' payment and charges into the insurer's settlement."""

    insured: float
    insured_cases: float
    patient: float
    floor: float
    deductions: float

    @classmethod
    def of(cls, priced: pd.DataFrame) -> Shares:
        """From priced cases (``payment.price_cases`` columns); fails when the fund/patient split is
        missing (no ``insurance_type`` or no schemes in the rules): the insurer's part is then unknown."""
        insured = priced["payment_method"] != "charges"
        if priced.loc[insured, "fund_payment"].isna().any():
            raise ConfigError(
                "settlement forecast needs the fund/patient split: give insurance_type and [[schemes]]"
            )
        charges = priced["total_cost"].astype(float)
        mine = priced[insured]
        insured_charges = float(charges[insured].sum())
        if not insured_charges > 0:
            raise InputError("settlement forecast: no insured charges in the recent quarters")
        deductions = mine.get("review_deduction", pd.Series(0.0, index=mine.index)).fillna(0.0).astype(float)
        floor = mine["fund_payment"] - (mine["drg_payment"] - mine["patient_payment"])
        return cls(
            insured=insured_charges / float(charges.sum()),
            insured_cases=float(insured.mean()),
            patient=float(mine["patient_payment"].sum()) / insured_charges,
            floor=float(floor.sum()) / insured_charges,
            deductions=float(deductions.sum()) / insured_charges,
        )

    def insurer_sums(
        self, volume: np.ndarray, payment: np.ndarray, cost: np.ndarray, prepay_share: float
    ) -> dict[str, np.ndarray]:
        """``SUMMED_COLUMNS`` of projected quarters from all cases' volume, payment and charges."""
        charges = self.insured * cost
        due = payment - (1.0 - self.insured) * cost
        patient = self.patient * charges
        fund = due - patient + self.floor * charges
        return {
            "cases": volume,
            "insured_cases": self.insured_cases * volume,
            "charges": charges,
            "drg_due": due,
            "patient_share": patient,
            "fund_due": fund,
            "review_deductions": self.deductions * charges,
            "prepaid": prepay_share * fund,
        }


def settlement_forecast(
    priced: pd.DataFrame,
    history: pd.PeriodIndex,
    future: pd.PeriodIndex,
    point: dict[str, np.ndarray],
    draws: dict[str, np.ndarray],
    rules: PaymentRules,
) -> pd.DataFrame:
    """One row of ``FORECAST_SETTLEMENT_COLUMNS`` per calendar year the forecast reaches.

    ``priced``: the history's priced cases; ``history``: its complete quarters; ``future``: the forecast
    quarters; ``point`` and ``draws``: the whole hospital's ``volume``, ``payment`` and ``cost`` per
    forecast quarter (arrays of quarters, and of draws × quarters).
    """
    quarter = priced["discharge_date"].dt.to_period("Q")
    shares = Shares.of(priced[quarter.isin(history[-RECENT_QUARTERS:])])
    years = sorted({q.year for q in future})
    actual_quarters = [q for q in history if q.year in years]
    actual = priced[quarter.isin(actual_quarters)].assign(hospital_id=HOSPITAL)
    done = year_sums(actual, rules).droplevel("hospital_id") if len(actual) else None
    year_of = np.array([q.year for q in future])
    prepay = rules.settlement.prepay_share

    def settle(volume: np.ndarray, payment: np.ndarray, cost: np.ndarray) -> pd.DataFrame:
        """Clearing of each row of (draws ×) quarters, summed per year with the actual part."""
        sums = shares.insurer_sums(volume, payment, cost, prepay)
        n = volume.shape[0]
        frames = []
        for year in years:
            in_year = year_of == year
            row = {c: sums[c][:, in_year].sum(axis=1) for c in SUMMED_COLUMNS}
            frame = pd.DataFrame(row).assign(draw=np.arange(n), year=year)
            if done is not None and year in done.index:
                frame[list(SUMMED_COLUMNS)] += done.loc[year, list(SUMMED_COLUMNS)].to_numpy(dtype=float)
            frames.append(frame)
        table = pd.concat(frames).assign(hospital_id=HOSPITAL).set_index(["hospital_id", "draw", "year"])
        return clear_years(table, rules, pooled_by=("draw", "year"))

    central = settle(*(point[m][None, :] for m in ("volume", "payment", "cost"))).droplevel(
        ["hospital_id", "draw"]
    )
    spread = settle(*(draws[m] for m in ("volume", "payment", "cost")))
    bands = spread[list(INTERVAL_COLUMNS)].groupby(level="year").quantile([0.1, 0.9]).unstack()
    out = central.assign(
        quarters_actual=[sum(q.year == y for q in actual_quarters) for y in central.index],
        quarters_forecast=[int((year_of == y).sum()) for y in central.index],
        **{
            f"{c}_{name}": bands[(c, q)].to_numpy()
            for c in INTERVAL_COLUMNS
            for name, q in (("lo80", 0.1), ("hi80", 0.9))
        },
    )
    return out.reset_index()[list(FORECAST_SETTLEMENT_COLUMNS)]
