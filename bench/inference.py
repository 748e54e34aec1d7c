"""Inference speed of a checkpoint on phantom series: seconds per series and slices per second.

    .venv/bin/python bench/inference.py --model var/models/phantom-demo [--repeats 3] [--device auto]

Prints one line per series kind and the model's first-call (load + warm-up) time. Run it on an
idle machine; it is a report, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from ml.inference.api import load_segmenter
from ml.phantom import phantom_spec_random, write_phantom_case


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    import pydicom

    started = time.perf_counter()
    segmenter = load_segmenter(args.model, device=args.device)
    load_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        write_phantom_case(phantom_spec_random(9001), Path(tmp) / "case", patient_id="BENCH", patient_name="Bench^Case")
        print(f"model {segmenter.model_version}  load {load_s:.2f} s")
        for role in ("sagittal_t2", "axial_t2"):
            files = sorted((Path(tmp) / "case" / "dicom" / role).glob("*.dcm"))
            datasets = [pydicom.dcmread(f) for f in files]
            volume = np.stack([d.pixel_array.astype(np.float32) for d in datasets])
            row_mm, col_mm = (float(v) for v in datasets[0].PixelSpacing)
            spacing = (float(datasets[0].SliceThickness), row_mm, col_mm)
            segmenter.segment(volume, spacing)  # warm-up
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                segmenter.segment(volume, spacing)
                times.append(time.perf_counter() - t0)
            median = statistics.median(times)
            print(f"{role:12s} {volume.shape[0]:3d} slices {volume.shape[1]}x{volume.shape[2]}  median {median:.2f} s/series  {volume.shape[0] / median:.1f} slices/s")


if __name__ == "__main__":
    main()
