"""check-module's speed over the truth corpus (issue 13): seconds per module, the median and the slowest.

Target: median ≤ 1.5 s per module on CPU. Each module is checked the way `blockstitch check-module` does by
default (the channel sweep included; torch.compile/export are opt-in), at the corpus's own widths.

    python benchmarks/check_module_speed.py            # every corpus module
    python benchmarks/check_module_speed.py --only C2f --repeat 3
"""

from __future__ import annotations

import argparse
import os
import resource
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


def _cpu() -> float:
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def time_one(entry: Entry) -> tuple[float, float, bool]:
    """Wall seconds and CPU seconds (this process and its workers) for one check of ``entry``; its verdict."""
    cls = entry.cls()  # importing the library is not the check's cost
    c0, t0 = _cpu(), time.perf_counter()
    report = bs.check_module(cls, args=entry.args, input=entry.layout,
                             output=entry.layout if entry.keeps else None, axes={"c": entry.c})
    return time.perf_counter() - t0, _cpu() - c0, report.ok


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
    cpus: dict[str, float] = {}
    for entry in entries:
        runs = [time_one(entry) for _ in range(args.repeat)]
        times[entry.name] = statistics.median(t for t, _, _ in runs)
        cpus[entry.name] = statistics.median(c for _, c, _ in runs)
        print(f"{entry.name:60s} {times[entry.name]:6.2f} s wall {cpus[entry.name]:6.2f} s CPU  "
              f"{'plug-and-play' if runs[0][2] else 'not plug-and-play'}", flush=True)
    ordered = sorted(times.items(), key=lambda kv: -kv[1])
    median = statistics.median(times.values())
    print(f"\n{len(times)} modules: median {median:.2f} s wall per module (target ≤ 1.5 s: "
          f"{'ok' if median <= 1.5 else 'MISS'}), median {statistics.median(cpus.values()):.2f} s CPU, "
          f"mean {statistics.mean(times.values()):.2f} s wall, total {sum(times.values()):.0f} s wall")
    print("slowest (wall): " + ", ".join(f"{name} {t:.2f} s ({cpus[name]:.2f} s CPU)" for name, t in ordered[:8]))
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
