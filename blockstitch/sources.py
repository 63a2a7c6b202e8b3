"""Networks that come from elsewhere: timm models by name, built with random weights (never downloaded)."""

from __future__ import annotations

import timm
import torch
from torch import nn

from .errors import SpecError, did_you_mean

__all__ = ["timm_model"]


def timm_model(name: str, device: torch.device | str | None = None, **kwargs: object) -> nn.Module:
    """``timm.create_model(name, pretrained=False)``, with a clear error (and the nearest name) for a typo.

    >>> timm_model("resnet50", device="meta").fc.out_features
    1000
    """
    if name not in timm.list_models():
        raise SpecError(f"timm has no model '{name}'{did_you_mean(name, timm.list_models())}",
                        hint="`python -c 'import timm; print(timm.list_models(\"*resnet*\"))'` lists names")
    if device is None:
        return timm.create_model(name, pretrained=False, **kwargs)
    with torch.device(device):
        return timm.create_model(name, pretrained=False, **kwargs)
