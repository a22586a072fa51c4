"""The quarterly surplus forecast for finance: JSON, its chart, and a bilingual page.

The service serves the latest run written by ``caselens forecast surplus`` (under
``<data_dir>/forecast``) rather than simulating on request: a forecast takes seconds to minutes and
finance reads the same one all quarter. Roles finance and admin.
"""

from __future__ import annotations

import json
from pathlib import Path as FilePath
from typing import Annotated, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from contract.errors import StateError
from serving.deps import State, require
from serving.roles import FORECAST_ROLES
from serving.routers.pages import PageLang
from serving.schemas import input_error
from serving.security import Principal

Level = Literal["hospital", "department", "drg"]
TEMPLATES = Jinja2Templates(directory=FilePath(__file__).resolve().parent.parent / "templates")
router = APIRouter(tags=["forecast"])
Finance = Annotated[Principal, Depends(require(*FORECAST_ROLES))]
MEASURES = ("volume", "payment", "cost", "surplus")
NO_FORECAST = "no surplus forecast yet: run `caselens forecast surplus`"  # answered 503 (StateError)
LOSS_ROWS_SHOWN = 20  # cells on the page; the API and loss-risk.csv have all


class Band(BaseModel):
    value: float = Field(description="point forecast (or actual)")
    lo80: float | None = None
    hi80: float | None = None
    lo95: float | None = None
    hi95: float | None = None


class Row(BaseModel):
    key: str = Field(description="'hospital', a department or a DRG code")
    name: str | None = Field(None, description="DRG name")
    quarter: str
    kind: Literal["actual", "forecast"]
    rate: float | None = Field(None, description="base rate in force (yuan per RW), forecast quarters")
    volume: Band
    payment: Band
    cost: Band
    surplus: Band


class SettlementYear(BaseModel):
    """The hospital-year as the insurer will clear it (``models.forecast.settlement``): settled quarters
    plus forecast ones; 80% intervals from the simulation draws."""

    year: int
    quarters_actual: int = Field(description="quarters of the year already in the history")
    quarters_forecast: int = Field(description="quarters of the year forecast")
    charges: float = Field(description="charges of the insured cases")
    drg_due: float = Field(description="DRG payment due for them")
    balance: Band = Field(description="DRG due − charges")
    balance_rate: Band = Field(description="结算差额率: balance / charges")
    patient_share: float
    fund_due: Band = Field(description="统筹基金 due before the year-end rules")
    surplus_kept: Band = Field(description="结余留用: surplus the hospital keeps")
    surplus_withheld: Band = Field(description="surplus the fund does not pay")
    overrun_shared: Band = Field(description="超支分担: overrun the fund pays")
    quality_withheld: float = Field(description="质量保证金 withheld")
    quality_returned: float = Field(description="质量保证金 returned (quality score 100)")
    review_deductions: float = Field(description="审核扣款")
    fund_final: Band = Field(description="the fund's payment after the year-end rules")
    prepaid: Band = Field(description="预拨: prepaid month by month")
    cleared: Band = Field(description="清算: paid (negative: clawed back) at year end")
    settled_margin: Band = Field(description="patients' shares + fund final − charges")


class SurplusForecastAnswer(BaseModel):
    level: Level
    horizon: int
    created: str
    history: list[str] = Field(description="first and last history quarter")
    forecast: list[str]
    scenario: dict | None = Field(description="the scenario the run also simulated, if any")
    weights_source: str | None = Field(
        None, description="'insurer table' or 'estimated from own history' (then payments are estimates)"
    )
    rows: list[Row]
    settlement: list[SettlementYear] | None = Field(
        None, description="each year the run's forecast reaches, settled as the insurer will (full horizon)"
    )
    settlement_note: str | None = Field(None, description="why there is no settlement forecast")


class LossQuarter(BaseModel):
    """One forecast quarter of a cell: its loss risk and what moves its surplus against a year before."""

    quarter: str
    h: int = Field(description="quarters ahead (1: the first forecast quarter)")
    p_loss: float = Field(description="probability that the cell's surplus is negative (published)")
    p_loss_simulated: float = Field(description="the share of simulation draws that lose money")
    expected_loss: float = Field(description="mean loss over the draws (a surplus counts as 0), yuan")
    volume: float
    payment: float
    cost: float
    surplus: float = Field(description="point forecast, yuan")
    reference_quarter: str = Field(description="the same quarter a year before")
    reference_surplus: float | None = Field(None, description="its surplus (actual, or forecast)")
    driver_volume: float | None = Field(None, description="part of the surplus change due to cases")
    driver_payment_change: float | None = Field(None, description="part due to payment per case")
    driver_cost_trend: float | None = Field(None, description="part due to cost per case")


class LossCell(BaseModel):
    rank: int = Field(description="1: the largest expected loss over the quarters shown")
    department: str
    adrg: str
    drg: str
    name: str | None = None
    expected_loss_total: float = Field(description="expected loss summed over the quarters shown, yuan")
    loss_rate_history: float = Field(description="smoothed share of the cell's history quarters that lost")
    quarters: list[LossQuarter]


class LossRiskAnswer(BaseModel):
    created: str
    forecast: list[str]
    probability: Literal["calibrated", "simulated"] = Field(
        description="calibrated on the backtest, or as simulated (no backtest in the run)"
    )
    backtest: dict | None = Field(None, description="Brier scores of the probabilities and the naive rules")
    cells: list[LossCell]


def forecast_dir(state: State) -> FilePath:
    return state.settings.data_dir / "forecast"


def load_run(folder: FilePath, level: str, horizon: int | None) -> tuple[dict, pd.DataFrame]:
    """The run's metadata and the level's table cut to ``horizon`` forecast quarters (all: None)."""
    meta_path, table_path = folder / "run.json", folder / f"surplus-{level}.csv"
    if not meta_path.is_file() or not table_path.is_file():
        raise StateError(NO_FORECAST)
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    horizon = meta["horizon"] if horizon is None else horizon
    if horizon > meta["horizon"]:
        too_far = ValueError(f"horizon {horizon} exceeds the latest run's {meta['horizon']} quarters")
        raise input_error(["query", "horizon"], too_far)  # the documented 422: a list naming the field
    table = pd.read_csv(table_path, dtype={"key": str, "quarter": str}, encoding="utf-8-sig")
    keep = meta["forecast"][:horizon]
    table = table[(table["kind"] == "actual") | table["quarter"].isin(keep)]
    return {**meta, "forecast": keep, "max_horizon": meta["horizon"], "horizon": horizon}, table


def _rows(table: pd.DataFrame) -> list[Row]:
    def number(value: object) -> float | None:
        return None if pd.isna(value) else float(value)

    rows = []
    for record in table.to_dict("records"):
        bands = {
            m: Band(
                value=record[m],
                **{b: number(record.get(f"{m}_{b}")) for b in ("lo80", "hi80", "lo95", "hi95")},
            )
            for m in MEASURES
        }
        name = record.get("name")
        rows.append(
            Row(
                key=record["key"],
                name=None if pd.isna(name) else name,
                quarter=record["quarter"],
                kind=record["kind"],
                rate=number(record.get("rate")),
                **bands,
            )
        )
    return rows


def _settlement(meta: dict) -> list[SettlementYear] | None:
    """run.json's settlement rows, an interval column ``c`` with its ``c_lo80``/``c_hi80`` as a Band."""
    if meta.get("settlement") is None:
        return None
    bands = {n for n, f in SettlementYear.model_fields.items() if f.annotation is Band}
    return [
        SettlementYear(
            **{
                name: Band(value=row[name], lo80=row.get(f"{name}_lo80"), hi80=row.get(f"{name}_hi80"))
                if name in bands
                else row[name]
                for name in SettlementYear.model_fields
            }
        )
        for row in meta["settlement"]
    ]


@router.get(
    "/v1/forecast/surplus", response_model=SurplusForecastAnswer, summary="Quarterly surplus forecast"
)
def surplus_forecast(
    state: State,
    principal: Finance,
    level: Annotated[Level, Query(description="hospital, department or drg (the top DRGs)")] = "hospital",
    horizon: Annotated[int | None, Query(ge=1, le=12, description="forecast quarters (default: all)")] = None,
) -> SurplusForecastAnswer:
    """History and forecast of case volume, payment, cost and surplus with 80% and 95% intervals."""
    meta, table = load_run(forecast_dir(state), level, horizon)
    state.audit.record(key_id=principal.key_id, role=principal.role, endpoint="/v1/forecast/surplus")
    return SurplusForecastAnswer(
        level=level,
        horizon=meta["horizon"],
        created=meta["created"],
        history=meta["history"],
        forecast=meta["forecast"],
        scenario=meta.get("scenario"),
        weights_source=meta.get("weights_source"),
        rows=_rows(table),
        settlement=_settlement(meta),
        settlement_note=meta.get("settlement_note"),
    )


def load_loss_risk(
    folder: FilePath, horizon: int | None, top: int | None, department: str | None = None
) -> tuple[dict, pd.DataFrame]:
    """The run's metadata and its loss-risk table cut to ``horizon`` quarters (and one department),
    re-ranked over them."""
    meta, _ = load_run(folder, "hospital", horizon)
    path = folder / "loss-risk.csv"
    if not path.is_file() or meta.get("loss_risk") is None:
        raise StateError(NO_FORECAST)
    keys = {"department": str, "adrg": str, "drg": str, "name": str, "quarter": str, "reference_quarter": str}
    table = pd.read_csv(path, dtype=keys, encoding="utf-8-sig")
    table = table[table["quarter"].isin(meta["forecast"])]
    if department is not None:
        table = table[table["department"] == department]
    cells = ["department", "adrg", "drg"]
    table["expected_loss_total"] = table.groupby(cells)["expected_loss"].transform("sum")
    order = table.drop_duplicates(cells).sort_values(
        ["expected_loss_total", *cells], ascending=[False, True, True, True], kind="stable"
    )
    order["rank"] = range(1, len(order) + 1)
    if top is not None:
        order = order.head(top)
    table = table.drop(columns="rank").merge(order[[*cells, "rank"]], on=cells)
    return meta, table.sort_values(["rank", "h"], kind="stable")


def _cells(table: pd.DataFrame) -> list[LossCell]:
    """The ranked table as cells, each with its quarters (an empty value, e.g. no reference: None)."""
    cells = []
    for _, rows in table.groupby("rank", sort=True):
        first = rows.iloc[0]
        quarters = [
            LossQuarter(**{name: None if pd.isna(r[name]) else r[name] for name in LossQuarter.model_fields})
            for r in rows.to_dict("records")
        ]
        cells.append(
            LossCell(
                rank=int(first["rank"]),
                department=first["department"],
                adrg=first["adrg"],
                drg=first["drg"],
                name=None if pd.isna(first["name"]) else first["name"],
                expected_loss_total=float(first["expected_loss_total"]),
                loss_rate_history=float(first["loss_rate_history"]),
                quarters=quarters,
            )
        )
    return cells


@router.get(
    "/v1/forecast/loss-risk",
    response_model=LossRiskAnswer,
    summary="Each DRG × department's probability of losing money next quarters",
)
def loss_risk_forecast(
    state: State,
    principal: Finance,
    horizon: Annotated[int | None, Query(ge=1, le=12, description="forecast quarters (default: all)")] = None,
    top: Annotated[int, Query(ge=1, le=5000, description="cells, ranked by expected loss")] = 50,
    department: Annotated[
        str | None, Query(max_length=100, description="one department's cells only (none: every cell)")
    ] = None,
) -> LossRiskAnswer:
    """Per department × DRG and quarter: probability of a negative surplus, expected loss and the
    volume / payment / cost drivers of the surplus change against a year before, ranked by expected loss."""
    meta, table = load_loss_risk(forecast_dir(state), horizon, top, department)
    state.audit.record(key_id=principal.key_id, role=principal.role, endpoint="/v1/forecast/loss-risk")
    return LossRiskAnswer(
        created=meta["created"],
        forecast=meta["forecast"],
        probability=meta["loss_risk"]["probability"],
        backtest=meta["loss_risk"].get("backtest"),
        cells=_cells(table),
    )


@router.get(
    "/v1/forecast/loss-risk/chart", response_class=FileResponse, summary="Chart of the loss risk per DRG"
)
def loss_risk_chart(state: State, principal: Finance) -> FileResponse:
    """The PNG written with the run: the cells with the largest expected loss, and the reliability
    of the loss probabilities in the backtest."""
    path = forecast_dir(state) / "loss-risk.png"
    if not path.is_file():
        raise StateError(NO_FORECAST)
    state.audit.record(key_id=principal.key_id, role=principal.role, endpoint="/v1/forecast/loss-risk/chart")
    return FileResponse(path, media_type="image/png")


@router.get(
    "/v1/forecast/surplus/chart", response_class=FileResponse, summary="Chart of the surplus forecast"
)
def surplus_chart(state: State, principal: Finance, level: Level = "hospital") -> FileResponse:
    """The PNG written with the run: history, forecast and the 80%/95% bands."""
    path = forecast_dir(state) / f"surplus-{level}.png"
    if not path.is_file():
        raise StateError(NO_FORECAST)
    state.audit.record(key_id=principal.key_id, role=principal.role, endpoint="/v1/forecast/surplus/chart")
    return FileResponse(path, media_type="image/png")


PageChart = Literal["loss-risk.png", "surplus-hospital.png", "surplus-department.png", "surplus-drg.png"]


@router.get("/forecast/charts/{name}", response_class=FileResponse, include_in_schema=False)
def forecast_page_chart(state: State, principal: Finance, name: PageChart) -> FileResponse:
    """The run's charts for the page: off ``/v1``, so the login session's cookie opens them (``/v1``
    takes a key in a header only, which an ``<img>`` cannot send)."""
    path = forecast_dir(state) / name
    if not path.is_file():
        raise StateError(NO_FORECAST)
    state.audit.record(key_id=principal.key_id, role=principal.role, endpoint="/forecast/charts")
    return FileResponse(path, media_type="image/png")


@router.get("/forecast", response_class=HTMLResponse, include_in_schema=False)
def forecast_page(
    request: Request,
    state: State,
    lang: PageLang,
    principal: Finance,
    level: Level = "hospital",
    horizon: Annotated[int | None, Query(ge=1, le=12)] = None,
):
    """The page finance staff read: the chart and the forecast table, in Chinese or English."""
    meta, table = load_run(forecast_dir(state), level, horizon)
    state.audit.record(key_id=principal.key_id, role=principal.role, endpoint="/forecast")
    rows = table[table["kind"] == "forecast"].to_dict("records")
    try:
        loss_cells = _cells(load_loss_risk(forecast_dir(state), horizon, LOSS_ROWS_SHOWN)[1])
    except StateError:  # a run written before the loss risk existed: the page shows the rest
        loss_cells = None
    context = {
        "lang": lang,
        "principal": principal,
        "level": level,
        "horizon": meta["horizon"],
        "meta": meta,
        "rows": rows,
        "settlement": _settlement(meta),
        "max_horizon": meta["max_horizon"],
        "loss_cells": loss_cells,
        "loss_meta": meta.get("loss_risk"),
    }
    return TEMPLATES.TemplateResponse(request, "forecast.html", context)
