"""The device's peaks for the roofline — matmul FLOP/s and copy bandwidth — measured once, cached per device."""

from __future__ import annotations

import json
import os
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import SpecError
from ..output import locked, os_error
from ..spread import load_warning, scaled
from .timing import measure

__all__ = ["device_name", "peaks", "peaks_report", "refresh_peaks", "Refreshed"]


def device_name(device: torch.device) -> str:
    """``NVIDIA H100 80GB HBM3`` or the CPU's model name with its thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name} ({torch.get_num_threads()} threads)"


SLOW_MATMUL_S = 0.1
"""A matmul size that takes longer than this once is not measured (a smaller one was): the peak measurement
stays within seconds whatever the dtype (float16 matmuls on a CPU are emulated, hundreds of times slower)."""


def _cache_file() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return root / "blockstitch" / "peaks.json"


def _measure(device: torch.device, dtype: torch.dtype) -> dict[str, float]:
    flops = 0.0
    for n in ((8192, 16384) if device.type == "cuda" else (256, 512, 1024, 2048)):  # the best of the sizes
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        start = time.perf_counter()
        a @ b
        once = time.perf_counter() - start
        if flops and once > SLOW_MATMUL_S:  # float16 on a CPU: a 2048² matmul takes seconds; the smaller did
            break
        t = measure(lambda: a @ b, device, budget_s=1.0, min_reps=5)
        flops = max(flops, 2 * n**3 / (min(t.samples_ms) / 1e3))
    m = (2**30 if device.type == "cuda" else 2**27) // 4  # 4 GiB on a GPU, 512 MiB on a CPU, float32
    src = torch.empty(m, device=device, dtype=torch.float32)
    dst = torch.empty_like(src)
    t = measure(lambda: dst.copy_(src), device, budget_s=1.0, min_reps=5)
    bandwidth = 2 * m * 4 / (min(t.samples_ms) / 1e3)  # read + write; the best run is the peak
    return {"flops": flops, "bytes_per_s": bandwidth}


@dataclass
class Refreshed:
    """Peaks measured again on request (``--refresh-peaks``): the new figures, the cached ones they replace and
    the cache file rewritten (None when it could not be written)."""

    key: str
    new: dict[str, float]
    old: dict[str, float] | None
    file: Path | None
    measured: bool = True
    """Whether the figures were measured by this call (False: read from the cache)."""
    loaded: str | None = None
    """:func:`blockstitch.spread.load_warning` while they were measured: peaks measured on a loaded machine are low."""

    def text(self) -> str:
        """One line saying what was measured and what was overwritten."""
        def both(name: str, unit: str) -> str:
            was = f" (was {scaled(self.old[name], unit)})" if self.old and name in self.old else " (none cached)"
            return f"{scaled(self.new[name], unit)}{was}"

        where = f"cache {self.file} overwritten" if self.file else "cache not writable: figures used, not kept"
        name = ", ".join(self.key.split("|")[:3])
        busy = f" (warning: {self.loaded}; the peaks read low)" if self.loaded else ""
        return (f"peaks re-measured for {name}: matmul {both('flops', 'FLOP/s')}, copy "
                f"{both('bytes_per_s', 'B/s')}; {where}{busy}")


def _lookup(device: torch.device, dtype: torch.dtype, refresh: bool) -> Refreshed:
    key = f"{device_name(device)}|{dtype}|torch {torch.__version__}|v2"
    file = _cache_file()
    with ExitStack() as held:
        try:  # read-modify-write under the lock: a second bench waits, then reads what the first measured
            file.parent.mkdir(parents=True, exist_ok=True)
            held.enter_context(locked(file, what="another bench (measuring this device's peaks)"))
            cached = True
        except (OSError, SpecError):
            cached = False  # a read-only home (or a lock never freed) still gets its numbers, just not cached
        cache = _read(file)
        old = cache.get(key)
        written, loaded, measured = None, None, old is None or refresh
        if measured:
            cache[key] = _measure(device, dtype)
            loaded = load_warning()
            if cached:
                try:
                    _write(file, cache)
                    written = file
                except SpecError:
                    pass  # a full disk: the numbers are still right, just not cached
        return Refreshed(key, cache[key], old, written, measured, loaded)


def peaks(device: torch.device, dtype: torch.dtype, refresh: bool = False) -> dict[str, float]:
    """Peak matmul FLOP/s (in ``dtype``) and copy bandwidth of ``device``; measured once, then read from
    ``~/.cache/blockstitch/peaks.json`` (keyed by device name, dtype and torch version; ``$XDG_CACHE_HOME``
    moves it). ``refresh`` measures them again and overwrites the cached entry.

    >>> peaks(torch.device("cpu"), torch.float32)["flops"]  # doctest: +SKIP
    """
    return _lookup(device, dtype, refresh).new


def peaks_report(device: torch.device, dtype: torch.dtype) -> Refreshed:
    """:func:`peaks` with what happened: read from the cache, or measured now (and whether the machine was loaded).

    >>> peaks_report(torch.device("cpu"), torch.float32).measured  # doctest: +SKIP
    False
    """
    return _lookup(device, dtype, False)


def refresh_peaks(device: torch.device, dtype: torch.dtype) -> Refreshed:
    """Measure the peaks of ``device`` in ``dtype`` again and overwrite their cache entry (``--refresh-peaks``).

    >>> print(refresh_peaks(torch.device("cpu"), torch.float32).text())  # doctest: +SKIP
    peaks re-measured for … matmul 412 GFLOP/s (was 398 GFLOP/s), copy 9.81 GB/s (was 10.2 GB/s); cache … overwritten
    """
    return _lookup(device, dtype, True)


def _read(file: Path) -> dict[str, dict[str, float]]:
    try:
        cache = json.loads(file.read_text()) if file.is_file() else {}
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def _write(file: Path, cache: dict[str, dict[str, float]]) -> None:
    """Replace the cache whole, beside the lock already held (write_file would take it a second time)."""
    partial = file.with_name(f".{file.name}.partial")
    try:
        partial.write_text(json.dumps(cache, indent=2))
        os.replace(partial, file)
    except OSError as err:
        raise os_error(err, file) from None
