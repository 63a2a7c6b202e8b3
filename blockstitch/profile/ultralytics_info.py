"""Ultralytics' own count of an ``ultralytics:`` model beside ours, and why the two differ — worked out, not assumed.

Ultralytics' ``model.info()`` (:func:`ultralytics.utils.torch_utils.model_info`) counts parameters and GFLOPs
with ``thop`` (2 × thop's MACs) at one image size. It is asked here twice, on a real copy of the model built
from the same source: as built (unfused), and after ``model.fuse()`` (each BatchNorm folded into its conv), the
figure Ultralytics prints after training and in its tables. Our own profile of the fused copy says which part of
the difference fusing explains.

>>> info = profile("ultralytics:yolov8n.yaml").ultralytics
>>> print(info)
Ultralytics model.info() at 640×640: 3,157,200 params, 8.855 GFLOPs (as built); fused: 3,151,904 params, 8.744 GFLOPs
why they differ: …
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..subject import Subject
    from . import Profile

__all__ = ["UltralyticsInfo", "ultralytics_info"]


@dataclass
class UltralyticsInfo:
    """Ultralytics' ``model.info()`` figures (params, GFLOPs = 2 × thop MACs) for the same model at the same image
    size, as built and fused, our profile of the fused model, and the lines that explain the differences."""

    imgsz: tuple[int, int]
    params: int
    gflops: float
    """0.0 when Ultralytics could not count (thop missing, or its profiling failed: Ultralytics returns 0.0)."""
    fused_params: int
    fused_gflops: float
    ours_fused_params: int
    ours_fused_flops: int
    """Our FLOPs (2 × MACs) of the fused model, per image."""
    why: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the profile's ``ultralytics_info``)."""
        return {"function": "ultralytics.utils.torch_utils.model_info", "imgsz": list(self.imgsz),
                "params": self.params, "gflops": self.gflops, "fused_params": self.fused_params,
                "fused_gflops": self.fused_gflops, "ours_fused_params": self.ours_fused_params,
                "ours_fused_flops": self.ours_fused_flops, "why": self.why}

    def __str__(self) -> str:
        size = "×".join(map(str, self.imgsz))
        return "\n".join([f"Ultralytics model.info() at {size}: {self.params:,} params, {self.gflops:.3f} GFLOPs (as "
                          f"built); fused: {self.fused_params:,} params, {self.fused_gflops:.3f} GFLOPs", *self.why])


@contextmanager
def _quiet() -> Iterator[None]:
    """Ultralytics' logger off (``model_info`` prints its summary line when it returns figures)."""
    logger = logging.getLogger("ultralytics")
    was = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b), 1.0)


def _why(ours: Profile, info: UltralyticsInfo) -> list[str]:
    """The explanation; the cause is named only when the fused figures bear it out (ours of the fused model equal
    to Ultralytics' fused figure: what fusing removed is the whole difference)."""
    if info.gflops == 0.0:
        return ["why they differ: Ultralytics' get_flops returned 0.0 (thop is missing or its profiling failed): "
                "only the parameters can be compared"]
    g = 1e9
    per_image = ours.flops / ours.batch / g
    params = ("the parameters are the same" if ours.params == info.params
              else f"parameters: ours {ours.params:,}, Ultralytics' {info.params:,}")
    fused = (f"fuse() folds each BatchNorm into its conv ({info.fused_params - info.params:+,} params); Ultralytics "
             f"then counts {info.fused_gflops:.3f} GFLOPs, and ours of the fused model is "
             f"{info.ours_fused_params:,} params, {info.ours_fused_flops / g:.3f} GFLOPs")
    if _same(info.ours_fused_flops / g, info.fused_gflops) and info.ours_fused_params == info.fused_params:
        return [f"why they differ: thop (Ultralytics' counter) also counts BatchNorm's arithmetic, "
                f"{info.gflops - per_image:+.3f} GFLOPs here, which our MACs leave out (native_batch_norm is under "
                f"'not in MACs'); {params}",
                f"  check: {fused} — the same, so BatchNorm is the whole difference"]
    return [f"why they differ: ours is {per_image:.3f} GFLOPs per image (2 × MACs: multiply-accumulates only), "
            f"Ultralytics' (thop) {info.gflops - per_image:+.3f} GFLOPs more; {params}",
            f"  {fused} — still {info.fused_gflops - info.ours_fused_flops / g:+.3f} GFLOPs and "
            f"{info.fused_params - info.ours_fused_params:+,} params apart: thop counts more than BatchNorm differently"]


def ultralytics_info(found: Subject, ours: Profile, profile_of: Callable[[Any], Profile]) -> UltralyticsInfo:
    """Ultralytics' ``model.info()`` for the model ``found`` names (an ``ultralytics:`` source) at the image size
    of ``ours`` (our profile of it), unfused and fused, with the explanation of how they differ from ``ours``;
    ``profile_of(module)`` is our profile of the fused module at that size (the profiler passes itself)."""
    from ..sources import foreign_model

    model: Any = foreign_model(found.resolved if found.resolved is not None else found.name, None)
    imgsz = (int(ours.input_shape[-2]), int(ours.input_shape[-1]))
    with _quiet():
        _, params, _, gflops = model.info(verbose=True, imgsz=list(imgsz))
        model.fuse(verbose=False)
        _, fused_params, _, fused_gflops = model.info(verbose=True, imgsz=list(imgsz))
    mine = profile_of(model)
    info = UltralyticsInfo(imgsz, int(params), float(gflops), int(fused_params), float(fused_gflops), mine.params,
                           mine.flops)
    info.why = _why(ours, info)
    return info
