"""Sweeps: targets × batch × input × dtype × options from a small YAML file, each result appended to a JSONL
file the moment it is measured (so a killed sweep resumes where it stopped), then a summary and PNG plots."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..assemble import load_file
from ..assemble.spec import validation_error
from . import BenchResult, bench, bench_blocks

__all__ = ["SweepSpec", "load_sweep", "run_sweep", "entry_key", "read_results", "plot"]


class SweepSpec(BaseModel):
    """A sweep file: every combination of the lists is measured once."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    targets: list[str] = Field(min_length=1)
    """Spec files, zoo names, `timm:<model>` or block kinds (kinds need `input`)."""
    batch: list[int] = Field(default_factory=lambda: [1])
    """Batch sizes."""
    input: list[list[int] | None] = Field(default_factory=lambda: [None])
    """Input shapes without the batch (null: the target's own)."""
    dtype: list[Literal["float32", "bfloat16", "float16"]] = Field(default_factory=lambda: ["float32"])
    """Data types."""
    mode: list[Literal["infer", "train"]] = Field(default_factory=lambda: ["infer"])
    """infer, or train (forward + backward + optimizer step)."""
    device: str = "cpu"
    """cpu or cuda."""
    amp: list[bool] = Field(default_factory=lambda: [False])
    """Autocast instead of pure dtype."""
    channels_last: list[bool] = Field(default_factory=lambda: [False])
    """channels_last memory format."""
    compile: list[str | bool | None] = Field(default_factory=lambda: [None])
    """torch.compile modes (null = eager)."""
    cuda_graphs: list[bool] = Field(default_factory=lambda: [False])
    """CUDA graphs (CUDA only)."""
    args: dict[str, Any] = Field(default_factory=dict)
    """Fields for block-kind targets."""
    budget_s: float = 2.0
    """Time budget per measurement, seconds."""
    per_block: bool = False
    """Also time every node of spec targets (at the first batch/input/dtype), for the per-block plot."""


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep file (errors name file:line)."""
    located = load_file(path)
    try:
        return SweepSpec.model_validate(located.data)
    except ValidationError as err:
        raise validation_error(err, located, (), SweepSpec) from None


def entry_key(entry: dict[str, Any]) -> str:
    """What identifies a measurement, for resuming."""
    fields = ("target", "batch", "input_shape_requested", "dtype", "mode", "device", "options")
    return json.dumps({k: entry.get(k) for k in fields}, sort_keys=True)


def read_results(path: Path) -> list[dict[str, Any]]:
    """Entries of a JSONL file; a line cut short by a kill is skipped."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def _grid(spec: SweepSpec) -> Iterator[dict[str, Any]]:
    for target, batch, shape, dtype, mode, amp, cl, comp, graphs in itertools.product(
            spec.targets, spec.batch, spec.input, spec.dtype, spec.mode, spec.amp, spec.channels_last, spec.compile,
            spec.cuda_graphs):
        options = {"amp": amp, "channels_last": cl, "compile": comp, "cuda_graphs": graphs, "flush_l2": False}
        yield {"target": target, "batch": batch, "input_shape_requested": shape, "dtype": dtype, "mode": mode,
               "device": spec.device, "options": options}


def run_sweep(spec: SweepSpec, out: Path, progress: Callable[[int, int, str], None] | None = None,
              runner: Callable[..., BenchResult] = bench) -> list[dict[str, Any]]:
    """Measure every combination not already in ``out``; append each result (or its error) as it comes."""
    done = {entry_key(e) for e in read_results(out)}
    todo = [c for c in _grid(spec) if entry_key(c) not in done]
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.is_file() and out.stat().st_size and not out.read_bytes().endswith(b"\n"):
        with out.open("a") as f:  # a kill mid-write left half a line: start the next result on its own line
            f.write("\n")
    for i, combo in enumerate(todo):
        if progress is not None:
            progress(i, len(todo), f"{combo['target']} b{combo['batch']} {combo['dtype']} {combo['mode']}")
        opts = combo["options"]
        try:
            result = runner(combo["target"], combo["input_shape_requested"], batch=combo["batch"],
                            device=combo["device"], dtype=combo["dtype"], amp=opts["amp"],
                            channels_last=opts["channels_last"], compile=opts["compile"],
                            cuda_graphs=opts["cuda_graphs"], mode=combo["mode"], budget_s=spec.budget_s,
                            args=spec.args).to_dict()
        except Exception as err:  # noqa: BLE001 — one bad entry must not lose the sweep
            result = {"error": f"{type(err).__name__}: {str(err).splitlines()[0]}"}
        # the combination's own fields win: they are what a resumed sweep recognises as done
        entry = {**result, **combo}
        with out.open("a") as f:  # one line per result, on disk before the next measurement starts
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())
    if spec.per_block:
        blocks_file = out.with_suffix(".blocks.json")
        if not blocks_file.exists():
            per = {}
            for target in spec.targets:
                try:
                    per[target] = [vars(b) for b in bench_blocks(target, spec.input[0], spec.batch[0], spec.device,
                                                                 spec.dtype[0], budget_s=min(spec.budget_s, 0.5))]
                except Exception as err:  # noqa: BLE001 — not every target is a spec
                    per[target] = [{"error": str(err).splitlines()[0]}]
            blocks_file.write_text(json.dumps(per, indent=1))
    if progress is not None:
        progress(len(todo), len(todo), "done")
    return read_results(out)


def plot(entries: list[dict[str, Any]], folder: Path, blocks: dict[str, Any] | None = None) -> list[Path]:
    """latency_vs_batch.png (one line per target/dtype/mode) and, with per-block times, blocks_<target>.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    series: dict[str, list[tuple[int, float]]] = {}
    for e in entries:
        if e.get("median_ms") is None:
            continue
        label = f"{e['target']} {e['dtype']} {e['mode']}" + (" compiled" if e.get("options", {}).get("compile") else "")
        series.setdefault(label, []).append((e["batch"], e["median_ms"]))
    if series:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for label, points in sorted(series.items()):
            points.sort()
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch")
        ax.set_ylabel("median latency (ms)")
        ax.set_title(f"latency vs batch — {entries[0].get('device_name', '')}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        written.append(folder / "latency_vs_batch.png")
        fig.savefig(written[-1], dpi=120)
        plt.close(fig)
    for target, rows in (blocks or {}).items():
        rows = [r for r in rows if "median_ms" in r][:25]
        if not rows:
            continue
        fig, ax = plt.subplots(figsize=(7, 0.3 * len(rows) + 1.2))
        ax.barh([r["name"] for r in rows][::-1], [r["median_ms"] for r in rows][::-1])
        ax.set_xlabel("median ms (each block alone, at its own input)")
        ax.set_title(f"{target}: slowest blocks")
        fig.tight_layout()
        written.append(folder / f"blocks_{target.replace(':', '_').replace('/', '_')}.png")
        fig.savefig(written[-1], dpi=120)
        plt.close(fig)
    return written
