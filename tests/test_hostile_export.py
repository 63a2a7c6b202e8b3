"""Export never reports what it did not do (issue 27): the opset asked for is written or refused, a NaN never
hides a wrong output, an empty batch list and a forward without a tensor are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import blockstitch as bs
from blockstitch.cli import main
from blockstitch.export import ExportError, _rel_error

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def _opset(path: Path) -> int:
    return next(o.version for o in onnx.load(str(path)).opset_import if o.domain in ("", "ai.onnx"))


@pytest.mark.parametrize("opset", [13])
def test_the_opset_asked_for_is_the_opset_written_or_refused(opset: int, tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    try:
        report = bs.export(Tiny(), path, input_shape=(4,), opset=opset)
    except ExportError as err:
        assert "opset" in str(err)
        return
    assert report.opset == opset == _opset(path)


@pytest.mark.parametrize("opset", ["1", "99999999999", "0"])
def test_an_opset_that_cannot_be_written_exits_2(opset: str, tmp_path: Path, capsys) -> None:
    spec = Path(__file__).parent / "hostile" / "lenet_tiny.yaml"
    try:
        code = main(["export", str(spec), "-o", str(tmp_path / "m.onnx"), "--opset", opset])
    except SystemExit as stop:  # refused by the argument parser itself: also exit 2, one line
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "please report it" not in err, err
    assert not (tmp_path / "m.onnx").exists()


def nan_cases():
    """(case, eager, exported, agrees)."""
    w = torch.tensor([[1.0, float("nan"), 3.0]])
    yield "same NaN, same values", w, w.clone(), True
    yield "same NaN, one value off by 1000", w, torch.tensor([[1001.0, float("nan"), 3.0]]), False
    yield "NaN only in the export", torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, float("nan")]]), False
    yield "NaN only in eager", torch.tensor([[1.0, float("nan")]]), torch.tensor([[1.0, 2.0]]), False
    yield "inf against -inf", torch.tensor([[float("inf")]]), torch.tensor([[float("-inf")]]), False
    yield "inf against inf", torch.tensor([[float("inf"), 1.0]]), torch.tensor([[float("inf"), 1.0]]), True


@pytest.mark.parametrize("case,eager,exported,agrees", list(nan_cases()), ids=[c for c, *_ in nan_cases()])
def test_a_nan_never_hides_an_error(case: str, eager: torch.Tensor, exported: torch.Tensor, agrees: bool) -> None:
    error = _rel_error([exported], [eager])
    assert (error <= 1e-6) is agrees, f"{case}: {error}"


class NaNColumn(nn.Module):
    """One NaN column; the export is made to differ by +1000 elsewhere (the fuzz campaign's case)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x * 1.0
        out[:, 0] = float("nan")
        return out


def test_an_export_whose_output_differs_beside_a_nan_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = torch.export.load

    def load_shifted(path):
        program = original(path)
        module = program.module()

        class Shifted(nn.Module):
            def forward(self, x):
                return module(x) + 1000

        class P:
            def module(self):
                return Shifted()
        return P()

    monkeypatch.setattr(torch.export, "load", load_shifted)
    with pytest.raises(ExportError, match="does not match"):
        bs.export(NaNColumn(), tmp_path / "m.pt2", input_shape=(4,))


def test_empty_batches_and_a_forward_without_a_tensor_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="batch"):
        bs.export(Tiny(), tmp_path / "m.onnx", input_shape=(4,), batches=())

    class Nothing(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> None:
            self.fc(x)

    with pytest.raises(ExportError, match="returns no tensor"):
        bs.export(Nothing(), tmp_path / "n.onnx", input_shape=(4,))
