"""Properties by class (issue 27), one generator each: whatever a node id, a string in a file or a message
holds, `check` accepting it means every tool can use it, and refusing it means one located, escaped line."""

from __future__ import annotations

import keyword
from typing import Any

from bounds import bounded
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import blockstitch as bs
from blockstitch.assemble.names import RESERVED, name_problem
from blockstitch.errors import SpecError, shown

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

PART = st.one_of(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True), st.sampled_from(sorted(RESERVED)),
                 st.sampled_from(keyword.kwlist), st.sampled_from(["__class__", "__init__", "self", "0", "1a", ""]),
                 st.text(max_size=4))
NODE_IDS = st.lists(PART, min_size=1, max_size=3).map(".".join)


def _spec(node_id: str) -> dict[str, Any]:
    return {"name": "p", "input": [3, 8, 8],
            "nodes": [{"kind": "conv", "out_channels": 4, "kernel_size": 3, "id": node_id}, {"kind": "act"}]}


@SETTINGS
@given(NODE_IDS)
def test_a_node_id_check_accepts_works_in_every_tool(node_id: str) -> None:
    """Accepted ids build, profile and draw (fx-free hooks and fx both); refused ones are a SpecError at
    check time with the reason — never a library's KeyError or SyntaxError later."""
    with bounded(30):
        try:
            plan = bs.plan(_spec(node_id))
        except SpecError as err:
            assert name_problem(node_id) is not None or node_id == "input", str(err)
            assert "nodes[0].id" in str(err)
            return
        assert name_problem(node_id) is None
        model = bs.build(plan, device="meta")
        assert model.get_submodule(node_id) is not None
        assert bs.profile(_spec(node_id)).macs > 0
        import torch.fx

        torch.fx.symbolic_trace(bs.build(plan, device="meta"))  # fx writes `self.<id>` into Python


@SETTINGS
@given(st.text(min_size=1, max_size=40))
def test_any_string_in_a_file_is_refused_or_printed_safely(text: str) -> None:
    """A name holding any characters: refused with its place, or carried — and every message about it is
    escaped (no raw control character, no line of its own)."""
    spec = {"name": text, "input": [3, 8, 8], "nodes": [{"kind": "act"}]}
    try:
        bs.plan(spec)
    except SpecError as err:
        message = str(err)
        assert not any(ord(c) < 32 and c != "\n" for c in message), repr(message)
        return
    message = str(SpecError(f"about {text}", found=text))
    assert not any(ord(c) < 32 and c != "\n" for c in message)
    assert all(not line.startswith("error:") for line in message.splitlines()[1:])
    assert shown(text) == text or any(ord(c) < 32 or ord(c) > 126 for c in text) or "\n" in text
