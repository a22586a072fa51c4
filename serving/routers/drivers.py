"""Where the money goes, for finance: the DRG cells dearest against their benchmark, and why.

The service serves the latest run written by ``caselens casemix drivers`` (under
``<data_dir>/drivers``) rather than fitting a cost model and explaining every case on request; like
the surplus forecast, finance reads one run per period. Roles finance and admin.
"""

from __future__ import annotations

import json
from pathlib import Path as FilePath
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from contract.errors import NotFound, StateError
from models.drivers.story import driver_label
from serving.deps import State, require
from serving.roles import DRIVERS_ROLES
from serving.routers.pages import PageLang
from serving.schemas import Problem
from serving.security import Principal

TEMPLATES = Jinja2Templates(directory=FilePath(__file__).resolve().parent.parent / "templates")
router = APIRouter(tags=["casemix"])
# What the /v1 routes may answer besides 200 and 422 (the pages share the routes' checks).
RESPONSES: dict[int | str, dict] = {
    401: {"model": Problem, "description": "no valid API key"},
    403: {"model": Problem, "description": "the key's role may not read cost drivers"},
    503: {"model": Problem, "description": "no cost-driver run yet: run `caselens casemix drivers`"},
}
Finance = Annotated[Principal, Depends(require(*DRIVERS_ROLES))]
NO_RUN = "no cost-driver run yet: run `caselens casemix drivers`"  # answered 503 (StateError)
MAX_RANK = 100
Code = Annotated[str | None, Query(max_length=8, pattern="^[A-Za-z0-9]+$", description="only this DRG")]
PageCode = Annotated[str | None, Query(max_length=8, pattern="^[A-Za-z0-9]*$")]  # the form sends "" for all
Department = Annotated[str | None, Query(max_length=64, description="only this department")]
Top = Annotated[int | None, Query(ge=1, le=MAX_RANK, description="the first N ranked cells (default: all)")]


class Driver(BaseModel):
    driver: str = Field(description="a charge-group column or a case feature (or 'unexplained')")
    label: str = Field(description="its name in the asked language")
    per_case: float = Field(description="yuan per case it adds against the benchmark")
    share: float = Field(description="its part of the cell's total gap")


class Cell(BaseModel):
    rank: int
    hospital_id: str | None
    drg: str
    drg_name: str | None
    department: str | None = Field(None, description="none at hospital level")
    period: str
    cases: int
    payment: float
    cost: float
    surplus: float
    cost_per_case: float
    benchmark_per_case: float
    gap_per_case: float
    gap_total: float = Field(description="cases × (cost per case − benchmark): yuan over the benchmark")
    charge_groups: list[Driver] = Field(description="the charge groups adding most to the gap")
    features: list[Driver] = Field(description="the case features (SHAP) adding most to the gap")
    sentence: str
    chart: str = Field(description="URL of the cell's chart (PNG)")


class DriversAnswer(BaseModel):
    created: str
    level: str = Field(description="department or hospital")
    period: str = Field(description="month, quarter or year")
    benchmark: str
    cells_total: int = Field(description="cells of the run (all, over their benchmark or not)")
    cells_over: int
    gap_over_total: float = Field(description="yuan over the benchmark, summed over the cells over it")
    cells: list[Cell]


def drivers_dir(state: State) -> FilePath:
    return state.settings.data_dir / "drivers"


def load_run(folder: FilePath) -> tuple[dict, pd.DataFrame]:
    """The latest run's metadata and its ranked cells."""
    meta_path, cells_path = folder / "run.json", folder / "cells.csv"
    if not meta_path.is_file() or not cells_path.is_file():
        raise StateError(NO_RUN)
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    text = {k: str for k in ("hospital_id", "drg", "department", "period", "drg_name")}
    cells = pd.read_csv(cells_path, dtype=text, encoding="utf-8-sig")
    return meta, cells


def _chosen(cells: pd.DataFrame, drg: str | None, department: str | None, top: int | None) -> pd.DataFrame:
    if drg is not None:
        cells = cells[cells["drg"].str.upper() == drg.upper()]
    if department is not None and "department" in cells.columns:
        cells = cells[cells["department"] == department]
    return cells.head(top) if top is not None else cells


def _cells(cells: pd.DataFrame, lang: str, charts: str = "/v1/casemix/drivers/chart") -> list[Cell]:
    def text(value: object) -> str | None:
        return None if pd.isna(value) else str(value)

    def drivers(found: str) -> list[Driver]:
        return [
            Driver(driver=d, label=driver_label(d, lang), per_case=v, share=s)
            for d, v, s in json.loads(found)
        ]

    return [
        Cell(
            rank=int(row["rank"]),
            hospital_id=text(row["hospital_id"]),
            drg=row["drg"],
            drg_name=text(row["drg_name"]),
            department=text(row.get("department")),
            period=row["period"],
            cases=int(row["cases"]),
            **{
                k: float(row[k])
                for k in (
                    "payment",
                    "cost",
                    "surplus",
                    "cost_per_case",
                    "benchmark_per_case",
                    "gap_per_case",
                    "gap_total",
                )
            },
            charge_groups=drivers(row["top_charge_groups"]),
            features=drivers(row["top_features"]),
            sentence=row["sentence_zh" if lang == "zh" else "sentence_en"],
            chart=f"{charts}/{int(row['rank'])}",
        )
        for row in cells.to_dict("records")
    ]


@router.get(
    "/v1/casemix/drivers",
    response_model=DriversAnswer,
    summary="DRG cost drivers, ranked",
    responses=RESPONSES,
)
def cost_drivers(
    state: State,
    principal: Finance,
    lang: PageLang,
    drg: Code = None,
    department: Department = None,
    top: Top = None,
) -> DriversAnswer:
    """The cells dearest against their DRG's benchmark, each gap decomposed by charge group and by case
    feature, with a sentence in Chinese (``lang=zh`` or Accept-Language) or English."""
    meta, cells = load_run(drivers_dir(state))
    state.audit.record(key_id=principal.key_id, role=principal.role, endpoint="/v1/casemix/drivers")
    return DriversAnswer(
        created=meta["created"],
        level=meta["level"],
        period=meta["period"],
        benchmark=meta["benchmark"],
        cells_total=meta["cells"],
        cells_over=meta["cells_over"],
        gap_over_total=meta["gap_over_total"],
        cells=_cells(_chosen(cells, drg, department, top), lang),
    )


@router.get(
    "/v1/casemix/drivers/chart/{rank}",
    response_class=FileResponse,
    summary="A ranked cell's chart",
    responses={**RESPONSES, 404: {"model": Problem, "description": "the latest run ranked fewer cells"}},
)
def driver_chart(
    state: State, principal: Finance, rank: Annotated[int, Path(ge=1, le=MAX_RANK)]
) -> FileResponse:
    """The PNG written with the run: the cell's gap per case by charge group and by case feature."""
    return _chart(state, principal, rank, "/v1/casemix/drivers/chart")


@router.get("/drivers/chart/{rank}", response_class=FileResponse, include_in_schema=False)
def driver_page_chart(
    state: State, principal: Finance, rank: Annotated[int, Path(ge=1, le=MAX_RANK)]
) -> FileResponse:
    """The same chart for the page: ``/v1`` takes API keys only, the page's browser has a session."""
    return _chart(state, principal, rank, "/drivers/chart")


def _chart(state: State, principal: Principal, rank: int, endpoint: str) -> FileResponse:
    load_run(drivers_dir(state))
    path = drivers_dir(state) / f"cell-{rank:02d}.png"
    if not path.is_file():
        raise NotFound(f"the latest cost-driver run has no cell ranked {rank}")
    state.audit.record(key_id=principal.key_id, role=principal.role, endpoint=endpoint)
    return FileResponse(path, media_type="image/png")


@router.get("/drivers", response_class=HTMLResponse, include_in_schema=False)
def drivers_page(
    request: Request,
    state: State,
    lang: PageLang,
    principal: Finance,
    drg: PageCode = None,
    department: Department = None,
    top: Top = None,
):
    """The page finance staff read: the ranked cells, each with its sentence and bar chart."""
    meta, cells = load_run(drivers_dir(state))
    state.audit.record(key_id=principal.key_id, role=principal.role, endpoint="/drivers")
    departments = sorted(cells["department"].dropna().unique()) if "department" in cells.columns else []
    context = {
        "lang": lang,
        "principal": principal,
        "meta": meta,
        "cells": _cells(_chosen(cells, drg or None, department or None, top), lang, "/drivers/chart"),
        "departments": departments,
        "department": department or "",
        "drg": drg or "",
    }
    return TEMPLATES.TemplateResponse(request, "drivers.html", context)
