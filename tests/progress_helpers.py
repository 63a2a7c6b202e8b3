"""A progress display that records what it was told (shared by the progress tests)."""

from __future__ import annotations

from typing import Any


class Recorder:
    """Every call, in order: ("start", total, text), ("advance", text), ("done",)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def start(self, total: int | None, description: str) -> None:
        self.calls.append(("start", total, description))

    def advance(self, description: str | None = None) -> None:
        self.calls.append(("advance", description))

    def done(self) -> None:
        self.calls.append(("done",))

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def tasks(self) -> list[tuple[int | None, str, int]]:
        """(total, first description, advances) of each task started."""
        out: list[tuple[int | None, str, int]] = []
        for call in self.calls:
            if call[0] == "start":
                out.append((call[1], call[2], 0))
            elif call[0] == "advance" and out:
                total, text, n = out[-1]
                out[-1] = (total, text, n + 1)
        return out

    def texts(self) -> list[str]:
        """Every description given, in order."""
        return [c[2] if c[0] == "start" else c[1] for c in self.calls if c[0] != "done" and c[-1] is not None]

    def steps(self) -> list[tuple[str, int | None, int]]:
        """(first description's label, total, advances) of each task started."""
        return [(text.split(" 1/")[0], total, n) for total, text, n in self.tasks()]
