"""`blockstitch profile SPEC`: params, MACs/FLOPs and memory per node, on meta tensors."""

from __future__ import annotations

import argparse
import json

from .common import positive, refuse_input, shape_arg, stdout

NAME = "profile"
HELP = "params, MACs/FLOPs and memory per node (on meta tensors)"


def arguments(p: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    p.add_argument("spec", help="a spec file, a zoo name, or timm:<model> (random weights, nothing downloaded)")
    p.add_argument("--input", type=shape_arg, default=None, metavar="C,H,W", help="input shape without batch")
    p.add_argument("--batch", type=positive, default=1, metavar="N", help="batch size (default 1)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON (params, macs, flops, nodes, uncounted…)")
    fmt.add_argument("--csv", action="store_true", help="print CSV, one row per node")
    fmt.add_argument("--markdown", action="store_true", help="print a Markdown table to paste into a paper")
    p.add_argument("--train", action="store_true",
                   help="also count one training step: forward + backward FLOPs, and the optimizer step apart")
    p.add_argument("--all-ops", action="store_true", help="also estimate FLOPs of norms, softmax, elementwise ops")
    p.add_argument("--torchinfo", action="store_true", help="also print torchinfo's layer table")
    p.add_argument("--depth", type=positive, default=1, help="module depth for timm models and --torchinfo")
    p.add_argument("--compare", metavar="OTHER", nargs="+", default=None,
                   help="compare with other networks (A --compare B C …): each one's totals and Δ against A, in "
                        "the chosen format")


def run(args: argparse.Namespace) -> int:
    """Profile the network (and ``--compare`` another); print it in the chosen format."""
    from ..profile import profile
    from ..profile.compare import compare
    from ..render import render_compare, render_profile
    from ..subject import NETWORK_KINDS, subject

    out = stdout()
    if args.compare:  # every OTHER against SPEC: `profile resnet50 --compare cbam_resnet50 seresnet50`
        names = [args.spec, *args.compare]
        targets = [refuse_input(name, args.input, NETWORK_KINDS) for name in names]
        comparison = compare([subject(t, accept=NETWORK_KINDS) for t in targets], args.input, args.batch,
                             depth=args.depth, names=names)
        if args.json:
            print(json.dumps(comparison.to_dict(), indent=2))
        elif args.csv:
            print(comparison.to_csv(), end="")
        elif args.markdown:
            print(comparison.to_markdown())
        else:
            render_compare(comparison, out)
        return 0
    target = subject(refuse_input(args.spec, args.input, NETWORK_KINDS), accept=NETWORK_KINDS)  # before any run
    prof = profile(target, args.input, args.batch, depth=args.depth, train=args.train)
    if args.json:
        print(json.dumps(prof.to_dict(), indent=2))
    elif args.csv:
        print(prof.to_csv(), end="")
    elif args.markdown:
        print(prof.to_markdown(all_ops=args.all_ops))
    else:
        render_profile(prof, out, all_ops=args.all_ops)
    if args.torchinfo:
        import torchinfo

        model = target.with_input(args.input).module("meta")
        shape = (args.batch, *(args.input or prof.input_shape))
        print(torchinfo.summary(model, input_size=shape, depth=args.depth, device="meta", verbose=0))
    return 0

