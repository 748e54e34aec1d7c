"""Time every per-case morphometry measurement on one phantom case (sagittal + axial).

Run by hand: ``.venv/bin/python bench/morphometry_bench.py [--seed 2024] [--repeat 5]``.
Prints the median wall time of each step (ms) over ``--repeat`` runs and the values measured
next to the phantom's truth. The phantom is rendered once, outside the timings.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ml.labels import DURAL_SAC, INTERVERTEBRAL_DISC, LEVELS, PARASPINAL_MUSCLE_LEFT, PARASPINAL_MUSCLE_RIGHT, SPINAL_CANAL, VERTEBRAL_BODY
from ml.phantom import phantom_spec_random, render_phantom
from ml.phantom.render import SeriesGeometry as PhantomGeometry
from spinereview.morphometry import (
    FatWater,
    SeriesGeometry,
    SignalIntensityModel,
    SliceGeometry,
    axial_level_rows,
    axial_slice_levels,
    canal_ap_by_level_mm,
    disc_heights_mm,
    dsca_by_level_mm2,
    heights_by_name,
    label_volumes_cm3,
    named_disc_centres,
    paraspinal_muscles_by_level,
    sagittal_level_rows,
    spine_levels,
    vertebral_body_heights_mm,
)


def _geometry(geometry: PhantomGeometry) -> SeriesGeometry:
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


def _timed(repeat: int, step: Callable[[], Any]) -> tuple[float, Any]:
    times = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = step()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    spec = phantom_spec_random(args.seed)
    rendering = render_phantom(spec)
    sagittal, axial = rendering.series["sagittal_t2"], rendering.series["axial_t2"]
    sag_geometry, ax_geometry = _geometry(sagittal.geometry), _geometry(axial.geometry)
    print(f"phantom seed {args.seed}: sagittal {sagittal.labels.shape}, axial {axial.labels.shape}; median of {args.repeat} runs")

    timings: dict[str, float] = {}
    timings["spine_levels"], spine = _timed(
        args.repeat,
        lambda: spine_levels(sagittal.labels, sag_geometry, disc_label=INTERVERTEBRAL_DISC, vertebral_body_label=VERTEBRAL_BODY),
    )
    centres, normals = spine.centres_by_level(), spine.normals_by_level()
    timings["axial_slice_levels"], slice_levels = _timed(args.repeat, lambda: axial_slice_levels(ax_geometry, centres))
    timings["dsca_by_level_mm2"], dsca = _timed(
        args.repeat, lambda: dsca_by_level_mm2(axial.labels, ax_geometry, slice_levels, DURAL_SAC, axis_by_level=normals)
    )
    timings["canal_ap_by_level_mm"], canal = _timed(
        args.repeat, lambda: canal_ap_by_level_mm(axial.labels, ax_geometry, slice_levels, [SPINAL_CANAL, DURAL_SAC], axis_by_level=normals)
    )
    timings["disc_heights_mm"], discs = _timed(args.repeat, lambda: disc_heights_mm(sagittal.labels, sag_geometry, INTERVERTEBRAL_DISC))
    timings["vertebral_body_heights_mm"], bodies = _timed(
        args.repeat, lambda: vertebral_body_heights_mm(sagittal.labels, sag_geometry, VERTEBRAL_BODY, disc_label=INTERVERTEBRAL_DISC)
    )
    model = SignalIntensityModel(
        muscle_signal=spec.tissue_signal["muscle"] * spec.signal_scale, fat_signal=spec.tissue_signal["fat"] * spec.signal_scale
    )
    timings["paraspinal_muscles_by_level"], muscles = _timed(
        args.repeat,
        lambda: paraspinal_muscles_by_level(
            axial.labels,
            ax_geometry,
            slice_levels,
            left_label=PARASPINAL_MUSCLE_LEFT,
            right_label=PARASPINAL_MUSCLE_RIGHT,
            image=axial.image,
            intensity_model=model,
        ),
    )
    # What each save of a mask runs (the AI's and every reader's): one call per mask, every quantity.
    label_values = {name: value for value, name in rendering.measurements["label_map"].items()}
    label_values = {name: int(value) for name, value in label_values.items()}
    timings["named_disc_centres (per save)"], (named, _) = _timed(
        args.repeat,
        lambda: named_disc_centres(sagittal.labels, sag_geometry, disc_label=INTERVERTEBRAL_DISC, vertebral_body_label=VERTEBRAL_BODY),
    )
    timings["axial_level_rows, T2 model (per save)"], _ = _timed(
        args.repeat,
        lambda: axial_level_rows(axial.labels, ax_geometry, named, label_values=label_values, image=axial.image, intensity_model=model),
    )
    image = axial.image.astype(np.float64)
    pair = FatWater(image, image, ax_geometry)  # a fat/water pair on a grid of its own: resampled at each muscle pixel
    timings["axial_level_rows, fat/water (per save)"], _ = _timed(
        args.repeat, lambda: axial_level_rows(axial.labels, ax_geometry, named, label_values=label_values, fat_water=pair)
    )
    timings["sagittal_level_rows (per save)"], _ = _timed(
        args.repeat, lambda: sagittal_level_rows(sagittal.labels, sag_geometry, named, label_values=label_values)
    )
    spacing = (sagittal.geometry.slice_thickness_mm, *sagittal.geometry.pixel_spacing_mm)
    timings["label_volumes_cm3 (sagittal)"], volumes = _timed(args.repeat, lambda: label_volumes_cm3(sagittal.labels, spacing))

    print("\nstep                              ms")
    for name, ms in timings.items():
        print(f"{name:32s} {ms:8.2f}")
    print(f"{'total':32s} {sum(timings.values()):8.2f}")

    truth = rendering.measurements["levels"]
    named_discs = heights_by_name(discs, centres)
    print("\nlevel   DSCA mm2 (truth)   canal AP mm (truth)   disc height A/M/P mm (truth)")
    for level in LEVELS:
        t = truth[level]
        h = named_discs[level]
        print(
            f"{level:6s} {dsca[level].dsca_mm2:7.1f} ({t['dsca_mm2']:6.1f})   {canal[level].ap_mm:6.2f} ({t['canal_ap_mm']:5.2f})        "
            f"{h.anterior_mm:5.2f}/{h.middle_mm:5.2f}/{h.posterior_mm:5.2f} "
            f"({t['disc_height_anterior_mm']:.2f}/{t['disc_height_middle_mm']:.2f}/{t['disc_height_posterior_mm']:.2f})"
        )
    named_bodies = heights_by_name(bodies, {v.name: v.body.centre_mm for v in spine.vertebrae})
    print("\nvertebra  body height middle mm (truth)")
    for name, h in named_bodies.items():
        print(f"{name:8s}  {h.middle_mm:6.2f} ({spec.body_height_mm_by_vertebra[name]:.2f})")
    print(
        "\nmuscle fat fraction % (truth) at L4-L5:",
        {s: round(m.fat_fraction_percent or 0.0, 1) for s, m in muscles["L4-L5"].items()},
        {s: 100 * f for s, f in spec.fat_fraction_by_side.items()},
    )
    print("flags:", spine.flags or "none", "| sagittal label volumes cm3:", {k: round(v, 1) for k, v in volumes.items()})


if __name__ == "__main__":
    main()
