"""`blockstitch ablate FILE.yaml`: the baseline and every variant planned, timed, trained with every seed, and
tabulated (Markdown on stdout; CSV, LaTeX, JSON and the Pareto plot in the run directory). Re-running resumes."""

from __future__ import annotations

import argparse
import sys

from .common import positive, progress_console, stderr, stdout
from .scale_args import scale_arguments

NAME = "ablate"
HELP = "run an ablation from a YAML file: variants × seeds → the paper's table (resumable)"


def _workers(text: str) -> int:
    value = positive(text)
    if value > 256:
        raise argparse.ArgumentTypeError(f"at most 256 workers, got {text}")
    return value


def arguments(p: argparse.ArgumentParser) -> None:
    """The command's options."""
    p.add_argument("file", help="ablation file (base, variants/grid, task, data, recipe, seeds)")
    p.add_argument("--run-dir", default=None, help="run directory (default: runs/ablate/<name>); re-running resumes")
    p.add_argument("--workers", type=_workers, default=None, help="local backend: trials in N parallel processes")
    p.add_argument("--trainer", default=None, metavar="FILE.py:fit",
                   help="your own training function fit(model, recipe, reporter, *, data, seed, device, trial_dir)")
    p.add_argument("--keep-going", action="store_true",
                   help="a variant that cannot be built becomes a failed row instead of stopping before training")
    p.add_argument("--no-latency", action="store_true", help="skip the latency phase")
    p.add_argument("--mlflow", nargs="?", const=True, default=None, metavar="URI",
                   help="log every trial to MLflow (default store: RUN_DIR/mlruns)")
    p.add_argument("--format", choices=("md", "csv", "latex", "json"), default="md", help="the table on stdout")
    p.add_argument("--json", action="store_true", help="the table as JSON on stdout, no progress display")
    scale_arguments(p, "trial")


def run(args: argparse.Namespace) -> int:
    """Run the ablation; 0 when every trial succeeded, 1 when a row failed (the table is printed either way)."""
    from ..ablate import PrintEvents, RichEvents, ablate
    from ..ablate.progress import Events

    if args.backend == "ray":
        from ..raycluster import require_ray

        require_ray()  # before anything runs: without Ray, one line and exit 2
        if args.workers is not None:  # nothing ignored silently
            stderr().print("warning: --workers is for the local backend; on Ray, --cpus-per-trial and the "
                           "cluster's CPUs decide how many trials run at once", highlight=False)
    events: Events
    console = progress_console()
    if args.json:
        events = Events()
    elif console is not None:
        events = RichEvents(console)
    else:
        events = PrintEvents(sys.stderr)
    result = ablate(args.file, run_dir=args.run_dir, workers=args.workers, backend=args.backend,
                    trainer=args.trainer, keep_going=args.keep_going,
                    mlflow=args.mlflow, latency=not args.no_latency, events=events, address=args.address,
                    cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial)
    fmt = "json" if args.json else args.format
    text = {"md": result.to_markdown, "csv": result.to_csv, "latex": result.to_latex, "json": result.to_json}[fmt]()
    sys.stdout.write(text)
    sys.stdout.flush()
    if not args.json:
        c = result.counts
        stdout().print(f"{len(result.rows)} trials ({c['new']} new, {c['retried']} retried, {c['reused']} reused); "
                     f"files in {result.run_dir}: " + ", ".join(p.name for p in result.files), highlight=False)
        if result.mlflow_uri:
            stdout().print(f"MLflow: {result.mlflow_uri}", highlight=False)
    failed = [r for r in result.table["rows"] if r["status"] in ("failed", "partial")]
    if failed and not args.json:
        stderr().print(f"{len(failed)} variant(s) failed: " + ", ".join(r["variant"] for r in failed), highlight=False)
    return 1 if failed else 0
