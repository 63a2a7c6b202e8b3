"""Required fields a block's place shows: an output width bound to the input's, and the paper's own default for
a hyperparameter the paper fixes (Swin: heads = dim / 32), so a kind checks or stitches without arguments.

Every value filled in is named in a note, which check-module and the stitch report print.

>>> fill_required(get_block("swin_block"), {}, 128)
({'heads': 4}, ['heads = 4 (Swin: dim / 32)'])
>>> fill_required(get_block("c2f"), {"n": 2}, 64)
({'n': 2, 'out_channels': 64}, ['out_channels = 64 (the input width: keeps the shape)'])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError
from torch import nn

from .blockspec import BlockSpec, Shape
from .errors import pydantic_error

__all__ = ["PAPER_DEFAULTS", "WIDTH_FIELDS", "fill_required", "filled_factory", "fit_groups", "missing_required"]

WIDTH_FIELDS = ("out_channels", "out_features", "num_classes")
"""Required output widths, bound to the input's width (the block keeps the shape where its stride allows)."""


def _divisor_at_most(channels: int, cap: int) -> int:
    return next(d for d in range(max(1, cap), 0, -1) if channels % d == 0)


PAPER_DEFAULTS: dict[tuple[str, str], tuple[Callable[[int], Any], str]] = {
    ("swin_block", "heads"): (lambda c: _divisor_at_most(c, c // 32), "Swin: dim / 32"),
    ("dense_block", "layers"): (lambda c: 6, "DenseNet-121's first block"),
    ("inception", "ch1x1"): (lambda c: 64, "GoogLeNet inception (3a)"),
    ("inception", "ch3x3red"): (lambda c: 96, "GoogLeNet inception (3a)"),
    ("inception", "ch3x3"): (lambda c: 128, "GoogLeNet inception (3a)"),
    ("inception", "ch5x5red"): (lambda c: 16, "GoogLeNet inception (3a)"),
    ("inception", "ch5x5"): (lambda c: 32, "GoogLeNet inception (3a)"),
    ("inception", "pool_proj"): (lambda c: 32, "GoogLeNet inception (3a)"),
    ("rearrange", "pattern"): (lambda c: "b c h w -> b c h w", "the identity pattern"),
    ("timm_backbone", "model"): (lambda c: "resnet18", "a small timm model, random weights"),
}
"""(kind, field) → (value from the input width, where the value comes from) for required hyperparameters."""


def missing_required(spec_cls: type[BlockSpec], given: Mapping[str, Any]) -> list[str]:
    """Required fields of ``spec_cls`` (other than ``kind``) that ``given`` lacks."""
    return [name for name, field in spec_cls.model_fields.items()
            if field.is_required() and name != "kind" and name not in given]


def fill_required(spec_cls: type[BlockSpec], given: Mapping[str, Any], channels: int) -> tuple[dict[str, Any],
                                                                                                list[str]]:
    """``given`` plus a value for each required field it lacks that the input width or the paper decides, and a
    note for each; fields nobody can decide stay missing (validation names them)."""
    kind = str(spec_cls.model_fields["kind"].default)
    filled, notes = dict(given), []
    for name in missing_required(spec_cls, given):
        if name in WIDTH_FIELDS:
            filled[name] = channels
            notes.append(f"{name} = {channels} (the input width: keeps the shape)")
        elif (kind, name) in PAPER_DEFAULTS:
            make, source = PAPER_DEFAULTS[(kind, name)]
            filled[name] = make(channels)
            notes.append(f"{name} = {filled[name]!r} ({source})" if isinstance(filled[name], str)
                         else f"{name} = {filled[name]} ({source})")
    return filled, notes


def fit_groups(spec: BlockSpec, channels: int) -> tuple[BlockSpec, list[str]]:
    """``spec`` with its default group count (``groups``; EPSANet's ``conv_groups``, halved together) lowered to
    the largest that divides ``channels`` (as its ``channel_multiple`` requires), and a note; unchanged when the
    field was given, fits, or the block has none.
    A group count the user wrote is never changed: a misfit then stays a located refusal.

    >>> spec, notes = fit_groups(get_block("shuffle_attn").model_validate({"kind": "shuffle_attn"}), 64)
    >>> spec.groups, notes
    (32, ['groups = 32 (the default 64 needs channels a multiple of 128; 64 are not)'])
    """
    multiple = getattr(spec, "channel_multiple", 1)
    if isinstance(multiple, bool) or not isinstance(multiple, int) or channels % multiple == 0:
        return spec, []
    groups = getattr(spec, "groups", None)
    tried: list[tuple[str, Any, Any]] = []  # (field, value to try, its default)
    if isinstance(groups, int) and "groups" not in spec.model_fields_set:
        tried = [("groups", g, groups) for g in range(groups - 1, 0, -1)]
    conv_groups = getattr(spec, "conv_groups", None)  # EPSANet's (1, 4, 8, 16): halved together
    if isinstance(conv_groups, tuple) and "conv_groups" not in spec.model_fields_set:
        step = conv_groups
        while any(g > 1 for g in step):
            step = tuple(max(1, g // 2) for g in step)
            tried.append(("conv_groups", step, conv_groups))
    for field, value, default in tried:
        fitted = spec.model_copy(update={field: value})
        if channels % fitted.channel_multiple == 0:  # type: ignore[attr-defined]
            shown = "(" + ", ".join(map(str, value)) + ")" if isinstance(value, tuple) else value
            was = "(" + ", ".join(map(str, default)) + ")" if isinstance(default, tuple) else default
            return fitted, [f"{field} = {shown} (the default {was} needs channels a multiple of {multiple}; "
                            f"{channels} are not)"]
    return spec, []


def filled_factory(cls: type[BlockSpec], kind: str, args: dict[str, Any]) -> Callable[[Shape, str, int], nn.Module]:
    """check-module's factory for a kind whose required fields are bound from each input (see
    :func:`fill_required`); a field given wrong is a located usage error now, not at check time.

    >>> filled_factory(get_block("c2f"), "c2f", {})((1, 32, 8, 8), "b c h w", 32).cv2.conv.out_channels
    32
    """
    try:
        cls.model_validate({"kind": kind, **fill_required(cls, args, 64)[0]})
    except ValidationError as err:
        problem = pydantic_error(err, model=cls)
        problem.message, problem.path = f"'{kind}': {problem.message}", f"--arg {problem.path or kind}"
        raise problem.located() from None

    def factory(shape: Shape, layout: str, channels: int) -> nn.Module:
        spec = cls.model_validate({"kind": kind, **fill_required(cls, args, channels)[0]})
        return spec.with_layout(layout).build([shape])

    return factory
