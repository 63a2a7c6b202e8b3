"""The Ray backend's overhead against the local backend on the same grid, and wall time against workers.

The same trial jobs (a small CNN trained on the generated shapes dataset, one torch thread per trial, each trial
lasting about ``--trial-seconds``) run on the local backend (``workers`` processes) and on a private local Ray
(``num_cpus = workers``, one CPU per trial), in alternating order, each in a fresh trial directory so nothing is
reused. Ray's start-up (``ray.init``, paid once per command) is timed apart from the grid; the grid's wall time
includes Ray's worker processes starting, as the local pool's includes its own. The rows of both backends are
compared (metrics equal) so the timing is of the same work.

    python benchmarks/ray_overhead.py                                   # 8 trials of ~10 s, workers 1 and 2
    python benchmarks/ray_overhead.py --trial-seconds 10 --out benchmarks/results/ray_overhead-cpu.txt

Goal (issue 23): Ray ≤ 1.1× the local wall time with equal workers once trials last ≥ 10 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

BASE = {"name": "micro", "input": [3, 32, 32], "defaults": {"norm": "batchnorm", "act": "relu"},
        "nodes": [{"id": "conv1", "kind": "conv", "out_channels": 16, "kernel_size": 3, "bias": False},
                  {"id": "layer1", "kind": "basic", "out_channels": 16},
                  {"id": "layer2", "kind": "basic", "out_channels": 32, "stride": 2},
                  {"id": "pool", "kind": "adaptive_avgpool", "output_size": 1}, {"id": "flat", "kind": "flatten"},
                  {"id": "fc", "kind": "linear", "out_features": 4}]}
VARIANTS = {"baseline": {}, "eca1": {"insert": [{"after": "layer1", "block": {"kind": "eca"}}]}}


def make_jobs(root: Path, data: Path, trials: int, epochs: int) -> list:
    """``trials`` jobs (variants × seeds) whose trial directories live under ``root``."""
    from blockstitch.ablate.trial import TrialJob

    recipe = {"epochs": epochs, "batch": 16, "lr": 0.01, "warmup_epochs": 0, "input": [3, 32, 32], "threads": 1}
    jobs = []
    for i in range(trials):
        variant, seed = list(VARIANTS)[i % len(VARIANTS)], i // len(VARIANTS)
        key = f"{variant}-s{seed}"
        jobs.append(TrialJob(key=key, variant=variant, seed=seed, digest="benchmark", base=BASE,
                             edits=VARIANTS[variant], recipe=recipe, task="classify", trainer=None, data=str(data),
                             device="cpu", trial_dir=str(root / key), input_shape=(3, 32, 32)))
    return jobs


def run_grid(backend, jobs: list) -> tuple[float, dict[str, dict]]:
    """Wall seconds of one backend over the jobs, and its rows by key."""
    rows: dict[str, dict] = {}
    t0 = time.perf_counter()
    backend.run(jobs, lambda job, row: rows.setdefault(job.key, row))
    return time.perf_counter() - t0, rows


def machine() -> str:
    from startup import machine as describe

    return describe()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8,
                        help="trials in the grid (default 8: 4 per worker at 2 workers, so the per-worker start-up "
                             "— a fresh process importing torch, its first build — is paid as a real grid pays it)")
    parser.add_argument("--trial-seconds", type=float, default=10.0, help="about how long one trial lasts")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default 1 2)")
    parser.add_argument("--out", type=Path, default=None, help="also write the report to this file")
    args = parser.parse_args()
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"

    from blockstitch.ablate.backends.local import LocalBackend
    from blockstitch.ablate.backends.ray_backend import RayBackend
    from blockstitch.ablate.trial import run_trial
    from blockstitch.raycluster import ray_session
    from blockstitch.train import make_shapes_dataset

    tmp = Path(tempfile.mkdtemp(prefix="ray_overhead-"))
    data = make_shapes_dataset(tmp / "data", classes=4, train_per_class=40, val_per_class=10, size=32, seed=0)
    # calibrate: seconds per epoch at this moment's load, so one trial lasts about --trial-seconds
    run_trial(make_jobs(tmp / "warm", data, 1, 1)[0])  # imports, first build, decoded images: paid once
    t0 = time.perf_counter()
    row = run_trial(make_jobs(tmp / "probe", data, 1, 3)[0])
    per_epoch = (time.perf_counter() - t0) / 3
    if row["status"] != "ok":
        print(f"the probe trial failed: {row['error']}", file=sys.stderr)
        return 1
    epochs = max(1, round(args.trial_seconds / per_epoch))
    load_before = os.getloadavg()
    lines = [f"ray_overhead: {args.trials} trials × {epochs} epochs (≈ {per_epoch * epochs:.1f} s each alone, "
             f"calibrated at {per_epoch:.2f} s/epoch), one torch thread per trial",
             f"machine: {machine()}", ""]
    header = f"{'workers':>7}  {'backend':<7}  {'grid wall s':>11}  {'× local':>7}  {'trial s median [min–max]':>26}  notes"
    lines.append(header)
    for workers in args.workers:
        results: dict[str, tuple[float, dict]] = {}
        init_s = 0.0
        for name in (("local", "ray") if workers % 2 else ("ray", "local")):  # alternate who goes first
            jobs = make_jobs(tmp / f"w{workers}-{name}", data, args.trials, epochs)
            if name == "local":
                results[name] = run_grid(LocalBackend(workers), jobs)
            else:
                t0 = time.perf_counter()
                with ray_session(num_cpus=workers):
                    init_s = time.perf_counter() - t0
                    results[name] = run_grid(RayBackend(None, cpus_per_trial=1), jobs)
        same = ({k: r["metrics"] for k, r in results["local"][1].items()}
                == {k: r["metrics"] for k, r in results["ray"][1].items()})
        for name in ("local", "ray"):
            wall, rows = results[name]
            secs = sorted(r["seconds"] for r in rows.values())
            ok = sum(r["status"] == "ok" for r in rows.values())
            note = "" if name == "local" else (f"+ ray.init {init_s:.1f} s once; rows equal local: {same}"
                                               + ("" if ok == len(rows) else f"; {len(rows) - ok} failed"))
            lines.append(f"{workers:>7}  {name:<7}  {wall:>11.1f}  {wall / results['local'][0]:>7.3f}  "
                         f"{statistics.median(secs):>9.1f} [{secs[0]:.1f}–{secs[-1]:.1f}]{'':>7}  {note}")
    load_after = os.getloadavg()
    lines += ["", f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f} (1 min); one run per cell"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
