"""check-module names layers and trainable tensors kept in plain Python containers: ``parameters()`` misses them
(never trained, saved or moved to the GPU) while the forward uses them. The truth: ``parameters()`` against the
parameters of the layers the forward actually calls, counted here with plain PyTorch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import blockstitch as bs
from blockstitch.check.probes.unregistered import find_unregistered

FAST = {"channels": False}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small real runs on one thread


class PlainListConvs(nn.Module):
    """Paper code: three convs in a plain list (the author meant nn.ModuleList)."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.stem = nn.Conv2d(channels, channels, 1)
        self.convs = [nn.Conv2d(channels, channels, 3, padding=1) for _ in range(3)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for conv in self.convs:
            x = x + conv(x)
        return x


class PlainListWeight(nn.Module):
    """A learnable per-channel scale kept as a tensor in a list (the author meant nn.Parameter)."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, channels, 1)
        self.w = [torch.randn(1, channels, 1, 1, requires_grad=True)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x) * self.w[0]


class Nested(nn.Module):
    """The trap one level down, plus a registered layer also listed in a plain list (harmless: registered)."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.inner = PlainListConvs(channels)
        self.head = nn.Conv2d(channels, channels, 1)
        self.order = [self.head]  # a convenience alias of a registered layer
        self.spare = {"unused": nn.Linear(4, 4)}  # unregistered, but the forward never calls it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.order[0](self.inner(x))


def _called_params(module: nn.Module, x: torch.Tensor, lists: list[list[nn.Module]]) -> int:
    """Plain PyTorch: the parameter values of every leaf layer the forward calls (a hook on every registered
    layer and on every layer of ``lists``)."""
    layers = [m for m in [*module.modules(), *(m for layer_list in lists for m in layer_list)] if not list(m.children())]
    called: dict[int, nn.Module] = {}
    hooks = [m.register_forward_hook(lambda m, i, o: called.__setitem__(id(m), m)) for m in layers]
    module(x)
    for h in hooks:
        h.remove()
    return sum(p.numel() for m in called.values() for p in m.parameters())


def test_layers_in_a_plain_list_are_named_with_their_count() -> None:
    m = PlainListConvs(16)
    hidden = _called_params(m, torch.randn(1, 16, 8, 8), [m.convs]) - sum(p.numel() for p in m.parameters())
    assert hidden == 3 * (16 * 16 * 9 + 16)  # parameters() misses the three convs
    r = bs.check_module(m, **FAST)
    check = r.check("parameters registered")
    assert not r.ok and check.status == "failed" and check.required
    assert check.message == (f"layers in a plain Python list at self.convs[0..2] are not registered: their "
                             f"{hidden:,} parameters are never trained, saved or moved to the GPU; use nn.ModuleList")
    assert all(u["used"] for u in check.evidence["unregistered"])


def test_a_trainable_tensor_in_a_plain_list_is_named() -> None:
    m = PlainListWeight(16)
    truth = m.w[0].numel()
    assert all(p is not m.w[0] for p in m.parameters())  # parameters() misses it
    r = bs.check_module(m, **FAST)
    check = r.check("parameters registered")
    assert check.status == "failed" and "at self.w[0]" in check.message and f"its {truth:,} parameters" in check.message
    assert "nn.ParameterList" in check.message


def test_nested_traps_are_found_and_unused_or_registered_ones_do_not_fail() -> None:
    m = Nested(16)
    found = {u.path: u for u in find_unregistered(m)}
    assert set(found) == {"self.inner.convs[0]", "self.inner.convs[1]", "self.inner.convs[2]",
                          "self.spare['unused']"}  # self.order[0] is m.head: registered
    hidden = _called_params(m, torch.randn(1, 16, 8, 8), [m.inner.convs, list(m.spare.values())]) \
        - sum(p.numel() for p in m.parameters())
    assert sum(u.params for p, u in found.items() if "convs" in p) == hidden
    r = bs.check_module(m, **FAST)
    check = r.check("parameters registered")
    assert check.status == "failed" and "self.inner.convs[0..2]" in check.message and "spare" not in check.message
    used = {u["path"]: u["used"] for u in check.evidence["unregistered"]}
    assert used["self.spare['unused']"] is False and used["self.inner.convs[1]"] is True


def test_a_clean_module_passes() -> None:
    r = bs.check_module(nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.ReLU()), **FAST)
    assert r.check("parameters registered").status == "passed"
