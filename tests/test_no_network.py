"""No network, ever, from any source: every source kind and every zoo spec is resolved and built (on meta
tensors) with sockets disabled and empty weight caches; nothing may connect and nothing may be downloaded.

The guard records every attempt before refusing it, so a library that swallows the error (and carries on
with random weights) still fails the test.
"""

from __future__ import annotations

import inspect
import socket
from pathlib import Path

import pytest

from blockstitch import sources
from blockstitch.assemble.zoo import zoo_names
from blockstitch.sources import CommandLine
from blockstitch.subject import subject

HOSTILE = Path(__file__).parent / "hostile"

try:  # Ultralytics writes its settings.json when first imported: let that happen before a guard watches the folder
    import ultralytics  # noqa: F401
except ImportError:
    pass


class Offline:
    """Socket connections recorded and refused; caches pointed at empty folders that must stay empty."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
        self.attempts: list[object] = []
        self.home = home
        for var in ("TORCH_HOME", "HF_HOME", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME", "YOLO_CONFIG_DIR"):
            (home / var).mkdir(parents=True)
            monkeypatch.setenv(var, str(home / var))

        def refuse(*args: object, **kwargs: object) -> None:
            self.attempts.append(args[1] if len(args) > 1 else args[:1])
            raise OSError("network disabled by the test")

        monkeypatch.setattr(socket.socket, "connect", refuse)
        monkeypatch.setattr(socket.socket, "connect_ex", refuse)
        monkeypatch.setattr(socket, "create_connection", lambda *a, **k: refuse(None, a[:1]))

    def assert_clean(self, what: str) -> None:
        assert not self.attempts, f"{what}: tried to connect to {self.attempts}"
        written = [p for p in self.home.rglob("*") if p.is_file()]
        assert not written, f"{what}: downloaded {written}"


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Offline:
    return Offline(monkeypatch, tmp_path / "home")


def _torchvision_with_backbones() -> list[str]:
    """The torchvision builders that take ``weights_backbone`` (detection, segmentation): the ones that used to
    download an ImageNet backbone."""
    from torchvision.models import get_model_builder, list_models

    return [n for n in list_models() if "weights_backbone" in inspect.signature(get_model_builder(n)).parameters]


def test_the_guard_sees_a_download(offline: Offline) -> None:
    """The guard itself: a connection attempt is recorded even when the caller swallows the error."""
    import urllib.request

    with pytest.raises(OSError):
        urllib.request.urlopen("http://127.0.0.1:9/x", timeout=1)
    assert offline.attempts


def test_every_torchvision_model_with_a_backbone_builds_offline(offline: Offline) -> None:
    names = _torchvision_with_backbones()
    assert len(names) >= 15, names  # deeplabv3, fcn, lraspp, the R-CNNs, retinanet, fcos, ssd, ssdlite
    for name in names:
        subject(f"torchvision:{name}").module("meta")
        offline.assert_clean(f"torchvision:{name}")
    subject(f"tv:{names[0]}").module("meta")  # the short prefix takes the same path
    offline.assert_clean(f"tv:{names[0]}")


def test_every_zoo_spec_builds_offline(offline: Offline) -> None:
    names = zoo_names()
    assert names
    for name in names:
        subject(name).module("meta")
        offline.assert_clean(name)


def _every_source_kind(tmp_path: Path) -> dict[str, object]:
    import torch

    spec = HOSTILE / "lenet_tiny.yaml"
    edit = tmp_path / "edit.yaml"
    edit.write_text("name: e\nextends: resnet18\ninsert:\n  - after: layer1.0\n    block: {kind: se}\n")
    plugin = tmp_path / "user_model.py"
    plugin.write_text("import torch\n\nclass Net(torch.nn.Sequential):\n"
                      "    def __init__(self):\n        super().__init__(torch.nn.Conv2d(3, 4, 3))\n")
    kinds: dict[str, object] = {
        "zoo name": "resnet18",
        "spec path": str(spec),
        "dict": {"name": "d", "input": [3, 8, 8], "nodes": [{"kind": "conv", "out_channels": 4}]},
        "edit spec": str(edit),
        "edit dict": {"name": "e", "extends": "timm:resnet18",
                      "insert": [{"after": "layer1.0", "block": {"kind": "se"}}]},
        "timm": "timm:resnet18",
        "torchvision": "torchvision:resnet18",
        "nn.Module": torch.nn.Conv2d(3, 4, 3),
        "class": torch.nn.ReLU,
        "command line": CommandLine(f"{plugin}:Net"),
        "block kind": "se",
    }
    for prefix in sorted(set(sources._PREFIXES) - {"timm", "torchvision", "tv"}):  # ultralytics:, when installed
        kinds[prefix] = f"{prefix}:yolov8n.yaml"
    return kinds


def test_every_source_kind_resolves_and_builds_offline(offline: Offline, tmp_path: Path) -> None:
    for what, source in _every_source_kind(tmp_path).items():
        found = subject(source)
        if found.is_network or found.what == "code":
            found.module("meta")
        offline.assert_clean(what)
