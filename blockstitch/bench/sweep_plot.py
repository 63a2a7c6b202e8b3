"""A sweep's plots, each median drawn with its 95 % confidence interval as an error bar: latency against batch
(one line per target/dtype/mode) and, with per-block times, each target's slowest blocks.

The points and bars come from :func:`latency_series` and :func:`block_bars` (plain records); the figures draw
them, so what a plot shows can be checked without reading pixels. Rows written before the interval existed
are drawn without a bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..output import os_error, writable, write_file

__all__ = ["Point", "latency_series", "block_bars", "latency_figure", "blocks_figure", "plot"]


@dataclass(frozen=True)
class Point:
    """One median with its interval (``low``/``high`` equal to ``y`` when the row has none)."""

    x: Any
    """The batch (latency plot) or the block's name (per-block bars)."""
    y: float
    low: float
    high: float


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _point(x: Any, row: dict[str, Any]) -> Point:
    y = float(row["median_ms"])
    low, high = row.get("latency_ms_ci_low"), row.get("latency_ms_ci_high")
    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)):
        return Point(x, y, y, y)
    return Point(x, y, float(low), float(high))


def latency_series(entries: list[dict[str, Any]]) -> dict[str, list[Point]]:
    """Each target/dtype/mode's points, sorted by batch.

    >>> latency_series(read_results(Path("sweep.jsonl")))["lenet5 float32 infer"][0]  # doctest: +SKIP
    Point(x=1, y=0.21, low=0.2, high=0.23)
    """
    series: dict[str, list[Point]] = {}
    for e in entries:
        if not isinstance(e.get("median_ms"), (int, float)):
            continue
        options = e.get("options")
        compiled = isinstance(options, dict) and options.get("compile")
        label = f"{e['target']} {e['dtype']} {e['mode']}" + (" compiled" if compiled else "")
        series.setdefault(label, []).append(_point(e["batch"], e))
    return {label: sorted(points, key=lambda p: p.x) for label, points in sorted(series.items())}


def block_bars(rows: list[dict[str, Any]], limit: int = 25) -> list[Point]:
    """The ``limit`` slowest blocks' bars (the rows come slowest first), each with its interval."""
    return [_point(r["name"], r) for r in rows if isinstance(r.get("median_ms"), (int, float))][:limit]


def _yerr(points: list[Point]) -> list[list[float]]:
    """matplotlib's asymmetric error: distances below and above each median."""
    return [[p.y - p.low for p in points], [p.high - p.y for p in points]]


def latency_figure(entries: list[dict[str, Any]]) -> Any:
    """Latency against batch, log-log, each median with its 95 % CI as an error bar (None without points)."""
    plt = _pyplot()
    series = latency_series(entries)
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, points in series.items():
        ax.errorbar([p.x for p in points], [p.y for p in points], yerr=_yerr(points), marker="o", capsize=3,
                    label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch")
    ax.set_ylabel("median latency (ms), bars: 95 % CI")
    ax.set_title(f"latency vs batch — {entries[0].get('device_name', '')}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def blocks_figure(target: str, rows: list[dict[str, Any]]) -> Any:
    """A target's slowest blocks as horizontal bars with their 95 % CI (None without timed rows)."""
    plt = _pyplot()
    bars = block_bars(rows)[::-1]  # the slowest on top
    if not bars:
        return None
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(bars) + 1.2))
    ax.barh([p.x for p in bars], [p.y for p in bars], xerr=_yerr(bars), capsize=2)
    ax.set_xlabel("median ms (each block alone, at its own input), bars: 95 % CI")
    ax.set_title(f"{target}: slowest blocks")
    fig.tight_layout()
    return fig


def _save(fig: Any, path: Path) -> Path:
    """A figure as PNG through the one writer (whole file or none; a located line on a full disk, a folder…)."""
    import io

    plt = _pyplot()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=120)
    finally:
        plt.close(fig)
    return write_file(path, buffer.getvalue())


def plot(entries: list[dict[str, Any]], folder: Path, blocks: dict[str, Any] | None = None) -> list[Path]:
    """latency_vs_batch.png (one line per target/dtype/mode) and, with per-block times, blocks_<target>.png;
    every median with its 95 % CI as an error bar."""
    _pyplot()  # without matplotlib: ImportError before anything is written
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise os_error(err, folder) from None
    writable(folder / "latency_vs_batch.png")
    written = []
    fig = latency_figure(entries)
    if fig is not None:
        written.append(_save(fig, folder / "latency_vs_batch.png"))
    for target, rows in (blocks or {}).items():
        fig = blocks_figure(target, rows)
        if fig is not None:
            written.append(_save(fig, folder / f"blocks_{target.replace(':', '_').replace('/', '_')}.png"))
    return written
