"""Δlatency of `check-module --into` on an A/A comparison (issue #26 item 2): a block that does nothing
(``nn.Identity``, one hook call) stitched after each stage must read "within noise" about 95 % of the time, however
loaded the machine; a block that adds real work (four 3×3 convolutions at the stage's width) is the control that
must not.

    python benchmarks/delta_latency_aa.py                        # resnet18 at 3×64×64, 30 rounds, 3 trials
    python benchmarks/delta_latency_aa.py --trials 5 --rounds 40
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine  # noqa: E402

from blockstitch.bench.timing import interleaved  # noqa: E402
from blockstitch.check.stitch_report import StitchTable, stitch_report  # noqa: E402

CPU = torch.device("cpu")


def identity(shape: tuple[int, ...], layout: str, channels: int) -> nn.Module:
    """The A/A block: nothing changes but one forward hook."""
    return nn.Identity()


def heavier(shape: tuple[int, ...], layout: str, channels: int) -> nn.Module:
    """The control: four 3×3 convolutions at the stage's width (real work, known MACs)."""
    return nn.Sequential(*[nn.Conv2d(channels, channels, 3, padding=1, bias=False) for _ in range(4)])


def timer(fns: list, rounds: int) -> list[list[float]]:
    """The CLI's timer: the bench harness, interleaved ABBA rounds on the CPU."""
    return interleaved(fns, CPU, rounds)


def show(label: str, report: StitchTable) -> int:
    """One line per insertion point; returns how many read "within noise"."""
    quiet = 0
    for row in report.rows:
        assert row.latency is not None
        quiet += row.latency.within_noise
        print(f"{label:22s} after {row.at:7s} ΔMACs {row.macs_pct:+6.2f} %   Δlatency {row.latency_text}")
    if report.floor is not None:
        floor = report.floor.text().replace(", within noise", "")
        print(f"  noise floor (a second copy of the baseline): {floor}")
    for warning in report.warnings:
        print(f"  warning: {warning}")
    return quiet


def main() -> None:
    """A/A trials, then the control."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--net", default="resnet18")
    parser.add_argument("--input", default="3,64,64")
    parser.add_argument("--at", default="layer1,layer2,layer3,layer4")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    shape = tuple(int(v) for v in args.input.split(","))
    at = args.at.split(",")
    print(f"machine: {machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    print(f"{args.net} at {'×'.join(map(str, shape))}, batch 1, {args.rounds} paired rounds per report")
    quiet = total = 0
    for trial in range(args.trials):
        quiet += show(f"A/A trial {trial + 1} (identity)", stitch_report(identity, args.net, at, shape, args.rounds,
                                                                        timer))
        total += len(at)
    control = stitch_report(heavier, args.net, at, shape, args.rounds, timer)
    loud = len(at) - show("control (4 × conv3×3)", control)
    print(f"A/A: {quiet} of {total} intervals within noise (expected ≈ 95 %); control: {loud} of {len(at)} "
          f"outside noise; load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
