"""``ultralytics:<name>`` for the one resolver: a model YAML Ultralytics ships (random weights) or a local ``.pt``.

``ultralytics:yolov8n.yaml`` and ``ultralytics:yolo11s.yaml`` build the network Ultralytics' own YAML describes,
with random weights; nothing is downloaded and no YAML of a stranger is read (Ultralytics' ``parse_model``
evaluates text from the file, so only the files inside the installed ``ultralytics`` package are names).
``ultralytics:runs/detect/train/weights/best.pt`` loads a local checkpoint with ``torch.load(weights_only=True)``
and an allow-list: the ``nn.Module`` classes of torch, Ultralytics and ``timm.layers`` (what blockstitch's
blocks are made of) and blockstitch's own classes; a checkpoint
that needs any other class (a paper module pickled along) is refused with the names — load such a file in Python
(``YOLO("best.pt")``, your explicit choice to run its pickle) and pass the object.

>>> ultralytics_model("yolov8n.yaml", device="meta").__class__.__name__
'DetectionModel'
>>> ultralytics_model("yolov8q.yaml")
Traceback (most recent call last):
SpecError: Ultralytics ships no model 'yolov8q.yaml' — did you mean 'yolov8n.yaml'? …

Layering: the resolver's floor (beside :mod:`blockstitch.sources`); ultralytics is imported only here, on use.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import SpecError, did_you_mean

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "load_checkpoint_safely",
    "require_ultralytics",
    "ultralytics_model",
    "ultralytics_name",
    "unwrap_ultralytics",
]

_SCALED = re.compile(r"(\d+)([nslmx])(.+)?$")  # Ultralytics' own rule: yolov8n.yaml is yolov8.yaml at scale n
_SCALES = "nslmx"


def require_ultralytics() -> Any:
    """The ``ultralytics`` package, or a one-line error saying how to install it."""
    try:
        import ultralytics
    except ImportError:
        raise SpecError("ultralytics is not installed: `pip install ultralytics` (or blockstitch[yolo])") from None
    return ultralytics


@cache
def _shipped() -> dict[str, Path]:
    """Every model YAML inside the installed ultralytics package, by file name."""
    root = Path(require_ultralytics().__file__).parent / "cfg" / "models"
    return {p.name: p for p in sorted(root.rglob("*.y*ml"))}


def _names() -> list[str]:
    """The names a user may write: each shipped YAML, and its scaled forms where the YAML has ``scales:``."""
    names = []
    for name, path in _shipped().items():
        names.append(name)
        stem, suffix = name.rsplit(".", 1)
        match = re.match(r"^(.*?\d+)(.*)$", stem)
        if match and "scales:" in path.read_text(encoding="utf-8"):
            names += [f"{match.group(1)}{s}{match.group(2)}.{suffix}" for s in _SCALES]
    return names


def ultralytics_name(name: str) -> str:
    """Check ``name`` (what follows ``ultralytics:``): a shipped model YAML or a local ``.pt``; a located-ready
    :class:`SpecError` with the nearest name otherwise.

    >>> ultralytics_name("yolo11s.yaml")
    'yolo11s.yaml'
    """
    if name.lower().endswith(".pt"):
        if not Path(name).is_file():
            raise SpecError(f"Ultralytics checkpoint not found: {name}", expected="a local .pt file",
                            hint="nothing is downloaded: give the path of a checkpoint you have")
        return name
    if not name.lower().endswith((".yaml", ".yml")):
        raise SpecError(f"'ultralytics:{name}' is neither a model YAML nor a .pt checkpoint",
                        expected="ultralytics:yolov8n.yaml, ultralytics:yolo11s.yaml or ultralytics:path/best.pt")
    shipped = _shipped()
    unified = _SCALED.sub(r"\1\3", name)
    if "/" in name or "\\" in name or (name not in shipped and unified not in shipped):
        raise SpecError(f"Ultralytics ships no model '{name}'{did_you_mean(name, _names())}",
                        expected="a model YAML inside the ultralytics package, e.g. yolov8n.yaml, yolo11s.yaml",
                        hint="YAML files are read from the installed package only: Ultralytics' parser evaluates "
                             "text from the file, so a YAML of your own enters as a model built in Python")
    return name


def ultralytics_model(name: str, device: torch.device | str | None = None) -> nn.Module:
    """The Ultralytics network ``name`` names (see :func:`ultralytics_name`), on ``device`` (``"meta"``: built
    on the CPU, then moved, since Ultralytics measures its strides with a real forward).

    >>> ultralytics_model("yolo11n.yaml").yaml["scale"]
    'n'
    """
    require_ultralytics()
    ultralytics_name(name)
    if name.lower().endswith(".pt"):
        model = load_checkpoint_safely(name)
    else:
        model = _from_yaml(name)
    model.eval()
    if device is None:
        return model
    import torch
    from torch import nn

    # nn.Module's own _apply, not Ultralytics' override: that one also moves the strides and anchors the head
    # keeps as plain tensors, and a head whose strides are meta tensors cannot make its anchors
    return nn.Module._apply(model, lambda t: t.to(torch.device(device)))  # type: ignore[no-any-return]


def _from_yaml(name: str) -> nn.Module:
    import torch
    from ultralytics.nn import tasks

    classes = {"detect": tasks.DetectionModel, "segment": tasks.SegmentationModel, "pose": tasks.PoseModel,
               "obb": tasks.OBBModel, "classify": tasks.ClassificationModel}
    cfg = tasks.yaml_model_load(name)  # found inside the package (checked above): nothing downloaded
    task = tasks.guess_model_task(cfg)
    if task not in classes:
        raise SpecError(f"'ultralytics:{name}' is a {task} model, which blockstitch does not build",
                        expected=", ".join(classes))
    with torch.device("cpu"):  # its stride probe and bias init need real numbers, whatever the caller's default
        model = classes[task](cfg, verbose=False)
    model.task = task
    return model


_MODULE_HOMES = ("torch.nn.", "ultralytics.nn.", "timm.layers.")
"""Where an allowed ``nn.Module`` class may come from (besides blockstitch's own classes)."""


def _allowed_classes(names: list[str]) -> tuple[list[Any], list[str]]:
    """Split the globals a checkpoint needs into allowed classes and the rest: ``nn.Module`` classes of torch,
    Ultralytics' networks and ``timm.layers`` (what blockstitch's blocks are made of), and any class blockstitch
    defines (blocks, stitch hooks). Nothing else is imported to find out: a name outside those homes is refused
    as it is."""
    import importlib

    from torch import nn

    allowed, refused = [], []
    for name in names:
        module, _, attr = name.rpartition(".")
        ours = module == "blockstitch" or module.startswith("blockstitch.")
        obj = None
        if ours or module.startswith(_MODULE_HOMES):
            try:
                obj = getattr(importlib.import_module(module), attr, None)
            except ImportError:
                obj = None
        if isinstance(obj, type) and obj.__module__ == module and (ours or issubclass(obj, nn.Module)):
            allowed.append(obj)
        else:
            refused.append(name)
    return allowed, refused


def load_checkpoint_safely(path: str | Path) -> nn.Module:
    """The model in an Ultralytics checkpoint (its EMA, else its model, in float32), unpickled with
    ``weights_only=True`` against an allow-list: ``nn.Module`` classes of torch, Ultralytics and ``timm.layers``
    and blockstitch's own classes. Anything else in the file is refused with its names (pickle runs code; a
    file is data).

    >>> load_checkpoint_safely("runs/detect/train/weights/best.pt").task
    'detect'
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise SpecError(f"Ultralytics checkpoint not found: {path}")
    try:
        needed = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except (ValueError, RuntimeError) as err:
        raise SpecError(f"{path} is not a torch checkpoint: {err}") from None
    allowed, refused = _allowed_classes(needed)
    if refused:
        raise SpecError(f"{path} needs classes outside the allow-list: {', '.join(refused[:6])}"
                        f"{' …' if len(refused) > 6 else ''}",
                        expected="nn.Module classes of torch, Ultralytics, timm.layers and blockstitch only "
                                 "(a file cannot run code)",
                        hint="load it in Python, where running its pickle is your choice: "
                             "bs.to_ultralytics(YOLO('best.pt')) or subject(YOLO('best.pt').model)")
    try:
        with torch.serialization.safe_globals(allowed):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 — whatever the unpickler refuses, the user gets one located line
        raise SpecError(f"{path} could not be loaded safely: {str(err).splitlines()[0][:200]}") from None
    model = ckpt.get("ema") or ckpt.get("model") if isinstance(ckpt, dict) else None
    if model is None or not hasattr(model, "float"):
        keys = ", ".join(sorted(ckpt)[:8]) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise SpecError(f"{path} holds no model (found: {keys})")
    from ultralytics.nn.tasks import guess_model_task

    model = model.float()
    model.task = getattr(model, "task", None) or guess_model_task(model)
    return model  # type: ignore[no-any-return]


def unwrap_ultralytics(obj: Any) -> Any:
    """An Ultralytics ``YOLO`` (any ``ultralytics.engine.model.Model``) → the network it holds (``.model``);
    anything else as it is. Duck-typed: ultralytics is not imported.

    >>> unwrap_ultralytics(YOLO("yolov8n.yaml")).__class__.__name__
    'DetectionModel'
    """
    is_wrapper = any(c.__module__ == "ultralytics.engine.model" and c.__name__ == "Model" for c in type(obj).__mro__)
    inner = None
    if is_wrapper:  # a network is registered as a submodule; an exported or remote model is a path in __dict__
        inner = obj._modules["model"] if obj._modules.get("model") is not None else obj.__dict__.get("model")
    if is_wrapper and inner is not None and not isinstance(inner, (str, Path)):
        return inner
    if is_wrapper:
        raise SpecError(f"this {type(obj).__name__} holds no PyTorch network (an exported or remote model: "
                        f"{inner!r})", hint="stitch the .pt model, then export the stitched one")
    return obj
