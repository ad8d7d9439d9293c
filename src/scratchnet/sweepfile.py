"""A sweep's files keep their integrity: one writer at a time, every row checked on resume.

A sweep appends one CSV row per network to ``<out>`` (after the network's loss curve went to
``<out>.curves.csv``), so that a killed sweep resumes where it stopped.  What can go wrong, and
what is done about it:

* **two sweeps on the same file** would both run the grid and write every row twice: a lock
  file ``<out>.lock`` names its holder (pid, host, start time) and a second sweep is refused;
  a lock left by a killed sweep on this machine (its pid is gone) is taken over;
* **a row cut off, duplicated or garbled** (a kill in the middle of a write, a disk error, a
  file edited by hand, NUL or non-UTF-8 bytes): on resume every line of both files is parsed
  and checked (column count, types, finite numbers, the setup hash); lines that fail are set
  aside into ``<out>.set-aside.txt`` with a warning, and their networks are run again;
* **the order** in which chunks finish (resumes, Dask) is not the grid's: when the sweep is
  complete both files are rewritten, atomically, in grid order, so a resumed or distributed
  sweep leaves exactly the file an uninterrupted serial one writes.

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
import sys
import time
from dataclasses import dataclass, field

from .core.errors import ScratchnetError
from .core.io import atomic_write

COLUMNS = ("hidden", "lr", "seed", "epochs", "train_loss", "test_loss", "train_acc", "test_acc",
           "best_epoch", "best_test_loss", "diverged_at", "setup")
CURVE_KEY = ("hidden", "lr", "seed", "setup")
_INTS = ("seed", "epochs", "best_epoch", "diverged_at")
_FLOATS = ("lr", "train_loss", "test_loss", "train_acc", "test_acc", "best_test_loss")
_HIDDEN = re.compile(r"[1-9][0-9]*(x[1-9][0-9]*)*")
_SETUP = re.compile(r"[0-9a-f]{10}")


def _key(hidden: str, lr, seed) -> tuple[str, float, int]:
    return str(hidden), float(lr), int(seed)


def curves_path(out: str) -> str:
    root, _ = os.path.splitext(out)
    return root + ".curves.csv"


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


def _parse_curve(fields: list[str], n: int, setup: str | None) -> tuple:
    if len(fields) != n:
        raise _Bad(f"{len(fields)} fields instead of {n}")
    if not _HIDDEN.fullmatch(fields[0]):
        raise _Bad(f"hidden '{fields[0][:20]}' is not like 7 or 16x8")
    lr, seed = _number(fields[1], "lr", float), _number(fields[2], "seed", int)
    _check_setup(fields[3], setup)
    for v in fields[4:]:
        _number(v, "loss", float)
    return _key(fields[0], lr, seed)


def scan(path: str, kind: str = "rows", setup: str | None = None) -> Scan:
    """Check every line of a sweep file (``kind`` "rows") or its curves file ("curves").

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
    ok_header = (tuple(header) == COLUMNS if kind == "rows"
                 else tuple(header[:4]) == CURVE_KEY and len(header) > 4)
    if not ok_header:
        raise ScratchnetError(f"{path}: not a sweep {'file' if kind == 'rows' else 'curves file'} "
                              f"(its columns are {', '.join(header)[:200]}); choose another --out")
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
                fields = next(csv.reader([text]))
                if kind == "rows":
                    row = _parse_row(fields, setup)
                    res.lines.append(Line(_key(row["hidden"], row["lr"], row["seed"]), pos,
                                          end, row))
                else:
                    res.lines.append(Line(_parse_curve(fields, len(header), setup), pos, end))
        except (_Bad, csv.Error) as e:
            res.rejected.append((number, str(e), raw))
        except _OtherSetup:
            raise ScratchnetError(f"{path} holds runs of another setup (data, epochs, "
                                  "activation, …); resuming would mix them: choose another "
                                  "--out") from None
        pos = end
    return res


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


def _rewrite(path: str, header_end: int, lines: list[Line]) -> None:
    """``path`` again with only ``lines``, in that order, streamed from the file itself."""
    with open(path, "rb") as src, atomic_write(path, "wb") as dst:
        dst.write(src.read(header_end))
        for ln in lines:
            src.seek(ln.start)
            dst.write(src.read(ln.end - ln.start))


# ---- the writer ------------------------------------------------------------------------------
def _warn(message: str) -> None:
    print(f"scratchnet: warning: {message}", file=sys.stderr)


class SweepWriter:
    """Appends chunk results to ``out`` and its curves file, creating them with a header.

    On creation both files are checked line by line; what is done is what both files hold
    intact, once.  ``done`` is that set of (hidden, lr, seed) keys."""

    def __init__(self, out: str, setup: str, warn=_warn):
        self.out, self.curves, self.setup = out, curves_path(out), setup
        main, curves = scan(out, "rows", setup), scan(self.curves, "curves", setup)
        dup = _without_duplicates(main) | _without_duplicates(curves)
        in_curves = {ln.key for ln in curves.lines}
        in_main = {ln.key for ln in main.lines}
        missing = [ln for ln in main.lines if ln.key not in in_curves]
        good = [ln for ln in main.lines if ln.key in in_curves]
        good_curves = [ln for ln in curves.lines if ln.key in in_main]
        bad = main.rejected + curves.rejected
        if bad or missing or len(good_curves) != len(curves.lines):
            self._set_aside(main, curves, missing, dup, warn)
            if main.header is not None:
                _rewrite(out, main.header_end, good)
            if curves.header is not None:
                kept = {ln.key for ln in good}
                _rewrite(self.curves, curves.header_end,
                         [ln for ln in good_curves if ln.key in kept])
        if not good and os.path.exists(self.curves):
            os.remove(self.curves)  # curves left from a sweep whose main file is gone
        self.done = {ln.key for ln in good}

    def _set_aside(self, main: Scan, curves: Scan, missing, dup, warn) -> None:
        rejected = [(self.out, *r) for r in main.rejected if r[0]] + \
            [(self.curves, *r) for r in curves.rejected if r[0]]
        if rejected:
            with open(set_aside_path(self.out), "ab") as fh:
                for path, number, why, raw in rejected:
                    fh.write(f"# {path} line {number}: {why}\n".encode())
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

    def write(self, result) -> None:
        # curves first: the main file is the record of what is done
        # floats as repr (the shortest text that reads back as the same number); the curves'
        # values are all floats after the four key columns
        self._append(self.curves, ["hidden", "lr", "seed", "setup",
                                   *(f"train@{e}" for e in result.curve_epochs),
                                   *(f"test@{e}" for e in result.curve_epochs)],
                     [[c[0], repr(c[1]), c[2], c[3], *map(repr, c[4:])]
                      for c in result.curves])
        self._append(self.out, COLUMNS, [[repr(r[c]) if isinstance(r[c], float) else r[c]
                                          for c in COLUMNS] for r in result.rows])
        self.done.update(_key(r["hidden"], r["lr"], r["seed"]) for r in result.rows)

    @staticmethod
    def _append(path: str, header, rows) -> None:
        new = not os.path.exists(path) or os.path.getsize(path) == 0
        with open(path, "a", newline="") as fh:
            wr = csv.writer(fh)
            if new:
                wr.writerow(header)
            wr.writerows(rows)
            fh.flush()
            os.fsync(fh.fileno())

    def put_in_order(self, order: dict) -> None:
        """Rewrite both files with their rows in ``order`` (key → position; keys not in it
        keep their place after the others), atomically, if they are not in that order yet."""
        for path, kind in ((self.out, "rows"), (self.curves, "curves")):
            s = scan(path, kind, self.setup)
            if s.header is None:
                continue
            _without_duplicates(s)
            rank = [order.get(ln.key, len(order) + i) for i, ln in enumerate(s.lines)]
            if rank != sorted(rank) or s.rejected:
                lines = [ln for _, ln in sorted(zip(rank, s.lines), key=lambda t: t[0])]
                _rewrite(path, s.header_end, lines)
