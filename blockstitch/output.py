"""Where a tool writes, and the one way it writes: an output path checked before any work is done (so a long
export or drawing never ends in "cannot write here"), a lock keyed by the resolved path (so a second writer
waits or is refused with a message, however the path is spelled), whole lines appended with one write and
fsync, whole files replaced atomically, and every OS failure (a full disk, no permission, a folder, a name too
long) as one located line.

>>> writable(Path("/no/such/dir/model.onnx"))
Traceback (most recent call last):
blockstitch.errors.SpecError: /no/such/dir/model.onnx: cannot write here: the folder /no/such/dir does not exist

Layering: the ground floor (it needs only :mod:`blockstitch.errors`); export, graph and the CLI share it.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import SpecError, shown

__all__ = ["writable", "locked", "append_line", "write_file", "replace_files", "os_error", "LOCK_WAIT_S"]

LOCK_WAIT_S = 120.0
"""How long a writer waits for another one holding the same file before it is refused."""

_REASONS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
            errno.EACCES: "permission denied", errno.EPERM: "permission denied", errno.EROFS: "read-only file system",
            errno.EISDIR: "it is a folder", errno.ENOTDIR: "a part of the path is a file, not a folder",
            errno.ENAMETOOLONG: "the name is too long", errno.ENOENT: "the folder does not exist"}


def writable(path: Path, error: type[SpecError] = SpecError) -> Path:
    """``path`` itself if a file can be written there; else ``error`` (a :class:`SpecError` kind) saying why.

    >>> writable(Path("diagram.svg"))
    PosixPath('diagram.svg')
    """
    parent = path.parent
    if path.is_dir():
        raise error(f"{path}: cannot write here: it is a folder", hint="name a file, e.g. model.onnx")
    if not parent.is_dir():
        raise error(f"{path}: cannot write here: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise error(f"{path}: cannot write here: permission denied")
    return path


def os_error(err: OSError, path: str | Path, error: type[SpecError] = SpecError) -> SpecError:
    """One located line for an OS failure while writing ``path``: ENOSPC, EACCES, EISDIR, ENOTDIR, ENAMETOOLONG…

    >>> str(os_error(OSError(28, "No space left on device"), "out.jsonl"))
    'out.jsonl: cannot write: the disk is full (ENOSPC)'
    """
    code = err.errno if err.errno is not None else 0
    reason = _REASONS.get(code, err.strerror or type(err).__name__)
    name = errno.errorcode.get(code, "")
    return error(f"cannot write: {reason}" + (f" ({name})" if name else ""), file=shown(path, 300))


def _lock_path(path: Path) -> Path:
    target = Path(os.path.abspath(path)).resolve()  # the file itself, however it is spelled (links followed)
    return target.with_name(f".{target.name}.lock")


@contextmanager
def locked(path: str | Path, wait_s: float = LOCK_WAIT_S, what: str = "another blockstitch process",
           error: type[SpecError] = SpecError) -> Iterator[None]:
    """Hold the lock of ``path`` (a hidden ``.NAME.lock`` beside the file it resolves to): a second holder,
    in this process or another, waits up to ``wait_s`` seconds (0: not at all), then is refused with a message.

    >>> with locked("results.jsonl", wait_s=0):
    ...     append_line("results.jsonl", "{}")
    """
    import fcntl

    lock = _lock_path(Path(path))
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise os_error(err, path, error) from None
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise error(f"{what} is writing this file now" + (f" (waited {wait_s:.0f} s)" if wait_s else ""),
                                file=shown(path, 300), hint="wait for it to finish, or write to another file"
                                ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def append_line(path: str | Path, line: str, error: type[SpecError] = SpecError) -> None:
    """Append one whole line: one write on an O_APPEND descriptor (a short write is finished), then fsync; a
    line already written is never touched. Failures are one located line (:func:`os_error`)."""
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, data)
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as err:
        raise os_error(err, path, error) from None


def write_file(path: str | Path, data: str | bytes, error: type[SpecError] = SpecError) -> Path:
    """Replace ``path`` with ``data`` whole: written beside it, fsynced, then renamed over it (a kill leaves the
    old file or the new one, never half of one), under the path's lock. Failures are one located line."""
    target = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with locked(target, error=error):
        partial = target.with_name(f".{target.name}.partial")
        try:
            with open(partial, "wb") as f:
                f.write(raw)
                f.flush()
                os.fsync(f.fileno())
            os.replace(partial, target)
        except OSError as err:
            try:
                partial.unlink(missing_ok=True)
            except OSError:
                pass
            raise os_error(err, target, error) from None
    return target


def replace_files(target: str | Path, write: Callable[[Path], None], error: type[SpecError] = SpecError) -> list[Path]:
    """Let ``write(path)`` write ``target`` and any companion files (an ONNX model's ``.onnx.data``) into a
    hidden folder beside it, under their final names; fsync each, then rename each over its final place (the
    companions first, ``target`` last) and return them in that order. When ``write`` raises, or the OS fails,
    nothing it wrote is left and ``target`` is untouched. The caller holds ``target``'s lock (:func:`locked`).

    >>> with locked("m.onnx"):
    ...     replace_files("m.onnx", lambda p: onnx.save(model, str(p)))
    [PosixPath('m.onnx')]
    """
    final = Path(target)
    try:
        folder = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    except OSError as err:
        raise os_error(err, final, error) from None
    try:
        write(folder / final.name)
        names = sorted(p.name for p in folder.iterdir())
        if final.name not in names:
            raise error(f"nothing was written to {final.name}", file=shown(final, 300))
        names = [n for n in names if n != final.name] + [final.name]  # the file naming the others comes last
        for name in names:
            fd = os.open(folder / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        done = []
        for name in names:
            os.replace(folder / name, final.parent / name)
            done.append(final.parent / name)
        return done
    except OSError as err:
        raise os_error(err, final, error) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
