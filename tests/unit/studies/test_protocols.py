"""Reading protocols: validation into the normalised form, YAML/JSON round trips, required answers."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from spinereview.core.errors import ApplicationError
from spinereview.studies.protocols import (
    DEFAULT_PROTOCOL,
    condition_categories,
    missing_items,
    protocol_dump,
    protocol_load,
    protocol_validate,
    required_items,
    scale_mapping,
)

SCHIZAS_YAML = """
name: Schizas two-phase study
levels: [L3-L4, L4-L5, L5-S1]
scales:
  my_scale: {name: Custom 3-point, categories: [none, some, much]}
conditions:
  - key: central_canal
    label: Central canal stenosis (Schizas)
    scale: schizas
    sub_questions:
      - {key: central_canal_subgrade, label: Schizas A sub-grade, scale: schizas_a_subgrade, when: [A]}
  - {key: foraminal_left, label: Foraminal stenosis, side: left, scale: lee}
  - {key: foraminal_right, label: Foraminal stenosis, side: right, scale: lee}
  - {key: rootlet_sign, label: Sedimentation sign, scale: present_absent, required: false}
  - {key: custom, scale: my_scale, required: false}
measurements:
  - {key: dsca, kind: area, label: Dural sac area, required: true, levels: [L4-L5]}
segmentation: {series_role: axial_t2, labels: [dural_sac], brush_radius_mm: 3}
mappings:
  - {from: my_scale, to: three_class, map: {none: normal_mild, some: moderate, much: severe}}
two_phase: true
adjudication: {grade_distance: 2, dsca_difference_mm2: 15}
"""


def test_default_protocol_normalises_idempotently_with_fixed_categories() -> None:
    protocol = protocol_validate(DEFAULT_PROTOCOL)
    assert protocol_validate(protocol) == protocol
    assert condition_categories(protocol, "central_canal") == ["0", "1", "2", "3"]
    assert required_items(protocol) == [(level, "central_canal") for level in ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]]
    assert [m["unit"] for m in protocol["measurements"]] == ["mm2", "mm", "mm"]
    assert protocol["segmentation"]["labels"][0] == {"name": "dural_sac", "value": 4, "label": "Dural sac", "color": [240, 228, 66]}
    assert protocol["two_phase"] is False
    assert protocol["adjudication"] == {"grade_distance": 1, "dsca_difference_mm2": 20.0}


def test_yaml_protocol_with_library_and_custom_scales_sub_questions_and_mappings() -> None:
    protocol = protocol_load(SCHIZAS_YAML)
    assert condition_categories(protocol, "central_canal") == ["A", "B", "C", "D"]
    assert condition_categories(protocol, "central_canal_subgrade") == ["A1", "A2", "A3", "A4"]
    assert condition_categories(protocol, "foraminal_left") == ["0", "1", "2", "3"]
    assert condition_categories(protocol, "custom") == ["none", "some", "much"]
    sides = {c["key"]: c["side"] for c in protocol["conditions"]}
    assert sides == {"central_canal": None, "foraminal_left": "left", "foraminal_right": "right", "rootlet_sign": None, "custom": None}
    assert protocol["measurements"][0]["levels"] == ["L4-L5"]
    assert protocol["segmentation"]["brush_radius_mm"] == 3.0
    assert scale_mapping(protocol, "my_scale", "three_class") == {"none": "normal_mild", "some": "moderate", "much": "severe"}
    assert scale_mapping(protocol, "schizas_full", "schizas")["A3"] == "A"
    with pytest.raises(ApplicationError, match="no mapping from scale 'lee' to 'schizas'"):
        scale_mapping(protocol, "lee", "schizas")


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_export_then_import_gives_the_same_protocol(fmt: str) -> None:
    protocol = protocol_load(SCHIZAS_YAML)
    text = protocol_dump(protocol, fmt=fmt)
    if fmt == "json":
        assert json.loads(text)["levels"] == ["L3-L4", "L4-L5", "L5-S1"]
    assert protocol_load(text) == protocol


def test_missing_items_follow_sub_question_conditions_and_required_measurements() -> None:
    protocol = protocol_load(SCHIZAS_YAML)
    grades = {(level, key): "0" for level in protocol["levels"] for key in ("foraminal_left", "foraminal_right")}
    grades |= {("L3-L4", "central_canal"): "A", ("L4-L5", "central_canal"): "B", ("L5-S1", "central_canal"): "C"}
    missing = missing_items(protocol, grades, {})
    # L3-L4 is grade A, so its sub-grade is required; B and C need none; DSCA is required at L4-L5 only.
    assert missing == [{"level": "L3-L4", "condition": "central_canal_subgrade"}, {"level": "L4-L5", "measurement": "dsca"}]
    grades[("L3-L4", "central_canal_subgrade")] = "A2"
    assert missing_items(protocol, grades, {"dsca": {"L4-L5"}}) == []


def _broken(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    protocol = copy.deepcopy(DEFAULT_PROTOCOL)
    change(protocol)
    return protocol


@pytest.mark.parametrize(
    ("protocol", "message"),
    [
        ("not a mapping", "protocol: must be an object"),
        (_broken(lambda p: p.update(levels=[])), "levels: must be a non-empty list"),
        (_broken(lambda p: p.update(levels=["L4-L5", "L4-L5"])), "levels: has duplicates"),
        (_broken(lambda p: p.update(conditions=[])), "conditions: must be a non-empty list"),
        (_broken(lambda p: p.update(colour="blue")), "unknown field(s) colour"),
        (_broken(lambda p: p["conditions"][0].update(scale={"categories": [{"code": "0"}]})), "conditions[0].scale: a scale needs at least two ordered categories"),
        (_broken(lambda p: p["conditions"][0].update(scale={"categories": ["a", "a"]})), "category codes must be unique"),
        (_broken(lambda p: p["conditions"][0].update(scale="schizaz")), "unknown scale 'schizaz'"),
        (_broken(lambda p: p["conditions"][0].update(side="middle")), "conditions[0].side: must be left, right or absent"),
        (_broken(lambda p: p["conditions"].append({"key": "central_canal", "scale": "lee"})), "key(s) used twice: central_canal"),
        (
            _broken(lambda p: p["conditions"][0].update(sub_questions=[{"key": "sub", "scale": "lee", "when": ["9"]}])),
            "'when' names 9, which are not categories of central_canal",
        ),
        (_broken(lambda p: p["measurements"].append({"key": "x", "kind": "volume"})), "measurements[3].kind: must be one of length, area, disc_height"),
        (_broken(lambda p: p["measurements"].append({"key": "x", "kind": "length", "levels": ["C5-C6"]})), "C5-C6 not in the protocol's levels"),
        (_broken(lambda p: p["segmentation"].update(labels=["brain"])), "unknown label 'brain'"),
        (_broken(lambda p: p["segmentation"].update(brush_radius_mm=0)), "brush_radius_mm: must be a number of millimetres"),
        (_broken(lambda p: p.update(ai_grade={"condition": "foraminal", "dsca_cutoffs_mm2": [100]})), "ai_grade.condition: must name one of the conditions"),
        (_broken(lambda p: p.update(ai_grade={"condition": "central_canal", "dsca_cutoffs_mm2": [50, 75]})), "must decrease"),
        (_broken(lambda p: p.update(ai_grade={"condition": "central_canal", "dsca_cutoffs_mm2": [100, -5]})), "must be a list of positive numbers"),
        (_broken(lambda p: p.update(ai_grade={"condition": "central_canal", "source": "oracle"})), "ai_grade.source: must be one of auto, grader, dsca"),
        (_broken(lambda p: p.update(ai_grade={"condition": "central_canal"})), "ai_grade.dsca_cutoffs_mm2: is needed when source is auto"),
        (_broken(lambda p: p.update(ai_grade={"condition": "central_canal", "source": "dsca"})), "is needed when source is dsca"),
        (
            _broken(lambda p: p.update(ai_grade={"condition": "central_canal", "source": "grader", "grader_map": {"severe": "E"}})),
            "ai_grade.grader_map.severe: 'E' is not a category of central_canal",
        ),
        (_broken(lambda p: p.update(ai_grade={"condition": "central_canal", "source": "grader", "grader_map": ["A"]})), "ai_grade.grader_map: must be an object"),
        (_broken(lambda p: p.update(ai_grade={"condition": "central_canal", "source": "grader", "by": "me"})), "ai_grade: unknown field(s) by"),
        (_broken(lambda p: p.update(ai_grader_tasks={"condition": "sedimentation_sign"})), "ai_grader_tasks: must be a list"),
        (_broken(lambda p: p.update(ai_grader_tasks=["sedimentation_sign"])), "ai_grader_tasks[0]: must be an object"),
        (_broken(lambda p: p.update(ai_grader_tasks=[{"condition": "rootlets", "task": "sedimentation_sign"}])), "ai_grader_tasks[0].condition: must name one of the conditions"),
        (
            _broken(lambda p: p.update(ai_grader_tasks=[{"condition": "central_canal", "task": "stenosis"}])),
            "ai_grader_tasks[0].condition: central_canal is graded through ai_grade already",
        ),
        (
            _broken(lambda p: p["ai_grader_tasks"].append({"condition": "sedimentation_sign", "task": "sign_v2"})),
            "ai_grader_tasks[1].condition: sedimentation_sign is listed twice",
        ),
        (_broken(lambda p: p.update(ai_grader_tasks=[{"condition": "sedimentation_sign"}])), "ai_grader_tasks[0].task: must be a non-empty name"),
        (_broken(lambda p: p.update(ai_grader_tasks=[{"condition": "sedimentation_sign", "task": "a b"}])), "ai_grader_tasks[0].task: must be a non-empty name"),
        (
            _broken(lambda p: p.update(ai_grader_tasks=[{"condition": "sedimentation_sign", "task": "sedimentation_sign", "grader_map": {"present": "yes"}}])),
            "ai_grader_tasks[0].grader_map.present: 'yes' is not a category of sedimentation_sign (absent, present)",
        ),
        (
            _broken(lambda p: p.update(ai_grader_tasks=[{"condition": "sedimentation_sign", "task": "sedimentation_sign", "grader_map": ["absent"]}])),
            "ai_grader_tasks[0].grader_map: must be an object",
        ),
        (
            _broken(lambda p: p.update(ai_grader_tasks=[{"condition": "sedimentation_sign", "task": "sedimentation_sign", "source": "dsca"}])),
            "ai_grader_tasks[0]: unknown field(s) source",
        ),
        (_broken(lambda p: p.update(mappings=[{"from": "lee", "to": "three_class", "map": {"0": "normal_mild"}}])), "'map' must give a target for every category of lee"),
        (_broken(lambda p: p.update(adjudication={"grade_distance": 0})), "adjudication.grade_distance: must be a whole number"),
        (_broken(lambda p: p.update(two_phase="yes")), "two_phase: must be true or false"),
    ],
)
def test_malformed_protocols_are_refused_naming_the_problem(protocol: Any, message: str) -> None:
    with pytest.raises(ApplicationError) as raised:
        protocol_validate(protocol)
    assert message in raised.value.message


def test_invalid_yaml_reports_the_line() -> None:
    with pytest.raises(ApplicationError, match="not valid YAML or JSON at line 2"):
        protocol_load("levels: [L1-L2\nconditions: {")


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[3] / "protocols").glob("*.yaml")), ids=lambda p: p.name)
def test_example_protocols_in_the_repository_load(path: Path) -> None:
    protocol = protocol_load(path.read_text())
    assert protocol_load(protocol_dump(protocol)) == protocol
    assert protocol["levels"][-1] == "L5-S1"


def test_ai_grade_sources_normalise_and_stay_idempotent() -> None:
    grader_only = copy.deepcopy(DEFAULT_PROTOCOL)
    grader_only["conditions"][0]["scale"] = "three_class"
    grader_only["ai_grade"] = {
        "condition": "central_canal",
        "source": "grader",
        "grader_map": {"normal": "normal_mild", "mild": "normal_mild", "moderate": "moderate", "severe": "severe"},
    }
    normalised = protocol_validate(grader_only)
    assert normalised["ai_grade"] == {
        "condition": "central_canal",
        "source": "grader",
        "grader_map": {"normal": "normal_mild", "mild": "normal_mild", "moderate": "moderate", "severe": "severe"},
    }
    assert protocol_validate(normalised) == normalised
    legacy = copy.deepcopy(DEFAULT_PROTOCOL)
    legacy["ai_grade"] = {"condition": "central_canal", "dsca_cutoffs_mm2": [100, 75, 50]}  # stored before sources existed
    assert protocol_validate(legacy)["ai_grade"] == {"condition": "central_canal", "source": "auto", "dsca_cutoffs_mm2": [100.0, 75.0, 50.0]}


def test_ai_grader_tasks_normalise_default_to_none_and_stay_idempotent() -> None:
    protocol = protocol_validate(DEFAULT_PROTOCOL)
    assert protocol["ai_grader_tasks"] == [{"condition": "sedimentation_sign", "task": "sedimentation_sign"}]
    assert condition_categories(protocol, "sedimentation_sign") == ["absent", "present"]  # the grader's class order
    assert required_items(protocol) == [(level, "central_canal") for level in protocol["levels"]]  # the sign is optional
    mapped = copy.deepcopy(DEFAULT_PROTOCOL)
    mapped["conditions"].append({"key": "rootlets", "scale": {"categories": ["no", "yes"]}, "required": False})
    mapped["ai_grader_tasks"].append({"condition": "rootlets", "task": "sedimentation_sign", "grader_map": {"absent": "no", "present": "yes"}})
    normalised = protocol_validate(mapped)
    assert normalised["ai_grader_tasks"] == [
        {"condition": "sedimentation_sign", "task": "sedimentation_sign"},
        {"condition": "rootlets", "task": "sedimentation_sign", "grader_map": {"absent": "no", "present": "yes"}},
    ]
    assert protocol_validate(normalised) == normalised
    assert protocol_load(protocol_dump(normalised)) == normalised
    # Protocols written before grader tasks, and those without an ai_grade at all, grade no further conditions.
    older = copy.deepcopy(DEFAULT_PROTOCOL)
    del older["ai_grader_tasks"]
    assert protocol_validate(older)["ai_grader_tasks"] == []
    no_ai_grade = copy.deepcopy(DEFAULT_PROTOCOL)
    del no_ai_grade["ai_grade"]
    assert protocol_validate(no_ai_grade)["ai_grader_tasks"] == [{"condition": "sedimentation_sign", "task": "sedimentation_sign"}]
