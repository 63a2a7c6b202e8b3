"""Sweeps: targets × batch × input × dtype × options from a small YAML file, each result appended to a JSONL
file the moment it is measured (so a killed sweep resumes where it stopped), then a summary and PNG plots.

A sweep file is data: its `targets` are looked up by :mod:`blockstitch.sources` (zoo names, spec files, timm or
torchvision names, block kinds) and can never name code. Results lose nothing: each one is appended with a single
write and fsync; on resume, lines that cannot be read are reported by number and left as they are.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..assemble import load_file
from ..assemble.limits import MAX_INPUT_DIM, MAX_REPEAT, check_spec_numbers
from ..errors import SpecError, pydantic_error
from ..output import append_line, locked, os_error, writable, write_file
from ..progress import ProgressLike, Steps
from . import BenchResult, bench
from .digest import changed_parts, sweep_parts, target_digest
from .sweep_plot import plot
from .trial import measure, per_block_times

__all__ = ["SweepSpec", "load_sweep", "run_sweep", "plan_sweep", "SweepPlan", "entry_key", "read_results",
           "scan_results", "Results", "plot", "MAX_COMBINATIONS", "measure", "per_block_times"]

MAX_COMBINATIONS = 10_000
"""Measurements one sweep file may ask for (the product of its lists)."""
_Size = Annotated[int, Field(ge=1, le=MAX_INPUT_DIM)]


def _one(value: Any) -> Callable[[], list[Any]]:
    """A default factory: a fresh one-item list ``[value]`` for each spec."""
    return lambda: [value]



class SweepSpec(BaseModel):
    """A sweep file: every combination of the lists is measured once."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    targets: list[str] = Field(min_length=1, max_length=MAX_REPEAT)
    """Spec files (relative to the sweep file), zoo names, `timm:<model>`, `torchvision:<model>` or block kinds
    (kinds need `input`). Never code: `file.py:Name` is refused."""
    batch: list[_Size] = Field(default_factory=_one(1), min_length=1)
    """Batch sizes."""
    input: list[Annotated[list[_Size], Field(min_length=1, max_length=4)] | None] = Field(
        default_factory=_one(None), min_length=1)
    """Input shapes without the batch (null: the target's own)."""
    dtype: list[Literal["float32", "bfloat16", "float16"]] = Field(default_factory=_one("float32"))
    """Data types."""
    mode: list[Literal["infer", "train"]] = Field(default_factory=_one("infer"))
    """infer, or train (forward + backward + optimizer step)."""
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d{1,2})?|mps)$")
    """cpu or cuda."""
    amp: list[bool] = Field(default_factory=_one(False))
    """Autocast instead of pure dtype."""
    channels_last: list[bool] = Field(default_factory=_one(False))
    """channels_last memory format."""
    compile: list[Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] | bool | None] = \
        Field(default_factory=_one(None))
    """torch.compile modes (null = eager)."""
    cuda_graphs: list[bool] = Field(default_factory=_one(False))
    """CUDA graphs (CUDA only)."""
    args: dict[str, Any] = Field(default_factory=dict)
    """Fields for block-kind targets."""
    budget_s: float = Field(2.0, gt=0, le=3600)
    """Time budget per measurement, seconds."""
    per_block: bool = False
    """Also time every node of spec targets (at the first batch/input/dtype), for the per-block plot."""
    backend: Literal["local", "ray"] = "local"
    """Where each measurement runs: here, one after another, or as a Ray task (``--backend`` overrides)."""
    cpus_per_trial: float = Field(1.0, gt=0, le=1024)
    """Ray: CPUs each measurement reserves (and its torch threads); fractions allowed."""
    gpus_per_trial: float = Field(0.0, ge=0, le=64)
    """Ray: GPUs each measurement reserves; fractions share a GPU (and its timings)."""


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep file (errors name file:line); every target is looked up now, as data.

    >>> load_sweep("sweep.yaml").targets
    ['resnet18', 'timm:resnet18']
    """
    from ..sources import TARGETS, resolve

    if Path(path).suffix.lower() not in (".yaml", ".yml", ".json"):
        raise SpecError("a sweep file is YAML or JSON (.yaml, .yml, .json)", file=str(path))
    located = load_file(path)
    try:
        spec = SweepSpec.model_validate(located.data)
    except ValidationError as err:
        raise pydantic_error(err, model=SweepSpec, what="the sweep spec", located=located) from None
    try:
        check_spec_numbers(spec.args, "args")  # fields for block-kind targets: the same bounds as a spec's
    except SpecError as err:
        where = ("args", (err.found or "").split(".")[0])
        line, column = located.mark(where)
        err.found = None
        raise err.located(file=located.file, line=line, column=column, path=f"args.{where[-1]}") from None
    combos = 1
    for values in (spec.targets, spec.batch, spec.input, spec.dtype, spec.mode, spec.amp, spec.channels_last,
                   spec.compile, spec.cuda_graphs):
        combos *= len(values)
    if combos > MAX_COMBINATIONS:
        raise located.error(f"the sweep asks for {combos:,} measurements (at most {MAX_COMBINATIONS:,})", (),
                            hint="split it into several sweep files")
    for i, target in enumerate(spec.targets):
        found = resolve(target, TARGETS, origin=located, loc=("targets", i))
        sibling = Path(str(located.file)).parent / target
        if found.what in ("spec", "edit") and sibling.is_file() and not Path(target).is_file():
            spec.targets[i] = found.name  # a spec next to the sweep file: the path that finds it from anywhere
        if found.what == "block" and spec.input == [None]:
            raise located.error(f"target '{target}' is a block kind: it needs `input:` (without the batch)",
                                ("targets", i))
    return spec


def entry_key(entry: dict[str, Any]) -> str:
    """What identifies a measurement, for resuming: a spec-file target by the file it resolves to
    (``target_id``), not by how its path was spelled; other targets by their name. What the target *contains*
    is the row's ``digest`` (:func:`~blockstitch.bench.digest.target_digest`): a row with this key and another
    digest is stale, measured again, and superseded."""
    fields = ("batch", "input_shape_requested", "dtype", "mode", "device", "options")
    key = {k: entry.get(k) for k in fields}
    key["target"] = entry.get("target_id") or entry.get("target")
    return json.dumps(key, sort_keys=True)


def target_id(target: str) -> str:
    """``/abs/path/net.yaml`` for a spec file (however its path was spelled); the name itself otherwise.

    >>> target_id("timm:resnet18")
    'timm:resnet18'
    """
    path = Path(target)
    if path.suffix.lower() not in (".yaml", ".yml", ".json") or not path.is_file():
        return target
    return str(path.resolve())


@dataclass
class Results:
    """A results file read back: the measurements, one per key, and the lines that could not be read."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    bad_lines: list[int] = field(default_factory=list)
    """1-based numbers of lines that are not a JSON result (left in the file as they are)."""
    duplicates: int = 0
    """Lines repeating a measurement already read with the same digest (the first one counts)."""
    superseded: int = 0
    """Rows measured again after their target, options or versions changed (the later row counts)."""


def scan_results(path: Path) -> Results:
    """Read a JSONL results file line by line: good rows kept (once per key), bad lines numbered, nothing
    rewritten.

    >>> scan_results(Path("sweep.jsonl")).bad_lines
    [7]
    """
    out = Results()
    if not path.is_file():
        return out
    seen: dict[str, int] = {}
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError):
                entry = None
            if not isinstance(entry, dict) or not isinstance(entry.get("target"), str):
                out.bad_lines.append(number)
                continue
            key = entry_key(entry)
            if key in seen:
                if out.entries[seen[key]].get("digest") == entry.get("digest"):
                    out.duplicates += 1
                else:  # re-measured because what produced the old row changed: the new row stands
                    out.superseded += 1
                    out.entries[seen[key]] = entry
                continue
            seen[key] = len(out.entries)
            out.entries.append(entry)
    return out


def read_results(path: Path) -> list[dict[str, Any]]:
    """Entries of a JSONL file, once per measurement; unreadable lines (a kill mid-write) are skipped."""
    return scan_results(path).entries


def _append(path: Path, line: str) -> None:
    """One result on disk, whole, before the next measurement starts (:func:`blockstitch.output.append_line`)."""
    append_line(path, line)


def _grid(spec: SweepSpec) -> Iterator[dict[str, Any]]:
    for target, batch, shape, dtype, mode, amp, cl, comp, graphs in itertools.product(
            spec.targets, spec.batch, spec.input, spec.dtype, spec.mode, spec.amp, spec.channels_last, spec.compile,
            spec.cuda_graphs):
        options = {"amp": amp, "channels_last": cl, "compile": comp, "cuda_graphs": graphs, "flush_l2": False}
        yield {"target": target, "target_id": target_id(target), "batch": batch, "input_shape_requested": shape,
               "dtype": dtype, "mode": mode, "device": spec.device, "options": options}


@dataclass
class SweepPlan:
    """What a run of a sweep will do with a results file: measure ``todo``, reuse ``reused`` rows (same
    measurement, same digest) and measure again the ``stale`` ones (their target, options or versions changed)."""

    todo: list[dict[str, Any]]
    reused: list[dict[str, Any]]
    stale: list[dict[str, Any]]
    why: dict[str, list[str]] = field(default_factory=dict)
    """Target → what changed since its stale rows were measured (``spec base.yaml changed``)."""


def _options_of(spec: SweepSpec) -> dict[str, Any]:
    """The sweep settings a row's numbers depend on besides its own fields."""
    return {"args": spec.args, "budget_s": spec.budget_s}


def plan_sweep(spec: SweepSpec, out: Path) -> SweepPlan:
    """Every combination of ``spec`` with its digest, split into rows to measure and rows of ``out`` to reuse.

    >>> plan_sweep(load_sweep("sweep.yaml"), Path("sweep.jsonl")).reused  # doctest: +SKIP
    """
    have = {entry_key(e): e for e in scan_results(out).entries}
    digests = {t: target_digest(t, _options_of(spec)) for t in dict.fromkeys(spec.targets)}
    parts = {t: sweep_parts(t, _options_of(spec)) for t in digests}
    plan = SweepPlan([], [], [])
    seen: set[str] = set()
    for combo in _grid(spec):  # a value listed twice is measured once
        key = entry_key(combo)
        if key in seen:
            continue
        seen.add(key)
        combo["digest"] = digests[combo["target"]]
        old = have.get(key)
        if old is not None and old.get("digest") == combo["digest"]:
            plan.reused.append(old)
            continue
        combo["parts"] = parts[combo["target"]]
        if old is not None:
            plan.stale.append(old)
            said = (changed_parts(old["parts"], combo["parts"]) if isinstance(old.get("parts"), dict)
                    else ["measured before rows recorded what produced them"])
            plan.why.setdefault(combo["target"], [])
            plan.why[combo["target"]] += [w for w in said if w not in plan.why[combo["target"]]]
        plan.todo.append(combo)
    return plan


def run_sweep(spec: SweepSpec, out: Path, progress: ProgressLike = None,
              runner: Callable[..., BenchResult] = bench, *, backend: Literal["local", "ray"] = "local",
              address: str | None = None, cpus_per_trial: float = 1.0,
              gpus_per_trial: float = 0.0) -> list[dict[str, Any]]:
    """Measure every combination not already in ``out`` with the same digest (:func:`plan_sweep`: an edited
    target is measured again); append each result (or its error) as it comes.

    ``backend="ray"`` makes each combination a Ray task (``cpus_per_trial``/``gpus_per_trial`` declared, fractions
    allowed) on the cluster at ``address`` (default: a private local Ray); this process still writes every row.
    ``progress`` hears of one step per combination (and one for the per-block times; :mod:`blockstitch.progress`).
    """
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise os_error(err, out) from None
    writable(out)  # a folder, a missing or read-only place: said before anything is measured
    with locked(out, wait_s=0, what="another sweep"):  # one sweep per results file, however it is spelled
        return _run_sweep(spec, out, progress, runner, backend, address, cpus_per_trial, gpus_per_trial)


def _run_sweep(spec: SweepSpec, out: Path, progress: ProgressLike,
               runner: Callable[..., BenchResult], backend: str, address: str | None, cpus_per_trial: float,
               gpus_per_trial: float) -> list[dict[str, Any]]:
    planned = plan_sweep(spec, out)
    todo = planned.todo
    if out.is_file() and out.stat().st_size:
        with out.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":  # a kill mid-write left half a line: it stays, the next result starts anew
                _append(out, "")
    blocks_file = out.with_suffix(".blocks.json")
    want_blocks = spec.per_block and (not blocks_file.exists() or bool(planned.stale))
    blocks: dict[str, Any] | None = None
    if backend == "ray" and (todo or want_blocks):  # nothing left to measure: no Ray started
        from .sweep_ray import measure_on_ray

        blocks = measure_on_ray(todo, spec, lambda entry: _append(out, json.dumps(entry)), progress, runner,
                                per_block=want_blocks, address=address, cpus_per_trial=cpus_per_trial,
                                gpus_per_trial=gpus_per_trial)
    else:
        with Steps(progress, len(todo) + want_blocks) as steps:  # one step per combination, one for the blocks
            for combo in todo:
                steps.next(f"measuring {combo['target']} b{combo['batch']} {combo['dtype']} {combo['mode']}")
                _append(out, json.dumps(measure(combo, spec, runner)))
            if want_blocks:
                steps.next("timing every block alone")
                blocks = per_block_times(spec)
    if blocks is not None:
        write_file(blocks_file, json.dumps(blocks, indent=1))  # atomic: a kill leaves the old file or the new one
    return read_results(out)
