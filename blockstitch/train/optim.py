"""Optimizer and learning-rate schedule from a recipe: AdamW or SGD (Nesterov), weight decay only on
weights of two or more dimensions, linear warm-up then cosine (or constant), stepped per optimizer step.

>>> import torch
>>> from blockstitch.train.recipe import Recipe
>>> model = torch.nn.Linear(4, 2)
>>> opt = make_optimizer(model, Recipe(lr=0.1))
>>> sched = make_schedule(opt, Recipe(lr=0.1, epochs=2, warmup_epochs=1), steps_per_epoch=10)
>>> [round(lr_factor(s, 10, 20, "cosine"), 3) for s in (0, 9, 10, 15, 19)]
[0.1, 1.0, 1.0, 0.5, 0.024]
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .recipe import Recipe

__all__ = ["make_optimizer", "make_schedule", "lr_factor"]


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """AdamW or SGD over the trainable parameters; biases and normalisation weights (1-d) are not decayed."""
    decay: list[nn.Parameter] = []
    plain: list[nn.Parameter] = []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim > 1 else plain).append(param)
    groups = [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": plain, "weight_decay": 0.0}]
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.momentum > 0)
    return torch.optim.AdamW(groups, lr=recipe.lr)


def lr_factor(step: int, warmup: int, total: int, schedule: str) -> float:
    """The fraction of the peak rate at optimizer step ``step`` (0-based): ``(step+1)/warmup`` during the
    warm-up, then 1 (constant) or a half cosine from 1 down to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def make_schedule(optimizer: torch.optim.Optimizer, recipe: Recipe,
                  steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step schedule; its state (the step count) is all a checkpoint needs to carry on."""
    total = recipe.epochs * steps_per_epoch
    warmup = min(total, round(recipe.warmup_epochs * steps_per_epoch))
    schedule = recipe.schedule
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, warmup, total, schedule))
