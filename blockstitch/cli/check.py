"""`blockstitch check SPEC`: validate, propagate shapes by each block's rule (``--verify``: also on meta tensors),
print the plan — or, for an edit spec, what the edit changes."""

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
                   help="for an edit spec: also state the input sizes the stitched network accepts (a sweep of "
                        "input sizes on meta tensors, a few seconds)")
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
        rule = _input_rule(target.module("meta"), report.input_shape) if args.sizes else None
        if args.json:
            print(json.dumps({**report.to_dict(), **({"input_rule": rule} if rule else {})}, indent=2))
        else:
            render_stitch(report, stdout())
            if rule:
                stdout().print(f"input sizes: {rule['text']} (swept on meta tensors at {rule['tried']})",
                               highlight=False)
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

    prof = profile(target, args.input, args.batch)
    shape = (args.batch, *prof.input_shape)
    outputs = _output_shapes(target.with_input(args.input).module("meta"), shape)
    if args.json:
        print(json.dumps({"name": target.name, "batch": args.batch, "input": list(shape), "params": prof.params,
                          "macs": prof.macs, "flops": 2 * prof.macs, "outputs": outputs}, indent=2))
        return 0
    stdout().print(f"[bold]{target.name}[/bold] ({target.what}): input {'×'.join(map(str, shape))} → "
                   f"{', '.join('×'.join(map(str, o)) for o in outputs)}; {prof.params:,} params, "
                   f"{prof.macs / 1e9:.4f} GMACs ({2 * prof.macs / 1e9:.4f} GFLOPs); shapes checked on meta tensors",
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


def _input_rule(model: Any, input_shape: tuple[int, ...]) -> dict[str, Any] | None:
    """The rule the stitched network's input obeys (``h and w multiples of 32``), inferred as check-module infers
    a block's, from meta runs at sizes around its own input."""
    if len(input_shape) != 3:
        return None
    from ..check.constraints import infer_rule
    from ..stitch.points import record_shapes

    c, h, _ = input_shape
    sides = sorted({h, h + 1, h - 1, h // 2, h + 16, h + 32, 2 * h, 32, 48, 64, 96, 100} - {0})
    sizes = [(s, s) for s in sides if s > 0] + [(h, 2 * h), (2 * h, h), (h, h + 1)]
    obs: dict[tuple[int, ...], bool] = {}
    for size in sizes:
        try:
            record_shapes(model, (1, c, *size))
            obs[size] = True
        except Exception:  # noqa: BLE001 — a size the network does not take is an observation, not an error
            obs[size] = False
    rule = infer_rule(("h", "w"), obs)
    return {**rule.to_dict(), "tried": ", ".join("×".join(map(str, s)) for s in sorted(obs))}
