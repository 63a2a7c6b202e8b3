"""Benchmark networks and blocks honestly: warm-up outside the timed region, device events on CUDA, adaptive
repetitions, medians with p10/p90 and a 95 % confidence interval (:mod:`blockstitch.spread`), warnings when the
spread is wide or the machine loaded, peak memory reset per measurement, and efficiency against the device's
roofline.

>>> r = bench("resnet50", batch=8, device="cpu")
>>> r.median_ms, r.spread.ci_low, r.spread.ci_high, r.throughput, r.roofline_efficiency
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import SpecError
from ..meta import keeps_torch_state, natural_input, real_copy
from ..progress import ProgressLike, labelled, track
from ..spread import WIDE, Spread, warnings_for
from ..subject import NETWORK_KINDS, Subject, subject
from .peaks import device_name, peaks, peaks_report, refresh_peaks  # noqa: F401 — peaks: re-exported, as before
from .timing import Timing, measure

__all__ = ["BenchResult", "BlockTime", "bench", "bench_blocks", "blocks_warning", "spread_fields", "refresh_device_peaks",
           "DTYPES"]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class BenchResult:
    """One measurement; the field names are what JSON/JSONL readers get."""

    target: str
    device: str
    device_name: str
    dtype: str
    batch: int
    input_shape: list[int]
    mode: str
    median_ms: float | None
    p10_ms: float | None
    p90_ms: float | None
    throughput: float | None
    """Samples per second."""
    peak_allocated_bytes: int | None
    """Peak of the caching allocator's allocated bytes during the timed runs (CUDA; None on CPU)."""
    peak_reserved_bytes: int | None
    tflops: float | None
    """Achieved TFLOP/s, from FLOPs counted on meta tensors (forward, or forward + backward for train); the same
    rate in FLOP/s is ``flops_per_s`` (shown scaled: ``12.3 GFLOP/s``)."""
    roofline_efficiency: float | None
    """max(FLOPs / peak FLOP/s, bytes / peak bandwidth) ÷ measured time: 1.0 is the device's limit."""
    torch_version: str
    options: dict[str, Any] = field(default_factory=dict)
    reps: int = 0
    warmup_reps: int = 0
    error: str | None = None
    calls_per_sample: int = 1
    """CUDA: back-to-back calls each sample timed (calls shorter than 1 ms are timed in groups, as a loop runs)."""
    flops: int | None = None
    """FLOPs of one timed call, the numerator of :attr:`tflops`: the profile's forward FLOPs (``infer``), or its
    :attr:`~blockstitch.profile.Profile.train_flops` (``train``: forward + backward; the optimizer step apart)."""
    flops_per_s: float | None = None
    """Achieved FLOP/s at the median time (``tflops`` × 1e12)."""
    samples_ms: list[float] = field(default_factory=list)
    """Every timed sample (ms per call): the statistics are recomputable from them."""
    warnings: list[str] = field(default_factory=list)
    """Said beside the numbers: a wide spread (p90 > 1.5 × p10), a loaded machine."""
    peaks_refreshed: str | None = None
    """With ``refresh_peaks``: what was measured again and which cache file was overwritten."""

    @property
    def spread(self) -> Spread | None:
        """The samples' median, p10/p90 and 95 % CI (None when nothing was timed)."""
        return Spread.of(self.samples_ms) if self.samples_ms else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the fields, then the latency's spread flat (``latency_ms_p10``, ``latency_ms_p90``,
        ``latency_ms_ci_low``, ``latency_ms_ci_high``, ``latency_ms_coverage``, ``latency_ms_n``…) and ``n``."""
        return {**asdict(self), **spread_fields(self.spread)}


def spread_fields(spread: Spread | None, prefix: str = "latency_ms_") -> dict[str, Any]:
    """A timing's spread as flat JSON fields (``latency_ms_p10`` … and ``n``); None values when nothing was timed,
    so every row has the same keys."""
    keys = Spread.of([0.0]).as_dict(prefix)
    values: dict[str, Any] = spread.as_dict(prefix) if spread is not None else dict.fromkeys(keys)
    return {**values, "n": spread.n if spread is not None else 0}


@dataclass
class BlockTime:
    """One node timed alone at its own input shape."""

    name: str
    kind: str
    in_shapes: list[list[int]]
    median_ms: float
    share: float
    """The node's share of the summed medians."""
    samples_ms: list[float] = field(default_factory=list)
    """Every timed sample (ms)."""
    warnings: list[str] = field(default_factory=list)
    """A wide spread of this node's samples."""

    @property
    def spread(self) -> Spread:
        """The samples' median, p10/p90 and 95 % CI (a single sample of ``median_ms`` when none were kept)."""
        return Spread.of(self.samples_ms or [self.median_ms])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the fields and the spread flat, as :meth:`BenchResult.to_dict`."""
        return {**asdict(self), **spread_fields(self.spread)}

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> BlockTime:
        """A row of :meth:`to_dict` read back (a sweep's ``.blocks.json``); the derived fields are recomputed."""
        return cls(**{k: row[k] for k in cls.__dataclass_fields__ if k in row})


def _module(found: Subject, given: Any, input_shape: Sequence[int] | None,
            args: dict[str, Any] | None) -> tuple[str, nn.Module, tuple[int, ...]]:
    """(label, module on the CPU, input shape without the batch) for what ``found`` is: a network (built for
    real; a module the user gave is returned as it is), a block kind or a user's class (built with ``args``)."""
    label = str(given) if isinstance(given, str) else found.name  # what the user typed, as they typed it
    if found.is_given_module:
        shape = tuple(input_shape) if input_shape else None
        if shape is None:
            raise SpecError("bench of an nn.Module needs input_shape (without the batch)")
        return found.name, found.module(), shape
    if found.is_network:
        model = found.with_input(input_shape or None).module(device=None)
        shape = tuple(input_shape) if input_shape else natural_input(model)
        if shape is None and found.what in ("timm", "torchvision", "ultralytics"):
            shape = (3, 224, 224)
        if shape is None:
            raise SpecError(f"give --input for {label}")
        return label, model, shape
    if not input_shape:
        raise SpecError(f"benchmarking '{label}' needs --input (without the batch), e.g. 64,56,56")
    if found.what == "block":  # limits before allocation: the same field bounds as a spec's nodes
        from ..assemble.limits import check_spec_numbers

        check_spec_numbers(args or {}, f"'{found.name}' --arg")
    factory, _ = found.factory(args)
    shape = tuple(input_shape)
    layout = {3: "b c h w", 2: "b n c", 1: "b c"}.get(len(shape), "b c h w")
    channels = shape[0] if layout != "b n c" else shape[-1]
    return found.label, factory((1, *shape), layout, channels), shape


def _is_oom(err: BaseException) -> bool:
    text = str(err).lower()
    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in text or "can't allocate" in text


def _step(model: nn.Module, x: torch.Tensor, mode: str, autocast: Any) -> Any:
    if mode == "infer":
        def infer() -> object:
            with torch.inference_mode(), autocast():
                return model(x)
        return infer
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def train() -> object:
        opt.zero_grad(set_to_none=True)
        with autocast():
            out = model(x)
        out = out[0] if isinstance(out, (tuple, list)) else out
        out.float().mean().backward()
        opt.step()
        return out
    return train


def _cuda_graph(fn: Any, device: torch.device) -> Any:
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for _ in range(3):  # warm up on a side stream before capture, as CUDA graphs require
            fn()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


@keeps_torch_state
def bench(target: Subject | str | nn.Module, input_shape: Sequence[int] | None = None, batch: int = 1,
          device: str = "cpu", dtype: str = "float32", amp: bool = False, channels_last: bool = False,
          compile: str | bool | None = None, cuda_graphs: bool = False, mode: str = "infer", flush_l2: bool = False,
          budget_s: float = 2.0, roofline: bool = True, args: dict[str, Any] | None = None,
          progress: ProgressLike = None, refresh_peaks: bool = False) -> BenchResult:
    """Time one configuration. ``dtype`` is pure (weights and input cast) unless ``amp`` (autocast);
    ``compile`` is a torch.compile mode (``True`` = default); ``mode`` is ``infer`` or ``train`` (forward,
    backward and an AdamW step). An out-of-memory error comes back as a result with ``error`` set. ``progress``
    hears of the warm-up calls and the timed repetitions (:mod:`blockstitch.progress`). The result keeps every
    sample; ``warnings`` says when their spread is wide or the machine was loaded. ``refresh_peaks`` measures the
    device's peaks again and overwrites their cache (``peaks_refreshed`` says so)."""
    found = subject(target, accept=NETWORK_KINDS | {"block", "code"})  # a CommandLine stays one: only it names code
    if dtype not in DTYPES:
        raise SpecError(f"unknown dtype '{dtype}'", expected=", ".join(DTYPES))
    if mode not in ("infer", "train"):
        raise SpecError(f"unknown mode '{mode}'", expected="infer or train")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SpecError("--device cuda, but no CUDA device is available", hint="use --device cpu")
    if cuda_graphs and mode == "train":
        raise SpecError("CUDA graphs are supported for --mode infer only",
                        hint="a captured training step needs a capturable optimizer; time it without --cuda-graphs")
    if cuda_graphs and dev.type != "cuda":
        raise SpecError("CUDA graphs need a CUDA device", hint="drop --cuda-graphs or use --device cuda")
    refreshed = refresh_device_peaks(device, [dtype])[0] if refresh_peaks else None
    label, model, shape = _module(found, target, input_shape, args)
    if found.is_given_module:  # the user's module is never run, moved, cast or trained: a copy of it is
        model = real_copy(model)
    options = {"amp": amp, "channels_last": channels_last, "compile": compile, "cuda_graphs": cuda_graphs,
               "flush_l2": flush_l2}
    result = BenchResult(label, dev.type, device_name(dev), dtype, batch, list(shape), mode, None, None, None, None,
                         None, None, None, None, torch.__version__, options, peaks_refreshed=refreshed)
    from ..profile import profile

    prof = profile(model, shape, batch=batch, train=mode == "train")  # one count of training FLOPs: the profile's
    from ..assemble.limits import check_fits

    scale = torch.finfo(DTYPES[dtype]).bits / 32 if not amp else 1.0  # the profile counts float32 bytes
    need = prof.train_peak_bytes if mode == "train" else prof.param_bytes + prof.activation_bytes
    try:  # limits before allocation: a batch that cannot fit is a result, measured by nothing
        check_fits(int(prof.param_bytes * scale), int((need - prof.param_bytes) * scale), str(device), f"'{label}'")
    except SpecError as err:
        result.error = f"out of memory (estimated before allocating): {err.message}"
        return result
    flops = prof.flops if prof.train_flops is None else prof.train_flops
    result.flops = flops
    try:
        torch.manual_seed(0)
        x = torch.randn(batch, *shape, device=dev)
        model = model.to(dev)
        if not amp and dtype != "float32":
            model, x = model.to(DTYPES[dtype]), x.to(DTYPES[dtype])
        if channels_last and x.dim() == 4:
            model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
        model.train(mode == "train")
        if compile:
            model = torch.compile(model, mode=None if compile is True else str(compile))  # type: ignore[assignment]

        def autocast() -> Any:
            return torch.autocast(dev.type, dtype=DTYPES[dtype]) if amp else nullcontext()

        fn = _step(model, x, mode, autocast)
        if cuda_graphs:
            fn = _cuda_graph(fn, dev)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
        timing: Timing = measure(fn, dev, budget_s=budget_s, flush_l2=flush_l2,
                                 progress=labelled(progress, f"{label} b{batch} {dtype}"))
        if dev.type == "cuda":
            result.peak_allocated_bytes = torch.cuda.max_memory_allocated(dev)
            result.peak_reserved_bytes = torch.cuda.max_memory_reserved(dev)
    except Exception as err:  # noqa: BLE001 — an OOM is a result for this entry; anything else is raised
        if not _is_oom(err):
            raise
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        result.error = "out of memory"
        return result
    spread = timing.spread
    result.median_ms, result.p10_ms, result.p90_ms = spread.median, spread.p10, spread.p90
    result.samples_ms = list(timing.samples_ms)
    result.warnings = warnings_for(spread, f"{label} latency (batch {batch}, {dtype}, {mode})",
                                   own=torch.get_num_threads() if dev.type == "cpu" else 1.0)
    result.reps, result.warmup_reps = len(timing.samples_ms), timing.warmup_reps
    result.calls_per_sample = timing.calls_per_sample
    result.throughput = batch / (timing.median_ms / 1e3)
    result.flops_per_s = flops / (timing.median_ms / 1e3)
    result.tflops = result.flops_per_s / 1e12
    if roofline:
        report = peaks_report(dev, DTYPES[dtype])
        peak = report.new
        if report.measured and report.loaded and not refresh_peaks:  # cached low figures would go unnoticed
            result.warnings.append("this device's peaks were measured now, on a loaded machine, and cached: the "
                                   "roofline efficiency reads high until `--refresh-peaks` on a quiet machine")
        size = torch.finfo(DTYPES[dtype]).bits // 8
        factor = 1 if mode == "infer" else 3  # a step reads weights and activations again, writes gradients
        nbytes = factor * (prof.param_bytes + prof.activation_bytes) * size / 4
        ideal = max(flops / peak["flops"], nbytes / peak["bytes_per_s"])
        result.roofline_efficiency = ideal / (timing.median_ms / 1e3)
    return result


def blocks_warning(rows: Sequence[BlockTime]) -> list[str]:
    """One line naming the blocks whose spread is wide (their own ``warnings`` say it block by block), or none.

    >>> blocks_warning(bench_blocks("lenet5"))  # doctest: +SKIP
    ['wide spread for 2 of 10 blocks (c1 2.1×, s2 1.7×): p90 > 1.5 × p10; quote each median with its interval']
    """
    wide = [b for b in rows if b.spread.wide]
    if not wide:
        return []
    named = ", ".join(f"{b.name} {b.spread.ratio_p90_p10:.1f}×" for b in wide[:5]) + (", …" if len(wide) > 5 else "")
    return [f"wide spread for {len(wide)} of {len(rows)} blocks ({named}): p90 > {WIDE} × p10; quote each median "
            "with its interval"]


def refresh_device_peaks(device: str, dtypes: Sequence[str]) -> list[str]:
    """Measure the peaks of ``device`` again in each of ``dtypes`` and overwrite their cache entries
    (``--refresh-peaks``); one line per dtype saying what was measured, what it replaced and where.

    >>> refresh_device_peaks("cpu", ["float32"])  # doctest: +SKIP
    ['peaks re-measured for … matmul 412 GFLOP/s (was 398 GFLOP/s), copy 9.81 GB/s (was 10.2 GB/s); cache … overwritten']
    """
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SpecError("--device cuda, but no CUDA device is available", hint="use --device cpu")
    for dtype in dtypes:
        if dtype not in DTYPES:
            raise SpecError(f"unknown dtype '{dtype}'", expected=", ".join(DTYPES))
    return [refresh_peaks(dev, DTYPES[dtype]).text() for dtype in dict.fromkeys(dtypes)]


def bench_blocks(target: Subject | str, input_shape: Sequence[int] | None = None, batch: int = 1, device: str = "cpu",
                 dtype: str = "float32", budget_s: float = 0.5, progress: ProgressLike = None) -> list[BlockTime]:
    """Every node of a spec network timed alone at its own input shape from the plan, slowest first.
    ``progress`` hears of one step per node (``timing layer3 (12/18)``; :mod:`blockstitch.progress`)."""
    plan = subject(target, accept=NETWORK_KINDS).plan(input_shape, batch)
    dev = torch.device(device)
    times = []
    for step in track(progress, plan.steps, lambda s: f"timing {s.name}"):
        torch.manual_seed(0)
        with torch.device(dev):
            module = step.spec.build(step.in_shapes).eval().to(DTYPES[dtype])
        xs = [torch.randn(s, device=dev, dtype=DTYPES[dtype]) for s in step.in_shapes]

        def run(module: nn.Module = module, xs: list[torch.Tensor] = xs) -> object:
            with torch.inference_mode():
                return module(*xs)

        times.append((step, measure(run, dev, budget_s=budget_s)))
    total = sum(t.median_ms for _, t in times) or 1.0
    rows = [BlockTime(s.name, s.kind, [list(x) for x in s.in_shapes], t.median_ms, t.median_ms / total,
                      list(t.samples_ms), warnings_for(t.spread, f"block {s.name}", load=False))
            for s, t in times]  # the machine's load is said once, by the caller, not once per block
    return sorted(rows, key=lambda r: r.median_ms, reverse=True)


