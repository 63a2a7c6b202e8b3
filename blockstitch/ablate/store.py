"""The run directory: one fsynced JSON line per finished trial, a checkpoint directory per trial, and a lock.

Layout::

    RUN/results.jsonl        one row per finished trial (written only by the driver, one write + fsync each)
    RUN/plan.json            phase (a) and (b): every variant's params, MACs, latency (rewritten each run)
    RUN/trials/<key>/        the trial's checkpoints (``last.pt`` per epoch: a killed trial resumes from it)
    RUN/.lock                held (flock) while a driver runs: a second driver on the same directory is refused

Re-running resumes: a key with an ``ok`` row is reused (and reported as such); a key with only a ``failed`` row
is tried again; a key not seen is new. A line cut short by a kill is skipped and numbered, never rewritten.

>>> with RunStore(Path("runs/ablation")) as store:
...     store.append({"key": "baseline-s0-…", "status": "ok", ...})
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..output import append_line

__all__ = ["RunStore", "read_rows"]


def read_rows(path: Path) -> tuple[dict[str, dict[str, Any]], list[int]]:
    """The rows of a results file by key (the last row of a key wins, so a retried failure is replaced), and
    the numbers of lines that could not be read (a kill mid-write)."""
    rows: dict[str, dict[str, Any]] = {}
    bad: list[int] = []
    if not path.is_file():
        return rows, bad
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError):
                row = None
            if not isinstance(row, dict) or not isinstance(row.get("key"), str):
                bad.append(number)
                continue
            if rows.get(row["key"], {}).get("status") == "ok" and row.get("status") != "ok":
                continue  # an ok result is never replaced by a later failure
            rows[row["key"]] = row
    return rows, bad


class RunStore:
    """A run directory, locked while open (``with RunStore(dir) as store``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.results = self.root / "results.jsonl"
        self._lock_fd: int | None = None

    def __enter__(self) -> RunStore:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "trials").mkdir(exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover — not POSIX: no lock, as before
            pass
        except OSError:
            os.close(fd)
            raise SpecError(f"another ablation is running in {self.root} (its lock is held)",
                            hint="wait for it, or give this one another --run-dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd
        self._end_line()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock; a kill -9 releases it too
            self._lock_fd = None

    def _end_line(self) -> None:
        """A kill mid-write may have left half a line: the next row starts on a line of its own."""
        if self.results.is_file() and self.results.stat().st_size:
            with self.results.open("rb") as f:
                f.seek(-1, os.SEEK_END)
                last = f.read(1)
            if last != b"\n":
                append_line(self.results, "")

    def rows(self) -> tuple[dict[str, dict[str, Any]], list[int]]:
        """The rows so far, by key, and unreadable line numbers."""
        return read_rows(self.results)

    def append(self, row: dict[str, Any]) -> None:
        """One finished trial on disk, whole, before anything else happens (one write, fsync)."""
        append_line(self.results, json.dumps(row, sort_keys=True, default=str))

    def trial_dir(self, key: str) -> Path:
        """Where a trial keeps its checkpoints."""
        return self.root / "trials" / key

    def write_json(self, name: str, data: Any) -> Path:
        """A whole JSON file, written atomically (temp file, fsync, rename)."""
        path = self.root / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path
