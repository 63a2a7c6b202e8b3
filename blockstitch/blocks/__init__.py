"""Built-in blocks, one family per file; importing this package registers them all.

Each family file holds its pydantic spec(s) and module(s) side by side. Factories for norms and
activations live in :mod:`blockstitch.blocks.layers`; shape/MAC arithmetic in :mod:`blockstitch.blocks.ops`.
"""

from . import (  # noqa: F401  (imported to register the blocks)
    attention,
    conv,
    convnext,
    deeplab,
    densenet,
    efficientnet,
    embed,
    heads,
    inception,
    layout,
    linear,
    merge,
    mobilenet,
    norm_act,
    pool,
    residual,
    self_attention,
    swin,
    timm_adapters,
    transformer,
    upsample,
    vgg,
)
from . import library  # noqa: F401,E402  (the verified module library; registers its blocks)
from .layers import get_act, get_norm

__all__ = ["get_act", "get_norm"]
