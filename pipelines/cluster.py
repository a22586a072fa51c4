"""The execution seam: a batch step runs in this process on pandas (the default) or on a Dask cluster.

A step goes to a cluster only when the user names one: ``--scheduler tcp://HOST:PORT`` or
``CASELENS_DASK_SCHEDULER``. There, the hive-partitioned store is read as a ``dask.dataframe`` of
row groups (``store.ROW_GROUP_ROWS`` rows at most), each partition goes through the same pure pandas
function the in-process path runs, and results are written as a Parquet folder, one file per
partition: no process ever holds more than a few partitions, so memory follows the partition size,
not the number of stays. The workers read and write the same paths as the client, so the store and
the outputs must sit on a filesystem every worker mounts (the same folder on one machine, NFS or a
cluster filesystem across machines).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dask
import dask.dataframe as dd
import pandas as pd
import pyarrow.parquet as pq

from contract.errors import ConfigError, InputError
from contract.fields import STORE_COLUMNS, canonical_frame
from contract.settings import mask_credentials
from pipelines import store

log = logging.getLogger(__name__)
SAMPLE_ROWS = 64
CONNECT_TIMEOUT = "20s"
# Arrow-backed strings would give the partitions other dtypes than the in-process path's frames.
DASK_CONFIG = {"dataframe.convert-string": False}


@contextmanager
def connect(address: str | Any) -> Iterator[Any]:
    """A ``distributed.Client`` on ``address`` (a scheduler address, or a ``LocalCluster`` in tests),
    closed on exit; a scheduler that cannot be reached is a ConfigError naming the address."""
    from distributed import Client

    shown = mask_credentials(str(getattr(address, "scheduler_address", address)))
    failure = None
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except ValueError:  # Dask's message repeats the address as given, credentials included
        failure = "not an address Dask reads (tcp://HOST:PORT)"
    except (OSError, TimeoutError) as error:
        failure = (
            f"{error}; start one with `dask scheduler` (and `dask worker` on each machine) or leave "
            "--scheduler and CASELENS_DASK_SCHEDULER unset"
        )
    if failure is not None:
        # The client Dask could not start closes itself when collected. Collected at some later
        # moment, inside the next Client's start, its close waited for ever on that start's loop
        # (a CI run hung there): once the error that held it is gone, collect it now.
        gc.collect()
        raise ConfigError(f"cannot reach the Dask scheduler {shown}: {failure}")
    log.info("Dask cluster %s: %d workers", shown, len(client.scheduler_info().get("workers", {})))
    # One line per shuffle at WARNING ("initialized", "deactivated") is routine, not a warning.
    logging.getLogger("distributed.shuffle._scheduler_plugin").setLevel(logging.ERROR)
    try:
        with client.as_current(), dask.config.set(DASK_CONFIG):
            yield client
    finally:
        client.close()


def read_store(path: Path | str | None = None, columns: Iterable[str] | None = None) -> dd.DataFrame:
    """The case store as a Dask frame, one partition per Parquet row group, canonical dtypes.

    Each partition holds rows of one year; the order inside the store (year, case id) is kept.
    """
    folder = store.store_path(path)
    if not store.part_files(folder):
        raise store.StoreError(f"no case store at {folder}: run `caselens ingest FILE` first")
    wanted = list(STORE_COLUMNS if columns is None else columns)
    unknown = [c for c in wanted if c not in STORE_COLUMNS]
    if unknown:
        raise store.StoreError(f"unknown store column(s): {', '.join(unknown)}; see docs/data-contract.md")
    with dask.config.set(DASK_CONFIG):
        frame = dd.read_parquet(
            str(folder), columns=wanted, split_row_groups=True, engine="pyarrow", dtype_backend=None
        )
        return frame.map_partitions(canonical_frame, meta=canonical_frame(frame._meta))


def by_patient(cases: dd.DataFrame) -> dd.DataFrame:
    """``cases`` shuffled so that every stay of a patient lands in the same partition.

    The steps that look across a patient's stays (history features, the readmission payment rule)
    then see each patient whole in one partition, so a per-partition call gives the in-process answer.
    The number of partitions is kept: their size stays that of the store's row groups.
    """
    with dask.config.set(DASK_CONFIG):
        return cases.shuffle(on="patient_id", npartitions=cases.npartitions, ignore_index=True)


def store_sample(path: Path | str | None = None, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """The store's first rows, as ``read_store`` gives them: what a step's output shape is found on."""
    first = store.part_files(store.store_path(path))[0]
    wanted = list(STORE_COLUMNS if columns is None else columns)
    batch = next(pq.ParquetFile(first).iter_batches(batch_size=SAMPLE_ROWS, columns=wanted))
    return canonical_frame(batch.to_pandas())


def map_partitions(
    cases: dd.DataFrame, sample: pd.DataFrame, step: Callable[..., pd.DataFrame], *args: Any, **kwargs: Any
) -> dd.DataFrame:
    """``step(partition, *args, **kwargs)`` on every partition: a pure pandas function of one partition.

    The output's columns and dtypes (Dask's ``meta``) come from running ``step`` on ``sample`` (real
    rows, e.g. ``store_sample``), so they are the ones the step really gives, not a guess from an
    empty frame, and finding them costs no pass over the cases.
    """
    meta = step(sample, *args, **kwargs).iloc[:0]
    with dask.config.set(DASK_CONFIG):
        return cases.map_partitions(step, *args, meta=meta, **kwargs)


def write_folder(result: dd.DataFrame, output: Path) -> int:
    """Write a Dask result as a Parquet folder (``part.N.parquet``), one file per partition; the rows
    written.

    A single file would have to pass through one process; a folder reads back with
    ``pandas.read_parquet(folder)`` as one table.
    """
    if output.suffix.lower() in (".csv", ".tsv", ".txt"):
        raise InputError(
            f"{output}: on a Dask cluster the output is a Parquet folder, one file per partition; "
            "give a folder name (or a .parquet name, made a folder)"
        )
    if output.is_file():
        raise InputError(f"{output} is a file: on a Dask cluster the output is a Parquet folder")
    output.parent.mkdir(parents=True, exist_ok=True)
    with dask.config.set(DASK_CONFIG):
        result.to_parquet(str(output), write_index=False, overwrite=output.exists())
    return sum(pq.ParquetFile(part).metadata.num_rows for part in output.glob("*.parquet"))


def in_store_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows gathered from shuffled partitions, put back in ``store.read_cases``' order (admission year,
    then case id) with a fresh index: a step finishing in the client whose answer follows the row
    order (a stable sort's ties, a sum's rounding, a "latest value") then gives the in-process answer."""
    frame = frame.reset_index(drop=True)
    keys = pd.DataFrame({"year": frame["admission_date"].dt.year, "case_id": frame["case_id"]})
    return frame.take(keys.sort_values(["year", "case_id"]).index).reset_index(drop=True)
