"""One phantom patient rendered in memory, shared by the cross-checks against its analytic truth."""

from __future__ import annotations

import dataclasses

import pytest

from ml.phantom import PhantomRendering, phantom_spec_random, render_phantom
from ml.phantom.render import SeriesGeometry as PhantomGeometry
from spinereview.morphometry import SeriesGeometry, SliceGeometry


def morphometry_geometry(geometry: PhantomGeometry) -> SeriesGeometry:
    """The phantom's series geometry as morphometry reads it from DICOM headers."""
    return SeriesGeometry(
        slices=tuple(
            SliceGeometry(
                image_position_mm=(float(p[0]), float(p[1]), float(p[2])),
                row_cosine=geometry.orientation[:3],
                column_cosine=geometry.orientation[3:],
                pixel_spacing_mm=geometry.pixel_spacing_mm,
                slice_thickness_mm=geometry.slice_thickness_mm,
            )
            for p in geometry.positions_mm
        )
    )


@pytest.fixture(scope="session")
def rendering() -> PhantomRendering:
    """Seed 2024 without noise and bias field, so image intensities follow the spec exactly
    inside each tissue (the fat fraction check needs that; labels do not depend on it)."""
    spec = dataclasses.replace(phantom_spec_random(2024), noise_fraction=0.0, bias_amplitude=0.0)
    return render_phantom(spec)
