"""Shape propagation: each node's spec computes its output shape, then its module runs on meta tensors.

Nothing here allocates a weight or an activation: modules are built on the ``meta`` device. The analytic
shape and the module's actual shape must agree (a disagreement is a bug in that block, reported as such).
``verify=False`` trusts the analytic shapes of blockstitch's own blocks and skips their meta forwards
(``blockstitch check`` without ``--verify``): the tests pin each such rule against its module, and the start
is a second faster. Plugin and user blocks always run on meta.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext

import torch

from ..blocks.layout import bridge
from ..blockspec import LAYOUTS, BlockSpec, TensorInfo
from ..meta import on_meta
from ..errors import BlockstitchError, ShapeError, SpecError, fmt_shape
from .graph import wire
from .limits import MAX_INPUT_DIM, MAX_INPUT_ELEMENTS
from .plan import Plan, Step
from .spec import Network, Node, Origin

__all__ = ["make_plan"]


def _input_info(net: Network, input_shape: Sequence[int] | None, batch: int) -> TensorInfo:
    shape = tuple(net.input if input_shape is None else input_shape)
    if len(shape) != len(net.input):
        raise SpecError(f"--input has {len(shape)} dims but the spec's input has {len(net.input)}", file=net.file,
                        path="input", expected=fmt_shape(net.input), found=fmt_shape(shape))
    if batch < 1 or any(int(s) < 1 for s in shape):
        raise SpecError("sizes must be positive", file=net.file, path="input",
                        found=f"batch {batch}, input {fmt_shape(shape)}")
    if any(int(s) > MAX_INPUT_DIM for s in shape) or math.prod(int(s) for s in shape) > MAX_INPUT_ELEMENTS:
        raise SpecError(f"input {fmt_shape(shape)} is too large (each size ≤ {MAX_INPUT_DIM:,}, at most "
                        f"{MAX_INPUT_ELEMENTS:,} elements per sample)", file=net.file, path="input",
                        hint="limits before loops: see SECURITY.md")
    return TensorInfo((batch, *(int(s) for s in shape)), net.input_layout)


StepContext = Callable[[str], AbstractContextManager[object]]
"""Entered around each step's meta forward (not its construction), e.g. to count its ops."""


def _own(spec: BlockSpec) -> bool:
    """A block of blockstitch's own, whose shape rule its tests pin against its module (plugins' are not)."""
    return type(spec).__module__.split(".")[0] == "blockstitch"


def _run(name: str, spec: BlockSpec, inputs: Sequence[str], infos: Sequence[TensorInfo], origin: Origin | None,
         bridge_step: bool = False, observe: StepContext | None = None, verify: bool = True) -> Step:
    in_shapes = tuple(i.shape for i in infos)
    where = origin.where() if origin is not None else {}
    verify = verify or not _own(spec)
    try:
        layout = spec.out_layout(infos[0].layout)
        out_shape = tuple(spec.out_shape(in_shapes))
        macs = int(spec.macs(in_shapes))
        with on_meta():
            module = spec.build(in_shapes)
        module.eval()
        if verify:
            xs = [torch.empty(s, device="meta") for s in in_shapes]
            with torch.no_grad(), (observe(name) if observe is not None else nullcontext()):
                out = module(*xs)
    except ShapeError as err:
        err.located(node=name, in_shapes=in_shapes, **where)
        err.in_names = list(inputs)
        raise
    except SpecError as err:
        raise err.located(node=name, **where)
    except (RuntimeError, ValueError, TypeError, IndexError) as err:
        bad = ShapeError(f"'{spec.kind}' failed on its input: {str(err).splitlines()[0]}", node=name,
                         in_shapes=in_shapes, **where)
        bad.in_names = list(inputs)
        raise bad from err
    taps: dict[str, TensorInfo] = {}
    if spec.output_names():
        shapes = [tuple(s) for s in spec.out_shapes(in_shapes)]
        if verify:
            got_shapes = [tuple(t.shape) for t in out] if isinstance(out, (list, tuple)) else []
            if got_shapes != shapes:
                raise BlockstitchError(f"bug in block '{spec.kind}': its spec says outputs {shapes} but its module "
                                       f"returned {got_shapes or type(out).__name__}")
            out = out[-1]
        taps = {f"{name}.{o}": TensorInfo(sh, layout) for o, sh in zip(spec.output_names(), shapes)}
    if LAYOUTS.get(layout) != len(out_shape):
        raise BlockstitchError(f"bug in block '{spec.kind}' ({type(spec).__module__}): its spec says "
                               f"{fmt_shape(out_shape)} in layout '{layout}', which has {LAYOUTS.get(layout)} dims")
    if verify and (not isinstance(out, torch.Tensor) or tuple(out.shape) != out_shape):
        got = fmt_shape(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise BlockstitchError(f"bug in block '{spec.kind}' ({type(spec).__module__}): its spec says "
                               f"{fmt_shape(out_shape)} ({layout}) but its module returned {got} "
                               f"for inputs {', '.join(fmt_shape(s) for s in in_shapes)}")
    grid, prefix = spec.out_tokens(infos, out_shape) if layout == "b n c" else (None, 0)
    params = sum(p.numel() for p in module.parameters())
    return Step(name, spec, tuple(inputs), in_shapes, TensorInfo(out_shape, layout, grid, prefix), params, macs,
                origin, bridge_step, module, taps)


def _bridge(node: Node, src: str, info: TensorInfo, accepted: Sequence[str], suffix: str,
            observe: StepContext | None, verify: bool) -> Step:
    errors: list[ShapeError] = []
    for layout in accepted:
        try:
            spec = bridge(info, layout).with_layout(info.layout)
        except ShapeError as err:
            errors.append(err)
            continue
        return _run(f"{node.id}_bridge{suffix}", spec, (src,), (info,), node.origin, True, observe, verify)
    failure = errors[0] if errors else ShapeError(f"no bridge from '{info.layout}'")
    failure.message = (f"'{node.spec.kind}' takes layout {' or '.join(accepted)} but '{src}' gives {info.layout}: "
                       + failure.message)
    raise failure.located(node=node.id, **node.origin.where())


def make_plan(net: Network, input_shape: Sequence[int] | None = None, batch: int = 1,
              observe: StepContext | None = None, verify: bool = True) -> Plan:
    """Wire the network, then propagate shapes node by node on meta tensors into a :class:`Plan`.

    ``observe(step_name)`` is entered around each step's meta forward (the profiler counts ops there).
    ``verify=False`` skips the meta forwards of blockstitch's own blocks: their shapes and MACs come from their
    specs' rules (which the tests pin against each module), parameters from the module built on meta. Blocks
    registered elsewhere (plugins, user code) still run on meta. Same plan, about a second sooner on a cold start
    (torch's first meta op imports its compiler stack); ``observe`` is then entered only for the blocks that run.
    """
    order = wire(net)
    tensors = {"input": _input_info(net, input_shape, batch)}
    steps: list[Step] = []
    for node in order:
        accepted = type(node.spec).in_layouts
        inputs = []
        for k, src in enumerate(node.inputs):
            info = tensors[src]
            if accepted is not None and info.layout not in accepted:
                step = _bridge(node, src, info, accepted, str(k) if len(node.inputs) > 1 else "", observe,
                               verify)
                steps.append(step)
                tensors[step.name] = step.out
                src = step.name
            inputs.append(src)
        infos = [tensors[i] for i in inputs]
        step = _run(node.id, node.spec.with_layout(infos[0].layout), inputs, infos, node.origin, False, observe,
                    verify)
        steps.append(step)
        tensors[node.id] = step.out
        tensors.update(step.taps)
    return Plan(net.name, tensors["input"], steps, list(net.outputs), net.file, net.baseline, net.description,
                net.output_keys)


