"""Profiling cost, measured side by side in one run (issue: profiling).

1. `blockstitch.profile` vs a bare meta-tensor forward (timm model created on meta, then run) for resnet152
   and vit_b_16 at batch 64                                                      target ≤ 2×
   (and, stricter, against the forward alone of a timm model already on meta)
2. peak RSS of a fresh process that profiles resnet152 at growing inputs: it must not grow with the input
   (everything is on meta tensors).

Run: `python benchmarks/profile_vs_meta.py`; keep the output in benchmarks/results/.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import timm
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import compare, machine  # noqa: E402

import blockstitch as bs  # noqa: E402

PAIRS = [("resnet152", "resnet152", (3, 224, 224)), ("vit_b_16", "vit_base_patch16_224", (3, 224, 224))]
RSS_CASES = [((3, 224, 224), 1), ((3, 1024, 1024), 64), ((3, 4096, 4096), 256)]


def _rss_child(shape: str, batch: str) -> None:
    size = tuple(int(v) for v in shape.split(","))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    prof = bs.profile("resnet152", size, batch=int(batch))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{before / 1024:.0f} {after / 1024:.0f} {prof.activation_bytes}")


def main() -> None:
    """Print timing ratios and the RSS table."""
    print(f"machine: {machine()}")
    print(f"{'measurement':58s} {'ours ms':>9s} {'ref ms':>9s} {'ratio':>7s} {'quartiles':>13s} target")
    for spec, timm_name, shape in PAIRS:
        def ours() -> None:
            bs.profile(spec, shape, batch=64)

        def bare() -> None:
            with torch.device("meta"):
                model = timm.create_model(timm_name)
            with torch.no_grad():
                model(torch.empty(64, *shape, device="meta"))

        with torch.device("meta"):
            ready = timm.create_model(timm_name)
        x = torch.empty(64, *shape, device="meta")

        def forward_only() -> None:
            with torch.no_grad():
                ready(x)

        for label, ref in (("meta create+forward", bare), ("meta forward only", forward_only)):
            c = compare(ours, ref, reps=7)
            verdict = "ok" if c.ratio <= 2.0 else "MISS"
            print(f"{f'profile {spec} b64 vs timm {label}':58s} {c.a * 1e3:9.1f} {c.b * 1e3:9.1f} {c.ratio:7.3f} "
                  f"{c.spread[0]:6.3f}–{c.spread[1]:.3f}  ≤2 {verdict}")
    print("\npeak RSS of a fresh process profiling resnet152 (MiB): after import → after profile")
    for shape, batch in RSS_CASES:
        out = subprocess.run([sys.executable, __file__, "--rss", ",".join(map(str, shape)), str(batch)],
                             capture_output=True, text=True, check=True).stdout.split()
        act = int(out[2]) / 2**30
        print(f"  input {batch}×{'×'.join(map(str, shape)):>14s}: {out[0]:>5s} → {out[1]:>5s} MiB "
              f"(the activations it describes: {act:,.1f} GiB)")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--rss":
        _rss_child(sys.argv[2], sys.argv[3])
    else:
        main()
