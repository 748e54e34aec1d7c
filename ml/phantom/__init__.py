"""Deterministic analytic lumbar spine phantom: exact geometry, MR-like DICOM, exact truth."""

from ml.phantom.anatomy import Anatomy
from ml.phantom.case import PhantomCase, write_phantom_case
from ml.phantom.render import (
    AXIAL,
    SAGITTAL,
    PhantomRendering,
    RenderedSeries,
    SeriesGeometry,
    render_phantom,
)
from ml.phantom.spec import PhantomSpec, phantom_spec_random

__all__ = [
    "AXIAL",
    "SAGITTAL",
    "Anatomy",
    "PhantomCase",
    "PhantomRendering",
    "PhantomSpec",
    "RenderedSeries",
    "SeriesGeometry",
    "phantom_spec_random",
    "render_phantom",
    "write_phantom_case",
]
