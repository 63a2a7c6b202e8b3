"""The wheel ships the zoo: `blockstitch check <name>` works from an installed wheel, in any directory."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        pytest.skip(f"cannot build a wheel here (no build backend reachable?): {result.stderr[-300:]}")
    return next(out.glob("blockstitch-*.whl"))


def test_wheel_contains_every_spec(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for spec in (ROOT / "specs").glob("*.yaml"):
        assert f"blockstitch/specs/{spec.name}" in names


def test_installed_wheel_checks_zoo_by_name(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, timeout=600)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = ("import blockstitch, sys; from blockstitch.assemble import specs_dir; "
            "assert str(specs_dir()).startswith(sys.argv[1]), specs_dir(); "
            "from blockstitch.cli import main; sys.exit(main(['check', 'googlenet']))")
    result = subprocess.run([sys.executable, "-c", code, str(target)], cwd=elsewhere, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "6,624,904" in result.stdout
