"""The training recipe: every knob a trainer reads, typed, documented and bounded before anything loops.

A recipe is data (it comes from an ablation file): ``extra="forbid"`` turns a typo into a located error, and
every count has a ceiling so a hostile or mistyped file cannot ask for a billion epochs.

>>> Recipe(epochs=2, batch=16, lr=3e-4).optimizer
'adamw'
>>> Recipe(epochs=0)
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for Recipe
...
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["Recipe", "MAX_EPOCHS", "MAX_BATCH", "MAX_WORKERS", "MAX_THREADS", "MAX_INPUT_DIM",
           "MAX_INPUT_ELEMENTS"]

MAX_EPOCHS = 10_000
"""Epochs of one trial."""
MAX_BATCH = 65_536
"""Samples in one batch."""
MAX_WORKERS = 64
"""DataLoader worker processes of one trial."""
MAX_THREADS = 1_024
"""Torch threads of one trial."""
MAX_INPUT_DIM = 65_536
"""Each input size (channels, height, width); the same bound as spec files."""
MAX_INPUT_ELEMENTS = 2**28
"""Elements of one input sample (C·H·W); the same bound as spec files."""
MAX_EXTRA = 100
"""Keys in ``extra``."""


class Recipe(BaseModel):
    """How a trial trains: epochs, batch, optimizer, schedule and the few switches a reviewer asks about.

    >>> Recipe(optimizer="sgd", lr=0.1, schedule="cosine", warmup_epochs=0.5).warmup_epochs
    0.5
    """

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    epochs: int = Field(10, ge=1, le=MAX_EPOCHS)
    """Passes over the training set."""
    batch: int = Field(32, ge=1, le=MAX_BATCH)
    """Samples per optimizer step."""
    lr: float = Field(1e-3, gt=0, le=10)
    """Peak learning rate (after warm-up)."""
    optimizer: Literal["adamw", "sgd"] = "adamw"
    """``adamw`` (decoupled weight decay) or ``sgd`` (Nesterov momentum)."""
    weight_decay: float = Field(0.05, ge=0, le=10)
    """Weight decay; not applied to biases and normalisation weights (1-d parameters)."""
    momentum: float = Field(0.9, ge=0, lt=1)
    """SGD momentum (ignored by AdamW)."""
    schedule: Literal["cosine", "constant"] = "cosine"
    """Learning rate after warm-up: cosine decay to zero, or constant. Stepped per optimizer step."""
    warmup_epochs: float = Field(1, ge=0, le=MAX_EPOCHS)
    """Linear warm-up from zero, in epochs (fractions allowed); capped at the whole run."""
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    """Label smoothing of the cross-entropy loss."""
    augment: bool = True
    """Standard augmentation of the training images (crop and horizontal flip); off for a plain run."""
    amp: bool = True
    """Mixed precision on CUDA (bfloat16 where supported, else float16 with a grad scaler); never on CPU."""
    input: list[int] | None = None
    """Model input ``[C, H, W]``; images are resized to ``H×W`` (``C`` = 1 reads greyscale). Default: the base
    network's input, else the images' own size."""
    workers: int = Field(0, ge=0, le=MAX_WORKERS)
    """DataLoader worker processes (0 = load in the trial's own process; seeded either way)."""
    threads: int = Field(1, ge=1, le=MAX_THREADS)
    """Torch threads per trial: equal across backends, so timings and numbers compare."""
    imgsz: int | None = Field(None, ge=1, le=MAX_INPUT_DIM)
    """Square image size, for tasks that take one number (detect)."""
    extra: dict[str, Any] = Field(default_factory=dict)
    """Task-specific options (plain data), passed on untouched."""

    @field_validator("input")
    @classmethod
    def _input_shape(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return None
        if len(value) != 3:
            raise ValueError(f"input is [C, H, W]: 3 numbers, found {len(value)}")
        if any(v < 1 or v > MAX_INPUT_DIM for v in value):
            raise ValueError(f"each input size is 1..{MAX_INPUT_DIM:,}, found {value}")
        if math.prod(value) > MAX_INPUT_ELEMENTS:
            raise ValueError(f"one sample of {value} has more than {MAX_INPUT_ELEMENTS:,} elements")
        if value[0] not in (1, 3):
            raise ValueError(f"images have 1 (grey) or 3 (RGB) channels, found {value[0]}")
        return value

    @field_validator("extra")
    @classmethod
    def _extra_size(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_EXTRA:
            raise ValueError(f"extra has {len(value)} keys, more than {MAX_EXTRA}")
        return value
