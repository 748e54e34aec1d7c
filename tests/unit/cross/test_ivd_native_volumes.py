"""The 50 native IVD disc label maps reproduce the published per-disc volumes to 1e-6 cm³.

Data: ``shared/data/spine-real/ivd_native_labels`` and ``ivd_volume_fastcleverseg.json`` (see
that folder's README). The header stores the 4.4 mm slice spacing on the wrong axis; only the
product of the three spacings enters a volume, so the header spacing is used as it is. The
published table was computed with 4.4 mm, the header holds the float32 value 4.400000095...;
the difference is at most ~3e-7 cm³ (8e-9 relative x ~15 cm³), inside the 1e-6 cm³ tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

from spinereview.morphometry import label_volume_cm3, label_volumes_cm3

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "spine-real"
TABLE = DATA / "ivd_volume_fastcleverseg.json"

pytestmark = pytest.mark.skipif(not TABLE.is_file(), reason=f"real data not available at {DATA}")


@pytest.fixture(scope="module")
def table() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(TABLE.read_text())
    return data


def _load(case: dict[str, Any]) -> tuple[np.ndarray, tuple[float, float, float]]:
    image = nib.load(DATA / "ivd_native_labels" / case["file"])
    assert isinstance(image, nib.Nifti1Image)
    zooms = tuple(float(z) for z in image.header.get_zooms())
    assert len(zooms) == 3
    return np.asarray(image.dataobj), (zooms[0], zooms[1], zooms[2])


def test_every_native_label_map_reproduces_the_published_disc_volumes(table: dict[str, Any]) -> None:
    cases = table["cases"]
    assert len(cases) == 50
    checked = 0
    for case_id, case in cases.items():
        labels, spacing = _load(case)
        volumes = label_volumes_cm3(labels, spacing)
        mapping = {int(value): level for value, level in case["label_value_to_level_used"].items()}
        expected = table["expected"][case_id]
        assert sorted(expected) == sorted(mapping.values()), case_id
        for value, level in mapping.items():
            assert volumes[value] == pytest.approx(expected[level], abs=1e-6), (case_id, level)
            checked += 1
        # Nothing but the five discs (and, in case 5, the known stray value) is labelled.
        assert set(volumes) - set(mapping) == ({255} if case_id == "5" else set()), case_id
    assert checked == 250


def test_case_5_unusual_label_values_and_stray_voxels(table: dict[str, Any]) -> None:
    labels, spacing = _load(table["cases"]["5"])
    volumes = label_volumes_cm3(labels, spacing)
    assert sorted(volumes) == [4, 7, 11, 14, 18, 255]
    voxel_cm3 = spacing[0] * spacing[1] * spacing[2] / 1000.0
    assert volumes[255] == 10 * voxel_cm3  # the 10 stray voxels, reported, not hidden
    assert label_volume_cm3(labels, spacing, 18) == pytest.approx(table["expected"]["5"]["L1L2"], abs=1e-6)
    # The usual L1-L2 value 51 is absent in this case: asking for it is an error, not 0 cm³.
    with pytest.raises(ValueError, match="label 51 is not present; label values present: \\[4, 7, 11, 14, 18, 255\\]"):
        label_volume_cm3(labels, spacing, 51)
