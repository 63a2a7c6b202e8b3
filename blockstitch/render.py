"""Rich rendering of plans and profiles for the CLI (the API returns plain records; this draws them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from .errors import fmt_shape

if TYPE_CHECKING:  # records to draw; rendering one kind must not import the tools that make the others
    from rich.console import Console

    from .assemble import Plan
    from .bench import BenchResult, BlockTime
    from .check import CheckReport
    from .check.stitch_report import StitchTable
    from .profile import Profile
    from .profile.compare import Comparison
    from .stitch import StitchReport

__all__ = ["render_plan", "render_profile", "render_compare", "render_stitch", "render_check", "render_stitch_rows",
           "render_bench", "render_blocks", "render_sweep", "render_warnings", "si"]


def si(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f}"


def render_plan(plan: Plan, console: Console) -> None:
    """Print a plan as a table with totals."""
    table = Table(title=f"{plan.name} — batch {plan.batch}, input {fmt_shape(plan.input.shape[1:])}",
                  title_justify="left", header_style="bold")
    for col, justify in (("#", "right"), ("node", "left"), ("kind", "left"), ("from", "left"),
                         ("in shape", "left"), ("out shape", "left"), ("layout", "left"), ("params", "right"), ("MACs", "right")):
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for i, step in enumerate(plan.steps):
        style = "yellow" if step.bridge else None
        kind = f"{step.kind} (bridge)" if step.bridge else step.kind
        table.add_row(str(i), step.name, kind, ", ".join(step.inputs),
                      " + ".join(fmt_shape(s) for s in step.in_shapes),
                      fmt_shape(step.out.shape), step.out.layout, f"{step.params:,}",
                      si(step.macs), style=style)
    console.print(table)
    console.print(f"[bold]{plan.params:,}[/bold] parameters · [bold]{plan.macs / 1e9:.3f} GMACs[/bold] "
                  f"({2 * plan.macs / 1e9:.3f} GFLOPs) at batch {plan.batch} · output "
                  + ", ".join(fmt_shape(s) for s in plan.output_shapes()))
    for step in plan.bridges:
        console.print(f"[yellow]bridge[/yellow] {step.name}: {step.spec.pattern}")  # type: ignore[attr-defined]



def render_profile(p: Profile, console: Console, all_ops: bool = False) -> None:
    """Per-node table, totals (MACs and FLOPs labelled), memory, uncounted ops and disagreements."""
    from .profile.report import human_bytes, train_line  # the profile's own formatting
    table = Table(title=f"{p.name} — batch {p.batch}, input {'×'.join(map(str, p.input_shape))}",
                  title_justify="left", header_style="bold")
    for col, justify in (("node", "left"), ("kind", "left"), ("in shape", "left"), ("out shape", "left"),
                         ("params", "right"), ("MACs", "right"), ("share", "right"), ("activations", "right")):
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for n in p.nodes:
        ins = [fmt_shape(s) for s in n.in_shapes]  # a detector's heads take one box list per image: "9 × 150×4"
        shown = f"{len(ins)} × {ins[0]}" if len(ins) > 2 and len(set(ins)) == 1 else " + ".join(ins)
        table.add_row(n.name, n.kind, shown, fmt_shape(n.out_shape),
                      f"{n.params:,}", si(n.macs), f"{100 * n.share:.1f}%", human_bytes(n.activation_bytes))
    console.print(table)
    console.print(f"params [bold]{p.params:,}[/bold] ({p.trainable_params:,} trainable) · "
                  f"[bold]{p.macs / 1e9:.3f} GMACs[/bold] = {p.flops / 1e9:.3f} GFLOPs (FLOPs = 2 × MACs)")
    console.print(f"memory: weights {human_bytes(p.param_bytes)} · forward activations "
                  f"{human_bytes(p.activation_bytes)} · training step ≈ {human_bytes(p.train_peak_bytes)} "
                  "(weights + grads + Adam states + activations; estimate)")
    if p.uncounted:
        ops = ", ".join(f"{op} ×{n}" for op, n in p.uncounted.items())
        console.print(f"[dim]not in MACs (no multiply-accumulate count): {ops}[/dim]")
    if all_ops:
        console.print(f"with them (--all-ops): ≈ {(p.flops + p.uncounted_flops_estimate) / 1e9:.3f} GFLOPs "
                      f"(+{p.uncounted_flops_estimate / 1e9:.3f} estimated)")
    train = train_line(p)
    if train is not None:
        console.print(train, highlight=False)
    for line in p.disagreements:
        console.print(f"[yellow]warning:[/yellow] analytic and counted MACs disagree — {line}")
    if p.ultralytics is not None:
        console.print(str(p.ultralytics), highlight=False)
    if p.data_dependent is not None:
        console.print(f"[yellow]data-dependent:[/yellow] {p.data_dependent.line()}", highlight=False)


def render_compare(c: Comparison, console: Console) -> None:
    """Every network's totals under its own name, and each one's Δ against the first."""
    from .profile.compare import METRICS

    table = Table(title=c.title, title_justify="left", header_style="bold")
    table.add_column("")
    table.add_column(c.names[0], justify="right", overflow="fold")  # a long name wraps, never cut to "…"
    for name in c.names[1:]:
        table.add_column(name, justify="right", overflow="fold")
        table.add_column("Δ", justify="right")
        table.add_column("Δ %", justify="right")
    for metric, label in METRICS:
        cells = [f"{c.value(0, metric):,}"]
        for i in range(1, len(c.names)):
            d, pct = c.delta(i, metric)
            cells += [f"{c.value(i, metric):,}", f"{d:+,}", "—" if pct is None else f"{pct:+.2f}%"]
        table.add_row(label, *cells)
    console.print(table)


def render_stitch(r: StitchReport, console: Console) -> None:
    """The diff of an edit: every inserted/replaced/wrapped/removed module, then Δparams and ΔMACs."""
    table = Table(title=f"{r.name} — edits at input {'×'.join(map(str, r.input_shape))}", title_justify="left",
                  header_style="bold")
    for col, justify in (("edit", "left"), ("glob", "left"), ("module", "left"), ("block", "left"),
                         ("in shape", "left"), ("out shape", "left"), ("params", "right"), ("new", "right"),
                         ("removed", "right")):
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for e in r.edits:
        table.add_row(e.op, e.pattern, e.module, e.kind, fmt_shape(e.in_shape), fmt_shape(e.out_shape),
                      f"{e.params:+,}", f"{e.new:,}", f"{e.removed:,}")
    console.print(table)
    dp, dm = r.params_after - r.params_before, r.macs_after - r.macs_before
    console.print(f"params {r.params_before:,} → [bold]{r.params_after:,}[/bold] ({dp:+,}, "
                  f"{100 * dp / max(r.params_before, 1):+.2f}%) · GMACs {r.macs_before / 1e9:.3f} → "
                  f"[bold]{r.macs_after / 1e9:.3f}[/bold] ({100 * dm / max(r.macs_before, 1):+.2f}%) · "
                  f"{r.new_params:,} newly initialised, {r.kept_params:,} kept, {r.removed_params:,} removed")
    rule = r.input_rule
    if rule is not None:
        console.print(f"input sizes: [bold]{escape(rule.text)}[/bold] (found on meta tensors at {len(rule.tried)} "
                      "sizes)", highlight=False)


_STATUS = {"passed": "[green]passed[/green]", "failed": "[red]FAILED[/red]", "skipped": "[dim]skipped[/dim]"}


def render_check(r: CheckReport, console: Console) -> None:
    """Each check with its status and reason, the inferred constraints, and the verdict."""
    table = Table(title=f"{r.target} — layout {r.layout}", title_justify="left", header_style="bold")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for c in r.checks:
        status = _STATUS.get(c.status, c.status) if c.required or c.status != "failed" else "[yellow]failed[/yellow]"
        table.add_row(c.name + ("" if c.required else " [dim](info)[/dim]"), status, c.message)
    console.print(table)
    if r.constraints:
        console.print("constraints: " + ", ".join(f"{c.axis} {c.rule} {c.value}" for c in r.constraints))
    macs = r.macs_at.get("macs")
    if macs is not None and macs >= 0:
        console.print(f"params {r.params:,} · {macs / 1e6:,.2f} MMACs at {fmt_shape(r.macs_at['input'])}")
    slow = r.check("time budget")
    console.print("[bold green]plug-and-play: every required check holds[/bold green]" if r.ok else
                  f"[bold red]not plug-and-play: {slow.message.split(';')[0]}[/bold red]" if slow else
                  "[bold red]not plug-and-play: see the failed checks[/bold red]")


def render_stitch_rows(report: StitchTable, console: Console) -> None:
    """Δparams, ΔMACs, Δ CPU latency per insertion point (a paired ratio with its 95 % interval), then the
    timing's warnings."""
    base = report.base_latency
    timing = (f"{base.median:.1f} ms CPU [95 % CI {base.ci_low:.1f}, {base.ci_high:.1f}], batch 1, "
              f"{report.rounds} paired rounds") if base is not None else "latency not timed"
    table = Table(title=f"stitched into {report.into} (baseline {report.params:,} params, "
                        f"{report.macs / 1e9:.3f} GMACs, {timing})", title_justify="left", header_style="bold")
    for col in ("after", "shape", "Δparams", "ΔMACs", "Δlatency [95 % CI]"):
        table.add_column(col, justify="left" if col in ("after", "shape") else "right")
    for r in report.rows:
        table.add_row(r.at, fmt_shape(r.shape), f"{r.params:+,} ({r.params_pct:+.2f}%)",
                      f"{r.macs / 1e6:+,.2f} M ({r.macs_pct:+.2f}%)", r.latency_text)
    console.print(table)
    if report.floor is not None:
        console.print(f"noise floor: a second copy of the baseline (same weights) reads {report.floor.text()}; a "
                      "row is within noise when its interval meets this one or 0 %", highlight=False)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _rate(flops_per_s: float | None) -> str:
    """Achieved FLOP/s with a prefix that fits (``12.3 GFLOP/s``), never ``0.000 TFLOP/s``."""
    from .spread import scaled

    return "—" if flops_per_s is None else scaled(flops_per_s, "FLOP/s")


def _pct(fraction: float) -> str:
    """A fraction as a percentage with two significant figures when small (``0.0013%``, never ``0.0%``)."""
    from .spread import fit_digits

    value = 100 * fraction
    return f"{value:.{1 if abs(value) >= 1 or value == 0 else fit_digits(value, 2)}f}%"


def render_warnings(lines: list[str], console: Console) -> None:
    """Each warning once, as ``warning: …`` (the CLIs print them on stderr, beside the numbers)."""
    for line in dict.fromkeys(lines):
        console.print(f"[yellow]warning:[/yellow] {line}", highlight=False)


def render_bench(r: BenchResult, console: Console) -> None:
    """One measurement, every number labelled; the median with its p10–p90 and 95 % confidence interval."""
    from .profile.report import human_bytes  # the profile's own formatting
    opts = ", ".join(k for k, v in r.options.items() if v) or "eager"
    console.print(f"[bold]{r.target}[/bold] · {r.mode} · batch {r.batch} × {fmt_shape(r.input_shape)} · {r.dtype} · "
                  f"{opts} · {r.device_name} · torch {r.torch_version}")
    if r.error:
        console.print(f"[red]{r.error}[/red]")
        return
    calls = f", each of {r.calls_per_sample} calls" if r.calls_per_sample > 1 else ""
    spread = r.spread
    latency = (f"{spread.text('ms', None)[:-1]}{calls})" if spread is not None else
               f"{_ms(r.median_ms)} ms (p10 {_ms(r.p10_ms)}, p90 {_ms(r.p90_ms)}; {r.reps} reps{calls})")
    rate = r.flops_per_s if r.flops_per_s is not None else None if r.tflops is None else r.tflops * 1e12
    console.print(f"median [bold]{latency}[/bold] after {r.warmup_reps} warm-up · "
                  f"{r.throughput:,.1f} samples/s · {_rate(rate)} achieved", highlight=False)
    if r.roofline_efficiency is not None:
        console.print(f"roofline efficiency {_pct(r.roofline_efficiency)} (of max(FLOPs/peak, bytes/bandwidth),"
                      " peaks measured once on this device; --refresh-peaks measures them again)")
    if r.peak_allocated_bytes is not None:
        console.print(f"peak memory: {human_bytes(r.peak_allocated_bytes)} allocated, "
                      f"{human_bytes(r.peak_reserved_bytes or 0)} reserved")
    else:
        console.print("[dim]peak memory: not measured on CPU (no allocator statistics)[/dim]")


def _ci(low: object, high: object, coverage: object = None) -> str:
    """``'4.00–4.50'`` (with the real coverage when it is under 95 %), or an em dash for rows without one."""
    from .spread import fit_digits

    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)):
        return "—"
    d = fit_digits(low)
    cov = f" ({round(100 * coverage)} %)" if isinstance(coverage, float) and coverage < 0.95 else ""
    return f"{low:.{d}f}–{high:.{d}f}{cov}"


def render_blocks(rows: list[BlockTime], console: Console) -> None:
    """Per-block times, slowest first: each median with its 95 % confidence interval."""
    from .spread import fit_digits

    table = Table(title="blocks, each timed alone at its own input (slowest first)", title_justify="left",
                  header_style="bold")
    for col in ("node", "kind", "input", "median ms", "95 % CI", "n", "share"):
        table.add_column(col, justify="left" if col in ("node", "kind", "input") else "right")
    for b in rows:
        s = b.spread
        table.add_row(b.name, b.kind, " + ".join(fmt_shape(x) for x in b.in_shapes),
                      f"{b.median_ms:.{fit_digits(b.median_ms)}f}", _ci(s.ci_low, s.ci_high, s.coverage), str(s.n),
                      f"{100 * b.share:.1f}%")
    console.print(table)


def _options_label(options: object) -> str:
    """The options an entry turned on (`channels_last, compile=max-autotune`), or an em dash."""
    if not isinstance(options, dict):
        return "—"
    on = [k if v is True else f"{k}={v}" for k, v in options.items() if v not in (None, False)]
    return ", ".join(on) or "—"


def render_sweep(entries: list[dict[str, object]], console: Console) -> None:
    """Summary of a sweep's JSONL entries: each median with its 95 % CI and p10–p90, rates scaled; the input and
    options columns show only when they vary. Rows written before the CI existed show an em dash there."""
    from .spread import fit_digits

    inputs = {str(e.get("input_shape")) for e in entries}
    options = {_options_label(e.get("options")) for e in entries}
    extra = (["input"] if len(inputs) > 1 else []) + (["options"] if options != {"—"} else [])
    table = Table(title="sweep", title_justify="left", header_style="bold")
    for col in ("target", "mode", "dtype", "batch", *extra, "median ms", "95 % CI", "p10–p90", "samples/s",
                "FLOP/s", "roofline"):
        table.add_column(col, justify="left" if col in ("target", "mode", "dtype", "options") else "right")
    for e in entries:
        head = [str(e.get("target")), str(e.get("mode", "")), str(e.get("dtype", "")), str(e.get("batch", ""))]
        if "input" in extra:
            shape = e.get("input_shape")
            head.append("×".join(str(d) for d in shape) if isinstance(shape, list) else "")
        if "options" in extra:
            head.append(_options_label(e.get("options")))
        median = e.get("median_ms")
        if e.get("error") or not isinstance(median, (int, float)):
            table.add_row(*head, f"[red]{e.get('error')}[/red]", "", "", "", "", "")
            continue
        eff, tflops = e.get("roofline_efficiency"), e.get("tflops")
        rate = e.get("flops_per_s")
        if not isinstance(rate, (int, float)):
            rate = tflops * 1e12 if isinstance(tflops, (int, float)) else None
        d = fit_digits(median)
        table.add_row(*head, f"{median:.{d}f}",
                      _ci(e.get("latency_ms_ci_low"), e.get("latency_ms_ci_high"), e.get("latency_ms_coverage")),
                      _ci(e.get("p10_ms"), e.get("p90_ms")), f"{e['throughput']:,.1f}", _rate(rate),
                      _pct(eff) if isinstance(eff, float) else "—")
    console.print(table)
