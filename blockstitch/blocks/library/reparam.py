"""Structural re-parameterisation: several branches while training, one convolution for inference.

Each module here has ``fuse()``, returning one ``nn.Conv2d`` (followed by its activation where the block has
one) that computes exactly what the eval-mode block computes; ``bs.fuse(model)`` swaps it in. ``dbb`` and
``dilated_reparam`` live in :mod:`.reparam_dbb`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import PositiveInt
from torch import nn

from ...blockspec import BlockCard, BlockSpec, Paper, Shape
from ...registry import register_block
from ..conv import ConvNormAct, resolve_groups
from ..layers import ActName, get_act
from ._parts import Tally, cna, fold_bn

__all__ = ["RepBranches", "RepVGGSpec", "RepConvSpec", "fused_conv"]


def fused_conv(like: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor, act: nn.Module | None) -> nn.Module:
    """A biased copy of ``like``'s geometry holding ``weight``/``bias``, then ``act`` (children ``conv``/``act``).

    >>> fused_conv(nn.Conv2d(4, 8, 3, padding=1), torch.zeros(8, 4, 3, 3), torch.ones(8), nn.ReLU())
    ConvNormAct((conv): Conv2d(4, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)) (act): ReLU())
    """
    conv = nn.Conv2d(like.in_channels, weight.shape[0], weight.shape[-2:], like.stride, like.padding, like.dilation,
                     like.groups, bias=True).to(weight.device, weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
    return conv if act is None or isinstance(act, nn.Identity) else ConvNormAct(conv, None, act)


class RepBranches(nn.Module):
    """``act(bn(conv_k(x)) + bn(conv_1(x)) + bn(x))``: a k×k branch, a 1×1 branch, an optional identity BN.

    Child names are Ultralytics' RepConv names (``conv1``, ``conv2``, ``bn``, ``act``), so its weights load by
    name; the order is the paper's, so RepVGG implementations in that order (fightingcv's) load by structure.
    """

    def __init__(self, cin: int, cout: int, k: int, stride: int, groups: int, act: str, identity: bool) -> None:
        super().__init__()
        # the paper's branch order (k×k, 1×1, identity): a reference in that order transfers by structure
        self.conv1 = cna(cin, cout, k, stride, k // 2, groups, act="none")
        self.conv2 = cna(cin, cout, 1, stride, 0, groups, act="none")
        self.bn = nn.BatchNorm2d(cin) if identity and cin == cout and stride == 1 else None
        self.act = get_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x) + self.conv2(x)
        if self.bn is not None:
            out = out + self.bn(x)
        return self.act(out)

    @torch.no_grad()
    def fuse(self) -> nn.Module:
        """One k×k conv (+ the activation) equal to this block in eval mode."""
        conv = self.conv1.conv
        k = int(conv.kernel_size[0])
        w, b = fold_bn(conv.weight, None, self.conv1.bn)
        w1, b1 = fold_bn(self.conv2.conv.weight, None, self.conv2.bn)
        w = w + F.pad(w1, [k // 2] * 4)
        b = b + b1
        if self.bn is not None:  # the identity as a k×k kernel with a single 1 at the centre of its own channel
            per_group = conv.in_channels // conv.groups
            eye = torch.zeros_like(w)
            idx = torch.arange(conv.in_channels, device=w.device)
            eye[idx, idx % per_group, k // 2, k // 2] = 1.0
            wi, bi = fold_bn(eye, None, self.bn)
            w, b = w + wi, b + bi
        return fused_conv(conv, w, b, self.act)


class _RepSpec(BlockSpec):
    out_channels: PositiveInt
    """Output channels."""
    kernel_size: Literal[3, 5, 7] = 3
    """Kernel of the main branch (odd; the 1×1 branch is padded to it when fused)."""
    stride: PositiveInt = 1
    """Stride of both conv branches (the identity branch exists only at stride 1 with in = out channels)."""
    groups: PositiveInt = 1
    """Channel groups of both conv branches."""

    channel_fields = ("out_channels",)

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        resolve_groups(self.groups, in_shapes[0][1], self.out_channels, self.kind)
        return Tally().conv(in_shapes[0], self.out_channels, self.kernel_size, self.stride, g=self.groups)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        t = Tally()
        t.conv(in_shapes[0], self.out_channels, self.kernel_size, self.stride, g=self.groups)
        t.conv(in_shapes[0], self.out_channels, 1, self.stride, 0, g=self.groups)
        return t.macs

    def _build(self, in_shapes: Sequence[Shape], act: str, identity: bool) -> nn.Module:
        cin = in_shapes[0][1]
        resolve_groups(self.groups, cin, self.out_channels, self.kind)
        return RepBranches(cin, self.out_channels, self.kernel_size, self.stride, self.groups, act, identity)


@register_block
class RepVGGSpec(_RepSpec):
    """RepVGG block (Ding et al., CVPR 2021): 3×3+BN, 1×1+BN and identity-BN branches summed, then ReLU;
    ``fuse()`` folds them into one 3×3 conv."""

    kind: Literal["repvgg"] = "repvgg"
    act: ActName = "relu"
    """Activation after the sum."""

    card = BlockCard(
        category="conv",
        paper=Paper("RepVGG: Making VGG-style ConvNets Great Again", "CVPR", 2021, "https://arxiv.org/abs/2101.03697"),
        aliases=("RepVGGBlock", "RepVGG", "RepBlock"),
        channel_rule="multiple_of:groups",
        insert_where="replace a 3×3 conv-BN-act (VGG-style stages, YOLOv6 backbones)",
        notes="Identity branch only at stride 1 with in = out channels, as in the paper. bs.fuse → one conv. "
              "Equal to fightingcv-attention's RepBlock at stride 1 (tests/test_library_parity.py); that "
              "RepBlock ignores `stride` in its training branches (only its deployed conv is strided), a bug.")

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return self._build(in_shapes, self.act, identity=True)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 16, "groups": 2}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]


@register_block
class RepConvSpec(_RepSpec):
    """YOLO RepConv (YOLOv6/v7, RT-DETR): RepVGG's 3×3 and 1×1 branches, the identity BN optional (off by
    default, as Ultralytics' RepConv), SiLU; ``fuse()`` gives one conv."""

    kind: Literal["repconv"] = "repconv"
    act: ActName = "silu"
    """Activation after the sum."""
    identity_bn: bool = False
    """Add the identity-BN branch (only at stride 1 with in = out channels)."""

    card = BlockCard(
        category="conv",
        paper=Paper("YOLOv7: Trainable bag-of-freebies sets new state-of-the-art for real-time object detectors",
                    "CVPR", 2023, "https://arxiv.org/abs/2207.02696"),
        aliases=("RepConv", "RepConvN"),
        channel_rule="multiple_of:groups",
        insert_where="replace a 3×3 Conv in a YOLO backbone or neck (GELAN's RepNCSP uses it)",
        notes="Parameter-for-parameter equal to ultralytics.nn.modules.RepConv (tests/test_library_parity.py); "
              "kernel_size 3 only there, 5/7 here too. bs.fuse → one conv.")

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return self._build(in_shapes, self.act, identity=self.identity_bn)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"out_channels": 24, "groups": 2}, [[(2, 16, 8, 8)], [(1, 16, 13, 9)]]
