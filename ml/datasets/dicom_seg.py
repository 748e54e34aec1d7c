"""DICOM series with a DICOM SEG (`--dataset dicom-seg`), read with highdicom.

Segments map to our labels by SegmentLabel (case-insensitive keywords, first match wins):
"dural"/"thecal" -> dural sac (4); "canal" -> spinal canal (3); "disc"/"disk" -> disc (2);
"vertebra" -> vertebral body (1); "muscle" + "left"/"right" -> paraspinal muscle left/right
(5/6). The exact names of ml.labels.LABEL_MAP ("vertebral_body", ...) match too, so a SEG
exported by SpineReview reads back as it was written. A segment no keyword matches is an
error naming it (guessing would train on the wrong structure). The case annotates exactly the
structures its SEG has segments for.

The image volume is the referenced series, sorted along the slice normal (ml.inference.
predict); the plane is "sagittal" when the normal is closest to patient x, else "axial".
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pydicom

from ml.datasets.volumes import VolumeCase
from ml.inference.predict import dicom_series_from_datasets
from ml.labels import (
    DURAL_SAC,
    INTERVERTEBRAL_DISC,
    LABEL_MAP,
    PARASPINAL_MUSCLE_LEFT,
    PARASPINAL_MUSCLE_RIGHT,
    SPINAL_CANAL,
    VERTEBRAL_BODY,
)

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"


def label_for_segment(segment_label: str) -> int:
    """Our label value for a SEG SegmentLabel (module doc); ValueError if none fits."""
    text = segment_label.strip().lower().replace("_", " ")
    for value, name in LABEL_MAP.items():
        if text == name.replace("_", " "):
            return value
    if "dural" in text or "thecal" in text:
        return DURAL_SAC
    if "canal" in text:
        return SPINAL_CANAL
    if "disc" in text or "disk" in text:
        return INTERVERTEBRAL_DISC
    if "vertebra" in text:
        return VERTEBRAL_BODY
    if "muscle" in text and "left" in text:
        return PARASPINAL_MUSCLE_LEFT
    if "muscle" in text and "right" in text:
        return PARASPINAL_MUSCLE_RIGHT
    raise ValueError(
        f"SEG segment {segment_label!r} matches none of our structures "
        f"({', '.join(LABEL_MAP.values())})"
    )


def load_dicom_seg_case(
    image_datasets: list[pydicom.Dataset], seg_dataset: pydicom.Dataset, *, where: str = ""
) -> VolumeCase:
    import highdicom as hd

    series = dicom_series_from_datasets(image_datasets, where or "the image datasets")
    try:
        seg = hd.seg.Segmentation.from_dataset(seg_dataset)
    except (AttributeError, ValueError, TypeError) as exc:
        raise ValueError(f"{where}: not a readable DICOM SEG: {exc}") from exc
    referenced = {str(item.SeriesInstanceUID) for item in getattr(seg, "ReferencedSeriesSequence", [])}
    if referenced and series.series_instance_uid not in referenced:
        raise ValueError(f"{where}: the SEG refers to series {sorted(referenced)}, "
                         f"not to {series.series_instance_uid}")
    mapping = {int(s.SegmentNumber): label_for_segment(str(s.SegmentLabel)) for s in seg.SegmentSequence}
    numbers = sorted(mapping)
    try:
        pixels = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=list(series.sop_instance_uids),
            segment_numbers=numbers,
            assert_missing_frames_are_empty=True,
        )
    except (ValueError, KeyError, RuntimeError) as exc:
        raise ValueError(f"{where}: SEG frames do not match the series: {exc}") from exc
    if pixels.shape[:3] != series.volume.shape:
        raise ValueError(f"{where}: SEG {pixels.shape[:3]} and series {series.volume.shape} differ")
    labels = np.zeros(series.volume.shape, dtype=np.uint8)
    for channel, number in enumerate(numbers):
        labels[pixels[..., channel] > 0] = mapping[number]
    normal = np.asarray(series.axis_directions[0])
    plane = "sagittal" if int(np.argmax(np.abs(normal))) == 0 else "axial"
    first: Any = image_datasets[0]
    patient = str(getattr(first, "PatientID", "") or series.series_instance_uid)
    return VolumeCase(
        case_id=series.series_instance_uid,
        patient_id=patient,
        image=series.volume,
        labels=labels,
        spacing_mm=series.spacing_mm,
        labelled=frozenset(mapping.values()),
        plane=plane,
        source=f"DICOM SEG {seg.SOPInstanceUID} on series {series.series_instance_uid}",
    )


def load_dicom_seg_folder(root: str | os.PathLike[str]) -> list[VolumeCase]:
    """Every SEG under `root`, with the image series it references (also under `root`)."""
    images: dict[str, list[pydicom.Dataset]] = {}
    segs: list[tuple[Path, pydicom.Dataset]] = []
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path)
        except (pydicom.errors.InvalidDicomError, OSError):
            continue
        if str(getattr(ds, "SOPClassUID", "")) == SEG_SOP_CLASS:
            segs.append((path, ds))
        elif "PixelData" in ds:
            images.setdefault(str(ds.SeriesInstanceUID), []).append(ds)
    if not segs:
        raise ValueError(f"no DICOM SEG under {root}")
    cases = []
    for path, seg in segs:
        refs = [str(i.SeriesInstanceUID) for i in getattr(seg, "ReferencedSeriesSequence", [])]
        found = [images[r] for r in refs if r in images]
        if not found:
            raise ValueError(f"{path}: its referenced series {refs} is not under {root}")
        cases.append(load_dicom_seg_case(found[0], seg, where=str(path)))
    return cases
