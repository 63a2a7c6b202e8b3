"""Limits before loops: every size a file can state is bounded here, before anything iterates or allocates.

A spec or sweep file comes from a stranger. These bounds turn a hostile or mistyped file (a YAML alias bomb,
``repeat: 1e9``, ``groups: 2**40``, a 10 000-deep nesting) into a located :class:`SpecError` within a second.
SECURITY.md states these numbers; a test checks that it matches the constants below.

>>> check_plain({"nodes": [{"kind": "conv", "out_channels": 64}]}, "net.yaml")
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from typing import Any

from ..errors import SpecError, path_text

__all__ = ["MAX_FILE_BYTES", "MAX_ALIASES", "MAX_VALUES", "MAX_DEPTH", "MAX_STRING", "MAX_INT", "MAX_FLOAT",
           "MAX_NODES", "MAX_REPEAT", "MAX_CHANNELS", "MAX_KERNEL", "MAX_HEADS", "MAX_INPUT_DIM",
           "MAX_INPUT_ELEMENTS", "MAX_MULTIPLIER", "MAX_EXTENDS", "MEMORY_FRACTION", "check_plain", "field_limit",
           "check_spec_numbers", "available_memory", "check_fits", "path_text", "check_input_shape", "check_batch"]

MAX_FILE_BYTES = 4 * 1024 * 1024
"""A spec or sweep file is at most 4 MiB."""
MAX_ALIASES = 100
"""YAML alias uses (``*name``) per file."""
MAX_VALUES = 200_000
"""Values (scalars, lists, mappings) in a file after alias expansion."""
MAX_DEPTH = 32
"""Nesting depth of lists and mappings."""
MAX_STRING = 10_000
"""Characters in one string (a description included)."""
MAX_INT = 2**31 - 1
"""Magnitude of any integer in a file."""
MAX_FLOAT = 1e12
"""Magnitude of any real number in a file (NaN and infinities are refused)."""
MAX_NODES = 2_000
"""Nodes of a network after `repeat` and `depth` expansion."""
MAX_REPEAT = 1_000
"""One node's `repeat` (after the `depth` multiplier)."""
MAX_CHANNELS = 65_536
"""Channel-like fields (channels, features, dims, groups, hidden sizes), after the `width` multiplier."""
MAX_KERNEL = 1_024
"""Kernel, window, patch and pool sizes."""
MAX_HEADS = 1_024
"""Attention heads."""
MAX_INPUT_DIM = 65_536
"""Each input size (channels, height, width, tokens)."""
MAX_INPUT_ELEMENTS = 2**28
"""Elements of one input sample (C·H·W)."""
MAX_MULTIPLIER = 64.0
"""The `width` and `depth` multipliers."""
MAX_EXTENDS = 8
"""Length of an `extends:` chain."""
MEMORY_FRACTION = 0.9
"""A real build must fit in this fraction of the free memory (RAM, or the GPU's for `bench`)."""


def check_plain(data: Any, file: str | None = None, marks: Callable[[tuple[Any, ...]], tuple[int | None, int | None]]
                | None = None) -> None:
    """Refuse data a spec file cannot hold: too deep, too many values, over-long strings, non-finite or huge
    numbers, types other than mappings, lists, strings, numbers, booleans and null. Iterative: no recursion.
    """
    count = 0
    stack: list[tuple[Any, tuple[Any, ...], int]] = [(data, (), 0)]
    while stack:
        value, loc, depth = stack.pop()
        count += 1
        problem = None
        if count > MAX_VALUES:
            problem = f"more than {MAX_VALUES:,} values (after alias expansion)"
        elif depth > MAX_DEPTH:
            problem = f"nested deeper than {MAX_DEPTH} levels"
        elif isinstance(value, str):
            problem = _string_problem(value)
        elif isinstance(value, bool) or value is None:
            pass
        elif isinstance(value, int):
            if abs(value) > MAX_INT:
                problem = f"the number {value:,} is out of range (|n| ≤ {MAX_INT:,})"
        elif isinstance(value, float):
            if not math.isfinite(value) or abs(value) > MAX_FLOAT:
                problem = f"the number {value!r} is not finite or out of range (|x| ≤ {MAX_FLOAT:.0e})"
        elif isinstance(value, dict):
            problem = next((f"a key: {p}" for p in map(_string_problem, map(str, value)) if p), None)
            stack.extend((v, (*loc, str(k)), depth + 1) for k, v in value.items())
            stack.extend((str(k), loc, depth + 1) for k in value if not isinstance(k, str))
        elif isinstance(value, (list, tuple)):
            stack.extend((v, (*loc, i), depth + 1) for i, v in enumerate(value))
        else:
            problem = f"a value of type {type(value).__name__} (files hold plain data only)"
        if problem is not None:

            line, column = marks(loc) if marks is not None else (None, None)
            raise SpecError(problem, file=file, line=line, column=column, path=path_text(loc),
                            hint="spec files are small plain data; see SECURITY.md for the limits")


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]")
"""Characters no string in a file may hold, even written as an escape ("\\e[31m", "\\u0000", a lone surrogate):
they would reach a terminal or a log raw (and a lone surrogate cannot even be printed)."""


def _string_problem(value: str) -> str | None:
    if len(value) > MAX_STRING:
        return f"a string of {len(value):,} characters (at most {MAX_STRING:,})"
    bad = _CONTROL.search(value)
    if bad is not None:
        return f"a string holds the control character U+{ord(bad.group()):04X} (written as an escape?)"
    return None


_LIMITS = (("channel", MAX_CHANNELS), ("proj", MAX_CHANNELS), ("features", MAX_CHANNELS),
           ("groups", MAX_CHANNELS), ("dim", MAX_CHANNELS), ("hidden", MAX_CHANNELS), ("width", MAX_CHANNELS),
           ("kernel", MAX_KERNEL), ("window", MAX_KERNEL), ("patch", MAX_KERNEL), ("pool", MAX_KERNEL),
           ("size", MAX_INPUT_DIM), ("heads", MAX_HEADS), ("repeat", MAX_REPEAT), ("depth", MAX_REPEAT),
           ("convs", MAX_REPEAT), ("levels", MAX_REPEAT), ("layers", MAX_REPEAT), ("blocks", MAX_REPEAT),
           ("classes", MAX_CHANNELS), ("ch", MAX_CHANNELS))
"""Field-name parts and their bounds, first match wins; any other integer field is bounded by MAX_INPUT_DIM."""


def field_limit(name: str) -> int:
    """The bound of a block field, by its name: ``out_channels`` → :data:`MAX_CHANNELS`, ``kernel_size`` →
    :data:`MAX_KERNEL`, ``heads`` → :data:`MAX_HEADS`; any other integer → :data:`MAX_INPUT_DIM`.

    >>> field_limit("kernel_size") == MAX_KERNEL
    True
    """
    lowered = name.lower()
    for part, bound in _LIMITS:
        if part in lowered:
            return bound
    return MAX_INPUT_DIM


def check_spec_numbers(fields: dict[str, Any], what: str) -> None:
    """Every integer of a validated block (nested blocks and lists included) within its field's bound; raises
    :class:`SpecError` whose ``found`` is the field's dotted name (the caller adds the location)."""
    stack: list[tuple[str, Any]] = list(fields.items())
    while stack:
        name, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{name}.{k}", v) for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((name, v) for v in value)
        elif isinstance(value, int) and not isinstance(value, bool):
            bound = field_limit(name.rsplit(".", 1)[-1])
            if abs(value) > bound:
                raise SpecError(f"{what}: '{name}' is {value:,}, more than the limit of {bound:,}",
                                found=name, hint="limits before loops: see SECURITY.md")
        elif isinstance(value, float) and not math.isfinite(value):
            raise SpecError(f"{what}: '{name}' is {value}, not a finite number", found=name)


def available_memory(device: str = "cpu") -> int | None:
    """Free bytes on ``device``: RAM (``MemAvailable``) or a CUDA device's free memory; None if unknown."""
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            return None
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(param_bytes: int, activation_bytes: int, device: str, what: str, file: str | None = None) -> None:
    """Refuse a real build whose estimate (parameters + activations) exceeds :data:`MEMORY_FRACTION` of the
    free memory on ``device``, with the figures.

    >>> check_fits(10**6, 10**6, "cpu", "tiny")
    """
    free = available_memory(device)
    need = int(param_bytes) + int(activation_bytes)
    if free is None or need <= MEMORY_FRACTION * free:
        return
    gib = 1024**3
    raise SpecError(f"{what} would need about {need / gib:.2f} GiB ({param_bytes / gib:.2f} GiB parameters + "
                    f"{activation_bytes / gib:.2f} GiB activations) but {device} has {free / gib:.2f} GiB free",
                    file=file, hint="use a smaller input, batch or width; `blockstitch check` plans it on meta tensors")


def check_input_shape(shape: Any, what: str = "input_shape", file: str | None = None,
                      where: tuple[int | None, int | None] = (None, None)) -> tuple[int, ...]:
    """An input shape without the batch, checked like a spec's ``input:``: positive integers, each at most
    :data:`MAX_INPUT_DIM`, at most :data:`MAX_INPUT_ELEMENTS` in all. A :class:`SpecError` (a ``ValueError``)
    names the argument (``what``) otherwise.

    >>> check_input_shape([3, 64, 64])
    (3, 64, 64)
    >>> check_input_shape((3, -1, 8))
    Traceback (most recent call last):
    SpecError: input_shape: every size must be a positive integer of at most 65,536 …
    """
    line, column = where
    try:
        sizes = tuple(shape)
    except TypeError:
        sizes = ()
    problem = None
    if not sizes:
        problem = "must be a non-empty list of sizes (without the batch), e.g. [3, 224, 224]"
    elif not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_INPUT_DIM for v in sizes):
        problem = f"every size must be a positive integer of at most {MAX_INPUT_DIM:,}"
    elif math.prod(sizes) > MAX_INPUT_ELEMENTS:
        problem = f"{math.prod(sizes):,} elements per sample (at most {MAX_INPUT_ELEMENTS:,})"
    if problem is not None:
        raise SpecError(problem, file=file, line=line, column=column, path=what,
                        found=repr(shape)[:200], hint="limits before loops: see SECURITY.md")
    return sizes


def check_batch(batch: Any, what: str = "batch") -> int:
    """A batch size: an integer from 1 to :data:`MAX_INPUT_DIM`; a :class:`SpecError` naming ``what`` otherwise.

    >>> check_batch(8)
    8
    """
    if not isinstance(batch, int) or isinstance(batch, bool) or not 0 < batch <= MAX_INPUT_DIM:
        raise SpecError(f"must be an integer from 1 to {MAX_INPUT_DIM:,}", path=what, found=repr(batch)[:200])
    return batch
