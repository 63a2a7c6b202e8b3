"""Hostile inputs by class, a generator per class (issue 27): each class's files are made here, small where
possible, and every one must end in one located refusal — fast, in bounded memory, printed safely.

Classes: YAML that costs work before any limit (size, values, nesting, comments); strings holding control
characters however they are written; node ids that are not names or shadow what a module has; weights files
that are bombs, hold the wrong things or are named oddly; messages that would echo their whole input.
"""

from __future__ import annotations

import io
import json
import keyword
import os
import subprocess
import sys
import textwrap
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from bounds import bounded

from blockstitch.assemble import load_text
from blockstitch.assemble.names import MAX_NAME, RESERVED, name_problem
from blockstitch.cli import main
from blockstitch.errors import MAX_SHOWN, SpecError, shown

HOSTILE = Path(__file__).parent / "hostile"
BASE = HOSTILE / "lenet_tiny.yaml"
CPU_SECONDS = 2.0  # every refusal, in this process's CPU time (wall time on a shared machine is not the file's)


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI: exit 2, one `error:` line first, no traceback, no 'please report it'; the message."""
    with bounded(30):
        code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, f"{argv}: exit {code}\n{err[:2000]}"
    assert "Traceback" not in err and "please report it" not in err and "internal error" not in err, err[:2000]
    lines = err.strip().splitlines()
    assert lines[0].startswith("error: "), lines[0][:300]
    assert not any(line.startswith("error:") for line in lines[1:]), f"a forged error line:\n{err[:2000]}"
    assert "\x1b" not in err and "\r" not in err and "\x00" not in err, repr(err[:500])
    return err


# ---------------------------------------------------------------- YAML that costs work before any limit
def yaml_work() -> Iterator[tuple[str, str, str]]:
    """(case, text, what the refusal says): each is within the 4 MiB file limit but far over another."""
    yield "3.4 MiB flow list", "name: x\nnodes: [" + ", ".join(["0"] * 1_200_000) + "]\n", "values"
    yield "block list", "name: x\nnodes:\n" + "- 0\n" * 250_000, "values"
    yield "many keys", "name: x\nextra:\n" + "".join(f" k{i}: 0\n" for i in range(130_000)), "values"
    yield "deep flow nesting", "a: " + "[" * 200_000 + "]" * 200_000 + "\n", "nest"
    yield "many aliases", "a: &a 1\nb: [" + ", ".join(["*a"] * 100_000) + "]\n", "aliases"


@pytest.mark.parametrize("case,text,says", list(yaml_work()), ids=[c for c, _, _ in yaml_work()])
def test_yaml_over_a_limit_is_refused_before_it_is_composed(case: str, text: str, says: str) -> None:
    start = time.process_time()
    with bounded(30), pytest.raises(SpecError, match=says):
        load_text(text, "big.yaml")
    spent = time.process_time() - start
    assert spent < CPU_SECONDS, f"{case}: refused after {spent:.1f} s of CPU"


def test_a_long_comment_costs_no_time() -> None:
    text = "name: x\n# " + "x" * (4 * 2**20 - 64) + "\n"
    start = time.process_time()
    assert load_text(text, "comment.yaml").data == {"name": "x"}
    assert time.process_time() - start < CPU_SECONDS


# ---------------------------------------------------------------- control characters, however written
def control_strings() -> Iterator[tuple[str, str]]:
    """(case, file text): a string (value or key) that holds a control character only once parsed."""
    for written, code in (("\\e[31m", "001B"), ("\\u0000", "0000"), ("\\x1b", "001B"), ("\\r", None),
                          ("\\u202e", "202E"), ("\\x85", "0085")):
        if code is not None:
            yield f"value {written}", f'name: "net{written}"\ninput: [1, 8, 8]\nnodes: []\n'
            yield f"key {written}", f'name: n\n"k{written}": 1\n'
    yield "JSON lone surrogate", '{"name": "\\ud800"}'


@pytest.mark.parametrize("case,text", list(control_strings()), ids=[c for c, _ in control_strings()])
def test_control_characters_are_refused_with_their_place(case: str, text: str, tmp_path: Path, capsys) -> None:
    path = tmp_path / ("net.json" if text.startswith("{") else "net.yaml")
    path.write_text(text)
    err = _refused(["check", str(path)], capsys)
    assert path.name in err


def test_every_message_field_is_escaped_and_bounded() -> None:
    forged = "key\x1b[31m\rerror: forged\u202e" + "x" * 5000
    text = str(SpecError(forged, found=forged, hint=forged, file=forged))
    assert "\x1b" not in text and "\r" not in text and "\u202e" not in text
    assert not any(line.startswith("error:") for line in text.splitlines())
    assert len(text) < 5 * (MAX_SHOWN + 100) and "more characters" in text
    assert shown("plain") == "plain"


# ---------------------------------------------------------------- node ids
def bad_ids() -> Iterator[tuple[str, str]]:
    """(id, what the reason says)."""
    for word in ("class", "None", "True", "lambda", "import"):
        yield word, "keyword"
    for name in ("training", "forward", "eval", "to", "code", "graph", "state_dict", "_modules", "type"):
        yield name, "shadow"
    yield "self", "self"
    yield "__class__", "special"
    yield "layer1.to", "shadow"
    for text in ("1abc", "a-b", "a..b", "a b", "ä", ""):
        yield text, "not a name"
    yield "a" * (MAX_NAME + 1), "characters"


@pytest.mark.parametrize("node_id,says", list(bad_ids()), ids=[i[:20] or "empty" for i, _ in bad_ids()])
def test_a_node_id_that_cannot_name_a_module_is_refused_at_check(node_id: str, says: str, tmp_path: Path,
                                                                 capsys) -> None:
    path = tmp_path / "ids.yaml"
    node = f"{{kind: conv, out_channels: 4, id: {json.dumps(node_id)}}}"
    path.write_text(f"name: n\ninput: [3, 8, 8]\nnodes:\n  - {node}\n  - {{kind: act, act: relu}}\n")
    err = _refused(["check", str(path)], capsys)
    assert "ids.yaml:4:" in err and "nodes[0].id" in err and says in err, err


def test_good_ids_still_pass() -> None:
    for node_id in ("conv1", "layer1.0", "layer1.0.conv2", "_private", "stem_", "match", "x" * MAX_NAME):
        assert name_problem(node_id) is None, node_id


def test_reserved_names_cover_what_the_installed_torch_modules_have() -> None:
    """The list is written out (check must not import torch); this is the truth it is checked against."""
    import torch.fx

    traced = torch.fx.symbolic_trace(torch.nn.ReLU())
    live = {*dir(torch.nn.Module), *dir(torch.fx.GraphModule), *vars(torch.nn.Module()), *vars(traced)}
    missing = sorted(n for n in live if not n.startswith("__") and n not in RESERVED)
    assert not missing, f"add to blockstitch/assemble/names.py RESERVED: {missing}"
    assert not any(name_problem(w) is None for w in keyword.kwlist)


def test_a_network_name_over_the_limit_is_refused(tmp_path: Path, capsys) -> None:
    path = tmp_path / "long.yaml"
    path.write_text(f"name: {'n' * (MAX_NAME + 1)}\ninput: [1, 8, 8]\nnodes: [{{kind: act, act: relu}}]\n")
    assert "characters" in _refused(["check", str(path)], capsys)


def test_a_timm_backbone_stage_out_of_range_is_located(tmp_path: Path, capsys) -> None:
    path = tmp_path / "tb.yaml"
    path.write_text("name: n\ninput: [3, 32, 32]\nnodes:\n  - {kind: timm_backbone, model: resnet10t, "
                    "out_indices: [1, 9]}\n")
    err = _refused(["check", str(path)], capsys)
    assert "tb.yaml:4:" in err and "5 stages" in err


# ---------------------------------------------------------------- weights files
def _lenet_state() -> dict[str, torch.Tensor]:
    from blockstitch.subject import subject

    return subject(str(BASE)).module(None).state_dict()


def _edit(tmp_path: Path, weights: str) -> Path:
    path = tmp_path / "edit.yaml"
    path.write_text(f"name: w\nextends: {BASE}\nweights: {weights}\n")
    return path


def bad_weights() -> Iterator[tuple[str, str, object, str]]:
    """(case, file name, what torch.save writes there, what the refusal says)."""
    state = _lenet_state()
    first = next(iter(state))
    yield "integer keys", "int_keys.pt", {i: v for i, v in enumerate(state.values())}, "not text"
    yield "meta tensors", "meta.pt", {k: v.to("meta") for k, v in state.items()}, "meta"
    yield "sparse tensor", "sparse.pt", {**state, first: state[first].to_sparse()}, "sparse"
    yield "complex tensor", "complex.pt", {**state, first: state[first].to(torch.complex64)}, "complex"
    yield "not a dict", "list.pt", list(state.values()), "state_dict"
    yield "pickle under an upper-case .SAFETENSORS", "pickled.SAFETENSORS", state, "cannot read"
    forged = {f"\x1b[31m\nerror: forged {i}": v for i, v in enumerate(state.values())}
    yield "escape codes in keys", "keys.pt", forged, "unexpected"


@pytest.mark.filterwarnings("ignore:Validating sparse tensor invariants:UserWarning")
@pytest.mark.parametrize("case,name,content,says", list(bad_weights()), ids=[c for c, *_ in bad_weights()])
def test_weights_that_hold_the_wrong_things_are_named(case: str, name: str, content: object, says: str,
                                                      tmp_path: Path, capsys) -> None:
    torch.save(content, tmp_path / name)
    err = _refused(["check", str(_edit(tmp_path, name))], capsys)
    assert says in err, err


def test_upper_case_safetensors_is_read_as_safetensors(tmp_path: Path, capsys) -> None:
    from safetensors.torch import save_file

    state = {k: torch.randn_like(v.float()).to(v.dtype) for k, v in _lenet_state().items()}
    save_file(state, str(tmp_path / "w.SAFETENSORS"))
    from blockstitch.subject import subject

    model = subject(str(_edit(tmp_path, "w.SAFETENSORS"))).module(None)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items() if k in loaded)


def deflated_zeros(chunks: int, chunk: int = 2**24) -> bytes:
    """``chunks × chunk`` zero bytes, deflated; with full flushes every chunk compresses to the same bytes, so
    a 1.5 GiB stream is made from one chunk's work."""
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    first = c.compress(bytes(chunk)) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(bytes(chunk)) + c.flush(zlib.Z_FULL_FLUSH)
    return first + again * (chunks - 1) + c.flush()


def zip_bomb(path: Path, state: dict[str, torch.Tensor], chunks: int = 96) -> None:
    """A torch.save archive whose first tensor record inflates to ``chunks × 16 MiB`` (its CRC left wrong: only
    the declared size matters — it is what a reader allocates)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    source = zipfile.ZipFile(buf)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as out:
        for info in source.infolist():
            if not info.filename.endswith("/data/0"):
                out.writestr(info.filename, source.read(info.filename))
                continue
            raw = deflated_zeros(chunks)
            bomb = zipfile.ZipInfo(info.filename, date_time=(2020, 1, 1, 0, 0, 0))
            bomb.compress_type = zipfile.ZIP_DEFLATED
            bomb.file_size, bomb.compress_size, bomb.CRC = chunks * 2**24, len(raw), 0
            bomb.header_offset = out.fp.tell()  # type: ignore[union-attr]
            out.fp.write(bomb.FileHeader(False))  # type: ignore[union-attr]
            out.fp.write(raw)  # type: ignore[union-attr]
            out.filelist.append(bomb)
            out.NameToInfo[bomb.filename] = bomb
            out.start_dir = out.fp.tell()  # type: ignore[union-attr]


def test_a_zip_bomb_weights_file_is_refused_before_it_inflates(tmp_path: Path) -> None:
    """7 MB on disk, 1.5 GiB inflated: refused from the archive's header, in a fresh process whose peak memory
    is measured (the refusal adds < 256 MiB to the warm-up's peak — RSS < 1 GB where the warm-up itself stays
    under 744 MiB — and costs < 2 s of CPU)."""
    zip_bomb(tmp_path / "bomb.pt", _lenet_state())
    assert (tmp_path / "bomb.pt").stat().st_size < 16 * 2**20
    edit = _edit(tmp_path, "bomb.pt")
    script = textwrap.dedent(f"""
        import json, resource, sys, time
        from blockstitch.cli import main
        main(["check", {str(BASE)!r}])  # warm: imports are not the file's cost
        warm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.process_time()
        code = main(["check", {str(edit)!r}])
        spent = time.process_time() - start
        print(json.dumps([code, spent, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, warm]))
    """)
    done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    code, spent, peak_mib, warm_mib = json.loads(done.stdout.strip().splitlines()[-1])
    assert code == 2 and "would inflate" in done.stderr, done.stderr
    # the file's own cost: the peak over what the same process reached checking the base network (imports,
    # torch's allocator); that warm peak varies with the machine's state, the bomb's share must not
    assert peak_mib - warm_mib < 256, f"peak RSS {peak_mib:.0f} MiB, {peak_mib - warm_mib:.0f} MiB over the warm-up"
    assert peak_mib < 1000 or warm_mib > 744, f"peak RSS {peak_mib:.0f} MiB (warm-up {warm_mib:.0f} MiB)"
    assert spent < CPU_SECONDS, f"refused after {spent:.1f} s of CPU"


# ---------------------------------------------------------------- messages that would echo their input
def echoing_inputs() -> Iterator[tuple[str, str]]:
    yield "a huge node", "name: n\ninput: [1, 8, 8]\nnodes:\n  - [" + "0, " * 50_000 + "0]\n"
    yield "a huge kind", "name: n\ninput: [1, 8, 8]\nnodes:\n  - {kind: " + "k" * 9_000 + "}\n"


@pytest.mark.parametrize("case,text", list(echoing_inputs()), ids=[c for c, _ in echoing_inputs()])
def test_a_message_echoes_a_bounded_part_of_its_input(case: str, text: str, tmp_path: Path, capsys) -> None:
    path = tmp_path / "echo.yaml"
    path.write_text(text)
    err = _refused(["check", str(path)], capsys)
    assert len(err) < 8 * MAX_SHOWN, f"{case}: a message of {len(err):,} characters"
