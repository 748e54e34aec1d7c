"""Input checks shared by the agreement statistics: every bad input becomes a ValueError that
says which argument is wrong and how, before any arithmetic runs."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

MISSING = -1  # index of a missing rating in an index matrix


def is_missing(value: object) -> bool:
    """``None`` and float NaN (Python or numpy) mark a missing rating."""
    if value is None:
        return True
    if isinstance(value, (float, np.floating)):
        return math.isnan(float(value))
    return False


def check_confidence(confidence: float) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float, np.floating)):
        raise ValueError(f"confidence must be a number between 0 and 1 (e.g. 0.95), got {confidence!r}")
    value = float(confidence)
    if not 0.0 < value < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1 (e.g. 0.95), got {confidence!r}")
    return value


def float_vector(values: npt.ArrayLike, name: str, *, min_size: int = 1) -> FloatArray:
    """A 1-D array of finite floats with at least ``min_size`` elements."""
    if isinstance(values, (str, bytes)):
        raise ValueError(f"{name} must be a sequence of numbers, not a string")
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must hold numbers only: {exc}") from None
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size < min_size:
        raise ValueError(f"{name} needs at least {min_size} values, got {array.size}")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(
            f"{name}[{int(bad[0])}] = {float(array[bad[0]])!r} is not a finite number ({bad.size} such values); "
            "drop incomplete pairs before calling"
        )
    return array


def paired_vectors(a: npt.ArrayLike, b: npt.ArrayLike, names: tuple[str, str], *, min_size: int) -> tuple[FloatArray, FloatArray]:
    """Two finite 1-D float arrays of equal length (paired by position)."""
    x = float_vector(a, names[0])
    y = float_vector(b, names[1])
    if x.size != y.size:
        raise ValueError(f"{names[0]} and {names[1]} must be paired by position: got {x.size} and {y.size} values")
    if x.size < min_size:
        raise ValueError(f"need at least {min_size} pairs of {names[0]} and {names[1]}, got {x.size}")
    return x, y


def category_index(categories: Sequence[Hashable]) -> dict[Hashable, int]:
    """Position of every category in the protocol's ordered list (validated: non-empty, unique, no NaN/None)."""
    if isinstance(categories, (str, bytes)):
        raise TypeError("categories must be a sequence of categories, not a single string")
    cats = list(categories)
    if not cats:
        raise ValueError("categories must not be empty")
    index: dict[Hashable, int] = {}
    for i, category in enumerate(cats):
        if is_missing(category):
            raise ValueError(f"categories must not contain a missing value (None or NaN), got {category!r} at position {i}")
        try:
            if category in index:
                raise ValueError(f"categories contain {category!r} more than once")
        except TypeError as exc:
            raise ValueError(f"category {category!r} is not hashable") from exc
        index[category] = i
    return index


def rating_rows(ratings: Any, name: str = "ratings") -> list[list[Any]]:
    """A rectangular subjects x raters table of ratings as nested lists (one row per subject)."""
    if isinstance(ratings, (str, bytes)):
        raise TypeError(f"{name} must be a subjects x raters table, not a string")
    if isinstance(ratings, np.ndarray):
        if ratings.ndim != 2:
            raise ValueError(f"{name} must be a 2-D subjects x raters table, got shape {ratings.shape}")
        rows: list[list[Any]] = ratings.tolist()
        return rows
    try:
        rows = [list(row) for row in ratings]
    except TypeError:
        raise ValueError(f"{name} must be a 2-D subjects x raters table (a sequence of rows)") from None
    for i, row in enumerate(rows):
        if i == 0:
            continue
        if len(row) != len(rows[0]):
            raise ValueError(
                f"{name} must be rectangular (one column per rater): row 0 has {len(rows[0])} ratings, row {i} has {len(row)}; "
                "mark a missing rating with None"
            )
    return rows


def index_matrix(
    ratings: Any,
    categories: Sequence[Hashable],
    *,
    allow_missing: bool,
    name: str = "ratings",
) -> tuple[IntArray, dict[Hashable, int]]:
    """Subjects x raters matrix of category positions; ``MISSING`` (-1) where a rating is missing."""
    index = category_index(categories)
    rows = rating_rows(ratings, name)
    if not rows or not rows[0]:
        raise ValueError(f"{name} is empty: need at least one subject and one rater")
    out = np.empty((len(rows), len(rows[0])), dtype=np.intp)
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            if is_missing(value):
                if not allow_missing:
                    raise ValueError(
                        f"{name}[{i}][{j}] is missing ({value!r}); this statistic needs every rater to rate every subject "
                        "(use krippendorff_alpha_score or gwet_ac_score for incomplete data)"
                    )
                out[i, j] = MISSING
                continue
            try:
                out[i, j] = index[value]
            except (KeyError, TypeError):
                allowed = ", ".join(repr(c) for c in index)
                raise ValueError(f"{name}[{i}][{j}] = {value!r} is not one of the categories [{allowed}]") from None
    return out, index


def counts_from_indices(indices: IntArray, k: int) -> npt.NDArray[np.int64]:
    """Subjects x categories table: how many raters put subject i in category c (missing skipped)."""
    n = indices.shape[0]
    counts = np.zeros((n, k), dtype=np.int64)
    rows, cols = np.nonzero(indices != MISSING)
    np.add.at(counts, (rows, indices[rows, cols]), 1)
    return counts


def float_matrix(values: npt.ArrayLike, name: str, *, allow_nan: bool) -> FloatArray:
    """A 2-D float array (subjects x raters); ``None`` becomes NaN when missing values are allowed."""
    if isinstance(values, (str, bytes)):
        raise ValueError(f"{name} must be a subjects x raters table of numbers, not a string")
    if not isinstance(values, np.ndarray):
        rows = rating_rows(values, name)
        values = [[np.nan if v is None else v for v in row] for row in rows]
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must hold numbers only (None or NaN for missing): {exc}") from None
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D subjects x raters table, got shape {array.shape}")
    if np.any(np.isinf(array)):
        i, j = np.argwhere(np.isinf(array))[0]
        raise ValueError(f"{name}[{i}][{j}] is infinite")
    if not allow_nan and np.any(np.isnan(array)):
        i, j = np.argwhere(np.isnan(array))[0]
        raise ValueError(f"{name}[{i}][{j}] is missing (NaN); this statistic needs a complete subjects x raters table")
    return array
