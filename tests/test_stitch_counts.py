"""A stitch report's new / kept / removed parameter counts, for every edit kind, against a parameter-by-parameter
diff of the networks before and after (by name and value: a kept parameter is the same name holding the same
numbers)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import blockstitch as bs


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.body = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.stem(x)).mean((2, 3)))


def _diff(before: nn.Module, after: nn.Module) -> tuple[int, int, int]:
    """(new, kept, removed) from the state_dicts' parameters: kept = same name, same shape, equal values."""
    names = {n for n, _ in before.named_parameters()}
    old = {k: v for k, v in before.state_dict().items() if k in names}
    names = {n for n, _ in after.named_parameters()}
    now = {k: v for k, v in after.state_dict().items() if k in names}
    kept = {k for k, v in now.items() if k in old and old[k].shape == v.shape and torch.equal(old[k], v)}
    return (sum(v.numel() for k, v in now.items() if k not in kept), sum(now[k].numel() for k in kept),
            sum(v.numel() for k, v in old.items() if k not in kept))


CONV = {"kind": "conv", "out_channels": 8, "norm": "none", "act": "none"}
EDITS = {
    "insert": {"insert": [{"after": "body.0", "block": {"kind": "se"}}]},
    "insert-identity": {"insert": [{"after": "body.*", "block": {"kind": "conv", "out_channels": 8},
                                    "identity_init": True}]},
    "replace-two-convs": {"replace": [{"path": "body.[02]", "block": CONV}]},
    "wrap": {"wrap": [{"path": "body.2", "wrapper": "gated"}]},
    "wrap-residual": {"wrap": [{"path": "body.2", "wrapper": "residual"}]},
    "remove": {"remove": [{"path": "body.2"}]},
    "all": {"insert": [{"after": "stem", "block": {"kind": "se"}}], "replace": [{"path": "body.0", "block": CONV}],
            "wrap": [{"path": "body.2"}], "remove": [{"path": "body.1"}]},
}


@pytest.mark.parametrize("name", list(EDITS))
def test_counts_are_the_parameter_diff(name: str) -> None:
    torch.manual_seed(0)
    base = Tiny()
    stitched, report = bs.stitch(base, input_shape=(3, 8, 8), **EDITS[name])
    new, kept, removed = _diff(base, stitched)
    assert (report.new_params, report.kept_params, report.removed_params) == (new, kept, removed)
    assert report.params_before == kept + removed and report.params_after == kept + new
    assert sum(e.new for e in report.edits) == new and sum(e.removed for e in report.edits) == removed
    assert sum(e.params for e in report.edits) == new - removed
    d = report.to_dict()
    assert (d["new_params"], d["kept_params"], d["removed_params"]) == (new, kept, removed)
    assert f"{new:,} newly initialised, {kept:,} kept, {removed:,} removed" in str(report)


def test_a_same_size_replace_is_all_new() -> None:
    """The issue's case: replacing two convs by convs of the same size nets 0 but brings in all-new weights."""
    base = Tiny()
    _, report = bs.stitch(base, input_shape=(3, 8, 8), replace=[{"path": "body.[02]", "block": CONV}])
    convs = sum(p.numel() for i in (0, 2) for p in base.body[i].parameters())
    assert report.params_after == report.params_before
    assert report.new_params == report.removed_params == convs > 0
