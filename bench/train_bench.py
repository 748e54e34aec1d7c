"""Training throughput: seconds per optimiser step and slices/s, per architecture and thread count.

    .venv/bin/python bench/train_bench.py [--arch unet unet-scse ...] [--threads 1 2]
                                          [--batch-size 8] [--canvas 96] [--steps 10] [--device cpu]

One step = forward + Dice/CE loss + backward + AdamW update on a random batch (the work
`python -m ml train` does per iteration, without data loading). The first two steps are
warm-up and not timed. A report, not a test: numbers depend on the machine and its load (on
a CPU shared with other busy processes, 1 thread can be many times faster than 2, because
OpenMP threads wait for each other).
"""

from __future__ import annotations

import argparse
import time

import torch

from ml.models.registry import build_model, channels_last
from ml.training.volumes import partial_dice_ce_loss


def step_seconds(arch: str, encoder: str, threads: int, batch: int, canvas: int, steps: int,
                 device: str) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = channels_last(build_model(arch, classes=3, encoder=encoder), device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 1, canvas, canvas, device=device).to(memory_format=torch.channels_last)
    labels = torch.randint(0, 3, (batch, canvas, canvas), device=device)
    targets = torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2).float()
    labelled = torch.ones(batch, 3, dtype=torch.bool, device=device)
    times = []
    for i in range(steps + 2):
        t = time.perf_counter()
        loss = partial_dice_ce_loss(model(x), targets, labelled)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", default=["unet", "unet-scse", "fpn"])
    parser.add_argument("--encoder", default="tu-mobilenetv3_small_100")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--canvas", type=int, default=96)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(f"{'arch':<16}{'threads':>8}{'s/step':>10}{'slices/s':>10}   "
          f"(batch {args.batch_size}, {args.canvas}x{args.canvas}, {args.encoder}, {args.device})")
    for arch in args.arch:
        for threads in args.threads:
            s = step_seconds(arch, args.encoder, threads, args.batch_size, args.canvas,
                             args.steps, args.device)
            print(f"{arch:<16}{threads:>8}{s:>10.3f}{args.batch_size / s:>10.1f}")


if __name__ == "__main__":
    main()
