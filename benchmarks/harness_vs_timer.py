"""The bench harness against `torch.utils.benchmark.Timer` on the same callables (issue: benchmarking).

Target: medians within 5% of each other. Both time the same closures, one after the other, five rounds;
the ratio reported is the median over rounds, beside an A/A control (Timer against a second Timer run) that
shows how far this machine lets two measurements of the same thing drift apart. CPU here; on a CUDA machine pass --device cuda.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
import torch.utils.benchmark as tb
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine  # noqa: E402

import blockstitch as bs  # noqa: E402
from blockstitch.bench.timing import measure  # noqa: E402


def cases(device: torch.device) -> dict[str, tuple[nn.Module, torch.Tensor]]:
    """Callables of very different sizes: a conv unit, a bottleneck, attention on tokens, a whole ResNet-18."""
    torch.manual_seed(0)
    with torch.device(device):
        return {
            "conv 3×3, 64→64, 8×64×56×56": (nn.Conv2d(64, 64, 3, padding=1), torch.randn(8, 64, 56, 56)),
            "linear 1024→1024, 64×1024": (nn.Linear(1024, 1024), torch.randn(64, 1024)),
            "mhsa 8 heads, 4×196×384": (bs.get_block("mhsa")(heads=8).build([(4, 196, 384)]), torch.randn(4, 196, 384)),
            "resnet18, 1×3×224×224": (bs.build("resnet18", device=str(device)), torch.randn(1, 3, 224, 224)),
        }


def main() -> None:
    """Print harness vs Timer medians per case."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"machine: {machine()}")
    print(f"{'callable':34s} {'harness ms':>11s} {'Timer ms':>10s} {'ratio':>7s} {'A/A':>6s}  target within 5%")
    for name, (module, x) in cases(device).items():
        module.eval()

        def fn(module: nn.Module = module, x: torch.Tensor = x) -> object:
            with torch.inference_mode():
                return module(x)

        ours, theirs, again = [], [], []
        timer = tb.Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
        for _ in range(5):
            ours.append(measure(fn, device, budget_s=1.0).median_ms)
            theirs.append(timer.adaptive_autorange(min_run_time=1.0).median * 1e3)
            again.append(timer.adaptive_autorange(min_run_time=1.0).median * 1e3)
        ratio = statistics.median(o / t for o, t in zip(ours, theirs))
        control = statistics.median(a / t for a, t in zip(again, theirs))
        verdict = "ok" if abs(ratio - 1) <= 0.05 else "MISS"
        print(f"{name:34s} {statistics.median(ours):11.3f} {statistics.median(theirs):10.3f} {ratio:7.3f} "
              f"{control:6.3f}  {verdict}")


if __name__ == "__main__":
    main()
