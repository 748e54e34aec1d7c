"""QIDO-RS matching rules and DICOMweb header parsing (no database)."""

from __future__ import annotations

from typing import Any

import pytest

from spinereview.imaging.dicomweb import DicomwebError, accept_parse, multipart_parts
from spinereview.imaging.qido import QidoError, attribute_tag, dataset_matches, qido_query_parse, value_matches

STUDY: dict[str, dict[str, Any]] = {
    "00100010": {"vr": "PN", "Value": [{"Alphabetic": "ANON^7F3A"}]},
    "00100020": {"vr": "LO", "Value": ["SR-7F3A"]},
    "00080020": {"vr": "DA", "Value": ["20190704"]},
    "00080030": {"vr": "TM", "Value": ["101530.25"]},
    "00080061": {"vr": "CS", "Value": ["MR", "SEG"]},
    "0020000D": {"vr": "UI", "Value": ["2.25.1"]},
    "00201208": {"vr": "IS", "Value": [12]},
}


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("PatientID", "SR-7F3A", True),
        ("PatientID", "sr-7f3a", False),  # case-sensitive except PN
        ("PatientName", "anon^7f3a", True),
        ("PatientName", "ANON^*", True),
        ("PatientName", "ANON^7F3?", True),
        ("PatientName", "ANON^7F?", False),
        ("PatientID", "*", True),
        ("PatientID", "", True),
        ("StudyDate", "20190701-20190731", True),
        ("StudyDate", "-20190703", False),
        ("StudyDate", "20190704-", True),
        ("StudyDate", "20190704", True),
        ("StudyTime", "1000-1100", True),
        ("StudyTime", "10:16-11:00", False),
        ("ModalitiesInStudy", "SEG", True),
        ("ModalitiesInStudy", "CT", False),
        ("StudyInstanceUID", "2.25.9,2.25.1", True),
        ("StudyInstanceUID", "2.25.9\\2.25.8", False),
        ("NumberOfStudyRelatedInstances", "12", True),
        ("AccessionNumber", "A1", False),  # absent attribute, non-empty value
    ],
)
def test_value_matching(name: str, value: str, expected: bool) -> None:
    tag, vr = attribute_tag(name)
    assert value_matches(STUDY.get(tag), vr, value) is expected


def test_query_parsing_control_parameters_and_errors() -> None:
    query = qido_query_parse([("PatientID", "SR-*"), ("includefield", "StudyDescription,00081030"), ("includefield", "all"), ("limit", "5"), ("offset", "10"), ("fuzzymatching", "true")])
    assert query.filters == (("00100020", "LO", "SR-*"),)
    assert query.include_tags == frozenset({"00081030"})
    assert (query.include_all, query.limit, query.offset, query.fuzzy_requested) == (True, 5, 10, True)
    assert qido_query_parse([("limit", "100000")]).limit == 1000
    assert dataset_matches(STUDY, query.filters)
    for params, message in [
        ([("limit", "ten")], "limit='ten' must be a whole number"),
        ([("offset", "-1")], "offset=-1 must not be negative"),
        ([("PatientsName", "x")], "PatientsName is not a DICOM keyword or tag"),
        ([("00081111.00081155", "1")], "sequence (nested attribute) matching is not supported"),
        ([("ReferencedStudySequence", "1")], "ReferencedStudySequence: sequence matching is not supported"),
        ([("fuzzymatching", "maybe")], "fuzzymatching='maybe' must be true or false"),
        ([("FFFF0001", "x")], "FFFF0001 is not an attribute of the DICOM data dictionary"),
    ]:
        with pytest.raises(QidoError) as info:
            qido_query_parse(params)
        assert message in str(info.value)


def test_accept_header_parsing() -> None:
    ranges = accept_parse('multipart/related; type="application/octet-stream"; transfer-syntax=*;q=0.5, multipart/related; type="image/jls"; transfer-syntax=1.2.840.10008.1.2.4.80')
    assert [(r.media_type, r.params, r.q) for r in ranges] == [
        ("multipart/related", {"type": "image/jls", "transfer-syntax": "1.2.840.10008.1.2.4.80"}, 1.0),
        ("multipart/related", {"type": "application/octet-stream", "transfer-syntax": "*"}, 0.5),
    ]
    assert [r.media_type for r in accept_parse(None)] == ["*/*"]


def test_multipart_parsing() -> None:
    body = b"--xyz\r\nContent-Type: application/dicom\r\n\r\nAAA\r\n--xyz\r\n\r\nBB\r\n--xyz--\r\n"
    parts = multipart_parts(body, 'multipart/related; type="application/dicom"; boundary=xyz')
    assert [content for _, content in parts] == [b"AAA", b"BB"]
    # A preamble is skipped; a part may hold CRLFs and the boundary's prefix; only the CRLF before a
    # delimiter is not content; an empty part is refused.
    tricky = b"preamble--xy\r\n--xyz\r\n\r\n\r\nA\r\n\r\n--xy\r\n\r\n--xyz\r\nContent-Type: application/dicom\r\n\r\nC--xyz--"
    assert [content for _, content in multipart_parts(tricky, 'multipart/related; boundary=xyz')] == [b"\r\nA\r\n\r\n--xy\r\n", b"C"]
    for content_type, data, status in [
        ('multipart/related; type="application/dicom"; boundary=xyz', b"--xyz\r\n--xyz--", 400),
        ("application/json", body, 415),
        ('multipart/related; type="application/dicom+json"; boundary=xyz', body, 415),
        ('multipart/related; type="application/dicom"', body, 400),
        ('multipart/related; type="application/dicom"; boundary=xyz', b"--xyz\r\nno separator\r\n--xyz--", 400),
        ('multipart/related; type="application/dicom"; boundary=xyz', b"--xyz\r\n\r\nAAA", 400),
        ('multipart/related; type="application/dicom"; boundary=xyz', b"--xyz\r\nContent-Type: text/plain\r\n\r\nA\r\n--xyz--", 415),
    ]:
        with pytest.raises(DicomwebError) as info:
            multipart_parts(data, content_type)
        assert info.value.status == status, (content_type, data)
