"""Counting on meta tensors: FLOPs per node with torch's own formulas, every other op listed, bytes summed.

The one counting place: the profiler, stitch's shape recording, bench's training FLOPs and the adapters for
third-party modules all count with :class:`OpCounter`. A new op formula touches this file only: an exact one
for an op torch's counter does not know goes into :data:`FORMULAS` (taught to torch's ``flop_registry``, so
``FlopCounterMode`` agrees), a rough one for an op that only costs elementwise work into the estimate below.

A ``TorchDispatchMode`` sees each aten op after autograd's decompositions, so ``q @ k.T``, ``einsum``,
``Linear`` over tokens and SDPA all arrive as the ops that really run (``bmm``, ``addmm``, the SDPA kernels),
whose FLOPs come from ``torch.utils.flop_counter``'s formula registry. Ops without a formula that still cost
something (norms, softmax, elementwise, interpolation) are counted by name with a rough estimate of their
FLOPs, reported apart and labelled as an estimate.
"""

from __future__ import annotations

import math
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import flop_registry, register_flop_formula

__all__ = ["OpCounter", "estimate_flops", "FORMULAS", "register_formulas"]

aten = torch.ops.aten

# Ops that move no data and compute nothing (views, metadata, allocation of uninitialised memory).
_FREE = {
    "view", "_unsafe_view", "reshape", "t", "transpose", "permute", "expand", "squeeze", "unsqueeze", "detach",
    "alias", "as_strided", "slice", "select", "split", "split_with_sizes", "unbind", "chunk", "empty", "empty_like",
    "empty_strided", "new_empty", "new_empty_strided", "zeros", "zeros_like", "ones", "ones_like", "full",
    "scalar_tensor", "lift_fresh", "_to_copy", "clone", "contiguous", "copy_", "flatten", "unflatten", "narrow",
    "_reshape_alias", "expand_as", "view_as", "resize_", "fill_", "zero_", "arange", "lift_fresh_copy",
}

# FLOPs per output element, for the estimate of uncounted ops (a norm reads a mean and a variance, softmax an
# exp, a sum and a division…). Anything else elementwise counts 1 per output element.
_PER_ELEMENT = {
    "native_batch_norm": 4, "_native_batch_norm_legit": 4, "_native_batch_norm_legit_no_training": 2,
    "native_layer_norm": 5, "native_group_norm": 5, "_softmax": 5, "_log_softmax": 5, "softmax": 5,
    "gelu": 8, "silu": 4, "sigmoid": 4, "hardswish": 3, "hardsigmoid": 2, "tanh": 4, "mish": 8, "exp": 1,
    "upsample_bilinear2d": 8, "upsample_bicubic2d": 32, "upsample_nearest2d": 0, "_upsample_bilinear2d_aa": 8,
    "cat": 0, "stack": 0, "constant_pad_nd": 0, "index": 0, "gather": 0,
}


def _deform_conv2d(input_shape: Any, weight_shape: Any, *args: Any, out_shape: Any, **kwargs: Any) -> int:
    """``torchvision::deform_conv2d``: the convolution it computes (2 × output elements × in/groups × kh × kw);
    the bilinear sampling is elementwise and counts zero, like interpolation elsewhere."""
    return 2 * math.prod(out_shape) * weight_shape[1] * weight_shape[2] * weight_shape[3]


FORMULAS: dict[str, tuple[str, Callable[..., int]]] = {
    "torchvision::deform_conv2d": ("torchvision", _deform_conv2d),
}
"""Exact FLOP formulas for ops torch's counter does not know: qualified op name → (the package that defines
the op, the formula over input and output shapes, as ``torch.utils.flop_counter.register_flop_formula``
takes it)."""


def register_formulas() -> None:
    """Teach torch's ``flop_registry`` every formula of :data:`FORMULAS` whose package is imported (nothing is
    imported here); idempotent. Every :class:`OpCounter` calls it; a block that builds such an op calls it too.

    >>> import torchvision; register_formulas()
    >>> torch.ops.torchvision.deform_conv2d in torch.utils.flop_counter.flop_registry
    True
    """
    for name, (package, formula) in FORMULAS.items():
        if package not in sys.modules:
            continue
        namespace, _, op_name = name.partition("::")
        op = getattr(getattr(torch.ops, namespace), op_name)
        if op not in flop_registry:
            register_flop_formula(op)(formula)


def _numel(value: Any) -> int:
    leaves, _ = tree_flatten(value)
    return sum(t.numel() for t in leaves if isinstance(t, torch.Tensor))


def estimate_flops(op: str, args: tuple[Any, ...], out: Any) -> int:
    """A rough FLOP estimate for an op torch's counter does not count (pooling reads its window)."""
    if op in ("max_pool2d_with_indices", "avg_pool2d", "max_pool2d"):
        kernel = args[1] if len(args) > 1 else (1, 1)
        kernel = kernel if isinstance(kernel, (list, tuple)) else (kernel, kernel)
        return _numel(out[0] if isinstance(out, tuple) else out) * math.prod(kernel)
    if op in ("_adaptive_avg_pool2d", "adaptive_max_pool2d", "mean", "sum", "amax"):
        return _numel(args[0])
    return _numel(out) * _PER_ELEMENT.get(op, 1)


class OpCounter(TorchDispatchMode):
    """Counts FLOPs, uncounted ops and produced bytes, attributed to the innermost tracked module."""

    def __init__(self) -> None:
        super().__init__()
        register_formulas()
        self.stack: list[str] = []
        self.flops: dict[str, int] = defaultdict(int)
        self.flops_by_op: Counter[str] = Counter()
        self.uncounted: dict[str, Counter[str]] = defaultdict(Counter)
        self.estimate: dict[str, int] = defaultdict(int)
        self.bytes: dict[str, int] = defaultdict(int)

    def track(self, modules: Iterable[tuple[str, torch.nn.Module]]) -> list[Any]:
        """Attribute work inside each of these modules to its name; returns the hook handles to remove."""
        def enter(name: str):  # type: ignore[no-untyped-def]
            def hook(module: torch.nn.Module, args: Any) -> None:
                self.stack.append(name)
            return hook

        def leave(module: torch.nn.Module, args: Any, out: Any) -> None:  # a hook returning a value replaces out
            self.stack.pop()

        handles = []
        for name, module in modules:
            handles.append(module.register_forward_pre_hook(enter(name)))
            handles.append(module.register_forward_hook(leave))
        return handles

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Count everything inside as work of ``name`` (the planner enters this around each step's forward)."""
        self.stack.append(name)
        try:
            with self:
                yield
        finally:
            self.stack.pop()

    @property
    def total_flops(self) -> int:
        """FLOPs of everything counted so far, with torch's own formulas (what ``FlopCounterMode`` totals).

        >>> with OpCounter() as counter, torch.no_grad():
        ...     torch.nn.Linear(8, 4, device="meta")(torch.empty(2, 8, device="meta"))
        >>> counter.total_flops, counter.macs
        (128, 64)
        """
        return sum(self.flops.values())

    @property
    def macs(self) -> int:
        """Multiply-accumulates: half the FLOPs (FLOPs = 2 × MACs)."""
        return self.total_flops // 2

    @property
    def where(self) -> str:
        """Name of the module running now ('' outside every tracked module)."""
        return self.stack[-1] if self.stack else ""

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        op = packet.__name__
        where = self.where
        if packet in flop_registry:
            flops = int(flop_registry[packet](*args, **kwargs, out_val=out))
            self.flops[where] += flops
            self.flops_by_op[op] += flops
        elif op.rstrip("_") not in _FREE and not func.is_view:
            name = op.rstrip("_") if op.endswith("_") and not op.startswith("_") else op
            self.uncounted[where][name] += 1
            self.estimate[where] += estimate_flops(name, args, out)
        inplace = op.endswith("_") and not op.startswith("_")  # writes into its input: nothing new is held
        if not func.is_view and not inplace:
            leaves, _ = tree_flatten(out)
            self.bytes[where] += sum(t.numel() * t.element_size() for t in leaves if isinstance(t, torch.Tensor))
        return out
