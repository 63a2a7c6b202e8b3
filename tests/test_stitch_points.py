"""The stitch's parts as objects: edit kinds from one table, insertion points as a public API, MACs from the
profiler's counter, pydantic's complaints as located errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import blockstitch as bs
from blockstitch.stitch import EDIT_KINDS, EditSpec
from blockstitch.stitch.points import called, record_shapes, run_beside


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.body = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.stem(x)).mean((2, 3)))


def test_every_edit_kind_is_a_list_of_edit_specs_and_a_keyword_of_stitch() -> None:
    for op, kind in EDIT_KINDS.items():
        assert kind.op == op and EditSpec.model_fields[op].annotation == list[kind]
    with pytest.raises(bs.SpecError, match=r"unknown edit kind 'insrt' — did you mean 'insert'\?"):
        bs.stitch(Tiny(), input_shape=(3, 8, 8), insrt=[{"after": "stem", "block": {"kind": "se"}}])


def test_recorded_macs_are_torch_s_count() -> None:
    model, x = Tiny(), torch.randn(1, 3, 8, 8)
    with FlopCounterMode(display=False) as truth, torch.no_grad():
        model(x)
    rec = record_shapes(model, (1, 3, 8, 8))
    assert rec.macs == truth.get_total_flops() // 2
    assert rec.params == sum(p.numel() for p in model.parameters())
    assert rec.shapes["body.0"] == ((1, 8, 8, 8), (1, 8, 8, 8)) and rec.order[0] == "stem"


def test_run_beside_is_what_an_insert_does() -> None:
    torch.manual_seed(0)
    by_hand = Tiny()
    torch.manual_seed(0)
    base = Tiny()
    stitched, report = bs.stitch(base, input_shape=(3, 8, 8), insert=[{"after": "body.0", "block": {"kind": "se"}}])
    rec = record_shapes(by_hand, (1, 3, 8, 8))
    target = called(rec, "body.0", "after")
    block = stitched.get_submodule(report.edits[0].module)
    assert run_beside(by_hand, "body.0", target, block, "se") == report.edits[0].module == "body_0_se"
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(by_hand(x), stitched(x)) and not torch.equal(by_hand(x), base(x))


@pytest.mark.parametrize(("edit", "path", "message"), [
    ({"aftr": "stem", "block": {"kind": "se"}}, "insert[0].aftr", r"unknown field 'aftr' .* did you mean 'after'\?"),
    ({"after": "stem", "block": {"kind": "se", "reductio": 4}}, "insert[0].block.reductio",
     r"unknown field 'reductio' for kind 'se' — did you mean 'reduction'\?"),
    ({"block": {"kind": "se"}}, "insert[0]", r"give exactly one of `after:` or `before:`"),
])
def test_pydantic_complaints_are_located(edit: dict, path: str, message: str) -> None:
    with pytest.raises(bs.SpecError, match=message) as info:
        bs.stitch(Tiny(), input_shape=(3, 8, 8), insert=[edit])
    assert info.value.path == path
