"""QIDO-RS query parameters and attribute matching over DICOM JSON (PS3.18 8.3.4, PS3.4 C.2.2.2).

Pure (pydicom's data dictionary only). Matching supported, per PS3.4 C.2.2.2:

- single value matching (case-sensitive; PN case-insensitive, which C.2.2.2.1 allows);
- wildcard matching with ``*`` (any run) and ``?`` (one character) on string VRs;
- UID list matching (values separated by ``,`` or ``\\``);
- range matching for DA, TM and DT (``from-to``, ``-to``, ``from-``; a DT query with a negative UTC
  offset is read as a range, so such offsets are not supported in queries);
- universal matching (empty value): no filtering, the attribute is returned.

Fuzzy matching is not supported: ``fuzzymatching=true`` is accepted and ignored, and the caller
should say so in a Warning header (PS3.18 8.3.4.1). Sequence matching is not supported and is
refused with a clear error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword

_TAG_RE = re.compile(r"^[0-9A-Fa-f]{8}$")
_CONTROL = {"limit", "offset", "includefield", "fuzzymatching", "_"}
_RANGE_VRS = {"DA", "TM", "DT"}
_STRING_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
MAX_LIMIT = 1000


class QidoError(ValueError):
    """A query parameter that cannot be honoured; the message names it."""


@dataclass(frozen=True)
class QidoQuery:
    filters: tuple[tuple[str, str, str], ...]  # (tag as 8 hex digits, VR, value)
    include_all: bool
    include_tags: frozenset[str]
    limit: int
    offset: int
    fuzzy_requested: bool


def attribute_tag(name: str) -> tuple[str, str]:
    """(tag "GGGGEEEE", VR) for a keyword ("PatientID") or a tag ("00100020"); QidoError otherwise."""
    if "." in name:
        raise QidoError(f"{name}: sequence (nested attribute) matching is not supported")
    if _TAG_RE.match(name):
        tag = int(name, 16)
    else:
        found = tag_for_keyword(name)
        if found is None:
            raise QidoError(f"{name} is not a DICOM keyword or tag")
        tag = found
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        raise QidoError(f"{name} is not an attribute of the DICOM data dictionary") from None
    return f"{tag:08X}", vr


def _non_negative(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise QidoError(f"{name}={raw!r} must be a whole number") from None
    if value < 0:
        raise QidoError(f"{name}={value} must not be negative")
    return value


def qido_query_parse(params: Iterable[tuple[str, str]], *, default_limit: int = 100) -> QidoQuery:
    """The query from (name, value) pairs as they appear in the URL (names may repeat)."""
    filters: list[tuple[str, str, str]] = []
    include: set[str] = set()
    include_all = False
    limit, offset, fuzzy = default_limit, 0, False
    for name, value in params:
        if name == "limit":
            limit = min(_non_negative(name, value), MAX_LIMIT)
        elif name == "offset":
            offset = _non_negative(name, value)
        elif name == "fuzzymatching":
            if value.lower() not in ("true", "false"):
                raise QidoError(f"fuzzymatching={value!r} must be true or false")
            fuzzy = value.lower() == "true"
        elif name == "includefield":
            for field in (f.strip() for f in value.split(",")):
                if field == "all":
                    include_all = True
                elif field:
                    include.add(attribute_tag(field)[0])
        elif name in _CONTROL:
            continue
        else:
            tag, vr = attribute_tag(name)
            if vr == "SQ":
                raise QidoError(f"{name}: sequence matching is not supported")
            filters.append((tag, vr, value))
    return QidoQuery(filters=tuple(filters), include_all=include_all, include_tags=frozenset(include), limit=limit, offset=offset, fuzzy_requested=fuzzy)


def _wildcard(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(f"^{regex}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _values(element: Mapping[str, Any] | None) -> list[str]:
    if not element:
        return []
    out = []
    for value in element.get("Value", []) or []:
        if isinstance(value, dict):  # PN: {"Alphabetic": ...}
            out.append(str(value.get("Alphabetic", "")))
        else:
            out.append(str(value))
    return out


def _normal_time(value: str) -> str:
    return value.replace(":", "")


def _in_range(value: str, low: str, high: str, vr: str) -> bool:
    if vr == "TM":
        value, low, high = _normal_time(value), _normal_time(low), _normal_time(high)
        width = max(len(low), len(high), 2)
        value = value[:width]
    elif vr == "DA":
        value = value[:8]
    return (not low or value >= low) and (not high or value[: len(high)] <= high)


def value_matches(element: Mapping[str, Any] | None, vr: str, wanted: str) -> bool:
    """Whether a DICOM JSON element (or None when absent) matches the query value ``wanted``."""
    if wanted == "":
        return True
    values = _values(element)
    if not values:
        return False
    if vr == "UI":
        accepted = {v.strip() for v in re.split(r"[,\\]", wanted) if v.strip()}
        return any(v in accepted for v in values)
    if vr in _RANGE_VRS and "-" in wanted:
        low, _, high = wanted.partition("-")
        return any(_in_range(v, low.strip(), high.strip(), vr) for v in values)
    if vr in _STRING_VRS and ("*" in wanted or "?" in wanted):
        pattern = _wildcard(wanted, ignore_case=vr == "PN")
        return any(pattern.match(v) for v in values)
    if vr == "PN":
        return any(v.lower() == wanted.lower() for v in values)
    if vr in ("DS", "FL", "FD"):
        try:
            return any(float(v) == float(wanted) for v in values)
        except ValueError:
            return False
    return any(v == wanted for v in values)


def dataset_matches(dataset: Mapping[str, Any], filters: Iterable[tuple[str, str, str]]) -> bool:
    return all(value_matches(dataset.get(tag), vr, value) for tag, vr, value in filters)
