"""Copy a reference model's weights into an assembled network: by name, else by structure, one to one.

Tensors (parameters *and* buffers such as BatchNorm's running statistics) whose names exist on both sides
with the same shape are copied by name. The rest are paired by structure: in order, or — when the two
sides list them in a different order — in order within each shape. Anything left over on either side means
the networks are not the same architecture, and nothing is copied unless you asked for a partial copy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from .errors import BlockstitchError, fmt_shape

__all__ = ["TransferError", "TransferReport", "transfer_weights"]


class TransferError(BlockstitchError, ValueError):
    """The two networks do not correspond tensor for tensor."""


@dataclass
class TransferReport:
    """What :func:`transfer_weights` copied, and how each tensor was matched."""

    by_name: list[str] = field(default_factory=list)
    """Destination names copied from the source tensor of the same name."""
    by_structure: list[tuple[str, str]] = field(default_factory=list)
    """(source name, destination name) pairs matched by position and shape."""
    unmatched_src: list[str] = field(default_factory=list)
    """Source tensors with no counterpart (only with ``strict=False``)."""
    unmatched_dst: list[str] = field(default_factory=list)
    """Destination tensors left as they were (only with ``strict=False``)."""
    elements: int = 0
    """Number of values copied."""

    @property
    def complete(self) -> bool:
        """True when every tensor on both sides was matched."""
        return not self.unmatched_src and not self.unmatched_dst

    def __str__(self) -> str:
        n = len(self.by_name) + len(self.by_structure)
        text = (f"copied {n} tensors ({self.elements:,} values): {len(self.by_name)} by name, "
                f"{len(self.by_structure)} by structure")
        if not self.complete:
            text += (f"; NOT copied: {len(self.unmatched_src)} source and {len(self.unmatched_dst)} destination "
                     "tensors without a counterpart")
        return text


def _describe(names: list[str], tensors: Mapping[str, torch.Tensor], limit: int = 6) -> str:
    shown = ", ".join(f"{n} {fmt_shape(tensors[n].shape)}" for n in names[:limit])
    return shown + (f", … ({len(names) - limit} more)" if len(names) > limit else "")


def _pair_by_structure(src_names: list[str], dst_names: list[str], src: Mapping[str, torch.Tensor],
                       dst: Mapping[str, torch.Tensor]) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """Pair in order when the shapes line up; else in order within each shape. Returns pairs and leftovers."""
    if len(src_names) == len(dst_names) and all(
            src[a].shape == dst[b].shape for a, b in zip(src_names, dst_names)):
        return list(zip(src_names, dst_names)), [], []
    by_shape: dict[tuple[int, ...], list[str]] = defaultdict(list)
    for name in src_names:
        by_shape[tuple(src[name].shape)].append(name)
    pairs, left_dst = [], []
    for name in dst_names:
        queue = by_shape.get(tuple(dst[name].shape))
        if queue:
            pairs.append((queue.pop(0), name))
        else:
            left_dst.append(name)
    unpaired = {m for queue in by_shape.values() for m in queue}
    left_src = [n for n in src_names if n in unpaired]
    return pairs, left_src, left_dst


def transfer_weights(src: nn.Module | Mapping[str, torch.Tensor], dst: nn.Module, *,
                     strict: bool = True) -> TransferReport:
    """Copy every tensor of ``src`` (a module or a state_dict) into ``dst``, and report how each matched.

    Raises :class:`TransferError` — copying nothing — when the two do not correspond one to one, naming the
    tensors without a counterpart; with ``strict=False`` it copies what corresponds and lists the rest in the
    report (``report.complete`` is then False).

    >>> report = transfer_weights(torchvision.models.vgg16(), blockstitch.build("vgg16"))
    >>> print(report)
    copied 32 tensors (138,357,544 values): 0 by name, 32 by structure
    """
    src_sd = dict(src.state_dict() if isinstance(src, nn.Module) else src)
    dst_sd = dst.state_dict()
    report = TransferReport()
    misfit = [n for n in dst_sd if n in src_sd and src_sd[n].shape != dst_sd[n].shape]
    if misfit and strict:
        raise TransferError("tensors of the same name differ in shape — not the same architecture: " + "; ".join(
            f"{n}: source {fmt_shape(src_sd[n].shape)}, destination {fmt_shape(dst_sd[n].shape)}" for n in misfit[:6]))
    named = [n for n in dst_sd if n in src_sd and n not in misfit]
    rest_src = [n for n in src_sd if n not in dst_sd or n in misfit]
    rest_dst = [n for n in dst_sd if n not in src_sd or n in misfit]
    pairs, left_src, left_dst = _pair_by_structure(rest_src, rest_dst, src_sd, dst_sd)
    if (left_src or left_dst) and strict:
        raise TransferError(
            f"{len(left_src)} source and {len(left_dst)} destination tensors have no counterpart — not the same "
            f"architecture (nothing was copied).\n  only in source: {_describe(left_src, src_sd) or '—'}"
            f"\n  only in destination: {_describe(left_dst, dst_sd) or '—'}")
    with torch.no_grad():
        for name in named:
            dst_sd[name].copy_(src_sd[name])
            report.elements += dst_sd[name].numel()
        for a, b in pairs:
            dst_sd[b].copy_(src_sd[a])
            report.elements += dst_sd[b].numel()
    report.by_name, report.by_structure = named, pairs
    report.unmatched_src, report.unmatched_dst = left_src, left_dst
    return report
