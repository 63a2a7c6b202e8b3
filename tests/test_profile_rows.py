"""Profile rows of stitched networks: every stitched block is a row of its own kind where it runs (truth: the
order the stitched module's own forward enters its modules, recorded with plain forward pre-hooks; the kind:
the edit spec), and the rows add up to the totals."""

from __future__ import annotations

import torch
from torch import nn

import blockstitch as bs
from blockstitch.subject import subject

EDIT = {
    "name": "mixed_edits", "extends": "resnet18", "input": [3, 32, 32],
    "insert": [{"after": "layer2", "block": {"kind": "ema"}, "identity_init": True},
               {"before": "layer4", "block": {"kind": "se"}}],
    "replace": [{"path": "layer1.1", "block": {"kind": "conv", "out_channels": 64}}],
    "wrap": [{"path": "layer3.1", "wrapper": "gated"}],
}


def _entered(model: nn.Module, shape: tuple[int, ...]) -> list[str]:
    """Module names in the order the forward first enters them (plain torch hooks, a meta forward)."""
    order: list[str] = []
    handles = [m.register_forward_pre_hook(lambda mod, args, n=n: order.append(n) if n not in order else None)
               for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            model.eval()(torch.empty(1, *shape, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return order


def test_stitched_blocks_are_rows_of_their_kind_where_they_run() -> None:
    found = subject(EDIT)
    prof = bs.profile(found)
    rows = [n.name for n in prof.nodes]
    model = found.module("meta")
    entered = _entered(model, (3, 32, 32))
    assert rows == [n for n in entered if n in rows]  # execution order, as the module itself runs
    by_name = {n.name: n for n in prof.nodes}
    ema, se = (next(e.module for e in found.report.edits if e.kind == k) for k in ("ema", "se"))
    layer2_last = [r for r in rows if r.startswith("layer2.")][-1]
    assert rows.index(ema) == rows.index(layer2_last) + 1  # right after layer2, not after fc
    assert rows.index(se) == rows.index("layer4.0") - 1  # inserted before layer4
    assert by_name[ema].kind == "ema (gated)" and by_name[se].kind == "se"  # the edit spec's kinds
    assert by_name["layer1.1"].kind == "conv (replaced)"
    assert by_name["layer3.1"].kind.endswith("(wrapped: gated)")
    assert by_name[ema].params == sum(p.numel() for p in model.get_submodule(ema).parameters())
    assert sum(n.params for n in prof.nodes) == prof.params == sum(p.numel() for p in model.parameters())
    assert sum(n.macs for n in prof.nodes) == prof.macs  # no work falls between rows


def test_a_container_never_called_whole_is_shown_as_its_children() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stack = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])
            self.head = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.stack[1](self.stack[0](x)))  # `stack` itself never runs

    prof = bs.profile(Net(), (4,), batch=3)
    assert [n.name for n in prof.nodes] == ["stack.0", "stack.1", "head"]
    assert [n.macs for n in prof.nodes] == [3 * 16, 3 * 16, 3 * 8]
