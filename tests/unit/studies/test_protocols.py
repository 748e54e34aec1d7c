import copy

import pytest

from spinereview.core.errors import ApplicationError
from spinereview.studies.protocols import DEFAULT_PROTOCOL, condition_categories, protocol_validate, required_items


def test_default_protocol_is_valid_and_ordered() -> None:
    protocol_validate(DEFAULT_PROTOCOL)
    assert condition_categories(DEFAULT_PROTOCOL, "central_canal") == ["0", "1", "2", "3"]
    assert required_items(DEFAULT_PROTOCOL) == [
        ("L1-L2", "central_canal"),
        ("L2-L3", "central_canal"),
        ("L3-L4", "central_canal"),
        ("L4-L5", "central_canal"),
        ("L5-S1", "central_canal"),
    ]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.update(levels=[]), "levels must be a non-empty list"),
        (lambda p: p.update(levels=["L1-L2", "L1-L2"]), "levels has duplicates"),
        (lambda p: p.update(conditions=[]), "conditions must be a non-empty list"),
        (lambda p: p["conditions"][0]["scale"].update(categories=[{"code": "0", "label": "only"}]), "at least two ordered categories"),
        (lambda p: p["conditions"][0]["scale"].update(categories=[{"code": "0"}, {"code": "0"}]), "codes must be unique"),
        (lambda p: p.update(ai_grade={"condition": "foraminal"}), "ai_grade.condition must name one of the conditions"),
    ],
)
def test_malformed_protocols_are_refused(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    protocol = copy.deepcopy(DEFAULT_PROTOCOL)
    mutate(protocol)
    with pytest.raises(ApplicationError, match=message):
        protocol_validate(protocol)
