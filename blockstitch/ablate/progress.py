"""What the driver tells the user while it runs: phases, notes (reused and new trials), finished epochs and
trials. :class:`Events` is silent; :class:`RichEvents` draws a progress display (trials done/total, the current
epoch, ETA) on stderr — the CLI uses it on a terminal, never with ``--json``.

>>> ablate("examples/ablation.yaml", events=RichEvents())
"""

from __future__ import annotations

from typing import Any

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
    """A live progress bar on a rich console (stderr); notes and finished trials printed above it."""

    def __init__(self, console: Any) -> None:
        super().__init__(None)
        self.console = console
        self.progress: Any = None
        self.task: Any = None
        self.current: dict[str, str] = {}

    def phase(self, name: str, text: str) -> None:
        self.console.print(f"[bold]{name}[/]: {text}", highlight=False)

    def note(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False)

    def trials(self, total: int, done: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        self.progress = Progress(TextColumn("trials"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[now]}"),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=self.console,
                                 transient=True)
        self.progress.start()
        self.task = self.progress.add_task("trials", total=total, completed=done, now="")

    def epoch(self, key: str, epoch: int, epochs: int, metrics: dict[str, float]) -> None:
        if self.progress is not None:
            self.current[key] = f"{key.rsplit('-', 1)[0]} epoch {epoch}/{epochs}"
            self.progress.update(self.task, now="; ".join(self.current.values()))

    def trial(self, row: dict[str, Any]) -> None:
        self.current.pop(row["key"], None)
        if self.progress is not None:
            self.progress.update(self.task, advance=1, now="; ".join(self.current.values()))
            self.progress.console.print(_line(row), highlight=False, markup=False)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _line(row: dict[str, Any]) -> str:
    """One finished trial: its variant, seed, status, metrics (or error) and time."""
    result = row.get("error") if row["status"] != "ok" else ", ".join(
        f"{k}={v:.4g}" for k, v in row["metrics"].items() if k not in ("epochs", "best_epoch"))
    return f"  {row['variant']} seed {row['seed']}: {row['status']} ({result}) in {row['seconds']:.1f}s"
