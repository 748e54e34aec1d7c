"""Pipeline overhead of an inference job: the whole job (decode the stored DICOM, preprocess, model
forward, postprocess, store the labels and the database rows) against the raw model forward alone.

    .venv/bin/python bench/inference_pipeline.py [--model var/models/phantom-demo] [--repeats 7] [--device auto]

Without --model it trains the demo preset's architecture for two steps into a temporary folder: the
forward pass costs the same whatever the weights. The job runs through the service the Celery task
calls (spinereview.ai.services.inference_job_execute) on an embedded SQLite database and media folder
in a temporary directory (DATABASE_URL overrides the database). Prints per phantom series: slices,
raw forward seconds, job seconds and its parts, and the ratio job / forward (target <= 1.25).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# CPU time of this process (all its threads) on the CPU: other processes on a shared machine do not add to
# it, as they add to wall time. With one torch thread it equals the wall time of an idle machine. On CUDA,
# wall time (kernels run on the GPU, not on this process's CPU time).
CLOCK = time.process_time
sys.path.insert(0, str(REPO))


def _train_small(out: Path) -> Path:
    from ml.training.train import PRESETS, train

    cfg = dataclasses.replace(
        PRESETS["demo"], preset="bench", cases=1, iterations=2, heldout_cases=1, time_budget_s=None, name="bench-demo-arch"
    )
    train(cfg, out, log=lambda _: None)
    return out


class RawForward:
    """The model alone: inputs prepared beforehand exactly as the segmenter prepares them (the same batch
    size, padding, memory format, autocast); `seconds()` times only model(x) over every batch."""

    def __init__(self, model_dir: Path, device: str, volume: object, spacing: tuple[float, float, float], batch: int) -> None:
        import numpy as np
        import torch

        from ml.checkpoint import load_model
        from ml.inference.api import _resolve_device
        from ml.preprocessing import Preprocessing, pad_to_multiple, prepare_slices

        self.device = _resolve_device(device)
        self.model, config, _ = load_model(model_dir, self.device)
        prep = Preprocessing.from_dict(config["preprocessing"])
        array = np.ascontiguousarray(volume, dtype=np.float32)
        self.inputs = []
        for start in range(0, array.shape[0], batch):
            x = prepare_slices(torch.from_numpy(array[start : start + batch]), (spacing[1], spacing[2]), prep)
            self.inputs.append(pad_to_multiple(x, prep.pad_multiple).to(self.device, memory_format=torch.channels_last))
        self.seconds()  # warm the kernels

    def seconds(self) -> float:
        import torch

        cuda = self.device.startswith("cuda")
        total = 0.0
        with torch.inference_mode():
            for x in self.inputs:
                if cuda:
                    torch.cuda.synchronize()
                t0 = CLOCK()
                with torch.autocast("cuda" if cuda else "cpu", enabled=cuda):
                    self.model(x)
                if cuda:
                    torch.cuda.synchronize()
                total += CLOCK() - t0
        return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="checkpoint folder (default: the demo architecture, trained two steps)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: see CLOCK)")
    args = parser.parse_args()
    global CLOCK

    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp / 'bench.sqlite3'}")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="spinereview.settings",
        DEBUG="1",
        SPINEREVIEW_MEDIA_ROOT=str(tmp / "media"),
        CELERY_BROKER_URL="memory://",  # the level-measurement task a finished job enqueues goes nowhere
    )
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from ml.inference.api import load_segmenter
    from ml.phantom import phantom_spec_random, write_phantom_case
    from spinereview.ai.models import AISegmentation, InferenceJob
    from spinereview.ai.services import inference_job_execute, inference_jobs_request, model_version_register
    from spinereview.imaging.models import DicomSeries
    from spinereview.imaging.selectors import series_volume_load
    from spinereview.imaging.services import dicom_instances_import, sources_from_path

    call_command("migrate", verbosity=0)
    model_dir = args.model or _train_small(tmp / "model")
    model_version = model_version_register(path=model_dir, activate=False)
    write_phantom_case(phantom_spec_random(9001), tmp / "case", patient_id="BENCH", patient_name="Bench^Case")
    dicom_instances_import(sources=sources_from_path(tmp / "case" / "dicom"))
    batch = settings.INFERENCE_BATCH_SLICES
    segmenter = load_segmenter(model_version.path, device=args.device, batch_size=batch)
    import torch

    torch.set_num_threads(args.threads)
    if segmenter.device.startswith("cuda"):
        CLOCK = time.perf_counter
    print(
        f"model {model_version.version} on {segmenter.device}, {batch} slices per batch, torch threads {torch.get_num_threads()}, clock {CLOCK.__name__}"
    )
    print(
        f"{'series':<10} {'slices':>6} {'forward s':>10} {'job s':>8} {'decode':>8} {'segment':>8} {'store+db':>9} {'job/forward':>12} {'slices/s':>9}"
    )
    totals = {"forward": 0.0, "job": 0.0}
    for series in DicomSeries.objects.order_by("series_number"):
        (job,) = inference_jobs_request(series_ids=[series.pk], model_version=model_version)
        t0 = CLOCK()
        loaded = series_volume_load(series=series)
        decode_s = CLOCK() - t0
        segmenter.segment(loaded.volume, loaded.spacing_mm)  # warm-up
        raw = RawForward(Path(model_version.path), args.device, loaded.volume, loaded.spacing_mm, batch)
        forward_times, segment_times, job_times = [], [], []
        # Interleaved, and the minimum of each kept: on a shared machine other processes only ever add time.
        for _ in range(args.repeats):
            forward_times.append(raw.seconds())
            t0 = CLOCK()
            segmenter.segment(loaded.volume, loaded.spacing_mm)
            segment_times.append(CLOCK() - t0)
            AISegmentation.objects.filter(job=job).delete()
            InferenceJob.objects.filter(pk=job.pk).update(status=InferenceJob.Status.QUEUED)
            t0 = CLOCK()
            done = inference_job_execute(job_id=str(job.pk))
            job_times.append(CLOCK() - t0)
            assert done is not None and done.status == InferenceJob.Status.SUCCEEDED, done.error if done else "job vanished"
        forward_s = min(forward_times)
        job_s, segment_s = min(job_times), min(segment_times)
        nz = loaded.volume.shape[0]
        name = (series.series_description or str(series.series_number))[:10]
        rest = job_s - decode_s - segment_s
        print(
            f"{name:<10} {nz:>6} {forward_s:>10.3f} {job_s:>8.3f} {decode_s:>8.3f} {segment_s:>8.3f} {rest:>9.3f} {job_s / forward_s:>11.2f}x {nz / job_s:>9.1f}"
        )
        totals["forward"] += forward_s
        totals["job"] += job_s
    print(
        f"all series: job {totals['job']:.3f} s / raw forward {totals['forward']:.3f} s = {totals['job'] / totals['forward']:.2f}x (target <= 1.25x)"
    )


if __name__ == "__main__":
    main()
