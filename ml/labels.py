"""The fixed label map shared by the phantom, the models, the web side and the exports.

Label values never change meaning: a mask saved today must read the same way in a year.
Side names are the patient's sides (DICOM LPS: +x is the patient's left).
"""

from __future__ import annotations

from typing import Final

BACKGROUND: Final = 0
VERTEBRAL_BODY: Final = 1
INTERVERTEBRAL_DISC: Final = 2
SPINAL_CANAL: Final = 3
"""Canal content outside the dural sac (epidural space). The whole canal is labels 3 and 4."""
DURAL_SAC: Final = 4
PARASPINAL_MUSCLE_LEFT: Final = 5
PARASPINAL_MUSCLE_RIGHT: Final = 6

LABEL_MAP: Final[dict[int, str]] = {
    VERTEBRAL_BODY: "vertebral_body",
    INTERVERTEBRAL_DISC: "intervertebral_disc",
    SPINAL_CANAL: "spinal_canal",
    DURAL_SAC: "dural_sac",
    PARASPINAL_MUSCLE_LEFT: "paraspinal_muscle_left",
    PARASPINAL_MUSCLE_RIGHT: "paraspinal_muscle_right",
}
"""Label value -> structure name, without background (0)."""

NUM_CLASSES: Final = len(LABEL_MAP) + 1
"""Number of model output channels, background included."""

LEVELS: Final = ("L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")
"""Disc levels, superior to inferior."""

VERTEBRAE: Final = ("L1", "L2", "L3", "L4", "L5", "S1")
"""Vertebrae bounding the levels, superior to inferior."""

SIDES: Final = ("left", "right")

LEFT_RIGHT_SWAP: Final[dict[int, int]] = {
    PARASPINAL_MUSCLE_LEFT: PARASPINAL_MUSCLE_RIGHT,
    PARASPINAL_MUSCLE_RIGHT: PARASPINAL_MUSCLE_LEFT,
}
"""Labels to exchange when an image is mirrored left-right."""


def level_check(level: str) -> str:
    """Return `level` if it is one of LEVELS, else raise ValueError naming the valid ones."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; valid levels: {', '.join(LEVELS)}")
    return level
