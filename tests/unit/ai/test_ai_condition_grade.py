"""The AI's value of any protocol condition on a level (ai.selectors.ai_condition_grade): ai_grade's
condition through ai_level_grade, the conditions of ai_grader_tasks from the grader's other tasks."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ml.inference.api import TaskGrade
from spinereview.ai.level_grades import level_task_grades
from spinereview.ai.models import AILevelMeasurement, ModelVersion
from spinereview.ai.selectors import (
    ai_condition_confidence,
    ai_condition_grade,
    ai_condition_source,
    ai_graded_conditions,
    ai_grades_method,
    ai_level_grade,
)
from spinereview.studies.protocols import DEFAULT_PROTOCOL, protocol_validate

SIGN: dict[str, Any] = {"classes": ["absent", "present"], "heldout": {"accuracy": 0.95, "n": 100}}
GRADER: dict[str, Any] = {
    "name": "g", "version": "g@0123456789ab", "grades": ["normal", "mild", "moderate", "severe"], "heldout": {"n": 100, "accuracy": 0.89},
    "tasks": {"sedimentation_sign": SIGN},
}  # fmt: skip
STENOSIS_ONLY = {k: v for k, v in GRADER.items() if k != "tasks"}  # registered before graders had tasks
PROTOCOL = protocol_validate(DEFAULT_PROTOCOL)


def _model(grader: dict[str, Any] | None = None) -> ModelVersion:
    return ModelVersion(version="seg@aaaaaaaaaaaa", grader=grader or {})


def _row(**fields: Any) -> AILevelMeasurement:
    base: dict[str, Any] = {"level": "L4-L5", "dsca_mm2": 60.0, "flag": "", "errors": {}, "grade_index": None, "grade_name": "", "grader_version": "", "task_grades": {}}
    return AILevelMeasurement(**(base | fields))


def _graded(sign: int | None) -> AILevelMeasurement:
    """Graded severe, and (unless None) the sign's class `sign` with probability 0.8."""
    tasks = {}
    if sign is not None:
        probabilities = [0.2, 0.2]
        probabilities[sign] = 0.8
        tasks = level_task_grades({"sedimentation_sign": TaskGrade("sedimentation_sign", sign, SIGN["classes"][sign], tuple(probabilities), tuple(SIGN["classes"]))})
    return _row(
        grade_index=3, grade_name="severe", grader_version=GRADER["version"], grade_probabilities={"normal": 0.1, "mild": 0.1, "moderate": 0.1, "severe": 0.7},
        task_grades=tasks,
    )  # fmt: skip


def _sign(row: AILevelMeasurement, model: ModelVersion, protocol: dict[str, Any] = PROTOCOL) -> tuple[str | None, str]:
    return ai_condition_grade(row, protocol=protocol, condition="sedimentation_sign", model_version=model)


def test_stored_task_grades_hold_index_name_and_probabilities_by_class() -> None:
    stored = level_task_grades({"sedimentation_sign": TaskGrade("sedimentation_sign", 1, "present", (0.25, 0.75), ("absent", "present"))})
    assert stored == {"sedimentation_sign": {"index": 1, "name": "present", "probabilities": {"absent": 0.25, "present": 0.75}}}
    assert level_task_grades({}) == {}


def test_the_ai_graded_conditions_are_ai_grades_then_the_grader_tasks() -> None:
    assert ai_graded_conditions(PROTOCOL) == ["central_canal", "sedimentation_sign"]
    older = {k: v for k, v in PROTOCOL.items() if k != "ai_grader_tasks"}  # stored before grader tasks existed
    assert ai_graded_conditions(older) == ["central_canal"]
    assert ai_graded_conditions(older | {"ai_grade": None}) == []
    assert ai_condition_source(protocol=PROTOCOL, condition="sedimentation_sign", model_version=_model()) == "grader"  # never the DSCA
    assert ai_condition_source(protocol=PROTOCOL, condition="central_canal", model_version=_model()) == "dsca"
    assert ai_condition_source(protocol=older, condition="sedimentation_sign", model_version=_model(GRADER)) == ""


def test_a_graded_task_gives_the_category_of_its_class_and_the_stenosis_grade_is_unchanged() -> None:
    model = _model(GRADER)
    assert _sign(_graded(1), model) == ("present", "")
    assert _sign(_graded(0), model) == ("absent", "")
    assert ai_condition_confidence(_graded(1), protocol=PROTOCOL, condition="sedimentation_sign") == 0.8
    assert ai_condition_confidence(_graded(None), protocol=PROTOCOL, condition="sedimentation_sign") is None
    # ai_grade's condition: exactly ai_level_grade's answer
    row = _graded(1)
    assert ai_condition_grade(row, protocol=PROTOCOL, condition="central_canal", model_version=model) == ("3", "")
    assert ai_condition_grade(row, protocol=PROTOCOL, condition="central_canal", model_version=model) == ai_level_grade(
        row, ai_grade=PROTOCOL["ai_grade"], categories=["0", "1", "2", "3"], model_version=model
    )
    assert ai_condition_confidence(row, protocol=PROTOCOL, condition="central_canal") == 0.7


def test_a_grader_map_maps_the_task_classes_and_a_class_count_mismatch_without_one_is_explained() -> None:
    raw = copy.deepcopy(DEFAULT_PROTOCOL)
    raw["conditions"][1]["scale"] = {"categories": ["no", "unsure", "yes"]}
    raw["ai_grader_tasks"] = [{"condition": "sedimentation_sign", "task": "sedimentation_sign", "grader_map": {"absent": "no", "present": "yes"}}]
    mapped = protocol_validate(raw)
    assert _sign(_graded(1), _model(GRADER), mapped) == ("yes", "")
    assert _sign(_graded(0), _model(GRADER), mapped) == ("no", "")
    del raw["ai_grader_tasks"][0]["grader_map"]
    value, why = _sign(_graded(1), _model(GRADER), protocol_validate(raw))
    assert value is None
    assert why == "the grader's 2 sedimentation_sign classes do not map onto the 3 categories of sedimentation_sign: set its grader_map in ai_grader_tasks"
    raw["ai_grader_tasks"][0]["grader_map"] = {"absent": "no"}
    value, why = _sign(_graded(1), _model(GRADER), protocol_validate(raw))
    assert value is None and why == "the grader_map of sedimentation_sign in ai_grader_tasks has no category for the grader's 'present'"


@pytest.mark.parametrize(
    ("row", "model", "why"),
    [
        (_graded(1), _model(), "the model seg@aaaaaaaaaaaa has no grader"),
        (_graded(1), _model(STENOSIS_ONLY), "the grader g@0123456789ab does not grade sedimentation_sign"),
        (_graded(1), _model(STENOSIS_ONLY | {"tasks": {}}), "the grader g@0123456789ab does not grade sedimentation_sign"),
        (_row(), _model(GRADER), "not graded yet"),
        (_row(grader_version=GRADER["version"], errors={"grade": "no spinal canal in the AI's mask"}), _model(GRADER), "no spinal canal in the AI's mask"),
        (_graded(None), _model(GRADER), "the grader gave no sedimentation_sign grade for this level"),
        (_row(flag="4 discs found", task_grades=_graded(1).task_grades), _model(GRADER), "4 discs found"),
    ],
)
def test_a_level_without_a_task_grade_says_why(row: AILevelMeasurement, model: ModelVersion, why: str) -> None:
    assert _sign(row, model) == (None, why)


def test_a_condition_the_ai_does_not_grade_has_no_value() -> None:
    older = {k: v for k, v in PROTOCOL.items() if k != "ai_grader_tasks"}
    assert _sign(_graded(1), _model(GRADER), older) == (None, "the protocol does not have the AI grade sedimentation_sign")


def test_the_method_line_describes_every_ai_graded_condition() -> None:
    assert ai_grades_method(protocol=PROTOCOL, model_version=_model(GRADER)) == (
        "stenosis grader g@0123456789ab (normal, mild, moderate, severe) on the axial slice at each disc; held-out accuracy 0.89 on 100 levels; "
        "sedimentation_sign: grader g@0123456789ab task sedimentation_sign (absent, present); held-out accuracy 0.95 on 100 levels"
    )
    without_scores = GRADER | {"tasks": {"sedimentation_sign": {"classes": ["absent", "present"], "heldout": {}}}}
    assert ai_grades_method(protocol=PROTOCOL, model_version=_model(without_scores)).endswith("task sedimentation_sign (absent, present)")
    assert ai_grades_method(protocol=PROTOCOL, model_version=_model(STENOSIS_ONLY)).endswith(
        "; sedimentation_sign: the grader g@0123456789ab does not grade sedimentation_sign, so the AI gives no grades"
    )
    assert ai_grades_method(protocol=PROTOCOL, model_version=_model()).endswith("; sedimentation_sign: seg@aaaaaaaaaaaa has no grader, so the AI gives no grades")
    assert ai_grades_method(protocol=PROTOCOL | {"ai_grade": None, "ai_grader_tasks": []}, model_version=_model(GRADER)) == ""
