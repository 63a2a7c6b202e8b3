"""Library cards accept the argument names of the paper's code as aliases (EMA's ``factor`` for ``groups``): the
same module as the canonical name, in a spec node, a stitch edit and on the card; giving both is refused."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import blockstitch as bs
from blockstitch.blocks.library.attention_group import EfficientMultiScaleAttention
from blockstitch.catalogue import card_text
from blockstitch.registry import get_block


def _built(fields: dict[str, object], shape: tuple[int, ...] = (1, 32, 8, 8)) -> nn.Module:
    torch.manual_seed(0)
    return get_block(str(fields["kind"])).model_validate(fields).build([shape])


@pytest.mark.parametrize(("kind", "canonical", "paper", "value"),
                         [("ema", "groups", "factor", 8), ("eca", "kernel_size", "k_size", 5),
                          ("simam", "lam", "e_lambda", 1e-3)])
def test_the_paper_name_builds_the_same_module(kind: str, canonical: str, paper: str, value: object) -> None:
    a, b = _built({"kind": kind, paper: value}), _built({"kind": kind, canonical: value})
    default = _built({"kind": kind})
    sd_a, sd_b = a.state_dict(), b.state_dict()
    assert {k: v.shape for k, v in sd_a.items()} == {k: v.shape for k, v in sd_b.items()}
    assert all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)
    x = torch.randn(2, 32, 8, 8)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
        assert not torch.equal(a(x), default(x))  # the value was used, not dropped for the default
    assert f"{canonical} = " in card_text(kind) and f"(also: {paper}, as in the paper's code)" in card_text(kind)
    with pytest.raises(Exception, match=paper):  # both names: one of them is an extra field
        get_block(kind).model_validate({"kind": kind, canonical: value, paper: value})


def test_ema_factor_is_the_papers_group_count_in_a_stitch() -> None:
    """Truth: the plain module EMA(c, groups=8) — its convs work on c / 8 channels per group."""
    base = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU())
    model, report = bs.stitch(base, input_shape=(3, 8, 8), insert=[{"after": "0", "block": {"kind": "ema", "factor": 8}}])
    ema = model.get_submodule(report.edits[0].module)
    plain = EfficientMultiScaleAttention(32, 8)
    assert isinstance(ema, EfficientMultiScaleAttention) and ema.groups == 8
    assert {k: v.shape for k, v in ema.state_dict().items()} == {k: v.shape for k, v in plain.state_dict().items()}
