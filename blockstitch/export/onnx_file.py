"""The ONNX file itself: a named input ("input"), named outputs ("output", or one name per output tensor) and a
named batch axis ("batch"), the weights inside the one file when they fit (ONNX files are protobuf messages,
which cannot reach 2 GiB), beside it in ``NAME.onnx.data`` when they do not, and every file written whole or not
at all (:func:`blockstitch.output.replace_files`).

>>> files, names = save_onnx(program, Path("m.onnx"), limit=SINGLE_FILE_LIMIT)
>>> files
[Written(path=PosixPath('m.onnx'), bytes=46_807_911)]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils._pytree import tree_flatten_with_path

from ..errors import SpecError
from ..output import replace_files

__all__ = ["SINGLE_FILE_LIMIT", "BATCH_AXIS", "INPUT_NAME", "Written", "GraphIO", "output_names", "name_batch_axis",
           "weight_bytes", "save_onnx", "read_io"]

SINGLE_FILE_LIMIT = 2 * 1024**3
"""Weights of this many bytes or more go to ``NAME.onnx.data``: a protobuf message (an ONNX file holding its
weights) cannot reach 2 GiB."""
BATCH_AXIS = "batch"
"""The name of the dynamic batch axis (``dim_param``) on the input and on every output."""
INPUT_NAME = "input"


@dataclass(frozen=True)
class Written:
    """One file the export wrote, and its size on disk."""

    path: Path
    bytes: int


@dataclass(frozen=True)
class GraphIO:
    """An input or output of the written graph: its name and its axes (a name for a dynamic axis, else a size)."""

    name: str
    axes: tuple[int | str, ...]

    def __str__(self) -> str:
        return f'"{self.name}" ' + "×".join(str(a) for a in self.axes)


def _key_name(key: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def output_names(outputs: Any) -> list[str]:
    """``["output"]`` for one output tensor; else one name per tensor, in the order the exporter flattens them,
    from where it sits: dict keys and attribute names (``{"boxes": …, "scores": …}`` → boxes, scores), positions
    after ``output_`` (``(a, (b, c))`` → output_0, output_1_0, output_1_1).

    >>> output_names((torch.ones(1), {"aux": torch.ones(1)}))
    ['output_0', 'output_1_aux']
    """
    leaves = [path for path, v in tree_flatten_with_path(outputs)[0] if isinstance(v, torch.Tensor)]
    if len(leaves) == 1:
        return ["output"]
    names: list[str] = []
    for i, path in enumerate(leaves):
        parts = [re.sub(r"\W", "_", _key_name(k)) for k in path] or [str(i)]
        name = "_".join(parts)
        name = f"output_{name}" if not re.match(r"[A-Za-z]", name) else name
        names.append(name if name not in names and name != INPUT_NAME else f"{name}_{i}")
    return names


def name_batch_axis(model: Any, name: str = BATCH_AXIS) -> str | None:
    """Rename the symbol of the input's first axis to ``name`` wherever it appears in the graph (inputs, outputs,
    every intermediate value; ``2*s77`` becomes ``2*batch``) of an ONNX IR ``model`` (``ONNXProgram.model``).
    Returns the exporter's own symbol, or None when the first axis is a fixed size."""
    graph = model.graph
    first = graph.inputs[0].shape[0] if graph.inputs and graph.inputs[0].shape is not None else None
    symbol = getattr(first, "value", None)
    if not isinstance(symbol, str) or not symbol:
        return None
    pattern = re.compile(rf"(?<!\w){re.escape(symbol)}(?!\w)")
    values = [*graph.inputs, *graph.outputs, *(v for node in graph for v in node.outputs)]
    for value in values:
        if value.shape is None:
            continue
        dims = [type(d)(pattern.sub(name, d.value)) if isinstance(getattr(d, "value", None), str) else d
                for d in value.shape]
        value.shape = type(value.shape)(dims)
    return symbol


def weight_bytes(model: Any) -> int:
    """Bytes of an ONNX IR model's initializers (its weights and constants)."""
    return sum(int(v.const_value.nbytes) for v in model.graph.initializers.values() if v.const_value is not None)


def save_onnx(onnx_program: Any, target: Path, limit: int = SINGLE_FILE_LIMIT,
              error: type[SpecError] = SpecError) -> list[Written]:
    """Write ``onnx_program`` (a ``torch.onnx.ONNXProgram``) to ``target``: one file when its weights are under
    ``limit`` bytes and the whole fits in one protobuf message, else ``target`` and ``target.data`` (ONNX external
    data; torch's own ``save`` also splits from 1.5 GiB, so a single file is written here, with ``onnx``). Written
    beside ``target`` under a hidden name and renamed into place; on any failure nothing is left. Returns what is
    on disk now, the external data first."""
    from google.protobuf.message import EncodeError  # onnx's own dependency

    def write(path: Path) -> None:
        if weight_bytes(onnx_program.model) < limit:
            try:
                raw = onnx_program.model_proto.SerializeToString()
            except (ValueError, EncodeError):  # over protobuf's 2 GiB once the graph is added: the weights go beside it
                pass
            else:
                path.write_bytes(raw)
                return
        onnx_program.save(str(path), external_data=True)

    return [Written(p, p.stat().st_size) for p in replace_files(target, write, error)]


def read_io(path: Path) -> tuple[int | None, list[GraphIO], list[GraphIO]]:
    """The default-domain opset, inputs and outputs that the written file declares (its graph only: external
    weights are not read)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    weights = {t.name for t in model.graph.initializer}

    def io(values: Any) -> list[GraphIO]:
        return [GraphIO(v.name, tuple(d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim))
                for v in values if v.name not in weights]
    return opset, io(model.graph.input), io(model.graph.output)
