"""A sweep's files keep their integrity: one writer at a time, every row checked on resume.

A sweep appends one CSV row per network to ``<out>`` (after the network's loss curves went to
``<out>.curves.npy``), so that a killed sweep resumes where it stopped.  The curves file is a
plain ``.npy`` of one record per network (:func:`curve_dtype`: ``np.load(path)``, no pickle):
a chunk's curves are appended as one block of bytes, not formatted as text, and the header's
count is rewritten in place after each block.  What can go wrong, and what is done about it:

* **two sweeps on the same file** would both run the grid and write every row twice: a lock
  file ``<out>.lock`` names its holder (pid, host, start time) and a second sweep is refused;
  a lock left by a killed sweep on this machine (its pid is gone) is taken over;
* **a row cut off, duplicated or garbled** (a kill in the middle of a write, a disk error, a
  file edited by hand, NUL or non-UTF-8 bytes): on resume every line of both files is parsed
  and checked (column count, types, finite numbers, the setup hash); lines that fail are set
  aside into ``<out>.set-aside.txt`` with a warning, and their networks are run again;
* **the order** in which chunks finish (resumes, Dask) is not the grid's: when the sweep is
  complete both files are rewritten, atomically, in grid order, so a resumed or distributed
  sweep leaves exactly the file an uninterrupted serial one writes.  A fresh sweep knows where
  each chunk went (byte ranges), so its final check reads nothing back;
* **an output that is not a regular file** (``/dev/stdout``, a pipe, ``/dev/null``) cannot be
  locked, resumed or rewritten: rows are streamed to it and no curves file is written.

Rewrites stream line by line (offsets, not parsed rows), so a curves file of hundreds of MB
is never held in memory.
"""
from __future__ import annotations

import csv
import json
import math
import os
import re
import socket
import stat
import struct
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .core.errors import ScratchnetError
from .core.io import atomic_write

COLUMNS = ("hidden", "lr", "seed", "epochs", "train_loss", "test_loss", "train_acc", "test_acc",
           "best_epoch", "best_test_loss", "diverged_at", "setup")
CURVE_FIELDS = ("hidden", "lr", "seed", "setup", "epochs", "train", "test")
HIDDEN_WIDTH = 64  # bytes for an architecture's label (``16x8``) in a curves record
_INTS = ("seed", "epochs", "best_epoch", "diverged_at")
_FLOATS = ("lr", "train_loss", "test_loss", "train_acc", "test_acc", "best_test_loss")
_HIDDEN = re.compile(r"[1-9][0-9]*(x[1-9][0-9]*)*")
_SETUP = re.compile(r"[0-9a-f]{10}")


def _key(hidden: str, lr, seed) -> tuple[str, float, int]:
    return str(hidden), float(lr), int(seed)


def curves_path(out: str) -> str:
    root, _ = os.path.splitext(out)
    return root + ".curves.npy"


def is_stream(out: str) -> bool:
    """An existing ``--out`` that is not a regular file (``/dev/stdout``, a pipe, a device):
    it is written as a stream, without lock, resume, reordering or curves file."""
    try:
        st = os.stat(out)
    except OSError:
        return False
    return not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode)


def set_aside_path(out: str) -> str:
    return out + ".set-aside.txt"


# ---- one writer at a time ------------------------------------------------------------------
class SweepLock:
    """``<out>.lock``, created exclusively, holding ``{"pid", "host", "started"}``."""

    def __init__(self, out: str):
        self.path = out + ".lock"
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is not None and not self._stale(holder):
                    raise ScratchnetError(
                        f"--out {out}: another sweep is writing it (pid {holder.get('pid')} on "
                        f"{holder.get('host')}, started {holder.get('started')}); wait for it, "
                        f"or delete {self.path} if that sweep is gone") from None
                try:
                    os.remove(self.path)  # a lock left by a killed sweep: take it over
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(me, fh)
            self.held = True
            return
        raise ScratchnetError(f"--out {out}: cannot take the lock {self.path}")

    def _holder(self) -> dict | None:
        """The lock's content; None when it is unreadable (a half-written lock is stale)."""
        try:
            with open(self.path, encoding="utf-8") as fh:
                d = json.load(fh)
            return d if isinstance(d, dict) else None
        except (OSError, ValueError):
            return None

    @staticmethod
    def _stale(holder: dict) -> bool:
        """Only a holder on this machine can be checked: its pid must still run."""
        pid = holder.get("pid")
        if holder.get("host") != socket.gethostname() or not isinstance(pid, int) or pid < 1:
            return False
        if pid == os.getpid():
            return False  # this very process: a second sweep on the same file, refused
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def release(self) -> None:
        if getattr(self, "held", False):
            self.held = False
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass


# ---- reading and checking every line ----------------------------------------------------------
@dataclass
class Line:
    key: tuple
    start: int  # byte offset of the line in its file
    end: int  # one past its newline
    row: dict | None = None  # the parsed main-file row


@dataclass
class Scan:
    header: list[str] | None
    header_end: int
    lines: list[Line] = field(default_factory=list)
    rejected: list[tuple[int, str, bytes]] = field(default_factory=list)  # (line no., why, raw)
    dtype: np.dtype | None = None  # a curves file's records
    dirty: bool = False  # a curves file whose header does not count its whole records


class _Bad(Exception):
    pass


def _number(text: str, what: str, kind) -> float | int:
    try:
        return kind(text)
    except ValueError:
        raise _Bad(f"{what} '{text[:20]}' is not {'an integer' if kind is int else 'a number'}")


def _parse_row(fields: list[str], setup: str | None) -> dict:
    if len(fields) != len(COLUMNS):
        raise _Bad(f"{len(fields)} fields instead of {len(COLUMNS)}")
    r = dict(zip(COLUMNS, fields))
    if not _HIDDEN.fullmatch(r["hidden"]):
        raise _Bad(f"hidden '{r['hidden'][:20]}' is not like 7 or 16x8")
    for c in _INTS:
        r[c] = _number(r[c], c, int)
    for c in _FLOATS:
        r[c] = _number(r[c], c, float)
    if not (math.isfinite(r["lr"]) and r["lr"] > 0):
        raise _Bad(f"lr {r['lr']} is not a positive number")
    if r["seed"] < 0 or r["epochs"] < 1 or r["best_epoch"] < 0 or r["diverged_at"] < -1:
        raise _Bad("a negative seed, epoch count or epoch")
    for c in ("train_acc", "test_acc"):
        if not 0 <= r[c] <= 1:
            raise _Bad(f"{c} {r[c]} is not in [0, 1]")
    if r["diverged_at"] < 0:  # a network that did not diverge has finite losses
        for c in ("train_loss", "test_loss", "best_test_loss"):
            if not math.isfinite(r[c]):
                raise _Bad(f"{c} {r[c]} is not finite though the network did not diverge")
    _check_setup(r["setup"], setup)
    return r


def _check_setup(text: str, setup: str | None) -> None:
    if not _SETUP.fullmatch(text):
        raise _Bad(f"setup '{text[:20]}' is not a setup hash")
    if setup is not None and text != setup:
        raise _OtherSetup(text)


class _OtherSetup(Exception):
    pass


def scan(path: str, setup: str | None = None) -> Scan:
    """Check every line of a sweep file.

    Bad lines are listed in ``rejected``, never raised; a file whose header is not a sweep
    file's, or rows of another setup, raise (resuming would mix runs)."""
    if not os.path.exists(path):
        return Scan(None, 0)
    with open(path, "rb") as fh:
        data = fh.read()
    if not data:
        return Scan(None, 0)
    first = data.find(b"\n") + 1 or len(data)
    try:
        header = next(csv.reader([data[:first].decode("utf-8").rstrip("\r\n")]))
    except (UnicodeDecodeError, csv.Error, StopIteration):
        header = ["?"]
    if tuple(header) != COLUMNS:
        raise ScratchnetError(f"{path}: not a sweep file (its columns are "
                              f"{', '.join(header)[:200]}); choose another --out")
    res = Scan(header, first)
    pos, number = first, 1
    while pos < len(data):
        nl = data.find(b"\n", pos)
        end = len(data) if nl < 0 else nl + 1
        raw, number = data[pos:end], number + 1
        try:
            if nl < 0:
                raise _Bad("cut off (no end of line)")
            if b"\0" in raw:
                raise _Bad("NUL bytes")
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                raise _Bad("not UTF-8 text") from None
            if text.strip():
                row = _parse_row(next(csv.reader([text])), setup)
                res.lines.append(Line(_key(row["hidden"], row["lr"], row["seed"]), pos, end,
                                      row))
        except (_Bad, csv.Error) as e:
            res.rejected.append((number, str(e), raw))
        except _OtherSetup:
            raise _other_setup(path) from None
        pos = end
    return res


def _other_setup(path: str) -> ScratchnetError:
    return ScratchnetError(f"{path} holds runs of another setup (data, epochs, activation, …); "
                           "resuming would mix them: choose another --out")


# ---- the curves file: a .npy of fixed-size records, appended block by block ----------------
def curve_dtype(points: int) -> np.dtype:
    """One network's record: its key, the recorded epochs of its curves, and its train and test
    loss at those epochs (``points`` of each)."""
    return np.dtype([("hidden", f"S{HIDDEN_WIDTH}"), ("lr", "<f8"), ("seed", "<i8"),
                     ("setup", "S10"), ("epochs", "<i8", (points,)),
                     ("train", "<f8", (points,)), ("test", "<f8", (points,))])


def curve_records(hidden: str, lrs, seeds, setup: str, epochs, train, test) -> np.ndarray:
    """A chunk's curves as records, filled column by column: ``train``, ``test`` (K, points)
    at ``epochs`` (points,)."""
    train = np.asarray(train)
    recs = np.empty(train.shape[0], curve_dtype(train.shape[1]))
    recs["hidden"], recs["lr"], recs["seed"], recs["setup"] = hidden, lrs, seeds, setup
    recs["epochs"], recs["train"], recs["test"] = epochs, train, test
    return recs


_MAGIC = b"\x93NUMPY\x01\x00"  # .npy format version 1.0


def npy_header(dtype: np.dtype, count: int) -> bytes:
    """The .npy header of ``count`` records, padded to one length for every count (up to 20
    digits), so that it can be rewritten in place as records are appended."""
    text = "{'descr': %r, 'fortran_order': False, 'shape': (%d,), }" % (
        np.lib.format.dtype_to_descr(dtype), count)
    room = len(text) - len(str(count)) + 20 + 1  # + the newline that ends a header
    size = -(-(len(_MAGIC) + 2 + room) // 64) * 64 - len(_MAGIC) - 2  # aligned to 64 bytes
    return _MAGIC + struct.pack("<H", size) + (text.ljust(size - 1) + "\n").encode("latin-1")


def read_npy_header(fh, path: str) -> tuple[np.dtype, int, int]:
    """(dtype, count, offset of the first record) of a curves file; another file raises."""
    try:
        if np.lib.format.read_magic(fh) != (1, 0):
            raise ValueError("another .npy version")
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        if dtype.names != CURVE_FIELDS or len(shape) != 1 or fortran or \
                dtype != curve_dtype(dtype["train"].shape[0] if dtype["train"].shape else 0):
            raise ValueError("other records")
    except (ValueError, KeyError, TypeError, SyntaxError, OSError):
        raise ScratchnetError(f"{path}: not a sweep curves file; choose another --out, or "
                              "move it away") from None
    return dtype, int(shape[0]), fh.tell()


def _curve_key(rec, setup: str | None) -> tuple:
    hidden = rec["hidden"].decode("ascii", "replace")
    if not _HIDDEN.fullmatch(hidden):
        raise _Bad(f"hidden '{hidden[:20]}' is not like 7 or 16x8")
    lr, seed = float(rec["lr"]), int(rec["seed"])
    if not (math.isfinite(lr) and lr > 0) or seed < 0:
        raise _Bad(f"lr {lr} or seed {seed} out of range")
    _check_setup(rec["setup"].decode("ascii", "replace"), setup)
    return _key(hidden, lr, seed)


def scan_curves(path: str, setup: str | None = None) -> Scan:
    """Check every record of a curves file, as :func:`scan` does every line of a sweep file.

    Whole records past the header's count (a kill between a block and its header update) are
    kept; a partial record at the end is rejected; ``dirty`` says the file needs rewriting."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return Scan(None, 0)
    with open(path, "rb") as fh:
        dtype, count, start = read_npy_header(fh, path)
        size = os.fstat(fh.fileno()).st_size
        recs = np.fromfile(fh, dtype, count=(size - start) // dtype.itemsize)
    res = Scan(list(CURVE_FIELDS), start, dtype=dtype, dirty=count != len(recs))
    for i, rec in enumerate(recs):
        pos = start + i * dtype.itemsize
        try:
            res.lines.append(Line(_curve_key(rec, setup), pos, pos + dtype.itemsize))
        except _Bad as e:
            res.rejected.append((i + 1, str(e), repr(rec)[:300].encode()))
        except _OtherSetup:
            raise _other_setup(path) from None
    if (size - start) % dtype.itemsize:
        res.rejected.append((len(recs) + 1, "cut off (a partial record)", b"(binary)"))
    return res


def read_curves(out: str) -> np.ndarray:
    """The valid curve records of the sweep ``out`` (repeated networks left out), for plots."""
    path = curves_path(out)
    s = scan_curves(path)
    _without_duplicates(s)
    if s.dtype is None:
        return np.empty(0, curve_dtype(0))
    with open(path, "rb") as fh:
        fh.seek(s.header_end)
        recs = np.fromfile(fh, s.dtype)
    return recs[[(ln.start - s.header_end) // s.dtype.itemsize for ln in s.lines]]


def _without_duplicates(s: Scan) -> set:
    """Keys written more than once: every copy is set aside (which one is right is unknown)."""
    seen, dup = set(), set()
    for ln in s.lines:
        (dup if ln.key in seen else seen).add(ln.key)
    if dup:
        s.rejected.extend((0, "duplicated", b"") for ln in s.lines if ln.key in dup)
        s.lines = [ln for ln in s.lines if ln.key not in dup]
    return dup


def read_rows(out: str) -> list[dict]:
    """The valid rows of a sweep file, numbers parsed (bad or repeated lines left out); a
    missing file has none."""
    s = scan(out)
    _without_duplicates(s)
    return [ln.row for ln in s.lines]


def _rewrite(path: str, s: Scan, lines: list[Line]) -> None:
    """``path`` again with only ``lines`` (records, or whole blocks of them), in that order,
    streamed from the file itself (a curves file gets a header that counts them)."""
    with open(path, "rb") as src, atomic_write(path, "wb") as dst:
        dst.write(src.read(s.header_end) if s.dtype is None else npy_header(
            s.dtype, sum(ln.end - ln.start for ln in lines) // s.dtype.itemsize))
        for ln in lines:
            src.seek(ln.start)
            dst.write(src.read(ln.end - ln.start))


def format_rows(columns: dict) -> str:
    """CSV lines (ended by CR LF, as the csv module ends them) of a block of rows, built column
    by column: floats as repr, the shortest text that reads back as the same number."""
    text = [_texts(np.asarray(columns[c], float), repr) if c in _FLOATS
            else _texts(np.asarray(columns[c]), str) for c in COLUMNS]
    return "".join(f"{line}\r\n" for line in map(",".join, zip(*text)))


def _texts(values: np.ndarray, fmt) -> list[str]:
    """``fmt`` of every value; a column of few distinct values (lr, accuracies, epochs) formats
    each once (repr is most of a row's cost).  −0.0 would share 0.0's text: formatted apart."""
    if len(values) < 64 or (values.dtype.kind == "f" and np.signbit(values[values == 0]).any()):
        return list(map(fmt, values.tolist()))
    distinct, where = np.unique(values, return_inverse=True)
    if len(distinct) > len(values) // 4:
        return list(map(fmt, values.tolist()))
    return np.array(list(map(fmt, distinct.tolist())), dtype=object)[where].tolist()


# ---- the writer ------------------------------------------------------------------------------
def print_warning(message: str) -> None:
    print(f"scratchnet: warning: {message}", file=sys.stderr)


class SweepWriter:
    """Appends chunk results to ``out`` and its curves file, creating them with a header.

    On creation both files are checked line by line; what is done is what both files hold
    intact, once.  ``done`` is that set of (hidden, lr, seed) keys; ``fresh``: nothing was.
    An ``out`` that is not a regular file (:func:`is_stream`) gets the rows only."""

    def __init__(self, out: str, setup: str, warn=print_warning):
        self.out, self.curves, self.setup = out, curves_path(out), setup
        self.stream, self.blocks = is_stream(out), []  # (chunk index, main and curves ranges)
        self.done, self.fresh = set(), True
        if self.stream:
            return
        main, curves = scan(out, setup), scan_curves(self.curves, setup)
        dup = _without_duplicates(main) | _without_duplicates(curves)
        in_curves = {ln.key for ln in curves.lines}
        in_main = {ln.key for ln in main.lines}
        missing = [ln for ln in main.lines if ln.key not in in_curves]
        good = [ln for ln in main.lines if ln.key in in_curves]
        good_curves = [ln for ln in curves.lines if ln.key in in_main]
        bad = main.rejected + curves.rejected
        if bad or missing or len(good_curves) != len(curves.lines) or curves.dirty:
            self._set_aside(main, curves, missing, dup, warn)
            if main.header is not None:
                _rewrite(out, main, good)
            if curves.header is not None:
                kept = {ln.key for ln in good}
                _rewrite(self.curves, curves, [ln for ln in good_curves if ln.key in kept])
        if not good and os.path.exists(self.curves):
            os.remove(self.curves)  # curves left from a sweep whose main file is gone
        self.done, self.fresh = {ln.key for ln in good}, not good

    def _set_aside(self, main: Scan, curves: Scan, missing, dup, warn) -> None:
        rejected = [(self.out, *r) for r in main.rejected if r[0]] + \
            [(self.curves, *r) for r in curves.rejected if r[0]]
        if rejected:
            with open(set_aside_path(self.out), "ab") as fh:
                for path, number, why, raw in rejected:
                    what = "line" if path == self.out else "record"
                    fh.write(f"# {path} {what} {number}: {why}\n".encode())
                    fh.write(raw if raw.endswith(b"\n") else raw + b"\n")
        parts = []
        if rejected:
            why = sorted({r[2] for r in rejected})
            parts.append(f"{len(rejected)} damaged line(s) ({'; '.join(why)[:200]}) set aside "
                         f"into {set_aside_path(self.out)}")
        if dup:
            parts.append(f"{len(dup)} network(s) written more than once")
        if missing:
            parts.append(f"{len(missing)} row(s) without their loss curve")
        if parts:
            warn(f"{self.out}: {', '.join(parts)}; those networks are trained again")

    def write(self, result, index: int = 0) -> None:
        """Append ``result`` (a ``sweep.ChunkResult``), the chunk ``index`` of the grid."""
        rows = format_rows(result.columns).encode()
        if self.stream:  # opened once: a fifo's reader sees the end when it is closed
            if not self.blocks:
                self._fh = open(self.out, "ab")
                self._fh.write((",".join(COLUMNS) + "\r\n").encode())
            self._fh.write(rows)
            self._fh.flush()  # no fsync: a pipe or a terminal has no disk behind it
            self.blocks.append((index, None, None))
            return
        # curves first: the main file is the record of what is done
        curves = self._append_curves(result.curves)
        self.blocks.append((index, self._append(rows), curves))

    def _append(self, rows: bytes) -> tuple[int, int]:
        with open(self.out, "ab") as fh:
            if fh.tell() == 0:
                fh.write((",".join(COLUMNS) + "\r\n").encode())
            start = fh.tell()
            fh.write(rows)
            fh.flush()
            os.fsync(fh.fileno())
            return start, fh.tell()

    def _append_curves(self, recs: np.ndarray) -> tuple[int, int]:
        """The records as one block after the last counted one, then the count in the header."""
        new = not os.path.exists(self.curves) or os.path.getsize(self.curves) == 0
        with open(self.curves, "wb" if new else "r+b") as fh:
            if new:
                fh.write(npy_header(recs.dtype, 0))
                count, start = 0, fh.tell()
            else:
                dtype, count, start = read_npy_header(fh, self.curves)
                if dtype != recs.dtype:
                    raise ScratchnetError(
                        f"{self.curves}: its curves have {dtype['train'].shape[0]} points, "
                        f"this sweep's {recs.dtype['train'].shape[0]}; choose another --out")
            pos = start + count * recs.dtype.itemsize
            fh.seek(pos)
            fh.write(recs.view(np.uint8))
            fh.flush()
            os.fsync(fh.fileno())  # the records are on disk before the header counts them
            fh.seek(0)
            fh.write(npy_header(recs.dtype, count + len(recs)))
            fh.flush()
            os.fsync(fh.fileno())
        return pos, pos + recs.nbytes

    def finish(self, order) -> None:
        """Leave both files in grid order.  A fresh sweep whose chunks arrived in grid order
        (serial) is already; one whose chunks came in another order (Dask) is rewritten block
        by block from the byte ranges it wrote; a resumed one goes through
        :meth:`put_in_order` with ``order()`` (key → position)."""
        if self.stream:
            if self.blocks:
                self._fh.close()
            return
        if not self.fresh:
            self.put_in_order(order())
            return
        indices = [b[0] for b in self.blocks]
        if indices == sorted(indices):
            return
        blocks = sorted(self.blocks, key=lambda b: b[0])
        with open(self.curves, "rb") as fh:
            dtype, _, start = read_npy_header(fh, self.curves)
        for path, k, head in ((self.out, 1, Scan(None, self.blocks[0][1][0])),
                              (self.curves, 2, Scan(None, start, dtype=dtype))):
            _rewrite(path, head, [Line(None, *b[k]) for b in blocks])

    def put_in_order(self, order: dict) -> None:
        """Rewrite both files with their rows in ``order`` (key → position; keys not in it
        keep their place after the others), atomically, if they are not in that order yet."""
        for path, kind in ((self.out, "rows"), (self.curves, "curves")):
            s = scan(path, self.setup) if kind == "rows" else scan_curves(path, self.setup)
            if s.header is None:
                continue
            _without_duplicates(s)
            rank = [order.get(ln.key, len(order) + i) for i, ln in enumerate(s.lines)]
            if rank != sorted(rank) or s.rejected:
                lines = [ln for _, ln in sorted(zip(rank, s.lines), key=lambda t: t[0])]
                _rewrite(path, s, lines)
