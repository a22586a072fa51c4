"""Explicit samples for the steps that run in one process: whole patients, seeded, said out loud.

Training builds its feature table, evaluates and registers in the command's process (only the
LightGBM fits go to a cluster), so a store larger than that process's memory is trained on a sample.
The sample keeps every stay of each patient drawn (history features stay whole) and reads only their
stays from the store; the caller prints ``Sample.describe()`` so a sample is never silent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from contract.errors import InputError
from pipelines import store


@dataclass(frozen=True)
class Sample:
    cases: pd.DataFrame
    stays: int
    patients: int
    store_stays: int
    store_patients: int
    seed: int

    def describe(self) -> str:
        if self.stays == self.store_stays:
            return f"all {self.stays:,} stays of the store (no sample needed)"
        return (
            f"a sample: {self.stays:,} of {self.store_stays:,} stays ({self.patients:,} of "
            f"{self.store_patients:,} patients, every stay of each, seed {self.seed})"
        )


def sample_by_patient(max_stays: int, store_dir: Path | None = None, seed: int = 0) -> Sample:
    """At most ``max_stays`` stays of patients drawn at random (seeded), each patient whole."""
    if max_stays < 1:
        raise InputError(f"--sample-stays must be at least 1, not {max_stays}")
    folder = store.store_path(store_dir)
    if not store.part_files(folder):
        raise store.StoreError(f"no case store at {folder}: run `caselens ingest FILE` first")
    per_patient = pq.read_table(folder, columns=["patient_id"]).column(0).to_pandas().value_counts(sort=False)
    per_patient = per_patient.sort_index()  # the draw depends on the seed, not on the files' order
    order = np.random.default_rng(seed).permutation(len(per_patient))
    counts = per_patient.to_numpy()[order]
    keep = order[np.cumsum(counts) <= max_stays]
    total = int(per_patient.sum())
    if len(keep) == 0:
        raise InputError(f"--sample-stays {max_stays}: no patient drawn fits; give a larger sample")
    if len(keep) == len(per_patient):
        cases = store.read_cases(folder)
    else:
        cases = store.read_cases(folder, patients=per_patient.index[keep])
    return Sample(cases, len(cases), len(keep), total, len(per_patient), seed)
