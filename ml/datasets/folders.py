"""A folder of NIfTI/MHA volumes with label maps (`--dataset volumes`), e.g. SPIDER.

Layout (SPIDER's): DIR/images/<name>.<ext> and DIR/masks/<name>.<ext> (or DIR/labels/),
paired by file name; ext is .mha, .nii or .nii.gz. The patient id is the name up to its first
"_" (SPIDER names series "<patient>_t1", "<patient>_t2", ...), so all series of one patient
fall on the same side of the split.
"""

from __future__ import annotations

import os
from pathlib import Path

from ml.datasets.volumes import VolumeCase, load_volume_case

EXTENSIONS = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd")


def _stem(path: Path) -> str | None:
    for ext in EXTENSIONS:
        if path.name.endswith(ext):
            return path.name[: -len(ext)]
    return None


def volume_folder_pairs(root: str | os.PathLike[str]) -> list[tuple[str, Path, Path]]:
    """(name, image path, label path) for every image with a label map of the same name."""
    folder = Path(root)
    images_dir = folder / "images"
    masks_dir = next((folder / n for n in ("masks", "labels") if (folder / n).is_dir()), None)
    if not images_dir.is_dir() or masks_dir is None:
        raise ValueError(f"{folder} must hold images/ and masks/ (or labels/) folders")
    masks = {s: p for p in masks_dir.iterdir() if (s := _stem(p)) is not None}
    pairs = []
    for p in sorted(images_dir.iterdir()):
        stem = _stem(p)
        if stem is not None and stem in masks:
            pairs.append((stem, p, masks[stem]))
    if not pairs:
        raise ValueError(f"no image in {images_dir} has a label map of the same name in {masks_dir}")
    return pairs


def load_volume_folder(root: str | os.PathLike[str], *, convention: str = "spider") -> list[VolumeCase]:
    return [
        load_volume_case(image, label, convention=convention, case_id=name,
                         patient_id=name.split("_")[0])
        for name, image, label in volume_folder_pairs(root)
    ]
