"""What produced a trial's numbers, as labelled hashes, and what a re-run says about the ones that changed.

A trial's digest (its key's tail) is the hash of :func:`trial_parts`: the base's resolved content — its spec and
every file it ``extends:``, transitively, a weights file's bytes, the source file of every Python block it uses
(a ``--plugin`` file, a user's class) — the variant's edits and their blocks' code, the recipe, task, input shape,
the data, a ``file.py:fit`` trainer's source, and blockstitch's and torch's versions. Each row keeps its parts, so
a re-run names what changed (``spec resnet_base.yaml changed``) for every trial it runs again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..bench.digest import changed_parts, code_parts, file_digest, versions
from .trial import TrialJob, plain

__all__ = ["trial_parts", "data_fingerprint", "rerun_notes"]


def _hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(plain(value), sort_keys=True, default=str).encode()).hexdigest()


def data_fingerprint(path: Path) -> str:
    """A cheap fingerprint of a data directory: every file's path relative to it and its size (no bytes read, no
    modification times, so a copy elsewhere keeps its trials). Adding, removing, renaming or resizing an image
    changes it; rewriting one in place at the same size does not.

    >>> data_fingerprint(Path("data/shapes"))[:12]
    '…'
    """
    h = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = Path(root, name)
            try:
                size = full.stat().st_size
            except OSError:  # vanished while walking: it is not part of the data
                continue
            h.update(f"{full.relative_to(path).as_posix()}\0{size}\n".encode())
    return h.hexdigest()


def trial_parts(base_parts: dict[str, str], base_content: Any, edits: dict[str, Any], recipe: dict[str, Any],
                task: str, trainer: Any, data: str, input_shape: tuple[int, ...] | None) -> dict[str, str]:
    """Labelled hashes of what a trial's numbers depend on (``base_parts``: the base's
    :func:`blockstitch.bench.digest.target_parts`); the seed is in the key, not here.

    >>> sorted(trial_parts({"spec b.yaml": "1"}, {}, {}, {"epochs": 1}, "classify", None, "d", (3, 8, 8)))[:3]
    ['data', 'edits', 'input']
    """
    parts = dict(base_parts)
    if not any(label.startswith("spec ") for label in base_parts):  # a module given in Python: its weights too
        parts["base"] = _hash(base_content)
    for label, value in code_parts(edits).items():  # the code behind the blocks the edits bring in
        parts.setdefault(label, value)
        if parts[label] != value:
            parts[f"{label} (edits)"] = value
    parts |= {"edits": _hash(edits), "recipe": _hash(recipe), "task": task, "data": data,
              "input": _hash(list(input_shape) if input_shape else None), "versions": _hash(versions())}
    if trainer is not None:
        parts["trainer"] = _hash(trainer)
        path = Path(trainer.rpartition(":")[0]) if isinstance(trainer, str) else None
        if path is not None and path.is_file():
            parts[f"code {path.name} (trainer)"] = file_digest(path)
        elif callable(trainer):
            parts |= {f"{label} (trainer)": v for label, v in code_parts(objects=(trainer,)).items()}
    return parts


def rerun_notes(new: list[TrialJob], parts: dict[str, dict[str, str]], rows: dict[str, dict[str, Any]]) -> tuple[
        list[str], list[TrialJob]]:
    """Lines saying why each trial of ``new`` whose variant and seed already have a row (under another digest) is
    run again, grouped by reason; and the jobs that had no such row (new to the run directory)."""
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for row in rows.values():  # file order: the last row of a variant and seed is what the previous run produced
        latest[(str(row.get("variant")), int(row.get("seed", -1)))] = row
    groups: dict[str, list[TrialJob]] = {}
    fresh = []
    for job in new:
        old = latest.get((job.variant, job.seed))
        if old is None:
            fresh.append(job)
            continue
        said = (changed_parts(old["parts"], parts[job.key]) if isinstance(old.get("parts"), dict)
                else ["its earlier row predates the record of what produced it"])
        groups.setdefault("; ".join(said) or "the digest changed", []).append(job)
    notes = [f"{len(jobs)} trial(s) re-run because what produced them changed ({reason}): "
             + ", ".join(f"{j.variant}/s{j.seed}" for j in jobs) for reason, jobs in groups.items()]
    return notes, fresh
