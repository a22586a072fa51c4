"""Encodings of a table's high-cardinality text columns: what a careful data scientist tries by hand.

LightGBM's own handling of a categorical column with hundreds of levels overfits (each split searches
every level ordering), so a hospital's diagnosis column needs regularisation or another encoding. Each
text column gets one :class:`ColumnEncoder`; which encodings it emits is a *strategy* chosen for the
whole table on the validation period (:mod:`models.table`):

- ``categorical``: the levels as a LightGBM categorical, rare levels pooled (the LightGBM cat_* params
  of the table's config regularise the splits);
- ``frequency``: the level's share of the training rows;
- ``target``: the level's mean label, out of fold on the training rows (scikit-learn's ``TargetEncoder``
  cross-fits, so a row never sees its own label) and shrunk towards the overall mean;
- ``rollup``: for columns whose values look like codes, the code's category and chapter (ICD-10, ICD-9,
  ICD-9-CM-3) and, for ICD-10, its Charlson comorbidity weight (:mod:`features.codes`,
  :mod:`features.comorbidity`).

A level not seen in training (or seen fewer than ``min_count`` times) is "other" for the categorical,
has frequency 0 and gets the shrunk overall mean as target encoding: unseen behaves as rare.
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.preprocessing import TargetEncoder

from features.codes import icd9cm3_section, icd10_category, icd10_chapter
from features.comorbidity import charlson_index, condition_masks
from features.encoding import encode_levels, learn_levels

CodeKind = Literal["icd10", "icd9", "icd9cm3", "text"]
# For a column that is not codes, "rollup" adds nothing: frequency+rollup is then plain frequency.
STRATEGIES: dict[str, tuple[str, ...]] = {
    "categorical": ("categorical",),
    "frequency+rollup": ("frequency", "rollup"),
    "frequency+target": ("frequency", "target"),
    "frequency+target+rollup": ("frequency", "target", "rollup"),
    "categorical+frequency+rollup": ("categorical", "frequency", "rollup"),
}
CODE_SHARE = 0.9  # share of a column's distinct values that must look like codes of one system

_PATTERNS: dict[str, re.Pattern[str]] = {
    "icd10": re.compile(r"^[A-Z]\d{2}(\.?[0-9A-Z]{0,4}([Xx+*]\d{0,3})?)?$"),
    "icd9": re.compile(r"^(\d{3}|V\d{2}|E\d{3})(\.\d{1,2})?$"),
    "icd9cm3": re.compile(r"^\d{2}(\.\d{1,4}([Xx]\d{3})?)?$"),
}
# ICD-9-CM diagnosis chapters by the first three digits (V and E codes are their own chapters).
_ICD9_CHAPTERS = (
    (139, "1"), (239, "2"), (279, "3"), (289, "4"), (319, "5"), (389, "6"), (459, "7"), (519, "8"),
    (579, "9"), (629, "10"), (679, "11"), (709, "12"), (739, "13"), (759, "14"), (779, "15"), (799, "16"),
    (999, "17"),
)  # fmt: skip
# ICD-9-CM-3 procedure chapters by the two-digit section.
_ICD9CM3_CHAPTERS = (
    (0, "0"), (5, "1"), (7, "2"), (16, "3"), (17, "3A"), (20, "4"), (29, "5"), (34, "6"), (39, "7"),
    (41, "8"), (54, "9"), (59, "10"), (64, "11"), (71, "12"), (75, "13"), (84, "14"), (86, "15"), (99, "16"),
)  # fmt: skip


def code_kind(values: pd.Series) -> CodeKind:
    """Which code system a text column's distinct values look like, or ``text``.

    ICD-10 wins over ICD-9 only when no value is all digits: "V57" and "E880" fit both systems, a
    column holding "428" is ICD-9. Codes vary in depth ("E11", "E11.9", "E11.900"); fixed-width
    dotless values are identifiers.
    """
    distinct = pd.Series(values.dropna().astype(str).str.strip().str.upper().unique())
    distinct = distinct[distinct != ""]
    if distinct.empty:
        return "text"
    lengths = distinct.str.len()
    if lengths.min() == lengths.max() >= 6 and not distinct.str.contains(".", regex=False).any():
        return "text"  # fixed-width, dotless: an identifier ("P000123"), not codes of varying depth
    share = {kind: distinct.str.match(pattern).mean() for kind, pattern in _PATTERNS.items()}
    numeric = distinct.str.match(r"^\d").any()
    if share["icd10"] >= CODE_SHARE and not numeric:
        return "icd10"
    for kind in ("icd9", "icd9cm3"):
        if share[kind] >= CODE_SHARE:
            return kind  # type: ignore[return-value]
    return "text"


def _text(values: pd.Series) -> pd.Series:
    """Values as trimmed text; missing stays missing (None)."""
    text = values.astype("string").str.strip()
    return text.astype(object).where(text.notna() & (text != ""), None)


def _chapter_by_range(number: pd.Series, table: tuple[tuple[int, str], ...]) -> pd.Series:
    edges = np.array([upper for upper, _ in table])
    names = np.array([name for _, name in table], dtype=object)
    position = np.searchsorted(edges, number.fillna(-1).to_numpy(), side="left")
    found = names[np.clip(position, 0, len(names) - 1)]
    valid = number.notna().to_numpy() & (number.fillna(-1).to_numpy() >= 0) & (position < len(names))
    return pd.Series(np.where(valid, found, None), index=number.index, dtype=object)


def rollups(values: pd.Series, kind: CodeKind) -> dict[str, pd.Series]:
    """Coarser views of a code column: category and chapter (text), comorbidity weight (number)."""
    text = _text(values).str.upper()
    if kind == "icd10":
        masks = condition_masks(text.fillna(""))
        return {
            "category": icd10_category(text),
            "chapter": icd10_chapter(text),
            "charlson": pd.Series(charlson_index(masks), index=values.index),
        }
    if kind == "icd9":
        category = text.str.extract(r"^(\d{3}|V\d{2}|E\d{3})", expand=False)
        digits = pd.to_numeric(category.where(category.str.match(r"^\d", na=False)), errors="coerce")
        chapter = _chapter_by_range(digits, _ICD9_CHAPTERS)
        chapter = chapter.where(chapter.notna(), category.str[:1].where(~category.str.match(r"^\d", na=True)))
        return {"category": category.astype(object), "chapter": chapter.astype(object)}
    if kind == "icd9cm3":
        section = icd9cm3_section(text)
        chapter = _chapter_by_range(pd.to_numeric(section, errors="coerce"), _ICD9CM3_CHAPTERS)
        category = text.str.extract(r"^(\d{2}\.\d)", expand=False).astype(object)
        return {"category": category.where(category.notna(), section), "chapter": chapter}
    return {}


class ColumnEncoder:
    """One text column's fitted encodings under one strategy; output columns are ``<column>__<kind>``."""

    def __init__(self, name: str, kind: CodeKind, parts: tuple[str, ...], min_count: int = 10) -> None:
        self.name = name
        self.kind = kind
        self.parts = parts if kind != "text" else tuple(p for p in parts if p != "rollup")
        self.min_count = min_count

    def fit_transform(self, values: pd.Series, target: pd.Series | None, seed: int = 0) -> pd.DataFrame:
        """Fit on the training rows and encode them (target encoding out of fold)."""
        text = _text(values)
        self.levels_ = learn_levels(text, self.min_count) if "categorical" in self.parts else []
        counts = text.value_counts()
        self.frequency_ = (counts / len(text)).to_dict()
        self.rollup_levels_ = {}
        if "rollup" in self.parts:
            for name, rolled in rollups(text, self.kind).items():
                if rolled.dtype == object:
                    self.rollup_levels_[name] = learn_levels(rolled, self.min_count)
        self.target_ = None
        oof = None
        if "target" in self.parts and target is not None:
            kind = "binary" if set(pd.unique(target)) <= {0, 1} else "continuous"
            folds = (StratifiedKFold if kind == "binary" else KFold)(5, shuffle=True, random_state=seed)
            self.target_ = TargetEncoder(target_type=kind, cv=folds)
            oof = self.target_.fit_transform(self._target_input(text), target.to_numpy())[:, 0]
        out = self._encode(text, skip_target=oof is not None)
        if oof is not None:
            out[f"{self.name}__target"] = oof
        return out[self.outputs]

    def transform(self, values: pd.Series) -> pd.DataFrame:
        return self._encode(_text(values))[self.outputs]

    @property
    def outputs(self) -> list[str]:
        names = []
        for part in self.parts:
            if part == "categorical":
                names.append(self.name)
            elif part == "frequency":
                names.append(f"{self.name}__frequency")
            elif part == "target" and getattr(self, "target_", None) is not None:
                names.append(f"{self.name}__target")
            elif part == "rollup":
                names += [f"{self.name}__{k}" for k in _ROLLUP_NAMES[self.kind]]
        return names

    def _encode(self, text: pd.Series, skip_target: bool = False) -> pd.DataFrame:
        out: dict[str, object] = {}
        if "categorical" in self.parts:
            out[self.name] = encode_levels(text, self.levels_)
        if "frequency" in self.parts:
            share = text.map(self.frequency_).astype("float64").fillna(0.0)
            out[f"{self.name}__frequency"] = share.where(text.notna()).to_numpy()
        if self.target_ is not None and not skip_target:
            out[f"{self.name}__target"] = self.target_.transform(self._target_input(text))[:, 0]
        if "rollup" in self.parts:
            for name, rolled in rollups(text, self.kind).items():
                key = f"{self.name}__{name}"
                if name in self.rollup_levels_:
                    out[key] = encode_levels(rolled, self.rollup_levels_[name])
                else:
                    out[key] = rolled.astype("float64").to_numpy()
        return pd.DataFrame(out, index=text.index)

    @staticmethod
    def _target_input(text: pd.Series) -> np.ndarray:
        """TargetEncoder wants one kind of value: missing is its own level."""
        return text.fillna("\0missing").to_numpy(dtype=object)[:, None]


_ROLLUP_NAMES: dict[str, tuple[str, ...]] = {
    "icd10": ("category", "chapter", "charlson"),
    "icd9": ("category", "chapter"),
    "icd9cm3": ("category", "chapter"),
    "text": (),
}
