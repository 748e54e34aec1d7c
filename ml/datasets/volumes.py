"""Labelled volumes for training and evaluation: one case = image + label map in our labels.

A `VolumeCase` holds a 3-D image and its labels as (z, y, x) arrays whose z axis is the slice
axis the 2-D model sees, with spacing in mm, the label values that are *annotated* in this case
(`labelled`) and the patient it comes from (splits are made per patient, never per slice).

Partial labels: a case that annotates only some structures (discs, say) says so in `labelled`;
everything else in it is "background or an unannotated structure", and training must not read
it as background (see ml.training.volumes: marginal loss).

Label conventions mapped to ours (ml.labels):

- "spider" (SPIDER lumbar MRI challenge, van der Graaf et al., Sci Data 2024): 1-99 vertebrae
  -> VERTEBRAL_BODY (1), 100 spinal canal -> SPINAL_CANAL (3), 201+ intervertebral discs ->
  INTERVERTEBRAL_DISC (2); 101-200 are unused there and rejected. SPIDER's canal is the whole
  canal, so its cases annotate the canal as one structure (labels 3 and 4 together are ours).
- "spinereview": values already in ml.labels.LABEL_MAP.
- an explicit {source value: our value} mapping.

`load_volume_case` reads NIfTI or MHA (SimpleITK, LPS world) and reorients the arrays so that
slices are sagittal with rows superior -> inferior and columns anterior -> posterior, the
layout of the phantom's sagittal series (IOP [0, 1, 0, 0, 0, -1]).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ml.labels import INTERVERTEBRAL_DISC, LABEL_MAP, SPINAL_CANAL, VERTEBRAL_BODY

SPIDER_CANAL = 100
SPIDER_FIRST_DISC = 201


@dataclass(frozen=True)
class VolumeCase:
    case_id: str
    patient_id: str
    image: NDArray[np.float32]
    """(z, y, x); z is the slice axis (sagittal slices: rows S->I, columns A->P)."""
    labels: NDArray[np.uint8]
    """(z, y, x), values in ml.labels.LABEL_MAP (0 = background or not annotated)."""
    spacing_mm: tuple[float, float, float]
    labelled: frozenset[int]
    """Label values annotated in this case; the others are unknown, not background."""
    plane: str = "sagittal"
    source: str = ""

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape != self.labels.shape:
            raise ValueError(
                f"{self.case_id}: image {self.image.shape} and labels {self.labels.shape} must "
                "be 3-D arrays of one shape"
            )
        if not self.labelled or not self.labelled <= set(LABEL_MAP):
            raise ValueError(f"{self.case_id}: labelled must be a non-empty subset of {sorted(LABEL_MAP)}")
        present = set(np.unique(self.labels).tolist()) - {0}
        if not present <= self.labelled:
            raise ValueError(
                f"{self.case_id}: labels hold {sorted(present - self.labelled)} not listed as labelled"
            )
        if len(self.spacing_mm) != 3 or not all(0 < s < 100 for s in self.spacing_mm):
            raise ValueError(f"{self.case_id}: spacing_mm must be 3 positive numbers, got {self.spacing_mm}")
        if self.plane not in ("sagittal", "axial"):
            raise ValueError(f"{self.case_id}: plane must be 'sagittal' or 'axial', got {self.plane!r}")


def map_spider_labels(labels: NDArray[Any]) -> NDArray[np.uint8]:
    """SPIDER values -> ours: 1-99 -> 1 (vertebral body), 100 -> 3 (spinal canal), 201+ -> 2
    (disc), 0 -> 0. ValueError for negative values or 101-200 (undefined in SPIDER)."""
    arr = np.asarray(labels)
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError("SPIDER label values must be integers")
        arr = arr.astype(np.int64)
    bad = (arr < 0) | ((arr > SPIDER_CANAL) & (arr < SPIDER_FIRST_DISC))
    if bad.any():
        values = sorted(set(np.unique(arr[bad]).tolist()))[:5]
        raise ValueError(f"label values {values} are not in the SPIDER convention (0, 1-99, 100, 201+)")
    out = np.zeros(arr.shape, dtype=np.uint8)
    out[(arr >= 1) & (arr < SPIDER_CANAL)] = VERTEBRAL_BODY
    out[arr == SPIDER_CANAL] = SPINAL_CANAL
    out[arr >= SPIDER_FIRST_DISC] = INTERVERTEBRAL_DISC
    return out


def map_labels(labels: NDArray[Any], mapping: Mapping[int, int]) -> NDArray[np.uint8]:
    """Apply {source value: our value}; 0 stays 0; a value missing from the mapping is an error."""
    arr = np.asarray(labels).astype(np.int64)
    for target in mapping.values():
        if target != 0 and target not in LABEL_MAP:
            raise ValueError(f"mapping target {target} is not one of our labels {sorted(LABEL_MAP)}")
    values = set(np.unique(arr).tolist()) - {0}
    missing = sorted(values - set(mapping))
    if missing:
        raise ValueError(f"label values {missing[:5]} have no mapping")
    lut = np.zeros(max(values | {0}) + 1, dtype=np.uint8)
    for src, dst in mapping.items():
        if 0 <= src < len(lut):
            lut[src] = dst
    if arr.min() < 0:
        raise ValueError("negative label values")
    result: NDArray[np.uint8] = lut[arr]
    return result


def convert_labels(labels: NDArray[Any], convention: str | Mapping[int, int]) -> NDArray[np.uint8]:
    if isinstance(convention, Mapping):
        return map_labels(labels, convention)
    if convention == "spider":
        return map_spider_labels(labels)
    if convention == "spinereview":
        return map_labels(labels, {k: k for k in LABEL_MAP})
    raise ValueError(f"unknown label convention {convention!r}; valid: 'spider', 'spinereview', or a mapping")


def sagittal_axes_from_directions(direction: NDArray[np.float64]) -> tuple[tuple[int, int, int], tuple[bool, bool, bool]]:
    """From a 3x3 direction matrix (column a = LPS direction of array axis a, in numpy (z, y, x)
    axis order), the transpose putting left-right first, superior-inferior second and
    anterior-posterior third, and per new axis whether to flip it so that indices run
    right->left (+x), superior->inferior (-z) and anterior->posterior (+y)."""
    d = np.asarray(direction, dtype=float)
    if d.shape != (3, 3) or not np.all(np.isfinite(d)):
        raise ValueError("direction must be a finite 3x3 matrix")
    # LPS components: 0 = x (L), 1 = y (P), 2 = z (S); wanted order x, z, y
    order: list[int] = []
    for component in (0, 2, 1):
        weights = np.abs(d[component])
        for used in order:
            weights[used] = -1.0
        order.append(int(np.argmax(weights)))
    if sorted(order) != [0, 1, 2]:
        raise ValueError("the volume's axes are not close to the patient axes")
    flips = (
        bool(d[0, order[0]] < 0),  # x should increase
        bool(d[2, order[1]] > 0),  # z should decrease (superior first)
        bool(d[1, order[2]] < 0),  # y should increase (anterior first)
    )
    return (order[0], order[1], order[2]), flips


def reorient(array: NDArray[Any], axes: tuple[int, int, int], flips: tuple[bool, bool, bool]) -> NDArray[Any]:
    out = np.transpose(array, axes)
    for a, flip in enumerate(flips):
        if flip:
            out = np.flip(out, axis=a)
    return np.ascontiguousarray(out)


def load_volume_case(
    image_path: str | os.PathLike[str],
    label_path: str | os.PathLike[str],
    *,
    convention: str | Mapping[int, int] = "spider",
    labelled: frozenset[int] | None = None,
    case_id: str | None = None,
    patient_id: str | None = None,
) -> VolumeCase:
    """Read a NIfTI/MHA image and label map (any format SimpleITK reads), map the labels to ours
    and reorient to sagittal slices (see module doc). `labelled` defaults to every structure the
    convention can express ("spider": body, disc, canal) — pass fewer for partial annotations."""
    import SimpleITK as sitk

    def read(path: str | os.PathLike[str]) -> Any:
        try:
            return sitk.ReadImage(str(path))
        except RuntimeError as exc:
            raise ValueError(f"cannot read {path}: {str(exc).strip().splitlines()[-1]}") from exc

    image, label = read(image_path), read(label_path)
    if image.GetDimension() != 3 or label.GetDimension() != 3:
        raise ValueError(f"{image_path} and {label_path} must both be 3-D volumes")
    if image.GetSize() != label.GetSize():
        raise ValueError(f"image size {image.GetSize()} and label size {label.GetSize()} differ")
    if not np.allclose(image.GetSpacing(), label.GetSpacing(), rtol=1e-3):
        raise ValueError(f"image spacing {image.GetSpacing()} and label spacing {label.GetSpacing()} differ")
    # SimpleITK: index (i, j, k) = array [k, j, i]; direction columns are index axes i, j, k
    direction_ijk = np.array(image.GetDirection(), dtype=float).reshape(3, 3)
    direction_zyx = direction_ijk[:, ::-1]
    spacing_zyx = tuple(float(s) for s in image.GetSpacing()[::-1])
    axes, flips = sagittal_axes_from_directions(direction_zyx)
    img = reorient(sitk.GetArrayFromImage(image).astype(np.float32), axes, flips)
    lab = reorient(convert_labels(sitk.GetArrayFromImage(label), convention), axes, flips)
    if labelled is None:
        if isinstance(convention, Mapping):
            labelled = frozenset(v for v in convention.values() if v)
        elif convention == "spider":
            labelled = frozenset({VERTEBRAL_BODY, INTERVERTEBRAL_DISC, SPINAL_CANAL})
        else:
            labelled = frozenset(set(np.unique(lab).tolist()) - {0})
    name = case_id or Path(image_path).name.split(".")[0]
    return VolumeCase(
        case_id=name,
        patient_id=patient_id or name,
        image=img,
        labels=lab,
        spacing_mm=(spacing_zyx[axes[0]], spacing_zyx[axes[1]], spacing_zyx[axes[2]]),
        labelled=frozenset(labelled),
        plane="sagittal",
        source=f"{image_path} + {label_path} ({convention if isinstance(convention, str) else 'mapping'})",
    )


def patient_split(
    patient_ids: list[str], heldout: int | list[str], seed: int
) -> tuple[list[str], list[str]]:
    """(training patients, held-out patients), sorted: whole patients are held out, never slices.

    `heldout` is a count (patients drawn with `seed`) or an explicit list of patient ids."""
    unique = sorted(set(patient_ids))
    if isinstance(heldout, list):
        unknown = sorted(set(heldout) - set(unique))
        if unknown:
            raise ValueError(f"held-out patients {unknown} are not in the data")
        test = sorted(set(heldout))
    else:
        if not 0 <= heldout < len(unique):
            raise ValueError(f"cannot hold out {heldout} of {len(unique)} patients (need >= 1 to train)")
        rng = np.random.default_rng([0x5917, seed])
        test = sorted(rng.choice(unique, size=heldout, replace=False).tolist()) if heldout else []
    train = [p for p in unique if p not in test]
    if not train:
        raise ValueError("no patient left to train on")
    return train, test
