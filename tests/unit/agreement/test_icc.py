"""ICC in all six forms against Shrout & Fleiss (1979) / pingouin, and its properties."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from spinereview.agreement import ICC_FORMS, icc_all_forms, icc_anova, icc_score
from tests.unit.agreement._reference import load


@pytest.fixture(scope="module")
def shrout_fleiss() -> dict[str, Any]:
    return load("icc_shrout_fleiss_1979.json")


def test_all_six_forms_match_shrout_fleiss_and_pingouin(shrout_fleiss: dict[str, Any]) -> None:
    results = icc_all_forms(shrout_fleiss["data"]["rows"])
    expected = shrout_fleiss["expected"]
    full = shrout_fleiss["crosscheck_pingouin_0.7.0_full_precision"]
    assert [r.shrout_fleiss for r in results] == expected["order"]
    assert [r.form for r in results] == ["ICC(1)", "ICC(A,1)", "ICC(C,1)", "ICC(k)", "ICC(A,k)", "ICC(C,k)"]
    for i, r in enumerate(results):
        assert round(r.icc, 2) == expected["ICC_round2"][i]
        assert round(r.f_value, 1) == expected["F_round1"][i]
        assert r.df1 == expected["df1"][i] and r.df2 == expected["df2"][i]
        # pingouin: assert_almost_equal(decimal=4), i.e. |difference| < 1.5e-4.
        assert abs(r.p_value - expected["pval_4dp"][i]) < 1.5e-4
        # pingouin rounds CIs to 2 dp (README pitfall 3): compare there, and nowhere finer.
        assert round(r.ci_low, 2) == expected["CI95_lower_round2"][i]
        assert round(r.ci_high, 2) == expected["CI95_upper_round2"][i]
        assert r.icc == pytest.approx(full["ICC"][i], abs=1e-9)
        assert r.f_value == pytest.approx(full["F"][i], abs=1e-9)
        assert r.p_value == pytest.approx(full["pval"][i], abs=1e-9)
        assert r.n_subjects == 6 and r.n_raters == 4 and r.confidence == 0.95


@pytest.mark.parametrize(("alias", "canonical"), [(alias, name) for name, alias in ICC_FORMS.items()])
def test_shrout_fleiss_aliases_give_the_same_coefficient(shrout_fleiss: dict[str, Any], alias: str, canonical: str) -> None:
    by_alias = icc_score(shrout_fleiss["data"]["rows"], form=alias)
    by_name = icc_score(shrout_fleiss["data"]["rows"], form=canonical)
    assert by_alias == by_name
    assert by_alias.form == canonical


def test_anova_mean_squares_by_hand(shrout_fleiss: dict[str, Any]) -> None:
    # Shrout & Fleiss (1979) Table 3: BMS 11.24, WMS 6.26, JMS 32.49, EMS 1.02.
    anova = icc_anova(shrout_fleiss["data"]["rows"])
    assert round(anova.ms_subjects, 2) == 11.24
    assert round(anova.ms_within, 2) == 6.26
    assert round(anova.ms_raters, 2) == 32.49
    assert round(anova.ms_error, 2) == 1.02


def test_wider_confidence_gives_a_wider_interval(shrout_fleiss: dict[str, Any]) -> None:
    narrow = icc_score(shrout_fleiss["data"]["rows"], confidence=0.8)
    wide = icc_score(shrout_fleiss["data"]["rows"], confidence=0.99)
    assert wide.ci_low < narrow.ci_low < narrow.icc < narrow.ci_high < wide.ci_high


def test_perfect_agreement_is_one_and_constant_offset_separates_a_from_c() -> None:
    subjects = np.array([10.0, 20.0, 35.0, 41.0, 52.0])
    same = np.column_stack([subjects, subjects, subjects])
    for r in icc_all_forms(same):
        assert r.icc == 1.0
        assert r.p_value == 0.0
    shifted = np.column_stack([subjects, subjects + 5.0])  # reader 2 measures 5 mm2 more
    assert icc_score(shifted, form="ICC(C,1)").icc == pytest.approx(1.0, rel=1e-12)
    anova = icc_anova(shifted)
    assert anova.ms_error == 0.0
    absolute = icc_score(shifted, form="ICC(A,1)")
    # MSE = 0: ICC(A,1) = MSR / (MSR + k MSC / n), short of 1 by the offset alone.
    assert absolute.icc == pytest.approx(anova.ms_subjects / (anova.ms_subjects + 2 * anova.ms_raters / 5), rel=1e-12)
    assert absolute.icc < 0.96


def test_no_variation_at_all_is_nan() -> None:
    result = icc_score(np.full((4, 3), 7.0))
    assert np.isnan(result.icc)


@pytest.mark.parametrize(
    ("ratings", "kwargs", "message"),
    [
        ([[1.0, 2.0]], {}, "at least 2 subjects"),
        ([[1.0], [2.0]], {}, "at least 2 raters"),
        ([[1.0, None], [2.0, 3.0]], {}, r"ratings\[0\]\[1\] is missing"),
        ([[1.0, float("nan")], [2.0, 3.0]], {}, "missing"),
        ([[1.0, float("inf")], [2.0, 3.0]], {}, "infinite"),
        ([[1.0, 2.0], [2.0, 3.0]], {"form": "ICC(4,1)"}, r"unknown ICC form 'ICC\(4,1\)'; use one of ICC\(1\)"),
        ([[1.0, 2.0], [2.0, 3.0]], {"confidence": 95}, "confidence must lie strictly between 0 and 1"),
        ([[1.0, 2.0], [2.0]], {}, "rectangular"),
        ([1.0, 2.0], {}, "2-D"),
    ],
)
def test_malformed_input_is_a_clear_error(ratings: Any, kwargs: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        icc_score(ratings, **kwargs)


TABLES = arrays(
    np.float64,
    st.tuples(st.integers(3, 12), st.integers(2, 5)),
    elements=st.floats(0, 100, allow_nan=False, allow_infinity=False).map(lambda v: round(v, 1)),
)


@settings(max_examples=60, deadline=None)
@given(TABLES, st.randoms(use_true_random=False))
def test_icc_ignores_subject_and_rater_order(table: np.ndarray[Any, np.dtype[np.float64]], rng: Any) -> None:
    rows = list(range(table.shape[0]))
    cols = list(range(table.shape[1]))
    rng.shuffle(rows)
    rng.shuffle(cols)
    for a, b in zip(icc_all_forms(table), icc_all_forms(table[rows][:, cols]), strict=True):
        assert (np.isnan(a.icc) and np.isnan(b.icc)) or a.icc == pytest.approx(b.icc, rel=1e-9, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(TABLES)
def test_bounds_and_ordering(table: np.ndarray[Any, np.dtype[np.float64]]) -> None:
    anova = icc_anova(table)
    # The estimators stay <= 1 when subjects vary more than the noise (k-rater forms can
    # exceed 1 in degenerate tiny samples with MSR < MSE, as in psych and pingouin).
    informative = anova.ms_subjects >= max(anova.ms_error, anova.ms_within)
    for r in icc_all_forms(table):
        if np.isnan(r.icc):
            continue
        if informative or r.form in ("ICC(1)", "ICC(A,1)", "ICC(C,1)"):
            assert r.icc <= 1.0 + 1e-9
        if np.isfinite(r.ci_low) and np.isfinite(r.ci_high):
            assert r.ci_low <= r.ci_high + 1e-12
        assert 0.0 <= r.p_value <= 1.0
