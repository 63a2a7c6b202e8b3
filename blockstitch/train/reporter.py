"""What a trainer tells the world while it runs: one call per finished epoch and free-text log lines.

The base class does nothing, so a trainer can always call it; the ablate driver passes its own (progress display,
MLflow), tests pass a recording one.

>>> class Printing(Reporter):
...     def epoch(self, epoch, epochs, metrics):
...         print(f"{epoch}/{epochs} top1={metrics['top1']:.1f}")
>>> Printing().epoch(1, 2, {"top1": 50.0})
1/2 top1=50.0
"""

from __future__ import annotations

__all__ = ["Reporter", "RecordingReporter"]


class Reporter:
    """A no-op base: override :meth:`epoch` and/or :meth:`log`."""

    def epoch(self, epoch: int, epochs: int, metrics: dict[str, float]) -> None:
        """Epoch ``epoch`` (1-based) of ``epochs`` finished with these metrics (validation and training)."""

    def log(self, text: str) -> None:
        """A line worth showing (resumed from a checkpoint, a warning)."""


class RecordingReporter(Reporter):
    """Keeps every call: ``epochs`` holds ``(epoch, epochs, metrics)`` tuples and ``lines`` the log lines.

    >>> r = RecordingReporter(); r.log("hello"); r.lines
    ['hello']
    """

    def __init__(self) -> None:
        self.epochs: list[tuple[int, int, dict[str, float]]] = []
        self.lines: list[str] = []

    def epoch(self, epoch: int, epochs: int, metrics: dict[str, float]) -> None:
        self.epochs.append((epoch, epochs, dict(metrics)))

    def log(self, text: str) -> None:
        self.lines.append(text)
