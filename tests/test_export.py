"""Export: ONNX run in onnxruntime and torch.export programs, dynamic batch, parity printed, failures located."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import blockstitch as bs
from blockstitch.cli import main
from blockstitch.export import ExportError
from blockstitch.meta import fingerprint


def test_export_resnet18_to_onnx_on_the_command_line(tmp_path, capsys) -> None:
    import onnx
    import onnxruntime

    path = tmp_path / "resnet18.onnx"
    assert main(["export", "resnet18", "--format", "onnx", "-o", str(path), "--input", "3,32,32"]) == 0
    printed = capsys.readouterr().out
    assert "ONNX opset 18" in printed and "batch axis dynamic" in printed
    assert "max relative error" in printed and "at batch 1" in printed and "at batch 3" in printed
    assert "within 1e-04" in printed
    assert onnx.load(str(path)).opset_import[0].version == 18
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert isinstance(session.get_inputs()[0].shape[0], str)  # a symbolic batch axis
    for batch in (2, 5):
        (y,) = session.run(None, {"input": torch.randn(batch, 3, 32, 32).numpy()})
        assert y.shape == (batch, 1000)


def test_bs_export_dynamic_batch_leaves_the_model_alone(tmp_path) -> None:
    model = torchvision.models.resnet18(num_classes=10).train()  # train mode, BatchNorm: export must use a copy
    before = fingerprint(model)
    report = bs.export(model, tmp_path / "r18.pt2", input_shape=(3, 32, 32))  # .pt2: torch.export
    assert fingerprint(model) == before and model.training
    assert report.format == "torch-export" and report.opset is None and report.dynamic_batch
    assert sorted(report.errors) == [1, 3] and report.max_error <= 1e-6 and report.ok
    assert "parity (the exported program vs eager PyTorch): max relative error" in str(report)
    program = torch.export.load(str(tmp_path / "r18.pt2")).module()
    x = torch.randn(6, 3, 32, 32)
    expected = torchvision.models.resnet18(num_classes=10)
    expected.load_state_dict(model.state_dict())
    assert torch.allclose(program(x), expected.eval()(x), rtol=1e-4, atol=1e-5)  # batch 6: the axis is dynamic


class Kth(nn.Module):
    """A module with an op ONNX has no translation for (aten.kthvalue)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.kthvalue(self.lin(x), 2, dim=-1).values


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(8, 8)
        self.odd = Kth()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.odd(self.stem(x))


def test_an_op_onnx_cannot_export_is_named_and_located(tmp_path) -> None:
    with pytest.raises(ExportError) as info:
        bs.export(Net(), tmp_path / "net.onnx", input_shape=(4, 8))
    text = str(info.value)
    assert "aten.kthvalue has no ONNX translation" in text and "module 'odd' (Kth)" in text
    assert info.value.file == __file__ and "torch.kthvalue(self.lin(x), 2, dim=-1)" in text
    line = next(i for i, ln in enumerate(Path(__file__).read_text().splitlines(), 1) if "torch.kthvalue(" in ln)
    assert info.value.line == line
    assert bs.export(Net(), tmp_path / "net.pt2", input_shape=(4, 8)).ok  # torch.export has no such limit


def test_cli_errors_exit_2_with_one_located_line(tmp_path, capsys) -> None:
    source = tmp_path / "odd_net.py"
    source.write_text("import torch\nfrom torch import nn\n\n\nclass Odd(nn.Module):\n"
                      "    def forward(self, x):\n        return torch.kthvalue(x, 2, dim=-1).values\n")
    assert main(["export", f"{source}:Odd", "-o", str(tmp_path / "odd.onnx"), "--input", "4,8"]) == 2
    err = capsys.readouterr().err
    assert f"{source}:7" in err and "aten.kthvalue" in err and "Traceback" not in err
    assert main(["export", "resnet18", "-o", str(tmp_path / "missing" / "r.onnx")]) == 2
    assert "the folder" in capsys.readouterr().err
    assert main(["export", "resnet18", "-o", str(tmp_path)]) == 2
    assert "it is a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "resnet18", "--format", "tflite", "-o", str(tmp_path / "r.tflite")])
    assert exit_info.value.code == 2
    with pytest.raises(ExportError, match="unknown export format 'onx' — did you mean 'onnx'"):
        bs.export("resnet18", tmp_path / "r.onnx", format="onx")


def test_a_missing_extra_is_a_one_line_hint(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    with pytest.raises(ExportError, match=r"onnxruntime is missing\): pip install 'blockstitch\[export\]'"):
        bs.export(nn.Linear(4, 4), tmp_path / "l.onnx", input_shape=(4,))
    assert main(["export", "resnet18", "-o", str(tmp_path / "r.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'blockstitch[export]'" in err
    assert not (tmp_path / "r.onnx").exists()


def test_a_model_that_does_not_compute_the_same_fails_parity(tmp_path) -> None:
    class Drifts(nn.Module):  # each eager call differs from the last: no exported file can match it
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            return x * self.calls

    model = Drifts()
    with pytest.raises(ExportError, match=r"does not match eager PyTorch: max relative error .* \(tolerance 1e-04\)"):
        bs.export(model, tmp_path / "d.pt2", input_shape=(4,))
    assert model.calls == 0  # only the copy ran
