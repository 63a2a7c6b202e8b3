"""The one resolver: every name a spec file, a sweep file or a command holds is looked up here, in registries only.

Files are data. A name read from a file is one of: a registered block kind (built-in, an installed entry point,
or a class from a ``--plugin`` file the user named), a zoo network, a spec file (``.yaml``/``.yml``/``.json``,
relative to the file that names it), ``timm:<model>``, ``torchvision:<model>`` or ``ultralytics:<model>.yaml``
(random weights, nothing is downloaded), ``ultralytics:<path>.pt`` (loaded against an allow-list) or a local
weights file. It never names a module to import or a file to run.

Code enters only by the user's explicit choice: a Python object (a class, a module) passed to the API, a
``--plugin`` file, or ``file.py:Name`` / ``package.module:Name`` typed on the command line, which the CLI
marks as :class:`CommandLine`. The same text from a file or a plain string is refused, with the reason.

Layering: this module sits below the tools (``stitch``, ``profile``, ``check``, ``bench`` import it) and
above ``assemble``; timm and torchvision are imported only when a name needs them.

>>> resolve("resnet50").what
'spec'
>>> resolve("timm:resnet18").what
'timm'
>>> resolve("my_blocks.py:Gate")
Traceback (most recent call last):
SpecError: 'my_blocks.py:Gate' names Python code …
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .assemble.limits import MAX_EXTENDS
from .assemble.source import Loc, Located, load_file
from .assemble.zoo import find_spec
from .errors import RegistryError, SpecError, did_you_mean
from .registry import get_block, import_file

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["CommandLine", "Resolved", "resolve", "is_code_ref", "user_class", "foreign_model", "timm_model",
           "torchvision_model", "weights_file", "SPEC_SUFFIXES", "WEIGHTS_SUFFIXES", "NETWORKS", "TARGETS"]

SPEC_SUFFIXES = (".yaml", ".yml", ".json")
WEIGHTS_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
NETWORKS = frozenset({"spec", "edit", "timm", "torchvision", "ultralytics"})
"""What `extends:` and the network commands accept."""
TARGETS = NETWORKS | {"block"}
"""What `bench` and sweep `targets:` accept (block kinds need an input shape)."""
_PREFIXES = {"timm": "timm", "torchvision": "torchvision", "tv": "torchvision", "ultralytics": "ultralytics"}
_CODE = re.compile(r"^(?P<where>[^:]+):(?P<name>[A-Za-z_][A-Za-z0-9_]*)$")


class CommandLine(str):
    """Text the user typed on the command line: the only string that may name code (``file.py:Name``).

    >>> user_class(CommandLine("my_blocks.py:Gate"))   # imports my_blocks.py, by the user's choice
    """

    __slots__ = ()


@dataclass(frozen=True)
class Resolved:
    """What a name turned out to be.

    ``what`` is ``spec`` / ``edit`` (``located`` holds the file's data), ``timm`` / ``torchvision`` (``name`` is
    the model name), ``block`` (``obj`` is the spec class), ``code`` (``obj`` is the class or factory the user
    named) or ``module`` (``obj`` is the ``nn.Module`` given).
    """

    what: str
    name: str
    located: Located | None = None
    obj: Any = None

    @property
    def file(self) -> str | None:
        """The spec file, for ``spec`` and ``edit``."""
        return self.located.file if self.located is not None else None


def is_code_ref(text: str) -> bool:
    """True for text shaped like ``file.py:Name`` or ``package.module:Name`` (not ``timm:…``)."""
    match = _CODE.match(text)
    return match is not None and match.group("where") not in _PREFIXES


def _fail(message: str, origin: Located | None, loc: Loc, **kw: Any) -> SpecError:
    if origin is not None:
        return origin.error(message, loc, **kw)
    return SpecError(message, **kw)


def user_class(ref: str) -> Callable[..., Any]:
    """Import ``file.py:Name`` or ``package.module:Name`` — only for :class:`CommandLine` text.

    >>> user_class(CommandLine("torch.nn:ReLU"))
    <class 'torch.nn.modules.activation.ReLU'>
    """
    if not isinstance(ref, CommandLine):
        raise SpecError(f"'{ref}' names Python code: only a command-line argument may do that",
                        hint="files and strings are data; pass the class itself, or name it on the command line "
                             "(`blockstitch check-module my_blocks.py:Gate`, `--plugin my_blocks.py`)")
    match = _CODE.match(ref)
    if match is None:
        raise SpecError(f"'{ref}' is not file.py:Name or package.module:Name")
    where, name = match.group("where"), match.group("name")
    if where.endswith(".py") or "/" in where or "\\" in where:
        try:
            module = import_file(where)
        except RegistryError as err:
            raise SpecError(str(err)) from None
    else:
        import importlib

        try:
            module = importlib.import_module(where)
        except ImportError as err:
            raise SpecError(f"cannot import module '{where}': {err}") from None
    if not hasattr(module, name):
        names = [n for n, v in vars(module).items() if isinstance(v, type) and not n.startswith("_")]
        raise SpecError(f"'{where}' has no '{name}'{did_you_mean(name, names)}",
                        expected="one of: " + ", ".join(names[:10]))
    obj = getattr(module, name)
    if not callable(obj):
        raise SpecError(f"'{ref}' is not an nn.Module class or factory")
    return obj  # type: ignore[no-any-return]


def _model_name(prefix: str, name: str, origin: Located | None, loc: Loc) -> str:
    if prefix == "ultralytics":
        from .sources_ultralytics import ultralytics_name

        if name.lower().endswith(".pt") and origin is not None and origin.file is not None:
            sibling = Path(origin.file).parent / name  # a checkpoint named by a spec: relative to that spec
            name = str(sibling) if sibling.is_file() and not Path(name).is_absolute() else name
        try:
            return ultralytics_name(name)
        except SpecError as err:
            raise _fail(err.message, origin, loc, expected=err.expected, hint=err.hint) from None
    if prefix == "timm":
        import timm

        names = timm.list_models()
    else:
        import torchvision

        names = torchvision.models.list_models()
    if name not in names:
        lister = "timm.list_models('*resnet*')" if prefix == "timm" else "torchvision.models.list_models()"
        raise _fail(f"{prefix} has no model '{name}'{did_you_mean(name, names)}", origin, loc,
                    hint=f"`python -c \"import {prefix.split('.')[0]}; print({lister})\"` lists names")
    return name


def _spec_path(text: str, origin: Located | None, loc: Loc) -> Path:
    if origin is not None and origin.file is not None:
        sibling = Path(origin.file).parent / text
        if sibling.is_file():
            text = str(sibling)
    try:
        path = find_spec(text)
    except SpecError as err:
        raise _fail(err.message, origin, loc, expected=err.expected, hint=err.hint) from None
    if path.suffix.lower() not in SPEC_SUFFIXES:
        raise _fail(f"'{text}' is not a spec file (.yaml, .yml or .json)", origin, loc, found=path.suffix or "no suffix")
    return path


def _chain(located: Located) -> None:
    """Follow `extends:` from an edit spec as data only, refusing a cycle or a chain longer than MAX_EXTENDS."""
    seen = [str(Path(located.file).resolve())] if located.file is not None else []
    current = located
    for _ in range(MAX_EXTENDS):
        base = current.data.get("extends")
        if not isinstance(base, str) or base.split(":", 1)[0] in _PREFIXES:
            return
        path = _spec_path(base, current, ("extends",))
        key = str(path.resolve())
        if key in seen:
            names = " → ".join(Path(p).name for p in [*seen, key])
            raise current.error(f"`extends:` makes a cycle: {names}", ("extends",),
                                hint="a network cannot extend itself, directly or through others")
        seen.append(key)
        current = load_file(path)
        if not isinstance(current.data, dict) or "extends" not in current.data:
            return
    raise located.error(f"`extends:` chain longer than {MAX_EXTENDS} files", ("extends",))


def resolve(source: Any, accept: Collection[str] = TARGETS | {"code", "module"}, origin: Located | None = None,
            loc: Loc = ()) -> Resolved:
    """Turn a source into what it names, looking only in registries.

    ``source``: a zoo name, a spec path, a dict, ``timm:<model>``, ``torchvision:<model>``, a block kind, an
    ``nn.Module``, a class (the user's object), or :class:`CommandLine` ``file.py:Name``. ``origin``/``loc``:
    the file and place a name was read from (errors point there; relative paths are relative to that file).
    ``accept``: the kinds of thing the caller can use; anything else is a located error saying what was expected.
    """
    found = _resolve(source, accept, origin, loc)
    if found.what not in accept:
        what = {"spec": "a network spec", "edit": "an edit spec", "timm": "a timm model", "block": "a block kind",
                "torchvision": "a torchvision model", "code": "Python code", "module": "an nn.Module",
                "ultralytics": "an Ultralytics model"}[found.what]
        raise _fail(f"'{found.name}' is {what}, which cannot be used here", origin, loc,
                    expected=", ".join(sorted(accept)))
    return found


def _resolve(source: Any, accept: Collection[str], origin: Located | None, loc: Loc) -> Resolved:
    from torch import nn

    from .sources_ultralytics import unwrap_ultralytics

    if isinstance(source, nn.Module):
        source = unwrap_ultralytics(source)  # a YOLO object: the network it holds
        return Resolved("module", type(source).__name__, obj=source)
    if isinstance(source, dict):  # data from Python (perhaps json.load of a stranger's file): the same limits
        from .assemble.limits import check_plain

        check_plain(source)
        located = Located(source, None, {})
        if "extends" in source:
            _chain(located)
            _edit_limits(located)
            return Resolved("edit", str(source.get("name", "edit")), located)
        return Resolved("spec", str(source.get("name", "spec")), located)
    if isinstance(source, type) or (callable(source) and not isinstance(source, (str, Path))):
        return Resolved("code", getattr(source, "__name__", type(source).__name__), obj=source)
    if not isinstance(source, (str, Path)):
        raise _fail(f"cannot resolve a {type(source).__name__}", origin, loc,
                    expected="a zoo name, a spec path, a dict, timm:<model>, a block kind or an nn.Module")
    text = str(source)
    if not text.strip():
        raise _fail("empty name", origin, loc, expected="a zoo name, a spec path, timm:<model> or a block kind")
    prefix, sep, rest = text.partition(":")
    if sep and prefix in _PREFIXES:
        kind = _PREFIXES[prefix]
        return Resolved(kind, f"{kind}:{_model_name(kind, rest, origin, loc)}")
    if is_code_ref(text):
        if origin is not None or not isinstance(source, CommandLine):
            raise _fail(f"'{text}' names Python code: a file (or a string) can never import code", origin, loc,
                        hint="files are data: use a block kind, a zoo name, a spec file or timm:<model>; code "
                             "enters only as `--plugin FILE.py` or a command-line `file.py:Name`")
        return Resolved("code", text, obj=user_class(source))
    if "block" in accept and Path(text).suffix.lower() not in SPEC_SUFFIXES and "/" not in text:
        networks_too = not {"spec", "edit"}.isdisjoint(accept)
        try:
            cls = get_block(text)
        except RegistryError as err:
            if not networks_too:  # only a block kind (or code) will do: the registry says what is near
                raise _fail(str(err), origin, loc, hint="or name a class: path/to/file.py:Name or package.module:Name"
                            if "code" in accept else None) from None
            cls = None
        if cls is not None and not (networks_too and (Path(text).is_file() or _zoo_has(text))):
            return Resolved("block", text, obj=cls)
    path = _spec_path(text, origin, loc)
    located = load_file(path)
    if "extends" in located.data:
        _chain(located)
        _edit_limits(located)
        return Resolved("edit", str(path), located)
    return Resolved("spec", str(path), located)


def _edit_limits(located: Located) -> None:
    """The blocks an edit inserts obey the same field bounds as a spec's nodes (limits before loops)."""
    from .assemble.limits import check_spec_numbers

    for group in ("insert", "replace"):
        items = located.data.get(group)
        for i, item in enumerate(items if isinstance(items, list) else []):
            block = item.get("block") if isinstance(item, dict) else None
            if isinstance(block, dict):
                try:
                    check_spec_numbers(block, f"{group}[{i}].block")
                except SpecError as err:
                    where = (group, i, "block", (err.found or "").split(".")[0])
                    line, column = located.mark(where)
                    err.found = None
                    raise err.located(file=located.file, line=line, column=column,
                                      path=f"{group}[{i}].block.{where[-1]}") from None


def _zoo_has(name: str) -> bool:
    try:
        find_spec(name)
    except SpecError:
        return False
    return True


def timm_model(name: str, device: torch.device | str | None = None, **kwargs: Any) -> nn.Module:
    """``timm.create_model(name, pretrained=False)``, with a clear error (and the nearest name) for a typo.

    >>> timm_model("resnet50", device="meta").fc.out_features
    1000
    """
    import timm
    import torch

    _model_name("timm", name, None, ())
    with torch.device(device) if device is not None else nullcontext():
        return timm.create_model(name, pretrained=False, **kwargs)


def torchvision_model(name: str, device: torch.device | str | None = None) -> nn.Module:
    """``torchvision.models.get_model(name, weights=None, weights_backbone=None)`` (random weights, nothing
    downloaded — detection and segmentation models' backbones included).

    >>> torchvision_model("resnet18", device="meta").fc.out_features
    1000
    """
    import inspect

    import torch
    import torchvision

    _model_name("torchvision", name, None, ())
    kwargs: dict[str, Any] = {"weights": None}
    # detection/segmentation builders default to ImageNet backbone weights: a download from a data file
    if "weights_backbone" in inspect.signature(torchvision.models.get_model_builder(name)).parameters:
        kwargs["weights_backbone"] = None
    with torch.device(device) if device is not None else nullcontext():
        return torchvision.models.get_model(name, **kwargs)


def foreign_model(source: Any, device: torch.device | str | None = None) -> nn.Module | None:
    """The model for ``timm:<name>`` / ``torchvision:<name>`` / ``ultralytics:<name>`` text (or a :class:`Resolved`
    of those); None for anything else.

    >>> foreign_model("torchvision:resnet18", "meta").__class__.__name__
    'ResNet'
    """
    if isinstance(source, Resolved):
        source = source.name
    if not isinstance(source, str):
        return None
    prefix, sep, rest = source.partition(":")
    if not sep or prefix not in _PREFIXES:
        return None
    if _PREFIXES[prefix] == "ultralytics":
        from .sources_ultralytics import ultralytics_model

        return ultralytics_model(rest, device)
    return (timm_model if _PREFIXES[prefix] == "timm" else torchvision_model)(rest, device)


def weights_file(text: str, origin: Located | None = None, loc: Loc = ("weights",)) -> Path:
    """A local weights file named by a spec (relative to it): `.safetensors`, `.pt`, `.pth` or `.bin`.

    >>> weights_file("resnet18.safetensors", origin)
    PosixPath('specs/resnet18.safetensors')
    """
    path = Path(text)
    if origin is not None and origin.file is not None and not path.is_absolute():
        sibling = Path(origin.file).parent / text
        if sibling.exists():
            path = sibling
    if path.suffix.lower() not in WEIGHTS_SUFFIXES:
        raise _fail(f"'{text}' is not a weights file", origin, loc, expected=", ".join(WEIGHTS_SUFFIXES),
                    hint="weights load through safetensors or torch.load(weights_only=True), nothing else")
    if not path.is_file():
        raise _fail(f"weights file not found: {text}", origin, loc)
    return path
