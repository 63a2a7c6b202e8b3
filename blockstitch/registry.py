"""The block registry: kind → spec class (which builds its own module).

Register a block with the :func:`register_block` decorator. Third-party blocks arrive the same way, from a
file named on the command line (``--plugin my_blocks.py``, see :func:`load_plugin_file`) or from an installed
package's ``blockstitch.blocks`` entry point (see :func:`load_entry_points`); then they appear in the JSON
Schema, ``blockstitch blocks`` and every test parametrized over the registry.
"""

from __future__ import annotations

import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Annotated, TypeVar, get_args

from pydantic import BeforeValidator, SerializeAsAny

from .blockspec import BlockSpec
from .errors import RegistryError, did_you_mean

__all__ = ["register_block", "get_block", "block_kinds", "block_classes", "load_plugin_file", "load_entry_points", "import_file",
           "SubBlock", "validate_sub_block"]

_REGISTRY: dict[str, type[BlockSpec]] = {}
T = TypeVar("T", bound=type[BlockSpec])


def _kind_of(cls: type[BlockSpec]) -> str:
    # Read the default, not the annotation: under `from __future__ import annotations` that is a string.
    field = cls.model_fields.get("kind")
    kind = field.default if field is not None else None
    args = get_args(field.annotation) if field is not None else ()
    if not isinstance(kind, str) or not kind or kind == "kind" or (args and args != (kind,)):
        raise RegistryError(f"{cls.__name__} must declare `kind: Literal['name'] = 'name'` to be registered")
    return kind


def register_block(cls: T | None = None, *, replace: bool = False):  # type: ignore[no-untyped-def]
    """Class decorator: register a :class:`BlockSpec` subclass under its ``kind``.

    >>> @register_block
    ... class MyBlock(BlockSpec):
    ...     kind: Literal["my_block"] = "my_block"
    """

    def wrap(spec_cls: T) -> T:
        if not (isinstance(spec_cls, type) and issubclass(spec_cls, BlockSpec)):
            raise RegistryError(f"register_block expects a BlockSpec subclass, got {spec_cls!r}")
        kind = _kind_of(spec_cls)
        old = _REGISTRY.get(kind)
        if old is not None and old is not spec_cls and not replace:
            same = old.__module__ == spec_cls.__module__ and old.__qualname__ == spec_cls.__qualname__
            if not same:  # re-importing the same file is fine; two different blocks of one name is not
                raise RegistryError(
                    f"block kind '{kind}' is already registered by {old.__module__}.{old.__qualname__}; "
                    "pick another kind or pass replace=True"
                )
        _REGISTRY[kind] = spec_cls
        return spec_cls

    return wrap(cls) if cls is not None else wrap


def get_block(kind: str) -> type[BlockSpec]:
    """The spec class registered for ``kind``; :class:`RegistryError` names the nearest kind otherwise."""
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise RegistryError(f"unknown block kind '{kind}'{did_you_mean(kind, _REGISTRY)}") from None


def block_kinds() -> list[str]:
    """Every registered kind, sorted."""
    return sorted(_REGISTRY)


def block_classes() -> list[type[BlockSpec]]:
    """Every registered spec class, sorted by kind."""
    return [_REGISTRY[k] for k in block_kinds()]


def import_file(path: str | Path) -> ModuleType:
    """Import a Python file the user named explicitly (once per path) and return the module."""
    file = Path(path).resolve()
    if not file.is_file():
        raise RegistryError(f"file not found: {path}")
    name = f"blockstitch_user_{file.stem}_{abs(hash(str(file))) & 0xFFFFFF:x}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise RegistryError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_plugin_file(path: str | Path) -> list[str]:
    """Import a Python file of the user's own blocks (it registers them with :func:`register_block`); every
    plain ``nn.Module`` class defined in it becomes a kind too, under its class name (`kind: PaperModule`),
    unless that kind is taken. Returns the kinds the file added.

    This is the only way code enters through the CLI (``--plugin``): the user names the file explicitly.
    """
    from torch import nn

    from .foreign import module_block

    before = set(_REGISTRY)
    module = import_file(path)
    for value in list(vars(module).values()):
        if (isinstance(value, type) and issubclass(value, nn.Module) and value.__module__ == module.__name__
                and value.__name__ not in _REGISTRY):
            register_block(module_block(value))
    return sorted(set(_REGISTRY) - before)


def load_entry_points() -> list[str]:
    """Import every installed ``blockstitch.blocks`` entry point; returns their names."""
    loaded = []
    for ep in entry_points(group="blockstitch.blocks"):
        ep.load()
        loaded.append(ep.name)
    return loaded


def validate_sub_block(value: object) -> BlockSpec:
    """Turn ``{"kind": "se", ...}`` (or a spec instance) into the registered spec; used for nested slots."""
    from pydantic import ValidationError

    if isinstance(value, BlockSpec):
        return value
    if not isinstance(value, dict) or "kind" not in value:
        raise ValueError("expected a block mapping with a 'kind', e.g. {kind: se}")
    try:
        cls = get_block(str(value["kind"]))
    except RegistryError as err:
        raise ValueError(str(err)) from None
    try:
        return cls.model_validate(value)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{where}: {first['msg']}" if where else first["msg"]) from None


SubBlock = Annotated[SerializeAsAny[BlockSpec], BeforeValidator(validate_sub_block)]
"""A field type holding another registered block (e.g. the attention slot of a residual block)."""
