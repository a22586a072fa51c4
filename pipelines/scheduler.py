"""Whether a command runs on a Dask cluster, and the words it uses to say so.

Kept apart from :mod:`pipelines.cluster` so every command can offer ``--scheduler`` without importing
Dask at start-up: only a command that does go to a cluster loads it.
"""

from __future__ import annotations

from contract.settings import get_settings, mask_credentials

SCHEDULER_HELP = (
    "Dask scheduler tcp://HOST:PORT: run on that cluster (default: CASELENS_DASK_SCHEDULER; "
    "neither: in this process)"
)


def scheduler_address(explicit: str | None = None) -> str | None:
    """The scheduler the user asked for: the option first, then the setting; None: run in-process."""
    address = explicit or get_settings().dask_scheduler
    return address.strip() if address and address.strip() else None


def in_process_note(step: str) -> str | None:
    """The line a command that runs only in this process prints when a cluster is configured, so the
    setting is never ignored silently (None: no cluster configured, nothing to say)."""
    address = scheduler_address()
    if address is None:
        return None
    return (
        f"{step} runs in this process on pandas, not on the Dask cluster {mask_credentials(address)} "
        "(CASELENS_DASK_SCHEDULER): see docs/dask.md for the steps that run there"
    )
