"""Start-up of the command line and the package, side by side with a bare ``import torch``.

Every command runs as a fresh process, interleaved with ``python -c "import torch"`` (A B A B …), several
repetitions; the table gives median wall seconds, median CPU seconds (user + system of the child, which a busy
neighbour disturbs less than wall time) and the median of the paired ratios to ``import torch``.

    python benchmarks/startup.py                  # 7 repetitions
    python benchmarks/startup.py --reps 11 --out benchmarks/results/startup-cpu.txt
    python benchmarks/startup.py --tree /tmp/snapshot   # a copy of the package (blockstitch/ and specs/)

``--tree`` runs every command in another copy of the tree (its folder first on ``PYTHONPATH``), e.g. a snapshot
whose generated files were just regenerated while the working tree keeps changing.

Targets (issue 14): ``--help`` ≤ 0.3 s absolute and no torch; ``blocks`` ≤ 1.15×, ``check resnet18`` ≤ 1.3× and
``import blockstitch`` ≤ 1.1× a bare ``import torch``. The "floor" row is what any command that runs a meta forward
(``check --verify``, ``plan``, ``check-module``) cannot go below with this torch: one op on a meta tensor. ``check``
without ``--verify`` runs none for built-in blocks (their shape rules are pinned by the tests). The generated files
(block index, schema, zoo table) must be current for the fast paths; the report says whether they were.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT
PY = sys.executable
SCRIPT = Path(PY).with_name("blockstitch")
CLI = [str(SCRIPT)] if SCRIPT.is_file() else [PY, "-m", "blockstitch.cli"]

BASE = ("import torch", [PY, "-c", "import torch"])
ROWS: list[tuple[str, list[str], str | None, float | None]] = [
    # label, argv, target kind ("abs" seconds or "x" ratio to import torch), target value
    ("blockstitch --help", [*CLI, "--help"], "abs", 0.3),
    ("blockstitch --version", [*CLI, "--version"], None, None),
    ("blockstitch schema", [*CLI, "schema"], None, None),
    ("blockstitch zoo", [*CLI, "zoo"], None, None),
    ("blockstitch blocks", [*CLI, "blocks"], "x", 1.15),
    ("blockstitch check resnet18", [*CLI, "check", "resnet18"], "x", 1.3),
    ("blockstitch check resnet18 --verify", [*CLI, "check", "resnet18", "--verify"], None, None),
    # the floor under anything that runs a meta forward: in torch 2.14 the first op on a meta tensor imports
    # torch._dynamo (its Python meta kernels are wrapped in torch._disable_dynamo, which imports it on first call)
    ("floor: import torch; one meta op (x + 1)", [PY, "-c", "import torch; torch.empty(1, device='meta') + 1"],
     None, None),
    ("blockstitch check-module cbam", [*CLI, "check-module", "cbam"], None, None),
    ('python -c "import blockstitch"', [PY, "-c", "import blockstitch"], "x", 1.1),
    ("import blockstitch; bs.plan('resnet18')", [PY, "-c", "import blockstitch as bs; bs.plan('resnet18')"], None,
     None),
]


def run(argv: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system of the child) and exit code of one fresh process."""
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(TREE), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(argv, cwd=TREE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, proc.returncode


def machine() -> str:
    """CPU model, cores, load average, Python and torch versions (torch's read from its metadata, not imported)."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import version

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (f"{model}, {os.cpu_count()} cores, load average {load}; Python {platform.python_version()}, "
            f"torch {version('torch')}, {platform.system()} {platform.release()}")


def generated_state() -> str:
    """Whether the generated files were current (else the fast paths of blocks/schema/zoo fall back to live)."""
    sys.path.insert(0, str(TREE))
    from blockstitch.regenerate import stale

    old = stale()
    return "current" if not old else "STALE: " + ", ".join(p.name for p in old)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="repetitions of every command (default 7)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    parser.add_argument("--tree", type=Path, default=ROOT, help="the tree to run (default: this repository)")
    args = parser.parse_args()
    global TREE
    TREE = args.tree.resolve()

    for _, argv, _, _ in ROWS:  # one warm-up of each (page cache, .pyc files); a failure is reported, not timed
        if run(argv)[2] not in (0, 1):
            print(f"warning: {' '.join(argv)} exits with an error", file=sys.stderr)
    run(BASE[1])
    samples: dict[str, list[tuple[float, float, float, float]]] = {label: [] for label, *_ in ROWS}
    base_samples: list[tuple[float, float]] = []
    for rep in range(args.reps):
        for label, argv, _, _ in ROWS:  # paired with a fresh import torch, order alternating
            first, second = (BASE[1], argv) if rep % 2 == 0 else (argv, BASE[1])
            r1, r2 = run(first), run(second)
            base, mine = (r1, r2) if rep % 2 == 0 else (r2, r1)
            samples[label].append((mine[0], mine[1], mine[0] / base[0], mine[1] / base[1]))
            base_samples.append((base[0], base[1]))

    med = statistics.median
    lines = [f"startup: {args.reps} repetitions, each command paired with a fresh `import torch`, medians",
             f"machine: {machine()}", f"tree: {TREE}; generated files: {generated_state()}", "",
             f"{'command':44} {'wall s':>7} {'cpu s':>7} {'×torch wall':>12} {'×torch cpu':>11}  target",
             f"{BASE[0]:44} {med(b[0] for b in base_samples):7.3f} {med(b[1] for b in base_samples):7.3f} "
             f"{1.0:12.2f} {1.0:11.2f}"]
    for label, _, kind, target in ROWS:
        s = samples[label]
        wall, cpu, rw, rc = (med(x[i] for x in s) for i in range(4))
        verdict = ""
        if kind == "abs":
            verdict = f"≤ {target:.2f} s: {'met' if wall <= target else 'MISSED'}"  # type: ignore[operator]
        elif kind == "x":
            verdict = (f"≤ {target:.2f}×: wall {'met' if rw <= target else 'MISSED'}, "  # type: ignore[operator]
                       f"cpu {'met' if rc <= target else 'MISSED'}")  # type: ignore[operator]
        lines.append(f"{label:44} {wall:7.3f} {cpu:7.3f} {rw:12.2f} {rc:11.2f}  {verdict}")
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
