"""The `blockstitch` command: parse, call the API, render with rich. Spec mistakes exit 2, no traceback.

Start-up matters here: a command imports what it needs inside its own function, after the arguments parsed, so
``--help``, ``--version``, a usage error, ``schema`` and ``zoo`` (from their generated files, see
:mod:`blockstitch.generated`) never import torch, and ``blocks`` lists from the block index.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import __version__
from .errors import BlockstitchError, SpecError

if TYPE_CHECKING:
    from rich.console import Console

    from .assemble import Plan

__all__ = ["main"]

out: Console
"""Standard output (made by :func:`_consoles` once the arguments parsed: rich is not needed for --help)."""
err: Console
_plugged = False  # whether --plugin files or entry points may have registered blocks (then nothing is cached)


def _consoles() -> None:
    global out, err
    from rich.console import Console

    out = Console(highlight=False)
    if not out.is_terminal:  # piped or captured: do not squeeze tables into 80 columns
        out = Console(highlight=False, width=200)
    err = Console(stderr=True, highlight=False, width=None if Console(stderr=True).is_terminal else 200)


def _shape_arg(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 3,224,224, got '{text}'") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"sizes must be positive integers, got '{text}'")
    return values


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be ≥ 1")
    return value


def _delta(plan: Plan, base: Plan) -> dict[str, float | int | str]:
    return {"baseline": base.name, "params": plan.params - base.params, "macs": plan.macs - base.macs,
            "params_pct": 100.0 * (plan.params - base.params) / max(base.params, 1),
            "macs_pct": 100.0 * (plan.macs - base.macs) / max(base.macs, 1)}


def cmd_check(args: argparse.Namespace) -> int:
    """`blockstitch check SPEC`: validate, propagate shapes by each block's rule (``--verify``: also on meta
    tensors), print the plan (or, for an edit spec, what the edit changes)."""
    from . import api
    from .render import render_plan, render_stitch

    if api.is_edit_source(args.spec):
        from .sources import resolve
        from .stitch import build_edit

        report = build_edit(resolve(args.spec, {"edit"}).located, device="meta").report  # type: ignore[arg-type]
        if args.json:
            print(json.dumps(report.to_dict(), indent=2))
        else:
            render_stitch(report, out)
        return 0
    plan = api.plan(args.spec, args.input, args.batch, verify=args.verify)
    delta = None
    if plan.baseline is not None:
        base_input = plan.input.shape[1:] if args.input is not None else None
        try:
            delta = _delta(plan, api.plan(plan.baseline, base_input, args.batch, verify=args.verify))
        except SpecError as e:
            raise e.located(file=plan.file, path="baseline") from None
    if args.json:
        print(json.dumps({"name": plan.name, "batch": plan.batch, "input": list(plan.input.shape),
                          "params": plan.params, "macs": plan.macs, "flops": 2 * plan.macs,
                          "outputs": [list(s) for s in plan.output_shapes()], "nodes": plan.records(),
                          "vs_baseline": delta}, indent=2))
        return 0
    render_plan(plan, out)
    if delta is not None:
        out.print(f"vs baseline [bold]{delta['baseline']}[/bold]: {delta['params']:+,} params "
                  f"({delta['params_pct']:+.2f}%), {delta['macs'] / 1e9:+.4f} GMACs ({delta['macs_pct']:+.2f}%)")
    return 0


def _target(text: str) -> object:
    """A CLI target: spec path or zoo name (kept as text), or `timm:<model>` / `torchvision:<model>` (built on
    meta, nothing downloaded)."""
    from .sources import foreign_model

    model = foreign_model(text, device="meta")
    return text if model is None else model


def cmd_profile(args: argparse.Namespace) -> int:
    """`blockstitch profile SPEC`: params, MACs/FLOPs, memory per node, on meta tensors."""
    from . import api
    from .profile import profile
    from .render import render_compare, render_profile

    prof = profile(_target(args.spec), args.input, args.batch, depth=args.depth)  # type: ignore[arg-type]
    if args.compare:
        other = profile(_target(args.compare), args.input, args.batch, depth=args.depth)  # type: ignore[arg-type]
        render_compare(prof, other, out)  # OTHER relative to SPEC: `profile resnet50 --compare cbam_resnet50`
        return 0
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

        model = _target(args.spec)
        if isinstance(model, str):
            model = api.build(api.plan(model, args.input, args.batch), device="meta")
        shape = (args.batch, *(args.input or prof.input_shape))
        print(torchinfo.summary(model, input_size=shape, depth=args.depth, device="meta", verbose=0))
    return 0


def cmd_check_module(args: argparse.Namespace) -> int:
    """`blockstitch check-module TARGET`: is this module plug-and-play? Exit 0 if every required check holds."""
    from .render import render_check, render_stitch_rows
    from .check import check_module, parse_args
    from .check.stitch_report import stitch_report
    from .check.targets import resolve_target

    axes = parse_args(args.axis)
    if any(not isinstance(v, int) for v in axes.values()):
        raise SpecError("--axis expects name=integer, e.g. --axis c=64")
    ctor = parse_args(args.arg)
    if args.into:  # a bad network file fails now, not after the checks
        from . import api

        api.plan(args.into, args.stitch_input)
    report = check_module(args.target, input=args.input, output=args.output, axes=axes, args=ctor,
                          compile=args.compile and not args.no_compile, export=args.export and not args.no_export,
                          compile_backend=args.compile_backend)
    rows = None
    if args.into:
        _, factory, _ = resolve_target(args.target, ctor)
        rows = stitch_report(factory, args.into, [a for a in args.at.split(",") if a], args.stitch_input,
                             reps=args.reps)
    if args.json:
        data = report.to_dict()
        if rows is not None:
            base, points = rows
            data["stitch"] = {"into": args.into, "baseline": base, "rows": [vars(r) for r in points]}
        print(json.dumps(data, indent=2, default=list))
    else:
        render_check(report, out)
        if rows is not None:
            render_stitch_rows(args.into, *rows, console=out)
    return 0 if report.ok else 1


def cmd_bench(args: argparse.Namespace) -> int:
    """`blockstitch bench TARGET`: latency, throughput, memory, TFLOP/s and roofline efficiency."""
    from .render import render_bench, render_blocks
    from .bench import bench, bench_blocks
    from .check import parse_args

    compile_mode: str | bool | None = None
    if args.compile is not None:
        compile_mode = True if args.compile == "default" else args.compile
    result = bench(args.target, args.input, batch=args.batch, device=args.device, dtype=args.dtype, amp=args.amp,
                   channels_last=args.channels_last, compile=compile_mode, cuda_graphs=args.cuda_graphs,
                   mode=args.mode, flush_l2=args.flush_l2, budget_s=args.budget, args=parse_args(args.arg))
    blocks = bench_blocks(args.target, args.input, args.batch, args.device, args.dtype) if args.per_block else None
    if args.json:
        data = result.to_dict()
        if blocks is not None:
            data["blocks"] = [vars(b) for b in blocks]
        print(json.dumps(data, indent=2))
    else:
        render_bench(result, out)
        if blocks is not None:
            render_blocks(blocks, out)
    return 0 if result.error is None else 1


def cmd_sweep(args: argparse.Namespace) -> int:
    """`blockstitch sweep FILE.yaml`: every combination, appended to JSONL as measured; resumable; plots."""
    from .render import render_sweep
    from pathlib import Path

    from rich.progress import Progress

    from .bench.sweep import load_sweep, plot, run_sweep, scan_results

    spec = load_sweep(args.file)
    target = Path(args.out or Path(args.file).with_suffix(".jsonl"))
    bad = scan_results(target).bad_lines
    if bad:  # a kill mid-write or a hand edit: those lines stay as they are, the good rows count
        shown = ", ".join(map(str, bad[:10])) + (f", … ({len(bad) - 10} more)" if len(bad) > 10 else "")
        err.print(f"warning: {target}: line(s) {shown} are not results; left as they are", highlight=False)
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("sweep", total=None)

        def progress(i: int, n: int, what: str) -> None:
            bar.update(task, completed=i, total=n, description=what)

        entries = run_sweep(spec, target, progress)
    render_sweep(entries, out)
    out.print(f"results: {target}")
    if not args.no_plots:
        try:
            blocks_file = target.with_suffix(".blocks.json")
            blocks = json.loads(blocks_file.read_text()) if blocks_file.exists() else None
            for png in plot(entries, Path(args.plots or target.parent), blocks):
                out.print(f"plot: {png}")
        except ImportError:
            out.print("[dim]no plots: pip install 'blockstitch[plot]' (matplotlib)[/dim]")
    return 0


def cmd_blocks(args: argparse.Namespace) -> int:
    """`blockstitch blocks [KIND]`: the registered kinds (filtered by --category / --search), one card, the
    catalogue page (--markdown) or JSON."""
    from rich.table import Table

    from . import catalogue

    if args.markdown:
        from .catalogue_docs import library_markdown

        print(library_markdown(args.lang), end="")
        return 0
    if args.kind:
        if args.json:
            print(json.dumps(catalogue.entry(args.kind).to_dict(), indent=2))
        else:
            out.print(catalogue.card_text(args.kind), markup=False, highlight=False)
        return 0
    found = catalogue.entries()
    if args.category:
        found = catalogue.by_category(args.category, found)
    if args.search:
        found = catalogue.search(args.search, found)
    if args.json:
        print(json.dumps([e.to_dict() for e in found], indent=2))
        return 0
    table = Table(header_style="bold")
    for col in ("kind", "category", "paper", "aliases", "layout in", "what it is"):
        table.add_column(col)
    for e in found:
        layouts = "any" if e.layouts_in is None else " | ".join(e.layouts_in)
        paper = f"{e.paper.venue} {e.paper.year}" if e.paper else ""
        table.add_row(e.kind, e.category, paper, ", ".join(e.aliases[:3]), layouts, e.doc)
    out.print(table)
    if not found:
        err.print("no block matches; try `blockstitch blocks --search WORD` with part of a name")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    """`blockstitch schema`: the JSON Schema of spec files (the generated one unless plugins add blocks)."""
    from .generated import SCHEMA_FILE, block_sources, digest, read

    schema = None if _plugged else read(SCHEMA_FILE, digest(block_sources()))
    if schema is None:
        from .regenerate import live_schema

        schema = live_schema()
    print(json.dumps(schema, indent=2))
    return 0


def cmd_zoo(args: argparse.Namespace) -> int:
    """`blockstitch zoo`: the bundled specs with parameters and GMACs (profiled on meta tensors; read from the
    generated table when it was made from these very sources and specs, else computed now)."""
    from .assemble.zoo import gmacs_text, zoo_markdown
    from .generated import ZOO_FILE, read
    from .regenerate import live_zoo_rows, zoo_digest

    rows = read(ZOO_FILE, zoo_digest())
    if rows is None:
        rows = live_zoo_rows()
    if args.markdown:
        print(zoo_markdown(rows))
        return 0
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.table import Table

    table = Table(header_style="bold", title="bundled specs (batch 1, each at its own input)", title_justify="left")
    for col, justify in (("spec", "left"), ("input", "left"), ("params", "right"), ("GMACs", "right"),
                         ("description", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(str(r["name"]), str(r["input"]), f"{r['params']:,}", gmacs_text(float(r["gmacs"])),  # type: ignore[arg-type]
                      str(r["description"]))
    out.print(table)
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    """`blockstitch graph TARGET`: a Mermaid, DOT or SVG diagram with node paths, kinds, shapes and edits."""
    from pathlib import Path

    from .export import writable
    from .graph import graph_record, render
    from .graph.mermaid import github_limits
    from .sources import CommandLine

    target = writable(Path(args.output)) if args.output else None
    record = graph_record(CommandLine(args.target), args.input, args.depth)
    text = render(record, args.format)
    if args.format == "mermaid" and (over := github_limits(text)):
        err.print(f"note: {over}")
    if target is None:
        print(text, end="")
        return 0
    target.write_text(text, encoding="utf-8")
    legend = "; ".join(f"{op}: {len(names)}" for op, names in record.legend.items())
    out.print(f"{target}: {args.format}, {len(record.nodes)} nodes, {len(record.edges)} edges"
              + (f"; edits {legend}" if legend else ""))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """`blockstitch export TARGET -o FILE`: ONNX or torch.export, dynamic batch, parity checked (exit 2 if not)."""
    from .export import export
    from .sources import CommandLine

    report = export(CommandLine(args.target), args.output, args.input, args.format, opset=args.opset,
                    dynamic_batch=not args.static_batch)
    out.print(str(report))
    return 0


def parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for docs and tests)."""
    p = argparse.ArgumentParser(prog="blockstitch", description="Compose PyTorch networks from blocks.")
    p.add_argument("--version", action="version", version=f"blockstitch {__version__}")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error (anywhere on the line)")
    p.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="import a file of your own blocks (registered with @register_block); repeatable")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="validate a spec and print its plan (shapes, params, MACs)")
    c.add_argument("spec", help="a spec file, or the name of a bundled spec (e.g. resnet50)")
    c.add_argument("--input", type=_shape_arg, default=None, metavar="C,H,W", help="input shape without batch")
    c.add_argument("--batch", type=_positive, default=1, metavar="N", help="batch size (default 1)")
    c.add_argument("--json", action="store_true", help="print the plan as JSON")
    c.add_argument("--verify", action="store_true",
                   help="also run blockstitch's own blocks on meta tensors against their shape rules (plugin "
                        "blocks always run); about a second more")
    c.set_defaults(func=cmd_check)
    pr = sub.add_parser("profile", help="params, MACs/FLOPs and memory per node (on meta tensors)")
    pr.add_argument("spec", help="a spec file, a zoo name, or timm:<model> (random weights, nothing downloaded)")
    pr.add_argument("--input", type=_shape_arg, default=None, metavar="C,H,W", help="input shape without batch")
    pr.add_argument("--batch", type=_positive, default=1, metavar="N", help="batch size (default 1)")
    fmt = pr.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON (params, macs, flops, nodes, uncounted…)")
    fmt.add_argument("--csv", action="store_true", help="print CSV, one row per node")
    fmt.add_argument("--markdown", action="store_true", help="print a Markdown table to paste into a paper")
    pr.add_argument("--all-ops", action="store_true", help="also estimate FLOPs of norms, softmax, elementwise ops")
    pr.add_argument("--torchinfo", action="store_true", help="also print torchinfo's layer table")
    pr.add_argument("--depth", type=_positive, default=1, help="module depth for timm models and --torchinfo")
    pr.add_argument("--compare", metavar="OTHER", help="print the difference against another network")
    pr.set_defaults(func=cmd_profile)
    cm = sub.add_parser("check-module", help="is a module plug-and-play? sizes, layouts, modes, dtypes, grads")
    cm.add_argument("target", help="a block kind, path/to/file.py:Name or package.module:Name")
    cm.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE",
                    help="a field or constructor argument (a literal, never evaluated); repeatable")
    cm.add_argument("--in", dest="input", default=None, metavar="PATTERN",
                    help="input contract, e.g. 'b c h w' (default: try b c h w, b n c, b h w c)")
    cm.add_argument("--out", dest="output", default=None, metavar="PATTERN", help="output contract, e.g. 'b (c*2) h w'")
    cm.add_argument("--axis", action="append", default=[], metavar="NAME=N", help="bind an axis size, e.g. c=64")
    cm.add_argument("--compile", action="store_true", help="also try torch.compile(fullgraph=True) (slow)")
    cm.add_argument("--export", action="store_true", help="also try torch.export (slow)")
    cm.add_argument("--no-compile", action="store_true", help=argparse.SUPPRESS)  # the default since 0.2
    cm.add_argument("--no-export", action="store_true", help=argparse.SUPPRESS)
    cm.add_argument("--compile-backend", default="aot_eager", help="torch.compile backend (default aot_eager)")
    cm.add_argument("--into", metavar="NETWORK", help="stitch report: insert into this zoo network or spec")
    cm.add_argument("--at", default="layer1,layer2,layer3,layer4", help="comma-separated node names (with --into)")
    cm.add_argument("--stitch-input", type=_shape_arg, default=None, metavar="C,H,W", help="network input for --into")
    cm.add_argument("--reps", type=_positive, default=9, help="latency repetitions per point (with --into)")
    cm.add_argument("--json", action="store_true", help="print JSON")
    cm.set_defaults(func=cmd_check_module)
    b = sub.add_parser("bench", help="latency, throughput, memory, TFLOP/s and roofline efficiency")
    b.add_argument("target", help="spec file, zoo name, timm:<model>, block kind (with --arg) or file.py:Name")
    b.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE", help="block fields / constructor args")
    b.add_argument("--input", type=_shape_arg, default=None, metavar="C,H,W", help="input shape without batch")
    b.add_argument("--batch", type=_positive, default=1, metavar="N", help="batch size (default 1)")
    b.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    b.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    b.add_argument("--amp", action="store_true", help="autocast to --dtype instead of casting the weights")
    b.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    b.add_argument("--compile", nargs="?", const="default", default=None, metavar="MODE",
                   help="torch.compile (optionally a mode: reduce-overhead, max-autotune…)")
    b.add_argument("--cuda-graphs", action="store_true", help="capture and replay a CUDA graph (CUDA only)")
    b.add_argument("--mode", default="infer", choices=["infer", "train"], help="train = fwd + bwd + AdamW step")
    b.add_argument("--flush-l2", action="store_true", help="flush the cache before every repetition")
    b.add_argument("--budget", type=float, default=2.0, metavar="S", help="time budget of the measurement")
    b.add_argument("--per-block", action="store_true", help="also time every node alone, slowest first")
    b.add_argument("--json", action="store_true", help="print JSON")
    b.set_defaults(func=cmd_bench)
    sw = sub.add_parser("sweep", help="run a benchmark sweep from a YAML file (resumable JSONL, plots)")
    sw.add_argument("file", help="sweep file (targets, batch, input, dtype, mode, … lists)")
    sw.add_argument("--out", default=None, help="JSONL results file (default: next to the sweep file)")
    sw.add_argument("--plots", default=None, help="folder for PNG plots (default: next to the results)")
    sw.add_argument("--no-plots", action="store_true", help="skip the plots")
    sw.set_defaults(func=cmd_sweep)
    bl = sub.add_parser("blocks", help="list the registered blocks, or show one block's card")
    bl.add_argument("kind", nargs="?", default=None, help="show this block's card (a kind or an alias, e.g. CoordAtt)")
    bl.add_argument("--category", default=None, help="only this category (attention, conv, down, up, fusion, …)")
    bl.add_argument("--search", default=None, metavar="WORD",
                    help="kinds, aliases and paper titles containing WORD (case, '-', '_' and spaces ignored)")
    bl.add_argument("--json", action="store_true", help="print JSON (kind, category, paper, aliases, inputs, rules…)")
    bl.add_argument("--markdown", action="store_true", help="print the catalogue page (docs/library.md)")
    bl.add_argument("--lang", default="en", choices=["en", "zh-CN"], help="language of --markdown")
    bl.set_defaults(func=cmd_blocks)
    sub.add_parser("schema", help="print the JSON Schema of spec files").set_defaults(func=cmd_schema)
    z = sub.add_parser("zoo", help="list the bundled specs with their params and MACs")
    z.add_argument("--markdown", action="store_true", help="print a Markdown table (as in the README)")
    z.add_argument("--json", action="store_true", help="print JSON")
    z.set_defaults(func=cmd_zoo)
    g = sub.add_parser("graph", help="draw a network: Mermaid, DOT or SVG, with names, kinds, shapes and edits")
    g.add_argument("target", help="a zoo name, a spec or edit spec file, timm:<model> or file.py:Name")
    g.add_argument("--format", default="mermaid", choices=["mermaid", "dot", "svg"], help="default mermaid")
    g.add_argument("-o", "--output", default=None, metavar="FILE", help="write here (default: print)")
    g.add_argument("--depth", type=_positive, default=None, metavar="N",
                   help="collapse modules deeper than N path parts (1: stages such as layer1)")
    g.add_argument("--input", type=_shape_arg, default=None, metavar="C,H,W", help="input shape without batch")
    g.set_defaults(func=cmd_graph)
    ex = sub.add_parser("export", help="ONNX or torch.export with a dynamic batch and a parity check")
    ex.add_argument("target", help="a zoo name, a spec or edit spec file, timm:<model> or file.py:Name")
    ex.add_argument("--format", default="onnx", choices=["onnx", "torch-export"], help="default onnx")
    ex.add_argument("-o", "--output", required=True, metavar="FILE", help="the file to write (.onnx or .pt2)")
    ex.add_argument("--input", type=_shape_arg, default=None, metavar="C,H,W", help="input shape without batch")
    ex.add_argument("--opset", type=_positive, default=18, help="ONNX opset (default 18)")
    ex.add_argument("--static-batch", action="store_true", help="fix the batch axis at 2 instead")
    ex.set_defaults(func=cmd_export)
    return p


def _subject(args: argparse.Namespace) -> str:
    """The file or name a command was given, to name it in a message."""
    for key in ("spec", "target", "file"):
        value = getattr(args, key, None)
        if isinstance(value, str):
            return value
    return str(getattr(args, "command", "blockstitch"))


def _load_entry_points() -> None:
    """Import installed ``blockstitch.blocks`` plugins (the registry, and so torch, only when there are some)."""
    from importlib.metadata import entry_points

    if entry_points(group="blockstitch.blocks"):
        from .registry import load_entry_points

        global _plugged
        _plugged = True
        load_entry_points()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `blockstitch` console script; returns the exit code.

    Every failure is one message and exit 2 (1 for a check that ran and failed); no traceback reaches the
    user unless ``--debug`` is given (anywhere on the command line).
    """
    global _plugged
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    args = parser().parse_args([a for a in argv if a != "--debug"])
    _consoles()
    if isinstance(getattr(args, "target", None), str):  # typed by the user: the only text that may name code
        from .sources import CommandLine

        args.target = CommandLine(args.target)
    try:
        _load_entry_points()
        for plugin in args.plugin:
            from .registry import load_plugin_file

            _plugged = True
            try:
                load_plugin_file(plugin)
            except BlockstitchError:
                raise
            except Exception as e:  # the user's own code failed: say which file
                raise SpecError(f"--plugin {plugin}: importing it failed: {type(e).__name__}: {e}") from e
        return int(args.func(args))
    except BrokenPipeError:  # `blockstitch schema | head`
        return 0
    except KeyboardInterrupt:
        err.print("interrupted", highlight=False)
        return 130
    except BlockstitchError as e:
        return _fail(str(e), debug)
    except (RecursionError, MemoryError) as e:
        return _fail(f"{_subject(args)}: too large to handle ({type(e).__name__})", debug)
    except Exception as e:  # noqa: BLE001 — a bug of ours still ends in one message, not a traceback
        first = (str(e).splitlines() or [""])[0][:300]
        return _fail(f"{_subject(args)}: internal error ({type(e).__name__}: {first}); please report it — "
                     "`--debug` shows the traceback", debug)


def _fail(message: str, debug: bool) -> int:
    """Print one error message (the traceback too with ``--debug``); exit code 2."""
    from rich.markup import escape

    if debug:
        import traceback

        traceback.print_exc()
    err.print(f"[bold red]error:[/bold red] {escape(message)}", markup=True, highlight=False, soft_wrap=True)
    return 2


if __name__ == "__main__":
    sys.exit(main())
