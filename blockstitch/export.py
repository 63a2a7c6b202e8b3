"""Ship a network: ONNX (checked in onnxruntime) or a ``torch.export`` program, with a dynamic batch axis and a
parity check against eager PyTorch at two batch sizes.

Export works on a copy (:func:`blockstitch.meta.real_copy`) put in eval mode; the model you pass is never
called, switched or changed.

>>> report = export("resnet18", "resnet18.onnx", input_shape=(3, 64, 64))
>>> print(report)
resnet18 → resnet18.onnx: ONNX opset 18, input 3×64×64 per sample, batch axis dynamic
parity (onnxruntime vs eager PyTorch): max relative error 5.0e-07 at batch 1, 5.3e-07 at batch 3 (within 1e-04)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils._pytree import tree_flatten

from .assemble.limits import check_batch
from .errors import SpecError, did_you_mean, fmt_shape
from .meta import natural_input, real_copy, torch_state_guard
from .output import locked
from .output import writable as _writable
from .progress import ProgressLike, Steps
from .subject import NETWORK_KINDS, Subject, subject

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
    """Where the export went, how, and how closely it matches eager PyTorch."""

    name: str
    path: Path
    format: str
    opset: int | None
    """ONNX opset (None for torch-export)."""
    input_shape: tuple[int, ...]
    """Without the batch."""
    dynamic_batch: bool
    errors: dict[int, float] = field(default_factory=dict)
    """Batch size → max |exported − eager| / max |eager| over all outputs."""
    tolerance: float = 1e-4

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
        return {"name": self.name, "path": str(self.path), "format": self.format, "opset": self.opset,
                "input_shape": list(self.input_shape), "dynamic_batch": self.dynamic_batch,
                "errors": {str(b): e for b, e in self.errors.items()}, "max_error": self.max_error,
                "tolerance": self.tolerance, "ok": self.ok}

    def __str__(self) -> str:
        how = f"ONNX opset {self.opset}" if self.format == "onnx" else "torch.export program"
        runner = "onnxruntime" if self.format == "onnx" else "the exported program"
        checks = ", ".join(f"{e:.1e} at batch {b}" for b, e in self.errors.items())
        return (f"{self.name} → {self.path}: {how}, input {fmt_shape(self.input_shape)} per sample, batch axis "
                f"{'dynamic' if self.dynamic_batch else 'fixed'}\nparity ({runner} vs eager PyTorch): max relative "
                f"error {checks} ({'within' if self.ok else 'ABOVE'} {self.tolerance:.0e})")


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


def _opset_written(path: Path) -> int | None:
    """The default-domain opset a written .onnx file declares (its graph only, no external data)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def export(model: Subject | Any, path: str | Path, input_shape: Sequence[int] | None = None, format: str | None = None,
           opset: int = DEFAULT_OPSET, dynamic_batch: bool = True, batches: Sequence[int] = (1, 3),
           tolerance: float = 1e-4, progress: ProgressLike = None) -> ExportReport:
    """Export ``model`` — an ``nn.Module``, a zoo name, a spec (edit specs too) or ``timm:<name>`` (random
    weights) — to ``path`` as ONNX (default; a ``.pt2`` path means torch-export), then run the file at each of
    ``batches`` and compare it with eager PyTorch. Raises :class:`ExportError` when the export fails (the op and
    module named) or the max relative error exceeds ``tolerance``. ``input_shape`` is without the batch.
    ``progress`` hears of the steps: tracing, writing, one parity check per batch (:mod:`blockstitch.progress`).

    >>> export(torchvision.models.resnet18(), "r18.pt2", input_shape=(3, 64, 64)).errors
    {1: 0.0, 3: 0.0}
    """
    fmt = format or ("torch-export" if str(path).endswith(".pt2") else "onnx")
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format '{fmt}'{did_you_mean(fmt, FORMATS)}", expected=" | ".join(FORMATS))
    ort: Any = _need_onnx() if fmt == "onnx" else None
    if fmt == "onnx":
        import onnx

        newest = onnx.defs.onnx_opset_version()
        if isinstance(opset, bool) or not isinstance(opset, int) or not 7 <= opset <= newest:
            raise ExportError(f"ONNX opset {opset!r} cannot be written", path="opset",
                              expected=f"an opset from 7 to {newest} (default {DEFAULT_OPSET})")
    if dynamic_batch and not batches:
        raise ExportError("no batch sizes to check the exported file at", path="batches", expected="e.g. (1, 3)")
    for b in batches:
        check_batch(b, "batches")
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
    checked = tuple(batches) if dynamic_batch else (2,)
    with locked(target, error=ExportError), torch_state_guard(), torch.no_grad(), \
            Steps(progress, 2 + len(checked)) as steps:  # one writer per file
        steps.next(f"tracing {name} with torch.export")
        gen = torch.Generator().manual_seed(0)
        example = torch.randn((2, *shape), generator=gen).to(device)
        if not _flat(copy(example)):
            raise ExportError(f"{name}'s forward returns no tensor (it returned {type(copy(example)).__name__}): "
                              "there is nothing to export", hint="return the output tensor(s) from forward")
        dims = ({0: torch.export.Dim("batch", min=1)},) if dynamic_batch else None
        try:
            program = torch.export.export(copy, (example,), dynamic_shapes=dims)
        except Exception as err:  # noqa: BLE001 — torch.export raises many kinds; each becomes one message
            raise _located_failure(err, None, f"export {name} with torch.export") from None
        steps.next(f"writing {target.name}")
        if fmt == "onnx":
            try:
                torch.onnx.export(program, (example,), str(target), opset_version=opset, verbose=False,
                                  input_names=["input"])
            except Exception as err:  # noqa: BLE001
                raise _located_failure(err, program, f"export {name} to ONNX") from None
            written = _opset_written(target)
            if written != opset:  # torch's converter may keep its own opset: say so, never report the asked one
                raise ExportError(f"{target}: ONNX opset {opset} was asked for, the exporter wrote opset {written}",
                                  path="opset", hint=f"use --opset {written} (torch exports opset {DEFAULT_OPSET} "
                                                     "natively; conversion to other opsets may not be possible)")
            session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])

            def run(x: torch.Tensor) -> list[torch.Tensor]:
                return [torch.from_numpy(y) for y in session.run(None, {"input": x.cpu().numpy()})]
        else:
            torch.export.save(program, str(target))
            loaded = torch.export.load(str(target)).module()

            def run(x: torch.Tensor) -> list[torch.Tensor]:
                return _flat(loaded(x))
        errors = {}
        for b in checked:
            steps.next(f"checking parity at batch {b}")
            x = torch.randn((b, *shape), generator=gen).to(device)
            errors[b] = _rel_error(run(x), [t.cpu() for t in _flat(copy(x))])
    report = ExportReport(name, target, fmt, opset if fmt == "onnx" else None, shape, dynamic_batch, errors,
                          tolerance)
    if not report.ok:
        raise ExportError(f"{target}: the exported model does not match eager PyTorch: max relative error "
                          + ", ".join(f"{e:.2e} at batch {b}" for b, e in errors.items())
                          + f" (tolerance {tolerance:.0e}); the file is kept for inspection",
                          hint="an op the exporter approximates, or a batch-dependent model (BatchNorm in "
                               "train mode, code branching on the batch size)")
    return report
