"""Results into MLflow, where people compare runs: each trial a run (its params, metrics, tags), plus one
summary run holding the table and the plot as artifacts. A local file store under the run directory by default;
nothing listens, nothing is uploaded unless the user names a server.

>>> log_to_mlflow(result, uri=None)      # RUN/mlruns; `mlflow ui --backend-store-uri RUN/mlruns` shows it
'file:///…/runs/ablation/mlruns'
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import SpecError

__all__ = ["log_to_mlflow", "default_uri"]


def default_uri(run_dir: Path) -> str:
    """The local file store: ``RUN/mlruns``."""
    return (Path(run_dir).resolve() / "mlruns").as_uri()


def _params(value: Any, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            out.update(_params(v, f"{prefix}{k}." if not isinstance(v, (str, int, float, bool)) and v is not None
                               else f"{prefix}{k}"))
        return out
    return {prefix.rstrip("."): str(value)[:500]}


def log_to_mlflow(name: str, run_dir: Path, table: dict[str, Any], rows: list[dict[str, Any]],
                  trial_params: dict[str, dict[str, Any]], artifacts: list[Path], uri: str | None = None) -> str:
    """Log every trial row as an MLflow run (experiment ``name``), the table and plot files on a summary run;
    returns the tracking URI. ``trial_params`` maps a trial key to its params (variant, seed, edits, recipe …).
    A trial already logged (same key tag) is not logged twice."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise SpecError("--mlflow needs MLflow: pip install 'blockstitch[mlflow]' (or mlflow-skinny)") from None
    uri = uri or default_uri(run_dir)
    with _file_store_allowed(uri):
        _log(MlflowClient(tracking_uri=uri), name, table, rows, trial_params, artifacts)
    return uri


@contextmanager
def _file_store_allowed(uri: str) -> Iterator[None]:
    """MLflow 3 keeps its file store in maintenance mode behind an opt-in; a local store is what we promise
    (no database server, nothing that listens), so opt in for this call only."""
    key = "MLFLOW_ALLOW_FILE_STORE"
    before = os.environ.get(key)
    if uri.startswith("file:"):
        os.environ[key] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def _log(client: Any, name: str, table: dict[str, Any], rows: list[dict[str, Any]],
         trial_params: dict[str, dict[str, Any]], artifacts: list[Path]) -> None:
    exp = client.get_experiment_by_name(name)
    exp_id = exp.experiment_id if exp is not None else client.create_experiment(name)
    logged = {r.data.tags.get("blockstitch.key") for r in client.search_runs([exp_id], max_results=50_000)}
    for row in rows:
        if row["key"] in logged:
            continue
        run = client.create_run(exp_id, run_name=f"{row['variant']} seed {row['seed']}",
                                tags={"blockstitch.key": row["key"], "blockstitch.variant": row["variant"],
                                      "blockstitch.status": row["status"], "blockstitch.digest": row["digest"],
                                      "blockstitch.ablation": name})
        rid = run.info.run_id
        for k, v in _params(trial_params.get(row["key"], {})).items():
            client.log_param(rid, k[:250], v)
        for k, v in row.get("metrics", {}).items():
            if isinstance(v, (int, float)) and math.isfinite(v):
                client.log_metric(rid, k, float(v))
        client.log_metric(rid, "seconds", float(row.get("seconds") or 0.0))
        if row.get("error"):
            client.set_tag(rid, "blockstitch.error", str(row["error"])[:5000])
        client.set_terminated(rid, "FINISHED" if row["status"] == "ok" else "FAILED")
    summary = client.create_run(exp_id, run_name=f"{name} table", tags={"blockstitch.ablation": name,
                                                                        "blockstitch.summary": "true"})
    sid = summary.info.run_id
    for rec in table["rows"]:
        if isinstance(rec.get("mean"), float) and math.isfinite(rec["mean"]):
            client.log_metric(sid, f"{rec['variant']}.{table['metric']}"[:250].replace("*", "_").replace("@", "_at_"),
                              rec["mean"])
    for path in artifacts:
        if Path(path).is_file():
            client.log_artifact(sid, str(path))
    client.set_terminated(sid, "FINISHED")
