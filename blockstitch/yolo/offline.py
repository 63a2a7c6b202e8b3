"""Ultralytics without its two downloads: the font check and the AMP check's weights.

Ultralytics' ``check_det_dataset`` ends with ``check_font("Arial.ttf")``, which — whatever ``YOLO_OFFLINE``
says — sends an HTTP request to fetch the font into its settings folder when no local font file matches; the
font is only ever used to draw plots. And on CUDA with ``amp=True`` its trainer's ``check_amp`` downloads
``yolo26n.pt`` to compare float32 and autocast predictions of *that* network, not the one being trained.
While a stitched network trains or validates through blockstitch (:func:`stays_offline`), the font is looked
up locally only (the settings folder, matplotlib's list; plots fall back to PIL's font) and the AMP check runs
the network being trained — the stitched one — in float32 and under autocast on a random batch and keeps AMP
when the two agree. Nothing else in the train/val/predict/export path of a local model touches the network
with ``YOLO_OFFLINE=1`` (``tests/test_yolo.py`` runs it all with sockets refused and counts the attempts: none).

>>> with stays_offline():
...     trainer.train()
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from copy import deepcopy
from pathlib import Path

import torch
from torch import nn

__all__ = ["amp_check", "local_font", "stays_offline"]

_LOCK = threading.RLock()


def local_font(font: str = "Arial.ttf") -> Path | None:
    """``check_font`` without its download: the font in Ultralytics' settings folder or matplotlib's list, else
    None."""
    from matplotlib import font_manager
    from ultralytics.utils import USER_CONFIG_DIR

    name = Path(font).name
    if (USER_CONFIG_DIR / name).exists():
        return USER_CONFIG_DIR / name
    matches = [f.fname for f in font_manager.fontManager.ttflist if font in f.fname and os.path.exists(f.fname)]
    return Path(matches[0]) if matches else None


def amp_check(model: nn.Module, size: int = 256) -> bool:
    """``check_amp`` on the network itself, nothing downloaded: False on CPU/MPS (no AMP there, as Ultralytics);
    elsewhere True when its raw predictions in float32 and under autocast agree (relative error under 2 %, on
    a seeded random batch of 2 at ``size``²).

    >>> amp_check(stitched.cuda())
    True
    """
    from ultralytics.utils import LOGGER

    param = next(model.parameters())
    if param.device.type in {"cpu", "mps"}:
        return False
    probe = deepcopy(model).float().eval()
    generator = torch.Generator(device=param.device).manual_seed(0)
    x = torch.rand(2, 3, size, size, device=param.device, generator=generator)
    with torch.no_grad():
        full = probe(x)[0].float()
        with torch.autocast(param.device.type):
            mixed = probe(x)[0].float()
    error = ((full - mixed).norm() / full.norm().clamp_min(1e-12)).item()
    ok = bool(torch.isfinite(mixed).all()) and error < 0.02
    LOGGER.info(f"AMP: blockstitch's check on the network being trained: relative error {error:.2e} "
                f"({'AMP kept' if ok else 'AMP off'})")
    return ok


@contextmanager
def stays_offline() -> Iterator[None]:
    """Within the block, Ultralytics' dataset check finds fonts locally only and its trainer's AMP check runs
    on the network being trained (see the module docstring)."""
    from ultralytics.data import utils as data_utils
    from ultralytics.engine import trainer as engine_trainer

    with _LOCK:
        font, amp = data_utils.check_font, engine_trainer.check_amp
        data_utils.check_font, engine_trainer.check_amp = local_font, amp_check
        try:
            yield
        finally:
            data_utils.check_font, engine_trainer.check_amp = font, amp
