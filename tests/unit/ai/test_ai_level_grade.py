"""The one rule for the AI's grade of a level (ai.selectors.ai_level_grade): grader or DSCA cut-offs."""

from __future__ import annotations

from typing import Any

import pytest

from spinereview.ai.models import AILevelMeasurement, ModelVersion
from spinereview.ai.selectors import ai_grade_method, ai_grade_source, ai_level_grade

GRADER: dict[str, Any] = {"name": "g", "version": "g@0123456789ab", "grades": ["normal", "mild", "moderate", "severe"], "heldout": {"n": 100, "accuracy": 0.89}}
FOUR = ["0", "1", "2", "3"]
THREE = ["normal_mild", "moderate", "severe"]
CUTOFFS = {"condition": "central_canal", "dsca_cutoffs_mm2": [100.0, 75.0, 50.0]}


def _model(grader: dict[str, Any] | None = None) -> ModelVersion:
    return ModelVersion(version="seg@aaaaaaaaaaaa", grader=grader or {})


def _row(**fields: Any) -> AILevelMeasurement:
    base: dict[str, Any] = {"level": "L4-L5", "dsca_mm2": 60.0, "flag": "", "errors": {}, "grade_index": None, "grade_name": "", "grader_version": ""}
    return AILevelMeasurement(**(base | fields))


def _graded(index: int) -> AILevelMeasurement:
    return _row(grade_index=index, grade_name=GRADER["grades"][index], grader_version=GRADER["version"], grade_probabilities={"severe": 0.7})


def test_auto_uses_the_grader_when_the_model_has_one_and_the_cutoffs_otherwise() -> None:
    auto = CUTOFFS | {"source": "auto"}
    assert ai_grade_source(ai_grade=auto, model_version=_model(GRADER)) == "grader"
    assert ai_grade_source(ai_grade=auto, model_version=_model()) == "dsca"
    assert ai_grade_source(ai_grade=CUTOFFS, model_version=_model(GRADER)) == "grader"  # stored before sources: auto
    # DSCA 60 mm2 is "moderate" by the cut-offs; the grader says severe: the source decides which counts.
    assert ai_level_grade(_graded(3), ai_grade=auto, categories=FOUR, model_version=_model(GRADER)) == ("3", "")
    assert ai_level_grade(_graded(3), ai_grade=auto, categories=FOUR, model_version=_model()) == ("2", "")
    assert ai_level_grade(_graded(3), ai_grade=CUTOFFS | {"source": "dsca"}, categories=FOUR, model_version=_model(GRADER)) == ("2", "")


def test_grader_map_maps_class_names_and_a_count_mismatch_without_one_is_explained() -> None:
    mapped = {"condition": "central_canal", "source": "grader", "grader_map": {"normal": "normal_mild", "mild": "normal_mild", "moderate": "moderate", "severe": "severe"}}
    assert ai_level_grade(_graded(1), ai_grade=mapped, categories=THREE, model_version=_model(GRADER)) == ("normal_mild", "")
    value, why = ai_level_grade(_graded(1), ai_grade={"condition": "central_canal", "source": "grader"}, categories=THREE, model_version=_model(GRADER))
    assert value is None and "4 grades do not map onto the 3 categories" in why
    partial = {"condition": "central_canal", "source": "grader", "grader_map": {"normal": "normal_mild"}}
    value, why = ai_level_grade(_graded(2), ai_grade=partial, categories=THREE, model_version=_model(GRADER))
    assert value is None and "no category for the grader's 'moderate'" in why


@pytest.mark.parametrize(
    ("row", "model", "why"),
    [
        (_row(flag="4 discs found"), _model(GRADER), "4 discs found"),
        (_row(), _model(GRADER), "not graded yet"),
        (_row(grader_version=GRADER["version"], errors={"grade": "no spinal canal in the AI's mask"}), _model(GRADER), "no spinal canal"),
        (_row(), _model(), "has no stenosis grader"),
    ],
)
def test_a_level_without_a_grader_grade_says_why(row: AILevelMeasurement, model: ModelVersion, why: str) -> None:
    value, reason = ai_level_grade(row, ai_grade={"condition": "central_canal", "source": "grader"}, categories=FOUR, model_version=model)
    assert value is None and why in reason


def test_dsca_source_without_an_area_or_cutoffs_gives_no_grade() -> None:
    value, why = ai_level_grade(_row(dsca_mm2=None, errors={"dsca_mm2": "empty axial mask"}), ai_grade=CUTOFFS | {"source": "dsca"}, categories=FOUR, model_version=_model())
    assert value is None and why == "empty axial mask"
    value, why = ai_level_grade(_row(), ai_grade={"condition": "central_canal", "source": "dsca"}, categories=FOUR, model_version=_model())
    assert value is None and "no DSCA cut-offs" in why
    # the most severe cut-off and below: the last category, also when the scale has fewer categories than grades
    assert ai_level_grade(_row(dsca_mm2=20.0), ai_grade=CUTOFFS, categories=["A", "B"], model_version=_model()) == ("B", "")


def test_the_method_line_names_the_grader_or_the_cutoffs() -> None:
    assert ai_grade_method(ai_grade=CUTOFFS, model_version=_model(GRADER)).startswith("stenosis grader g@0123456789ab (normal, mild, moderate, severe)")
    assert "accuracy 0.89 on 100 levels" in ai_grade_method(ai_grade=CUTOFFS, model_version=_model(GRADER))
    assert "cut-offs 100, 75, 50 mm²" in ai_grade_method(ai_grade=CUTOFFS, model_version=_model())
    assert "has none" in ai_grade_method(ai_grade={"condition": "central_canal", "source": "grader"}, model_version=_model())
