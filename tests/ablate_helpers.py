"""Small things the ablate tests share: a tiny base network, a tiny generated dataset, a trainer file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

TINY_BASE: dict[str, Any] = {
    "name": "micro", "input": [3, 16, 16], "defaults": {"norm": "batchnorm", "act": "relu"},
    "nodes": [{"id": "conv1", "kind": "conv", "out_channels": 8, "kernel_size": 3, "bias": False},
              {"id": "layer1", "kind": "basic", "out_channels": 8},
              {"id": "layer2", "kind": "basic", "out_channels": 16, "stride": 2},
              {"id": "pool", "kind": "adaptive_avgpool", "output_size": 1}, {"id": "flat", "kind": "flatten"},
              {"id": "fc", "kind": "linear", "out_features": 2}]}
DATA = {"generate": "shapes", "classes": 2, "train_per_class": 12, "val_per_class": 6, "size": 16}
RECIPE = {"epochs": 2, "batch": 8, "lr": 0.01, "warmup_epochs": 0, "input": [3, 16, 16]}

TRAINER = '''
def fit(model, recipe, reporter, *, data, seed, device, trial_dir):
    """Trains nothing: scores a variant by its parameter count (a number the plan also computes) plus the seed."""
    params = sum(p.numel() for p in model.parameters())
    for epoch in range(1, recipe.epochs + 1):
        reporter.epoch(epoch, recipe.epochs, {"acc": float(params)})
    return {"acc": float(params) + seed, "epochs": recipe.epochs}
fit.primary = "acc"
'''


def spec(**extra: Any) -> dict[str, Any]:
    """An ablation of the tiny base with ECA after layer1, two seeds, no latency phase unless asked."""
    base = {"name": "micro_ablation", "base": dict(TINY_BASE), "data": dict(DATA), "recipe": dict(RECIPE),
            "seeds": [0, 1], "variants": [{"name": "eca1", "insert": [{"after": "layer1", "block": {"kind": "eca"}}]}],
            "latency": {"enabled": False}}
    base.update(extra)
    return base


def trainer_file(folder: Path) -> str:
    """A user trainer on disk; returns the command-line text naming it."""
    path = folder / "my_trainer.py"
    path.write_text(TRAINER)
    return f"{path}:fit"


class Flaky(nn.Module):
    """Runs in eval mode (planning, latency) but raises while training: a user's module that fails mid-trial."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(nn.init.ones_(nn.Parameter(__import__("torch").empty(channels))))

    def forward(self, x: Any) -> Any:
        if self.training and not x.is_meta:
            raise RuntimeError("flaky block exploded")
        return x * self.scale.view(1, -1, 1, 1)
