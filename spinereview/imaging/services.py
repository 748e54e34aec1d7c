"""DICOM ingest: validate a whole batch first, then store files and index rows in one transaction.

A batch with any unreadable or incomplete file is rejected whole, so a lead never finds a study
half imported. Re-importing an instance that is already stored is skipped (idempotent).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import secrets
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pydicom
from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from pydicom.charset import default_encoding
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import validate_file_meta, write_data_element, write_file_meta_info
from pydicom.multival import MultiValue
from pydicom.pixels.decoders.base import DecodeRunner
from pydicom.tag import BaseTag, Tag
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
    UncompressedTransferSyntaxes,
)

from spinereview.core.errors import ApplicationError
from spinereview.imaging.deid import BurnedInAnnotationError, PatientPseudonym, burned_in_annotation_check, dataset_deidentify
from spinereview.imaging.models import (
    DicomInstance,
    DicomSeries,
    DicomStudy,
    PseudonymousPatient,
    PseudonymousUid,
    ReferenceSegmentation,
    StudyReidentification,
)
from spinereview.imaging.nifti import NiftiError, NiftiVolume, affine_override, labels_zyx, nifti_read, nifti_to_dicom_series
from spinereview.imaging.selectors import GENERATION_FILE, instances_generation_local_bump, series_get_by_original_uid

logger = logging.getLogger(__name__)

_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
# Decoded by pydicom (uncompressed, deflated, RLE) and the pylibjpeg/pyjpegls plugins (JPEG, JPEG-LS, JPEG 2000).
SUPPORTED_TRANSFER_SYNTAXES = frozenset(
    [
        *UncompressedTransferSyntaxes,
        DeflatedExplicitVRLittleEndian,
        JPEGBaseline8Bit,
        JPEGExtended12Bit,
        JPEGLossless,
        JPEGLosslessSV1,
        JPEGLSLossless,
        JPEGLSNearLossless,
        JPEG2000Lossless,
        JPEG2000,
        RLELossless,
    ]
)
_REQUIRED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Modality", "Rows", "Columns")


class ImportRejectedError(ApplicationError):
    """The batch was refused; ``extra["errors"]`` lists each file's problem."""


@dataclass(frozen=True)
class ImportSource:
    """One file to import: a display name (for error messages) and its bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class ParsedInstance:
    source_name: str
    data: bytes
    dataset: Dataset
    slice_position_mm: float | None
    # Top-level elements as read (Explicit VR Little Endian files): those de-identification leaves
    # unchanged are written back as they came, without re-encoding (see _encoded).
    raw_elements: Mapping[BaseTag, RawDataElement] = field(default_factory=dict)
    # Every UI value of the data set (nested ones included), gathered while parsing: the UIDs whose
    # pseudonyms the import looks up.
    uid_values: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ImportResult:
    study_instance_uids: tuple[str, ...]
    new_series_ids: tuple[str, ...]
    instances_created: int
    instances_skipped: int
    # (SOPInstanceUID as sent, SOPInstanceUID as stored after de-identification), in the order given.
    stored_sop_instance_uids: tuple[tuple[str, str], ...] = ()
    # Where each instance of the batch is stored, in the order given (the same instance twice: twice).
    stored_instances: tuple[StoredInstance, ...] = ()


@dataclass(frozen=True)
class StoredInstance:
    """One imported (or already stored) instance: its original SOPInstanceUID and its de-identified UIDs."""

    original_sop_instance_uid: str
    sop_class_uid: str
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str


def uid_is_valid(uid: str) -> bool:
    return len(uid) <= 64 and bool(_UID_RE.match(uid))


def sources_from_path(path: Path) -> Iterator[ImportSource]:
    """Every file below ``path`` (a file, a folder, or a .zip), skipping hidden files and DICOMDIR."""
    if path.is_file() and path.suffix.lower() == ".zip":
        yield from sources_from_zip(path.read_bytes(), name=path.name)
        return
    if path.is_file():
        yield ImportSource(name=path.name, data=path.read_bytes())
        return
    if not path.is_dir():
        raise ImportRejectedError(f"{path} is neither a file nor a folder")
    for file_path in sorted(p for p in path.rglob("*") if p.is_file()):
        if file_path.name.startswith(".") or file_path.name.upper() == "DICOMDIR":
            continue
        yield ImportSource(name=str(file_path.relative_to(path)), data=file_path.read_bytes())


# A zip that inflates past this is refused (a decompression bomb, not an MRI examination).
MAX_ZIP_UNCOMPRESSED_BYTES = 2 << 30


def sources_from_zip(data: bytes, *, name: str, max_bytes: int | None = None) -> Iterator[ImportSource]:
    """The files of a zip archive. Names are only used in messages (files are stored under their UIDs),
    so path traversal names are harmless; the inflated total is capped, read by read, whatever the
    archive's headers claim."""
    limit = MAX_ZIP_UNCOMPRESSED_BYTES if max_bytes is None else max_bytes
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        raise ImportRejectedError(f"{name} is not a readable zip archive") from None
    total = 0
    with archive:
        for info in archive.infolist():
            base = info.filename.rsplit("/", 1)[-1]
            if info.is_dir() or not base or base.startswith(".") or base.upper() == "DICOMDIR":
                continue
            if info.flag_bits & 0x1:
                raise ImportRejectedError(f"{name}:{info.filename} is encrypted; send an unencrypted archive")
            chunks = []
            try:
                with archive.open(info) as member:
                    while chunk := member.read(1 << 20):
                        total += len(chunk)
                        if total > limit:
                            raise ImportRejectedError(f"{name} inflates to more than {limit >> 20} MiB; refused as a decompression bomb")
                        chunks.append(chunk)
            except (zipfile.BadZipFile, NotImplementedError, ValueError, OSError, EOFError, zlib.error) as exc:
                raise ImportRejectedError(f"{name}:{info.filename} cannot be extracted ({exc})") from None
            yield ImportSource(name=f"{name}:{info.filename}", data=b"".join(chunks))


def slice_position_mm(dataset: Dataset) -> float | None:
    """Position of the slice along its normal (row cosine x column cosine), in mm."""
    iop = dataset.get("ImageOrientationPatient")
    ipp = dataset.get("ImagePositionPatient")
    if iop is None or ipp is None or len(iop) != 6 or len(ipp) != 3:
        return None
    normal = np.cross(np.asarray(iop[:3], dtype=float), np.asarray(iop[3:], dtype=float))
    return float(np.dot(normal, np.asarray(ipp, dtype=float)))


def _parse(source: ImportSource) -> ParsedInstance:
    try:
        dataset = pydicom.dcmread(io.BytesIO(source.data))
        raw_elements: dict[BaseTag, RawDataElement] = {}
        if dataset.original_encoding == (False, True):
            for tag in dataset.keys():  # noqa: SIM118 - iterating the dataset itself would decode every element
                raw = dataset.get_item(tag)
                if isinstance(raw, RawDataElement) and raw.VR not in (None, "SQ") and raw.length != 0xFFFFFFFF:
                    raw_elements[tag] = raw
        # pydicom decodes elements lazily: touch every one now, so a corrupt element is this file's
        # error here rather than an exception later in de-identification or indexing.
        uid_values: set[str] = set()
        for element in dataset.iterall():
            value = element.value
            if element.VR == "UI" and value:
                uid_values.update(str(v) for v in (value if element.VM > 1 else [value]))
        _ = dataset.file_meta.get("TransferSyntaxUID") if hasattr(dataset, "file_meta") else None
    except InvalidDicomError:
        raise ValueError("not a DICOM file (no DICM preamble or readable header)") from None
    except Exception as exc:  # pydicom raises many types for truncated or corrupt files
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"unreadable DICOM: {first_line}") from None
    missing = [keyword for keyword in _REQUIRED if keyword not in dataset]
    if missing:
        raise ValueError(f"missing required attribute(s): {', '.join(missing)}")
    for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID"):
        if not uid_is_valid(str(dataset[keyword].value)):
            raise ValueError(f"{keyword} {str(dataset[keyword].value)!r} is not a valid DICOM UID")
    meta = getattr(dataset, "file_meta", None)
    transfer_syntax = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if transfer_syntax is None:
        raise ValueError("no TransferSyntaxUID in the file meta information")
    if not transfer_syntax.is_transfer_syntax:
        raise ValueError(f"TransferSyntaxUID {transfer_syntax} is not a transfer syntax")
    if transfer_syntax not in SUPPORTED_TRANSFER_SYNTAXES:
        raise ValueError(
            f"transfer syntax {transfer_syntax} ({transfer_syntax.name}) is not supported; supported: uncompressed (little/big endian, "
            "implicit/explicit), deflated, JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, RLE"
        )
    if "PixelData" not in dataset:
        raise ValueError("no pixel data: only image instances can be imported here")
    try:
        burned_in_annotation_check(dataset)
    except BurnedInAnnotationError as exc:
        raise ValueError(str(exc)) from None
    if transfer_syntax in UncompressedTransferSyntaxes:
        # Uncompressed pixels are decoded by reading the bytes as an array of the shape the header gives:
        # pydicom's own checks before that (the pixel description, and a buffer long enough for it) are the
        # whole test, without decoding (a copy of every slice).
        try:
            runner = DecodeRunner(transfer_syntax)
            runner.set_source(dataset)
            runner.validate()
        except Exception as exc:
            raise ValueError(f"pixel data cannot be decoded ({transfer_syntax.name}): {exc}") from None
    else:
        try:
            pixels = dataset.pixel_array
        except Exception as exc:
            raise ValueError(f"pixel data cannot be decoded ({transfer_syntax.name}): {exc}") from None
        frames = int(dataset.get("NumberOfFrames", 1) or 1)
        expected = (int(dataset.Rows), int(dataset.Columns)) if frames == 1 else (frames, int(dataset.Rows), int(dataset.Columns))
        if tuple(pixels.shape[: len(expected)]) != expected:
            raise ValueError(f"pixel data shape {pixels.shape} does not match Rows/Columns/NumberOfFrames {expected}")
    return ParsedInstance(
        source_name=source.name,
        data=source.data,
        dataset=dataset,
        slice_position_mm=slice_position_mm(dataset),
        raw_elements=raw_elements,
        uid_values=frozenset(uid_values),
    )


def parse_sources(sources: Iterable[ImportSource]) -> list[ParsedInstance]:
    """Parse every source; if any fails, raise one error that lists them all."""
    parsed: list[ParsedInstance] = []
    errors: list[dict[str, str]] = []
    for source in sources:
        try:
            parsed.append(_parse(source))
        except ValueError as exc:
            errors.append({"file": source.name, "error": str(exc)})
    if errors:
        raise ImportRejectedError(
            f"Import refused: {len(errors)} of {len(errors) + len(parsed)} file(s) are not importable DICOM images; nothing was imported.",
            extra={"errors": errors},
        )
    if not parsed:
        raise ImportRejectedError("Import refused: no files were given.", extra={"errors": []})
    return parsed


_BINARY_VRS = frozenset(("OB", "OW", "OF", "OD", "OL", "OV", "UN"))


def _dicom_json(dataset: Dataset) -> dict[str, object]:
    """DICOM JSON (pydicom's to_json_dict) of every attribute but pixel data and other binary values."""
    result: dict[str, object] = {}
    for element in dataset:
        if element.tag.group == 0x7FE0 or element.VR in _BINARY_VRS:
            continue
        result[f"{element.tag:08X}"] = element.to_json_dict(None, 1024)
    result["00020010"] = {"vr": "UI", "Value": [str(dataset.file_meta.TransferSyntaxUID)]}
    return result


def pixel_data_offset(data: bytes, dataset: Dataset, *, hint: int | None = None) -> int | None:
    """Offset of the top-level Pixel Data value in ``data`` (an Explicit VR Little Endian file), else None.

    The element is (7FE0,0010), VR OB or OW, two reserved bytes, a 4-byte length; the value follows.
    Only a length that matches the decoded header (Rows x Columns x frames x samples x bytes) is trusted.
    ``hint``: where the writer put the value (checked like any other candidate), else it is searched for.
    """
    if str(dataset.file_meta.TransferSyntaxUID) != "1.2.840.10008.1.2.1" or "PixelData" not in dataset:
        return None
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    expected = int(dataset.Rows) * int(dataset.Columns) * frames * int(dataset.get("SamplesPerPixel", 1)) * int(dataset.BitsAllocated) // 8
    if (
        hint is not None
        and hint >= 12
        and data[hint - 12 : hint - 4] in (b"\xe0\x7f\x10\x00OW\x00\x00", b"\xe0\x7f\x10\x00OB\x00\x00")
        and int.from_bytes(data[hint - 4 : hint], "little") in (expected, expected + 1)
    ):
        return hint
    for vr in (b"OW", b"OB"):
        header = b"\xe0\x7f\x10\x00" + vr + b"\x00\x00"
        index = data.rfind(header)
        if index >= 0:
            length = int.from_bytes(data[index + 8 : index + 12], "little")
            if length in (expected, expected + 1):
                return index + 12
    return None


def instance_relative_path(study_uid: str, series_uid: str, sop_uid: str) -> str:
    return f"dicom/{study_uid}/{series_uid}/{sop_uid}.dcm"


def _write_atomically(path: Path, data: bytes, *, make_parents: bool = True) -> None:
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f"{path.suffix}.{uuid.uuid4().hex}.partial")  # unique: concurrent imports never share it
    try:
        tmp.write_bytes(data)
    except FileNotFoundError:
        if make_parents:
            raise
        # The folder was made by a concurrent import of the same study that has failed since and removed it.
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
    os.replace(tmp, path)


_writer: tuple[int, ThreadPoolExecutor] | None = None


def _writer_pool() -> ThreadPoolExecutor:
    """This process's file-writing threads (made on first use, so a forked worker never inherits them)."""
    global _writer
    if _writer is None or _writer[0] != os.getpid():
        _writer = (os.getpid(), ThreadPoolExecutor(max_workers=2, thread_name_prefix="dicom-write"))
    return _writer[1]


class _Files:
    """The files of one import, written by background threads while the import goes on (the kernel's copy
    into the page cache runs without the GIL, beside the de-identification of the next instance and the
    database round trips). ``wait`` before the commit; ``discard`` when the import fails: the files only
    this import can have written (their SOP Instance UID got its pseudonym in this import, so the path is
    new) and every folder it made are removed, so a refused or lost import leaves nothing on disk. A file
    at a path that existed before (an instance already mapped, which a concurrent import may be storing
    at the same path and commit) is left: removing it could take a committed instance's file away."""

    def __init__(self) -> None:
        self.paths: list[Path] = []  # to remove if the import fails
        self._pending: list[Future[None]] = []
        self._folders: list[Path] = []  # made by this import, parents first

    def write(self, path: Path, data: bytes, *, new_path: bool) -> None:
        self._make_folders(path.parent)
        if new_path:
            self.paths.append(path)
        self._pending.append(_writer_pool().submit(_write_atomically, path, data, make_parents=False))

    def _make_folders(self, folder: Path) -> None:
        missing = []
        while not folder.is_dir():
            missing.append(folder)
            folder = folder.parent
        for each in reversed(missing):
            try:
                each.mkdir()
            except FileExistsError:
                continue  # made by a concurrent import just now: not ours to remove
            self._folders.append(each)

    def wait(self) -> None:
        """Every file written (the first write error is raised)."""
        for future in self._pending:
            future.result()

    def discard(self) -> None:
        wait(self._pending)
        for path in self.paths:
            path.unlink(missing_ok=True)
        for folder in reversed(self._folders):
            with contextlib.suppress(OSError):  # not empty: another import has stored something there since
                folder.rmdir()


def instances_generation_bump() -> None:
    """Change the import generation that cached DICOMweb searches are keyed on (selectors.instances_generation).

    The token (always 32 characters) is overwritten in place, in one write at offset 0: a reader sees the old
    token, the new one, or for an instant a mix of the two, never again a token that an earlier import left,
    so a search made after this import's commit never uses a cache entry from before it. (Replacing the file
    by a rename made ext4 start writing it back to disk on every import.) The first import creates it.
    """
    path = Path(settings.MEDIA_ROOT) / GENERATION_FILE
    token = uuid.uuid4().hex.encode()
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        _write_atomically(path, token)
        return
    try:
        os.pwrite(fd, token, 0)
    finally:
        os.close(fd)


# Pseudonymous dates lie 1 to 10 years before the real ones (never 0: the CheckConstraint says so).
_DATE_OFFSET_RANGE_DAYS = (366, 3652)


def _new_uid() -> str:
    """A UID under the 2.25 root (PS3.5 B.2: a UUID as a decimal integer), unrelated to the original."""
    return f"2.25.{uuid.uuid4().int}"


@dataclass
class _Known:
    """What the database already holds for a batch, keyed by pseudonymous UID: its series (with their
    studies), its studies, and which of its instances are stored."""

    series: dict[str, DicomSeries] = field(default_factory=dict)
    studies: dict[str, DicomStudy] = field(default_factory=dict)
    stored: set[str] = field(default_factory=set)


_M = TypeVar("_M", bound=models.Model)


def _row(model: type[_M], data: Mapping[str, Any]) -> _M:
    """A model instance from its row as PostgreSQL's to_jsonb gives it (keys are column names)."""
    fields = model._meta.concrete_fields
    return model.from_db(connection.alias, [f.attname for f in fields], [f.to_python(data[f.column]) for f in fields])


class _Pseudonymizer:
    """Pseudonyms for one import, backed by the mapping tables so that re-imports get the same ones.

    ``prefetch`` reads, for a whole batch, the known UID mappings and patients and what is already
    stored under the mapped UIDs (series, studies, instances): one query on PostgreSQL. New UID
    mappings are written by ``_rows_insert`` (with the batch's instances, in one statement).
    """

    def __init__(self) -> None:
        self._uids: dict[str, str] = {}
        self._new_uids: dict[str, str] = {}
        self._patients: dict[str, PseudonymousPatient] = {}

    @staticmethod
    def _patient_key(dataset: Dataset) -> tuple[str, str]:
        patient_id = str(dataset.get("PatientID", "") or "").strip()
        if patient_id:
            return f"id:{str(dataset.get('IssuerOfPatientID', '') or '').strip()}|{patient_id}", patient_id
        return f"study:{dataset.StudyInstanceUID}", patient_id

    def prefetch(self, parsed: list[ParsedInstance]) -> _Known:
        values = sorted(set().union(*(item.uid_values for item in parsed)))
        keys = sorted({self._patient_key(item.dataset)[0] for item in parsed})
        originals = {
            keyword: sorted({str(item.dataset[keyword].value) for item in parsed})
            for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
        }
        if connection.vendor == "postgresql":
            return self._prefetch_one_query(values, keys, originals)
        known = _Known()
        self._uids.update(PseudonymousUid.objects.filter(original_uid__in=values).values_list("original_uid", "uid"))
        self._patients.update((p.original_key, p) for p in PseudonymousPatient.objects.filter(original_key__in=keys))
        mapped = {keyword: [self._uids[u] for u in uids if u in self._uids] for keyword, uids in originals.items()}
        if mapped["SeriesInstanceUID"]:
            known.series = {
                s.series_instance_uid: s
                for s in DicomSeries.objects.select_related("study").filter(series_instance_uid__in=mapped["SeriesInstanceUID"])
            }
        if mapped["StudyInstanceUID"]:
            known.studies = DicomStudy.objects.in_bulk(mapped["StudyInstanceUID"], field_name="study_instance_uid")
        if mapped["SOPInstanceUID"]:
            known.stored = set(
                DicomInstance.objects.filter(sop_instance_uid__in=mapped["SOPInstanceUID"]).values_list("sop_instance_uid", flat=True)
            )
        return known

    def _prefetch_one_query(self, values: list[str], keys: list[str], originals: dict[str, list[str]]) -> _Known:
        """``prefetch`` in one round trip: each row is (kind, JSON of what was found)."""
        uid_table, patient_table, series_table, study_table, instance_table = (
            connection.ops.quote_name(m._meta.db_table) for m in (PseudonymousUid, PseudonymousPatient, DicomSeries, DicomStudy, DicomInstance)
        )
        sql = f"""
            WITH m AS (SELECT original_uid, uid FROM {uid_table} WHERE original_uid = ANY(%(values)s))
            SELECT 'u', jsonb_build_array(original_uid, uid) FROM m
            UNION ALL
            SELECT 'p', to_jsonb(p) FROM {patient_table} p WHERE p.original_key = ANY(%(keys)s)
            UNION ALL
            SELECT 's', to_jsonb(s) || jsonb_build_object('_study', to_jsonb(t))
            FROM {series_table} s JOIN {study_table} t ON t.id = s.study_id
            WHERE s.series_instance_uid IN (SELECT uid FROM m WHERE original_uid = ANY(%(series)s))
            UNION ALL
            SELECT 't', to_jsonb(t) FROM {study_table} t
            WHERE t.study_instance_uid IN (SELECT uid FROM m WHERE original_uid = ANY(%(studies)s))
            UNION ALL
            SELECT 'i', to_jsonb(i.sop_instance_uid) FROM {instance_table} i
            WHERE i.sop_instance_uid IN (SELECT uid FROM m WHERE original_uid = ANY(%(sops)s))
        """
        params = {
            "values": values,
            "keys": keys,
            "series": originals["SeriesInstanceUID"],
            "studies": originals["StudyInstanceUID"],
            "sops": originals["SOPInstanceUID"],
        }
        known = _Known()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for kind, data in cursor.fetchall():
                data = json.loads(data) if isinstance(data, str) else data
                if kind == "u":
                    self._uids[data[0]] = data[1]
                elif kind == "p":
                    patient = _row(PseudonymousPatient, data)
                    self._patients[patient.original_key] = patient
                elif kind == "s":
                    series = _row(DicomSeries, data)
                    series.study = _row(DicomStudy, data["_study"])
                    known.series[series.series_instance_uid] = series
                elif kind == "t":
                    study = _row(DicomStudy, data)
                    known.studies[study.study_instance_uid] = study
                else:
                    known.stored.add(data)
        return known

    def uid_for(self, original: str) -> str:
        if original not in self._uids:
            self._uids[original] = self._new_uids[original] = _new_uid()
        return self._uids[original]

    def is_new(self, original: str) -> bool:
        """Whether ``original`` got its pseudonym in this import (so nothing can be stored under it yet)."""
        return original in self._new_uids

    def new_mappings(self) -> list[PseudonymousUid]:
        return [PseudonymousUid(original_uid=o, uid=u) for o, u in self._new_uids.items()]

    def patient_for(self, dataset: Dataset) -> PseudonymousPatient:
        key, patient_id = self._patient_key(dataset)
        if key not in self._patients:
            token = secrets.token_hex(5).upper()
            low, high = _DATE_OFFSET_RANGE_DAYS
            self._patients[key] = PseudonymousPatient.objects.create(
                original_key=key,
                original_patient_id=patient_id,
                original_patient_name=str(dataset.get("PatientName", "") or ""),
                patient_id=f"SR-{token}",
                patient_name=f"ANON^{token}",
                date_offset_days=-(low + secrets.randbelow(high - low + 1)),
            )
        return self._patients[key]


@dataclass(frozen=True)
class _Deidentified:
    item: ParsedInstance  # de-identified dataset and its re-encoded bytes
    patient: PseudonymousPatient
    original_study_instance_uid: str
    original_sop_instance_uid: str
    original_accession_number: str
    original_study_date: str
    dicom_json: dict[str, object]  # of the de-identified dataset
    pixel_data_at: int | None = None  # where _encoded put the Pixel Data value, when it knows


def _snapshot(value: object) -> object:
    return list(value) if isinstance(value, MultiValue) else value


# Explicit VR element headers are 12 bytes long for these VRs (PS3.5 7.1.2), 8 for the others.
_LONG_HEADER_VRS = frozenset(("OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"))


def _encoded(ds: Dataset, data: bytes, unchanged: Mapping[BaseTag, RawDataElement]) -> tuple[bytes, int | None]:
    """``ds`` as a DICOM file: the bytes ``ds.save_as(buffer, enforce_file_format=True)`` writes, and where in
    them the top-level Pixel Data value is when it was copied (else None).

    ``unchanged`` are top-level elements whose value is still the one read from ``data`` (an Explicit VR
    Little Endian file), with the RawDataElements read there: they are copied from ``data`` as they are, consecutive ones in one
    slice (the pixel data among them, without copying it through pydicom's writer); the others are
    encoded by pydicom. Any other case (another encoding, nothing unchanged) is left to save_as.
    """
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if (
        not unchanged
        or syntax is None
        or not syntax.is_transfer_syntax
        or syntax.is_implicit_VR
        or not syntax.is_little_endian
        or syntax.is_deflated
        or ds.original_encoding != (False, True)
        or (ds.preamble is not None and len(ds.preamble) != 128)
    ):
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        return buffer.getvalue(), None
    meta = FileMetaDataset(ds.file_meta)  # a copy (validate_file_meta adds to it), as dcmwrite does
    if meta.get("MediaStorageSOPClassUID") != ds.SOPClassUID:
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
    if meta.get("MediaStorageSOPInstanceUID") != ds.SOPInstanceUID:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    validate_file_meta(meta, enforce_standard=True)
    head = DicomBytesIO()
    head.is_little_endian, head.is_implicit_VR = True, False
    head.write(ds.preamble or b"\x00" * 128)
    head.write(b"DICM")
    write_file_meta_info(head, meta, enforce_standard=True)
    if "PixelData" in ds and Tag(0x7FE00010) not in unchanged:
        ds["PixelData"].is_undefined_length = syntax.is_compressed  # as dcmwrite does
    parts: list[bytes | memoryview] = [head.getvalue()]
    written = len(parts[0])  # bytes in parts, but for the current run
    pixels_at: int | None = None
    source = memoryview(data)
    encodings = ds.get("SpecificCharacterSet", default_encoding)
    run: list[int] = []  # [start, end) in data of the current run of unchanged elements
    for tag in sorted(ds.keys()):
        if tag.element == 0 and tag.group > 6:
            continue  # retired group lengths are not written (PS3.5 7.2), as dcmwrite does
        if tag in unchanged:
            raw = unchanged[tag]
            start = raw.value_tell - (12 if raw.VR in _LONG_HEADER_VRS else 8)
            if run and run[1] == start:
                run[1] = raw.value_tell + raw.length
            else:
                if run:
                    parts.append(source[run[0] : run[1]])
                    written += run[1] - run[0]
                run = [start, raw.value_tell + raw.length]
            if tag == 0x7FE00010:
                pixels_at = written + raw.value_tell - run[0]
            continue
        if run:
            parts.append(source[run[0] : run[1]])
            written += run[1] - run[0]
            run = []
        element = DicomBytesIO()
        element.is_little_endian, element.is_implicit_VR = True, False
        write_data_element(element, ds[tag], encodings)
        parts.append(element.getvalue())
        written += len(parts[-1])
    if run:
        parts.append(source[run[0] : run[1]])
    return b"".join(parts), pixels_at


def _deidentified(item: ParsedInstance, pseudonymizer: _Pseudonymizer) -> _Deidentified:
    """The instance de-identified (PS3.15 Basic Profile, see deid.py), re-encoded, with its original study identifiers."""
    ds = item.dataset
    originals = (
        str(ds.StudyInstanceUID),
        str(ds.SOPInstanceUID),
        str(ds.get("AccessionNumber", "") or "")[:16],
        str(ds.get("StudyDate", "") or "")[:8],
    )
    patient = pseudonymizer.patient_for(ds)
    pseudonym = PatientPseudonym(
        patient_id=patient.patient_id, patient_name=patient.patient_name, date_offset_days=patient.date_offset_days
    )
    before = {tag: _snapshot(ds[tag].value) for tag in item.raw_elements}
    charset = ds.get("SpecificCharacterSet")
    dataset_deidentify(ds, pseudonym=pseudonym, uid_for=pseudonymizer.uid_for)
    dicom_json = _dicom_json(ds)
    unchanged: dict[BaseTag, RawDataElement] = {}
    if ds.get("SpecificCharacterSet") == charset:
        # Elements de-identification did not change go back as they were read: written as is, not re-encoded.
        for tag, value in before.items():
            raw = item.raw_elements[tag]
            if tag in ds and ds[tag].VR == raw.VR and ds[tag].value == value:
                ds[tag] = raw
                unchanged[tag] = raw
    # The source name may hold PHI (e.g. a file named after the patient); it is not kept.
    encoded, pixels_at = _encoded(ds, item.data, unchanged)
    stored = ParsedInstance(source_name=item.source_name, data=encoded, dataset=ds, slice_position_mm=item.slice_position_mm)
    return _Deidentified(stored, patient, *originals, dicom_json=dicom_json, pixel_data_at=pixels_at)


def _optional_int(dataset: Dataset, keyword: str) -> int | None:
    return int(dataset.get(keyword)) if dataset.get(keyword) not in (None, "") else None


def dicom_instances_import(*, sources: Iterable[ImportSource]) -> ImportResult:
    """Validate, de-identify and store a batch of DICOM files; all or nothing.

    Every instance is de-identified before anything is stored (PS3.15 Basic Application Level
    Confidentiality Profile, imaging/deid.py): the files on disk, the index rows and everything
    served from them carry pseudonyms, remapped UIDs and shifted dates. The originals live only in
    the re-identification tables (PseudonymousPatient, PseudonymousUid, StudyReidentification).
    Database work is per batch (a handful of queries), not per instance. Two imports racing to
    create the same patient, UID mapping, study or instance: the loser retries once and then finds
    the winner's rows (so the outcome is the same as importing one after the other).
    """
    batch = list(sources)
    if _caller_retries.get():
        return _instances_import(parse_sources(batch), savepoint=False)
    return import_once_more_on_race(lambda: _instances_import(parse_sources(batch)))


_T = TypeVar("_T")


def import_once_more_on_race(run: Callable[[], _T]) -> _T:
    """``run()``, and once more when it lost a race with a concurrent import of the same examination
    (IntegrityError, its transaction rolled back); a second loss refuses the import."""
    try:
        return run()
    except IntegrityError:
        pass
    try:
        return run()
    except IntegrityError:
        raise ImportRejectedError(
            "Import refused: the same examination is being imported concurrently; nothing was imported. Try again.",
            extra={"errors": []},
        ) from None


# Set by a caller that runs the import inside a transaction of its own and, on IntegrityError, retries
# that whole transaction (STOW-RS does: dicomweb._stow): the import then needs no savepoint of its own
# to retry from, which saves two round trips to the database per request.
_caller_retries: ContextVar[bool] = ContextVar("import_caller_retries", default=False)


@contextlib.contextmanager
def import_retried_by_caller() -> Iterator[None]:
    """Within this block, dicom_instances_import lets an IntegrityError (a lost race) propagate, so that
    the caller's transaction is rolled back whole, and the caller retries it (import_once_more_on_race)."""
    token = _caller_retries.set(True)
    try:
        yield
    finally:
        _caller_retries.reset(token)


# Rows per INSERT statement of _rows_insert (parameters are bound client-side, but statements stay small).
_INSERT_BATCH = 500


def _insert_sql(model: type[models.Model], objs: Sequence[models.Model]) -> tuple[str, list[Any]]:
    fields = model._meta.concrete_fields
    params: list[Any] = []
    for obj in objs:
        params.extend(f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields)  # type: ignore[arg-type]
    quote = connection.ops.quote_name
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    columns = ", ".join(quote(f.column) for f in fields)
    return f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES {', '.join([row] * len(objs))}", params


def _rows_insert(mappings: list[PseudonymousUid], instances: list[DicomInstance]) -> None:
    """Insert new UID mappings and instance rows; on PostgreSQL in one statement (one round trip)."""
    if connection.vendor != "postgresql" or len(mappings) > _INSERT_BATCH or len(instances) > _INSERT_BATCH:
        PseudonymousUid.objects.bulk_create(mappings, batch_size=_INSERT_BATCH)
        DicomInstance.objects.bulk_create(instances, batch_size=_INSERT_BATCH)
        return
    pairs: list[tuple[type[models.Model], Sequence[models.Model]]] = [(PseudonymousUid, mappings), (DicomInstance, instances)]
    statements = [_insert_sql(model, objs) for model, objs in pairs if objs]
    if not statements:
        return
    if len(statements) == 2:  # a data-modifying WITH runs to completion whatever the main statement reads
        sql, params = f"WITH new_mappings AS ({statements[0][0]}) {statements[1][0]}", statements[0][1] + statements[1][1]
    else:
        sql, params = statements[0]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _instances_import(parsed: list[ParsedInstance], *, savepoint: bool = True) -> ImportResult:
    media_root = Path(settings.MEDIA_ROOT)
    files = _Files()
    skipped = 0
    new_series: list[str] = []
    study_uids: list[str] = []
    try:
        with transaction.atomic(savepoint=savepoint):
            pseudonymizer = _Pseudonymizer()
            known = pseudonymizer.prefetch(parsed)
            done: list[_Deidentified] = []
            writing: set[str] = set()
            for item in parsed:
                record = _deidentified(item, pseudonymizer)
                done.append(record)
                ds = record.item.dataset
                sop_uid = str(ds.SOPInstanceUID)
                # Stored unless already stored (or already being written: the same instance twice in the batch);
                # the loop below makes the same choice for the index rows.
                if sop_uid not in known.stored and sop_uid not in writing:
                    writing.add(sop_uid)
                    files.write(
                        media_root / instance_relative_path(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), sop_uid),
                        record.item.data,
                        new_path=pseudonymizer.is_new(record.original_sop_instance_uid),
                    )
            uids = [
                (str(d.item.dataset.StudyInstanceUID), str(d.item.dataset.SeriesInstanceUID), str(d.item.dataset.SOPInstanceUID))
                for d in done
            ]
            series_by_uid = known.series
            studies = {s.study.study_instance_uid: s.study for s in series_by_uid.values()} | known.studies
            stored_before = set(known.stored)
            rows: list[DicomInstance] = []
            for record, (study_uid, series_uid, sop_uid) in zip(done, uids, strict=True):
                ds = record.item.dataset
                study = studies.get(study_uid)
                if study is None:
                    study = studies[study_uid] = DicomStudy.objects.create(
                        study_instance_uid=study_uid,
                        patient_id=str(ds.get("PatientID", "")),
                        patient_name=str(ds.get("PatientName", "")),
                        study_date=str(ds.get("StudyDate", "")),
                        study_description=str(ds.get("StudyDescription", ""))[:64],
                    )
                    StudyReidentification.objects.create(
                        dicom_study=study,
                        patient=record.patient,
                        original_study_instance_uid=record.original_study_instance_uid,
                        original_accession_number=record.original_accession_number,
                        original_study_date=record.original_study_date,
                    )
                if study_uid not in study_uids:
                    study_uids.append(study_uid)
                series = series_by_uid.get(series_uid)
                if series is None:
                    series = series_by_uid[series_uid] = DicomSeries.objects.create(
                        study=study,
                        series_instance_uid=series_uid,
                        modality=str(ds.Modality),
                        series_number=_optional_int(ds, "SeriesNumber"),
                        series_description=str(ds.get("SeriesDescription", ""))[:64],
                        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
                    )
                    new_series.append(str(series.id))
                if series.study_id != study.id:
                    name = record.item.source_name
                    raise ImportRejectedError(
                        f"{name}: its series already belongs to another study; nothing was imported.",
                        extra={"errors": [{"file": name, "error": "series/study mismatch"}]},
                    )
                if sop_uid in stored_before:
                    skipped += 1
                    continue
                stored_before.add(sop_uid)  # the same instance twice in one batch is stored once
                relative = instance_relative_path(study_uid, series_uid, sop_uid)
                rows.append(
                    DicomInstance(
                        series=series,
                        sop_instance_uid=sop_uid,
                        sop_class_uid=str(ds.SOPClassUID),
                        instance_number=_optional_int(ds, "InstanceNumber"),
                        transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID),
                        rows=int(ds.Rows),
                        columns=int(ds.Columns),
                        slice_position_mm=record.item.slice_position_mm,
                        file_path=relative,
                        dicom_json=record.dicom_json,
                        pixel_data_offset=pixel_data_offset(record.item.data, ds, hint=record.pixel_data_at),
                    )
                )
            _rows_insert(pseudonymizer.new_mappings(), rows)
            files.wait()  # the rows are seen by others after the commit, when the files are there
            if rows:
                # Now for this process (searches inside this transaction see the rows), after the commit for all.
                instances_generation_local_bump()
                transaction.on_commit(instances_generation_bump)
    except BaseException:
        files.discard()
        raise
    logger.info("Imported %d instance(s), skipped %d already stored, %d new series", len(rows), skipped, len(new_series))
    return ImportResult(
        study_instance_uids=tuple(study_uids),
        new_series_ids=tuple(new_series),
        instances_created=len(rows),
        instances_skipped=skipped,
        stored_sop_instance_uids=tuple((d.original_sop_instance_uid, u[2]) for d, u in zip(done, uids, strict=True)),
        stored_instances=tuple(
            StoredInstance(
                original_sop_instance_uid=d.original_sop_instance_uid,
                sop_class_uid=str(d.item.dataset.SOPClassUID),
                study_instance_uid=u[0],
                series_instance_uid=u[1],
                sop_instance_uid=u[2],
            )
            for d, u in zip(done, uids, strict=True)
        ),
    )


def reference_segmentation_import(*, series: DicomSeries, source: str, npz_path: Path, label_map: dict[str, str]) -> ReferenceSegmentation:
    """Store a ground-truth label volume (npz with ``labels`` (z, y, x) and ``sop_instance_uids``) for a series."""
    try:
        with np.load(npz_path, allow_pickle=False) as archive:
            labels = np.asarray(archive["labels"])
            sop_uids = [str(uid) for uid in archive["sop_instance_uids"]]
    except (OSError, KeyError, ValueError) as exc:
        raise ApplicationError(f"{npz_path.name}: not a label archive with 'labels' and 'sop_instance_uids' ({exc})") from None
    return reference_segmentation_store(
        series=series, source=source, labels=labels, sop_instance_uids=sop_uids, label_map=label_map, name=npz_path.name
    )


def reference_segmentation_store(
    *, series: DicomSeries, source: str, labels: np.ndarray, sop_instance_uids: list[str], label_map: dict[str, str], name: str
) -> ReferenceSegmentation:
    """Store labels (z, y, x), slice z belonging to ``sop_instance_uids[z]`` (original or imported UIDs)."""
    instances = {i.sop_instance_uid: i for i in series.instances.all()}
    # Label files made before import (e.g. the phantom's truth) name the original UIDs; translate them.
    pseudonyms = dict(PseudonymousUid.objects.filter(original_uid__in=sop_instance_uids).values_list("original_uid", "uid"))
    sop_uids = [uid if uid in instances else pseudonyms.get(uid, uid) for uid in sop_instance_uids]
    if labels.ndim != 3 or labels.shape[0] != len(sop_uids):
        raise ApplicationError(f"{name}: labels shape {labels.shape} does not match {len(sop_uids)} slice UIDs")
    unknown = [uid for uid in sop_uids if uid not in instances]
    if unknown:
        raise ApplicationError(f"{name}: {len(unknown)} slice UID(s) are not instances of series {series.series_instance_uid}")
    first = instances[sop_uids[0]]
    if labels.shape[1:] != (first.rows, first.columns):
        raise ApplicationError(f"{name}: slice size {labels.shape[1:]} differs from the images ({first.rows}, {first.columns})")
    relative = f"segmentations/reference/{series.series_instance_uid}-{re.sub(r'[^a-z0-9]+', '-', source.lower())}.npy"
    target = Path(settings.MEDIA_ROOT) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    np.save(target, labels.astype(np.uint8))
    segmentation, _ = ReferenceSegmentation.objects.update_or_create(
        series=series,
        source=source,
        defaults={"label_map": label_map, "sop_instance_uids": sop_uids, "shape": list(labels.shape), "file_path": relative},
    )
    return segmentation


@dataclass(frozen=True)
class NiftiImportResult:
    imported: ImportResult
    series: DicomSeries
    reference_segmentation: ReferenceSegmentation | None
    spacing_mm: tuple[float, float, float]  # (slice, row, column)


def nifti_stem(name: str) -> str:
    """The file name without folder and .nii/.nii.gz."""
    return re.sub(r"\.nii(\.gz)?$", "", name.rsplit("/", 1)[-1], flags=re.IGNORECASE)


def is_nifti_name(name: str) -> bool:
    return bool(re.search(r"\.nii(\.gz)?$", name, flags=re.IGNORECASE))


def _nifti_volume(image: ImportSource, *, orientation: str | None, spacing_mm: tuple[float, float, float] | None) -> NiftiVolume:
    volume = nifti_read(image.data, name=image.name)
    if orientation is not None or spacing_mm is not None:
        volume = NiftiVolume(
            data=volume.data, affine_ras=affine_override(volume.affine_ras, orientation=orientation, spacing_mm=spacing_mm)
        )
    return volume


def nifti_sources(
    *, image: ImportSource, orientation: str | None = None, spacing_mm: tuple[float, float, float] | None = None
) -> list[ImportSource]:
    """A NIfTI image as the DICOM files of one MR series (geometry as in nifti_import), ready for any import.

    The subject is named after the file (de-identified on import like every other identity).
    ImportRejectedError naming the file when it cannot be converted.
    """
    try:
        volume = _nifti_volume(image, orientation=orientation, spacing_mm=spacing_mm)
        stem = nifti_stem(image.name)
        converted = nifti_to_dicom_series(volume, source_bytes=image.data, patient_id=stem[:64], series_description=stem)
    except NiftiError as exc:
        raise ImportRejectedError(
            f"Import refused: {exc}; nothing was imported.", extra={"errors": [{"file": image.name, "error": str(exc)}]}
        ) from None
    return [ImportSource(name=f"{image.name}#slice{k}", data=data) for k, data in enumerate(converted.files)]


def nifti_import(
    *,
    image: ImportSource,
    labels: ImportSource | None = None,
    label_map: dict[str, str] | None = None,
    orientation: str | None = None,
    spacing_mm: tuple[float, float, float] | None = None,
    patient_id: str | None = None,
    series_description: str | None = None,
    import_sources: Callable[[list[ImportSource]], ImportResult] | None = None,
) -> NiftiImportResult:
    """Convert a NIfTI image (and label volume) to a DICOM MR series and import it; all or nothing.

    ``orientation``/``spacing_mm`` override the file's affine (imaging/nifti.py). The files go
    through ``import_sources`` (default: dicom_instances_import, so they are de-identified like
    any import; the studies app passes its case-creating import). Labels become a reference
    segmentation of the new series. Every problem is an ImportRejectedError naming the file.
    """
    try:
        volume = _nifti_volume(image, orientation=orientation, spacing_mm=spacing_mm)
        label_volume = None
        if labels is not None:
            label_volume = labels_zyx(nifti_read(labels.data, name=labels.name), volume, name=labels.name)
        stem = nifti_stem(image.name)
        converted = nifti_to_dicom_series(
            volume,
            source_bytes=image.data,
            patient_id=(patient_id or stem)[:64],
            series_description=series_description or stem,
        )
    except NiftiError as exc:
        raise ImportRejectedError(
            f"Import refused: {exc}; nothing was imported.", extra={"errors": [{"file": image.name, "error": str(exc)}]}
        ) from None
    if label_volume is not None and label_map is None:
        label_map = {str(int(v)): f"label {int(v)}" for v in np.unique(label_volume) if v != 0}
    sources = [ImportSource(name=f"{image.name}#slice{k}", data=data) for k, data in enumerate(converted.files)]
    with transaction.atomic():
        result = (import_sources or (lambda s: dicom_instances_import(sources=s)))(sources)
        series = series_get_by_original_uid(original_series_instance_uid=converted.series_instance_uid)
        reference = None
        if label_volume is not None and label_map is not None:
            reference = reference_segmentation_store(
                series=series,
                source="NIfTI labels",
                labels=label_volume,
                sop_instance_uids=list(converted.sop_instance_uids),
                label_map=label_map,
                name=labels.name if labels is not None else "labels",
            )
    return NiftiImportResult(imported=result, series=series, reference_segmentation=reference, spacing_mm=converted.spacing_mm)
