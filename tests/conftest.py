"""Shared fixtures: writing spec files, and the registry as a parameter list."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")  # Ultralytics models are test subjects: never reach for the network
os.environ.setdefault("YOLO_VERBOSE", "False")
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="blockstitch-tests-ultralytics-"))  # not ~/.config
# every "internal error … please report it" the CLI prints (in this process or a subprocess) is logged here, and the
# test during which it happened fails (see `no_internal_error` below)
INTERNAL_ERRORS = Path(tempfile.mkdtemp(prefix="blockstitch-tests-internal-")) / "internal-errors.log"
os.environ["BLOCKSTITCH_INTERNAL_ERROR_LOG"] = str(INTERNAL_ERRORS)

import pytest  # noqa: E402
import torch  # noqa: E402

import blockstitch  # noqa: F401, E402  (the package; built-in blocks register when first asked for)


def cuda_in_a_child() -> bool:
    """Whether there is a CUDA device, asked in a forked child: ``torch.cuda.is_available()`` asked here would
    poison every later fork (check-module's workers could not use CUDA for the rest of the session)."""
    if not hasattr(os, "fork"):
        return torch.cuda.is_available()
    pid = os.fork()
    if pid == 0:  # pragma: no cover — the child
        os._exit(0 if torch.cuda.is_available() else 1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip @pytest.mark.gpu tests where there is no CUDA device, and @pytest.mark.slow ones (full-size
    reference networks) unless BLOCKSTITCH_SLOW=1."""
    if not os.environ.get("BLOCKSTITCH_SLOW"):
        slow = pytest.mark.skip(reason="full-size reference forward; set BLOCKSTITCH_SLOW=1 to run")
        for item in items:
            if "slow" in item.keywords:
                item.add_marker(slow)
    if cuda_in_a_child():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def no_internal_error():
    """No test may see the CLI answer "internal error … please report it": every failure a user can cause is a
    located message."""
    before = INTERNAL_ERRORS.stat().st_size if INTERNAL_ERRORS.exists() else 0
    yield
    if INTERNAL_ERRORS.exists() and INTERNAL_ERRORS.stat().st_size > before:
        with INTERNAL_ERRORS.open(encoding="utf-8") as log:
            log.seek(before)
            pytest.fail("the CLI reported an internal error: " + log.read().strip()[:2000])


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write YAML text to a spec file and return its path."""

    def write(text: str, name: str = "net.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write




@pytest.fixture(scope="module")
def one_thread():
    """Small real runs on one thread (OpenMP spinning on a shared 2-core machine costs more than it gains); a module
    asks for it with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
