"""Measurements from segmentation masks, in millimetres from the DICOM geometry: pure numpy/scipy.

Label volumes are integer ``(z, y, x)`` arrays (uint8 in the product): ``z`` the slices of a
series in the order of its :class:`SeriesGeometry`, ``y`` image rows, ``x`` image columns.
Patient coordinates are DICOM LPS (+z superior). No framework imports: see STYLE.md.
"""

from spinereview.morphometry.areas import (
    PATIENT_SUPERIOR,
    ap_diameter_mm,
    check_label_volume,
    structure_area_per_slice_mm2,
)
from spinereview.morphometry.canal import LevelCanalAp, canal_ap_by_level_mm
from spinereview.morphometry.geometry import SeriesGeometry, SliceGeometry
from spinereview.morphometry.heights import (
    DEFAULT_EDGE_FRACTION,
    StructureHeights,
    disc_heights_mm,
    heights_by_name,
    mid_sagittal_slice_index,
    vertebral_body_heights_mm,
)
from spinereview.morphometry.levels import (
    DEFAULT_MIN_DISC_VOLUME_MM3,
    LUMBAR_DISC_LEVELS,
    DiscCentre,
    LevelAssignment,
    NamedDisc,
    SliceLevel,
    assign_levels,
    axial_slice_levels,
    disc_centres,
    intervertebral_discs,
    reference_slice,
    slices_by_level,
)
from spinereview.morphometry.muscle import (
    FAT_WATER_METHOD,
    FAT_WATER_RESAMPLED_METHOD,
    FatWater,
    MuscleMeasurement,
    SignalIntensityModel,
    fat_fraction_percent,
    paraspinal_muscle_on_slice,
    paraspinal_muscles_by_level,
)
from spinereview.morphometry.per_level import (
    AXIAL_QUANTITIES,
    DEFAULT_MAX_REFERENCE_DISTANCE_MM,
    SAGITTAL_QUANTITIES,
    axial_level_rows,
    check_measurable,
    named_disc_centres,
    sagittal_level_rows,
)
from spinereview.morphometry.resample import sample_nearest
from spinereview.morphometry.spine import (
    LUMBAR_VERTEBRAE,
    DiscPlane,
    NamedDiscPlane,
    NamedVertebra,
    SpineLevels,
    disc_planes,
    spine_levels,
)
from spinereview.morphometry.stenosis import (
    DEFAULT_DSCA_CUTOFFS_MM2,
    STENOSIS_GRADE_NAMES,
    LevelDsca,
    dsca_by_level_mm2,
    stenosis_grade_from_dsca,
)
from spinereview.morphometry.volumes import label_volume_cm3, label_volumes_cm3, label_voxel_counts, voxel_volume_mm3

__all__ = [
    "AXIAL_QUANTITIES",
    "DEFAULT_MAX_REFERENCE_DISTANCE_MM",
    "FAT_WATER_RESAMPLED_METHOD",
    "SAGITTAL_QUANTITIES",
    "FatWater",
    "axial_level_rows",
    "check_measurable",
    "named_disc_centres",
    "paraspinal_muscle_on_slice",
    "sagittal_level_rows",
    "sample_nearest",
    "DEFAULT_DSCA_CUTOFFS_MM2",
    "DEFAULT_EDGE_FRACTION",
    "DEFAULT_MIN_DISC_VOLUME_MM3",
    "FAT_WATER_METHOD",
    "LUMBAR_DISC_LEVELS",
    "LUMBAR_VERTEBRAE",
    "PATIENT_SUPERIOR",
    "STENOSIS_GRADE_NAMES",
    "DiscCentre",
    "DiscPlane",
    "LevelAssignment",
    "LevelCanalAp",
    "LevelDsca",
    "MuscleMeasurement",
    "NamedDisc",
    "NamedDiscPlane",
    "NamedVertebra",
    "SeriesGeometry",
    "SignalIntensityModel",
    "SliceGeometry",
    "SliceLevel",
    "SpineLevels",
    "StructureHeights",
    "ap_diameter_mm",
    "assign_levels",
    "axial_slice_levels",
    "canal_ap_by_level_mm",
    "check_label_volume",
    "disc_centres",
    "disc_heights_mm",
    "disc_planes",
    "dsca_by_level_mm2",
    "fat_fraction_percent",
    "heights_by_name",
    "intervertebral_discs",
    "label_volume_cm3",
    "label_volumes_cm3",
    "label_voxel_counts",
    "mid_sagittal_slice_index",
    "paraspinal_muscles_by_level",
    "reference_slice",
    "slices_by_level",
    "spine_levels",
    "stenosis_grade_from_dsca",
    "structure_area_per_slice_mm2",
    "vertebral_body_heights_mm",
    "voxel_volume_mm3",
]
