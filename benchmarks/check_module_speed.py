"""check-module's speed over the truth corpus (issue 13): seconds per module, the median and the slowest.

Target: median ≤ 1.5 s per module on CPU. Each module is checked the way `blockstitch check-module` does by
default (the channel sweep included; torch.compile/export are opt-in), at the corpus's own widths.

    python benchmarks/check_module_speed.py            # every corpus module
    python benchmarks/check_module_speed.py --only C2f --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _timing import machine  # noqa: E402
from corpus import Entry  # noqa: E402
from corpus.planted import PLANTED  # noqa: E402
from corpus.third_party import REAL  # noqa: E402

import blockstitch as bs  # noqa: E402


def time_one(entry: Entry) -> tuple[float, bool]:
    """Seconds for one check of ``entry``, and its verdict."""
    cls = entry.cls()  # importing the library is not the check's cost
    t0 = time.perf_counter()
    report = bs.check_module(cls, args=entry.args, input=entry.layout,
                             output=entry.layout if entry.keeps else None, axes={"c": entry.c})
    return time.perf_counter() - t0, report.ok


def main() -> None:
    """Print one line per module, then the median and the slowest."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="", help="substring of the module names to keep")
    parser.add_argument("--repeat", type=int, default=1, help="checks per module (the median is kept)")
    args = parser.parse_args()
    entries = REAL + [Entry(f"corpus.planted:{cls.__name__}", "channels") for cls in PLANTED]
    entries = [e for e in entries if args.only in e.where]
    print(f"machine: {machine()}, load average {os.getloadavg()[0]:.1f} at start")
    time_one(entries[0])  # warm-up: first-use costs (imports, kernels) are not a module's
    times: dict[str, float] = {}
    for entry in entries:
        runs = [time_one(entry) for _ in range(args.repeat)]
        times[entry.name] = statistics.median(t for t, _ in runs)
        print(f"{entry.name:60s} {times[entry.name]:6.2f} s  {'plug-and-play' if runs[0][1] else 'not plug-and-play'}")
    ordered = sorted(times.items(), key=lambda kv: -kv[1])
    median = statistics.median(times.values())
    print(f"\n{len(times)} modules: median {median:.2f} s per module (target ≤ 1.5 s: "
          f"{'ok' if median <= 1.5 else 'MISS'}), mean {statistics.mean(times.values()):.2f} s, "
          f"total {sum(times.values()):.0f} s")
    print("slowest: " + ", ".join(f"{name} {t:.2f} s" for name, t in ordered[:8]))
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
