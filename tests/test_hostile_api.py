"""Bad Python API arguments and unusual models, by class (issue 27): every one ends in a typed exception that
names the argument, or works in the model's own dtype — never a raw torch error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

import blockstitch as bs
from blockstitch.assemble.limits import MAX_INPUT_DIM, check_batch, check_input_shape
from blockstitch.errors import BlockstitchError, SpecError
from blockstitch.subject import subject


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


def bad_shapes() -> Iterator[object]:
    yield from ((3, -16, 16), (3, 0, 16), (), (3, 16.0, 16), (3, True, 16), (3, MAX_INPUT_DIM + 1, 1),
                (3, 65536, 65536), "3,16,16", None.__class__)


@pytest.mark.parametrize("shape", list(bad_shapes()), ids=[repr(s)[:30] for s in bad_shapes()])
def test_a_bad_input_shape_is_a_spec_error_naming_the_argument(shape: object) -> None:
    with pytest.raises(SpecError, match="input_shape"):
        subject(Net(), input_shape=shape)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="input_shape"):  # a SpecError is a ValueError too
        check_input_shape(shape)


@pytest.mark.parametrize("batch", [-1, 0, 2.0, True, MAX_INPUT_DIM + 1, "8"])
def test_a_bad_batch_names_the_argument(batch: object) -> None:
    with pytest.raises(SpecError, match="batch"):
        check_batch(batch)


@pytest.mark.parametrize("given", [[3, 65536, 65536], [3, -64, 64], [3, "64", 64], [], 64])
def test_an_edit_specs_input_is_validated_like_a_networks(given: object, tmp_path: Path) -> None:
    import json

    path = tmp_path / "edit.yaml"
    path.write_text(f"name: e\nextends: resnet18\ninput: {json.dumps(given)}\n")
    with pytest.raises(SpecError, match="input") as caught:
        _ = subject(str(path)).input_shape
    assert caught.value.file == str(path) and caught.value.line == 3
    from blockstitch.cli import main

    assert main(["check", str(path)]) == 2  # refused when checked, not only when used


def test_an_edit_specs_input_is_its_input(tmp_path: Path) -> None:
    path = tmp_path / "edit.yaml"
    path.write_text("name: e\nextends: resnet18\ninput: [3, 64, 64]\n")
    assert subject(str(path)).input_shape == (3, 64, 64)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64], ids=str)
def test_a_model_in_any_floating_dtype_is_profiled_and_stitched_in_it(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    reference = Net()
    model = Net().to(dtype)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    expected = bs.profile(reference, input_shape=(3, 16, 16)).macs  # the same network in float32
    assert bs.profile(model, input_shape=(3, 16, 16)).macs == expected
    assert bs.graph(model, input_shape=(3, 16, 16)) is not None
    stitched = bs.stitch(model, insert=[{"after": "conv", "block": {"kind": "se"}}], input_shape=(3, 16, 16))
    assert {p.dtype for p in stitched.model.parameters()} == {dtype}
    assert stitched.model(torch.zeros(1, 3, 16, 16, dtype=dtype)).dtype == dtype
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the given model untouched


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_a_scriptmodule_is_refused_with_the_reason() -> None:
    scripted = torch.jit.script(Net())
    for call in (lambda: bs.profile(scripted, input_shape=(3, 16, 16)),
                 lambda: bs.graph(scripted, input_shape=(3, 16, 16)),
                 lambda: bs.stitch(scripted, insert=[{"after": "conv", "block": {"kind": "se"}}],
                                   input_shape=(3, 16, 16))):
        with pytest.raises(BlockstitchError, match="TorchScript"):
            call()


def test_an_edit_spec_at_64_is_profiled_and_drawn_at_64(tmp_path: Path) -> None:
    """Issue 27: a 64×64 edit of timm:resnet18 was profiled at 224×224 (1.814 GMACs instead of 0.149)."""
    from blockstitch.graph import graph_record

    path = tmp_path / "edit64.yaml"
    path.write_text("name: e64\nextends: timm:resnet18\ninput: [3, 64, 64]\n")
    truth = bs.profile("timm:resnet18", input_shape=(3, 64, 64))  # the same network, the shape given outright
    got = bs.profile(str(path))
    assert tuple(got.input_shape) == (3, 64, 64) and got.macs == truth.macs
    assert got.macs < bs.profile("timm:resnet18").macs / 10
    assert graph_record(str(path)).input_shape[-2:] == (64, 64)


def test_an_edit_spec_at_its_input_is_exported_at_it(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    base = Path(__file__).parent / "hostile" / "lenet_tiny.yaml"
    path = tmp_path / "edit16.yaml"
    path.write_text(f"name: e16\nextends: {base}\ninput: [1, 16, 12]\n")
    bs.export(str(path), tmp_path / "e16.onnx")
    dims = onnx.load(str(tmp_path / "e16.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims][1:] == [1, 16, 12]


def test_the_peak_measurement_stops_at_a_matmul_size_that_is_slow(monkeypatch: pytest.MonkeyPatch) -> None:
    """bench --dtype float16 on a CPU spent ~5 minutes on its roofline peak whatever --budget said: a size
    whose single matmul is slow is not measured once a smaller one was."""
    import importlib
    from types import SimpleNamespace

    peaks = importlib.import_module("blockstitch.bench.peaks")
    sizes: list[int] = []

    def fake_measure(fn, device, budget_s, min_reps):  # noqa: ANN001 — the timing itself is not under test
        out = fn()
        sizes.append(out.shape[0] if out.dim() == 2 else 0)
        return SimpleNamespace(samples_ms=[1.0])

    monkeypatch.setattr(peaks, "measure", fake_measure)
    monkeypatch.setattr(peaks, "SLOW_MATMUL_S", -1.0)  # every matmul "slow": only the smallest is measured
    peaks._measure(torch.device("cpu"), torch.float32)
    assert sizes == [256, 0]
    sizes.clear()
    monkeypatch.setattr(peaks, "SLOW_MATMUL_S", 1e9)  # none slow: every size, the best of them
    peaks._measure(torch.device("cpu"), torch.float32)
    assert sizes == [256, 512, 1024, 2048, 0]
