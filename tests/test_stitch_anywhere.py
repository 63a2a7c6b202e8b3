"""Issue 25: any block, anywhere — paper code as users copy it, stitched with plain-PyTorch truth."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import blockstitch as bs
from blockstitch.meta import fingerprint


# ---- paper code as it is found: constructors that make CPU tensors or call .to(device) --------------------------
class ScaleFT(nn.Module):
    """`torch.FloatTensor([m])` and an uninitialised `torch.Tensor(n)` in the constructor."""

    def __init__(self, channels: int, m: float = 2.0) -> None:
        super().__init__()
        self.m = torch.FloatTensor([m])
        self.w = nn.Parameter(torch.Tensor(channels))
        nn.init.ones_(self.w)
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.m * self.conv(x) * self.w.view(1, -1, 1, 1)


class ToDevice(nn.Module):
    """`.to(device)` in the constructor."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        device = torch.device("cpu")
        self.conv = nn.Conv2d(channels, channels, 3, padding=1).to(device)
        self.register_buffer("k", torch.full((1,), 0.5).to(device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * self.k


class NeedsCuda(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = torch.ones(channels, device="cuda")

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover — never built without CUDA
        return x * self.scale.view(1, -1, 1, 1)


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stem(x).relu())


@pytest.mark.parametrize("cls", [ScaleFT, ToDevice])
def test_constructors_that_cannot_run_on_meta_are_built_on_the_cpu(cls: type[nn.Module]) -> None:
    torch.manual_seed(0)
    model = Toy()
    before = fingerprint(model)
    new, report = bs.stitch(model, input_shape=(3, 9, 7), insert=[{"after": "stem", "block": cls}])
    assert fingerprint(model) == before
    block = new.get_submodule(report.edits[0].module)
    assert isinstance(block, cls) and report.edits[0].out_shape == (1, 8, 9, 7)
    x = torch.randn(2, 3, 9, 7)
    with torch.no_grad():  # truth: the same modules called by hand
        assert torch.allclose(new(x), model.head(block(model.stem(x)).relu()))
        gated, _ = bs.stitch(model, input_shape=(3, 9, 7),
                             insert=[{"after": "stem", "block": cls, "identity_init": True}])
        assert torch.equal(gated(x), model(x))


def test_a_module_that_insists_on_cuda_gets_its_own_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA present: the module builds")
    with pytest.raises(bs.BlockstitchError, match=r"NeedsCuda's constructor raised .*(CUDA|cuda|NVIDIA)") as info:
        bs.stitch(Toy(), input_shape=(3, 8, 8), insert=[{"after": "stem", "block": NeedsCuda}])
    assert "channels=" not in str(info.value)  # the arguments are not the cause
