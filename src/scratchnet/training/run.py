"""One training driver: an explicit engine contract and a :class:`Run` that advances in slices.

Every place that trains a network — ``train()``, the estimators, the ensembles' progress loop,
the playground, the report's snapshots — drives the same object::

    from scratchnet.training.run import Run, engine_for
    from scratchnet.training.train import TrainConfig, prepare

    config = TrainConfig(epochs=5000)
    prep = prepare(config)
    run = Run(engine_for(config, prep), init_weights(prep.layout), config.epochs)
    while not run.finished:
        run.advance(500)             # whole slices only: returns the epochs recorded so far
        print(run.epoch, run.history.train_loss[-1])   # anything: a log line, a web frame
    run.finish()                     # early stopping's best weights; run.w is the result

State between slices: ``run.w`` (the weights), ``run.history`` (one record per epoch, see
below), ``run.epoch`` (absolute epoch count: the number of updates behind ``run.w``),
``run.stopped`` (None while it may go on; completed | early_stopped | diverged | interrupted),
``run.best_epoch`` and ``run.diverged_at``.

Ctrl-C (a ``KeyboardInterrupt``) inside a slice drops that slice — weights, records and the
engine's own state go back to where the slice began — and marks the run ``interrupted``;
``advance`` may be called again to go on.  Between slices the state changes with interrupts
held back (:func:`deferred_interrupts`), so a run is never half-updated.

A diverged run keeps the last epoch whose weights *and* loss are both finite: a saturated
sigmoid keeps the loss finite while ``w`` runs off to ±inf, so the loss alone is not enough.

The history grows with the run and stays bounded: up to :data:`HISTORY_BUDGET` records every
epoch is kept; beyond it every k-th epoch (k doubling as needed), which ``history.epoch`` says.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ..core.errors import ScratchnetError
from ..core.io import write_csv

METRICS = ("train_loss", "test_loss", "train_acc", "test_acc")
# the training options beyond the problem set's plain full-batch gradient descent; an engine
# declares which of them it runs in ``supports``
ENGINE_OPTIONS = frozenset({"optimizer", "batch_size", "schedule", "l2", "l1",
                            "early_stopping", "jitter", "monitor"})
HISTORY_BUDGET = 1 << 20  # records kept at full resolution (32 MiB); then every k-th epoch
SLICE = 1000  # epochs per slice by default: a fraction of a second for the PS5 network


def options_used(config) -> frozenset:
    """The options of ``config`` beyond plain full-batch gradient descent (see
    ``ENGINE_OPTIONS``)."""
    used = set()
    if config.optimizer not in ("gd", "sgd"):
        used.add("optimizer")
    for name in ("batch_size",):
        if getattr(config, name) is not None:
            used.add(name)
    if config.schedule != "constant":
        used.add("schedule")
    for name in ("l2", "l1", "early_stopping", "jitter", "monitor"):
        if getattr(config, name):
            used.add(name)
    return frozenset(used)


# ---- the contract ---------------------------------------------------------------------------
@dataclass
class Outcome:
    """What one call of ``Engine.epochs`` did: ``recorded`` rows of ``out`` were filled, and
    ``ended`` says why it stopped before ``stop`` (None: it ran every epoch asked)."""

    recorded: int
    ended: str | None = None  # None | "early_stopped" | "diverged"


@runtime_checkable
class Engine(Protocol):
    """A training engine bound to one problem (layout, loss, data, learning rate).

    ``epochs(w, start, stop, out)`` runs epochs start..stop−1 as the problem set orders them:
    record the metrics of the current weights into row t − start of ``out`` (any object with
    the four arrays ``train_loss, test_loss, train_acc, test_acc``), then update ``w`` in
    place.  Epoch t is absolute (schedules, seeded shuffles and jitter depend on it).

    Declared capabilities instead of probing:

    * ``supports`` — the options of ``ENGINE_OPTIONS`` it runs (an empty set: plain gradient
      descent);
    * ``keeps_last_finite`` — it checks every epoch itself and, at the first whose loss or
      weights are not finite, puts back the previous weights and returns
      ``Outcome(t − start + 1, "diverged")``; otherwise the Run finds the epoch by replaying;
    * ``stops_early`` — it may return ``Outcome(n, "early_stopped")`` with the best weights in
      ``w``; then ``best_epoch`` is that epoch.
    """

    name: str
    supports: frozenset
    keeps_last_finite: bool
    stops_early: bool

    def epochs(self, w: np.ndarray, start: int, stop: int, out) -> Outcome: ...

    def rollback(self) -> None:
        """Forget the state the interrupted call of ``epochs`` changed (optimizer moments…)."""

    def finish(self, w: np.ndarray) -> bool:
        """At the end of a full run: put back better weights seen on the way (True if so)."""

    @property
    def best_epoch(self) -> int | None: ...


class StepEngine:
    """Any plain gradient-descent function with the signature of ``train.run_epochs`` —
    ``fn(layout, loss, w, prob, lr, start, stop, hist)`` filling ``hist[start:stop]`` — as an
    Engine: the compiled ``scratchnet.engines.fast.run_epochs`` among them.

    Plain gradient descent does the same at every epoch index, so the function is called on
    rows 0..n−1 of the slice's records; an engine whose epochs depend on t (a schedule, a
    seeded shuffle) implements ``Engine`` itself instead."""

    supports = frozenset()
    keeps_last_finite = False
    stops_early = False
    best_epoch = None
    monitor = None

    def __init__(self, name: str, fn, layout, loss: str, prob, lr: float):
        self.name, self.fn = name, fn
        self.layout, self.loss, self.prob, self.lr = layout, loss, prob, lr

    def epochs(self, w, start, stop, out) -> Outcome:
        self.fn(self.layout, self.loss, w, self.prob, self.lr, 0, stop - start, out)
        return Outcome(stop - start)

    def rollback(self) -> None:
        pass

    def finish(self, w) -> bool:
        return False


# ---- interrupts -----------------------------------------------------------------------------
_HELD = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP"))
              if s is not None)


@contextlib.contextmanager
def deferred_interrupts():
    """Hold back Ctrl-C (and SIGTERM/SIGHUP where a handler raises for them) while the block
    runs; a signal that arrives meanwhile is delivered — its handler called — when it ends.
    Outside the main thread (where Python delivers no signals) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[tuple[int, object]] = []
    old = {}
    for s in _HELD:
        h = signal.getsignal(s)
        if callable(h):  # a Python handler (raising KeyboardInterrupt): hold it
            old[s] = h
            signal.signal(s, lambda signum, frame: held.append((signum, frame)))
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if held:
            signum, frame = held[0]
            old[signum](signum, frame)  # deliver it now (usually: raise KeyboardInterrupt)


@dataclass
class History:
    """One record per epoch: the loss and accuracy of the weights after t updates.

    ``epoch`` is None when row t is epoch t (every epoch kept); a run longer than the history
    budget keeps every k-th epoch only (``scratchnet.training.run.Records``), and then
    ``epoch[i]`` is the epoch of row i."""

    train_loss: np.ndarray
    test_loss: np.ndarray
    train_acc: np.ndarray
    test_acc: np.ndarray
    epoch: np.ndarray | None = None

    @classmethod
    def empty(cls, n: int) -> "History":
        return cls(*(np.full(n, np.nan) for _ in range(4)))

    def truncate(self, n: int) -> "History":
        return History(self.train_loss[:n].copy(), self.test_loss[:n].copy(),
                       self.train_acc[:n].copy(), self.test_acc[:n].copy(),
                       None if self.epoch is None else self.epoch[:n].copy())

    @property
    def epochs(self) -> np.ndarray:
        """The epoch of every row."""
        return np.arange(len(self)) if self.epoch is None else self.epoch

    def __len__(self) -> int:
        return len(self.train_loss)

    def to_csv(self, path: str) -> None:
        """epoch, train_loss, test_loss, train_acc, test_acc; written atomically."""
        cols = (self.train_loss, self.test_loss, self.train_acc, self.test_acc)
        write_csv(path, ["epoch", "train_loss", "test_loss", "train_acc", "test_acc"],
                  ([int(t)] + [repr(float(c[i])) for c in cols]
                   for i, t in enumerate(self.epochs)))


# ---- the records ----------------------------------------------------------------------------
class Records:
    """One record per epoch, growing by doubling; beyond ``budget`` records only every k-th
    epoch is kept (k = 2, 4, …), so memory stays within ~32 bytes × budget."""

    def __init__(self, budget: int = HISTORY_BUDGET):
        self.budget = max(int(budget), 2)
        self.every = 1  # keep epochs with epoch % every == 0
        self.n = 0
        self.epoch = np.zeros(0, np.int64)
        self.cols = {m: np.zeros(0) for m in METRICS}

    def _reserve(self, extra: int) -> None:
        need = self.n + extra
        if need <= self.epoch.size:
            return
        cap = min(max(need, 2 * self.epoch.size, 16), max(need, self.budget))
        grow = cap - self.epoch.size
        self.epoch = np.concatenate([self.epoch, np.zeros(grow, np.int64)])
        for m in METRICS:
            self.cols[m] = np.concatenate([self.cols[m], np.full(grow, np.nan)])

    def append(self, first_epoch: int, slab, n: int) -> None:
        """Rows 0..n−1 of ``slab`` are epochs first_epoch.. first_epoch + n − 1."""
        if n <= 0:
            return
        epochs = np.arange(first_epoch, first_epoch + n)
        keep = epochs % self.every == 0
        while self.n + int(keep.sum()) > self.budget:
            self._thin()
            keep = epochs % self.every == 0
        k = int(keep.sum())
        self._reserve(k)
        self.epoch[self.n:self.n + k] = epochs[keep]
        for m in METRICS:
            self.cols[m][self.n:self.n + k] = np.asarray(getattr(slab, m))[:n][keep]
        self.n += k

    def _thin(self) -> None:
        self.every *= 2
        keep = np.flatnonzero(self.epoch[:self.n] % self.every == 0)
        k = keep.size
        self.epoch[:k] = self.epoch[keep]
        for m in METRICS:
            self.cols[m][:k] = self.cols[m][keep]
        self.n = k

    def slab(self, n: int):
        """Where an engine records the next ``n`` epochs (rows 0..n−1)."""
        return _Slab(n)

    def drop_from(self, epoch: int) -> None:
        """Forget the records of epochs ≥ ``epoch``."""
        self.n = int(np.searchsorted(self.epoch[:self.n], epoch))

    def view(self):
        """The records as a :class:`History` (copies)."""
        plain = self.every == 1 and (self.n == 0 or self.epoch[0] == 0)  # row t = epoch t
        return History(*(self.cols[m][:self.n].copy() for m in METRICS),
                       epoch=None if plain else self.epoch[:self.n].copy())


class _Slab:
    def __init__(self, n: int):
        for m in METRICS:
            setattr(self, m, np.full(n, np.nan))


def _finite_epochs(slab, n: int) -> int:
    """How many leading rows of ``slab`` have a finite training loss."""
    bad = np.flatnonzero(~np.isfinite(slab.train_loss[:n]))
    return n if bad.size == 0 else int(bad[0])


# ---- the driver -----------------------------------------------------------------------------
class Run:
    """A training run of ``epochs`` epochs of ``engine`` from the weights ``w0``, advanced in
    slices (see the module docstring for how to drive it)."""

    def __init__(self, engine: Engine, w0: np.ndarray, epochs: int, *, start: int = 0,
                 slice_epochs: int = SLICE, history_budget: int = HISTORY_BUDGET,
                 records=None):
        if not isinstance(engine, Engine):
            raise TypeError(f"{engine!r} does not implement the Engine contract")
        self.engine = engine
        self.w = np.array(w0, dtype=float)  # (P,) the weights after `epoch` updates
        self.epochs = int(epochs)  # the absolute epoch the run ends at
        self.epoch = int(start)  # absolute: updates applied to self.w
        self.slice = max(1, int(slice_epochs))
        # where the epochs' records go: ``slab(n)``, ``append(start, slab, n)``,
        # ``drop_from(epoch)`` and ``n``; the ensembles bring their own (K networks)
        self.records = Records(history_budget) if records is None else records
        self.stopped: str | None = None
        self.diverged_at: int | None = None  # the first epoch whose loss or weights broke
        self.bad_loss: float | None = None
        self._best: int | None = None
        self._anchor: tuple[int, np.ndarray] | None = None  # (start, w) of the last slice

    # ---- state ----------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        """No more epochs will run (completed, early stopped or diverged)."""
        return self.stopped in ("completed", "early_stopped", "diverged") or \
            self.epoch >= self.epochs and self.stopped != "interrupted"

    @property
    def history(self):
        return self.records.view()

    @property
    def recorded(self) -> int:
        """Epochs recorded (the history's length when no epoch is thinned out)."""
        return self.records.n

    @property
    def best_epoch(self) -> int | None:
        return self._best

    @property
    def last(self) -> dict:
        """The latest record: {"epoch", "train_loss", "test_loss", "train_acc", "test_acc"}."""
        r = self.records
        if r.n == 0:
            return {}
        return {"epoch": int(r.epoch[r.n - 1]),
                **{m: float(r.cols[m][r.n - 1]) for m in METRICS}}

    # ---- driving --------------------------------------------------------------------------
    def advance(self, n_epochs: int | None = None) -> int:
        """Run up to ``n_epochs`` more epochs (all that remain when None) in whole slices;
        returns the absolute epoch reached.  Stops early on divergence, early stopping or an
        interrupt (``self.stopped`` says which)."""
        if self.stopped == "interrupted":
            self.stopped = None  # going on after an interrupt
        target = self.epochs if n_epochs is None else min(self.epochs,
                                                           self.epoch + max(int(n_epochs), 0))
        while self.stopped is None and self.epoch < target:
            self._slice(min(self.epoch + self.slice, target))
        if self.stopped is None and self.epoch >= self.epochs:
            self.stopped = "completed"
        return self.epoch

    def _slice(self, stop: int) -> None:
        start, w_start = self.epoch, self.w.copy()
        slab = self.records.slab(stop - start)
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                outcome = self.engine.epochs(self.w, start, stop, slab)
        except KeyboardInterrupt:
            with deferred_interrupts():
                self.w[:] = w_start  # the slice in flight is dropped; all before it is kept
                self.engine.rollback()
                self.records.drop_from(start)
                self.stopped = "interrupted"
            return
        with deferred_interrupts():
            self._commit(start, stop, w_start, slab, outcome)

    def _commit(self, start: int, stop: int, w_start, slab, outcome: Outcome) -> None:
        n, ended = outcome.recorded, outcome.ended
        if ended is None and not self.engine.keeps_last_finite:
            good = _finite_epochs(slab, n)
            if good < n or not np.all(np.isfinite(self.w)):
                n, ended = self._replay(start, w_start, slab, good), "diverged"
        if ended == "diverged":
            # rows 0..n−2 are finite; row n − 1 is the broken epoch, w the weights before it
            self.diverged_at = start + n - 1
            bad = slab.train_loss[n - 1] if n - 1 < len(slab.train_loss) else np.nan
            self.bad_loss = float(bad)
            self.records.append(start, slab, n - 1)
            self.epoch = max(self.diverged_at - 1, 0)
            self.stopped = "diverged"
            return
        self.records.append(start, slab, n)
        self.epoch = start + n
        self._anchor = (start, w_start)
        if ended == "early_stopped":
            self._best = self.engine.best_epoch
            self.stopped = "early_stopped"

    def _one_epoch(self, t: int):
        one = _Slab(1)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            self.engine.epochs(self.w, t, t + 1, one)
        return one

    def _replay(self, start: int, w_start, slab, good: int) -> int:
        """After a slice that broke: find its first epoch whose loss or weights are not finite
        by running it again one epoch at a time (the same engine, so the same numbers).
        Leaves ``self.w`` at the weights of the epoch before it and returns the number of
        rows up to and including the broken one (row ``len(slab)``: the weights after the
        slice's last update broke, an epoch not recorded yet)."""
        if good == 0 and start > 0 and self._anchor is not None:
            # the slice's very first weights are broken: the weights before them come from
            # replaying the previous slice (its weights were all finite: inf never comes back)
            a_start, a_w = self._anchor
            self.w[:] = a_w
            for t in range(a_start, start - 1):
                self._one_epoch(t)
            return 1
        self.w[:] = w_start
        prev = w_start.copy()
        for i in range(good + 1):
            if not np.all(np.isfinite(self.w)):  # the weights of epoch start + i broke
                if i < len(slab.train_loss):
                    slab.train_loss[i] = np.nan
                self.w[:] = prev
                return i + 1
            if i == good:  # the loss of epoch start + i is not finite
                if i > 0:
                    self.w[:] = prev
                return i + 1
            prev = self.w.copy()
            self._one_epoch(start + i)
        return good + 1  # pragma: no cover - the loop always returns

    def finish(self) -> bool:
        """End the run: a run that went to its end may get better weights seen on the way
        (early stopping's rule); returns True when it did.  Safe to call once, at the end."""
        if self.stopped != "completed":
            return False
        restored = bool(self.engine.finish(self.w))
        if restored:
            self._best = self.engine.best_epoch
        return restored


def check_engine_runs(engine: Engine, used: frozenset) -> None:
    """A programming error when an engine is asked for options it did not declare."""
    missing = used - engine.supports
    if missing:
        raise ScratchnetError(f"the {engine.name} engine does not run "
                              f"{', '.join(sorted(missing))}")


__all__ = ["Engine", "History", "Outcome", "Run", "StepEngine", "Records", "deferred_interrupts",
           "options_used", "ENGINE_OPTIONS", "METRICS", "HISTORY_BUDGET"]
