"""Ship a network: ONNX (checked in onnxruntime) or a ``torch.export`` program, with a dynamic batch axis named
"batch" (or a fixed one, ``static_batch``), named inputs and outputs, a parity check against eager PyTorch, and
every file it wrote listed with its size.

Export works on a copy (:func:`blockstitch.meta.real_copy`) put in eval mode; the model you pass is never
called, switched or changed. Files are written beside the target under a hidden name and renamed into place, so a
failed export leaves nothing behind (and an older file at that path untouched).

>>> report = export("resnet18", "resnet18.onnx", input_shape=(3, 64, 64))
>>> print(report)
resnet18 → resnet18.onnx: ONNX opset 18, input 3×64×64 per sample, batch axis dynamic ("batch")
graph: input "input" batch×3×64×64 → output "output" batch×1000
wrote 1 file: resnet18.onnx (44.66 MiB; the weights inside: under 2 GiB)
parity (onnxruntime vs eager PyTorch): max relative error 5.0e-07 at batch 1, 5.3e-07 at batch 3 (within 1e-04)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils._pytree import tree_flatten

from ..assemble.limits import check_batch
from ..errors import SpecError, did_you_mean, fmt_shape
from ..meta import natural_input, real_copy, torch_state_guard
from ..output import locked, replace_files
from ..output import writable as _writable
from ..profile.report import human_bytes
from ..progress import ProgressLike, Steps
from ..subject import NETWORK_KINDS, Subject, subject
from .onnx_file import (BATCH_AXIS, INPUT_NAME, SINGLE_FILE_LIMIT, GraphIO, Written, name_batch_axis, output_names,
                        read_io, save_onnx, weight_bytes)

__all__ = ["export", "ExportReport", "ExportError", "FORMATS", "DEFAULT_OPSET", "writable"]

FORMATS = ("onnx", "torch-export")
"""`onnx` (a .onnx file, run in onnxruntime for the check) or `torch-export` (a .pt2 ``ExportedProgram``)."""
DEFAULT_OPSET = 18
"""The ONNX opset written unless asked otherwise (what torch's exporter targets natively)."""
EXTRA_HINT = "pip install 'blockstitch[export]'   (onnx, onnxruntime, onnxscript)"


class ExportError(SpecError):
    """The network cannot be exported as asked, or the export does not compute what the model computes."""


@dataclass
class ExportReport:
    """Where the export went, how, what it wrote, and how closely it matches eager PyTorch."""

    name: str
    path: Path
    format: str
    opset: int | None
    """ONNX opset (None for torch-export)."""
    input_shape: tuple[int, ...]
    """Without the batch."""
    static_batch: int | None = None
    """The fixed batch size written into the file; None: the batch axis is dynamic (named "batch")."""
    errors: dict[int, float] = field(default_factory=dict)
    """Batch size → max |exported − eager| / max |eager| over all outputs."""
    tolerance: float = 1e-4
    files: list[Written] = field(default_factory=list)
    """Every file written, in the order they were put in place (ONNX external data before the model)."""
    inputs: list[GraphIO] = field(default_factory=list)
    """The written graph's inputs: names and axes, read back from the file (ONNX only)."""
    outputs: list[GraphIO] = field(default_factory=list)
    """The written graph's outputs, read back from the file (ONNX only)."""
    single_file_limit: int = SINGLE_FILE_LIMIT
    """Weights of this many bytes or more were written to ``NAME.onnx.data`` beside the model."""
    weight_bytes: int | None = None
    """Bytes of the ONNX file's weights (initializers); None for torch-export."""
    stale: list[Path] = field(default_factory=list)
    """Files beside the target from an earlier export that this one does not use (left alone, named)."""

    @property
    def dynamic_batch(self) -> bool:
        """True when the batch axis is dynamic."""
        return self.static_batch is None

    @property
    def external_data(self) -> bool:
        """True when the weights are in a file beside the model (ONNX external data)."""
        return len(self.files) > 1

    @property
    def max_error(self) -> float:
        """The largest relative error of the parity check."""
        return max(self.errors.values(), default=0.0)

    @property
    def ok(self) -> bool:
        """True when every checked batch is within the tolerance."""
        return self.max_error <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        def io(values: list[GraphIO]) -> list[dict[str, Any]]:
            return [{"name": v.name, "axes": list(v.axes)} for v in values]
        return {"name": self.name, "path": str(self.path), "format": self.format, "opset": self.opset,
                "input_shape": list(self.input_shape), "dynamic_batch": self.dynamic_batch,
                "static_batch": self.static_batch, "batch_axis": BATCH_AXIS if self.dynamic_batch else None,
                "files": [{"path": str(f.path), "bytes": f.bytes} for f in self.files],
                "external_data": self.external_data, "weight_bytes": self.weight_bytes,
                "single_file_limit": self.single_file_limit,
                "stale_files": [str(p) for p in self.stale], "inputs": io(self.inputs), "outputs": io(self.outputs),
                "errors": {str(b): e for b, e in self.errors.items()}, "max_error": self.max_error,
                "tolerance": self.tolerance, "ok": self.ok}

    def _files_line(self) -> str:
        listed = ", ".join(f"{f.path} ({human_bytes(f.bytes)})" for f in self.files)
        line = f"wrote {len(self.files)} file{'s' if len(self.files) != 1 else ''}: {listed}"
        weights, limit = human_bytes(self.weight_bytes or 0), human_bytes(self.single_file_limit)
        if self.format == "onnx" and self.external_data:
            line += (f"\n  the weights ({weights}) are in {self.files[0].path.name}: one ONNX file holds them only "
                     f"under {limit} (protobuf's ceiling is 2 GiB); keep the files together")
        elif self.format == "onnx":
            line += f"\n  the weights ({weights}) are inside: under {limit}, one file"
        for old in self.stale:
            line += f"\nnote: {old} is left from an earlier export; this file does not use it"
        return line

    def __str__(self) -> str:
        how = f"ONNX opset {self.opset}" if self.format == "onnx" else "torch.export program"
        runner = "onnxruntime" if self.format == "onnx" else "the exported program"
        checks = ", ".join(f"{e:.1e} at batch {b}" for b, e in self.errors.items())
        batch = f'dynamic ("{BATCH_AXIS}")' if self.dynamic_batch else f"fixed at {self.static_batch}"
        lines = [f"{self.name} → {self.path}: {how}, input {fmt_shape(self.input_shape)} per sample, batch axis "
                 f"{batch}"]
        if self.inputs or self.outputs:
            lines.append("graph: " + ", ".join(f"input {v}" for v in self.inputs) + " → "
                         + ", ".join(f"output {v}" for v in self.outputs))
        lines.append(self._files_line())
        lines.append(f"parity ({runner} vs eager PyTorch): max relative error {checks} "
                     f"({'within' if self.ok else 'ABOVE'} {self.tolerance:.0e})")
        return "\n".join(lines)


def writable(path: Path) -> Path:
    """``path`` itself if a file can be written there; else an :class:`ExportError` saying why (see
    :func:`blockstitch.output.writable`).

    >>> writable(Path("/no/such/dir/model.onnx"))
    Traceback (most recent call last):
    blockstitch.export.ExportError: /no/such/dir/model.onnx: cannot write here: the folder /no/such/dir does not exist
    """
    return _writable(path, ExportError)


def _need_onnx() -> Any:
    try:
        import onnx  # noqa: F401
        import onnxruntime
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise ExportError(f"ONNX export needs the 'export' extra ({err.name or 'onnx'} is missing): "
                          f"{EXTRA_HINT}") from None
    return onnxruntime


def _located_failure(err: BaseException, program: Any, what: str) -> ExportError:
    """The op that could not be exported, where it is in the model (module path, source line), and why."""
    text = str(err)
    op = re.search(r"target=torch\.ops\.(aten\.\w+)", text) or re.search(r"op='(aten\.\w+)'", text)
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(err).__name__)
    if op is None or program is None:
        return ExportError(f"cannot {what}: {first}")
    name = op.group(1)
    for node in program.graph.nodes:
        if node.op == "call_function" and str(node.target).startswith(name + "."):
            stack = list((node.meta.get("nn_module_stack") or {}).values())
            module, cls = stack[-1] if stack else ("", "")
            frame = re.findall(r'File "([^"]+)", line (\d+), in \w+\n\s*(.*)', node.meta.get("stack_trace") or "")
            file, line, code = frame[-1] if frame else (None, None, "")
            return ExportError(f"cannot {what}: the operator {name} has no ONNX translation"
                               f"{f' (used in: {code.strip()})' if code else ''}", file=file,
                               line=int(line) if line else None,
                               path=f"module '{module or '<root>'}' ({cls.rpartition('.')[2] or 'model'})",
                               hint="rewrite that step with supported ops, or use --format torch-export")
    return ExportError(f"cannot {what}: the operator {name} has no ONNX translation")


def _flat(value: Any) -> list[torch.Tensor]:
    return [t for t in tree_flatten(value)[0] if isinstance(t, torch.Tensor)]


def _rel_error(got: Sequence[torch.Tensor], want: Sequence[torch.Tensor]) -> float:
    """The worst relative error over the outputs; infinite when they differ in number or shape, or where either
    holds a NaN or an infinity that the other does not hold at exactly that place (a NaN never hides an error).
    """
    if len(got) != len(want):
        return float("inf")
    worst = 0.0
    for g, w in zip(got, want):
        if g.shape != w.shape:
            return float("inf")
        g = g.to(w.dtype)
        odd = ~torch.isfinite(w) | ~torch.isfinite(g) if w.is_floating_point() else torch.zeros_like(w, dtype=torch.bool)
        same = (g == w) | (torch.isnan(g) & torch.isnan(w)) if w.is_floating_point() else g == w
        if not bool(same[odd].all()):
            return float("inf")
        g, w = g[~odd], w[~odd]
        scale = w.abs().max().item() if w.numel() else 0.0
        diff = (g - w).abs().max().item() if w.numel() else 0.0
        worst = max(worst, diff / scale if scale > 0 else diff)
    return worst


def _check_args(fmt: str, opset: int, static_batch: int | None, batches: Sequence[int]) -> Any:
    """Refuse what cannot be exported before any work; the onnxruntime module for ONNX (else None)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format '{fmt}'{did_you_mean(fmt, FORMATS)}", expected=" | ".join(FORMATS))
    ort: Any = _need_onnx() if fmt == "onnx" else None
    if fmt == "onnx":
        import onnx

        newest = onnx.defs.onnx_opset_version()
        if isinstance(opset, bool) or not isinstance(opset, int) or not 7 <= opset <= newest:
            raise ExportError(f"ONNX opset {opset!r} cannot be written", path="opset",
                              expected=f"an opset from 7 to {newest} (default {DEFAULT_OPSET})")
    if static_batch is None and not batches:
        raise ExportError("no batch sizes to check the exported file at", path="batches", expected="e.g. (1, 3)")
    for b in batches if static_batch is None else (static_batch,):
        check_batch(b, "static_batch" if static_batch is not None else "batches")
    return ort


def export(model: Subject | Any, path: str | Path, input_shape: Sequence[int] | None = None, format: str | None = None,
           opset: int = DEFAULT_OPSET, static_batch: int | None = None, batches: Sequence[int] = (1, 3),
           tolerance: float = 1e-4, single_file_limit: int = SINGLE_FILE_LIMIT,
           progress: ProgressLike = None) -> ExportReport:
    """Export ``model`` — an ``nn.Module``, a zoo name, a spec (edit specs too) or ``timm:<name>`` (random
    weights) — to ``path`` as ONNX (default; a ``.pt2`` path means torch-export), then run the file at each of
    ``batches`` and compare it with eager PyTorch. ``static_batch=N`` writes batch N into the file instead of a
    dynamic axis named "batch" (and checks at N). ONNX weights of ``single_file_limit`` bytes or more go to
    ``PATH.data`` beside the model; the report lists every file written. Raises :class:`ExportError` when the
    export fails (the op and module named; nothing is left at ``path``) or the max relative error exceeds
    ``tolerance`` (the files are kept for inspection). ``input_shape`` is without the batch.
    ``progress`` hears of the steps: tracing, writing, one parity check per batch (:mod:`blockstitch.progress`).

    >>> export(torchvision.models.resnet18(), "r18.pt2", input_shape=(3, 64, 64)).errors
    {1: 0.0, 3: 0.0}
    """
    fmt = format or ("torch-export" if str(path).endswith(".pt2") else "onnx")
    ort = _check_args(fmt, opset, static_batch, batches)
    target = writable(Path(path))
    found = subject(model, accept=NETWORK_KINDS | {"code"}, input_shape=input_shape)
    module, name = found.module(device=None), found.name
    shape = found.input_shape or natural_input(module)  # the caller's, an edit spec's `input:`, the network's
    if shape is None:
        raise ExportError(f"exporting {name} needs an input shape without the batch, e.g. (3, 224, 224)",
                          hint="on the command line: --input 3,224,224")
    if any(t.is_meta for t in list(module.parameters()) + list(module.buffers())):
        raise ExportError(f"{name} has no weights (meta tensors): build it on a real device to export it")
    copy = real_copy(module).eval()  # the user's model is never switched to eval, traced or run
    device = next((t.device for t in copy.parameters()), torch.device("cpu"))
    report = ExportReport(name, target, fmt, opset if fmt == "onnx" else None, shape, static_batch,
                          tolerance=tolerance, single_file_limit=single_file_limit)
    checked = tuple(batches) if static_batch is None else (static_batch,)
    with locked(target, error=ExportError), torch_state_guard(), torch.no_grad(), \
            Steps(progress, 2 + len(checked)) as steps:  # one writer per file
        steps.next(f"tracing {name} with torch.export")
        gen = torch.Generator().manual_seed(0)
        example = torch.randn((static_batch or 2, *shape), generator=gen).to(device)
        eager = copy(example)
        if not _flat(eager):
            raise ExportError(f"{name}'s forward returns no tensor (it returned {type(eager).__name__}): "
                              "there is nothing to export", hint="return the output tensor(s) from forward")
        dims = ({0: torch.export.Dim(BATCH_AXIS, min=1)},) if static_batch is None else None
        try:
            program = torch.export.export(copy, (example,), dynamic_shapes=dims)
        except Exception as err:  # noqa: BLE001 — torch.export raises many kinds; each becomes one message
            raise _located_failure(err, None, f"export {name} with torch.export") from None
        steps.next(f"writing {target.name}")
        if fmt == "onnx":
            run = _write_onnx(report, program, example, eager, ort)
        else:
            report.files = [Written(p, p.stat().st_size) for p in
                            replace_files(target, lambda p: torch.export.save(program, str(p)), ExportError)]
            loaded = torch.export.load(str(target)).module()

            def run(x: torch.Tensor) -> list[torch.Tensor]:
                return _flat(loaded(x))
        for b in checked:
            steps.next(f"checking parity at batch {b}")
            x = torch.randn((b, *shape), generator=gen).to(device)
            report.errors[b] = _rel_error(run(x), [t.cpu() for t in _flat(copy(x))])
    if not report.ok:
        raise ExportError(f"{target}: the exported model does not match eager PyTorch: max relative error "
                          + ", ".join(f"{e:.2e} at batch {b}" for b, e in report.errors.items())
                          + f" (tolerance {tolerance:.0e}); the file is kept for inspection",
                          hint="an op the exporter approximates, or a batch-dependent model (BatchNorm in "
                               "train mode, code branching on the batch size)")
    return report


def _write_onnx(report: ExportReport, program: Any, example: torch.Tensor, eager: Any,
                ort: Any) -> Callable[[torch.Tensor], list[torch.Tensor]]:
    """Convert ``program``, name its input, outputs and batch axis, write it (one file, or the model and its
    external data), read the names back into ``report``; the function that runs the file in onnxruntime."""
    target, opset = report.path, report.opset
    outputs = output_names(eager)
    if len(outputs) != len(program.graph_signature.user_outputs):
        outputs = []  # outputs that are not all tensors: keep the exporter's own names
    try:
        onnx_program: Any = torch.onnx.export(program, (example,), None, opset_version=opset, verbose=False,
                                              input_names=[INPUT_NAME], output_names=outputs or None)
    except Exception as err:  # noqa: BLE001
        raise _located_failure(err, program, f"export {report.name} to ONNX") from None
    if report.static_batch is None:
        name_batch_axis(onnx_program.model)
    converted = onnx_program.model.opset_imports.get("")
    if converted != opset:  # torch's converter may keep its own opset: say so (writing nothing), never report ours
        raise ExportError(f"{target}: ONNX opset {opset} was asked for, the exporter converted to opset {converted}",
                          path="opset", hint=f"use --opset {converted} (torch exports opset {DEFAULT_OPSET} "
                                             "natively; conversion to other opsets may not be possible)")
    report.weight_bytes = weight_bytes(onnx_program.model)
    report.files = save_onnx(onnx_program, target, report.single_file_limit, ExportError)
    companion = target.with_name(target.name + ".data")
    report.stale = [companion] if companion.exists() and all(f.path != companion for f in report.files) else []
    report.opset, report.inputs, report.outputs = read_io(target)  # what the file says, not what was asked
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])

    def run(x: torch.Tensor) -> list[torch.Tensor]:
        return [torch.from_numpy(y) for y in session.run(None, {INPUT_NAME: x.cpu().numpy()})]
    return run
