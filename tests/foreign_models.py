"""Models nobody here wrote, as users bring them: built with random weights, each already run for real once
(so caches, anchors, counters and hooks hold what a real forward leaves behind). Nothing is downloaded."""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import nn

os.environ.setdefault("YOLO_OFFLINE", "1")


class GridCache(nn.Module):
    """A paper-style module: caches a position grid as a plain tensor attribute, appends to a list and counts
    calls inside forward — all of which a shape run must not leave behind."""

    def __init__(self, c1: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c1, 3, padding=1)
        self.bn = nn.BatchNorm2d(c1)
        self.grid: torch.Tensor | None = None
        self.scale = torch.tensor([0.5, 2.0])
        self.seen: list[tuple[int, ...]] = []
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.seen.append(tuple(x.shape))
        if self.grid is None or self.grid.shape[-2:] != x.shape[-2:]:
            h, w = x.shape[-2:]
            ys, xs = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
            self.grid = torch.stack([ys, xs]).float()
        return self.bn(self.conv(x)) + self.grid.mean() * 0


def yolov8n() -> tuple[nn.Module, tuple[int, ...]]:
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel("yolov8n.yaml", verbose=False).eval()
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))  # anchors and strides cached for 64×64
    return model, (3, 64, 64)


def deeplab() -> tuple[nn.Module, tuple[int, ...]]:
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large

    model = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=4).eval()
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
    return model, (3, 64, 64)


def detector() -> tuple[nn.Module, tuple[int, ...]]:
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn

    model = fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None, num_classes=3, min_size=96,
                                              max_size=96, rpn_pre_nms_top_n_test=50, rpn_post_nms_top_n_test=20,
                                              box_detections_per_img=10).eval()
    with torch.no_grad():
        model([torch.rand(3, 96, 96)])
    return model, (3, 96, 96)


def timm_with_hook() -> tuple[nn.Module, tuple[int, ...]]:
    import timm

    model = timm.create_model("resnet18", num_classes=10).eval()
    model.features_seen = []  # type: ignore[attr-defined]
    model.layer2.register_forward_hook(lambda m, a, out: model.features_seen.append(out.shape))
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32))
    return model, (3, 32, 32)


def grid_cache() -> tuple[nn.Module, tuple[int, ...]]:
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), GridCache(16), nn.ReLU()).train()
    model(torch.randn(2, 3, 12, 12)).sum().backward()  # grads, BN statistics, cache and counters all filled
    return model, (3, 12, 12)


MODELS: dict[str, Callable[[], tuple[nn.Module, tuple[int, ...]]]] = {
    "yolov8n": yolov8n, "lraspp": deeplab, "fasterrcnn": detector, "timm_hook": timm_with_hook,
    "grid_cache": grid_cache,
}
"""name → factory returning (model after one real forward, its input shape without the batch)."""

STITCH_AT = {"yolov8n": "model.[2468]", "lraspp": "backbone.4", "fasterrcnn": "backbone.body.3",
             "timm_hook": "layer*", "grid_cache": "1"}
"""A path glob of each model where a shape-keeping block can be inserted."""
