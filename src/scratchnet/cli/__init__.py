"""The ``scratchnet`` command: a thin edge over the core.

Each command group lives in ``scratchnet/cli/<group>.py`` and exposes ``register(sub)``,
which adds its subparsers with ``func=<handler>``.  Command modules import only the standard
library and light scratchnet modules at import time; heavy libraries (matplotlib, torch, dask,
fastapi) are imported inside the handlers, so ``scratchnet train`` starts fast.

Errors a user can act on (:class:`ScratchnetError`) print one line and exit with code 2.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import signal
import sys
import threading

from .. import __version__
from ..core.errors import OptionError, ScratchnetError
from ..training.options import flag

# command group modules, in the order their commands appear in --help
COMMAND_MODULES = ["train", "report", "trust", "speed", "web", "demo"]


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2), as every other scratchnet error."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="scratchnet", description="Small feed-forward neural networks with "
                    "hand-derived backpropagation — the PS5 problem set done right.")
    parser.add_argument("--version", action="version", version=f"scratchnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(f"scratchnet.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"scratchnet.cli.{name}":
                continue  # a command group not built yet
            raise
        mod.register(sub)
    return parser


@contextlib.contextmanager
def signals_as_ctrl_c():
    """SIGTERM and SIGHUP (``timeout``, ``docker stop``, batch schedulers, a closed terminal)
    take the path of Ctrl-C: the handler raises ``KeyboardInterrupt``, which the training
    driver turns into "stop after the last whole slice, keep it, write the outputs".  Yields
    the list of signals received; the exit code is 128 + the first one's number (130 for
    Ctrl-C, 143 for SIGTERM, 129 for SIGHUP).  Only in the main thread (where signals go)."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum, frame):
        received.append(signum)
        raise KeyboardInterrupt

    old = {}
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        s = getattr(signal, name, None)
        if s is not None:
            old[s] = signal.signal(s, handler)
    try:
        yield received
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _let_go_of_stdout() -> None:
    """After an interrupt: flush what stdout can take now, and drop the rest when its reader
    is not reading (a full pipe, a paused pager) — exiting must not hang on it."""
    try:
        fd = sys.stdout.fileno()
        os.set_blocking(fd, False)
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return  # not a real file (a test's capture)
    try:
        sys.stdout.flush()
    except (BlockingIOError, OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
    finally:
        with contextlib.suppress(OSError):
            os.set_blocking(fd, True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    with signals_as_ctrl_c() as received:
        code = _run(args)
        if received:  # the command kept what it had and wrote its outputs
            _let_go_of_stdout()
            return 128 + int(received[0])
    return code


def _run(args) -> int:
    try:
        return int(args.func(args) or 0)
    except OptionError as e:  # a rule between options: worded with the flags (--lr-min)
        print(f"scratchnet: {e.worded(flag)}", file=sys.stderr)
        return 2
    except ScratchnetError as e:
        print(f"scratchnet: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("scratchnet: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `scratchnet predict ... | head`: the reader left, fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # a folder that cannot be created, a file that cannot be written
        where = f"{e.filename}: " if e.filename else ""
        print(f"scratchnet: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except MemoryError:  # sizes are checked up front; this is the last line of defence
        print("scratchnet: not enough memory for this run; use fewer rows, epochs or units",
              file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
