"""Assembler overheads against timm, measured side by side in one run (issue: foundation).

1. spec → module build time vs `timm.create_model('resnet50')`            target ≤ 1.2×
2. assembled vs timm ResNet-50 forward time, batch 8, CPU                   target ≤ 1.02×
   (next to it an A/A control, timm against a second timm: the noise floor of this machine)
3. `check` (plan on meta tensors) vs a bare meta-tensor forward of timm's
   resnet152 at batch 64, 3×1024×1024 (model created on meta, then run)     target ≤ 1.5×
   (and, stricter, against the forward alone of a timm model already on meta)

Ratios are medians of paired, ABBA-interleaved repetitions. Run:
`python benchmarks/assemble_vs_timm.py [--reps N]`; keep the output in benchmarks/results/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import timm
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import Comparison, compare, machine  # noqa: E402

import blockstitch as bs  # noqa: E402


def main() -> None:
    """Print the ratios with their targets."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=9)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"machine: {machine()}")
    rows: list[tuple[str, Comparison, float | None]] = []

    rows.append(("build resnet50 (spec → module) vs timm.create_model",
                 compare(lambda: bs.build("resnet50"), lambda: timm.create_model("resnet50"), args.reps), 1.2))

    ours, theirs, control = (bs.build("resnet50").eval(), timm.create_model("resnet50").eval(),
                             timm.create_model("resnet50").eval())
    x = torch.randn(8, 3, 224, 224)
    with torch.inference_mode():
        rows.append(("forward resnet50, batch 8, CPU: assembled vs timm",
                     compare(lambda: ours(x), lambda: theirs(x), 4 * args.reps, warmup=2), 1.02))
        rows.append(("  A/A control: timm vs a second timm (noise floor)",
                     compare(lambda: control(x), lambda: theirs(x), 4 * args.reps, warmup=2), None))

    def bare_meta() -> None:
        with torch.device("meta"):
            model = timm.create_model("resnet152")
        with torch.no_grad():
            model(torch.empty(64, 3, 1024, 1024, device="meta"))

    def check() -> None:
        bs.plan("resnet152", (3, 1024, 1024), batch=64)

    rows.append(("check resnet152 b64 1024² vs timm meta create+forward", compare(check, bare_meta, args.reps), 1.5))
    with torch.device("meta"):
        ready = timm.create_model("resnet152")
    x_meta = torch.empty(64, 3, 1024, 1024, device="meta")
    with torch.no_grad():
        rows.append(("check resnet152 b64 1024² vs timm meta forward only",
                     compare(check, lambda: ready(x_meta), args.reps), 1.5))

    print(f"{'measurement':56s} {'ours ms':>9s} {'ref ms':>9s} {'ratio':>7s} {'quartiles':>13s} {'target':>7s}")
    for name, c, target in rows:
        verdict = "" if target is None else ("ok" if c.ratio <= target else "MISS")
        goal = "" if target is None else f"≤{target}"
        print(f"{name:56s} {c.a * 1e3:9.1f} {c.b * 1e3:9.1f} {c.ratio:7.3f} "
              f"{c.spread[0]:6.3f}–{c.spread[1]:.3f} {goal:>7s} {verdict}")


if __name__ == "__main__":
    main()
