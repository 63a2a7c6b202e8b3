"""Every registered block: built, run forward and backward on CPU at two input sizes, and its analytic
output shape (exact) and MACs (within 1%) checked against what its module does on meta tensors."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from blockstitch.registry import block_kinds, get_block

ALL_KINDS = block_kinds()


def _spec(kind: str):
    cls = get_block(kind)
    fields, shape_sets = cls.example()
    return cls.model_validate(fields), shape_sets


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_forward_backward_two_sizes(kind: str) -> None:
    spec, shape_sets = _spec(kind)
    assert len(shape_sets) >= 2, "examples must give two input sizes"
    for in_shapes in shape_sets:
        torch.manual_seed(0)
        module = spec.build(in_shapes).train()
        xs = [torch.randn(s, requires_grad=True) for s in in_shapes]
        out = module(*xs)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]  # blocks with named outputs give a list
        assert [tuple(o.shape) for o in outs] == [tuple(s) for s in spec.out_shapes(in_shapes)]
        assert tuple(outs[-1].shape) == spec.out_shape(in_shapes)
        assert all(torch.isfinite(o).all() for o in outs)
        sum(o.float().square().mean() for o in outs).backward()
        assert all(x.grad is not None for i, x in enumerate(xs) if i not in spec.size_only_inputs), \
            f"{kind}: no gradient reached an input"
        for name, p in module.named_parameters():
            assert p.grad is not None, f"{kind}: parameter {name} got no gradient"


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_analytic_shape_and_macs_match_meta(kind: str) -> None:
    spec, shape_sets = _spec(kind)
    for in_shapes in shape_sets:
        with torch.device("meta"):
            module = spec.build(in_shapes).eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            out = module(*[torch.empty(s, device="meta") for s in in_shapes])
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        assert [tuple(o.shape) for o in outs] == [tuple(s) for s in spec.out_shapes(in_shapes)]
        counted = counter.get_total_flops() / 2
        analytic = spec.macs(in_shapes)
        if counted == 0:
            assert analytic == 0, f"{kind}: analytic {analytic} MACs but the module counts none"
        else:
            assert abs(analytic - counted) <= 0.01 * counted, f"{kind}: analytic {analytic} vs counted {counted}"


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_spec_is_documented(kind: str) -> None:
    cls = get_block(kind)
    assert (cls.__doc__ or "").strip(), f"{kind} has no docstring"
    for name, field in cls.model_fields.items():
        if name != "kind":
            assert field.description, f"{kind}.{name} has no attribute docstring (it feeds the JSON Schema)"
    assert cls.model_config.get("extra") == "forbid"


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_spec_round_trips(kind: str) -> None:
    spec, _ = _spec(kind)
    again = type(spec).model_validate(spec.model_dump())
    assert again == spec
