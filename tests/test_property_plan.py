"""Property: for random valid specs, the plan's shapes, params and MACs equal a real forward and the profiler.

Hypothesis draws small networks from the blocks whose knobs used to disagree (ECA's adaptive kernel, CBAM's
spatial kernel, the transformer's `mlp_ratio`) plus convs with groups/dilation/stride, pools, residual blocks
and a linear head; every one is planned on meta tensors, built for real on CPU at a small input and run once.
"""

from __future__ import annotations

from typing import Any

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import blockstitch as bs
from blockstitch.errors import SpecError
from blockstitch.profile import profile

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def conv_node(draw: st.DrawFn, channels: int) -> tuple[dict[str, Any], int]:
    out = draw(st.sampled_from([4, 8, 12, 16]))
    groups = draw(st.sampled_from([g for g in (1, 2, 4) if channels % g == 0 and out % g == 0]))
    node = {"kind": "conv", "out_channels": out, "kernel_size": draw(st.sampled_from([1, 2, 3, 5])),
            "stride": draw(st.sampled_from([1, 2])), "groups": groups, "dilation": draw(st.sampled_from([1, 2])),
            "norm": draw(st.sampled_from(["batchnorm", "groupnorm", "none"])),
            "act": draw(st.sampled_from(["relu", "silu", "gelu", "none"]))}
    return node, out


@st.composite
def attention_node(draw: st.DrawFn, channels: int) -> tuple[dict[str, Any], int]:
    kind = draw(st.sampled_from(["se", "cbam", "eca", "coord_attn"]))
    node: dict[str, Any] = {"kind": kind}
    if kind == "se":
        node["reduction"] = draw(st.sampled_from([1, 2, 4, 16]))
    elif kind == "cbam":
        node["spatial_kernel"] = draw(st.sampled_from([1, 2, 3, 5, 7]))  # even: a located refusal
        node["reduction"] = draw(st.sampled_from([1, 2, 8]))
    elif kind == "eca":
        node["kernel_size"] = draw(st.sampled_from([None, 1, 3, 4, 5]))
    return node, channels


@st.composite
def network(draw: st.DrawFn) -> dict[str, Any]:
    size = draw(st.sampled_from([8, 12, 16]))
    channels = draw(st.sampled_from([3, 4, 8]))
    nodes: list[dict[str, Any]] = []
    c = channels
    for _ in range(draw(st.integers(1, 4))):
        choice = draw(st.sampled_from(["conv", "attention", "basic", "pool"]))
        if choice == "conv":
            node, c = draw(conv_node(c))
        elif choice == "attention":
            node, c = draw(attention_node(c))
        elif choice == "basic":
            c = draw(st.sampled_from([8, 16]))
            node = {"kind": "basic", "out_channels": c, "stride": draw(st.sampled_from([1, 2])),
                    "norm": "batchnorm", "act": "relu"}
        else:
            node = {"kind": draw(st.sampled_from(["maxpool", "avgpool"])), "kernel_size": 2, "stride": 1}
        nodes.append(node)
    if draw(st.booleans()):  # tokens: a transformer on the flattened grid (the planner bridges the layout)
        heads = draw(st.sampled_from([h for h in (1, 2, 4) if c % h == 0]))
        nodes.append({"kind": "transformer", "heads": heads, "mlp_ratio": draw(st.sampled_from([0.01, 0.5, 1.0, 4.0]))})
    nodes += [{"kind": "adaptive_avgpool", "output_size": 1}, {"kind": "flatten"},
              {"kind": "linear", "out_features": draw(st.sampled_from([1, 10]))}]
    return {"name": "random_net", "input": [channels, size, size], "nodes": nodes}


@SETTINGS
@given(network())
def test_plan_equals_real_forward_and_profile(spec: dict[str, Any]) -> None:
    try:
        plan = bs.plan(spec)
    except SpecError as err:  # a drawn network may not fit (the grid shrinks below a kernel): a located refusal
        assert err.where() or err.node is not None, str(err)
        return
    torch.manual_seed(0)
    model = bs.build(spec).eval()
    with torch.no_grad():
        out = model(torch.randn(plan.input.shape))
    assert tuple(out.shape) == tuple(plan.output_shapes()[0])
    assert sum(p.numel() for p in model.parameters()) == plan.params
    prof = profile(spec)
    assert prof.disagreements == [], prof.disagreements
    assert prof.macs == plan.macs and prof.params == plan.params


def test_even_kernels_that_cannot_keep_the_size_are_refused_located(write_spec) -> None:
    for node, field in (("{kind: cbam, spatial_kernel: 4}", "spatial_kernel"), ("{kind: eca, kernel_size: 2}",
                                                                                 "kernel_size")):
        path = write_spec(f"name: n\ninput: [8, 8, 8]\nnodes:\n  - {node}\n")
        try:
            bs.plan(str(path))
        except SpecError as err:
            assert err.line == 4 and field in str(err) and "must be odd" in str(err), str(err)
        else:
            raise AssertionError(f"{node} was accepted")


def test_an_explicit_eca_kernel_is_the_one_built() -> None:
    spec = {"name": "n", "input": [64, 4, 4], "nodes": [{"kind": "eca", "kernel_size": 7}]}
    conv = next(m for m in bs.build(spec).modules() if isinstance(m, torch.nn.Conv1d))
    assert conv.kernel_size == (7,)  # timm would recompute 3 from the 64 channels
