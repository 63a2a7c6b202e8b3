"""Ablations (消融实验): the paper's table in one command — the baseline and each variant (modules stitched in at
chosen places) planned on meta tensors, timed against the baseline, trained with every seed, and tabulated with
Δparams, ΔMACs, Δlatency and Δmetric (95 % intervals, paired by seed), resumably.

>>> result = ablate("examples/ablation.yaml")
>>> print(result.to_markdown())
>>> result = ablate({"base": "resnet18", "data": {"generate": "shapes"}, "recipe": {"epochs": 2, "input": [3, 32, 32]},
...                  "grid": {"block": ["cbam", "eca"], "after": ["layer4"]}, "seeds": [0, 1]})

Layering: its own floor, above the tools it composes (subject, stitch, bench, train) and below ``api``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .backends import Backend, get_backend
from .file import AblationFile, load_ablation
from .progress import Events, PrintEvents, RichEvents
from .table import make_table, to_csv, to_json, to_latex, to_markdown
from .trial import TrialJob, run_trial
from .variants import Variant, expand

__all__ = ["ablate", "AblationResult", "AblationFile", "load_ablation", "Variant", "expand", "TrialJob",
           "run_trial", "Backend", "get_backend", "Events", "PrintEvents", "RichEvents"]


@dataclass
class AblationResult:
    """What :func:`ablate` returns: the trial rows, the table records, where the files are."""

    name: str
    metric: str
    run_dir: Path
    rows: list[dict[str, Any]]
    """One per trial (variant × seed): ``key``, ``variant``, ``seed``, ``status``, ``metrics``, ``error``,
    ``reused`` (True when read back from an earlier run) …"""
    table: dict[str, Any]
    """``{"name", "metric", "rows": [one record per variant]}`` (see :mod:`blockstitch.ablate.table`)."""
    files: list[Path] = field(default_factory=list)
    """The table files and plots written into the run directory."""
    mlflow_uri: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    """``reused``, ``new``, ``retried`` trials and ``stale`` rows of this run."""

    def to_markdown(self) -> str:
        """The table as Markdown."""
        return to_markdown(self.table)

    def to_csv(self) -> str:
        """The table as CSV."""
        return to_csv(self.table)

    def to_latex(self) -> str:
        """The table as a LaTeX booktabs tabular."""
        return to_latex(self.table)

    def to_json(self) -> str:
        """The table as JSON."""
        return to_json(self.table)

    def record(self, variant: str) -> dict[str, Any]:
        """The table record of one variant."""
        return next(r for r in self.table["rows"] if r["variant"] == variant)


def _default_run_dir(spec: AblationFile) -> Path:
    return Path("runs") / "ablate" / str(spec.name)


def ablate(source: str | Path | dict[str, Any] | None = None, *, run_dir: str | Path | None = None,
           workers: int | None = None, backend: str | Backend | None = None, trainer: Any = None,
           keep_going: bool = False, mlflow: str | bool | None = None, latency: bool = True,
           events: Events | None = None, plot: bool = True, address: str | None = None,
           cpus_per_trial: float | None = None, gpus_per_trial: float | None = None,
           **fields: Any) -> AblationResult:
    """Run an ablation: ``source`` is an ablation file path or a dict (or give its fields as keywords: ``base=``
    any network source or ``nn.Module``, ``variants=``/``grid=`` with blocks as kinds or ``nn.Module`` classes,
    ``data=``, ``recipe=``, ``seeds=`` …).

    ``run_dir`` (default ``runs/ablate/<name>``) holds one fsynced row per finished trial and the trials'
    checkpoints: calling again resumes (finished trials reused and counted as such). ``workers``/``backend``
    (and ``address``, ``cpus_per_trial``, ``gpus_per_trial`` for Ray) override the file's; ``trainer`` is
    command-line text ``file.py:fit`` (a :class:`~blockstitch.sources.CommandLine`) or a Python function
    ``fit(model, recipe, reporter, *, data, seed, device, trial_dir)``.
    ``keep_going`` makes a variant that cannot be built a failed row instead of an error. ``mlflow``: True for a
    local store under the run directory, or a tracking URI.

    >>> r = ablate("examples/ablation.yaml", workers=2)
    >>> r.record("eca@layer*")["delta"]
    """
    from .plot import plot_pareto
    from .run import execute, prepare

    if source is None:
        source = dict(fields)
    elif fields:
        raise TypeError(f"give either a source or fields, not both (got {', '.join(fields)})")
    if trainer is not None and isinstance(trainer, str):
        trainer = _absolute(trainer)  # the caller chose this code, in Python: as on the command line
    events = events or Events()
    try:
        prep = prepare(source, keep_going, trainer, events)
        spec = prep.spec
        for name, value in (("workers", workers), ("cpus_per_trial", cpus_per_trial),
                            ("gpus_per_trial", gpus_per_trial)):
            if value is not None:
                setattr(spec, name, value)
        chosen: Backend | None = None
        if isinstance(backend, str):
            spec.backend = backend  # type: ignore[assignment]
        elif backend is not None:
            chosen = backend
        root = Path(run_dir) if run_dir is not None else _default_run_dir(spec)
        out = execute(prep, root, chosen, trainer, latency, events, address)
    finally:
        events.close()
    metric = prep.metric or _first_metric(out["rows"])
    table = make_table(str(spec.name), metric, prep.plans, out["latencies"], out["rows"])
    files = []
    for ext, text in (("md", to_markdown(table)), ("csv", to_csv(table)), ("tex", to_latex(table)),
                      ("json", to_json(table))):
        path = root / f"table.{ext}"
        path.write_text(text, encoding="utf-8")
        files.append(path)
    if plot:
        files += plot_pareto(table, root)
    uri = None
    if mlflow:
        from .mlflow_log import log_to_mlflow

        uri = log_to_mlflow(str(spec.name), root, table, out["rows"], out["params"], files,
                            mlflow if isinstance(mlflow, str) else None)
    counts = {k: out[k] for k in ("reused", "new", "retried", "stale")}
    return AblationResult(str(spec.name), metric, root, out["rows"], table, files, uri, counts)


def _absolute(ref: str) -> Any:
    """``file.py:fit`` with the file made absolute, so a worker started elsewhere finds the same file."""
    from ..sources import CommandLine

    path, sep, name = str(ref).rpartition(":")
    if sep and path.endswith(".py") and Path(path).is_file():
        return CommandLine(f"{Path(path).resolve()}:{name}")
    return CommandLine(ref)


def _first_metric(rows: list[dict[str, Any]]) -> str:
    """A trainer that named no primary metric: the first one its first successful trial returned."""
    for row in rows:
        for key in row.get("metrics", {}):
            if key not in ("epochs", "best_epoch"):
                return str(key)
    return "metric"
