"""The built grouping tables and lookups, kept between runs in the user's data folder.

Reading the table files and building the grouper's lookups took 0.1 s of CPU at the start of every
command that groups; read back from ``<data_dir>/cache/casemix`` they take half that, the hash that
names them included. An entry is named by a hash of everything it is built from (the table folder's
path, the name and contents of each of its files, and the source of the modules that build them), so
a table file changed, added or removed, or another caselens, names another entry: a stale entry is
never read, and goes when the folder's new one is written. Entries are pickles, which run code when
loaded: they sit in the private data folder (0700 from ``contract.settings.private_data_dir``),
which only the user can write.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from contract.settings import get_settings

T = TypeVar("T")
BUILDERS = (Path(__file__).with_name("tables.py"), Path(__file__).with_name("lookups.py"))


def fingerprint(folder: Path) -> str:
    """``<folder>-<contents>``: a hash of the table folder's path, then one of the name and contents of
    each of its files and of the modules that build from them (see the module's docstring)."""
    where = hashlib.sha256(str(folder.resolve()).encode())
    digest = hashlib.sha256()  # hardware-accelerated on current CPUs: 4 ms for CHS-DRG 1.1's 5.5 MB
    files = sorted(p for p in folder.iterdir() if p.is_file())
    for role, paths in (("table", files), ("code", BUILDERS)):
        for path in paths:
            content = path.read_bytes()
            digest.update(f"\0{role}\0{path.name}\0{len(content)}\0".encode())
            digest.update(content)
    return f"{where.hexdigest()[:16]}-{digest.hexdigest()[:32]}"


def cached(kind: str, key: str, build: Callable[[], T]) -> T:
    """The ``kind`` entry for ``key`` (a :func:`fingerprint`) if the cache holds it, else ``build()``,
    kept for next time in place of the entries of that kind built from the folder's earlier contents."""
    path = get_settings().data_dir / "cache" / "casemix" / f"{kind}-{key}.pickle"
    try:
        with path.open("rb") as file:
            return pickle.load(file)
    except FileNotFoundError:
        pass
    except Exception:  # an entry cut short or unreadable (unpickling raises many kinds): built again
        path.unlink(missing_ok=True)
    built = build()
    if _keep(path, built):
        folder = key.partition("-")[0]
        for earlier in path.parent.glob(f"{kind}-{folder}-*.pickle"):
            if earlier != path:
                earlier.unlink(missing_ok=True)
    return built


def _keep(path: Path, value: object) -> bool:
    """Write the entry whole or not at all (another process may be reading or writing it); a data
    folder that cannot be written leaves the command uncached, not failed. Whether it was written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        file = tempfile.NamedTemporaryFile(dir=path.parent, suffix=".part", delete=False)  # noqa: SIM115
    except OSError:
        return False
    part = Path(file.name)
    try:
        with file:
            pickle.dump(value, file, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(part, path)
    except OSError:
        part.unlink(missing_ok=True)
        return False
    return True
