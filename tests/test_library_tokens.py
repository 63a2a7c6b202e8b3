"""Behaviour of the token-mixer and spatial-context library blocks that the registry-wide tests do not pin:
exact identity init, the masked padding that lets windowed blocks run at any size, and located size errors."""

from __future__ import annotations

import pytest
import torch

from blockstitch.errors import ShapeError
from blockstitch.registry import get_block

GATED = ["lka", "msca", "lsk", "poolformer", "gmlp", "efficientvit_msla"]


def _build(kind: str, fields: dict, shape: tuple[int, ...]):
    spec = get_block(kind).model_validate(fields)
    return spec, spec.build([shape])


@pytest.mark.parametrize("kind", GATED)
def test_identity_init_is_exact(kind: str) -> None:
    fields, shapes = get_block(kind).example()
    spec, module = _build(kind, fields, shapes[-1][0])
    with torch.no_grad():
        for p in module.parameters():
            p.normal_()
    assert spec.init_identity(module) is True
    x = torch.randn(shapes[-1][0])
    for mode in (module.train(), module.eval()):
        assert torch.equal(mode(x), x), kind


def test_hilo_ragged_edge_leaves_whole_windows_alone() -> None:
    """All heads Hi-Fi: windows wholly inside the map are computed exactly as on the cropped map."""
    _, module = _build("hilo", {"heads": 4, "alpha": 0.0, "window": 2}, (1, 16, 13, 9))
    x = torch.randn(1, 16, 13, 9)
    with torch.no_grad():
        full, cropped = module(x), module(x[..., :12, :8])
    torch.testing.assert_close(full[..., :12, :8], cropped)
    assert torch.isfinite(full).all()


def test_cswin_ragged_stripe_equals_a_shorter_stripe() -> None:
    """The padded, masked last stripe computes what an unpadded stripe of its real height computes."""
    _, module = _build("cswin_attn", {"heads": 4, "stripe": 3}, (1, 16, 13, 9))
    t = torch.randn(1, 13, 9, 16)
    q, k, v = (z[..., :8] for z in module.qkv(t).chunk(3, dim=-1))
    with torch.no_grad():
        full = module._stripes(q, k, v, module.lepe[0], rows=True)
        parts = []
        for top in range(0, 13, 3):
            bottom = min(top + 3, 13)
            module.stripe = bottom - top  # an exact fit: no padding, no mask
            parts.append(module._stripes(q[:, top:bottom], k[:, top:bottom], v[:, top:bottom], module.lepe[0],
                                         rows=True))
        module.stripe = 3
    torch.testing.assert_close(full, torch.cat(parts, dim=1))


@pytest.mark.parametrize("kind, fields, shape, words", [
    ("biformer", {}, (1, 64, 14, 15), "multiples of 7"),
    ("halo_attn", {}, (1, 64, 16, 12), "multiples of 8"),
    ("vip", {}, (1, 16, 8, 9), "set size: [8, 9]"),
    ("bot_mhsa", {}, (1, 18, 8, 8), "channels a multiple of 4"),
])
def test_bad_sizes_are_located_errors(kind: str, fields: dict, shape: tuple[int, ...], words: str) -> None:
    with pytest.raises(ShapeError) as err:
        get_block(kind).model_validate(fields).out_shape([shape])
    assert words in str(err.value)


def test_routing_module_names_its_rule_at_run_time() -> None:
    _, module = _build("biformer", {"heads": 4, "topk": 2}, (1, 16, 14, 14))
    with pytest.raises(ValueError, match="multiples of 7"):
        module(torch.randn(1, 16, 14, 15))
