"""Property: a valid spec file, mutated at random (bytes, types, numbers, aliases), gives exit 0 or a located
exit 2 — never a traceback, an internal error or a hang."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml
from bounds import bounded
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blockstitch.cli import main

ROOT = Path(__file__).resolve().parents[1]
BASES = [ROOT / "specs" / "lenet5.yaml", ROOT / "tests" / "hostile" / "lenet_tiny.yaml",
         ROOT / "specs" / "resnet18.yaml"]
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _run(path: Path, capsys: Any) -> None:
    with bounded():
        code = main(["check", str(path)])
    captured = capsys.readouterr()
    assert code in (0, 2), f"exit {code}\n{captured.err}"
    if code == 2:
        err = captured.err
        assert "Traceback" not in err and "internal error" not in err, err
        assert err.startswith("error: ") and path.name in err.splitlines()[0], err


def _paths(data: Any, loc: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [loc]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*loc, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*loc, i))
    return out


def _set(data: Any, loc: tuple[Any, ...], value: Any) -> Any:
    if not loc:
        return value
    parent = data
    for part in loc[:-1]:
        parent = parent[part]
    parent[loc[-1]] = value
    return data


VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.sampled_from([0, -1, 2**31, 2**40, 10**9]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([math.nan, math.inf, 1e300, -0.0, 0.5]),
    st.text(max_size=30), st.sampled_from(["timm:resnet18", "os:system", "evil.py:Boom", "../../etc/passwd", ""]),
    st.lists(st.integers(-3, 300), max_size=5), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


@SETTINGS
@given(base=st.sampled_from(BASES), data=st.data())
def test_structural_mutations_answer_cleanly(base: Path, data: st.DataObject, tmp_path: Path, capsys) -> None:
    spec = yaml.safe_load(base.read_text())
    locs = _paths(spec)
    for _ in range(data.draw(st.integers(1, 3))):
        loc = data.draw(st.sampled_from(locs))
        action = data.draw(st.sampled_from(["replace", "scale", "delete", "alias"]))
        try:
            target = spec
            for part in loc:
                target = target[part]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed it
        if action == "replace":
            spec = _set(spec, loc, data.draw(VALUES))
        elif action == "scale" and isinstance(target, (int, float)) and not isinstance(target, bool):
            spec = _set(spec, loc, target * data.draw(st.sampled_from([0, -1, 3, 1000, 10**6, 0.5])))
        elif action == "delete" and loc:
            parent = spec
            for part in loc[:-1]:
                parent = parent[part]
            del parent[loc[-1]]
        elif action == "alias" and isinstance(target, (list, dict)):
            spec = _set(spec, loc, [target] * data.draw(st.integers(2, 40)))  # dumped as anchors and aliases
    path = tmp_path / base.name
    try:
        path.write_text(yaml.safe_dump(spec, allow_unicode=True))
    except (yaml.YAMLError, ValueError, UnicodeEncodeError):
        return
    _run(path, capsys)


@SETTINGS
@given(base=st.sampled_from(BASES), data=st.data())
def test_byte_mutations_answer_cleanly(base: Path, data: st.DataObject, tmp_path: Path, capsys) -> None:
    raw = bytearray(base.read_bytes())
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(raw)))
        action = data.draw(st.sampled_from(["flip", "insert", "delete", "duplicate"]))
        if action == "flip" and at < len(raw):
            raw[at] = data.draw(st.integers(0, 255))
        elif action == "insert":
            raw[at:at] = data.draw(st.sampled_from([b"&a ", b"*a", b"[", b"{", b"\x00", b"\xe9", b"!!python/name:os.system ",
                                                    b"\n  - ", b"99999999999", b"<<: *a\n", b"\t", b": ", b"'"]))
        elif action == "delete":
            del raw[at:at + data.draw(st.integers(1, 20))]
        elif action == "duplicate":
            raw[at:at] = raw[at:at + data.draw(st.integers(1, 60))]
    path = tmp_path / base.name
    path.write_bytes(bytes(raw))
    _run(path, capsys)
