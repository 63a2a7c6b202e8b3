"""`blockstitch bench TARGET`: latency, throughput, memory, TFLOP/s and roofline efficiency."""

from __future__ import annotations

import argparse
import json

from .common import positive, progress, refuse_input, shape_arg, stderr, stdout

NAME = "bench"
HELP = "latency, throughput, memory, TFLOP/s and roofline efficiency"


def arguments(p: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    p.add_argument("target", help="spec file, zoo name, timm:<model>, block kind (with --arg) or file.py:Name")
    p.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE", help="block fields / constructor args")
    p.add_argument("--input", type=shape_arg, default=None, metavar="C,H,W", help="input shape without batch")
    p.add_argument("--batch", type=positive, default=1, metavar="N", help="batch size (default 1)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--amp", action="store_true", help="autocast to --dtype instead of casting the weights")
    p.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    p.add_argument("--compile", nargs="?", const="default", default=None, metavar="MODE",
                   help="torch.compile (optionally a mode: reduce-overhead, max-autotune…)")
    p.add_argument("--cuda-graphs", action="store_true", help="capture and replay a CUDA graph (CUDA only)")
    p.add_argument("--mode", default="infer", choices=["infer", "train"], help="train = fwd + bwd + AdamW step")
    p.add_argument("--flush-l2", action="store_true", help="flush the cache before every repetition")
    p.add_argument("--budget", type=float, default=2.0, metavar="S", help="time budget of the measurement")
    p.add_argument("--per-block", action="store_true", help="also time every node alone, slowest first")
    p.add_argument("--refresh-peaks", action="store_true",
                   help="measure the device's peak FLOP/s and bandwidth again and overwrite their cache")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    """Measure; 0, or 1 when the measurement itself failed (e.g. out of memory, reported as a result)."""
    from ..bench import bench, bench_blocks, blocks_warning
    from ..check import parse_args
    from ..render import render_bench, render_blocks, render_warnings
    from ..subject import NETWORK_KINDS

    compile_mode: str | bool | None = None
    if args.compile is not None:
        compile_mode = True if args.compile == "default" else args.compile
    target = refuse_input(args.target, args.input, NETWORK_KINDS | {"block", "code"})  # before any real forward
    with progress(args.json) as shown:  # warm-up and repetitions, then one step per block; stderr, terminals only
        result = bench(target, args.input, batch=args.batch, device=args.device, dtype=args.dtype, amp=args.amp,
                       channels_last=args.channels_last, compile=compile_mode, cuda_graphs=args.cuda_graphs,
                       mode=args.mode, flush_l2=args.flush_l2, budget_s=args.budget, args=parse_args(args.arg),
                       progress=shown, refresh_peaks=args.refresh_peaks)
        blocks = bench_blocks(target, args.input, args.batch, args.device, args.dtype,
                              progress=shown) if args.per_block else None
    if result.peaks_refreshed:
        stderr().print(result.peaks_refreshed, highlight=False)
    said = result.warnings + blocks_warning(blocks or [])
    if args.json:
        data = result.to_dict()
        if blocks is not None:
            data["blocks"] = [b.to_dict() for b in blocks]
            data["warnings"] = list(dict.fromkeys(said))
        print(json.dumps(data, indent=2))
    else:
        out = stdout()
        render_bench(result, out)
        if blocks is not None:
            render_blocks(blocks, out)
    render_warnings(said, stderr())  # beside the numbers, on stderr; in the JSON's "warnings" too
    return 0 if result.error is None else 1
