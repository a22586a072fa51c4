"""The demo city's published RW table, calibrated the insurer's way from a region wider than the hospital.

An insurer calibrates weights on a few years of its whole region's settled claims, not on one
hospital, so the demo hospital is measured against others: its CCI, TCI and CMI are not 1 by
construction. The region here is a set of peer hospitals simulated like the demo hospital (fixed seeds,
never the demo's own data) but each with its own price level and length-of-stay habits, and the
smaller ones with a lighter case mix (heavy stays go to the big hospitals). The region's as-coded
claims are grouped, trimmed and calibrated with ``REGION_CALIBRATION`` on cost net of the items paid
outside the DRG, then scaled so that at the city's first base rate the region's DRG payments add up
to its cost inside the DRG (the fund's budget is the region's spending: the region breaks even,
a hospital dearer than its region does not). The result ships as
``casemix/config/rw_table.demo-region.csv``, which the embedded payment rules name::

    .venv/bin/python -m pipelines.demo.region
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import typer

from casemix.engine import CasemixEngine
from casemix.payment import DEFAULT_RULES, PaymentRules, drg_cost
from casemix.rw_table import write_weights
from casemix.weights import Calibration, calibrate_weights
from contract.fields import COST_CATEGORIES
from pipelines.demo.generate import generate_demo

REGION_TABLE = DEFAULT_RULES.parent / "rw_table.demo-region.csv"
REGION_CALIBRATION = {"trim": "iqr", "k": 1.5, "min_cases": 30, "max_cv": 1.0, "unstable": "adrg"}
MONEY_COLUMNS = ("total_cost", *COST_CATEGORIES, "cost_negotiated_drugs")
PUBLISHED_DECIMALS = {"rw": 4, "mean_cost": 2, "mean_los": 2, "cv": 3}  # as insurers print them


@dataclass(frozen=True)
class Peer:
    """A hospital of the region: its size, price level, stay habits and how light its case mix is
    (cases kept with probability (median expected cost / expected cost) ** lighter)."""

    seed: int
    cases: int
    price_level: float
    stay_level: float
    lighter: float


PEERS: tuple[Peer, ...] = (
    Peer(seed=9101, cases=16_000, price_level=1.00, stay_level=0.95, lighter=0.0),
    Peer(seed=9102, cases=14_000, price_level=0.95, stay_level=1.05, lighter=0.4),
    Peer(seed=9103, cases=12_000, price_level=0.92, stay_level=0.90, lighter=0.7),
    Peer(seed=9104, cases=12_000, price_level=0.88, stay_level=1.10, lighter=0.9),
    Peer(seed=9105, cases=10_000, price_level=0.85, stay_level=1.00, lighter=1.1),
)


def regional_claims(peers: tuple[Peer, ...] = PEERS, years: int = 3) -> pd.DataFrame:
    """The region's claims: each peer's simulated stays at its price level and stay habits."""
    rules = own_history_rules()
    frames = []
    for peer in peers:
        hospital = generate_demo(peer.cases, years, peer.seed, rules=rules)
        rng = np.random.default_rng(peer.seed)
        expected = hospital.oracle["expected_cost"].to_numpy()
        keep = rng.random(len(expected)) < np.minimum(1.0, (np.median(expected) / expected) ** peer.lighter)
        cases = hospital.cases[keep].copy()
        cases[list(MONEY_COLUMNS)] = (cases[list(MONEY_COLUMNS)] * peer.price_level).round(2)
        cases["los_days"] = np.maximum(np.round(cases["los_days"] * peer.stay_level), 1).astype(np.int64)
        frames.append(cases)
    return pd.concat(frames, ignore_index=True)


def own_history_rules() -> PaymentRules:
    """The embedded rules without an RW table: what the region's simulation settles with (its
    settlement is not used; only the regional table is being made)."""
    rules = PaymentRules.load()
    return rules.model_copy(update={"calibration": rules.calibration.model_copy(update={"rw_table": None})})


def regional_rw_table(claims: pd.DataFrame, engine: CasemixEngine | None = None) -> pd.DataFrame:
    """The insurer's RW table from the region's claims: grouped, trimmed, unstable groups from their
    ADRG, calibrated on the cost inside the DRG, scaled to the region's budget at the first base rate."""
    engine = engine or CasemixEngine()
    grouped = pd.concat([claims, engine.group(claims)[["status", "drg", "adrg"]]], axis=1)
    rules = PaymentRules.load()
    inside = drg_cost(grouped, rules)
    budget = float(inside[grouped["status"].eq("grouped")].sum())
    first_rate = min(rules.base_rates, key=lambda r: r.effective_from).yuan
    calibration = Calibration(**REGION_CALIBRATION, adjust="budget", budget_yuan=budget, base_rate=first_rate)
    table = calibrate_weights(grouped, calibration, cost=inside)
    names = engine.tables.drg_name
    return table.assign(name=[names(drg) for drg in table.index], source="insurer")


def main(output: Path = typer.Option(REGION_TABLE, "-o", "--output", help="RW table CSV")) -> None:
    """Simulate the region, calibrate its RW table and write it as the insurer would publish it."""
    table = regional_rw_table(regional_claims())
    write_weights(table.drop(columns="source").round(PUBLISHED_DECIMALS), output)
    typer.echo(f"{len(table)} DRGs from {int(table['n_cases'].sum()):,} kept claims → {output}")


if __name__ == "__main__":
    typer.run(main)
