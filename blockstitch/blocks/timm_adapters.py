"""timm as a source of blocks: every attention type `timm.layers.create_attn` offers, and timm backbones with
one named output per stage (a U-Net can take a timm encoder and wire its decoder by name)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from ..blockspec import BlockCard, BlockSpec, Shape
from ..errors import ShapeError, SpecError, did_you_mean
from ..registry import register_block

__all__ = ["TimmAttnSpec", "TimmBackboneSpec"]

AttnType = Literal["se", "ese", "eca", "ecam", "ceca", "ge", "gc", "gca", "cbam", "lcbam", "coord", "scoord", "ela",
                   "strip", "sk", "splat", "lambda", "bottleneck", "halo", "nl", "bat"]
Plain = int | float | bool | str


def _meta_run(build: Any, in_shapes: Sequence[Shape], kind: str) -> tuple[Any, int]:
    """Run a third-party module on meta tensors: its output and its counted MACs (timm gives no formula)."""
    from ..counting import OpCounter  # pulls in triton: only when counting

    try:
        with torch.device("meta"):
            module = build().eval()
        with OpCounter() as counter, torch.no_grad():
            out = module(*[torch.empty(s, device="meta") for s in in_shapes])
    except (RuntimeError, ValueError, TypeError, AssertionError, IndexError) as err:
        raise ShapeError(f"timm's module for '{kind}' fails at this input: {str(err).splitlines()[0] or type(err)}",
                         in_shapes=in_shapes, hint="check its arguments (`args:`) and the input size") from None
    return out, counter.macs


@register_block
class TimmAttnSpec(BlockSpec):
    """Any attention module of `timm.layers.create_attn` (se, eca, cbam, gc, coord, halo, …), channels bound."""

    kind: Literal["timm_attn"] = "timm_attn"
    card = BlockCard("adapter")
    type: AttnType = "se"
    """timm's attention type name."""
    args: dict[str, Plain] = Field(default_factory=dict)
    """Extra constructor arguments (plain values only), e.g. {rd_ratio: 0.25}."""

    def _build(self, channels: int) -> nn.Module:
        from timm.layers import create_attn  # timm is imported when a spec uses it, not to list the kind

        module = create_attn(self.type, channels, **self.args)
        if module is None:
            raise SpecError(f"timm returned no module for attention type '{self.type}'")
        return module

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        self.expect_rank(in_shapes, 4, "b c h w")
        out, _ = _meta_run(lambda: self._build(in_shapes[0][1]), in_shapes, f"timm_attn/{self.type}")
        return tuple(out.shape)

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        """Counted on meta tensors (timm gives no formula); equal to what the profiler counts."""
        return int(_meta_run(lambda: self._build(in_shapes[0][1]), in_shapes, f"timm_attn/{self.type}")[1])

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        return self._build(in_shapes[0][1])

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"type": "gc"}, [[(2, 16, 7, 7)], [(1, 16, 9, 5)]]


@lru_cache(maxsize=32)
def _feature_names(model: str, out_indices: tuple[int, ...] | None) -> tuple[str, ...]:
    import timm

    with torch.device("meta"):
        backbone = timm.create_model(model, pretrained=False, features_only=True,
                                     **({"out_indices": out_indices} if out_indices is not None else {}))
    return tuple(name.replace(".", "_") for name in backbone.feature_info.module_name())


@register_block
class TimmBackboneSpec(BlockSpec):
    """A timm model as a feature extractor (`features_only`): one named output per stage, e.g. `enc.layer3`.

    Weights start random (nothing is downloaded); load a local file with an edit spec's `weights:`.
    """

    kind: Literal["timm_backbone"] = "timm_backbone"
    card = BlockCard("adapter")
    model: str
    """timm model name, e.g. resnet34, convnext_tiny."""
    out_indices: list[int] | None = None
    """Which stages to output (timm's out_indices); default all."""

    def _indices(self) -> tuple[int, ...] | None:
        """The chosen stages, each checked against the stages the model has (timm would fail with a bare
        IndexError or assert)."""
        import timm

        if self.model not in timm.list_models():
            raise SpecError(f"timm has no model '{self.model}'{did_you_mean(self.model, timm.list_models())}")
        if self.out_indices is None:
            return None
        stages = len(_feature_names(self.model, None))
        bad = [i for i in self.out_indices if not -stages <= i < stages]
        if bad or len(set(self.out_indices)) != len(self.out_indices):
            raise SpecError(f"out_indices {self.out_indices} do not name distinct stages of {self.model}",
                            path="out_indices", expected=f"distinct indices from 0 to {stages - 1} "
                                                         f"(or -{stages} to -1): it has {stages} stages",
                            found=", ".join(map(str, bad)) or "a repeated index")
        return tuple(self.out_indices)

    def output_names(self) -> tuple[str, ...]:
        return _feature_names(self.model, self._indices())

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        import timm

        self._indices()
        kwargs = {"out_indices": self._indices()} if self.out_indices is not None else {}
        return timm.create_model(self.model, pretrained=False, features_only=True, in_chans=in_shapes[0][1],
                                 **kwargs)

    def out_shapes(self, in_shapes: Sequence[Shape]) -> list[Shape]:
        self.expect_rank(in_shapes, 4, "b c h w")
        outs, _ = _meta_run(lambda: self.build(in_shapes), in_shapes, f"timm_backbone/{self.model}")
        return [tuple(o.shape) for o in outs]

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        return self.out_shapes(in_shapes)[-1]

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        """Counted on meta tensors, like the profiler does."""
        return int(_meta_run(lambda: self.build(in_shapes), in_shapes, f"timm_backbone/{self.model}")[1])

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {"model": "resnet10t", "out_indices": [1, 2]}, [[(2, 3, 32, 32)], [(1, 3, 40, 24)]]
