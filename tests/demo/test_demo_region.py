"""The demo city's RW table: calibrated on the region's claims net of negotiated drugs, to its budget."""

from __future__ import annotations

import pandas as pd
import pytest

from casemix.rw_table import INSURER, weights_source
from casemix.tables import load_tables
from pipelines.demo.region import Peer, regional_claims, regional_rw_table


class RecordedGroups:
    """A casemix engine that groups claims into the groups they were made with."""

    def __init__(self, drgs: list[str]) -> None:
        self.drgs = drgs
        self.tables = load_tables()

    def group(self, claims: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {"status": "grouped", "drg": self.drgs, "adrg": [d[:3] for d in self.drgs]}, index=claims.index
        )


def test_weights_are_on_cost_net_of_negotiated_drugs_and_scaled_to_the_budget() -> None:
    """40 claims of AA11 at 12,000 (2,000 negotiated drugs) and 40 of BB11 at 33,000 (3,000).

    Inside the DRG they cost 10,000 and 30,000; the budget is their sum, 1,600,000. Before the
    adjustment RW = 10,000 / 20,000 = 0.5 and 1.5 (Σ over claims 80); at the first base rate of 10,000
    the factor is 1,600,000 / (10,000 × 80) = 2, so RW 1.0 and 3.0: RW × base rate is the mean cost
    inside the DRG, and negotiated drugs, paid outside the DRG, are not in it a second time.
    """
    claims = pd.DataFrame(
        {
            "los_days": [5] * 40 + [10] * 40,
            "total_cost": [12000.0] * 40 + [33000.0] * 40,
            "cost_negotiated_drugs": [2000.0] * 40 + [3000.0] * 40,
        }
    )
    table = regional_rw_table(claims, RecordedGroups(["AA11"] * 40 + ["BB11"] * 40))
    assert table["mean_cost"].to_dict() == pytest.approx({"AA11": 10000.0, "BB11": 30000.0})
    assert table["rw"].to_dict() == pytest.approx({"AA11": 1.0, "BB11": 3.0})
    assert table["mean_los"].to_dict() == pytest.approx({"AA11": 5.0, "BB11": 10.0})
    assert weights_source(table) == INSURER


def test_the_region_is_wider_and_cheaper_than_one_hospital() -> None:
    peers = (
        Peer(seed=1, cases=1500, price_level=1.0, stay_level=1.0, lighter=0.0),
        Peer(seed=2, cases=1500, price_level=0.5, stay_level=2.0, lighter=0.0),
    )
    claims = regional_claims(peers, years=2)
    assert len(claims) == 3000
    cheap = claims.iloc[1500:]
    assert cheap["total_cost"].sum() < 0.6 * claims.iloc[:1500]["total_cost"].sum()
    assert cheap["los_days"].mean() > 1.6 * claims.iloc[:1500]["los_days"].mean()
