"""The ablation driver's cost over the bare training loop it runs, and ``--workers 2`` against one after another.

Goal: orchestration (reading the file, planning every variant on meta tensors, building from data, the run
directory's fsynced rows, the table and plot files) adds at most 3 % to the training it wraps. The bare loop
trains the same variants with the same seeds, recipe and data through the same task, with nothing around it;
both read one dataset drawn beforehand (neither pays for drawing it) and skip the latency phase (a measurement
of its own, timed separately below). The two are run in ABBA order (bare, driver, driver, bare) and the overhead
is the ratio of the pairs' sums, so a neighbour's load falls on both sides alike. Both run in this process on
one torch thread, so the process's CPU time (``time.process_time``) is their cost even on a shared machine;
wall-clock time is printed beside it. ``--workers 2`` is about wall-clock time: compare it on a quiet machine.

    python benchmarks/ablate_overhead.py                       # examples/ablation.yaml, seeds and epochs as written
    python benchmarks/ablate_overhead.py --seeds 0 --epochs 3  # a quicker run
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine  # noqa: E402

from blockstitch.ablate import Events, ablate  # noqa: E402
from blockstitch.ablate.file import load_ablation  # noqa: E402
from blockstitch.ablate.measure import time_variants  # noqa: E402
from blockstitch.ablate.run import prepare  # noqa: E402
from blockstitch.ablate.trial import build_variant  # noqa: E402
from blockstitch.train import Recipe, Reporter, get_task, make_shapes_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class Phases(Events):
    """Wall-clock time of each phase the driver announces."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.marks: list[tuple[str, float]] = []

    def phase(self, name: str, text: str) -> None:
        self.marks.append((name, time.perf_counter() - self.t0))


def bare(source: dict, data: Path) -> tuple[float, float]:
    """Every variant × seed trained by the task directly: the loop the driver wraps, nothing else."""
    spec, located = load_ablation(source)
    prep = prepare((spec, located))
    recipe = Recipe.model_validate(spec.recipe)
    task = get_task(spec.task)
    t0, c0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in spec.seeds:
            for variant in prep.variants:
                torch.manual_seed(seed)
                model, _ = build_variant(prep.base, variant.edits, prep.input_shape, None)
                task.fit(model, recipe, data, seed=seed, device=spec.device, trial_dir=Path(tmp) / f"{variant.name}-{seed}",
                         reporter=Reporter())
    return time.perf_counter() - t0, time.process_time() - c0


def driven(source: dict, workers: int = 1) -> tuple[float, float, Phases]:
    """The whole ``ablate`` call (no latency phase) in a fresh run directory: wall and CPU seconds (this
    process and its finished children)."""
    import resource

    events = Phases()
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        k0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        ablate(source, run_dir=Path(tmp) / "run", workers=workers, latency=False, events=events)
        k1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        children = (k1.ru_utime + k1.ru_stime) - (k0.ru_utime + k0.ru_stime)
        return time.perf_counter() - t0, time.process_time() - c0 + children, events


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--file", default=str(ROOT / "examples" / "ablation.yaml"))
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: the file's)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the file's)")
    args = p.parse_args()
    spec, located = load_ablation(args.file)
    source = dict(located.data)
    source["base"] = str((Path(args.file).parent / str(spec.base)).resolve()) if str(spec.base).endswith(
        (".yaml", ".yml", ".json")) else spec.base
    if args.seeds:
        source["seeds"] = [int(s) for s in args.seeds.split(",")]
    if args.epochs:
        source["recipe"] = {**source.get("recipe", {}), "epochs": args.epochs}
    torch.set_num_threads(Recipe.model_validate(source.get("recipe", {})).threads)
    with tempfile.TemporaryDirectory() as tmp:
        gen = dict(source["data"])
        gen.pop("generate")
        data = make_shapes_dataset(Path(tmp) / "shapes", **gen)
        source["data"] = str(data)
        trials = len(source.get("seeds", [0])) * len(prepare(load_ablation(source)).variants)
        print(f"machine: {machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
        print(f"workload: {args.file}, {trials} trials, {source['recipe'].get('epochs')} epochs each, "
              f"seeds {source.get('seeds', [0])}")
        b1, bc1 = bare(source, data)
        d1, dc1, ph1 = driven(source)
        d2, dc2, _ = driven(source)
        b2, bc2 = bare(source, data)
        print(f"                    {'CPU s':>8}  {'CPU s':>8}   {'wall s':>8}  {'wall s':>8}")
        print(f"bare loop           {bc1:8.1f}  {bc2:8.1f}   {b1:8.1f}  {b2:8.1f}")
        print(f"ablate (driver)     {dc1:8.1f}  {dc2:8.1f}   {d1:8.1f}  {d2:8.1f}")
        cpu = (dc1 + dc2) / (bc1 + bc2) - 1
        wall = (d1 + d2) / (b1 + b2) - 1
        print(f"overhead            CPU {100 * cpu:+.2f} % (pairs {100 * (dc1 / bc1 - 1):+.2f} %, "
              f"{100 * (dc2 / bc2 - 1):+.2f} %), wall {100 * wall:+.2f} %   goal ≤ 3 % (CPU): "
              f"{'ok' if cpu <= 0.03 else 'MISS'}")
        plan_s = next((t for name, t in ph1.marks if name == "plan"), float("nan"))
        print(f"  of which reading the file and planning every variant on meta tensors: {plan_s:.1f} s wall")
        w2, wc2, _ = driven(source, workers=2)
        print(f"--workers 2         wall {w2:.1f} s (CPU {wc2:.1f} s) vs sequential wall {min(d1, d2):.1f} s: "
              f"{min(d1, d2) / w2:.2f}× faster   (load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} "
              "cores)")
        prep = prepare(load_ablation(source))
        t0 = time.perf_counter()
        time_variants(prep.base, prep.variants, prep.input_shape, rounds=prep.spec.latency.rounds)
        print(f"latency phase       {time.perf_counter() - t0:8.1f} s   ({len(prep.variants)} variants, "
              f"{prep.spec.latency.rounds} interleaved rounds; not part of the overhead above)")


if __name__ == "__main__":
    main()
