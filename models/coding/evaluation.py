"""How a review worklist is judged: what share of the errors, and of the money, the top of it finds.

A coding team reviews a fixed share of abstracts, so the question is not only AUPRC but: reviewing
the top 5%, 10% or 20% of cases by the model's ranking, what share of all errors and of all money at
stake (|payment as coded − payment corrected|) is found, and how precise is that top list.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SHARES = (0.05, 0.10, 0.20)


def top_share_yield(
    score: np.ndarray, error: np.ndarray, money: np.ndarray | None = None, shares: tuple[float, ...] = SHARES
) -> dict[str, float]:
    """Precision, share of errors found and share of money found in the top ``share`` of ``score``."""
    score, error = np.asarray(score, float), np.asarray(error, float)
    order = np.argsort(-score, kind="stable")
    out: dict[str, float] = {}
    stake = None if money is None else np.abs(np.nan_to_num(np.asarray(money, float))) * error
    for share in shares:
        k = max(1, round(share * len(score)))
        top = order[:k]
        tag = f"top{round(share * 100)}pct"
        out[f"precision_{tag}"] = float(error[top].mean())
        out[f"errors_found_{tag}"] = float(error[top].sum() / error.sum()) if error.sum() else float("nan")
        if stake is not None:
            out[f"money_found_{tag}"] = float(stake[top].sum() / stake.sum()) if stake.sum() else float("nan")
    return out


def money_at_stake_of(labels: pd.DataFrame) -> np.ndarray | None:
    """The audited errors' money at stake when the labels carry it."""
    return labels["money_at_stake"].to_numpy(float) if "money_at_stake" in labels.columns else None
