"""Writing outputs so that nothing is ever half-written.

Every file scratchnet writes (models, histories, predictions, report files, sweep summaries)
goes through :func:`atomic_write`: the bytes go to a temporary file in the *same folder*, are
flushed to the disk (``fsync``), and only then ``os.replace``-d over the target.  ``os.replace``
is atomic on POSIX and Windows, so a run killed at any moment leaves either the old file or the
complete new one, never a mix (a partial file that ends on a whole line looks valid, and that is
the dangerous case).

Targets that are not regular files (``/dev/stdout``, a named pipe, ``/dev/full``) cannot be
replaced: they are written directly, and a failure still names the path.

:func:`check_writable` lets a command refuse an output path *before* it trains for minutes.
"""
from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import stat
from typing import IO, Iterator

from .errors import OutputError


def _is_special(path: str) -> bool:
    """An existing target that is not a regular file (a device, a pipe): written in place."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode)


def _new_file_mode(path: str) -> int:
    """The permissions the file would get from a plain ``open``: the old file's, or 0o666 less
    the umask (``mkstemp`` creates 0o600, which would surprise a user sharing results)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (best effort: not every system can open a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", *, encoding: str | None = "utf-8",
                 newline: str | None = None) -> Iterator[IO]:
    """``with atomic_write("m.json") as fh: fh.write(...)`` — the file appears complete or not
    at all.  ``mode`` is ``"w"`` (text) or ``"wb"`` (bytes).  On any error (or Ctrl-C) inside
    the block the temporary file is removed and the old file is left untouched."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', got {mode!r}")
    path = os.fspath(path)
    if os.path.islink(path):  # replace the file the link points to, not the link
        path = os.path.realpath(path)
    text = {} if mode == "wb" else {"encoding": encoding, "newline": newline}
    if _is_special(path):
        try:
            with open(path, mode, **text) as fh:
                yield fh
        except OSError as e:
            raise OutputError(f"{path}: cannot write ({e.strerror or e})") from None
        return
    folder = os.path.dirname(os.path.abspath(path))
    # The name is chosen before the file exists, so that an exception at any point after it
    # is created (a signal's handler raising between two bytecodes included: mkstemp has a
    # few after its open) still knows which file to remove.
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.urandom(6).hex()}.tmp")
    fd = None
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, mode, **text) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _new_file_mode(path))
        os.replace(tmp, path)
    except BaseException as e:
        if not isinstance(e, FileExistsError):  # (that one is another writer's file)
            with contextlib.suppress(OSError):
                os.remove(tmp)
        if isinstance(e, OSError) and fd is None:
            raise OutputError(f"{path}: cannot write in folder {folder} "
                              f"({e.strerror or e})") from None
        if isinstance(e, OSError):
            raise OutputError(f"{path}: cannot write ({e.strerror or e})") from None
        raise
    _fsync_folder(folder)


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    with atomic_write(path, "w", encoding=encoding) as fh:
        fh.write(text)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def _first_non_finite(obj, where: str = "") -> str | None:
    """Where the first NaN/±inf of a JSON-like object sits (``w[3]``, ``final.test_loss``)."""
    stack = [(obj, where)]
    while stack:  # iterative: a deep object cannot exhaust the recursion limit
        o, at = stack.pop()
        if isinstance(o, float) and not math.isfinite(o):
            return at or "the value"
        if isinstance(o, dict):
            stack.extend((v, f"{at}.{k}" if at else str(k)) for k, v in reversed(o.items()))
        elif isinstance(o, (list, tuple)):
            stack.extend((v, f"{at}[{i}]") for i, v in reversed(list(enumerate(o))))
    return None


def dumps_json(obj, *, indent: int | None = 1, source: str = "JSON") -> str:
    """Strict JSON text: a NaN or infinity is an error naming where it sits, never the
    non-standard ``NaN``/``Infinity`` tokens that other readers refuse."""
    try:
        return json.dumps(obj, indent=indent, allow_nan=False)
    except ValueError:
        at = _first_non_finite(obj)
        if at is None:
            raise
        raise OutputError(f"{source}: refusing to write a non-finite number at {at} "
                          "(JSON has no NaN or infinity)") from None


def write_json(path: str | os.PathLike, obj, *, indent: int | None = 1) -> None:
    """``obj`` as strict JSON (see :func:`dumps_json`), written atomically."""
    write_text(path, dumps_json(obj, indent=indent, source=os.fspath(path)) + "\n")


def write_csv(path: str | os.PathLike, header, rows) -> None:
    """A header row, then ``rows`` (any iterable of sequences), written atomically."""
    with atomic_write(path, "w", newline="") as fh:
        wr = csv.writer(fh)
        if header is not None:
            wr.writerow(header)
        wr.writerows(rows)


def save_figure(fig, path: str | os.PathLike, **kwargs) -> None:
    """``fig.savefig`` through a temporary file: the format comes from the target's suffix
    (matplotlib would otherwise read it from the temporary name)."""
    path = os.fspath(path)
    fmt = kwargs.pop("format", None) or os.path.splitext(path)[1].lstrip(".").lower() or None
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format=fmt, **kwargs)


# ---- checking output paths before the work starts ------------------------------------------
def check_writable(path: str | None, option: str) -> None:
    """Refuse an output path that cannot be written, before any training: the message names
    the option and the path (``--save nodir/m.json: folder 'nodir' does not exist``).
    ``None`` (the option not given) is fine."""
    if path is None:
        return
    path = os.fspath(path)
    if path.strip() == "":
        raise OutputError(f"{option}: an empty path; give a file name")
    if os.path.isdir(path):
        raise OutputError(f"{option} {path}: is a folder; give a file name")
    if _is_special(path):
        if not os.access(path, os.W_OK):
            raise OutputError(f"{option} {path}: cannot be written (permission denied)")
        return
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise OutputError(f"{option} {path}: the file exists and is read-only")
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        what = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise OutputError(f"{option} {path}: folder '{folder}' {what}")
    _probe_folder(folder, f"{option} {path}")


def check_folder(path: str | None, option: str) -> None:
    """An output *folder* (``ps5 --out report``): it may not exist yet (it is created with its
    missing parents), but neither it nor a parent may be a file, and the nearest existing one
    must be writable."""
    if path is None:
        return
    path = os.fspath(path)
    if path.strip() == "":
        raise OutputError(f"{option}: an empty path; give a folder name")
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        what = path if existing == os.path.abspath(path) else existing
        raise OutputError(f"{option} {path}: {what} is a file, not a folder")
    _probe_folder(existing, f"{option} {path}")


def _probe_folder(folder: str, what: str) -> None:
    """Create and remove a temporary file: the only honest test (``os.access`` says yes to root
    on a read-only file system)."""
    tmp = os.path.join(folder, f".scratchnet-probe.{os.urandom(6).hex()}")
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as e:
        raise OutputError(f"{what}: cannot write in folder '{folder}' "
                          f"({e.strerror or e})") from None
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)


__all__ = ["atomic_write", "write_text", "write_bytes", "write_json", "dumps_json", "write_csv",
           "save_figure", "check_writable", "check_folder"]
