"""One trial — one variant trained with one seed — as a picklable job, and the one function every backend runs.

:func:`run_trial` is called in the driver (sequential), in a worker process (``--workers N``) or in a Ray task;
it builds the variant from data (the base through the one resolver, then :func:`blockstitch.stitch.stitch`),
seeds everything, and hands it to the task's trainer. A trial that fails by itself (an exception in a user's
module, out of memory, a NaN loss) comes back as a row with ``status: "failed"`` and its error: it never raises.

>>> row = run_trial(job)
>>> row["status"], sorted(row["metrics"])
('ok', ['best_epoch', 'epochs', 'top1', 'top5'])
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from ..train.reporter import Reporter

__all__ = ["TrialJob", "run_trial", "trial_digest", "trial_key", "build_variant", "plain"]


@dataclass(frozen=True)
class TrialJob:
    """Everything a trial needs and nothing else; picklable (a module given in Python is pickled along)."""

    key: str
    """Stable id: variant name, seed and digest (also the trial's directory name)."""
    variant: str
    seed: int
    digest: str
    """sha256 of what makes a result reusable: the base's resolved content (every file it extends, the code of its
    Python blocks), the edits and their blocks' code, recipe, task, data, trainer code, versions."""
    base: Any
    """The base as data: a zoo name, a spec path, a dict, ``timm:…``/``torchvision:…``/``ultralytics:…``, or an
    ``nn.Module`` given in Python."""
    edits: dict[str, list[Any]]
    recipe: dict[str, Any]
    task: str
    trainer: Any
    """None (the task's own trainer), command-line text ``file.py:fit``, or a Python function."""
    data: str
    device: str
    trial_dir: str
    input_shape: tuple[int, ...] | None
    metric: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: a class or function becomes its qualified name, a module its class and a
    content hash (what the digest and the run files hold)."""
    from torch import nn

    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, type) or callable(value) and not isinstance(value, nn.Module):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}"
    if isinstance(value, nn.Module):
        h = hashlib.sha256(repr(value).encode())
        for name, t in value.state_dict().items():
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes() if t.device.type != "meta" else b"meta")
        return f"module:{type(value).__qualname__}:{h.hexdigest()[:16]}"
    if isinstance(value, Path):
        return str(value)
    return value


def trial_digest(parts: dict[str, str]) -> str:
    """sha256 over what makes a trained result reusable, given as labelled hashes (see
    :func:`blockstitch.ablate.run.trial_parts`; the seed is in the key, not here).

    >>> trial_digest({"spec inline": "ab12", "edits": "cd34"})[:12]
    '…'
    """
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def trial_key(variant: str, seed: int, digest: str) -> str:
    """The trial's id and directory name: ``cbam_layer_-s0-1a2b3c4d5e6f`` (file-safe)."""
    safe = re.sub(r"[^A-Za-z0-9_.=+-]", "_", variant)[:80]
    return f"{safe}-s{seed}-{digest[:12]}"


def build_variant(base: Any, edits: dict[str, list[Any]], input_shape: tuple[int, ...] | None,
                  device: str | None = None) -> tuple[nn.Module, Any]:
    """The variant's module and its stitch report: the base resolved by :func:`blockstitch.subject.subject`
    (``device="meta"``: nothing allocated; ``None``: real, on the CPU), then the edits stitched in. A module given
    in Python is copied, never changed.

    >>> model, report = build_variant("resnet18", {"insert": [{"after": "layer4", "block": {"kind": "eca"}}]},
    ...                               (3, 64, 64), "meta")
    """
    from ..meta import real_copy
    from ..stitch import stitch
    from ..subject import NETWORK_KINDS, Subject, subject

    shared = isinstance(base, Subject)  # one Subject for many variants: its cached module is never edited
    subj = subject(base, accept=NETWORK_KINDS, input_shape=input_shape)
    model = subj.module(device)
    if subj.is_given_module and device != "meta":
        model = real_copy(model)
    shape = input_shape or subj.input_shape
    inplace = not (shared or subj.is_given_module) or (subj.is_given_module and device != "meta")
    return stitch(model, input_shape=shape, name=subj.name, inplace=inplace, **edits)


def _resumed_epoch(trial_dir: Path) -> int | None:
    last = trial_dir / "last.pt"
    if not last.is_file():
        return None
    try:
        from ..train.checkpoint import load_checkpoint

        epoch = load_checkpoint(last).get("epoch")
        return int(epoch) if isinstance(epoch, int) else None
    except Exception:  # noqa: BLE001 — a checkpoint we cannot read is the trainer's to refuse; we only report
        return None


def _task(job: TrialJob) -> Any:
    from .. import train

    if job.trainer is not None:
        from ..train.user import UserTrainer, load_user_trainer

        if callable(job.trainer):  # a Python function given to ablate(): the caller's own choice of code
            return UserTrainer(job.trainer, plain(job.trainer))
        return load_user_trainer(job.trainer)
    if job.task == "detect":
        import importlib

        importlib.import_module("blockstitch.yolo.detect_task")  # registers "detect" in train.TASKS
    return train.get_task(job.task)


def run_trial(job: TrialJob, reporter: Reporter | None = None) -> dict[str, Any]:
    """Train one variant with one seed; the result row (``status`` ``ok`` or ``failed`` with its ``error``).

    Sets ``torch.set_num_threads(recipe.threads)`` (restored after), seeds python, numpy and torch with the
    trial's seed before the model is built, builds it on the CPU and lets the task move it to ``job.device``.
    """
    import numpy as np
    import torch

    from ..meta import torch_state_guard
    from ..train.recipe import Recipe
    from ..train.reporter import Reporter

    t0 = time.perf_counter()
    row: dict[str, Any] = {"key": job.key, "variant": job.variant, "seed": job.seed, "digest": job.digest,
                           "status": "failed", "metrics": {}, "error": None, "epochs": 0, "seconds": 0.0,
                           "resumed_from_epoch": None}
    threads = torch.get_num_threads()
    trial_dir = Path(job.trial_dir)
    py_rng, np_rng = random.getstate(), np.random.get_state()
    guard = torch_state_guard()  # run in the caller's process (sequential), a trial leaves no global trace
    guard.__enter__()
    try:
        trial_dir.mkdir(parents=True, exist_ok=True)
        row["resumed_from_epoch"] = _resumed_epoch(trial_dir)
        recipe = Recipe.model_validate(job.recipe)
        torch.set_num_threads(max(1, recipe.threads))
        random.seed(job.seed)
        np.random.seed(job.seed % 2**32)
        torch.manual_seed(job.seed)
        model, _ = build_variant(job.base, job.edits, job.input_shape, None)
        task = _task(job)
        metrics = task.fit(model, recipe, Path(job.data), seed=job.seed, device=job.device, trial_dir=trial_dir,
                           reporter=reporter or Reporter())
        metrics = {k: float(v) for k, v in dict(metrics).items()}
        bad = [k for k, v in metrics.items() if not math.isfinite(v)]
        if bad:
            row["error"] = f"non-finite metric(s): {', '.join(bad)} (a NaN loss?)"
        else:
            row["status"] = "ok"
        row["metrics"] = metrics
        row["epochs"] = int(metrics.get("epochs", 0))
    except Exception as err:  # noqa: BLE001 — a trial that fails is a row with its error; the others go on
        row["error"] = _describe(err)
    finally:
        torch.set_num_threads(threads)
        guard.__exit__(None, None, None)
        random.setstate(py_rng)
        np.random.set_state(np_rng)
    row["seconds"] = round(time.perf_counter() - t0, 3)
    return row


def _describe(err: BaseException) -> str:
    from ..errors import SpecError

    if isinstance(err, SpecError):
        return str(err).splitlines()[0] if str(err) else type(err).__name__
    text = str(err).strip().splitlines()
    where = traceback.extract_tb(err.__traceback__)
    at = f" (at {Path(where[-1].filename).name}:{where[-1].lineno})" if where else ""
    head = text[0] if text else ""
    if "out of memory" in str(err).lower():
        return f"out of memory: {head}{at}"
    return f"{type(err).__name__}: {head}{at}"
