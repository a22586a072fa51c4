"""The ward watch-list page (在院预警) for clinicians: the stays in hospital ranked by expected overrun.

The page serves the latest list written by ``caselens watch`` (``<data_dir>/reports``, found through
``watch_latest.json``) rather than scoring every stay on request: a ward reads the list of the day,
and the single-stay endpoint (``POST /v1/predict/in-stay``) answers for one stay now. Roles clinician
and admin.
"""

from __future__ import annotations

import json
import re
from pathlib import Path as FilePath
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from contract.errors import NotFound, StateError
from models.watch_list import WATCH_COLUMNS
from pipelines.watch import LATEST, watch_path
from serving.deps import State, require
from serving.roles import WATCH_ROLES
from serving.routers.pages import PageLang, sort_links
from serving.security import Principal

TEMPLATES = Jinja2Templates(directory=FilePath(__file__).resolve().parent.parent / "templates")
router = APIRouter(tags=["in-stay"])
Clinician = Annotated[Principal, Depends(require(*WATCH_ROLES))]
NO_WATCH = "no watch list yet: run `caselens watch --as-of DAY`"  # answered 503 (StateError)
SORTABLE = (
    "rank",
    "case_id",
    "department",
    "day_of_stay",
    "cost_to_date",
    "ratio_to_date",
    "predicted_final_cost",
    "overrun_probability",
    "expected_overrun",
    "warning_level",
)
MAX_ROWS = 1000
Department = Annotated[str | None, Query(max_length=64, description="only this department")]
Day = Annotated[str | None, Query(pattern=r"^(\d{4}-\d{2}-\d{2})?$", description="the day's list")]
Sort = Annotated[str, Query(max_length=32)]
DAY_FILE = re.compile(r"^watch_(\d{4}-\d{2}-\d{2})\.csv$")


def reports_dir(state: State) -> FilePath:
    return state.settings.data_dir / "reports"


def load_watch(folder: FilePath, day: str | None = None) -> tuple[dict, pd.DataFrame]:
    """The latest watch list (or the whole-hospital list of ``day``) and what it is."""
    latest = folder / LATEST
    if not latest.is_file():
        raise StateError(NO_WATCH)
    meta = json.loads(latest.read_text(encoding="utf-8"))
    path = FilePath(meta["file"])
    if day and day != meta["as_of"]:
        path = watch_path(folder, pd.Timestamp(day))
        if not path.is_file():
            raise NotFound(f"no watch list for {day}: run `caselens watch --as-of {day}`")
        meta = {"as_of": day, "department": None, "created": None}
    if not path.is_file():
        raise StateError(f"the latest watch list {path.name} is gone: {NO_WATCH}")
    text = {
        "case_id": str,
        "department": str,
        "pregrouped_drg": str,
        "warning_level": str,
        "top_reasons": str,
    }
    rows = pd.read_csv(path, dtype=text, encoding="utf-8-sig", keep_default_na=False, na_values=[""])
    missing = [c for c in WATCH_COLUMNS if c not in rows.columns]
    if missing:
        raise StateError(f"watch list {path.name} lacks column(s) {', '.join(missing)}: run `caselens watch`")
    return meta, rows


def _days(folder: FilePath) -> list[str]:
    """The days with a whole-hospital list, newest first (the day picker)."""
    found = (DAY_FILE.match(p.name) for p in folder.glob("watch_*.csv"))
    return sorted((m.group(1) for m in found if m), reverse=True)


def _discharged(state: State, ids: pd.Series) -> set[str]:
    """The listed ids that have a case page (an abstract): a stay still in hospital usually has none."""
    try:
        known = state.cases.frame()["case_id"]
    except StateError:
        return set()
    return set(ids[ids.isin(known)])


@router.get("/watch", response_class=HTMLResponse, include_in_schema=False)
def watch_page(
    request: Request,
    state: State,
    lang: PageLang,
    principal: Clinician,
    department: Department = None,
    day: Day = None,
    sort: Sort = "rank",
    descending: bool = False,
):
    """The ward's watch list: sortable by its column headers, filterable by department and day; each
    stay links to its case page when it has one, else to its details below the table."""
    folder = reports_dir(state)
    meta, rows = load_watch(folder, day or None)
    departments = sorted(rows["department"].dropna().unique())
    if department:
        rows = rows[rows["department"] == department]
    sort = sort if sort in SORTABLE else "rank"
    rows = rows.sort_values(sort, ascending=not descending, kind="stable", na_position="last").head(MAX_ROWS)
    state.audit.record(
        key_id=principal.key_id, role=principal.role, endpoint="/watch", case_ids=rows["case_id"].tolist()
    )

    sort_link = sort_links("/watch", sort, descending, lang=lang, department=department, day=day)

    records = rows.astype(object).where(rows.notna(), None).to_dict("records")
    for row in records:
        row["reasons"] = [r for r in (row["top_reasons"] or "").split("; ") if r]
    context = {
        "lang": lang,
        "principal": principal,
        "meta": meta,
        "rows": records,
        "pages": _discharged(state, rows["case_id"]),
        "departments": departments,
        "department": department or "",
        "days": _days(folder),
        "day": meta["as_of"],
        "sort": sort,
        "descending": descending,
        "sort_link": sort_link,
        "sortable": SORTABLE,
    }
    return TEMPLATES.TemplateResponse(request, "watch.html", context)
