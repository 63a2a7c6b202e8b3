"""Every CLI entry point on every hostile file in tests/hostile/: exit 2, one located message, no traceback,
no hang (10 s each), bounded memory, and no code imported or unpickled.

The commands run in-process through ``blockstitch.cli.main`` (a SIGALRM bounds each run; the handler raises a
BaseException the CLI does not catch, so a hang fails the test instead of becoming a message); the files that
used to hang run once more in a subprocess with a hard timeout.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from bounds import bounded

from blockstitch.cli import main

HOSTILE = Path(__file__).parent / "hostile"
VALID = {"lenet_tiny.yaml"}  # the base of the weights cases, valid on purpose
FILES = sorted(p for p in HOSTILE.iterdir() if p.suffix in (".yaml", ".json", ".py") and p.name not in VALID)
MARKERS = [Path(tempfile.gettempdir()) / "blockstitch_pwned_by_import",
           Path(tempfile.gettempdir()) / "blockstitch_pwned_by_pickle"]
SECONDS = 10


@pytest.fixture(scope="module", autouse=True)
def warm(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each command once, unbounded: the first call of a command imports its modules (seconds on a busy
    2-core machine), which is start-up time, not the answer to a file."""
    tmp = tmp_path_factory.mktemp("warm")
    for argv in _commands(HOSTILE / "lenet_tiny.yaml", tmp).values():
        main(argv)


def _commands(path: Path, tmp: Path) -> dict[str, list[str]]:
    f = str(path)
    return {
        "check": ["check", f],
        "profile": ["profile", f],
        "bench": ["bench", f, "--budget", "0.01"],
        "sweep": ["sweep", f, "--no-plots", "--out", str(tmp / "results.jsonl")],
        "check-module --into": ["check-module", "se", "--into", f, "--no-compile", "--no-export", "--reps", "1"],
        "graph": ["graph", f],
        "export": ["export", f, "-o", str(tmp / "model.onnx")],
    }


def _assert_located_refusal(path: Path, code: int, err: str, what: str) -> None:
    assert code == 2, f"{what} {path.name}: exit {code}\n{err}"
    assert "Traceback" not in err, f"{what} {path.name}: a traceback reached the user\n{err}"
    assert "internal error" not in err, f"{what} {path.name}: not a located message\n{err}"
    first = err.strip().splitlines()[0]
    assert first.startswith("error: "), f"{what} {path.name}: {first!r}"
    assert path.name in err or str(HOSTILE) in err, f"{what} {path.name}: the message names no file\n{err}"


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")  # torch, refusing pickle_bomb.pt
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_entry_point_refuses_with_a_located_message(path: Path, tmp_path: Path, capsys) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for what, argv in _commands(path, tmp_path).items():
        with bounded():
            code = main(argv)
        _assert_located_refusal(path, code, capsys.readouterr().err, what)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 512, f"{path.name}: peak memory grew by {grown_mib:.0f} MiB"
    assert not any(m.exists() for m in MARKERS), "a file made blockstitch import or unpickle code"
    assert not (Path.cwd() / "pwned").exists()


def test_oversized_file_is_refused_before_it_is_read(tmp_path: Path, capsys) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("name: big\ninput: [3, 8, 8]\nnodes: [{kind: relu}]\n# " + "x" * (5 * 2**20) + "\n")
    for argv in (["check", str(big)], ["sweep", str(big), "--no-plots"]):
        with bounded():
            code = main(argv)
        _assert_located_refusal(big, code, capsys.readouterr().err, argv[0])


def test_debug_shows_the_traceback(capsys) -> None:
    assert main(["check", str(HOSTILE / "huge_repeat.yaml"), "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "huge_repeat.yaml:4" in err


@pytest.mark.parametrize("command", ["schema", "zoo", "blocks"])
def test_commands_without_a_file_refuse_a_plugin_that_is_not_python(command: str, capsys) -> None:
    code = main(["--plugin", str(HOSTILE / "binary.yaml"), command])
    err = capsys.readouterr().err
    assert code == 2 and "binary.yaml" in err and "Traceback" not in err


def test_a_code_reference_is_refused_from_python_and_from_files() -> None:
    import blockstitch as bs
    from blockstitch.bench import bench
    from blockstitch.errors import SpecError

    for call in (lambda: bench(str(HOSTILE / "evil.py") + ":Boom", (3, 8, 8)),
                 lambda: bench("os:system", (3, 8, 8)),
                 lambda: bs.plan({"name": "x", "input": [3, 8, 8], "nodes": [{"kind": "evil.py:Boom"}]})):
        with pytest.raises(SpecError):
            call()
    assert not any(m.exists() for m in MARKERS)


FORMER_HANGS = ["alias_bomb.yaml", "huge_repeat.yaml", "deep_nesting.yaml", "huge_groups.yaml"]
_SCRIPT = """
import sys, time
from blockstitch.cli import main
for path in sys.argv[1:]:
    start = time.perf_counter()
    code = main(["check", path])
    print("RESULT", path, code, round(time.perf_counter() - start, 2), flush=True)
"""


def test_former_hangs_answer_within_ten_seconds_in_a_fresh_process() -> None:
    """The files that hung before the limits, in a separate process with a hard timeout (a hang in C code,
    which no alarm interrupts, fails here too)."""
    paths = [str(HOSTILE / name) for name in FORMER_HANGS]
    done = subprocess.run([sys.executable, "-c", _SCRIPT, *paths], capture_output=True, text=True,
                          timeout=SECONDS * len(paths) + 30, env={**os.environ, "COLUMNS": "200"})
    results = [line.split() for line in done.stdout.splitlines() if line.startswith("RESULT")]
    assert [r[1] for r in results] == paths, done.stderr[-2000:]
    for _, path, code, seconds in results:
        assert code == "2" and float(seconds) < SECONDS, f"{path}: exit {code} after {seconds} s"
    assert "Traceback" not in done.stderr and all(Path(p).name in done.stderr for p in paths)


@pytest.mark.parametrize("argv, says", [
    (["check-module", "se", "--arg", "reduction=-1"], "--arg reduction"),
    (["bench", "se", "--input", "3,8,8", "--arg", "reduction=foo", "--budget", "0.01"], "--arg reduction"),
    (["bench", "conv", "--input", "3,8,8", "--arg", "out_channels=100000000"], "more than the limit of 65,536"),
    (["check", "lenet5", "--input", "1,999999,999999"], "is too large"),
    (["profile", "timm:resnet5O"], "did you mean 'resnet50'"),
])
def test_malformed_command_line_arguments_are_one_message(argv: list[str], says: str, capsys) -> None:
    with bounded():
        code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and says in err and "Traceback" not in err and "internal error" not in err, err
