"""`blockstitch sweep FILE.yaml`: every combination, appended to JSONL as measured; resumable; plots."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import progress, stderr, stdout
from .scale_args import scale_arguments

if TYPE_CHECKING:
    from rich.console import Console

    from ..bench.sweep import SweepPlan

NAME = "sweep"
HELP = "run a benchmark sweep from a YAML file (resumable JSONL, plots)"


def arguments(p: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    p.add_argument("file", help="sweep file (targets, batch, input, dtype, mode, … lists)")
    p.add_argument("--out", default=None, help="JSONL results file (default: next to the sweep file)")
    p.add_argument("--plots", default=None, help="folder for PNG plots (default: next to the results)")
    p.add_argument("--no-plots", action="store_true", help="skip the plots")
    p.add_argument("--refresh-peaks", action="store_true",
                   help="measure the device's peak FLOP/s and bandwidth again (each dtype) and overwrite their cache")
    scale_arguments(p, "measurement")


def _targets(rows: list[dict[str, Any]]) -> str:
    counts = Counter(str(r.get("target")) for r in rows)
    return ", ".join(f"{t} ×{n}" if n > 1 else t for t, n in counts.items())


def _say_reused(planned: SweepPlan, target: Path, err: Console) -> None:
    """Nothing silent: rows taken from the results file, and rows measured again because their target changed."""
    if planned.reused:
        n = len(planned.reused)
        err.print(f"reused {n} row{'s' if n != 1 else ''} ({_targets(planned.reused)}) from {target}: measured "
                  "before with the same target content, options and versions", highlight=False)
    if planned.stale:
        n = len(planned.stale)
        said = "; ".join(f"{name}: {', '.join(why)}" for name, why in planned.why.items() if why)
        err.print(f"measuring {n} row{'s' if n != 1 else ''} again ({_targets(planned.stale)}): the target, its "
                  "options or the versions changed since they were measured" + (f" ({said})" if said else ""),
                  highlight=False)


def _say_warnings(entries: list[dict[str, Any]], blocks_file: Path, err: Console) -> None:
    """The rows' own warnings (a wide spread, a loaded machine) and the per-block ones, on stderr, each once."""
    from ..bench import BlockTime, blocks_warning
    from ..render import render_warnings

    said = [str(w) for e in entries if isinstance(e.get("warnings"), list) for w in e["warnings"]]
    try:
        blocks = json.loads(blocks_file.read_text()) if blocks_file.is_file() else {}
    except (OSError, ValueError):
        blocks = {}
    for name, rows in (blocks.items() if isinstance(blocks, dict) else []):
        timed = [BlockTime.from_dict(r) for r in rows if isinstance(r, dict) and "median_ms" in r]
        said += [f"{name}: {line}" for line in blocks_warning(timed)]
    render_warnings(said, err)


def run(args: argparse.Namespace) -> int:
    """Run the sweep (resuming what the JSONL file already holds), print the table, write the plots."""
    from ..bench.sweep import load_sweep, plan_sweep, plot, run_sweep, scan_results
    from ..render import render_sweep

    out, err = stdout(), stderr()
    spec = load_sweep(args.file)
    backend = args.backend or spec.backend  # the flags win over the file
    cpus = spec.cpus_per_trial if args.cpus_per_trial is None else args.cpus_per_trial
    gpus = spec.gpus_per_trial if args.gpus_per_trial is None else args.gpus_per_trial
    if backend == "ray":
        from ..raycluster import require_ray

        require_ray()  # before anything runs: without Ray, one line and exit 2
    elif args.address is not None or args.cpus_per_trial is not None or args.gpus_per_trial is not None:
        err.print("warning: --address/--cpus-per-trial/--gpus-per-trial apply with --backend ray only; ignored",
                  highlight=False)
    target = Path(args.out or Path(args.file).with_suffix(".jsonl"))
    bad = scan_results(target).bad_lines
    if bad:  # a kill mid-write or a hand edit: those lines stay as they are, the good rows count
        shown = ", ".join(map(str, bad[:10])) + (f", … ({len(bad) - 10} more)" if len(bad) > 10 else "")
        err.print(f"warning: {target}: line(s) {shown} are not results; left as they are", highlight=False)
    planned = plan_sweep(spec, target)  # said before measuring: which rows are old, which are measured again
    _say_reused(planned, target, err)
    if args.refresh_peaks:  # before any row is measured: every new row's roofline uses the new peaks
        from ..bench import refresh_device_peaks

        for line in refresh_device_peaks(spec.device, spec.dtype):
            err.print(line, highlight=False)
    with progress() as display:  # one step per configuration, on stderr when both streams are terminals
        entries = run_sweep(spec, target, display, backend=backend, address=args.address, cpus_per_trial=cpus,
                            gpus_per_trial=gpus)
    render_sweep(entries, out)
    out.print(f"results: {target}")
    if not args.no_plots:
        try:
            blocks_file = target.with_suffix(".blocks.json")
            blocks = json.loads(blocks_file.read_text()) if blocks_file.exists() else None
            for png in plot(entries, Path(args.plots or target.parent), blocks):
                out.print(f"plot: {png}")
        except ImportError:
            out.print("[dim]no plots: pip install 'blockstitch[plot]' (matplotlib)[/dim]")
    _say_warnings(entries, target.with_suffix(".blocks.json"), err)  # last: beside the numbers they qualify
    return 0
