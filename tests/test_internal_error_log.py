"""The internal-error log the suite watches: a bug of ours (simulated) is logged there, a user's mistake is not."""

from __future__ import annotations

from pathlib import Path

from blockstitch import cli


def test_an_internal_error_is_logged_and_a_located_one_is_not(tmp_path: Path, monkeypatch, capsys) -> None:
    log = tmp_path / "internal.log"
    monkeypatch.setenv("BLOCKSTITCH_INTERNAL_ERROR_LOG", str(log))
    assert cli.main(["check", "no_such_network_here"]) == 2  # a located SpecError: not logged
    assert not log.exists()

    def broken(_: object) -> int:
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(cli.check, "run", broken)  # the parser binds run when it is built: build it after
    assert cli.main(["check", "resnet18"]) == 2
    assert "please report it" in capsys.readouterr().err
    assert "ZeroDivisionError: simulated bug" in log.read_text(encoding="utf-8")

