"""Reading protocols: the levels, the graded conditions and their fixed ordinal category lists."""

from __future__ import annotations

from typing import Any

from spinereview.core.errors import ApplicationError

LUMBAR_LEVELS = ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]

FOUR_GRADE_SCALE = {
    "name": "4-grade central canal stenosis",
    "categories": [
        {"code": "0", "label": "Normal"},
        {"code": "1", "label": "Mild"},
        {"code": "2", "label": "Moderate"},
        {"code": "3", "label": "Severe"},
    ],
}

DEFAULT_PROTOCOL: dict[str, Any] = {
    "levels": LUMBAR_LEVELS,
    "conditions": [{"key": "central_canal", "label": "Central canal stenosis", "scale": FOUR_GRADE_SCALE}],
    # The AI's grade for this condition comes from its dural-sac area at the disc level:
    # >= 100 mm2 normal, 75-100 mild (relative stenosis), 50-75 moderate, < 50 severe.
    "ai_grade": {"condition": "central_canal", "dsca_cutoffs_mm2": [100.0, 75.0, 50.0]},
}


def protocol_validate(protocol: Any) -> dict[str, Any]:
    """Check a protocol's shape; the error names the first problem found."""
    if not isinstance(protocol, dict):
        raise ApplicationError("protocol must be an object")
    levels = protocol.get("levels")
    if not isinstance(levels, list) or not levels or not all(isinstance(v, str) and v for v in levels):
        raise ApplicationError("protocol.levels must be a non-empty list of level names")
    if len(set(levels)) != len(levels):
        raise ApplicationError("protocol.levels has duplicates")
    conditions = protocol.get("conditions")
    if not isinstance(conditions, list) or not conditions:
        raise ApplicationError("protocol.conditions must be a non-empty list")
    keys = set()
    for index, condition in enumerate(conditions):
        if not isinstance(condition, dict) or not isinstance(condition.get("key"), str):
            raise ApplicationError(f"protocol.conditions[{index}] needs a 'key'")
        if condition["key"] in keys:
            raise ApplicationError(f"protocol.conditions has '{condition['key']}' twice")
        keys.add(condition["key"])
        categories = condition.get("scale", {}).get("categories") if isinstance(condition.get("scale"), dict) else None
        if not isinstance(categories, list) or len(categories) < 2:
            raise ApplicationError(f"condition '{condition['key']}' needs a scale with at least two ordered categories")
        codes = [c.get("code") if isinstance(c, dict) else None for c in categories]
        if not all(isinstance(c, str) and c for c in codes) or len(set(codes)) != len(codes):
            raise ApplicationError(f"condition '{condition['key']}': category codes must be unique non-empty strings")
    ai_grade = protocol.get("ai_grade")
    if ai_grade is not None:
        if not isinstance(ai_grade, dict) or ai_grade.get("condition") not in keys:
            raise ApplicationError("protocol.ai_grade.condition must name one of the conditions")
        cutoffs = ai_grade.get("dsca_cutoffs_mm2")
        if not isinstance(cutoffs, list) or not all(isinstance(v, int | float) for v in cutoffs):
            raise ApplicationError("protocol.ai_grade.dsca_cutoffs_mm2 must be a list of numbers")
    return protocol


def condition_categories(protocol: dict[str, Any], condition_key: str) -> list[str]:
    for condition in protocol["conditions"]:
        if condition["key"] == condition_key:
            return [c["code"] for c in condition["scale"]["categories"]]
    raise ApplicationError(f"the protocol has no condition '{condition_key}'")


def required_items(protocol: dict[str, Any]) -> list[tuple[str, str]]:
    return [(level, condition["key"]) for level in protocol["levels"] for condition in protocol["conditions"]]
