"""Admission sequences: index stays, chemotherapy courses and 30-day readmissions, all with numpy.

Each step works on whole arrays of stays: index admissions are drawn by case type from a daily
intensity (growth by quarter, a winter peak for respiratory types, weekday scheduling for elective
care); a share of index stays belongs to returning patients; cancer patients start courses of
chemotherapy cycles every 21-28 days (planned readmissions); every stay may be followed by an
unplanned readmission within 30 days with a true probability that depends on age, comorbidity,
severity, length of stay, disposition, department and prior admissions. A loop runs over cycle
numbers and readmission depth (a handful of steps), never over cases.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from pipelines.demo.catalog import Catalog
from pipelines.demo.patients import draw_patients

GROWTH_PER_QUARTER = 0.015
WINTER_PEAK = 0.6
CHEMO_CYCLES = (3, 7)  # courses of 3-6 further cycles
CHEMO_INTERVAL = (21, 29)  # days between cycle admissions
MAX_READMISSION_DEPTH = 3
WARM_UP_DAYS = 365  # simulated before the start, so the first months have courses and returns under way
KINDS = ("index", "cycle", "readmission")


def _daily_intensity(days: np.ndarray, winter: float) -> np.ndarray:
    quarters = (days - days[0]).astype(np.int64) / 91.3
    doy = (days - days.astype("datetime64[Y]")).astype(np.int64)
    return (1 + GROWTH_PER_QUARTER) ** quarters * (
        1 + winter * WINTER_PEAK * np.cos(2 * np.pi * (doy - 15) / 365.25)
    )


def _admission_dates(
    types: np.ndarray, catalog: Catalog, start: np.datetime64, end: date, rng: np.random.Generator
) -> np.ndarray:
    days = np.arange(start, np.datetime64(end, "D"))
    winter = catalog.types["winter"].to_numpy()
    out = np.empty(len(types), dtype="datetime64[D]")
    for w in np.unique(winter):
        rows = np.flatnonzero(winter[types] == w)
        cdf = np.cumsum(_daily_intensity(days, w))
        out[rows] = days[np.searchsorted(cdf, rng.random(len(rows)) * cdf[-1])]
    return out


def _to_weekday(dates: np.ndarray, elective: np.ndarray) -> np.ndarray:
    """Elective admissions are scheduled Monday to Friday: weekend dates move to Monday."""
    weekday = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    shift = np.where(elective & (weekday >= 5), 7 - weekday, 0)
    return dates + shift.astype("timedelta64[D]")


def _stays(
    catalog: Catalog,
    patients: pd.DataFrame,
    patient: np.ndarray,
    types: np.ndarray,
    admitted: np.ndarray,
    kind: int,
    prior: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Everything about a batch of stays that is decided at or during the stay."""
    t = catalog.types
    n = len(types)
    admitted = np.asarray(admitted).astype("datetime64[D]")
    age = (admitted - patients["birth_date"].to_numpy()[patient].astype("datetime64[D]")).astype(
        np.int64
    ) / 365.25
    chronic = patients["n_chronic"].to_numpy()[patient]
    if kind == KINDS.index("cycle"):
        admission_type = np.ones(n, dtype=np.int64)
    elif kind == KINDS.index("readmission"):
        admission_type = np.where(rng.random(n) < 0.8, 2, 1)
    else:
        elective = rng.random(n) < t["elective"].to_numpy()[types]
        day_case = elective & (rng.random(n) < t["day_case"].to_numpy()[types])
        admission_type = np.where(day_case, 3, np.where(elective, 1, 2))
    emergency = admission_type == 2
    admitted = _to_weekday(admitted, ~emergency)
    u = rng.random(n)
    source = np.where(
        emergency,
        np.select([u < 0.85, u < 0.95], [1, 3], 9),
        np.select([u < 0.95, u < 0.98], [2, 3], 9),
    )

    risk = np.exp(0.02 * (age - 60)) * (1 + 0.25 * chronic) * np.where(emergency, 1.4, 1.0)
    p_mcc = np.clip(t["mcc"].to_numpy()[types] * risk, 0, 0.95)
    p_cc = np.clip(t["cc"].to_numpy()[types] * risk, 0, 0.95 - p_mcc)
    u = rng.random(n)
    severity = np.where(u < p_mcc, 2, np.where(u < p_mcc + p_cc, 1, 0))

    median_los = (
        t["los"].to_numpy()[types]
        * np.array([1.0, 1.35, 1.8])[severity]
        * (1 + 0.004 * np.clip(age - 50, 0, None))
    )
    los = np.maximum(1, np.round(np.exp(np.log(median_los) + 0.38 * rng.standard_normal(n)))).astype(np.int64)
    los = np.where(admission_type == 3, 0, los)

    p_death = np.clip(
        t["mortality"].to_numpy()[types] * np.exp(0.03 * (age - 65)) * np.array([0.1, 0.35, 0.9])[severity],
        0,
        0.8,
    )
    u = rng.random(n)
    old = age >= 70
    disposition = np.select(
        [
            u < p_death,
            u < p_death + 0.015,
            u < p_death + 0.015 + np.where(old, 0.012, 0.003),
            u < p_death + 0.045,
            u < p_death + 0.05,
        ],
        [5, 2, 3, 4, 9],
        1,
    )
    disposition = np.where(admission_type == 3, np.where(disposition == 5, 1, disposition), disposition)

    base = t["readmit"].to_numpy()[types]
    logit = (
        np.log(base / (1 - base))
        + 0.012 * (age - 60)
        + 0.15 * chronic
        + 0.35 * severity
        + 0.25 * np.log(los.clip(1) / t["los"].to_numpy()[types])
        + np.select([disposition == 4, disposition == 2, disposition == 3], [0.7, 0.3, 0.2], 0.0)
        + 0.1 * np.minimum(prior, 4)
        - np.where(kind == KINDS.index("cycle"), 0.8, 0.0)
    )
    readmission_prob = np.where(disposition == 5, 0.0, np.clip(1 / (1 + np.exp(-logit)), 0, 0.6))
    return pd.DataFrame(
        {
            "patient": patient,
            "type": types,
            "admitted": admitted,
            "los": los,
            "admission_type": admission_type,
            "admission_source": source,
            "severity": severity,
            "disposition": disposition,
            "readmission_prob": readmission_prob,
            "kind": kind,
            "prior": prior,
            "planned_next": False,
        }
    )


def _discharged(stays: pd.DataFrame) -> np.ndarray:
    return stays["admitted"].to_numpy().astype("datetime64[D]") + stays["los"].to_numpy().astype(
        "timedelta64[D]"
    )


def _returning(types: np.ndarray, catalog: Catalog, rng: np.random.Generator) -> np.ndarray:
    """Host row for each index stay: itself for a new patient, an earlier-drawn stay of the same type for a
    returning one (chronic patients come back: the share follows the type's readmission rate)."""
    t = catalog.types
    share = np.where(t["age_max"].to_numpy() > 0, np.minimum(0.45, 2.5 * t["readmit"].to_numpy()), 0.0)
    returning = rng.random(len(types)) < share[types]
    host = np.arange(len(types))
    for k in np.unique(types[returning]):
        hosts = np.flatnonzero((types == k) & ~returning)
        rows = np.flatnonzero((types == k) & returning)
        if len(hosts):
            host[rows] = hosts[rng.integers(0, len(hosts), len(rows))]
    return host


def _readmission_types(catalog: Catalog) -> np.ndarray:
    """What an unplanned readmission is for: the type's ``readmitted_as`` (a complication after surgery,
    e.g. pneumonia after a hip replacement, a puerperal disorder after a delivery), else the same type."""
    t = catalog.types
    position = {key: i for i, key in enumerate(t["key"])}
    return np.array([position.get(after, i) for i, after in enumerate(t["readmitted_as"])], dtype=np.int64)


def simulate_stays(
    catalog: Catalog, n_index: int, start: date, end: date, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Index stays, chemotherapy cycles and readmissions of ``n_index`` index admissions from a year before
    ``start`` to ``end``, as recorded between the two; the patients; and the stays still in hospital at
    the end (admitted before it, discharged on or after it)."""
    t = catalog.types
    shares = t["share"].to_numpy() / t["share"].sum()
    types = rng.choice(len(t), n_index, p=shares)
    warm_start = np.datetime64(start, "D") - np.timedelta64(WARM_UP_DAYS, "D")
    admitted = _admission_dates(types, catalog, warm_start, end, rng)
    host = _returning(types, catalog, rng)
    is_host = host == np.arange(n_index)
    patient_of_host = np.cumsum(is_host) - 1
    patient = patient_of_host[host]
    first = admitted[is_host].copy()
    np.minimum.at(first, patient, admitted)  # age is drawn for the patient's first admission
    patients = draw_patients(types[is_host], first, catalog, rng)
    prior = (~is_host).astype(np.int64)
    batches = [_stays(catalog, patients, patient, types, admitted, KINDS.index("index"), prior, rng)]

    course = np.flatnonzero(rng.random(n_index) < t["cycles"].to_numpy()[types])
    cycles_left = rng.integers(*CHEMO_CYCLES, len(course))
    previous, positions, batch = batches[0].iloc[course], course, 0
    chemo = catalog.type_index("chemotherapy")
    for cycle in range(1, CHEMO_CYCLES[1]):
        going = (cycles_left >= cycle) & (previous["disposition"].to_numpy() != 5)
        if not going.any():
            break
        batches[batch].loc[positions[going], "planned_next"] = True
        interval = rng.integers(*CHEMO_INTERVAL, int(going.sum())).astype("timedelta64[D]")
        previous = _stays(
            catalog,
            patients,
            previous["patient"].to_numpy()[going],
            np.full(int(going.sum()), chemo),
            _discharged(previous)[going] + interval,
            KINDS.index("cycle"),
            np.full(int(going.sum()), cycle),
            rng,
        )
        batches.append(previous)
        positions, batch, cycles_left = np.arange(len(previous)), len(batches) - 1, cycles_left[going]

    readmit_types = _readmission_types(catalog)
    frontier = pd.concat(batches, ignore_index=True)
    for _ in range(MAX_READMISSION_DEPTH):
        back = rng.random(len(frontier)) < frontier["readmission_prob"].to_numpy()
        rows = np.flatnonzero(back)
        if not len(rows):
            break
        gap = np.minimum(1 + rng.geometric(0.09, len(rows)), 30)
        when = _discharged(frontier)[rows] + gap.astype("timedelta64[D]")
        new_types = readmit_types[frontier["type"].to_numpy()[rows]]
        frontier = _stays(
            catalog,
            patients,
            frontier["patient"].to_numpy()[rows],
            new_types,
            when,
            KINDS.index("readmission"),
            frontier["prior"].to_numpy()[rows] + 1,
            rng,
        )
        batches.append(frontier)
    simulated = pd.concat(batches, ignore_index=True)
    stays = _clean(simulated, np.datetime64(start, "D"), np.datetime64(end, "D"))
    return stays, patients, _in_hospital(simulated, stays, np.datetime64(end, "D"))


def _in_hospital(simulated: pd.DataFrame, stays: pd.DataFrame, end: np.datetime64) -> pd.DataFrame:
    """Stays under way at the end: one per patient, not overlapping a recorded stay, none after a death."""
    under_way = simulated.assign(discharged=_discharged(simulated))
    under_way = under_way[(under_way["admitted"] < end) & (under_way["discharged"] >= end)]
    last = stays.groupby("patient")["discharged"].max()
    died = stays["discharged"].where(stays["disposition"] == 5).groupby(stays["patient"]).min()
    patient = under_way["patient"]
    clear = ~(under_way["admitted"] <= patient.map(last)) & ~patient.isin(died.dropna().index)
    under_way = under_way[clear.to_numpy()].sort_values(["patient", "admitted"], kind="stable")
    return under_way.drop_duplicates("patient").reset_index(drop=True)


def _clean(stays: pd.DataFrame, start: np.datetime64, end: np.datetime64) -> pd.DataFrame:
    """Keep what a hospital's records would show: stays discharged in the period, no overlapping stays of
    one patient, nothing after a patient's death."""
    stays = stays.assign(discharged=_discharged(stays))
    stays = stays[stays["discharged"] < end].sort_values(["patient", "admitted", "kind"], kind="stable")
    previous_out = stays.groupby("patient")["discharged"].cummax().groupby(stays["patient"]).shift()
    stays = stays[~(stays["admitted"] <= previous_out)]
    died = stays["discharged"].where(stays["disposition"] == 5)
    death = died.groupby(stays["patient"]).transform("min")
    stays = stays[~(stays["admitted"] > death) & (stays["discharged"] >= start)]
    return stays.reset_index(drop=True)
