"""Where a tool writes: an output path checked before any work is done, so a long export or drawing never ends
in "cannot write here".

>>> writable(Path("/no/such/dir/model.onnx"))
Traceback (most recent call last):
blockstitch.errors.SpecError: /no/such/dir/model.onnx: cannot write here: the folder /no/such/dir does not exist

Layering: the ground floor (it needs only :mod:`blockstitch.errors`); export, graph and the CLI share it.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import SpecError

__all__ = ["writable"]


def writable(path: Path, error: type[SpecError] = SpecError) -> Path:
    """``path`` itself if a file can be written there; else ``error`` (a :class:`SpecError` kind) saying why.

    >>> writable(Path("diagram.svg"))
    PosixPath('diagram.svg')
    """
    parent = path.parent
    if path.is_dir():
        raise error(f"{path}: cannot write here: it is a folder", hint="name a file, e.g. model.onnx")
    if not parent.is_dir():
        raise error(f"{path}: cannot write here: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise error(f"{path}: cannot write here: permission denied")
    return path
