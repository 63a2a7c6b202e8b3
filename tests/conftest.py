"""Shared fixtures: writing spec files, and the registry as a parameter list."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import blockstitch  # noqa: F401  (registers the built-in blocks)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip @pytest.mark.gpu tests where there is no CUDA device."""
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


