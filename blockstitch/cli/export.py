"""`blockstitch export TARGET -o FILE`: ONNX or torch.export, a dynamic batch axis named "batch" (or
``--static-batch N``), parity checked (exit 2 if not), every file written listed with its size."""

from __future__ import annotations

import argparse
import json

from .common import positive, progress, refuse_input, shape_arg, stdout

NAME = "export"
HELP = "ONNX or torch.export with a dynamic batch and a parity check; lists every file written"


def arguments(p: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    p.add_argument("target", help="a zoo name, a spec or edit spec file, timm:<model> or file.py:Name")
    p.add_argument("--format", default="onnx", choices=["onnx", "torch-export"], help="default onnx")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the file to write (.onnx or .pt2)")
    p.add_argument("--input", type=shape_arg, default=None, metavar="C,H,W", help="input shape without batch")
    p.add_argument("--opset", type=positive, default=18, help="ONNX opset (default 18)")
    p.add_argument("--static-batch", type=positive, default=None, metavar="N",
                   help='write batch size N into the file (default: a dynamic batch axis named "batch")')
    p.add_argument("--json", action="store_true", help="print the report as JSON (files, inputs, outputs, errors…)")


def run(args: argparse.Namespace) -> int:
    """Export, check parity, print what was written."""
    from ..export import export
    from ..subject import NETWORK_KINDS

    target = refuse_input(args.target, args.input, NETWORK_KINDS | {"code"})  # before the export runs anything
    with progress(args.json) as shown:  # tracing, writing, parity checks; stderr, terminals only
        report = export(target, args.output, args.input, args.format, opset=args.opset,
                        static_batch=args.static_batch, progress=shown)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        stdout().print(str(report))
    return 0
