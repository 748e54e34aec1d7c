"""The phantom's analytic truth, measured again from its label volumes and DICOM headers alone.

This ties three things together: the phantom writes correct DICOM geometry, the label volumes
line up with the images, and morphometry turns (labels, header) into millimetres correctly.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from ml.labels import LABEL_MAP
from ml.phantom import phantom_spec_random, write_phantom_case
from spinereview.morphometry import SeriesGeometry, ap_diameter_mm, assign_levels, axial_slice_levels, disc_centres, dsca_by_level_mm2

LABEL = {name: value for value, name in LABEL_MAP.items()}


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("phantom") / "case"
    write_phantom_case(phantom_spec_random(2024), out, patient_id="GEOM01", patient_name="Geometry^Test")
    return out


def _series(case: Path, role: str) -> tuple[np.ndarray, SeriesGeometry, Any]:
    truth = json.loads((case / "truth" / "measurements.json").read_text())
    uid = truth["series"][role]
    with np.load(case / "truth" / f"{uid}.npz") as archive:
        labels, sops = archive["labels"], [str(s) for s in archive["sop_instance_uids"]]
    headers = {ds.SOPInstanceUID: ds for ds in (pydicom.dcmread(p, stop_before_pixels=True) for p in (case / "dicom" / role).glob("*.dcm"))}
    assert set(headers) == set(sops)
    return labels, SeriesGeometry.from_dicom_attributes([headers[s] for s in sops]), headers[sops[0]]


def test_dsca_and_ap_diameter_from_labels_and_header_match_the_analytic_values(case: Path) -> None:
    truth = json.loads((case / "truth" / "measurements.json").read_text())
    sagittal, sagittal_geometry, _ = _series(case, "sagittal_t2")
    axial, axial_geometry, axial_header = _series(case, "axial_t2")

    assignment = assign_levels(disc_centres(sagittal, sagittal_geometry, LABEL["intervertebral_disc"]))
    assert not assignment.ambiguous
    slice_levels = axial_slice_levels(axial_geometry, assignment.centres_by_level())
    per_level = dsca_by_level_mm2(axial, axial_geometry, slice_levels, LABEL["dural_sac"])
    pixel_mm = max(float(v) for v in axial_header.PixelSpacing)
    for level, expected in truth["levels"].items():
        measured = per_level[level]
        assert measured.distance_mm is not None
        assert measured.dsca_mm2 is not None
        assert measured.slice_index is not None
        # The axial block is centred on the disc: the reference slice lies on its mid-plane, to the
        # precision with which the disc's centre is found from its sagittal voxels (< 1 mm).
        assert measured.distance_mm < 1.0, level
        # Centre-sampling an ellipse errs only in its N ~ perimeter / pixel boundary pixels, each by
        # a fraction of a pixel's area that is close to uniform on [-1/2, 1/2] (sd 1/sqrt(12)):
        # the area error has sd ~ sqrt(N) * pixel_area / sqrt(12). Allow four of those.
        a, b = expected["dural_sac_semi_axis_x_mm"], expected["dural_sac_semi_axis_y_mm"]
        perimeter_mm = math.pi * (3 * (a + b) - math.sqrt((3 * a + b) * (a + 3 * b)))
        tolerance_mm2 = 4 * math.sqrt(perimeter_mm / pixel_mm) * pixel_mm**2 / math.sqrt(12)
        assert measured.dsca_mm2 == pytest.approx(expected["dsca_mm2"], abs=tolerance_mm2), level
        # Canal AP diameter along the patient's AP axis: within one pixel.
        canal = np.isin(axial[measured.slice_index], [LABEL["spinal_canal"], LABEL["dural_sac"]])
        assert ap_diameter_mm(canal, axial_geometry.slices[measured.slice_index]) == pytest.approx(expected["canal_ap_mm"], abs=pixel_mm), (
            level
        )
