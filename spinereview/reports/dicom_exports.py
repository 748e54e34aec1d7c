"""Masks and measurements in standard formats: DICOM SEG per mask version (reader or AI), DICOM SR
(TID 1500 Measurement Report) per submitted read, NIfTI label maps.

Every exported mask says who or what made it: a reader's mask has SegmentAlgorithmType MANUAL and the
reader as ContentCreatorName; an AI mask has SegmentAlgorithmType AUTOMATIC with the model's name and
version in the AlgorithmIdentificationSequence.

Codes (SNOMED CT, scheme SCT), each checked against pydicom 3's DICOM PS3.16 concept tables (and, for the
disc levels, DICOM CID 1003 "Anatomical Reference Basis - Spine"), except where said:

======================== ============ ========================================================
label                    code         meaning (PS3.16)
======================== ============ ========================================================
category (all segments)  91723000     Anatomical Structure (CID 7150)
vertebral_body           51282000     Vertebra -- no "vertebral body" concept in PS3.16; the
                                      segment label says "Vertebral body"
intervertebral_disc      244629008    Intervertebral disc structure -- NOT in PS3.16 or pydicom's
                                      tables (only per-level discs, CID 7604); not verified offline
spinal_canal             61853006     Vertebral canal
dural_sac                18545000     Dura mater (CID 7153) -- PS3.16 has no dural/thecal sac
                                      concept; the sac is the dura's tube, label "Dural sac"
paraspinal_muscle_*      71616004     Muscle, with laterality 7771000 Left / 24028007 Right
disc levels (SR)         243920003..  Level of L1/L2 ... L5/S1 intervertebral disc (CID 1003)
SR measurement names     42798000     Area; 81827009 Diameter (AP diameter); DCM 121207 Height
SR procedure reported    363679005    Imaging procedure (CID 100; no lumbar-spine MRI code offline)
======================== ============ ========================================================
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Any

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
from django.conf import settings
from pydicom.sr.codedict import codes

from spinereview.ai.models import AISegmentation
from spinereview.core.errors import ApplicationError, NotFoundError
from spinereview.imaging.models import DicomSeries
from spinereview.imaging.selectors import instance_dataset, series_instances
from spinereview.studies.models import ReaderStudy, ReadVersion, SegmentationVersion
from spinereview.studies.protocols import SEGMENTATION_LABELS

MANUFACTURER = "SpineReview"
# SNOMED CT code (value, meaning) of each segmentation label (see the module docstring for provenance).
SEGMENT_CODES: dict[str, tuple[str, str]] = {
    "vertebral_body": ("51282000", "Vertebra"),
    "intervertebral_disc": ("244629008", "Intervertebral disc structure"),
    "spinal_canal": ("61853006", "Vertebral canal"),
    "dural_sac": ("18545000", "Dura mater"),
    "paraspinal_muscle_left": ("71616004", "Muscle"),
    "paraspinal_muscle_right": ("71616004", "Muscle"),
}
LATERALITY = {"paraspinal_muscle_left": codes.SCT.Left, "paraspinal_muscle_right": codes.SCT.Right}
LEVEL_CODES: dict[str, tuple[str, str]] = {
    "L1-L2": ("243920003", "Level of L1/L2 intervertebral disc"),
    "L2-L3": ("243921004", "Level of L2/L3 intervertebral disc"),
    "L3-L4": ("243922006", "Level of L3/L4 intervertebral disc"),
    "L4-L5": ("243923001", "Level of L4/L5 intervertebral disc"),
    "L5-S1": ("243927000", "Level of L5/S1 intervertebral disc"),
}
# Reader measurement fields -> (SR concept name, UCUM unit).
_MEASUREMENT_CONCEPTS: dict[str, tuple[Any, Any]] = {
    "area_mm2": (codes.SCT.Area, hd.sr.CodedConcept("mm2", "UCUM", "mm2")),
    "length_mm": (codes.SCT.Diameter, hd.sr.CodedConcept("mm", "UCUM", "mm")),
    "anterior_mm": (codes.DCM.Height, hd.sr.CodedConcept("mm", "UCUM", "mm")),
    "middle_mm": (codes.DCM.Height, hd.sr.CodedConcept("mm", "UCUM", "mm")),
    "posterior_mm": (codes.DCM.Height, hd.sr.CodedConcept("mm", "UCUM", "mm")),
}


# Type 2 attributes of the patient and study modules that SEG/SR copy from their sources: present but
# possibly empty in a derived object. De-identified imports may lack them; they are added empty.
_TYPE2_FROM_SOURCE = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber")


def _source_images(series: DicomSeries) -> list[pydicom.Dataset]:
    """The series' images in the spatial order of the label volume's z axis (headers completed with the
    empty Type 2 attributes a derived object copies)."""
    datasets = [instance_dataset(instance) for instance in series_instances(series=series)]
    if not datasets:
        raise NotFoundError(f"Series {series.series_instance_uid} has no images")
    for dataset in datasets:
        for keyword in _TYPE2_FROM_SOURCE:
            if keyword not in dataset:
                setattr(dataset, keyword, "")
    return datasets


def _segment_description(number: int, name: str, algorithm_type: str, algorithm: hd.AlgorithmIdentificationSequence | None) -> hd.seg.SegmentDescription:
    value, meaning = SEGMENT_CODES[name]
    description = hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=SEGMENTATION_LABELS[name]["label"],
        segmented_property_category=codes.SCT.AnatomicalStructure,
        segmented_property_type=hd.sr.CodedConcept(value, "SCT", meaning),
        algorithm_type=algorithm_type,
        algorithm_identification=algorithm,
        tracking_uid=hd.UID(),
        tracking_id=name,
    )
    if name in LATERALITY:
        # Segmented Property Type Modifier: laterality of a paired structure (PS3.3 C.8.20.2).
        modifier = hd.sr.CodedConcept(LATERALITY[name].value, "SCT", LATERALITY[name].meaning)
        description.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [modifier]
    return description


def segmentation_dicom(
    *, labels: np.ndarray, label_names: dict[int, str], series: DicomSeries, algorithm_type: str, creator: str, algorithm: hd.AlgorithmIdentificationSequence | None, description: str
) -> bytes:
    """A DICOM SEG (binary, one segment per structure present in the label map) of a (z, y, x) label volume
    laid over the series' slices. ``label_names`` maps label values to protocol label names."""
    sources = _source_images(series)
    if labels.shape != (len(sources), int(sources[0].Rows), int(sources[0].Columns)):
        raise ApplicationError(f"The mask's shape {labels.shape} does not match the series ({len(sources)} slices of {sources[0].Rows}x{sources[0].Columns})")
    unknown = sorted(name for name in label_names.values() if name not in SEGMENT_CODES)
    if unknown:
        raise ApplicationError(f"No DICOM code for label(s) {', '.join(unknown)}")
    segment_map = np.zeros(labels.shape, dtype=np.uint8)
    descriptions = []
    for number, (value, name) in enumerate(sorted(label_names.items()), start=1):
        segment_map[labels == value] = number
        descriptions.append(_segment_description(number, name, algorithm_type, algorithm))
    for keyword in ("FrameOfReferenceUID", "SliceThickness", "PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient"):
        if any(keyword not in ds for ds in sources):
            raise ApplicationError(f"Series {series.series_instance_uid} lacks {keyword}: a DICOM SEG needs it (export NIfTI instead)")
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=segment_map,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=900,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name="SpineReview reader study",
        software_versions=_software_version(),
        device_serial_number="none",
        content_description=description[:64],
        content_creator_name=_person_name(creator) if algorithm_type == "MANUAL" else None,
        content_label="SEGMENTATION",
        omit_empty_frames=False,
    )
    buffer = io.BytesIO()
    seg.save_as(buffer)
    return buffer.getvalue()


def _person_name(username: str) -> str:
    """A username as a DICOM person name: the family-name component, with the caret that marks it as one."""
    return f"{username.replace('^', ' ')}^"


def _software_version() -> str:
    from spinereview.reports.services import software_version

    return software_version()[:64]


def reader_segmentation_get(*, reader_study: ReaderStudy, segmentation_id: Any) -> SegmentationVersion:
    version = (
        SegmentationVersion.objects.filter(pk=segmentation_id, assignment__case__reader_study=reader_study)
        .select_related("series", "assignment__reader", "assignment__case")
        .first()
    )
    if version is None:
        raise NotFoundError("No such mask version in this study")
    return version


def reader_segmentation_dicom(*, version: SegmentationVersion, protocol: dict[str, Any]) -> bytes:
    with np.load(Path(settings.MEDIA_ROOT) / version.file_path) as stored:
        labels = np.asarray(stored["labels"])
    names = {int(label["value"]): label["name"] for label in (protocol.get("segmentation") or {}).get("labels", [])}
    return segmentation_dicom(
        labels=labels,
        label_names=names,
        series=version.series,
        algorithm_type="MANUAL",
        creator=version.assignment.reader.username,
        algorithm=None,
        description=f"{version.assignment.reader.username} mask v{version.version} ({version.phase}, {version.source})",
    )


def ai_segmentation_get(*, reader_study: ReaderStudy, segmentation_id: Any) -> AISegmentation:
    segmentation = (
        AISegmentation.objects.filter(pk=segmentation_id, series__case_series__case__reader_study=reader_study).select_related("series", "model_version").first()
    )
    if segmentation is None:
        raise NotFoundError("No such AI segmentation in this study")
    return segmentation


def ai_segmentation_dicom(*, segmentation: AISegmentation) -> bytes:
    labels = np.load(Path(settings.MEDIA_ROOT) / segmentation.file_path)
    names = {int(value): name for value, name in segmentation.label_map.items() if name in SEGMENT_CODES}
    model = segmentation.model_version
    algorithm = hd.AlgorithmIdentificationSequence(name=model.name[:64], family=codes.cid7162.ArtificialIntelligence, version=model.version[:64])
    return segmentation_dicom(
        labels=labels, label_names=names, series=segmentation.series, algorithm_type="AUTOMATIC", creator="", algorithm=algorithm, description=f"AI {model.version}"
    )


def _affine_lps_to_ras(series: DicomSeries) -> np.ndarray:
    """Voxel (i=x column, j=y row, k=z slice) to RAS mm, from the first slice's position and orientation
    and the slice spacing (NIfTI's convention; DICOM's patient frame is LPS)."""
    datasets = [instance_dataset(i) for i in series_instances(series=series)]
    first = datasets[0]
    row_cosines = np.array(first.ImageOrientationPatient[:3], dtype=float)
    column_cosines = np.array(first.ImageOrientationPatient[3:], dtype=float)
    row_mm, column_mm = (float(v) for v in first.PixelSpacing)
    origin = np.array(first.ImagePositionPatient, dtype=float)
    if len(datasets) > 1:
        step = (np.array(datasets[-1].ImagePositionPatient, dtype=float) - origin) / (len(datasets) - 1)
    else:
        step = np.cross(row_cosines, column_cosines) * float(getattr(first, "SliceThickness", 1.0) or 1.0)
    lps = np.eye(4)
    lps[:3, 0] = row_cosines * column_mm  # along a row: x index, column spacing
    lps[:3, 1] = column_cosines * row_mm
    lps[:3, 2] = step
    lps[:3, 3] = origin
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def labels_nifti(*, labels: np.ndarray, series: DicomSeries) -> bytes:
    """The (z, y, x) label volume as NIfTI-1 (uint8, gzip), axes transposed to (x, y, z) with the RAS affine."""
    image = nib.Nifti1Image(np.ascontiguousarray(np.transpose(labels.astype(np.uint8), (2, 1, 0))), _affine_lps_to_ras(series))
    image.header.set_xyzt_units("mm")
    return gzip.compress(image.to_bytes(), mtime=0)


def read_version_get(*, reader_study: ReaderStudy, read_version_id: Any) -> ReadVersion:
    read = (
        ReadVersion.objects.filter(pk=read_version_id, assignment__case__reader_study=reader_study, submitted=True)
        .select_related("assignment__reader", "assignment__case")
        .prefetch_related("measurements")
        .first()
    )
    if read is None:
        raise NotFoundError("No such submitted read in this study")
    return read


def measurement_report_dicom(*, read: ReadVersion) -> bytes:
    """A DICOM Comprehensive 3D SR holding the read's measurements as a TID 1500 Measurement Report: one
    measurement group (TID 1501) per measured value, with the disc level as finding site, the image it was
    drawn on as source image, and the reader as person observer."""
    measurements = list(read.measurements.order_by("key", "level", "measurement_id"))
    if not measurements:
        raise ApplicationError("This read has no measurements to report")
    series_uids = sorted({m.series_instance_uid for m in measurements})
    evidence: list[pydicom.Dataset] = []
    for series in DicomSeries.objects.filter(series_instance_uid__in=series_uids):
        evidence += _source_images(series)
    by_uid = {ds.SOPInstanceUID: ds for ds in evidence}
    groups = []
    for m in measurements:
        level = LEVEL_CODES.get(m.level)
        sites = [hd.sr.FindingSite(anatomic_location=hd.sr.CodedConcept(level[0], "SCT", level[1]))] if level else None
        source = by_uid.get(m.sop_instance_uid)
        # One group per value: a disc height's anterior, middle and posterior heights share a concept name,
        # so each gets its own group, told apart by the tracking identifier "<key>.<field> <level>".
        for field, value in sorted(m.values.items()):
            if field not in _MEASUREMENT_CONCEPTS:
                continue
            name, unit = _MEASUREMENT_CONCEPTS[field]
            groups.append(
                hd.sr.MeasurementsAndQualitativeEvaluations(
                    tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"{m.key}.{field} {m.level}"[:64]),
                    finding_sites=sites,
                    measurements=[hd.sr.Measurement(name=name, value=float(value), unit=unit, finding_sites=sites)],
                    source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(source)] if source is not None else None,
                )
            )
    observer = hd.sr.ObservationContext(
        observer_person_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Person, observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name=_person_name(read.assignment.reader.username))
        )
    )
    # "Imaging procedure" (SCT 363679005, CID 100): pydicom's tables hold no lumbar-spine MRI procedure code.
    report = hd.sr.MeasurementReport(observation_context=observer, procedure_reported=codes.SCT.ImagingProcedure, imaging_measurements=groups)
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=report,
        series_instance_uid=hd.UID(),
        series_number=901,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
    )
    buffer = io.BytesIO()
    sr.save_as(buffer)
    return buffer.getvalue()
