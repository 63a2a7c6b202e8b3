"""Ultralytics without the font download: checking a dataset must not reach for the network.

Ultralytics' ``check_det_dataset`` ends with ``check_font("Arial.ttf")``, which — whatever ``YOLO_OFFLINE``
says — sends an HTTP request to fetch the font into its settings folder when no local font file matches; the
font is only ever used to draw plots. While a stitched network trains or validates through blockstitch, that
call looks locally only (the settings folder, matplotlib's font list) and the plots fall back to PIL's built-in
font. Nothing else in the train/val/predict path of a local model touches the network with ``YOLO_OFFLINE=1``
(``tests/test_yolo.py`` runs it all with sockets refused and counts the attempts: none).

>>> with fonts_stay_local():
...     trainer.get_dataset()
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["fonts_stay_local", "local_font"]

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


@contextmanager
def fonts_stay_local() -> Iterator[None]:
    """Within the block, Ultralytics' dataset check finds fonts locally only (see the module docstring)."""
    from ultralytics.data import utils as data_utils

    with _LOCK:
        original = data_utils.check_font
        data_utils.check_font = local_font
        try:
            yield
        finally:
            data_utils.check_font = original
