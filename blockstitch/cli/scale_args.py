"""The flags that say where trials and measurements run, shared by ``ablate`` and ``sweep``: ``--backend
local|ray``, ``--address auto|ray://host:port``, ``--cpus-per-trial``, ``--gpus-per-trial`` (not a subcommand;
the commands add these to their own parsers)."""

from __future__ import annotations

import argparse
import math

__all__ = ["resources", "scale_arguments"]


def resources(text: str) -> float:
    """A resource amount: a number ≥ 0, fractions allowed (``0.5`` GPU: two trials share one).

    >>> resources("0.25")
    0.25
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number like 1 or 0.5, got '{text}'") from None
    if not math.isfinite(value) or value < 0 or value > 1024:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1024, got '{text}'")
    return value


def scale_arguments(p: argparse.ArgumentParser, what: str = "trial") -> None:
    """Add ``--backend``, ``--address``, ``--cpus-per-trial`` and ``--gpus-per-trial`` (defaults None: the file's
    own setting, else local / a private local Ray / 1 CPU / 0 GPUs)."""
    g = p.add_argument_group("scale out (Ray)")
    g.add_argument("--backend", choices=("local", "ray"), default=None,
                   help=f"where each {what} runs: here (default) or as a Ray task (pip install 'blockstitch[ray]')")
    g.add_argument("--address", default=None, metavar="ADDR",
                   help="Ray cluster to join: auto (the one `ray start` began here), ray://host:10001 or "
                        "host:6379 (default: start a private Ray on 127.0.0.1 with this machine's CPUs/GPUs)")
    g.add_argument("--cpus-per-trial", type=resources, default=None, metavar="F",
                   help=f"CPUs each {what} reserves on Ray (also its torch threads; default 1)")
    g.add_argument("--gpus-per-trial", type=resources, default=None, metavar="F",
                   help=f"GPUs each {what} reserves on Ray; fractions share a GPU (default 0)")
