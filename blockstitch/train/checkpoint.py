"""Per-epoch checkpoints: ``last.pt`` in the trial folder, written atomically, read back with ``weights_only``.

A checkpoint holds everything the next epoch depends on: model, optimizer, scheduler and grad-scaler states, the
epochs done, the per-epoch history (so best and last are known after a resume), every RNG state, and a
fingerprint of what was being trained (recipe, seed, data, model) so a checkpoint is never resumed into another
trial. The file appears whole or not at all: written to a temporary name, flushed, fsynced, renamed.

>>> import tempfile, torch
>>> path = Path(tempfile.mkdtemp()) / "last.pt"
>>> save_checkpoint(path, {"epoch": 1, "model": {"w": torch.ones(2)}})
>>> load_checkpoint(path)["epoch"]
1
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .task import TrainError

__all__ = ["LAST", "save_checkpoint", "load_checkpoint"]

LAST = "last.pt"
"""The checkpoint's file name inside a trial folder."""


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: a crash leaves either the old file or the new one, never half.

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "c.pt"; save_checkpoint(p, {"epoch": 2}); p.exists()
    True
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a writer killed mid-save
        stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    try:  # the rename itself is durable once the folder is synced (not possible on every platform)
        folder = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(folder)
    except OSError:
        pass
    finally:
        os.close(folder)


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint (tensors straight to ``device``); a damaged file is a :class:`TrainError` that says so.

    >>> load_checkpoint(Path("/nonexistent/last.pt"))
    Traceback (most recent call last):
    ...
    blockstitch.train.task.TrainError: cannot read checkpoint /nonexistent/last.pt: ...
    """
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure to read is the same message to the user
        raise TrainError(f"cannot read checkpoint {path}: {type(err).__name__}: {err}"
                         f"\n  hint:     delete it to start this trial again") from None
    if not isinstance(state, dict):
        raise TrainError(f"checkpoint {path} holds {type(state).__name__}, not a dict\n  hint:     delete it")
    return state
