"""Our trainer vs a plain eager PyTorch loop, same model, same device, one process.

    python benchmarks/trainer.py            # B0-CIFAR at 32 px and B0 at 224 px
    python benchmarks/trainer.py --quick    # tiny sizes: checks the script on a CPU

The plain loop is what one would write without this toolkit: data already resident
on the device (no DataLoader), bf16 autocast on a GPU, torch.optim.SGD (Nesterov,
foreach), eager forward/backward, default (NCHW) layout; it is also timed with
channels_last, to separate the layout's gain from the CUDA graph's. Ours is
`nas.train.train` end to end (GPU augmentation, CUDA-graph step), read from its last
epoch, also with channels_last forced on and off (this sets the layout policy).
B0-CIFAR runs at batch 512 and 128 (the smaller batch is the launch-bound regime).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _record import record  # noqa: E402
from nas.builder import build  # noqa: E402
from nas.data import Dataset, Split  # noqa: E402
from nas.presets import load_preset  # noqa: E402
from nas.recipe import Recipe  # noqa: E402
from nas.train import Runtime, train  # noqa: E402
from nas.train.augment import Normalize  # noqa: E402


def synthetic(n: int, resolution: int, classes: int) -> Dataset:
    g = torch.Generator().manual_seed(0)
    def split(k: int) -> Split:
        return Split(torch.randint(0, 256, (k, 3, resolution, resolution), dtype=torch.uint8, generator=g),
                     torch.randint(0, classes, (k,), generator=g))
    return Dataset("synthetic", [str(i) for i in range(classes)], split(n), split(256), split(256), "random")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def eager_images_per_s(spec, batch: int, steps: int, device: torch.device, channels_last: bool) -> float:
    torch.manual_seed(0)
    model = build(spec).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True,
                          weight_decay=5e-5, foreach=True)
    normalize = Normalize([0.5] * 3, [0.25] * 3, channels_last).to(device)
    data = torch.randint(0, 256, (batch * 4, 3, spec.resolution, spec.resolution), dtype=torch.uint8,
                         device=device)
    labels = torch.randint(0, spec.num_classes, (batch * 4,), device=device)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    times = []
    for i in range(steps + 5):
        sl = slice((i % 4) * batch, (i % 4 + 1) * batch)
        sync(device)
        start = time.perf_counter()
        with amp:
            loss = F.cross_entropy(model(normalize(data[sl])).float(), labels[sl], label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync(device)
        if i >= 5:
            times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def ours_images_per_s(spec, dataset: Dataset, batch: int, device: torch.device,
                      channels_last: str) -> tuple[float, float]:
    recipe = Recipe(epochs=3, batch_size=batch, lr=0.01, bn_momentum=0.1, label_smoothing=0.1)
    result = train(spec, dataset, recipe, runtime=Runtime(device=str(device), quiet=True,
                                                           channels_last=channels_last))
    return result.history[-1]["images_per_s"], result.setup_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script on a CPU")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    cases = [("efficientnet-b0-cifar", 32, 512, 30), ("efficientnet-b0-cifar", 32, 128, 60),
             ("efficientnet-b0", 224, 256, 20)]
    if args.quick:
        cases = [("efficientnet-b0-cifar", 32, 8, 3), ("efficientnet-b0", 64, 4, 3)]
    rows = []
    for preset, resolution, batch, steps in cases:
        spec = load_preset(preset).replace(resolution=resolution, num_classes=10 if "cifar" in preset else 1000)
        # the plain loop as one would write it (default NCHW layout), and with channels_last
        eager = eager_images_per_s(spec, batch, steps, device, channels_last=False)
        eager_cl = (eager_images_per_s(spec, batch, steps, device, channels_last=True)
                    if device.type == "cuda" else None)
        dataset = synthetic(batch * steps, resolution, spec.num_classes)
        ours, setup = ours_images_per_s(spec, dataset, batch, device, "auto")
        layouts = {}
        if device.type == "cuda":
            for layout in ("on", "off"):
                layouts[layout] = ours_images_per_s(spec, dataset, batch, device, layout)[0]
        row = {"preset": preset, "resolution": resolution, "batch": batch, "eager_img_s": eager,
               "eager_channels_last_img_s": eager_cl, "ours_img_s": ours, "ratio": ours / eager,
               "ratio_vs_eager_same_layout": ours / eager_cl if eager_cl else None, "ours_setup_s": setup,
               "ours_channels_last_img_s": layouts.get("on"), "ours_nchw_img_s": layouts.get("off"),
               "device": str(device)}
        rows.append(row)
        print(f"{preset} @ {resolution}px batch {batch} on {device}: plain eager {eager:,.0f} img/s"
              + (f" (channels_last {eager_cl:,.0f})" if eager_cl else "")
              + f", ours {ours:,.0f} img/s -> {ours / eager:.2f}x"
              + (f" ({ours / eager_cl:.2f}x vs eager channels_last)" if eager_cl else "")
              + f" (setup {setup:.1f} s)"
              + (f"; ours channels_last {layouts['on']:,.0f}, NCHW {layouts['off']:,.0f}" if layouts else ""),
              flush=True)
    if not args.no_record:
        for row in rows:
            print(f"recorded in {record('trainer', row)}")


if __name__ == "__main__":
    main()
