"""DICOM ingest: validate a whole batch first, then store files and index rows in one transaction.

A batch with any unreadable or incomplete file is rejected whole, so a lead never finds a study
half imported. Re-importing an instance that is already stored is skipped (idempotent).
"""

from __future__ import annotations

import io
import logging
import os
import re
import secrets
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from django.conf import settings
from django.db import IntegrityError, transaction
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag
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
        for element in dataset.iterall():
            _ = element.value
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
    try:
        pixels = dataset.pixel_array
    except Exception as exc:
        raise ValueError(f"pixel data cannot be decoded ({transfer_syntax.name}): {exc}") from None
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    expected = (int(dataset.Rows), int(dataset.Columns)) if frames == 1 else (frames, int(dataset.Rows), int(dataset.Columns))
    if tuple(pixels.shape[: len(expected)]) != expected:
        raise ValueError(f"pixel data shape {pixels.shape} does not match Rows/Columns/NumberOfFrames {expected}")
    return ParsedInstance(
        source_name=source.name, data=source.data, dataset=dataset, slice_position_mm=slice_position_mm(dataset), raw_elements=raw_elements
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


def pixel_data_offset(data: bytes, dataset: Dataset) -> int | None:
    """Offset of the top-level Pixel Data value in ``data`` (an Explicit VR Little Endian file), else None.

    The element is (7FE0,0010), VR OB or OW, two reserved bytes, a 4-byte length; the value follows.
    Only a length that matches the decoded header (Rows x Columns x frames x samples x bytes) is trusted.
    """
    if str(dataset.file_meta.TransferSyntaxUID) != "1.2.840.10008.1.2.1" or "PixelData" not in dataset:
        return None
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    expected = int(dataset.Rows) * int(dataset.Columns) * frames * int(dataset.get("SamplesPerPixel", 1)) * int(dataset.BitsAllocated) // 8
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


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f"{path.suffix}.{uuid.uuid4().hex}.partial")  # unique: concurrent imports never share it
    tmp.write_bytes(data)
    os.replace(tmp, path)


def instances_generation_bump() -> None:
    """Change the import generation that cached DICOMweb searches are keyed on (selectors.instances_generation)."""
    _write_atomically(Path(settings.MEDIA_ROOT) / GENERATION_FILE, uuid.uuid4().hex.encode())


# Pseudonymous dates lie 1 to 10 years before the real ones (never 0: the CheckConstraint says so).
_DATE_OFFSET_RANGE_DAYS = (366, 3652)


def _new_uid() -> str:
    """A UID under the 2.25 root (PS3.5 B.2: a UUID as a decimal integer), unrelated to the original."""
    return f"2.25.{uuid.uuid4().int}"


class _Pseudonymizer:
    """Pseudonyms for one import, backed by the mapping tables so that re-imports get the same ones.

    ``prefetch`` reads the known mappings of a whole batch in two queries; new UID mappings are
    written in one query by ``flush``.
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

    def prefetch(self, datasets: list[Dataset]) -> None:
        values: set[str] = set()
        for dataset in datasets:
            for element in dataset.iterall():
                if element.VR == "UI" and element.value:
                    values.update(str(v) for v in (element.value if element.VM > 1 else [element.value]))
        self._uids.update(PseudonymousUid.objects.filter(original_uid__in=values).values_list("original_uid", "uid"))
        keys = {self._patient_key(d)[0] for d in datasets}
        self._patients.update((p.original_key, p) for p in PseudonymousPatient.objects.filter(original_key__in=keys))

    def uid_for(self, original: str) -> str:
        if original not in self._uids:
            self._uids[original] = self._new_uids[original] = _new_uid()
        return self._uids[original]

    def is_new(self, original: str) -> bool:
        """Whether ``original`` got its pseudonym in this import (so nothing can be stored under it yet)."""
        return original in self._new_uids

    def flush(self) -> None:
        PseudonymousUid.objects.bulk_create(PseudonymousUid(original_uid=o, uid=u) for o, u in self._new_uids.items())

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


def _snapshot(value: object) -> object:
    return list(value) if isinstance(value, MultiValue) else value


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
    if ds.get("SpecificCharacterSet") == charset:
        # Elements de-identification did not change go back as they were read: written as is, not re-encoded.
        for tag, value in before.items():
            raw = item.raw_elements[tag]
            if tag in ds and ds[tag].VR == raw.VR and ds[tag].value == value:
                ds[tag] = raw
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    # The source name may hold PHI (e.g. a file named after the patient); it is not kept.
    stored = ParsedInstance(source_name=item.source_name, data=buffer.getvalue(), dataset=ds, slice_position_mm=item.slice_position_mm)
    return _Deidentified(stored, patient, *originals, dicom_json=dicom_json)


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
    for attempt in (1, 2):
        try:
            return _instances_import(parse_sources(batch))
        except IntegrityError:
            if attempt == 2:
                raise ImportRejectedError(
                    "Import refused: the same examination is being imported concurrently; nothing was imported. Try again.",
                    extra={"errors": []},
                ) from None
    raise AssertionError("unreachable")


def _instances_import(parsed: list[ParsedInstance]) -> ImportResult:
    media_root = Path(settings.MEDIA_ROOT)
    written: list[Path] = []
    skipped = 0
    new_series: list[str] = []
    study_uids: list[str] = []
    try:
        with transaction.atomic():
            pseudonymizer = _Pseudonymizer()
            pseudonymizer.prefetch([item.dataset for item in parsed])
            done = [_deidentified(item, pseudonymizer) for item in parsed]
            pseudonymizer.flush()
            uids = [
                (str(d.item.dataset.StudyInstanceUID), str(d.item.dataset.SeriesInstanceUID), str(d.item.dataset.SOPInstanceUID))
                for d in done
            ]
            # Series with their studies in one query; studies apart only when a series is new.
            series_by_uid = {
                s.series_instance_uid: s
                for s in DicomSeries.objects.select_related("study").filter(series_instance_uid__in={u[1] for u in uids})
            }
            studies = {s.study.study_instance_uid: s.study for s in series_by_uid.values()}
            if {u[0] for u in uids} - studies.keys():
                studies.update(DicomStudy.objects.in_bulk({u[0] for u in uids} - studies.keys(), field_name="study_instance_uid"))
            # An instance whose UID got its pseudonym just now cannot be stored yet: only the others are looked up.
            maybe_stored = [u[2] for d, u in zip(done, uids, strict=True) if not pseudonymizer.is_new(d.original_sop_instance_uid)]
            stored_before = (
                set(DicomInstance.objects.filter(sop_instance_uid__in=maybe_stored).values_list("sop_instance_uid", flat=True))
                if maybe_stored
                else set()
            )
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
                target = media_root / relative
                _write_atomically(target, record.item.data)
                written.append(target)
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
                        pixel_data_offset=pixel_data_offset(record.item.data, ds),
                    )
                )
            DicomInstance.objects.bulk_create(rows)
            if rows:
                # Now for this process (searches inside this transaction see the rows), after the commit for all.
                instances_generation_local_bump()
                transaction.on_commit(instances_generation_bump)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
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
