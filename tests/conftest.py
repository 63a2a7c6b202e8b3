"""Shared fixtures: writing spec files, and the registry as a parameter list."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")  # Ultralytics models are test subjects: never reach for the network
os.environ.setdefault("YOLO_VERBOSE", "False")
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="blockstitch-tests-ultralytics-"))  # not ~/.config

import pytest  # noqa: E402
import torch  # noqa: E402

import blockstitch  # noqa: F401  (the package; built-in blocks register when first asked for)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip @pytest.mark.gpu tests where there is no CUDA device, and @pytest.mark.slow ones (full-size
    reference networks) unless BLOCKSTITCH_SLOW=1."""
    if not os.environ.get("BLOCKSTITCH_SLOW"):
        slow = pytest.mark.skip(reason="full-size reference forward; set BLOCKSTITCH_SLOW=1 to run")
        for item in items:
            if "slow" in item.keywords:
                item.add_marker(slow)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write YAML text to a spec file and return its path."""

    def write(text: str, name: str = "net.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


