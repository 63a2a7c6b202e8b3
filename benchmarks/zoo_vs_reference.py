"""Assembled networks against their references, forward time side by side (issue: benchmarking).

resnet50 vs torchvision and timm, vit_b_16 vs timm and torchvision, unet vs a hand-written PyTorch U-Net of
the same layout. Target: assembled / reference ≤ 1.02. Each ratio is the median of paired, ABBA-interleaved
repetitions, printed with its quartiles and beside an A/A control (the reference against a copy of itself).
CPU always; with CUDA, also GPU eager and compiled (`--device cuda`).
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import timm
import torch
import torchvision.models as tv
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import compare, machine  # noqa: E402

import blockstitch as bs  # noqa: E402


def double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ReferenceUNet(nn.Module):
    """The U-Net most PyTorch code writes by hand (transposed-conv up, pad to the skip, concat, double conv)."""

    def __init__(self, classes: int = 2) -> None:
        super().__init__()
        widths = [64, 128, 256, 512, 1024]
        self.downs = nn.ModuleList([double_conv(3, 64)] + [double_conv(a, b) for a, b in zip(widths, widths[1:])])
        self.ups = nn.ModuleList([nn.ConvTranspose2d(c, c // 2, 2, stride=2) for c in widths[:0:-1]])
        self.convs = nn.ModuleList([double_conv(c, c // 2) for c in widths[:0:-1]])
        self.head = nn.Conv2d(64, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, down in enumerate(self.downs):
            x = down(x if i == 0 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for up, conv in zip(self.ups, self.convs):
            x = up(x)
            skip = skips.pop()
            dh, dw = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
            x = nn.functional.pad(x, [dw // 2, dw - dw // 2, dh // 2, dh - dh // 2])
            x = conv(torch.cat([skip, x], dim=1))
        return self.head(x)


def main() -> None:
    """Print the ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--reps", type=int, default=15)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"machine: {machine()}" + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""))
    pairs = [
        ("resnet50", "torchvision resnet50", tv.resnet50, (4, 3, 224, 224)),
        ("resnet50", "timm resnet50", lambda: timm.create_model("resnet50"), (4, 3, 224, 224)),
        ("vit_b_16", "timm vit_base_patch16_224", lambda: timm.create_model("vit_base_patch16_224"), (4, 3, 224, 224)),
        ("vit_b_16", "torchvision vit_b_16", tv.vit_b_16, (4, 3, 224, 224)),
        ("unet", "hand-written U-Net", ReferenceUNet, (1, 3, 256, 256)),
    ]
    variants = ["eager"] + (["compiled"] if device.type == "cuda" else [])
    print(f"{'assembled vs reference':44s} {'variant':9s} {'ours ms':>9s} {'ref ms':>9s} {'ratio':>7s} "
          f"{'quartiles':>13s} {'A/A':>6s} target ≤1.02")
    for name, ref_name, make_ref, shape in pairs:
        torch.manual_seed(0)
        ours, ref = bs.build(name).to(device).eval(), make_ref().to(device).eval()
        control = copy.deepcopy(ref)
        x = torch.randn(*shape, device=device)
        for variant in variants:
            a, b, c = (ours, ref, control) if variant == "eager" else (torch.compile(ours), torch.compile(ref),
                                                                         torch.compile(control))
            with torch.inference_mode():
                res = compare(lambda: a(x), lambda: b(x), args.reps, warmup=2)
                aa = compare(lambda: c(x), lambda: b(x), args.reps, warmup=2)
            verdict = "ok" if res.ratio <= 1.02 else "MISS"
            print(f"{name + ' vs ' + ref_name:44s} {variant:9s} {res.a * 1e3:9.1f} {res.b * 1e3:9.1f} "
                  f"{res.ratio:7.3f} {res.spread[0]:6.3f}–{res.spread[1]:.3f} {aa.ratio:6.3f} {verdict}")


if __name__ == "__main__":
    main()
