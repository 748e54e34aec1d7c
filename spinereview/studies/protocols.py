"""Reading protocols: levels, graded conditions on fixed ordinal scales, sub-questions, measurement and
segmentation tasks, and the mappings between scales.

A protocol is written by a study lead (YAML or JSON) and validated into a *normalised* form that the
server stores and the viewer reads: every scale is inlined as a fixed, ordered category list (grades are
ordinal; the list is never inferred from the data), every optional field has its default. A scale may be
named from the built-in library (`SCALES`) or defined in the protocol's own `scales` section.

```yaml
levels: [L1-L2, L2-L3, L3-L4, L4-L5, L5-S1]
conditions:
  - key: central_canal
    label: Central canal stenosis (Schizas)
    scale: schizas
    sub_questions:
      - {key: central_canal_subgrade, label: Schizas sub-grade, scale: schizas_a_subgrade, when: [A]}
  - {key: foraminal_left, label: Foraminal stenosis, side: left, scale: lee, required: false}
  - {key: sedimentation_sign, label: Nerve root sedimentation sign, scale: present_absent, required: false}
measurements:
  - {key: dsca, kind: area, label: Dural sac area}
segmentation: {series_role: axial_t2, labels: [dural_sac]}
ai_grade: {condition: central_canal, source: auto, dsca_cutoffs_mm2: [100, 75, 50]}
ai_grader_tasks:
  - {condition: sedimentation_sign, task: sedimentation_sign}
two_phase: true
```

`ai_grade` says how the AI grades one condition (stenosis: the model's grader, or its dural sac area
through cut-offs). `ai_grader_tasks` lists further conditions graded by the model's grader alone, each
from one of the grader's other tasks (``ModelVersion.grader["tasks"]``, e.g. the nerve root
sedimentation sign): ``condition`` (a condition of the protocol other than ai_grade's, each at most
once), ``task`` (the grader's task key) and optionally ``grader_map`` (the task's class names onto the
condition's categories; without it class i is category i, when both have as many). A model without a
grader, or whose grader lacks the task, gives no AI grade for that condition (the reports say why).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from spinereview.core.errors import ApplicationError

LUMBAR_LEVELS = ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]


def _scale(name: str, *categories: tuple[str, str]) -> dict[str, Any]:
    return {"name": name, "categories": [{"code": code, "label": label} for code, label in categories]}


# Built-in ordinal scales, each with its fixed ordered category list (mildest first).
SCALES: dict[str, dict[str, Any]] = {
    # Schizas C et al. Spine 2010;35:1919-24: morphological grading of central canal stenosis on axial T2.
    "schizas": _scale(
        "Schizas (A-D)",
        ("A", "A: no or minor stenosis, CSF clearly visible"),
        ("B", "B: moderate, rootlets fill the sac, some CSF"),
        ("C", "C: severe, no rootlets recognisable, epidural fat posterior"),
        ("D", "D: extreme, no epidural fat posterior"),
    ),
    "schizas_full": _scale(
        "Schizas (A1-A4, B, C, D)",
        ("A1", "A1: rootlets dorsal, < half the sac"),
        ("A2", "A2: rootlets dorsal, horse-shoe"),
        ("A3", "A3: rootlets dorsal, > half the sac"),
        ("A4", "A4: rootlets central, sac filled"),
        ("B", "B: moderate"),
        ("C", "C: severe"),
        ("D", "D: extreme"),
    ),
    "schizas_a_subgrade": _scale("Schizas A sub-grade", ("A1", "A1"), ("A2", "A2"), ("A3", "A3"), ("A4", "A4")),
    # Lee S et al. AJR 2011;196:1068-73 (central canal) and Lee S et al. AJR 2010;194:1095-8 (foraminal): 0-3.
    "lee": _scale("Lee (0-3)", ("0", "0: none"), ("1", "1: mild"), ("2", "2: moderate"), ("3", "3: severe")),
    "four_grade": _scale("4-grade stenosis", ("0", "Normal"), ("1", "Mild"), ("2", "Moderate"), ("3", "Severe")),
    "three_class": _scale("Normal/mild, moderate, severe", ("normal_mild", "Normal/mild"), ("moderate", "Moderate"), ("severe", "Severe")),
    "present_absent": _scale("Absent/present", ("absent", "Absent"), ("present", "Present")),
}

# Mappings every protocol may use without declaring them: the collapse of Schizas sub-grades into A-D.
BUILTIN_MAPPINGS: list[dict[str, Any]] = [
    {"from": "schizas_full", "to": "schizas", "map": {"A1": "A", "A2": "A", "A3": "A", "A4": "A", "B": "B", "C": "C", "D": "D"}},
    {"from": "schizas", "to": "three_class", "map": {"A": "normal_mild", "B": "moderate", "C": "severe", "D": "severe"}},
    {"from": "lee", "to": "three_class", "map": {"0": "normal_mild", "1": "normal_mild", "2": "moderate", "3": "severe"}},
    {"from": "four_grade", "to": "three_class", "map": {"0": "normal_mild", "1": "normal_mild", "2": "moderate", "3": "severe"}},
]

MEASUREMENT_KINDS = {"length": "mm", "area": "mm2", "disc_height": "mm"}
SIDES = ("left", "right")
SERIES_ROLES = ("sagittal_t2", "sagittal_t1", "axial_t2", "other")
# Segmentation labels a protocol may ask for, with the label values the AI uses (ml/labels.py) and colours.
SEGMENTATION_LABELS: dict[str, dict[str, Any]] = {
    "vertebral_body": {"value": 1, "label": "Vertebral body", "color": [230, 159, 0]},
    "intervertebral_disc": {"value": 2, "label": "Intervertebral disc", "color": [86, 180, 233]},
    "spinal_canal": {"value": 3, "label": "Spinal canal", "color": [0, 158, 115]},
    "dural_sac": {"value": 4, "label": "Dural sac", "color": [240, 228, 66]},
    "paraspinal_muscle_left": {"value": 5, "label": "Paraspinal muscle (left)", "color": [0, 114, 178]},
    "paraspinal_muscle_right": {"value": 6, "label": "Paraspinal muscle (right)", "color": [213, 94, 0]},
}

DEFAULT_PROTOCOL: dict[str, Any] = {
    "name": "Central canal stenosis, 4 grades",
    "levels": LUMBAR_LEVELS,
    "conditions": [
        {"key": "central_canal", "label": "Central canal stenosis", "scale": "four_grade"},
        {"key": "sedimentation_sign", "label": "Nerve root sedimentation sign", "scale": "present_absent", "required": False},
    ],
    "measurements": [
        {"key": "dsca", "kind": "area", "label": "Dural sac area", "required": False},
        {"key": "ap_diameter", "kind": "length", "label": "Canal AP diameter", "required": False},
        {"key": "disc_height", "kind": "disc_height", "label": "Disc height", "required": False},
    ],
    "segmentation": {"series_role": "axial_t2", "labels": ["dural_sac", "spinal_canal"], "brush_radius_mm": 2.0},
    # The AI's grade for this condition: its model's stenosis grader's where the model has one, else from
    # its dural-sac area at the disc level: >= 100 mm2 normal, 75-100 mild (relative stenosis), 50-75
    # moderate, < 50 severe.
    "ai_grade": {"condition": "central_canal", "source": "auto", "dsca_cutoffs_mm2": [100.0, 75.0, 50.0]},
    # The sedimentation sign as the grader's own task (classes absent, present: the scale's order); no AI
    # grade for it with a model whose grader lacks that task.
    "ai_grader_tasks": [{"condition": "sedimentation_sign", "task": "sedimentation_sign"}],
    "compare": True,
}


class _Checker:
    """Collects the path of the value being checked, so every error names where the problem is."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, message: str) -> ApplicationError:
        return ApplicationError(f"{self.path}: {message}")

    def key(self, value: Any) -> str:
        if not isinstance(value, str) or not value or not value.replace("_", "").replace("-", "").isalnum():
            raise self.fail("must be a non-empty name of letters, digits, '_' or '-'")
        return value

    def text(self, value: Any, default: str) -> str:
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.fail("must be non-empty text")
        return value

    def flag(self, value: Any, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail("must be true or false")
        return value

    def listing(self, value: Any, *, allow_empty: bool = False) -> list[Any]:
        if not isinstance(value, list) or (not value and not allow_empty):
            raise self.fail("must be a list" if allow_empty else "must be a non-empty list")
        return value

    def mapping(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail("must be an object")
        return value


def _unknown_keys(raw: Mapping[str, Any], allowed: set[str], checker: _Checker) -> None:
    unknown = sorted(str(key) for key in set(raw) - allowed)  # YAML keys may be numbers too
    if unknown:
        raise checker.fail(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _normalise_scale(raw: Any, scales: Mapping[str, dict[str, Any]], checker: _Checker) -> dict[str, Any]:
    if isinstance(raw, str):
        if raw not in scales:
            raise checker.fail(f"unknown scale '{raw}'; known: {', '.join(sorted(scales))}")
        return copy.deepcopy(scales[raw]) | {"key": raw}
    scale = checker.mapping(raw)
    categories = scale.get("categories")
    if not isinstance(categories, list) or len(categories) < 2:
        raise checker.fail("a scale needs at least two ordered categories")
    normalised = []
    for index, category in enumerate(categories):
        item = _Checker(f"{checker.path}.categories[{index}]")
        if isinstance(category, str | int) and not isinstance(category, bool):
            category = {"code": str(category)}
        category = item.mapping(category)
        code = category.get("code")
        if isinstance(code, int) and not isinstance(code, bool):
            code = str(code)
        if not isinstance(code, str) or not code:
            raise item.fail("needs a non-empty 'code'")
        normalised.append({"code": code, "label": item.text(category.get("label"), code)})
    codes = [c["code"] for c in normalised]
    if len(set(codes)) != len(codes):
        raise checker.fail(f"category codes must be unique: {', '.join(codes)}")
    return {"key": scale.get("key") or None, "name": checker.text(scale.get("name"), "custom scale"), "categories": normalised}


def _normalise_condition(raw: Any, index: int, scales: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    checker = _Checker(f"conditions[{index}]")
    condition = checker.mapping(raw)
    _unknown_keys(condition, {"key", "label", "side", "scale", "required", "sub_questions"}, checker)
    key = _Checker(f"{checker.path}.key").key(condition.get("key"))
    side = condition.get("side")
    if side is not None and side not in SIDES:
        raise _Checker(f"{checker.path}.side").fail("must be left, right or absent")
    scale = _normalise_scale(condition.get("scale"), scales, _Checker(f"{checker.path}.scale"))
    codes = {c["code"] for c in scale["categories"]}
    sub_questions = []
    for sub_index, sub_raw in enumerate(_Checker(f"{checker.path}.sub_questions").listing(condition.get("sub_questions", []), allow_empty=True)):
        sub_checker = _Checker(f"{checker.path}.sub_questions[{sub_index}]")
        sub = sub_checker.mapping(sub_raw)
        _unknown_keys(sub, {"key", "label", "scale", "when", "required"}, sub_checker)
        when = [str(v) for v in _Checker(f"{sub_checker.path}.when").listing(sub.get("when"))]
        stray = sorted(set(when) - codes)
        if stray:
            raise sub_checker.fail(f"'when' names {', '.join(stray)}, which are not categories of {key}")
        sub_key = _Checker(f"{sub_checker.path}.key").key(sub.get("key"))
        sub_questions.append(
            {
                "key": sub_key,
                "label": sub_checker.text(sub.get("label"), sub_key),
                "scale": _normalise_scale(sub.get("scale"), scales, _Checker(f"{sub_checker.path}.scale")),
                "when": when,
                "required": _Checker(f"{sub_checker.path}.required").flag(sub.get("required"), True),
            }
        )
    return {
        "key": key,
        "label": checker.text(condition.get("label"), key),
        "side": side,
        "required": _Checker(f"{checker.path}.required").flag(condition.get("required"), True),
        "scale": scale,
        "sub_questions": sub_questions,
    }


def _normalise_measurement(raw: Any, index: int, levels: Sequence[str]) -> dict[str, Any]:
    checker = _Checker(f"measurements[{index}]")
    task = checker.mapping(raw)
    _unknown_keys(task, {"key", "kind", "label", "required", "levels", "unit"}, checker)
    key = _Checker(f"{checker.path}.key").key(task.get("key"))
    kind = task.get("kind")
    if kind not in MEASUREMENT_KINDS:
        raise _Checker(f"{checker.path}.kind").fail(f"must be one of {', '.join(MEASUREMENT_KINDS)}")
    task_levels = task.get("levels", list(levels))
    stray = sorted(set(_Checker(f"{checker.path}.levels").listing(task_levels)) - set(levels))
    if stray:
        raise _Checker(f"{checker.path}.levels").fail(f"{', '.join(map(str, stray))} not in the protocol's levels")
    return {
        "key": key,
        "kind": kind,
        "label": checker.text(task.get("label"), key),
        "unit": MEASUREMENT_KINDS[kind],
        "required": _Checker(f"{checker.path}.required").flag(task.get("required"), False),
        "levels": [level for level in levels if level in task_levels],
    }


def _normalise_segmentation(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    checker = _Checker("segmentation")
    task = checker.mapping(raw)
    _unknown_keys(task, {"series_role", "labels", "brush_radius_mm"}, checker)
    role = task.get("series_role", "axial_t2")
    if role not in SERIES_ROLES:
        raise _Checker("segmentation.series_role").fail(f"must be one of {', '.join(SERIES_ROLES)}")
    labels = []
    for index, item in enumerate(_Checker("segmentation.labels").listing(task.get("labels"))):
        name = item.get("name") if isinstance(item, dict) else item  # a normalised protocol lists objects
        if not isinstance(name, str) or name not in SEGMENTATION_LABELS:
            raise _Checker(f"segmentation.labels[{index}]").fail(f"unknown label '{name}'; known: {', '.join(SEGMENTATION_LABELS)}")
        labels.append({"name": name} | SEGMENTATION_LABELS[name])
    if len({label["name"] for label in labels}) != len(labels):
        raise _Checker("segmentation.labels").fail("lists a label twice")
    radius = task.get("brush_radius_mm", 2.0)
    if isinstance(radius, bool) or not isinstance(radius, int | float) or not 0.1 <= radius <= 50:
        raise _Checker("segmentation.brush_radius_mm").fail("must be a number of millimetres between 0.1 and 50")
    return {"series_role": role, "labels": labels, "brush_radius_mm": float(radius)}


AI_GRADE_SOURCES = ("auto", "grader", "dsca")


def _normalise_ai_grade(raw: Any, conditions: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """How the AI's grade of one condition is made: by the model's stenosis grader ("grader"), from its
    dural sac area through DSCA cut-offs ("dsca"), or by the grader when the study's model has one and
    else by the cut-offs ("auto", the default). ``grader_map`` maps the grader's class names onto the
    condition's categories; without it, class i is category i (when both have as many)."""
    if raw is None:
        return None
    checker = _Checker("ai_grade")
    ai_grade = checker.mapping(raw)
    _unknown_keys(ai_grade, {"condition", "source", "dsca_cutoffs_mm2", "grader_map"}, checker)
    condition = next((c for c in conditions if c["key"] == ai_grade.get("condition")), None)
    if condition is None:
        raise _Checker("ai_grade.condition").fail("must name one of the conditions")
    source = ai_grade.get("source", "auto")
    if source not in AI_GRADE_SOURCES:
        raise _Checker("ai_grade.source").fail(f"must be one of {', '.join(AI_GRADE_SOURCES)}")
    cutoffs = ai_grade.get("dsca_cutoffs_mm2")
    if cutoffs is None and source != "grader":
        raise _Checker("ai_grade.dsca_cutoffs_mm2").fail(f"is needed when source is {source} (only a grader-only AI grade goes without)")
    if cutoffs is not None:
        if not isinstance(cutoffs, list) or not cutoffs or not all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in cutoffs):
            raise _Checker("ai_grade.dsca_cutoffs_mm2").fail("must be a list of positive numbers")
        if any(b >= a for a, b in zip(cutoffs, cutoffs[1:], strict=False)):
            raise _Checker("ai_grade.dsca_cutoffs_mm2").fail("must decrease (mm2 thresholds from normal to most severe)")
    codes = [c["code"] for c in condition["scale"]["categories"]]
    grader_map = {}
    for name, code in _Checker("ai_grade.grader_map").mapping(ai_grade.get("grader_map") or {}).items():
        if not isinstance(name, str) or not name:
            raise _Checker("ai_grade.grader_map").fail("keys must be the grader's class names")
        if code not in codes:
            raise _Checker(f"ai_grade.grader_map.{name}").fail(f"'{code}' is not a category of {condition['key']} ({', '.join(codes)})")
        grader_map[name] = code
    out: dict[str, Any] = {"condition": condition["key"], "source": source}
    if cutoffs is not None:
        out["dsca_cutoffs_mm2"] = [float(v) for v in cutoffs]
    if grader_map:
        out["grader_map"] = grader_map
    return out


def _normalise_ai_grader_tasks(raw: Any, conditions: Sequence[Mapping[str, Any]], ai_grade: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Further conditions graded by the model's grader alone, one of its tasks each (no DSCA fallback):
    ``[{condition, task, grader_map?}]``. ``grader_map`` maps the task's class names onto the condition's
    categories; without it, class i is category i (when both have as many)."""
    tasks = []
    seen: set[str] = set()
    for index, item in enumerate(_Checker("ai_grader_tasks").listing(raw if raw is not None else [], allow_empty=True)):
        checker = _Checker(f"ai_grader_tasks[{index}]")
        entry = checker.mapping(item)
        _unknown_keys(entry, {"condition", "task", "grader_map"}, checker)
        condition = next((c for c in conditions if c["key"] == entry.get("condition")), None)
        if condition is None:
            raise _Checker(f"{checker.path}.condition").fail("must name one of the conditions")
        key = str(condition["key"])
        if ai_grade is not None and ai_grade["condition"] == key:
            raise _Checker(f"{checker.path}.condition").fail(f"{key} is graded through ai_grade already")
        if key in seen:
            raise _Checker(f"{checker.path}.condition").fail(f"{key} is listed twice")
        seen.add(key)
        task = _Checker(f"{checker.path}.task").key(entry.get("task"))
        codes = [c["code"] for c in condition["scale"]["categories"]]
        grader_map = {}
        for name, code in _Checker(f"{checker.path}.grader_map").mapping(entry.get("grader_map") or {}).items():
            if not isinstance(name, str) or not name:
                raise _Checker(f"{checker.path}.grader_map").fail("keys must be the grader's class names")
            if code not in codes:
                raise _Checker(f"{checker.path}.grader_map.{name}").fail(f"'{code}' is not a category of {key} ({', '.join(codes)})")
            grader_map[name] = code
        out: dict[str, Any] = {"condition": key, "task": task}
        if grader_map:
            out["grader_map"] = grader_map
        tasks.append(out)
    return tasks


def _normalise_mappings(raw: Any, scales: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    mappings = []
    for index, item in enumerate(_Checker("mappings").listing(raw if raw is not None else [], allow_empty=True)):
        checker = _Checker(f"mappings[{index}]")
        mapping = checker.mapping(item)
        _unknown_keys(mapping, {"from", "to", "map"}, checker)
        source, target = str(mapping.get("from")), str(mapping.get("to"))
        if source not in scales or target not in scales:
            raise checker.fail("'from' and 'to' must name scales of the library or the protocol's own 'scales'")
        table = {str(k): str(v) for k, v in checker.mapping(mapping.get("map")).items()}
        source_codes = [c["code"] for c in scales[source]["categories"]]
        target_codes = {c["code"] for c in scales[target]["categories"]}
        if set(table) != set(source_codes):
            raise checker.fail(f"'map' must give a target for every category of {source}: {', '.join(source_codes)}")
        stray = sorted(set(table.values()) - target_codes)
        if stray:
            raise checker.fail(f"maps to {', '.join(stray)}, which are not categories of {target}")
        mappings.append({"from": source, "to": target, "map": table})
    return mappings


def protocol_validate(protocol: Any) -> dict[str, Any]:
    """Check a protocol and return its normalised form; the error names the first problem found.

    Normalising is idempotent: a normalised protocol validates to itself.
    """
    checker = _Checker("protocol")
    raw = checker.mapping(protocol)
    allowed = {
        "name", "levels", "scales", "conditions", "measurements", "segmentation", "ai_grade", "ai_grader_tasks", "mappings", "two_phase", "compare", "adjudication",
    }  # fmt: skip
    _unknown_keys(raw, allowed, checker)
    levels = _Checker("levels").listing(raw.get("levels"))
    if not all(isinstance(v, str) and v for v in levels):
        raise _Checker("levels").fail("must be a non-empty list of level names")
    if len(set(levels)) != len(levels):
        raise _Checker("levels").fail("has duplicates")
    scales = dict(SCALES)
    for name, scale in _Checker("scales").mapping(raw.get("scales") or {}).items():
        key = _Checker("scales").key(name)
        normalised = _normalise_scale(scale, {}, _Checker(f"scales.{key}"))
        scales[key] = {"name": normalised["name"], "categories": normalised["categories"]}
    conditions = [_normalise_condition(c, i, scales) for i, c in enumerate(_Checker("conditions").listing(raw.get("conditions")))]
    keys = [c["key"] for c in conditions] + [s["key"] for c in conditions for s in c["sub_questions"]]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise _Checker("conditions").fail(f"key(s) used twice: {', '.join(duplicates)}")
    measurements = [_normalise_measurement(m, i, levels) for i, m in enumerate(_Checker("measurements").listing(raw.get("measurements", []), allow_empty=True))]
    measurement_keys = [m["key"] for m in measurements]
    if len(set(measurement_keys)) != len(measurement_keys):
        raise _Checker("measurements").fail("a measurement key is used twice")
    adjudication = _Checker("adjudication").mapping(raw.get("adjudication") or {})
    _unknown_keys(adjudication, {"grade_distance", "dsca_difference_mm2"}, _Checker("adjudication"))
    grade_distance = adjudication.get("grade_distance", 1)
    dsca_difference = adjudication.get("dsca_difference_mm2", 20.0)
    if isinstance(grade_distance, bool) or not isinstance(grade_distance, int) or grade_distance < 1:
        raise _Checker("adjudication.grade_distance").fail("must be a whole number of categories >= 1")
    if isinstance(dsca_difference, bool) or not isinstance(dsca_difference, int | float) or dsca_difference <= 0:
        raise _Checker("adjudication.dsca_difference_mm2").fail("must be a positive number of mm2")
    ai_grade = _normalise_ai_grade(raw.get("ai_grade"), conditions)
    return {
        "name": _Checker("name").text(raw.get("name"), "Reading protocol"),
        "levels": list(levels),
        "scales": {k: v for k, v in scales.items() if k not in SCALES or k in (raw.get("scales") or {})},
        "conditions": conditions,
        "measurements": measurements,
        "segmentation": _normalise_segmentation(raw.get("segmentation")),
        "ai_grade": ai_grade,
        "ai_grader_tasks": _normalise_ai_grader_tasks(raw.get("ai_grader_tasks"), conditions, ai_grade),
        "mappings": _normalise_mappings(raw.get("mappings"), scales),
        "two_phase": _Checker("two_phase").flag(raw.get("two_phase"), False),
        "compare": _Checker("compare").flag(raw.get("compare"), True),
        "adjudication": {"grade_distance": grade_distance, "dsca_difference_mm2": float(dsca_difference)},
    }


def protocol_load(text: str | bytes) -> dict[str, Any]:
    """Parse a protocol written as YAML or JSON (JSON is YAML) and validate it."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        raise ApplicationError(f"The protocol is not valid YAML or JSON{line}: {getattr(exc, 'problem', exc)}") from None
    try:  # YAML's \uXXXX escapes may leave lone surrogates, which no response or database can encode
        json.dumps(raw, ensure_ascii=False, default=str, skipkeys=True).encode()
    except UnicodeEncodeError:
        raise ApplicationError("The protocol contains text that is not valid Unicode (an unpaired \\u escape)") from None
    return protocol_validate(raw)


def protocol_dump(protocol: Mapping[str, Any], *, fmt: str = "yaml") -> str:
    """The normalised protocol as YAML or JSON text; loading it gives the same protocol back."""
    if fmt == "json":
        return json.dumps(protocol, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        return yaml.safe_dump(dict(protocol), sort_keys=False, allow_unicode=True)
    raise ApplicationError("format must be yaml or json")


def _question(protocol: Mapping[str, Any], key: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The condition or sub-question with this key, and the parent condition of a sub-question."""
    for condition in protocol["conditions"]:
        if condition["key"] == key:
            return condition, None
        for sub in condition.get("sub_questions", []):
            if sub["key"] == key:
                return sub, condition
    raise ApplicationError(f"the protocol has no condition '{key}'")


def condition_categories(protocol: Mapping[str, Any], condition_key: str) -> list[str]:
    """The fixed, ordered category codes of a condition or sub-question."""
    question, _ = _question(protocol, condition_key)
    return [c["code"] for c in question["scale"]["categories"]]


def sub_question_parent(protocol: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    return _question(protocol, key)[1]


def missing_items(protocol: Mapping[str, Any], grades: Mapping[tuple[str, str], str], measurement_levels: Mapping[str, set[str]]) -> list[dict[str, str]]:
    """Required answers not given: grades per level (sub-questions only where their parent's answer calls
    for them) and required measurements per level."""
    missing: list[dict[str, str]] = []
    for level in protocol["levels"]:
        for condition in protocol["conditions"]:
            if condition.get("required", True) and (level, condition["key"]) not in grades:
                missing.append({"level": level, "condition": condition["key"]})
            for sub in condition.get("sub_questions", []):
                if sub["required"] and grades.get((level, condition["key"])) in sub["when"] and (level, sub["key"]) not in grades:
                    missing.append({"level": level, "condition": sub["key"]})
        for task in protocol.get("measurements", []):
            if task["required"] and level in task["levels"] and level not in measurement_levels.get(task["key"], set()):
                missing.append({"level": level, "measurement": task["key"]})
    return missing


def required_items(protocol: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(level, condition) pairs that every complete read grades (sub-questions depend on the answers)."""
    return [(level, c["key"]) for level in protocol["levels"] for c in protocol["conditions"] if c.get("required", True)]


def scale_mapping(protocol: Mapping[str, Any], source: str, target: str) -> dict[str, str]:
    """The category map from one scale to another, declared by the protocol or built in."""
    for mapping in [*protocol.get("mappings", []), *BUILTIN_MAPPINGS]:
        if mapping["from"] == source and mapping["to"] == target:
            return dict(mapping["map"])
    raise ApplicationError(f"no mapping from scale '{source}' to '{target}'")
