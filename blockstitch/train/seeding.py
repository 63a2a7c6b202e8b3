"""Seeds and the trial's scope: where every random number of a trial comes from, and what a trial may change.

A trial's randomness is a function of (seed, epoch): each epoch re-seeds the global generators (augmentation,
dropout) from :func:`derive_seed` and shuffles with its own generator, so epoch k draws the same numbers whether
the run went straight through or was resumed after epoch k-1. :func:`trial_scope` sets the threads and the
deterministic-algorithm switches for the trial and puts everything back afterwards, RNG states included.

>>> derive_seed(0, 1, "order") == derive_seed(0, 1, "order") != derive_seed(0, 2, "order")
True
>>> with trial_scope(threads=1, device="cpu"):
...     pass
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

__all__ = ["derive_seed", "seed_everything", "rng_state", "set_rng_state", "trial_scope"]


def derive_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed from a trial seed and labels (epoch, purpose), stable across runs, machines and versions.

    >>> derive_seed(3, 0, "augment") < 2**63
    True
    """
    text = ":".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy's global generator and torch (CPU and every CUDA device).

    >>> seed_everything(0); a = torch.rand(1); seed_everything(0); bool(torch.equal(a, torch.rand(1)))
    True
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every global RNG state (torch CPU, CUDA if initialised, numpy, python) as plain data that
    ``torch.load(weights_only=True)`` reads back.

    >>> state = rng_state(); a = torch.rand(2); set_rng_state(state); bool(torch.equal(a, torch.rand(2)))
    True
    """
    kind, keys, pos, has_gauss, gauss = np.random.get_state()  # type: ignore[misc]
    return {
        "torch": torch.get_rng_state(),
        # is_initialized() alone: is_available() asks the driver, after which a forked child cannot use CUDA
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Put back what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


@contextmanager
def trial_scope(threads: int, device: str) -> Iterator[None]:
    """Within: ``threads`` torch threads, deterministic algorithms (warn-only: an op without a deterministic
    kernel warns rather than fails), cuDNN deterministic and not benchmarking. Afterwards every one of these and
    every RNG state is what it was before.

    >>> before = torch.get_num_threads()
    >>> with trial_scope(threads=1, device="cpu"):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(), torch.backends.cudnn.deterministic,
             torch.backends.cudnn.benchmark, rng_state())
    if str(device).startswith("cuda"):
        # cuBLAS reads this when it starts; without it matrix products on CUDA may differ run to run
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    try:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        yield
    finally:
        threads_before, det, warn_only, cudnn_det, cudnn_bench, state = saved
        torch.set_num_threads(threads_before)
        torch.use_deterministic_algorithms(det, warn_only=warn_only)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn_det, cudnn_bench
        set_rng_state(state)
