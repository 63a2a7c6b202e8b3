"""A stand-in trial for the Ray backend's fault tests: the contract of ``run_trial`` (a row back, a failure is a
row, resume from the trial directory's last epoch checkpoint) without training, so a test can kill a node
mid-trial in seconds. Its final "metric" is a chain of per-epoch states: a resumed trial reproduces it only if
it really went on from its checkpoint.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from blockstitch.ablate.trial import TrialJob

_MIX = 6364136223846793005


def chain(seed: int, epochs: int) -> float:
    """The metric an uninterrupted stand-in trial of ``epochs`` epochs ends with (the truth, computed apart)."""
    state = seed + 1
    for _ in range(epochs):
        state = (state * _MIX + 1442695040888963407) % 2**64
    return state / 2**64


def job(tmp: Path, variant: str, seed: int, *, epochs: int = 3, seconds: float = 0.05,
        stall_on: str | None = None) -> TrialJob:
    """A job for the stand-in (``extra`` carries its epoch length). ``stall_on``: a node id where the trial
    stops after its second epoch, so a test can remove that node while the trial is surely still running."""
    key = f"{variant}-s{seed}"
    return TrialJob(key=key, variant=variant, seed=seed, digest="d" * 64, base="lenet5", edits={},
                    recipe={"epochs": epochs}, task="classify", trainer=None, data=str(tmp / "data"),
                    device="cpu", trial_dir=str(tmp / "trials" / key), input_shape=None,
                    extra={"seconds_per_epoch": seconds, "stall_on": stall_on})


def trial(job: TrialJob, reporter: Any = None) -> dict[str, Any]:
    """Run the stand-in: one checkpoint per epoch (written atomically), a marker per start naming its node."""
    import ray

    t0 = time.perf_counter()
    folder = Path(job.trial_dir)
    folder.mkdir(parents=True, exist_ok=True)
    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"
    (folder / f"start-{os.getpid()}-{node}").touch()
    last = folder / "last.json"
    saved = json.loads(last.read_text()) if last.is_file() else None
    row = {"key": job.key, "variant": job.variant, "seed": job.seed, "digest": job.digest, "status": "failed",
           "metrics": {}, "error": None, "epochs": 0, "seconds": 0.0,
           "resumed_from_epoch": saved["epoch"] if saved else None}
    if job.variant == "broken":  # a trial that fails by itself: a row, never an exception
        row["error"] = "RuntimeError: loss is NaN"
        return row
    epoch, state = (saved["epoch"], saved["state"]) if saved else (0, job.seed + 1)
    epochs = job.recipe["epochs"]
    while epoch < epochs:
        time.sleep(job.extra["seconds_per_epoch"])
        state = (state * _MIX + 1442695040888963407) % 2**64
        epoch += 1
        partial = folder / "last.json.partial"
        partial.write_text(json.dumps({"epoch": epoch, "state": state}))
        os.replace(partial, last)
        if reporter is not None:
            reporter.epoch(epoch, epochs, {"state": state / 2**64})
        if epoch == 2 and node == job.extra.get("stall_on"):
            time.sleep(300)  # until the test removes this node
    row.update(status="ok", metrics={"top1": state / 2**64, "epochs": float(epochs)}, epochs=epochs,
               seconds=round(time.perf_counter() - t0, 3))
    return row


def raises(job: TrialJob, reporter: Any = None) -> dict[str, Any]:
    """A function that breaks the contract: it raises instead of returning a failed row."""
    raise MemoryError("a task that raises instead of returning its row")


def starts(job: TrialJob) -> list[str]:
    """The node ids of every start of this job so far."""
    return [p.name.split("-", 2)[2] for p in Path(job.trial_dir).glob("start-*")]


def listening_addresses() -> set[str]:
    """The addresses that this process (a Ray driver) and its children (Ray's servers and workers) listen on."""
    import psutil

    mine = {os.getpid()} | {p.pid for p in psutil.Process().children(recursive=True)}
    return {c.laddr.ip for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN and c.pid in mine}


LOOPBACK_ADDRESSES = {"127.0.0.1", "::ffff:127.0.0.1"}
