"""What the driver tells the user while it runs: phases, notes (reused and new trials), finished epochs and
trials. :class:`Events` is silent; :class:`RichEvents` draws a progress display (trials done/total, the current
epoch, ETA) on stderr with :class:`blockstitch.progress.RichProgress`, the display every long command shows — the
CLI uses it when stdout and stderr are terminals, never with ``--json``.

>>> ablate("examples/ablation.yaml", events=RichEvents())
"""

from __future__ import annotations

from typing import Any

from ..progress import RichProgress

__all__ = ["Events", "RichEvents", "PrintEvents"]


class Events:
    """A silent base; override what you want to show."""

    def phase(self, name: str, text: str) -> None:
        """A phase started (``plan``, ``latency``, ``train``) or ended."""

    def note(self, text: str) -> None:
        """A line worth showing (reused trials, new ones, a failed variant)."""

    def trials(self, total: int, done: int) -> None:
        """Training starts: ``total`` trials, ``done`` of them reused."""

    def epoch(self, key: str, epoch: int, epochs: int, metrics: dict[str, float]) -> None:
        """A trial finished an epoch."""

    def trial(self, row: dict[str, Any]) -> None:
        """A trial finished (its row is on disk)."""

    def close(self) -> None:
        """The run ended (or failed)."""


class PrintEvents(Events):
    """Plain lines on a stream (a log, not a terminal)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def phase(self, name: str, text: str) -> None:
        print(f"[{name}] {text}", file=self.stream, flush=True)

    def note(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def trial(self, row: dict[str, Any]) -> None:
        print(_line(row), file=self.stream, flush=True)


class RichEvents(PrintEvents):
    """The command line's progress display (:class:`blockstitch.progress.RichProgress`, on stderr) showing trials
    done/total and the epochs running; notes and finished trials printed above it."""

    def __init__(self, console: Any) -> None:
        super().__init__(None)
        self.console = console
        self.shown: RichProgress | None = None
        self.total = self.count = 0
        self.current: dict[str, str] = {}

    def _text(self) -> str:
        running = "; ".join(self.current.values())
        return f"trials {self.count}/{self.total}" + (f" · {running}" if running else "")

    def phase(self, name: str, text: str) -> None:
        self.console.print(f"[bold]{name}[/]: {text}", highlight=False)

    def note(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False)

    def trials(self, total: int, done: int) -> None:
        self.shown, self.total, self.count = RichProgress(self.console), total, done
        self.shown.start(total, self._text())
        for _ in range(done):  # the reused ones count as done
            self.shown.advance()

    def epoch(self, key: str, epoch: int, epochs: int, metrics: dict[str, float]) -> None:
        if self.shown is not None:
            self.current[key] = f"{key.rsplit('-', 1)[0]} epoch {epoch}/{epochs}"
            self.shown.describe(self._text())

    def trial(self, row: dict[str, Any]) -> None:
        self.current.pop(row["key"], None)
        if self.shown is not None:
            self.count += 1
            self.shown.advance(self._text())
            self.shown.print(_line(row))

    def close(self) -> None:
        if self.shown is not None:
            self.shown.close()
            self.shown = None


def _line(row: dict[str, Any]) -> str:
    """One finished trial: its variant, seed, status, metrics (or error) and time."""
    result = row.get("error") if row["status"] != "ok" else ", ".join(
        f"{k}={v:.4g}" for k, v in row["metrics"].items() if k not in ("epochs", "best_epoch"))
    return f"  {row['variant']} seed {row['seed']}: {row['status']} ({result}) in {row['seconds']:.1f}s"
