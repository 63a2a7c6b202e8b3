"""`blockstitch export TARGET -o FILE`: ONNX or torch.export, dynamic batch, parity checked (exit 2 if not)."""

from __future__ import annotations

import argparse

from .common import positive, progress, shape_arg, stdout

NAME = "export"
HELP = "ONNX or torch.export with a dynamic batch and a parity check"


def arguments(p: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    p.add_argument("target", help="a zoo name, a spec or edit spec file, timm:<model> or file.py:Name")
    p.add_argument("--format", default="onnx", choices=["onnx", "torch-export"], help="default onnx")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the file to write (.onnx or .pt2)")
    p.add_argument("--input", type=shape_arg, default=None, metavar="C,H,W", help="input shape without batch")
    p.add_argument("--opset", type=positive, default=18, help="ONNX opset (default 18)")
    p.add_argument("--static-batch", action="store_true", help="fix the batch axis at 2 instead")


def run(args: argparse.Namespace) -> int:
    """Export, check parity, print what was written."""
    from ..export import export

    with progress() as shown:  # tracing, writing, parity checks; stderr, terminals only
        report = export(args.target, args.output, args.input, args.format, opset=args.opset,
                        dynamic_batch=not args.static_batch, progress=shown)
    stdout().print(str(report))
    return 0
