"""The Pareto plot: the metric against MACs and against latency, one point per variant (mean ± std over seeds as
an error bar; on the latency axis the median's 95 % CI as a horizontal one), the baseline marked, the Pareto
front (nothing cheaper scores higher) drawn — PNG and SVG.

Needs matplotlib (the ``plot`` extra); without it :func:`plot_pareto` returns no files and says why.

>>> plot_pareto(table, Path("runs/ablation"))
[PosixPath('runs/ablation/pareto.png'), PosixPath('runs/ablation/pareto.svg')]
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .variants import BASELINE

__all__ = ["plot_pareto", "pareto_front"]


def pareto_front(points: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """The points no other point beats on both axes (lower cost ``x``, higher score ``y``), by cost."""
    front: list[tuple[float, float, str]] = []
    for x, y, name in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or y > front[-1][1]:
            front.append((x, y, name))
    return front


def _ci_bars(row: dict[str, Any], x: float) -> list[list[float]] | None:
    """The latency median's 95 % CI as matplotlib's asymmetric ``xerr`` (None when the row has none)."""
    lo, hi = row.get("latency_ci_low_ms"), row.get("latency_ci_high_ms")
    if not isinstance(lo, (int, float)) or not isinstance(hi, (int, float)):
        return None
    return [[max(0.0, x - lo)], [max(0.0, hi - x)]]


def plot_pareto(table: dict[str, Any], out_dir: Path, stem: str = "pareto") -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.svg``; returns the files (none without matplotlib or scores)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    rows = [r for r in table["rows"] if isinstance(r.get("mean"), float) and math.isfinite(r["mean"])]
    if not rows:
        return []
    axes_spec = [("macs", "MACs (millions)", 1e-6), ("latency_ms", "latency (ms)", 1.0)]
    axes_spec = [a for a in axes_spec if all(isinstance(r.get(a[0]), (int, float)) for r in rows)]
    if not axes_spec:
        return []
    fig, axes = plt.subplots(1, len(axes_spec), figsize=(5.5 * len(axes_spec), 4.2), squeeze=False)
    metric = table["metric"]
    for ax, (key, label, scale) in zip(axes[0], axes_spec):
        points = [(r[key] * scale, r["mean"], r["variant"]) for r in rows]
        front = pareto_front(points)
        ax.plot([p[0] for p in front], [p[1] for p in front], "-", color="0.7", zorder=1, label="Pareto front")
        for r, (x, y, name) in zip(rows, points):
            base = name == BASELINE
            xerr = _ci_bars(r, x) if key == "latency_ms" else None  # the median's 95 % CI, as every timing has
            ax.errorbar(x, y, yerr=r["std"] or 0.0, xerr=xerr, fmt="s" if base else "o", ms=8 if base else 6,
                        color="black" if base else None, capsize=3, zorder=2)
            ax.annotate(name + (" ★" if r.get("best") else ""), (x, y), textcoords="offset points", xytext=(4, 4),
                        fontsize=8)
        ax.set_xlabel(label)
        ax.set_ylabel(f"{metric} (mean ± std over seeds)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"{table['name']}: {metric} against cost (■ baseline)")
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for ext in ("png", "svg"):
        path = out_dir / f"{stem}.{ext}"
        fig.savefig(path, dpi=120, metadata={"Date": None} if ext == "svg" else None)
        files.append(path)
    plt.close(fig)
    return files
