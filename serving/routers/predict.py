"""Prediction endpoints: one case or a batch, for every served task, each with its SHAP explanation.

The routes are generated per served task (``serving.tasks``: the task registry plus who may ask)
so every task gets the same shape, its stage's request schema and its roles; a task whose model is
not loaded answers 503. One-case requests are scored in micro-batches (``serving.singles``); a batch
request is scored as it comes, with ``explain_threads`` threads for SHAP when it is large.

The answers are built to the response schemas (``serving.schemas``, tested) and written straight to
JSON: validating 10,000 explained predictions again against the schema took longer than scoring them.
The schemas still document the endpoints in the OpenAPI spec.

A request without its own ``history`` reads its patients' stays from the case store: that read is
audited with the patient ids, counted against the key's per-minute budget (``serving.budget``, 429
above it), and its features are named in explanations only to ``HISTORY_ROLES``
(``serving.predictions.withheld_features``).
"""

# No `from __future__ import annotations` here: the generated handlers' body types are local variables,
# which FastAPI can only see as real annotations.
import logging
from collections.abc import Mapping
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic_core import to_json
from starlette.concurrency import run_in_threadpool

from contract.fields import canonical_records
from features.history import StayIndex
from models.tracking import CHAMPION
from serving.batching import MicroBatcher
from serving.cases import CasesUnavailable
from serving.deps import Lang, ServiceState, State, require
from serving.predictions import ScoringError, predict_explained, withheld_features
from serving.registry import ServedModel
from serving.schemas import (
    BATCH_MODELS,
    ERROR_RESPONSES,
    SINGLE_MODELS,
    BatchResponse,
    PredictResponse,
    input_error,
)
from serving.security import Principal
from serving.singles import CaseRequest, ModelUnavailable, score_requests
from serving.tasks import ServedTask

log = logging.getLogger(__name__)

BIG_BATCH = 1_000  # cases from which a batch's SHAP pass uses ``explain_threads`` threads
MAX_TOP = 50  # most contributions one explanation lists

PREFIX = "/v1/predict"

Top = Annotated[
    int | None,
    Query(ge=1, le=MAX_TOP, description=f"how many contributions to list (default 8, at most {MAX_TOP})"),
]


def served(state: State, task: ServedTask) -> ServedModel:
    model = state.registry.models.get(task.name)
    if model is None:
        raise HTTPException(
            503, f"model {task.model_name} is not loaded (no {CHAMPION!r} version registered yet)"
        )
    return model


def _run(
    state: State,
    task: ServedTask,
    cases: list[Any],
    history: list[Any] | None,
    lang: str,
    top: int | None,
    principal: Principal,
    endpoint: str,
) -> dict[str, Any]:
    limit = state.serving.max_batch
    if len(cases) + len(history or []) > limit:
        raise HTTPException(413, f"at most {limit} cases (history included) per request")
    model = served(state, task)
    frame = canonical_records([case.model_dump() for case in cases])
    case_ids = frame["case_id"].tolist() if "case_id" in frame.columns else []
    patients = [] if history or "patient_id" not in frame.columns else frame["patient_id"].tolist()
    looked_up = _read_history(state, principal, endpoint, case_ids, patients)
    try:
        predictions = predict_explained(
            model,
            frame,
            history=_history(state, frame, history),
            language=lang,
            top=top or state.serving.top_contributions,
            threads=state.serving.explain_threads if len(frame) >= BIG_BATCH else 1,
            tables=state.settings.casemix_tables,
            withheld=withheld_features(model, principal.role, stored_history=looked_up),
        )
    except ScoringError as error:
        raise input_error(["body", "cases" if endpoint.endswith("/batch") else "case"], error) from error
    return {"model": {"name": model.name, "version": model.version}, "predictions": predictions}


def _read_history(
    state: State, who: Principal, endpoint: str, case_ids: list[Any], patient_ids: list[Any]
) -> bool:
    """Audit the request, with the patients whose stored stays it reads; whether it reads any.

    ``patient_ids`` are the request's patients when their history comes from the store (none when
    the request sends its own). A request reading more patients than the key's budget has left is
    refused (429) before anything is read; the refusal is logged by key id and count (patient ids go
    to the audit log only).
    """
    patients = list(dict.fromkeys(p for p in patient_ids if p is not None and not pd.isna(p)))
    if not patients:
        state.audit.record(key_id=who.key_id, role=who.role, endpoint=endpoint, case_ids=case_ids)
        return False
    wait = state.history_budget.take(who.key_id, len(patients))
    if wait is not None:
        state.audit.record(
            key_id=who.key_id,
            role=who.role,
            endpoint=endpoint,
            case_ids=case_ids,
            outcome="refused: history look-up budget",
            patient_ids=patients,
        )
        per_minute = state.serving.history_lookups_per_minute
        log.warning(
            "key %s refused: %d stored-history look-ups would exceed its %d a minute",
            who.key_id,
            len(patients),
            per_minute,
        )
        raise HTTPException(
            429,
            f"this key may read the stored history of at most {per_minute} patients a minute; send the "
            "patients' history with the request, or wait",
            headers={"Retry-After": str(int(wait))},
        )
    state.audit.record(
        key_id=who.key_id, role=who.role, endpoint=endpoint, case_ids=case_ids, patient_ids=patients
    )
    return True


def _history(state: State, frame: pd.DataFrame, sent: list[Any] | None) -> pd.DataFrame | StayIndex | None:
    """The patients' earlier stays: as sent, else the case store's, else none.

    With one case per patient the store's prepared StayIndex gives the same features faster (no
    case of the request can be history for another); otherwise the request's cases are joined with
    the stored stays. Either way the features see the whole store, as in training: the coding model's
    coder and department error rates read every stored audit, not only these patients' stays.
    """
    if sent:
        return canonical_records([stay.model_dump() for stay in sent])
    if "patient_id" not in frame.columns or frame["patient_id"].isna().all():
        return None
    try:
        if frame["patient_id"].dropna().is_unique:
            return state.cases.stay_index()
        return state.cases.frame()
    except CasesUnavailable:
        return None


def batchers(state: ServiceState, tasks: Mapping[str, ServedTask]) -> dict[str, MicroBatcher[CaseRequest]]:
    """One micro-batcher per served task, scoring with whatever version is loaded when a batch runs."""

    def scorer(task: ServedTask) -> Any:
        return lambda requests: score_requests(
            requests,
            lambda: state.registry.models.get(task.name),
            lambda frame: _history(state, frame, None),
            state.settings.casemix_tables,
        )

    size = state.metrics.batch_size
    return {
        name: MicroBatcher(scorer(task), state.serving.micro_batch, size.labels(name).observe)
        for name, task in tasks.items()
        if task.case_requests
    }


async def _one(
    state: State, task: ServedTask, body: Any, lang: str, top: int | None, who: Principal, path: str
):
    """One case: alone when it brings its own history, else in its model's micro-batch."""
    if body.history:
        answer = await run_in_threadpool(_run, state, task, [body.case], body.history, lang, top, who, path)
        return {"model": answer["model"], "prediction": answer["predictions"][0]}
    model = served(state, task)  # 503 before queueing when there is no model at all
    looked_up = _read_history(state, who, path, [body.case.case_id], [body.case.patient_id])
    request = CaseRequest(
        body.case,
        lang,  # type: ignore[arg-type]
        top or state.serving.top_contributions,
        show_history=not withheld_features(model, who.role, stored_history=looked_up),
    )
    # Cases without a patient id share no history: each may join any batch.
    key = body.case.patient_id if body.case.patient_id is not None else object()
    try:
        model, prediction = await state.batchers[task.name].submit(request, key)
    except ScoringError as error:
        raise input_error(["body", "case"], error) from error
    except ModelUnavailable as error:
        raise HTTPException(503, f"model {task.model_name} is not loaded") from error
    return {"model": {"name": model.name, "version": model.version}, "prediction": prediction}


def _json(answer: dict[str, Any]) -> Response:
    return Response(to_json(answer, inf_nan_mode="null"), media_type="application/json")


def routes(tasks: Mapping[str, ServedTask]) -> APIRouter:
    """The prediction routes of ``tasks``: one case and a batch for each (tasks whose requests are
    cases of their stage; the in-stay task has its own router)."""
    router = APIRouter(prefix=PREFIX, tags=["predictions"], responses=ERROR_RESPONSES)
    for task in tasks.values():
        if task.case_requests:
            _add_routes(router, task)
    return router


def _add_routes(router: APIRouter, task: ServedTask) -> None:
    single_body, batch_body = SINGLE_MODELS[task.stage], BATCH_MODELS[task.stage]
    who = Depends(require(*task.roles))
    path = f"{PREFIX}/{task.name}"

    async def predict_one(
        body: single_body, state: State, lang: Lang, top: Top = None, principal: Principal = who
    ) -> Response:
        return _json(await _one(state, task, body, lang, top, principal, path))

    def predict_batch(
        body: batch_body, state: State, lang: Lang, top: Top = None, principal: Principal = who
    ) -> Response:
        return _json(_run(state, task, body.cases, body.history, lang, top, principal, f"{path}/batch"))

    roles = ", ".join(task.roles)
    router.add_api_route(
        f"/{task.name}",
        predict_one,
        methods=["POST"],
        response_model=PredictResponse,
        summary=f"{task.en} ({task.zh}) for one case",
        operation_id=f"predict_{task.name}",
        description=f"{task.summary} Stage: {task.stage}. Roles: {roles}.",
    )
    router.add_api_route(
        f"/{task.name}/batch",
        predict_batch,
        methods=["POST"],
        response_model=BatchResponse,
        summary=f"{task.en} ({task.zh}) for a batch of cases",
        operation_id=f"predict_{task.name}_batch",
        description=f"{task.summary} Stage: {task.stage}. Roles: {roles}.",
    )
