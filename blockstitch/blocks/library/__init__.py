"""The verified plug-and-play library: modules from papers, one family per file, each block with its card.

Every file in this package is imported (and so registers its blocks) when :mod:`blockstitch.blocks` is;
adding a family touches only its own file.
"""

from __future__ import annotations

import importlib
import pkgutil

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
