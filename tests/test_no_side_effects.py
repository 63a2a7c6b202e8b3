"""Guests leave no trace: every public entry point × every foreign test model leaves the model bit-identical —
parameters, buffers, plain tensor attributes, lists a forward appends to, counters, modes, hooks, gradients,
requires_grad — and global torch state (default dtype, grad mode, deterministic flags, RNG) as it was."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from foreign_models import MODELS, STITCH_AT
from torch import nn

import blockstitch as bs
from blockstitch.meta import fingerprint, guest, meta_call, torch_state_guard


def _profile(model: nn.Module, shape: tuple[int, ...]) -> Any:
    return bs.profile(model, shape)


def _stitch(name: str) -> Callable[[nn.Module, tuple[int, ...]], Any]:
    def run(model: nn.Module, shape: tuple[int, ...]) -> Any:
        return bs.stitch(model, insert=[{"after": STITCH_AT[name], "block": {"kind": "se"}, "identity_init": True}],
                         input_shape=shape)
    return run


def _check(model: nn.Module, shape: tuple[int, ...]) -> Any:
    return bs.check_module(model, input="b c h w", axes={"c": shape[0]}, compile=False, export=False, seconds=5.0)


def _bench(model: nn.Module, shape: tuple[int, ...]) -> Any:
    return bs.bench(model, shape, budget_s=0.02, roofline=False)


def _meta(model: nn.Module, shape: tuple[int, ...]) -> Any:
    return meta_call(model, [torch.empty(1, *shape, device="meta")], train=True)


def _graph(model: nn.Module, shape: tuple[int, ...]) -> Any:
    return bs.graph(model, format="mermaid", input_shape=shape)


def _export(tmp: Path) -> Callable[[nn.Module, tuple[int, ...]], Any]:
    def run(model: nn.Module, shape: tuple[int, ...]) -> Any:
        return bs.export(model, tmp / "model.pt2", input_shape=shape, format="torch-export", batches=(1,))
    return run


def _fuse(model: nn.Module, shape: tuple[int, ...]) -> Any:
    # the comparison run must happen on a copy
    return bs.fuse(model, example=torch.randn(1, *shape, generator=torch.Generator().manual_seed(0)))


def _transfer(model: nn.Module, shape: tuple[int, ...]) -> Any:
    import copy

    return bs.transfer_weights(model, copy.deepcopy(model))  # the source side must stay as it was


ENTRY_POINTS = ["profile", "stitch", "check_module", "bench", "meta_call", "graph", "export", "fuse", "transfer"]


def _entry(entry: str, name: str, tmp: Path) -> Callable[[nn.Module, tuple[int, ...]], Any]:
    return {"profile": _profile, "stitch": _stitch(name), "check_module": _check, "bench": _bench,
            "meta_call": _meta, "graph": _graph, "export": _export(tmp), "fuse": _fuse, "transfer": _transfer}[entry]


@pytest.fixture(scope="module")
def built() -> dict[str, tuple[nn.Module, tuple[int, ...]]]:
    return {}


def _model(built: dict[str, tuple[nn.Module, tuple[int, ...]]], name: str) -> tuple[nn.Module, tuple[int, ...]]:
    if name not in built:
        torch.manual_seed(0)
        built[name] = MODELS[name]()
    return built[name]


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("name", list(MODELS))
def test_entry_point_leaves_model_and_torch_state_as_they_were(built, name: str, entry: str, tmp_path: Path) -> None:
    model, shape = _model(built, name)
    torch.manual_seed(1234)
    before = fingerprint(model)
    refusals = Exception if entry == "meta_call" else bs.BlockstitchError  # meta_call is the raw layer
    try:
        _entry(entry, name, tmp_path)(model, shape)
    except refusals:
        pass  # refusing is allowed (a detector is no plug-and-play block); changing the model is not
    after = fingerprint(model)
    changed = [k for k in before if before[k] != after.get(k)]
    assert not changed, f"{entry} changed {name}: {changed[:5]}"


def test_fingerprint_sees_every_kind_of_change() -> None:
    """The helper itself must not be blind: each kind of change it promises to cover is detected."""
    model, _ = MODELS["grid_cache"]()
    changes: list[Callable[[nn.Module], None]] = [
        lambda m: m[0].weight.data.add_(1e-3),
        lambda m: m[1].bn.running_mean.add_(1),
        lambda m: setattr(m[1], "grid", torch.zeros(2, 12, 12)),
        lambda m: m[1].seen.append((0,)),
        lambda m: setattr(m[1], "calls", 99),
        lambda m: m[1].eval(),
        lambda m: m[0].weight.requires_grad_(False),
        lambda m: setattr(m[0].weight, "grad", None),
        lambda m: m[2].register_forward_hook(lambda *a: None),
        lambda m: m[1].scale.mul_(1),  # same values, but written: the version counter moves
        lambda m: torch.set_default_dtype(torch.float64),
        lambda m: torch.rand(1),
    ]
    for i, change in enumerate(changes):
        with torch_state_guard():
            m, _ = MODELS["grid_cache"]()
            before = fingerprint(m)
            change(m)
            assert fingerprint(m) != before, f"change {i} went unseen"


def test_shadow_runs_fill_the_shadow_not_the_model() -> None:
    model, shape = MODELS["grid_cache"]()
    calls, seen = model[1].calls, list(model[1].seen)
    with guest(model) as sh:
        sh(torch.empty(1, *shape[:1], 20, 20, device="meta"))
        assert sh[1].calls == calls + 1 and sh[1].grid.shape[-2:] == (20, 20)
        assert sh[1].grid.is_meta
    assert model[1].calls == calls and model[1].seen == seen and not model[1].grid.is_meta
