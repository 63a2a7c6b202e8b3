"""Formatting a profile: the JSON other tools read, a Markdown table for papers, CSV for spreadsheets."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import Profile

__all__ = ["to_json", "to_markdown", "to_csv", "human_bytes", "train_line"]


def human_bytes(n: float) -> str:
    """``1536`` → ``1.50 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} TiB"


def to_json(p: Profile) -> dict[str, Any]:
    """Top-level totals, `nodes`, `uncounted`: the documented JSON shape."""
    return {
        "name": p.name, "input_shape": p.input_shape, "batch": p.batch,
        "params": p.params, "trainable_params": p.trainable_params, "macs": p.macs, "flops": p.flops,
        "param_bytes": p.param_bytes, "activation_bytes": p.activation_bytes,
        "train_peak_bytes_estimate": p.train_peak_bytes,
        "nodes": [{"name": n.name, "kind": n.kind, "in_shape": n.in_shape, "in_shapes": n.in_shapes,
                   "out_shape": n.out_shape, "params": n.params, "macs": n.macs, "share": round(n.share, 6),
                   "activation_bytes": n.activation_bytes, "analytic_macs": n.analytic_macs} for n in p.nodes],
        "uncounted": p.uncounted, "uncounted_flops_estimate": p.uncounted_flops_estimate,
        "disagreements": p.disagreements, "method": p.method,
        "data_dependent": p.data_dependent.to_dict() if p.data_dependent is not None else None,
        **({"train_flops": p.train_flops, "optimizer_step_flops_estimate": p.optimizer_flops}
           if p.train_flops is not None else {}),
        **({"ultralytics_info": p.ultralytics.to_dict()} if p.ultralytics is not None else {}),
    }


def train_line(p: Profile) -> str | None:
    """One training step's FLOPs, labelled (None when the profile was made without ``train=True``)."""
    if p.train_flops is None:
        return None
    ratio = f"{p.train_flops / p.flops:.2f}× forward; " if p.flops else ""
    return (f"Training step: forward + backward {p.train_flops / 1e9:.3f} GFLOPs ({ratio}counted, batch {p.batch}) · "
            f"optimizer step (AdamW) ≈ {(p.optimizer_flops or 0) / 1e9:.3f} GFLOPs elementwise (estimate, apart)")


def to_markdown(p: Profile, all_ops: bool = False) -> str:
    """Per-node table and a total row; MACs in millions, labelled."""
    shape = "×".join(map(str, p.input_shape))
    lines = [f"**{p.name}** — input {p.batch}×{shape}; MACs = multiply-accumulates, FLOPs = 2 × MACs", "",
             "| node | kind | output | params | MMACs | share |", "|---|---|---|---:|---:|---:|"]
    for n in p.nodes:
        out = "×".join(map(str, n.out_shape))
        lines.append(f"| {n.name} | {n.kind} | {out} | {n.params:,} | {n.macs / 1e6:,.2f} | {100 * n.share:.1f}% |")
    lines.append(f"| **total** | | | **{p.params:,}** | **{p.macs / 1e6:,.2f}** | 100% |")
    lines += ["", f"Params {p.params / 1e6:.2f} M · {p.macs / 1e9:.3f} GMACs · {p.flops / 1e9:.3f} GFLOPs · "
              f"activations {human_bytes(p.activation_bytes)} · weights {human_bytes(p.param_bytes)}"]
    if all_ops:
        lines.append(f"Uncounted ops (norms, softmax, elementwise…): ≈ {p.uncounted_flops_estimate / 1e9:.3f} "
                     "GFLOPs more (estimate, not in the totals)")
    train = train_line(p)
    if train is not None:
        lines.append(train)
    if p.ultralytics is not None:
        lines += ["", *str(p.ultralytics).splitlines()]
    if p.data_dependent is not None:
        lines.append(f"Data-dependent: {p.data_dependent.line()}")
    return "\n".join(lines)


def to_csv(p: Profile) -> str:
    """One row per node: name, kind, in/out shape, params, macs, flops, share, activation bytes."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["name", "kind", "in_shape", "out_shape", "params", "macs", "flops", "share", "activation_bytes"])
    for n in p.nodes:
        w.writerow([n.name, n.kind, "x".join(map(str, n.in_shape)), "x".join(map(str, n.out_shape)), n.params,
                    n.macs, 2 * n.macs, f"{n.share:.6f}", n.activation_bytes])
    w.writerow(["total", "", "", "", p.params, p.macs, p.flops, "1.000000", p.activation_bytes])
    return buf.getvalue()
