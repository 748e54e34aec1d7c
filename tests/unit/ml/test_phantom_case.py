"""The phantom written to disk: determinism, DICOM validity, truth that matches the formulas."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage

from ml.labels import DURAL_SAC, INTERVERTEBRAL_DISC, LABEL_MAP, LEVELS, SPINAL_CANAL
from ml.phantom import PhantomCase, phantom_spec_random, write_phantom_case

SEED = 7


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> PhantomCase:
    out = tmp_path_factory.mktemp("a") / "case"
    return write_phantom_case(
        phantom_spec_random(SEED), out, patient_id="PH-7", patient_name="Phantom^Seven"
    )


@pytest.fixture(scope="module")
def case_again(tmp_path_factory: pytest.TempPathFactory) -> PhantomCase:
    out = tmp_path_factory.mktemp("b") / "case"
    return write_phantom_case(
        phantom_spec_random(SEED), out, patient_id="PH-7", patient_name="Phantom^Seven"
    )


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _series(case: PhantomCase, key: str) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p) for p in sorted(case.dicom_dirs[key].glob("*.dcm"))]


def _truth(case: PhantomCase, key: str) -> tuple[np.ndarray, list[str]]:
    with np.load(case.truth_files[key]) as npz:
        return npz["labels"], [str(u) for u in npz["sop_instance_uids"]]


def test_same_seed_gives_identical_bytes_and_uids(case: PhantomCase, case_again: PhantomCase) -> None:
    first, second = _files(case.out_dir), _files(case_again.out_dir)
    assert len(first) == 15 + 25 + 3
    assert first == second
    assert case.series_uids == case_again.series_uids
    assert case.sop_instance_uids == case_again.sop_instance_uids


def test_different_seed_differs(case: PhantomCase, tmp_path: Path) -> None:
    other = write_phantom_case(
        phantom_spec_random(SEED + 1), tmp_path / "c", patient_id="PH-7",
        patient_name="Phantom^Seven",
    )
    assert other.study_instance_uid != case.study_instance_uid
    assert set(other.series_uids.values()).isdisjoint(case.series_uids.values())
    assert other.measurements["levels"] != case.measurements["levels"]
    a = _series(case, "axial_t2")[12].pixel_array
    b = _series(other, "axial_t2")[12].pixel_array
    assert not np.array_equal(a, b)


def test_layout_and_measurements_json(case: PhantomCase) -> None:
    root = case.out_dir
    assert sorted(p.name for p in (root / "dicom").iterdir()) == ["axial_t2", "sagittal_t2"]
    truth = sorted(p.name for p in (root / "truth").iterdir())
    assert truth == sorted([f"{u}.npz" for u in case.series_uids.values()] + ["measurements.json"])
    m = json.loads(case.measurements_path.read_text())
    spec = phantom_spec_random(SEED)
    assert m["series"] == case.series_uids
    assert m["label_map"] == {str(k): v for k, v in LABEL_MAP.items()}
    assert m["spec"] == json.loads(json.dumps(spec.to_dict()))
    assert m["fat_fraction"] == spec.fat_fraction_by_side
    assert list(m["levels"]) == list(LEVELS)
    for level in LEVELS:
        got = m["levels"][level]
        assert got["dsca_mm2"] == spec.dsca_mm2_by_level[level]
        assert got["canal_ap_mm"] == spec.canal_ap_mm_by_level[level]
        assert got["disc_height_anterior_mm"] == spec.disc_height_anterior_mm_by_level[level]
        assert got["disc_height_middle_mm"] == spec.disc_height_middle_mm_by_level[level]
        assert got["disc_height_posterior_mm"] == spec.disc_height_posterior_mm_by_level[level]
        # the rendered sac ellipse has exactly the chosen area
        assert got["dural_sac_computed_area_mm2"] == pytest.approx(got["dsca_mm2"], rel=1e-12)
    mids = [m["levels"][lv]["disc_midplane_z_mm"] for lv in LEVELS]
    assert mids == sorted(mids, reverse=True)  # L1-L2 is the most superior


REQUIRED = (
    "PatientName", "PatientID", "StudyDate", "Modality", "SeriesDescription", "SeriesNumber",
    "InstanceNumber", "PixelSpacing", "SliceThickness", "ImagePositionPatient",
    "ImageOrientationPatient", "FrameOfReferenceUID", "Rows", "Columns", "BitsAllocated",
    "WindowCenter", "WindowWidth", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
)


@pytest.mark.parametrize(
    ("key", "n_slices", "iop", "spacing_between"),
    [
        ("sagittal_t2", 15, [0, 1, 0, 0, 0, -1], 4.0),
        ("axial_t2", 25, [1, 0, 0, 0, 1, 0], None),
    ],
)
def test_dicom_attributes(
    case: PhantomCase, key: str, n_slices: int, iop: list[int], spacing_between: float | None
) -> None:
    datasets = _series(case, key)
    assert len(datasets) == n_slices
    labels, uids = _truth(case, key)
    normal = np.cross(iop[:3], iop[3:])
    along = []
    for k, ds in enumerate(datasets):
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.file_meta.MediaStorageSOPClassUID == MRImageStorage
        assert ds.SOPClassUID == MRImageStorage
        for name in REQUIRED:
            assert name in ds, name
        assert ds.Modality == "MR"
        assert ds.PatientID == "PH-7"
        assert str(ds.PatientName) == "Phantom^Seven"
        assert ds.StudyInstanceUID == case.study_instance_uid
        assert ds.FrameOfReferenceUID == case.frame_of_reference_uid
        assert ds.SeriesInstanceUID == case.series_uids[key]
        assert [float(v) for v in ds.ImageOrientationPatient] == iop
        assert ds.InstanceNumber == k + 1
        assert ds.SOPInstanceUID == uids[k]
        assert (ds.BitsAllocated, ds.BitsStored, ds.PixelRepresentation) == (16, 16, 0)
        assert ds.PhotometricInterpretation == "MONOCHROME2"
        assert float(ds.SliceThickness) == 3.5
        if spacing_between is None:
            assert "SpacingBetweenSlices" not in ds
        else:
            assert float(ds.SpacingBetweenSlices) == spacing_between
        pixels = ds.pixel_array
        assert pixels.dtype == np.uint16
        assert pixels.shape == (ds.Rows, ds.Columns) == labels.shape[1:]
        assert pixels.max() > 0
        along.append(float(np.dot([float(v) for v in ds.ImagePositionPatient], normal)))
        assert pydicom.uid.UID(ds.SOPInstanceUID).is_valid
    # volume order = InstanceNumber order = ascending along the slice normal
    assert along == sorted(along) and len(set(along)) == len(along)
    assert labels.dtype == np.uint8 and labels.shape[0] == n_slices
    assert set(np.unique(labels)) <= set(range(7))


def _positions(datasets: list[pydicom.Dataset]) -> np.ndarray:
    return np.array([[float(v) for v in ds.ImagePositionPatient] for ds in datasets])


def test_axial_blocks_centred_on_disc_midplanes(case: PhantomCase) -> None:
    datasets = _series(case, "axial_t2")
    z = _positions(datasets)[:, 2]
    m = case.measurements
    uid_index = {ds.SOPInstanceUID: k for k, ds in enumerate(datasets)}
    for level in LEVELS:
        block = m["axial_blocks"][level]["sop_instance_uids"]
        assert len(block) == 5
        zs = sorted(z[uid_index[u]] for u in block)
        mid = m["levels"][level]["disc_midplane_z_mm"]
        assert zs[2] == pytest.approx(mid, abs=1e-6)  # DS strings keep 6 decimals
        assert z[uid_index[m["axial_blocks"][level]["midplane_sop_instance_uid"]]] == zs[2]
        assert np.diff(zs) == pytest.approx([4.0] * 4, abs=1e-6)


def _ellipse_perimeter(a: float, b: float) -> float:
    h = ((a - b) / (a + b)) ** 2
    return math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))  # Ramanujan II


def _midplane_slice(case: PhantomCase, level: str) -> tuple[np.ndarray, pydicom.Dataset]:
    labels, uids = _truth(case, "axial_t2")
    uid = case.measurements["axial_blocks"][level]["midplane_sop_instance_uid"]
    k = uids.index(uid)
    return labels[k], _series(case, "axial_t2")[k]


@pytest.mark.parametrize("level", LEVELS)
def test_dsca_matches_dural_sac_pixel_area(case: PhantomCase, level: str) -> None:
    """Pixel-count area of a convex shape S sampled at pixel centres (pixel size h):
    a pixel counted in has its uncovered part within h/sqrt(2) of the boundary, outside S; a
    pixel left out has its covered part within h/sqrt(2), inside S. By Steiner's formula the
    outer band has area P w + pi w², the inner one at most P w (w = h/sqrt(2), P = perimeter),
    so |pixel area - true area| <= P h / sqrt(2) + pi h² / 2."""
    labels, ds = _midplane_slice(case, level)
    row_mm, col_mm = (float(v) for v in ds.PixelSpacing)
    assert row_mm == col_mm
    h = row_mm
    truth = case.measurements["levels"][level]
    a, b = truth["dural_sac_semi_axis_x_mm"], truth["dural_sac_semi_axis_y_mm"]
    tolerance = _ellipse_perimeter(a, b) * h / math.sqrt(2) + math.pi * h * h / 2
    pixel_area = int(np.count_nonzero(labels == DURAL_SAC)) * row_mm * col_mm
    assert abs(pixel_area - truth["dsca_mm2"]) <= tolerance
    assert tolerance < 0.45 * truth["dsca_mm2"]  # the check is not vacuous


@pytest.mark.parametrize("level", LEVELS)
def test_canal_ap_matches_labels_along_patient_y(case: PhantomCase, level: str) -> None:
    """On the spine axis the canal (labels 3 and 4) is one interval of patient y of length L;
    pixel centres spaced h fall into it floor(L/h) or ceil(L/h) times: |n h - L| < h."""
    labels, ds = _midplane_slice(case, level)
    ipp = [float(v) for v in ds.ImagePositionPatient]
    row_mm, col_mm = (float(v) for v in ds.PixelSpacing)
    column = (case.measurements["spine_axis_x_mm"] - ipp[0]) / col_mm
    assert column == int(column)  # a column of pixel centres lies on the axis
    profile = labels[:, int(column)]
    inside = np.flatnonzero(np.isin(profile, (SPINAL_CANAL, DURAL_SAC)))
    assert np.all(np.diff(inside) == 1)  # one interval
    ap = case.measurements["levels"][level]["canal_ap_mm"]
    assert abs(len(inside) * row_mm - ap) < row_mm
    # and it sits where the model says (rows run along +y)
    first_y = ipp[1] + inside[0] * row_mm
    assert first_y - case.measurements["levels"][level]["canal_anterior_y_mm"] == pytest.approx(
        0.0, abs=row_mm
    )


def _disc_height_at(truth: dict[str, Any], y: float) -> float:
    """The phantom's disc height profile: the quadratic through the three measured heights."""
    ya, ym, yp = (truth[f"disc_height_{p}_y_mm"] for p in ("anterior", "middle", "posterior"))
    ha, hm, hp = (truth[f"disc_height_{p}_mm"] for p in ("anterior", "middle", "posterior"))
    return float(np.polyval(np.polyfit([ya, ym, yp], [ha, hm, hp], 2), y))


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("part", ["anterior", "middle", "posterior"])
def test_disc_height_on_mid_sagittal_slice(case: PhantomCase, level: str, part: str) -> None:
    """In the column nearest the measurement position the disc is one z interval of length
    h(y_column); counted rows give it to within one row spacing."""
    labels, uids = _truth(case, "sagittal_t2")
    k = uids.index(case.measurements["mid_sagittal_sop_instance_uid"])
    ds = _series(case, "sagittal_t2")[k]
    ipp = [float(v) for v in ds.ImagePositionPatient]
    assert ipp[0] == pytest.approx(case.measurements["spine_axis_x_mm"], abs=1e-6)
    row_mm, col_mm = (float(v) for v in ds.PixelSpacing)
    truth = case.measurements["levels"][level]
    column = round((truth[f"disc_height_{part}_y_mm"] - ipp[1]) / col_mm)
    expected = _disc_height_at(truth, ipp[1] + column * col_mm)
    z_mid = truth["disc_midplane_z_mm"]
    rows = np.flatnonzero(labels[k][:, column] == INTERVERTEBRAL_DISC)
    z_rows = ipp[2] - rows * row_mm  # rows run along -z
    this_disc = rows[np.abs(z_rows - z_mid) < 15.0]
    assert np.all(np.diff(this_disc) == 1)
    assert abs(len(this_disc) * row_mm - expected) < row_mm


def test_truth_muscles_on_the_patients_sides(case: PhantomCase) -> None:
    """Axial images: columns run along +x, the patient's left, so label 5 (left) is on the
    image's right half."""
    labels, _ = _truth(case, "axial_t2")
    centre = labels.shape[2] // 2
    left_cols = np.nonzero(labels == 5)[2]
    right_cols = np.nonzero(labels == 6)[2]
    assert left_cols.min() > centre and right_cols.max() < centre


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"patient_id": ""}, "patient_id"),
        ({"patient_id": "a\\b"}, "patient_id"),
        ({"patient_name": "x" * 65}, "patient_name"),
    ],
)
def test_bad_patient_fields_rejected(tmp_path: Path, kwargs: dict[str, str], message: str) -> None:
    args = {"patient_id": "P", "patient_name": "N"} | kwargs
    with pytest.raises(ValueError, match=message):
        write_phantom_case(
            phantom_spec_random(1), tmp_path / "x", patient_id=args["patient_id"],
            patient_name=args["patient_name"],
        )
    assert not (tmp_path / "x").exists()


def test_refuses_to_overwrite_a_case(case: PhantomCase) -> None:
    before = _files(case.out_dir)
    with pytest.raises(ValueError, match="already exists"):
        write_phantom_case(phantom_spec_random(SEED), case.out_dir, patient_id="P", patient_name="N")
    assert _files(case.out_dir) == before
