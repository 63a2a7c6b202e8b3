"""Ultralytics' own trainers, minus one step: they do not rebuild the network from its YAML.

Ultralytics' ``DetectionTrainer.get_model`` builds a fresh ``DetectionModel`` from ``model.yaml`` and copies over
the weights whose names and shapes match — which silently drops every stitched block (the YAML does not know
them). These trainers return the stitched network itself (a copy), so everything downstream — EMA, the AMP
check, ``last.pt``/``best.pt``, resume, validation — sees the stitched blocks. When the data has another number
of classes than the network, only the class branch of the head is rebuilt (the box branch and the DFL keep their
weights), as Ultralytics does for a pretrained checkpoint.

>>> YOLO_with_blocks.train(trainer=StitchedDetectionTrainer, data="data.yaml", epochs=1)   # what to_ultralytics sets up
"""

from __future__ import annotations

import math
from copy import deepcopy
from typing import Any

from torch import nn
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.models.yolo.segment import SegmentationTrainer
from ultralytics.utils import LOGGER, RANK

from ..errors import SpecError
from .offline import stays_offline

__all__ = ["KeepsNetwork", "StitchedDetectionTrainer", "StitchedSegmentationTrainer", "match_classes"]


class KeepsNetwork:
    """Mix-in for an Ultralytics trainer: :meth:`get_model` trains the network it is given (a copy of it)."""

    data: dict[str, Any]

    def get_model(self, cfg: Any = None, weights: nn.Module | None = None, verbose: bool = True) -> nn.Module:
        """The network to train: a copy of ``weights`` (the stitched network ``YOLO.train`` or a resumed
        ``last.pt`` hands over), its head matched to the data's classes. ``cfg`` (the base YAML) is not used."""
        if not isinstance(weights, nn.Module):
            raise SpecError("a stitched network trains from itself: there is nothing to rebuild it from",
                            found=f"weights={weights!r}",
                            hint="leave `pretrained` at its default; to start from random weights, stitch into a "
                                 "network built from the YAML: subject('ultralytics:yolov8n.yaml').module(None) "
                                 "(blockstitch.subject)")
        model = deepcopy(weights).float()
        for p in model.parameters():
            p.requires_grad_(True)
        match_classes(model, int(self.data["nc"]), verbose=verbose and RANK in {-1, 0})
        model.names = self.data["names"]
        return model

    def train(self) -> None:
        """Ultralytics' training loop, offline (:mod:`blockstitch.yolo.offline`): fonts looked up locally when its
        final validation checks the dataset again, and the AMP check run on the stitched network itself."""
        with stays_offline():
            super().train()  # type: ignore[misc]

    def get_dataset(self) -> dict[str, Any]:
        """Ultralytics' dataset check, with fonts looked up locally only (:mod:`blockstitch.yolo.offline`)."""
        with stays_offline():
            return super().get_dataset()  # type: ignore[misc, no-any-return]


def match_classes(model: Any, nc: int, verbose: bool = False) -> bool:
    """Give ``model``'s head ``nc`` classes (in place): the last conv of each class branch is rebuilt for
    ``nc`` outputs, every other weight is kept. True when something changed.

    >>> match_classes(DetectionModel("yolov8n.yaml", verbose=False), 3)
    True
    """
    head: Any = model.model[-1]
    if getattr(head, "nc", nc) == nc:
        return False
    if not hasattr(head, "cv3") or not hasattr(head, "no"):
        raise SpecError(f"the network predicts {head.nc} classes and the data has {nc}; its head "
                        f"({type(head).__name__}) is not one blockstitch can resize",
                        hint="stitch into a network built for the data's classes")
    branches = [head.cv3] + ([head.one2one_cv3] if getattr(head, "one2one_cv3", None) is not None else [])
    strides = [float(s) for s in getattr(head, "stride", [])]
    for branch in branches:
        for i, seq in enumerate(branch):
            last = seq[-1]
            new = nn.Conv2d(last.in_channels, nc, last.kernel_size, last.stride, last.padding, bias=True)
            if i < len(strides) and strides[i] > 0:  # Ultralytics' prior: .01 objects per cell at 640 (bias_init)
                nn.init.constant_(new.bias, math.log(5 / nc / (640 / strides[i]) ** 2))  # type: ignore[arg-type]
            seq[-1] = new.to(last.weight.device)
    head.nc = nc
    head.no = nc + head.reg_max * 4
    model.nc = nc
    if hasattr(model, "criterion"):
        model.criterion = None  # the loss reads nc when it is made: make it again
    model.yaml = {**model.yaml, "nc": nc}
    if verbose:
        LOGGER.info(f"blockstitch: head rebuilt for {nc} classes (box branch and DFL weights kept)")
    return True


class StitchedDetectionTrainer(KeepsNetwork, DetectionTrainer):
    """Ultralytics' ``DetectionTrainer`` that trains the stitched network instead of rebuilding it."""


class StitchedSegmentationTrainer(KeepsNetwork, SegmentationTrainer):
    """Ultralytics' ``SegmentationTrainer`` that trains the stitched network instead of rebuilding it."""
