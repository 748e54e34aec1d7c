"""The real lumbar MRI set in ../shared/data/spine-real (see its README.md), as VolumeCases.

Facts from that README this loader relies on:

- 1 mm isotropic volumes; array axis 0 superior -> inferior, axis 1 anterior -> posterior,
  axis 2 left-right (which end is left is not recorded). The NIfTI affine is an identity
  placeholder and is ignored. Transposed to (2, 0, 1), each z slice is sagittal with rows
  S -> I and columns A -> P, the phantom's sagittal layout.
- IVD_<n>: only the 5 lumbar discs are labelled (values 1-5) -> our disc (2); vertebral
  bodies are *not annotated* (not background). VB2_<n>, VB3_<n>: only vertebral bodies
  (any non-zero value; VB2's value order differs per case, so the level is not used) -> our
  vertebral body (1); discs are not annotated.
- VB2_02/04/08/10: labels have one more slice on axis 2 than the image, and both end slices
  are empty; slice k pairs with slice k, so the extra last label slice is dropped (and
  checked to be empty).
- Patients: every file is one subject; the three source studies share no subject. Native IVD
  label maps (no images) are not used.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ml.datasets.volumes import VolumeCase
from ml.labels import INTERVERTEBRAL_DISC, VERTEBRAL_BODY

DEFAULT_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "spine-real"
"""../shared/data/spine-real beside the repository; override with --data or SPINE_REAL_DIR."""

CASE_PATTERN = re.compile(r"^(IVD|VB2|VB3)_(\d+)_image\.nii\.gz$")
LABELLED = {"IVD": frozenset({INTERVERTEBRAL_DISC}), "VB2": frozenset({VERTEBRAL_BODY}),
            "VB3": frozenset({VERTEBRAL_BODY})}
TARGET = {"IVD": INTERVERTEBRAL_DISC, "VB2": VERTEBRAL_BODY, "VB3": VERTEBRAL_BODY}
DEFAULT_HELDOUT = {"IVD": 1, "VB2": 2, "VB3": 2}
"""Held-out patients per source study: every study is represented on both sides."""


def spine_real_root(root: str | os.PathLike[str] | None = None) -> Path:
    path = Path(root or os.environ.get("SPINE_REAL_DIR") or DEFAULT_ROOT)
    if not path.is_dir():
        raise ValueError(f"spine-real data folder {path} does not exist")
    return path


def spine_real_case_ids(root: str | os.PathLike[str] | None = None) -> list[str]:
    """Case ids ("IVD_11", "VB2_02", ...) with both an image and a label file, sorted."""
    folder = spine_real_root(root)
    ids = []
    for p in sorted(folder.iterdir()):
        m = CASE_PATTERN.match(p.name)
        if m and (folder / f"{m[1]}_{m[2]}_labels.nii.gz").is_file():
            ids.append(f"{m[1]}_{m[2]}")
    if not ids:
        raise ValueError(f"{folder} holds no <IVD|VB2|VB3>_<n>_image.nii.gz with its labels")
    return ids


def dataset_of(case_id: str) -> str:
    study = case_id.split("_")[0]
    if study not in TARGET:
        raise ValueError(f"unknown spine-real case {case_id!r}")
    return study


def load_spine_real_case(case_id: str, root: str | os.PathLike[str] | None = None) -> VolumeCase:
    import nibabel as nib

    folder = spine_real_root(root)
    study = dataset_of(case_id)
    image_path = folder / f"{case_id}_image.nii.gz"
    label_path = folder / f"{case_id}_labels.nii.gz"
    try:
        image = np.asarray(nib.load(image_path).get_fdata(dtype=np.float32))  # type: ignore[attr-defined]
        labels = np.asarray(nib.load(label_path).dataobj)  # type: ignore[attr-defined]
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {case_id}: {exc}") from exc
    if image.ndim != 3 or labels.ndim != 3:
        raise ValueError(f"{case_id}: image and labels must be 3-D")
    if labels.shape != image.shape:
        extra = np.subtract(labels.shape, image.shape)
        if not (extra[0] == extra[1] == 0 and extra[2] == 1):
            raise ValueError(f"{case_id}: image {image.shape} and labels {labels.shape} do not pair")
        if np.any(labels[:, :, -1]):
            raise ValueError(f"{case_id}: the extra label slice is not empty; cannot pair slices")
        labels = labels[:, :, :-1]
    ours = np.where(labels > 0, TARGET[study], 0).astype(np.uint8)
    # (S->I, A->P, L-R) -> (L-R, S->I, A->P): z = sagittal slice
    return VolumeCase(
        case_id=case_id,
        patient_id=case_id,
        image=np.ascontiguousarray(image.transpose(2, 0, 1)),
        labels=np.ascontiguousarray(ours.transpose(2, 0, 1)),
        spacing_mm=(1.0, 1.0, 1.0),
        labelled=LABELLED[study],
        plane="sagittal",
        source=f"spine-real/{case_id}",
    )


def spine_real_split(
    case_ids: Iterable[str], seed: int, heldout_per_study: dict[str, int] | None = None
) -> tuple[list[str], list[str]]:
    """Patient-level split, stratified by source study: (training ids, held-out ids), sorted.

    Each study holds out `heldout_per_study[study]` whole subjects drawn with `seed`
    (default: 1 IVD, 2 VB2, 2 VB3), and keeps at least one for training."""
    counts = dict(DEFAULT_HELDOUT if heldout_per_study is None else heldout_per_study)
    by_study: dict[str, list[str]] = {}
    for cid in case_ids:
        by_study.setdefault(dataset_of(cid), []).append(cid)
    train: list[str] = []
    test: list[str] = []
    for study in sorted(by_study):
        ids = sorted(by_study[study])
        n = counts.get(study, 0)
        if not 0 <= n < len(ids):
            raise ValueError(f"cannot hold out {n} of the {len(ids)} {study} subjects")
        rng = np.random.default_rng([0x5EA1, seed, len(study), sum(map(ord, study))])
        held = sorted(rng.choice(ids, size=n, replace=False).tolist()) if n else []
        test += held
        train += [c for c in ids if c not in held]
    return sorted(train), sorted(test)


def manifest_summary(root: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Provenance for the model card: source repository and commit from manifest.json."""
    path = spine_real_root(root) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    source = manifest.get("source", {})
    return {k: str(v) for k, v in source.items() if k in ("repo", "commit")} | {
        "set": str(manifest.get("set", ""))
    }
