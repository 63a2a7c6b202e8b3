"""Export says what it wrote (issue 26, item 5): every file listed with its size (checked against the folder's
listing before and after), one file when the weights fit, external data above the limit, `--static-batch N`,
named inputs/outputs and batch axis (read back with `onnx`), and a write that is whole or not at all."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from torch import nn

import blockstitch as bs
from blockstitch.cli import main
from blockstitch.export import ExportError

SPEC = Path(__file__).parent / "hostile" / "lenet_tiny.yaml"


class Wide(nn.Module):
    """Two Linear layers: 4·512 + 512 and 512·3 + 3 float32 weights (4099 values, 16396 bytes)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 512), nn.Linear(512, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


class TwoHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feat = self.conv(x)
        return {"logits": self.fc(feat.mean((2, 3))), "feat": feat}


class Pair(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x * 2, x.sum(-1)


def _new(folder: Path, before: set[str]) -> set[str]:
    return set(os.listdir(folder)) - before


def _axes(value: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def _lock(path: Path) -> str:
    """The hidden, empty lock file that serializes writers of ``path`` (it stays: removing it would be racy)."""
    lock = path.with_name(f".{path.name}.lock")
    assert lock.stat().st_size == 0
    return lock.name


def test_the_cli_lists_every_file_it_wrote_one_file_for_a_small_model(tmp_path: Path, capsys) -> None:
    out = tmp_path / "m.onnx"
    before = set(os.listdir(tmp_path))
    assert main(["export", str(SPEC), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert _new(tmp_path, before) == {"m.onnx", _lock(out)}  # no m.onnx.data, no temporary file
    assert f"wrote 1 file: {out} (" in printed and "are inside: under 2.00 GiB, one file" in printed
    assert main(["export", str(SPEC), "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["files"] == [{"path": str(out), "bytes": out.stat().st_size}] and not report["external_data"]
    model = onnx.load(str(out), load_external_data=False)
    assert all(t.data_location == onnx.TensorProto.DEFAULT for t in model.graph.initializer)


def test_weights_above_the_limit_go_beside_the_model_and_both_files_are_listed(tmp_path: Path) -> None:
    module = Wide()
    out = tmp_path / "w.onnx"
    before = set(os.listdir(tmp_path))
    weights = sum(t.numel() * t.element_size() for t in module.state_dict().values())
    assert weights == 16396
    report = bs.export(module, out, input_shape=(4,), single_file_limit=weights)  # at the limit: beside it
    data = tmp_path / "w.onnx.data"
    assert _new(tmp_path, before) == {"w.onnx", "w.onnx.data", _lock(out)}
    assert [(f.path, f.bytes) for f in report.files] == [(data, data.stat().st_size), (out, out.stat().st_size)]
    assert report.external_data and report.ok and "the weights (16.01 KiB) are in w.onnx.data" in str(report)
    graph = onnx.load(str(out), load_external_data=False).graph
    lengths = {t.name: int({e.key: e.value for e in t.external_data}["length"]) for t in graph.initializer
               if t.data_location == onnx.TensorProto.EXTERNAL}
    assert all({e.key: e.value for e in t.external_data}["location"] == "w.onnx.data"
               for t in graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL)
    params = {k: v.numpy() for k, v in module.state_dict().items()}
    assert {"fc1.weight", "fc2.weight"} <= set(lengths) <= set(params)  # the tiny fc2.bias may stay inline
    assert sum(lengths.values()) == data.stat().st_size == sum(params[k].nbytes for k in lengths)
    loaded = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(out)).graph.initializer}
    assert all(np.array_equal(loaded[k], v) for k, v in params.items())  # the weights, read from the .data file

    small = bs.export(module, tmp_path / "s.onnx", input_shape=(4,), single_file_limit=weights + 1)  # one file
    assert [f.path.name for f in small.files] == ["s.onnx"] and not small.external_data
    inline = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(tmp_path / "s.onnx")).graph.initializer}
    assert all(np.array_equal(inline[k], v) for k, v in params.items())


def test_static_batch_n_is_written_into_the_graph(tmp_path: Path, capsys) -> None:
    out = tmp_path / "s.onnx"
    assert main(["export", str(SPEC), "-o", str(out), "--static-batch", "3"]) == 0
    assert "batch axis fixed at 3" in capsys.readouterr().out
    graph = onnx.load(str(out)).graph
    assert [(v.name, _axes(v)) for v in graph.input] == [("input", [3, 1, 8, 8])]
    assert [(v.name, _axes(v)) for v in graph.output] == [("output", [3, 2])]
    module = Wide().eval()
    bs.export(module, tmp_path / "w.onnx", input_shape=(4,), static_batch=3)
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: the file is not run")
    x = torch.randn(3, 4)
    session = ort.InferenceSession(str(tmp_path / "w.onnx"), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"input": x.numpy()})
    assert np.allclose(y, module(x).detach().numpy(), rtol=1e-4, atol=1e-6)
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        session.run(None, {"input": torch.randn(2, 4).numpy()})  # batch 2 is not batch 3


def test_inputs_outputs_and_the_batch_axis_are_named(tmp_path: Path) -> None:
    module = TwoHeads().eval()
    report = bs.export(module, tmp_path / "t.onnx", input_shape=(3, 6, 6))
    graph = onnx.load(str(tmp_path / "t.onnx")).graph
    x = torch.randn(5, 3, 6, 6)
    eager = module(x)
    want = [(name, ["batch", *eager[name].shape[1:]]) for name in ("logits", "feat")]
    assert [(v.name, _axes(v)) for v in graph.input] == [("input", ["batch", 3, 6, 6])]
    assert [(v.name, _axes(v)) for v in graph.output] == want
    assert [(v.name, list(v.axes)) for v in report.outputs] == want  # the report reads the file, too
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: the file is not run")
    got = ort.InferenceSession(str(tmp_path / "t.onnx")).run(["feat", "logits"], {"input": x.numpy()})
    assert np.allclose(got[0], eager["feat"].detach().numpy(), atol=1e-5)  # at batch 5: the axis is dynamic
    assert np.allclose(got[1], eager["logits"].detach().numpy(), atol=1e-5)

    bs.export(Pair(), tmp_path / "p.onnx", input_shape=(4,), static_batch=2)
    pair = onnx.load(str(tmp_path / "p.onnx")).graph
    assert [(v.name, _axes(v)) for v in pair.output] == [("output_0", [2, 4]), ("output_1", [2])]


def test_a_failed_export_leaves_no_file_and_an_older_one_untouched(tmp_path: Path, monkeypatch) -> None:
    from tests.test_export import Net  # aten.kthvalue: no ONNX translation

    out = tmp_path / "n.onnx"
    before = set(os.listdir(tmp_path))
    with pytest.raises(ExportError, match="kthvalue"):
        bs.export(Net(), out, input_shape=(4, 8))
    assert _new(tmp_path, before) == {_lock(out)} and not out.exists()

    out.write_bytes(b"the export before")
    original = torch.onnx.ONNXProgram.save

    def half_then_full_disk(self: torch.onnx.ONNXProgram, path: str, **kwargs: object) -> None:
        original(self, path, **kwargs)
        assert sorted(os.listdir(Path(path).parent)) == ["n.onnx", "n.onnx.data"]  # the hidden folder's
        with open(path + ".data", "r+b") as f:
            f.truncate(10)  # the disk filled up mid-write
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch.onnx.ONNXProgram, "save", half_then_full_disk)
    with pytest.raises(ExportError, match=r"the disk is full \(ENOSPC\)"):
        bs.export(Wide(), out, input_shape=(4,), single_file_limit=1)  # model and .data: two files, both cut
    assert out.read_bytes() == b"the export before"
    assert set(os.listdir(tmp_path)) == before | {"n.onnx", _lock(out)}  # no hidden folder, no half file


def test_a_stale_data_file_beside_the_target_is_named(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    bs.export(Wide(), out, input_shape=(4,), single_file_limit=1)
    assert (tmp_path / "m.onnx.data").exists()
    report = bs.export(Wide(), out, input_shape=(4,))  # now one file: the old .data is not used by it
    assert [f.path for f in report.files] == [out] and report.stale == [tmp_path / "m.onnx.data"]
    assert f"note: {tmp_path / 'm.onnx.data'} is left from an earlier export" in str(report)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL
                   for t in onnx.load(str(out), load_external_data=False).graph.initializer)


def test_torch_export_lists_its_file_too(tmp_path: Path) -> None:
    out = tmp_path / "w.pt2"
    before = set(os.listdir(tmp_path))
    report = bs.export(Wide(), out, input_shape=(4,), static_batch=3)
    assert _new(tmp_path, before) == {"w.pt2", _lock(out)}
    assert [(f.path, f.bytes) for f in report.files] == [(out, out.stat().st_size)]
    assert sorted(report.errors) == [3] and "batch axis fixed at 3" in str(report)
