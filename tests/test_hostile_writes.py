"""One safe writer (issue 27): a lock keyed by the resolved path (a second writer waits or is refused), whole
lines only, rows already written intact, and every OS failure as one located line."""

from __future__ import annotations

import errno
import importlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from blockstitch.bench.sweep import SweepSpec, read_results, run_sweep
from blockstitch.cli import main
from blockstitch.errors import SpecError
from blockstitch.output import append_line, locked, os_error, write_file

peaks_module = importlib.import_module("blockstitch.bench.peaks")  # the module (bench re-exports the function)


class _Result:
    def __init__(self, batch: int) -> None:
        self.batch = batch

    def to_dict(self) -> dict[str, object]:
        return {"median_ms": float(self.batch)}


def test_two_concurrent_sweeps_on_one_file_measure_each_configuration_once(tmp_path: Path) -> None:
    """The same results file, spelled two ways (a `./` and a symbolic link): one sweep writes, the other is
    refused (or, started after, finds everything done); every configuration is measured exactly once."""
    spec = SweepSpec(targets=["se"], batch=[1, 2, 3, 4], input=[[8, 4, 4]])
    calls: list[int] = []
    lock = threading.Lock()

    def runner(target: str, shape: object, batch: int, **_: object) -> _Result:
        with lock:
            calls.append(batch)
        time.sleep(0.2)
        return _Result(batch)

    (tmp_path / "link").symlink_to(tmp_path)
    outs = [tmp_path / "." / "r.jsonl", tmp_path / "link" / "r.jsonl"]
    refused: list[str] = []

    def sweep(out: Path) -> None:
        try:
            run_sweep(spec, out, runner=runner)
        except SpecError as err:
            refused.append(str(err))

    threads = [threading.Thread(target=sweep, args=(out,)) for out in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(calls) == [1, 2, 3, 4], f"measured {sorted(calls)}"
    assert all("another sweep" in r for r in refused), refused
    rows = read_results(tmp_path / "r.jsonl")
    assert sorted(r["batch"] for r in rows) == [1, 2, 3, 4]


def test_two_benches_measure_the_peaks_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    measured: list[int] = []

    def fake_measure(device: torch.device, dtype: torch.dtype) -> dict[str, float]:
        measured.append(1)
        time.sleep(0.3)
        return {"flops": 1e9 * len(measured), "bytes_per_s": 1e9}

    monkeypatch.setattr(peaks_module, "_measure", fake_measure)
    got: list[dict[str, float]] = []
    threads = [threading.Thread(target=lambda: got.append(peaks_module.peaks(torch.device("cpu"), torch.float32)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(measured) == 1 and len(got) == 2 and got[0] == got[1]
    other = peaks_module.peaks(torch.device("cpu"), torch.float64)  # a second key: the first is kept
    assert other["flops"] == 2e9 and peaks_module.peaks(torch.device("cpu"), torch.float32) == got[0]


def test_a_second_writer_waits_for_the_lock(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    order: list[str] = []

    def second() -> None:
        write_file(target, "second")
        order.append("second")

    with locked(target):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)
        order.append("first")
    thread.join(10)
    assert order == ["first", "second"] and target.read_text() == "second"
    with locked(target), pytest.raises(SpecError, match="writing this file now"):
        with locked(tmp_path / "." / "x.json", wait_s=0.1):
            pass


def os_failures() -> Iterator[tuple[str, int, str]]:
    """(case, errno, what the line says), one per failure the writer turns into a located line."""
    yield "full disk", errno.ENOSPC, "disk is full (ENOSPC)"
    yield "no permission", errno.EACCES, "permission denied (EACCES)"
    yield "a folder", errno.EISDIR, "it is a folder (EISDIR)"
    yield "a file in the path", errno.ENOTDIR, "not a folder (ENOTDIR)"
    yield "a name too long", errno.ENAMETOOLONG, "name is too long (ENAMETOOLONG)"


@pytest.mark.parametrize("case,code,says", list(os_failures()), ids=[c for c, *_ in os_failures()])
def test_an_os_failure_is_one_located_line_and_rows_stay_intact(case: str, code: int, says: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "r.jsonl"
    append_line(out, '{"target": "a"}')
    before = out.read_bytes()

    def failing_write(fd: int, data: bytes) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "write", failing_write)
    with pytest.raises(SpecError) as caught:
        append_line(out, '{"target": "b"}')
    monkeypatch.undo()
    text = str(caught.value)
    assert says in text and str(out) in text and "\n" not in text
    assert out.read_bytes() == before
    assert str(os_error(OSError(code, "x"), out)) == text


def real_failures(tmp_path: Path) -> Iterator[tuple[str, Path, str]]:
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    yield "a folder", tmp_path / "folder", "EISDIR"
    yield "under a file", tmp_path / "file" / "r.jsonl", "ENOTDIR"
    yield "too long", tmp_path / ("r" * 300), "ENAMETOOLONG"


def test_real_os_failures_are_one_line(tmp_path: Path) -> None:
    for case, path, says in real_failures(tmp_path):
        for write in (lambda p: append_line(p, "{}"), lambda p: write_file(p, "x")):
            with pytest.raises(SpecError, match=says):
                write(path)


def test_sweep_out_or_plots_that_cannot_be_written_exit_2_before_measuring(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("targets: [se]\ninput: [[8, 4, 4]]\nbudget_s: 0.01\n")
    (tmp_path / "file").write_text("x")
    for argv in (["sweep", str(spec), "--no-plots", "--out", str(tmp_path)],
                 ["sweep", str(spec), "--no-plots", "--out", str(tmp_path / "file" / "r.jsonl")],
                 ["sweep", str(spec), "--plots", str(tmp_path / "file"), "--out", str(tmp_path / "r.jsonl")]):
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2 and "please report it" not in err and "Traceback" not in err, (argv, err)
        assert err.strip().startswith("error: "), err


def test_a_sweep_resumed_through_another_spelling_of_its_target_measures_nothing_again(tmp_path: Path,
                                                                                      monkeypatch) -> None:
    """Targets are keyed by the file they resolve to and its content: `net.yaml` from the sweep's folder and
    `../sub/net.yaml` from elsewhere are one target; a changed file is a new one."""
    sub = tmp_path / "sub"
    sub.mkdir()
    net = sub / "net.yaml"
    net.write_text((Path(__file__).parent / "hostile" / "lenet_tiny.yaml").read_text())
    calls: list[str] = []

    def runner(target: str, shape: object, batch: int, **_: object) -> _Result:
        calls.append(target)
        return _Result(batch)

    out = tmp_path / "r.jsonl"
    monkeypatch.chdir(sub)
    run_sweep(SweepSpec(targets=["net.yaml"], batch=[1, 2]), out, runner=runner)
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    run_sweep(SweepSpec(targets=["../sub/net.yaml"], batch=[1, 2]), out, runner=runner)
    assert calls == ["net.yaml", "net.yaml"], calls
    net.write_text(net.read_text().replace("out_features: 2", "out_features: 3"))
    run_sweep(SweepSpec(targets=["../sub/net.yaml"], batch=[1]), out, runner=runner)
    assert calls[2:] == ["../sub/net.yaml"]
