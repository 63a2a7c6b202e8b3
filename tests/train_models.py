"""A tiny classifier for the training tests (batch norm and dropout, so running statistics and the dropout
generator are part of what resuming must reproduce), and the tiny dataset they share."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from blockstitch.train import Recipe, make_shapes_dataset

RECIPE = {"epochs": 2, "batch": 4, "lr": 3e-3, "warmup_epochs": 0.5, "threads": 1}


class TinyNet(nn.Module):
    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.Conv2d(8, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.features(x)))


def tiny_net(init_seed: int = 0, classes: int = 3) -> TinyNet:
    torch.manual_seed(init_seed)
    return TinyNet(classes)


def tiny_data(root: Path) -> Path:
    return make_shapes_dataset(root, classes=3, train_per_class=6, val_per_class=3, size=16, seed=1)


def recipe(**change: object) -> Recipe:
    return Recipe(**{**RECIPE, **change})


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
