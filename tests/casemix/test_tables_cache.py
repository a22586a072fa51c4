"""The built tables and lookups kept in the data folder's cache: read back equal to a fresh build, and
never read once a table file has changed."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from casemix.grouper import Grouper
from casemix.lookups import Lookups
from casemix.tables import CasemixTables, load_tables


@pytest.fixture
def local_copy(tmp_path: Path, tables: CasemixTables) -> Path:
    return Path(shutil.copytree(tables.path, tmp_path / "city-1.1"))


def _entries(settings) -> list[str]:
    folder = settings.data_dir / "cache" / "casemix"
    return sorted(p.name.partition("-")[0] for p in folder.glob("*.pickle"))


def _complications(grouper: Grouper, secondary: str) -> tuple[int, int]:
    result = grouper.group_case(sex=1, age_years=60, diagnoses=["J18.900", secondary])
    return result.mcc_count, result.cc_count


def test_a_changed_table_file_is_read_again(settings, local_copy: Path) -> None:
    first = load_tables(local_copy)
    assert _entries(settings) == ["tables"]
    assert _complications(Grouper(first), "A01.100") == (1, 0)  # an MCC in the national mcc.tsv
    assert _entries(settings) == ["lookups", "tables"]
    mcc = local_copy / "mcc.tsv"
    lines = mcc.read_text(encoding="utf-8").splitlines(keepends=True)
    mcc.write_text("".join(line for line in lines if not line.startswith("A01.100\t")), encoding="utf-8")
    changed = load_tables(local_copy)
    assert "A01.100" not in changed.mcc and changed.fingerprint != first.fingerprint
    assert _complications(Grouper(changed), "A01.100") == (0, 0)
    assert _entries(settings) == ["lookups", "tables"]  # the entries of the earlier contents went


def test_a_cached_table_set_equals_a_fresh_read(settings, local_copy: Path) -> None:
    built = load_tables(local_copy)
    fresh = Lookups(built)
    cached = load_tables(local_copy)  # from the cache this time
    assert cached is not built and cached == built and cached.fingerprint == built.fingerprint
    from_cache = Lookups(cached)
    unkept = Lookups(replace(cached))  # changed in code: no fingerprint, built and not cached
    assert replace(cached).fingerprint is None
    for lookups in (from_cache, unkept):
        assert lookups.diagnoses.codes.equals(fresh.diagnoses.codes)
        assert lookups.procedures.codes.equals(fresh.procedures.codes)
        for name in ("mcc_table", "cc_table", "principal_table", "or_procedure"):
            assert np.array_equal(getattr(lookups, name), getattr(fresh, name))
        for mine, theirs in zip(
            (c for e in (*lookups.tables.mdcs.values(), *lookups.tables.adrgs.values()) for c in e.rule),
            (c for e in (*built.mdcs.values(), *built.adrgs.values()) for c in e.rule),
            strict=True,
        ):
            if mine.codes:
                assert np.array_equal(lookups.code_list(mine), fresh.code_list(theirs))
            for label, row in lookups.group_lists(mine).items() if mine.groups else ():
                assert np.array_equal(row, fresh.group_lists(theirs)[label])


def test_an_unreadable_entry_is_built_again(settings, local_copy: Path) -> None:
    built = load_tables(local_copy)
    (entry,) = (settings.data_dir / "cache" / "casemix").glob("tables-*.pickle")
    entry.write_bytes(entry.read_bytes()[:1000])  # cut short
    assert load_tables(local_copy) == built
    assert load_tables(local_copy) == built  # and kept whole again
