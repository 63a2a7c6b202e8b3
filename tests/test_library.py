"""Every block with a paper card (built-in, library, zoo — picked up from the registry): its card is complete and
its rules parse; it runs forward and backward at an odd, non-square size at batch 1 in train and eval, and in
bfloat16 on CPU; stitched with identity_init into ResNet-18 and YOLOv8n it reproduces the network exactly;
check-module agrees with its card's size rule; and a block that offers `fuse()` folds to equal eval outputs."""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
import torch
from torch import nn

import blockstitch as bs
from blockstitch.blockspec import CATEGORIES, BlockSpec, Shape
from blockstitch.catalogue import Rule, parse_rule, rule_admits
from blockstitch.registry import block_kinds, get_block

os.environ.setdefault("YOLO_OFFLINE", "1")
import timm.layers  # noqa: E402,F401  (check-module's worker forks from this process: import timm once, here)

LIBRARY = [k for k in block_kinds() if get_block(k).__module__.startswith("blockstitch.")
           and get_block(k).card is not None and get_block(k).card.paper is not None]


def _int_fields(cls: type[BlockSpec]) -> tuple[str, ...]:
    """Names a rule may use: the spec's fields and properties (Rule.resolve insists on an int value)."""
    props = tuple(n for n in dir(cls) if isinstance(getattr(cls, n, None), property))
    return tuple(name for name in cls.model_fields if name != "kind") + props


def _spec(kind: str) -> tuple[BlockSpec, dict[str, Any], list[list[Shape]]]:
    cls = get_block(kind)
    fields, shape_sets = cls.example()
    spec = cls.model_validate(fields)
    layout = cls.in_layouts[0] if cls.in_layouts else None
    return (spec.with_layout(layout) if layout else spec), fields, shape_sets


def _size_rule(kind: str) -> Rule:
    cls = get_block(kind)
    return parse_rule(cls.card.size_rule, _int_fields(cls)).resolve(_spec(kind)[0])


def _odd_inputs(kind: str) -> list[Shape]:
    """Batch 1 at an odd, non-square size the card's size rule admits (13×9 for `any`), else the example's."""
    cls = get_block(kind)
    _, _, shape_sets = _spec(kind)
    example = [(1, *s[1:]) for s in shape_sets[-1]]
    if cls.arity != 1 or not cls.in_layouts or cls.in_layouts[0] not in ("b c h w", "b n c"):
        return example
    rule, c = _size_rule(kind), example[0][1 if cls.in_layouts[0] == "b c h w" else 2]
    sizes = {"any": (13, 9), "square": (13, 13)}.get(rule.name)
    if rule.name == "multiple_of":
        sizes = (3 * rule.value, rule.value) if rule.value > 1 else (13, 9)
    elif rule.name == "min":
        sizes = (max(13, rule.value + 3), max(9, rule.value + 1))
    elif rule.name in ("fixed", "area"):
        sizes = rule.value
    if cls.in_layouts[0] == "b n c":
        return [(1, sizes[0], c)]
    return [(1, c, *sizes)]


@pytest.mark.parametrize("kind", LIBRARY)
def test_card_is_complete(kind: str) -> None:
    cls = get_block(kind)
    card = cls.card
    assert card.category in CATEGORIES, f"{kind}: category {card.category!r} is not one of {CATEGORIES}"
    paper = card.paper
    assert paper.title.strip() and paper.venue.strip(), f"{kind}: paper title and venue"
    assert isinstance(paper.year, int) and 1980 <= paper.year <= 2030, f"{kind}: paper year {paper.year}"
    assert paper.url.startswith(("https://arxiv.org/", "https://doi.org/", "https://")), f"{kind}: paper url"
    assert isinstance(card.aliases, tuple) and all(isinstance(a, str) and a.strip() for a in card.aliases)
    parse_rule(card.size_rule, _int_fields(cls)).resolve(_spec(kind)[0])
    parse_rule(card.channel_rule, _int_fields(cls)).resolve(_spec(kind)[0])


@pytest.mark.parametrize("kind", LIBRARY)
def test_odd_size_batch1_train_eval_and_bf16(kind: str) -> None:
    spec, _, _ = _spec(kind)
    shapes = _odd_inputs(kind)
    torch.manual_seed(0)
    module = spec.build(shapes).train()
    xs = [torch.randn(s, requires_grad=True) for s in shapes]
    out = module(*xs)
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    assert tuple(outs[-1].shape) == tuple(spec.out_shape(shapes)), f"{kind} at {shapes}"
    assert all(torch.isfinite(o).all() for o in outs)
    sum(o.square().mean() for o in outs).backward()
    missing = [n for n, p in module.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"{kind}: no gradient for {missing}"
    with torch.no_grad():
        module.eval()
        out = module(*xs)
        assert all(torch.isfinite(o).all() for o in (out if isinstance(out, (list, tuple)) else [out]))
        half = module.to(torch.bfloat16)(*[x.detach().bfloat16() for x in xs])
        for o in half if isinstance(half, (list, tuple)) else [half]:
            assert o.dtype == torch.bfloat16 and torch.isfinite(o.float()).all(), f"{kind}: bf16 output"


@pytest.fixture(scope="module")
def bases() -> dict[str, tuple[nn.Module, str, Shape]]:
    """ResNet-18 (insert after layer2) and YOLOv8n (after model.2), random weights, with the shape there."""
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    nets = {"resnet18": (bs.build("resnet18"), "layer2"), "yolov8n": (DetectionModel("yolov8n.yaml", verbose=False),
                                                                      "model.2")}
    out = {}
    for name, (net, at) in nets.items():
        seen: list[Shape] = []
        target = net.get_submodule(at)
        while not seen:  # a container an fx graph never calls (resnet18's layer2): its last child's output
            hook = target.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
            with torch.no_grad():
                net.eval()(torch.zeros(1, 3, 64, 64))
            hook.remove()
            target = list(target.children())[-1]
        out[name] = (net, at, seen[-1])
    return out


def _fields_at(kind: str, shape: Shape) -> dict[str, Any] | None:
    """The example's fields, out_channels set to keep the width; None unless the block keeps ``shape``."""
    cls = get_block(kind)
    if cls.arity != 1 or (cls.in_layouts is not None and "b c h w" not in cls.in_layouts):
        return None
    fields = dict(cls.example()[0])
    if "out_channels" in cls.model_fields:
        fields["out_channels"] = shape[1]
    try:
        keeps = tuple(cls.model_validate(fields).with_layout("b c h w").out_shape([shape])) == tuple(shape)
    except Exception:  # noqa: BLE001 — does not fit there at all
        return None
    return fields if keeps else None


def _stitch_diff(net: str, kinds: list[str], bases: dict) -> tuple[float, set[str]]:
    """Insert ``kinds`` (identity_init) one after another at the net's point; the largest output difference."""
    base, at, shape = bases[net]
    edits = [{"after": at, "block": {"kind": k, **_fields_at(k, shape)}, "identity_init": True} for k in kinds]
    new, report = bs.stitch(copy.deepcopy(base), insert=edits, input_shape=(3, 64, 64))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = base.eval()(x), new.eval()(x)
    a, b = (a[0], b[0]) if isinstance(a, (list, tuple)) else (a, b)
    return (a - b).abs().max().item(), {e.kind for e in report.edits}


@pytest.fixture(scope="module")
def stitched_all(bases: dict) -> dict[str, tuple[float, set[str]] | None]:
    """Every shape-keeping block stitched at once (cheap); a kind is re-checked alone only if this fails."""
    out: dict[str, tuple[float, set[str]] | None] = {}
    for net, (_, _, shape) in bases.items():
        kinds = [k for k in LIBRARY if _fields_at(k, shape) is not None]
        try:
            out[net] = _stitch_diff(net, kinds, bases)
        except Exception:  # noqa: BLE001 — one block fails to stitch: each test then stitches its own
            out[net] = None
    return out


@pytest.mark.parametrize("net", ["resnet18", "yolov8n"])
@pytest.mark.parametrize("kind", LIBRARY)
def test_identity_init_reproduces_the_network(kind: str, net: str, bases: dict, stitched_all: dict) -> None:
    _, at, shape = bases[net]
    if _fields_at(kind, shape) is None:
        pytest.skip(f"{kind} does not keep the shape {shape} of {net}.{at}")
    together = stitched_all[net]
    if together is not None and together[0] <= 1e-6 and kind in together[1]:
        return  # inserted with all the others, and the network still computes exactly what it did
    diff, kinds = _stitch_diff(net, [kind], bases)
    assert kind in kinds and diff <= 1e-6, f"{kind} stitched into {net} changes its output by {diff:.3g}"


@pytest.mark.parametrize("kind", LIBRARY)
def test_check_module_agrees_with_the_card(kind: str) -> None:
    cls = get_block(kind)
    if cls.arity != 1:
        pytest.skip("check-module takes one input")
    spec, fields, shape_sets = _spec(kind)
    layout = cls.in_layouts[0] if cls.in_layouts else "b c h w"
    channels = shape_sets[-1][0][layout.split().index("c")]
    # larger inputs run on meta tensors (cheap); the generous time limit only matters on a loaded machine
    report = bs.check_module(kind, input=layout, axes={"c": channels}, args=fields, compile=False, export=False,
                             real_elements=2**12, seconds=60)
    rule = _size_rule(kind)
    size_check = ("sizes", "shapes")  # the size sweep fails by design where the card states a rule
    failed = [f"{c.name}: {c.message}" for c in report.checks if c.required and c.status == "failed"
              and (rule.name == "any" or not c.name.startswith(size_check))]
    assert not failed, f"{kind}: {failed}"
    if rule.name == "any":
        assert report.constraints == [], f"{kind}: card says any size, check-module found {report.constraints}"
    for point in report.sweep:
        size = tuple(point["size"])
        if rule.name == "fixed" and min(size) == 1:
            continue  # size 1 broadcasts against a fixed size: not evidence either way
        assert point["ok"] == rule_admits(rule, size), \
            f"{kind}: card rule {cls.card.size_rule} says {'no' if point['ok'] else 'yes'} at {size}: {point}"
    widths = next((c for c in report.checks if c.name == "channels"), None)
    found = (getattr(widths, "evidence", None) or {}).get("rule", {}).get("axes", {}).get("c")
    if found is not None:
        crule = parse_rule(cls.card.channel_rule, _int_fields(cls)).resolve(spec)
        said = {"rule": crule.name, "value": crule.value} if crule.name in ("multiple_of", "min") and \
            crule.value != 1 else {"rule": "any", "value": None}  # multiple_of:1 and min:1 mean any
        assert found == said or crule.name not in ("any", "multiple_of", "min"), \
            f"{kind}: card channel rule {cls.card.channel_rule}, check-module found {widths.message}"


@pytest.mark.parametrize("kind", LIBRARY)
def test_fuse_keeps_eval_outputs(kind: str) -> None:
    spec, _, shape_sets = _spec(kind)
    module = spec.build(shape_sets[0])
    if not any(callable(getattr(m, "fuse", None)) for m in module.modules()):
        pytest.skip("nothing to fold")
    torch.manual_seed(0)
    xs = [torch.randn(s) for s in shape_sets[0]]
    with torch.no_grad():
        module.train()(*xs)  # running statistics away from their initial values
    fused, report = bs.fuse(module)
    assert report.fused
    with torch.no_grad():
        a, b = module.eval()(*xs), fused(*xs)
    assert torch.allclose(a, b, atol=1e-4, rtol=1e-4), f"{kind}: fused output differs by {(a - b).abs().max()}"
