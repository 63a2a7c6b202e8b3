"""Your own training loop as a task: ``--trainer file.py:fit`` on the command line (code runs only by that
choice, as with ``--plugin``; a file can never name it).

The function is called as ``fit(model, recipe, reporter, *, data, seed, device, trial_dir)`` inside the same
trial scope as the built-in trainer (threads, deterministic algorithms, every generator seeded from ``seed``)
and returns ``{metric: number}``. It may say which metrics it reports and which one ranks the table with two
attributes, ``fit.metrics = ("acc",)`` and ``fit.primary = "acc"``; without them the table ranks by the first
metric returned. Resuming is the function's own business: ``trial_dir`` is kept between runs, and
:func:`blockstitch.train.checkpoint.save_checkpoint` is there to use.

>>> from blockstitch.sources import CommandLine
>>> task = load_user_trainer(CommandLine("my_loop.py:fit"))   # doctest: +SKIP
>>> load_user_trainer("my_loop.py:fit")
Traceback (most recent call last):
...
blockstitch.errors.SpecError: 'my_loop.py:fit' names Python code: only a command-line argument may do that
...
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import SpecError
from ..sources import CommandLine, user_class
from .recipe import Recipe
from .reporter import Reporter
from .seeding import seed_everything, trial_scope
from .task import Task, TrainError

__all__ = ["UserTrainer", "load_user_trainer", "SIGNATURE"]

SIGNATURE = "fit(model, recipe, reporter, *, data, seed, device, trial_dir) -> dict[str, float]"
"""How a user's trainer is called."""


class UserTrainer:
    """A task around a user's ``fit`` function (see the module docstring)."""

    def __init__(self, fn: Callable[..., Any], ref: str) -> None:
        self.fn, self.ref = fn, str(ref)
        self.name = f"trainer {ref}"
        self.metrics: tuple[str, ...] = tuple(str(m) for m in getattr(fn, "metrics", ()) or ())
        self.primary: str = str(getattr(fn, "primary", "") or (self.metrics[0] if self.metrics else ""))

    def fit(self, model: nn.Module, recipe: Recipe, data: Path, *, seed: int, device: str, trial_dir: Path,
            reporter: Reporter | None = None) -> dict[str, float]:
        """Call the user's function in the trial scope, seeded; check that it returned named finite numbers."""
        trial_dir = Path(trial_dir)
        trial_dir.mkdir(parents=True, exist_ok=True)
        with trial_scope(recipe.threads, device):
            seed_everything(seed)
            result = self.fn(model, recipe, reporter or Reporter(), data=Path(data), seed=seed, device=device,
                             trial_dir=trial_dir)
        return _numbers(result, self.ref)


def _numbers(result: Any, ref: str) -> dict[str, float]:
    if not isinstance(result, Mapping) or not result:
        raise TrainError(f"trainer {ref} returned {type(result).__name__}, not a dict of metrics"
                         f"\n  expected: {SIGNATURE}")
    out: dict[str, float] = {}
    for key, value in result.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise TrainError(f"trainer {ref} returned {key!r}: {value!r}, not a number") from None
        if not math.isfinite(number):
            raise TrainError(f"trainer {ref} returned {key!r}: {number}: training diverged")
        out[str(key)] = number
    return out


def load_user_trainer(ref: CommandLine) -> Task:
    """Import ``file.py:fit`` (command-line text only) and check it can be called as :data:`SIGNATURE`.

    A plain string (from a file) is refused with a :class:`SpecError`, as is a function of another shape.
    """
    fn = user_class(ref)
    try:
        inspect.signature(fn).bind(None, None, None, data=None, seed=0, device="cpu", trial_dir=None)
    except TypeError as err:
        raise SpecError(f"trainer '{ref}' cannot be called as {SIGNATURE}: {err}", expected=SIGNATURE,
                        found=f"{getattr(fn, '__name__', ref)}{inspect.signature(fn)}") from None
    except ValueError:  # no signature to read (a builtin): let the call tell
        pass
    return UserTrainer(fn, ref)
