"""The profiler's counter lives one floor down, in :mod:`blockstitch.counting`, so that every MAC count in the
package (stitch, bench, the foreign-module adapters) goes through the same one; this name stays for the
profiler and for users who imported it from here."""

from __future__ import annotations

from ..counting import OpCounter, estimate_flops

__all__ = ["OpCounter", "estimate_flops"]
