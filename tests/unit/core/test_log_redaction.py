"""The log redaction rules, one by one, and what they leave alone."""

from __future__ import annotations

import logging

import pytest

from spinereview.core.log_redaction import RedactingFilter, install, redact, redact_record


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "GET /dicomweb/studies?PatientName=Doe^Jane&PatientID=MRN-1&limit=5 HTTP/1.1",
            "GET /dicomweb/studies?PatientName=[redacted]&PatientID=[redacted]&limit=5 HTTP/1.1",
        ),
        ("?00100010=Doe%5EJane&00100030=19610203", "?00100010=[redacted]&00100030=[redacted]"),
        ("(0010,0010) Patient's Name      PN: 'Doe^Jane^Marie'", "(0010,0010) Patient's Name      PN: [redacted]"),
        ("(0010,1030) Patient's Weight    DS: '71.5'", "(0010,1030) Patient's Weight    DS: [redacted]"),
        ("(0028,0030) Pixel Spacing       DS: [0.625, 0.75]", "(0028,0030) Pixel Spacing       DS: [0.625, 0.75]"),
        ("000001ba: 32 30 32 34 30 33 31 35       b'20240315'", "000001ba: [redacted]"),
        (
            "000001b2: 08 00 20 00 44 41 08 00       (0008,0020) DA Length: 8",
            "000001b2: 08 00 20 00 44 41 08 00       (0008,0020) DA Length: 8",
        ),
        ('{"00100020": {"vr": "LO", "Value": ["MRN-1"]}, "00080060": {"vr": "CS"}}', '{"00100020": [redacted], "00080060": {"vr": "CS"}}'),
        ("{'PatientBirthDate': '19610203', 'n': 3}", "{'PatientBirthDate': [redacted], 'n': 3}"),
        ("referred by House^Gregory today", "referred by [redacted] today"),
        ("born 19610203.", "born [redacted]."),
        ("for PatientID MRN-4711 in", "for PatientID [redacted] in"),
        ("series 1.2.826.0.1.3680043.9.4711.1.1 refused", "series [redacted] refused"),
    ],
)
def test_redacts(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Imported 6 instance(s), skipped 0 already stored, 2 new series",
        "Inference job 6f1c0b8e-6b1f-4f4e-9a55-2a1f0e0c9d11 failed",
        "series 2.25.241234567890123456789012345678901234 and class 1.2.840.10008.5.1.4.1.1.4",
        "GET /api/v1/assignments/?page=2 HTTP/1.1 200 from 10.0.0.12, gunicorn 27.0.1",
        "missing required attribute(s): PatientID, StudyDate",
        "took 12345678 us",
    ],
)
def test_keeps_ordinary_messages(text: str) -> None:
    assert redact(text) == text


def test_records_lose_their_arguments_and_exception_texts_are_redacted() -> None:
    try:
        raise ValueError("PatientName=Doe^Jane")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "for %s and %d", ("Smith^John", 3), sys.exc_info())
    redact_record(record)
    assert record.getMessage() == "for [redacted] and 3"
    assert record.args is None
    assert record.exc_text is not None
    assert "Doe" not in record.exc_text
    assert "PatientName=[redacted]" in record.exc_text
    # A malformed logging call keeps its template instead of failing.
    broken = logging.LogRecord("x", logging.INFO, __file__, 1, "%s %s", ("only-one",), None)
    assert redact_record(broken).getMessage() == "%s %s"
    filtered = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", ("Doe^Jane",), None)
    assert RedactingFilter().filter(filtered)
    assert filtered.getMessage() == "[redacted]"


def test_install_is_idempotent_and_covers_every_logger() -> None:
    install()
    factory = logging.getLogRecordFactory()
    install()
    assert logging.getLogRecordFactory() is factory
    record = logging.getLogger("gunicorn.access").makeRecord(
        "gunicorn.access", logging.INFO, __file__, 1, "%(r)s", ({"r": "GET /?PatientID=MRN-9"},), None
    )
    assert record.getMessage() == "GET /?PatientID=[redacted]"
