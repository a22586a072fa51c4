from __future__ import annotations

import pytest

from pipelines.store import StoreError, read_cases, read_manifest


def test_missing_store_says_how_to_make_one(settings) -> None:
    with pytest.raises(StoreError, match="caselens ingest"):
        read_cases()
    with pytest.raises(StoreError, match="caselens ingest"):
        read_manifest()


def test_unknown_column_is_named(settings, tmp_path, cases) -> None:
    from pipelines.ingest import ingest_file

    path = tmp_path / "export.csv"
    cases.to_csv(path, index=False)
    ingest_file(path)
    with pytest.raises(StoreError, match="no_such_column"):
        read_cases(columns=["case_id", "no_such_column"])
