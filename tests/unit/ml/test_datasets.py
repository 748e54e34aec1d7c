"""Datasets: label conventions, reorientation, spine-real quirks, DICOM SEG, patient splits."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pydicom
import pytest

from ml.datasets.dicom_seg import label_for_segment, load_dicom_seg_folder
from ml.datasets.folders import load_volume_folder
from ml.datasets.spine_real import load_spine_real_case, spine_real_split
from ml.datasets.volumes import (
    VolumeCase,
    map_labels,
    map_spider_labels,
    patient_split,
    sagittal_axes_from_directions,
)
from ml.phantom import phantom_spec_random, write_phantom_case


def test_spider_convention() -> None:
    raw = np.array([0, 1, 7, 99, 100, 201, 209, 250])
    assert map_spider_labels(raw).tolist() == [0, 1, 1, 1, 3, 2, 2, 2]
    for bad in (np.array([150]), np.array([-1]), np.array([1.5])):
        with pytest.raises(ValueError, match="SPIDER"):
            map_spider_labels(bad)


def test_explicit_mapping_rejects_unmapped_and_foreign_values() -> None:
    assert map_labels(np.array([0, 4, 9]), {4: 2, 9: 1}).tolist() == [0, 2, 1]
    with pytest.raises(ValueError, match=r"\[9\] have no mapping"):
        map_labels(np.array([0, 4, 9]), {4: 2})
    with pytest.raises(ValueError, match="not one of our labels"):
        map_labels(np.array([4]), {4: 42})


def test_reorientation_to_sagittal_layout() -> None:
    # array (z, y, x) of an axial LPS volume: z along +S, y along +P, x along +L
    direction = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    axes, flips = sagittal_axes_from_directions(direction)
    # left-right (array x) first, then S->I (array z, flipped: it runs I->S), then A->P
    assert axes == (2, 0, 1)
    assert flips == (False, True, False)
    with pytest.raises(ValueError, match="3x3"):
        sagittal_axes_from_directions(np.eye(2))


def test_volume_case_refuses_unlisted_labels() -> None:
    labels = np.zeros((2, 8, 8), dtype=np.uint8)
    labels[0, 2, 2] = 1
    with pytest.raises(ValueError, match=r"hold \[1\] not listed"):
        VolumeCase("c", "p", np.zeros((2, 8, 8), np.float32), labels, (1.0, 1.0, 1.0), frozenset({2}))


def test_patient_split_holds_out_whole_patients() -> None:
    ids = ["a", "a", "b", "c", "d"]
    train, test = patient_split(ids, 2, seed=0)
    assert len(test) == 2 and set(train) | set(test) == {"a", "b", "c", "d"}
    assert not set(train) & set(test)
    assert patient_split(ids, 2, seed=0) == (train, test)
    assert patient_split(ids, ["b"], seed=0) == (["a", "c", "d"], ["b"])
    with pytest.raises(ValueError, match="not in the data"):
        patient_split(ids, ["z"], seed=0)
    with pytest.raises(ValueError, match="cannot hold out 4"):
        patient_split(ids, 4, seed=0)


def test_spine_real_split_is_stratified_and_seeded() -> None:
    ids = ["IVD_11", "IVD_42"] + [f"VB2_0{i}" for i in range(2, 10)] + [f"VB3_{i:02d}" for i in range(1, 18, 2)]
    train, test = spine_real_split(ids, seed=0)
    assert sorted(train + test) == sorted(ids)
    assert [c.split("_")[0] for c in test].count("IVD") == 1
    assert [c.split("_")[0] for c in test].count("VB2") == 2
    assert [c.split("_")[0] for c in test].count("VB3") == 2
    assert spine_real_split(ids, seed=0) == (train, test)
    with pytest.raises(ValueError, match="cannot hold out 2 of the 2 IVD"):
        spine_real_split(ids, seed=0, heldout_per_study={"IVD": 2})


def _write_nifti(path: Path, array: np.ndarray) -> None:
    import nibabel as nib

    nib.save(nib.Nifti1Image(array, np.eye(4)), str(path))


def test_spine_real_quirks(tmp_path: Path) -> None:
    """VB2 labels one slice longer than the image (empty end slice) pair slice k with k; an IVD
    case annotates discs only; the layout becomes (left-right, S->I, A->P)."""
    image = np.arange(6 * 5 * 4, dtype=np.uint8).reshape(6, 5, 4)
    labels = np.zeros((6, 5, 5), dtype=np.uint8)
    labels[1, 2, 0] = 7
    _write_nifti(tmp_path / "VB2_02_image.nii.gz", image)
    _write_nifti(tmp_path / "VB2_02_labels.nii.gz", labels)
    case = load_spine_real_case("VB2_02", tmp_path)
    assert case.image.shape == case.labels.shape == (4, 6, 5)
    assert case.image[0, 1, 2] == image[1, 2, 0]
    assert case.labels[0, 1, 2] == 1 and int(case.labels.sum()) == 1
    assert case.labelled == frozenset({1}) and case.patient_id == "VB2_02"
    _write_nifti(tmp_path / "IVD_11_image.nii.gz", image.astype(np.uint16))
    _write_nifti(tmp_path / "IVD_11_labels.nii.gz", ((labels[:, :, :4] > 0) * 3).astype(np.uint8))
    assert load_spine_real_case("IVD_11", tmp_path).labelled == frozenset({2})
    labels[0, 0, 4] = 1  # the extra slice is not empty: cannot pair
    _write_nifti(tmp_path / "VB2_04_image.nii.gz", image)
    _write_nifti(tmp_path / "VB2_04_labels.nii.gz", labels)
    with pytest.raises(ValueError, match="extra label slice is not empty"):
        load_spine_real_case("VB2_04", tmp_path)


def test_volume_folder_with_spider_labels(tmp_path: Path) -> None:
    import SimpleITK as sitk

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    image = np.random.default_rng(0).random((6, 7, 8)).astype(np.float32)
    mask = np.zeros((6, 7, 8), dtype=np.uint16)
    mask[1, 2, 3] = 5
    mask[2, 3, 4] = 100
    mask[3, 4, 5] = 203
    for name in ("12_t2", "12_t1"):
        for folder, arr in (("images", image), ("masks", mask)):
            img = sitk.GetImageFromArray(arr)
            img.SetSpacing((0.5, 0.7, 3.0))  # x, y, z; identity direction = axial LPS
            sitk.WriteImage(img, str(tmp_path / folder / f"{name}.mha"))
    cases = load_volume_folder(tmp_path)
    assert [c.case_id for c in cases] == ["12_t1", "12_t2"]
    assert {c.patient_id for c in cases} == {"12"}
    case = cases[0]
    # (z, y, x) -> (x, z flipped, y): sagittal slices
    assert case.image.shape == (8, 6, 7)
    assert case.spacing_mm == (0.5, 3.0, 0.7)
    assert case.labels[3, 6 - 1 - 1, 2] == 1
    assert case.labels[4, 6 - 1 - 2, 3] == 3
    assert case.labels[5, 6 - 1 - 3, 4] == 2
    assert case.labelled == frozenset({1, 2, 3})
    np.testing.assert_array_equal(case.image[3, 4, 2], image[1, 2, 3])


@pytest.mark.parametrize(
    ("name", "value"),
    [("vertebral_body", 1), ("L4 vertebra", 1), ("L4-L5 disc", 2), ("Spinal canal", 3),
     ("Thecal sac", 4), ("paraspinal muscle left", 5), ("Right paraspinal muscle", 6)],
)
def test_segment_names(name: str, value: int) -> None:
    assert label_for_segment(name) == value


def test_unknown_segment_name_is_refused() -> None:
    with pytest.raises(ValueError, match="'kidney' matches none"):
        label_for_segment("kidney")


def test_dicom_seg_round_trip(tmp_path: Path) -> None:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    spec = dataclasses.replace(
        phantom_spec_random(5), sagittal_matrix=64, sagittal_pixel_mm=3.75, sagittal_slices=3,
        axial_matrix=32, axial_slices_per_level=1,
    )
    case = write_phantom_case(spec, tmp_path / "case", patient_id="P5", patient_name="P^5")
    folder = case.dicom_dirs["sagittal_t2"]
    sources = sorted((pydicom.dcmread(p) for p in folder.iterdir()), key=lambda d: int(d.InstanceNumber))
    with np.load(case.truth_files["sagittal_t2"]) as t:
        truth = t["labels"]
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=n, segment_label=label,
            segmented_property_category=codes.SCT.Tissue, segmented_property_type=codes.SCT.Tissue,
            algorithm_type="MANUAL",
        )
        for n, label in ((1, "vertebral_body"), (2, "intervertebral_disc"))
    ]
    mask = np.stack([truth == 1, truth == 2], axis=-1).astype(np.uint8)
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=mask, segmentation_type="BINARY",
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=99,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="test",
        manufacturer_model_name="test", software_versions="0", device_serial_number="0",
    )
    seg.save_as(tmp_path / "case" / "seg.dcm")
    cases = load_dicom_seg_folder(tmp_path)
    assert len(cases) == 1
    loaded = cases[0]
    assert loaded.patient_id == "P5" and loaded.plane == "sagittal"
    assert loaded.labelled == frozenset({1, 2})
    np.testing.assert_array_equal(loaded.labels, np.where(np.isin(truth, (1, 2)), truth, 0))
    assert loaded.image.shape == truth.shape


def test_dicom_seg_folder_without_seg(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no DICOM SEG"):
        load_dicom_seg_folder(tmp_path)
