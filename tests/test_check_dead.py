"""check-module's dead parameters: no gradient, or an exactly-zero gradient at every probed size and mode — while
a zero-initialised gate (and the branch behind it) and a parameter used only in eval are alive. The truth:
plain-PyTorch backward passes here."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import blockstitch as bs

FAST = {"channels": False}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small real runs on one thread


class OneKey(nn.Module):
    """Attention whose softmax sees a single key (the pooled map): its weights are always 1, so the query and key
    projections get a gradient of exactly zero, whatever their values."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.to_q, self.to_k, self.to_v = (nn.Linear(channels, channels) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # b (h w) c
        key = tokens.mean(1, keepdim=True)  # b 1 c: one key
        attn = (self.to_q(tokens) @ self.to_k(key).transpose(1, 2)).softmax(-1)  # b (h w) 1
        out = attn @ self.to_v(key)  # b (h w) c
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class ZeroGate(nn.Module):
    """x + γ · conv(x) with γ = 0 at the start: γ's gradient is non-zero, the conv's is zero only until γ moves."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gamma * self.conv(x)


class EvalOnly(nn.Module):
    """A calibration scale applied only at inference: no gradient reaches it in train mode, one does in eval."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if not self.training:
            x = x * self.scale
        return x


def _zero_grads(module: nn.Module, sizes: list[tuple[int, int]], scramble: bool, train: bool = True) -> set[str]:
    """Plain PyTorch: the parameters whose gradient is all zero (or missing) at every size; ``scramble``: with
    every parameter drawn at random first; ``train``: the mode."""
    if scramble:
        with torch.no_grad():
            for p in module.parameters():
                p.normal_()
    module.train(train)
    dead = {n for n, _ in module.named_parameters()}
    for h, w in sizes:
        module.zero_grad(set_to_none=True)
        module(torch.randn(2, 16, h, w)).square().mean().backward()
        dead &= {n for n, p in module.named_parameters() if p.grad is None or not p.grad.count_nonzero()}
    return dead


def test_an_all_zero_gradient_at_every_size_is_dead() -> None:
    torch.manual_seed(0)
    truth = _zero_grads(OneKey(), [(8, 8), (5, 9)], scramble=True)
    assert truth == {"to_q.weight", "to_q.bias", "to_k.weight", "to_k.bias"}
    assert _zero_grads(OneKey(), [(8, 8), (5, 9)], scramble=True, train=False) == truth  # dead in eval too
    r = bs.check_module(OneKey(16), **FAST)
    assert set(r.dead_params or ()) == truth
    message = r.check("gradients").message
    assert r.check("gradients").status == "failed" and "exactly zero" in message and "to_q.weight" in message


def test_a_zero_initialised_gate_is_alive() -> None:
    torch.manual_seed(0)
    at_init = _zero_grads(ZeroGate(), [(8, 8)], scramble=False)
    assert at_init == {"conv.weight", "conv.bias"}  # zero only because γ starts at 0 …
    assert _zero_grads(ZeroGate(), [(8, 8)], scramble=True) == set()  # … not by structure
    r = bs.check_module(ZeroGate(16), **FAST)
    assert r.dead_params == [] and r.check("gradients").status == "passed"


def test_a_parameter_used_only_in_eval_is_alive_and_its_mode_is_named() -> None:
    torch.manual_seed(0)
    assert _zero_grads(EvalOnly(), [(8, 8)], scramble=False, train=True) == {"scale"}  # train alone: dead …
    assert _zero_grads(EvalOnly(), [(8, 8)], scramble=False, train=False) == set()  # … but eval trains it
    r = bs.check_module(EvalOnly(16), **FAST)
    grads = r.check("gradients")
    assert r.dead_params == [] and grads.status == "passed", grads.message
    assert grads.evidence["modes"]["scale"] == ["eval"] and grads.evidence["modes"]["conv.weight"] == ["eval", "train"]
    assert "only in eval: scale" in grads.message
