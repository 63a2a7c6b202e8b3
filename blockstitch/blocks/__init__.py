"""Built-in blocks, one family per file (the verified library in :mod:`blockstitch.blocks.library`).

Importing this package imports no family: the registry imports a family when one of its kinds is first asked
for (through the generated ``index.json``), and :func:`load_all` imports every file here, the library
included, so a new family file needs no line anywhere else.

Each family file holds its pydantic spec(s) and module(s) side by side. Factories for norms and
activations live in :mod:`blockstitch.blocks.layers`; shape/MAC arithmetic in :mod:`blockstitch.blocks.ops`.
"""

import importlib
import pkgutil

from .layers import get_act, get_norm

__all__ = ["get_act", "get_norm", "load_all"]


def load_all() -> list[str]:
    """Import every module of this package and its subpackages (registering every built-in block); returns their
    names. Prefer :func:`blockstitch.registry.get_block`, which imports only the family it needs.

    >>> "blockstitch.blocks.conv" in load_all()
    True
    """
    names = [info.name for info in pkgutil.walk_packages(__path__, prefix=f"{__name__}.")]
    for name in names:
        importlib.import_module(name)
    return names
