"""No PHI in logs: every log record is redacted when it is made, before any handler sees it.

Imported DICOM is de-identified before it is stored, so the application never logs an original
value on purpose; this is the safety net for what slips through anyway: a DEBUG log level
(pydicom's debug mode dumps every element it reads), an exception message quoting a header, a
QIDO-RS query string (``?PatientName=...``) in an access log, a dataset printed while debugging.

``install()`` wraps the process's LogRecord factory, so the rule holds for every logger and
handler in the process: Django's, gunicorn's (access and error logs), Celery's, pydicom's own
stderr handler. The message is formatted once, redacted, and stored without its arguments;
exception and stack texts are redacted the same way.

What counts as PHI-looking (``redact``):

- values of identifying DICOM attributes named by keyword or tag, as ``key=value``,
  ``key: value``, ``key value`` or JSON (``PatientName=...``, ``"00100020": {...}``, ``PatientBirthDate: ...``);
- the value of a pydicom element line whose VR holds names, dates, times, ages, free text or UIDs,
  or whose tag is in a patient group (``(0010,0010) Patient's Name  PN: 'Doe^Jane'``);
- pydicom's debug hex dumps of element values (``000001ba: 32 30 32 34 ... b'20240315'``);
- person names in DICOM form (any word with a ``^``, e.g. ``Doe^Jane``);
- DICOM dates (``YYYYMMDD`` from 1900 to 2099) not inside a UID or a longer number;
- original DICOM UIDs (six or more numeric components): the stored ones are pseudonymous
  ``2.25.<uuid>`` UIDs and DICOM's registered ``1.2.840.10008.*`` UIDs, which are kept.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

REDACTED = "[redacted]"

# Identifying attributes (DICOM PS3.15 basic profile, the patient/visit/institution part) and their tags.
PHI_KEYWORDS = {
    "PatientName": "00100010",
    "PatientID": "00100020",
    "IssuerOfPatientID": "00100021",
    "PatientBirthDate": "00100030",
    "PatientBirthTime": "00100032",
    "PatientSex": "00100040",
    "OtherPatientIDs": "00101000",
    "OtherPatientNames": "00101001",
    "PatientBirthName": "00101005",
    "PatientAge": "00101010",
    "PatientSize": "00101020",
    "PatientWeight": "00101030",
    "PatientAddress": "00101040",
    "PatientMotherBirthName": "00101060",
    "PatientTelephoneNumbers": "00102154",
    "EthnicGroup": "00102160",
    "PatientComments": "00104000",
    "AccessionNumber": "00080050",
    "InstitutionName": "00080080",
    "InstitutionAddress": "00080081",
    "ReferringPhysicianName": "00080090",
    "StationName": "00081010",
    "PerformingPhysicianName": "00081050",
    "OperatorsName": "00081070",
    "StudyID": "00200010",
    "DeviceSerialNumber": "00181000",
    "ImageComments": "00204000",
    "RequestedProcedureID": "00401001",
    "StudyDate": "00080020",
    "SeriesDate": "00080021",
    "AcquisitionDate": "00080022",
    "ContentDate": "00080023",
}
_KEYS = "|".join(sorted({*PHI_KEYWORDS, *PHI_KEYWORDS.values()}, key=len, reverse=True))
# key=value (query strings, reprs), key: value, "key": "value" and "key": {...DICOM JSON...}
_KEY_VALUE = re.compile(
    rf"""(?P<key>["']?\b(?:{_KEYS})\b["']?(?:\s*[=:]\s*|\s+))(?P<value>\{{[^{{}}]*(?:\{{[^{{}}]*\}}[^{{}}]*)*\}}|"[^"]*"|'[^']*'|\[[^\]]*\]|[^\s&,;)}}\]]+)""",
    re.IGNORECASE,
)
# pydicom's element repr: "(0010,0010) Patient's Name    PN: 'Doe^Jane'" (also inside dataset dumps).
# Values are redacted for text, name, date, age and UID VRs, and for any VR in the patient groups
# (0010 patient, 0032 study, 0038 visit, 4008 results: weight, size, ...).
_ELEMENT_LINE = re.compile(r"(?P<head>\((?P<group>[0-9A-Fa-f]{4}),\s?[0-9A-Fa-f]{4}\)[^\n]*?\b(?P<vr>[A-Z]{2})\s*:\s)(?P<value>[^\n]*)")
_REDACTED_VRS = {"PN", "DA", "DT", "TM", "AS", "LO", "SH", "LT", "ST", "UT", "UC", "AE", "UI"}
_PATIENT_GROUPS = {"0010", "0032", "0038", "4008"}
# pydicom's debug hex dump of a value: offset, hex bytes, bytes literal; tag header lines carry "(gggg,eeee)".
_HEX_DUMP = re.compile(r"^(?P<offset>[0-9a-fA-F]{8}: )(?!.*\([0-9A-Fa-f]{4},[0-9A-Fa-f]{4}\))(?P<value>.+)$", re.MULTILINE)
_PERSON_NAME = re.compile(r"[^\s'\"=:,;()\[\]{}<>&?/]*\^[^\s'\"=:,;()\[\]{}<>&?/]*")
_ORIGINAL_UID = re.compile(r"(?<![\d.])(?!2\.25\.)(?!1\.2\.840\.10008\.)\d+(?:\.\d+){5,}(?![\d.]*\d)")
_DICOM_DATE = re.compile(r"(?<![\d.])(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?![\d])(?!\.\d)")


def _element_value(match: re.Match[str]) -> str:
    if match.group("vr") in _REDACTED_VRS or match.group("group") in _PATIENT_GROUPS:
        return match.group("head") + REDACTED
    return match.group(0)


def redact(text: str) -> str:
    """``text`` with every PHI-looking value replaced by ``[redacted]``."""
    if not text:
        return text
    text = _HEX_DUMP.sub(lambda m: m.group("offset") + REDACTED, text)
    text = _ELEMENT_LINE.sub(_element_value, text)
    text = _KEY_VALUE.sub(lambda m: m.group("key") + REDACTED, text)
    text = _PERSON_NAME.sub(REDACTED, text)
    text = _ORIGINAL_UID.sub(REDACTED, text)
    return _DICOM_DATE.sub(REDACTED, text)


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Formats the message once, redacts it, and drops the arguments (they could repeat the values)."""
    try:
        message = record.getMessage()
    except Exception:  # a malformed call (wrong arguments): keep the template only
        message = str(record.msg)
    record.msg = redact(message)
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


class RedactingFilter(logging.Filter):
    """The same redaction as a handler filter, for logging configurations outside this process's factory."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def install() -> None:
    """Wraps the LogRecord factory once per process (idempotent)."""
    current = logging.getLogRecordFactory()
    if getattr(current, "spinereview_redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(current(*args, **kwargs))

    factory.spinereview_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def installed() -> bool:
    factory: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()
    return bool(getattr(factory, "spinereview_redacting", False))
