"""`blockstitch check SPEC`: validate, propagate shapes by each block's rule (``--verify``: also on meta tensors),
print the plan — or, for an edit spec, what the edit changes and the input sizes the stitched network takes."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from .common import positive, shape_arg, stdout

if TYPE_CHECKING:
    from ..subject import Subject

NAME = "check"
HELP = "validate a spec and print its plan (shapes, params, MACs); a timm:/torchvision: model's shapes"


def arguments(p: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    p.add_argument("spec", help="a spec file, the name of a bundled spec (e.g. resnet50), or timm:<model>")
    p.add_argument("--input", type=shape_arg, default=None, metavar="C,H,W", help="input shape without batch")
    p.add_argument("--batch", type=positive, default=1, metavar="N", help="batch size (default 1)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--sizes", action="store_true",
                   help="kept for old command lines: the input sizes a stitched network accepts are now always "
                        "stated (found on meta tensors)")
    p.add_argument("--verify", action="store_true",
                   help="also run blockstitch's own blocks on meta tensors against their shape rules (plugin "
                        "blocks always run); about a second more")


def run(args: argparse.Namespace) -> int:
    """Print the plan (or the stitch report of an edit spec); 0, or a located error."""
    from ..render import render_plan, render_stitch
    from ..subject import subject

    target = subject(args.spec, accept={"spec", "edit", "timm", "torchvision", "ultralytics"})
    if target.what in ("timm", "torchvision", "ultralytics"):
        return _check_network(target, args)
    if target.what == "edit":
        report = target.report
        assert report is not None  # an edit spec always has one
        report.refuse(args.input)  # an --input it does not run at: named before anything else runs
        if args.json:
            print(json.dumps(report.to_dict(), indent=2))
        else:
            render_stitch(report, stdout())
            if args.input is not None:
                stdout().print(f"input {'×'.join(map(str, args.input))}: the stitched network runs at it (on meta "
                               "tensors)", highlight=False)
        return 0
    plan = target.plan(args.input, args.batch, verify=args.verify)
    delta = None
    if plan.baseline is not None:
        from ..errors import SpecError

        base_input = plan.input.shape[1:] if args.input is not None else None
        try:
            base = subject(plan.baseline, accept={"spec"}, input_shape=base_input)
            delta = plan.delta(base.plan(None, args.batch, verify=args.verify))
        except SpecError as e:
            raise e.located(file=plan.file, path="baseline") from None
    if args.json:
        print(json.dumps({"name": plan.name, "batch": plan.batch, "input": list(plan.input.shape),
                          "params": plan.params, "macs": plan.macs, "flops": 2 * plan.macs,
                          "outputs": [list(s) for s in plan.output_shapes()], "nodes": plan.records(),
                          "vs_baseline": delta}, indent=2))
        return 0
    out = stdout()
    render_plan(plan, out)
    if delta is not None:
        out.print(f"vs baseline [bold]{delta['baseline']}[/bold]: {delta['params']:+,} params "
                  f"({delta['params_pct']:+.2f}%), {int(delta['macs']) / 1e9:+.4f} GMACs ({delta['macs_pct']:+.2f}%)")
    return 0


def _check_network(target: Subject, args: argparse.Namespace) -> int:
    """A model from a library (``timm:resnet18``) has no spec to validate: it is run on meta tensors at its input
    (or ``--input``) and its shapes, parameters and MACs printed, as ``profile`` counts them."""
    from ..profile import profile

    prof = profile(target, args.input, args.batch, ultralytics=False)  # its own figure is profile's to show
    shape = (args.batch, *prof.input_shape)
    data = prof.data_dependent  # a detector: its outputs' shapes depend on what a real run found (no meta run)
    outputs = None if data is not None else _output_shapes(target.with_input(args.input).module("meta"), shape)
    if args.json:
        print(json.dumps({"name": target.name, "batch": args.batch, "input": list(shape), "params": prof.params,
                          "macs": prof.macs, "flops": 2 * prof.macs, "outputs": outputs,
                          "data_dependent": data.to_dict() if data is not None else None}, indent=2))
        return 0
    produced = (', '.join('×'.join(map(str, o)) for o in outputs) if outputs is not None
                else "outputs that depend on the data")
    how = f"counted on real runs: {data.line()}" if data is not None else "shapes checked on meta tensors"
    stdout().print(f"[bold]{target.name}[/bold] ({target.what}): input {'×'.join(map(str, shape))} → {produced}; "
                   f"{prof.params:,} params, {prof.macs / 1e9:.4f} GMACs ({2 * prof.macs / 1e9:.4f} GFLOPs); {how}",
                   highlight=False)
    return 0


def _output_shapes(model: Any, shape: tuple[int, ...]) -> list[list[int]]:
    import torch

    from ..meta import shape_run

    def run(net: Any, xs: list[torch.Tensor]) -> list[list[int]]:
        with torch.no_grad():
            out = net.eval()(*xs)
        flat = out if isinstance(out, (list, tuple)) else list(out.values()) if isinstance(out, dict) else [out]
        return [list(t.shape) for t in flat if isinstance(t, torch.Tensor)]

    return shape_run(model, [shape], run)[0]
