"""The one training driver: the Engine contract, Run.advance in slices, divergence, interrupts
and the bounded history (scratchnet.training.run)."""
import os
import signal

import numpy as np
import pytest

from scratchnet.core.errors import DivergedError
from scratchnet.training.optim import Loop
from scratchnet.training.run import (Engine, History, Outcome, Records, Run, StepEngine,
                                     deferred_interrupts, options_used)
from scratchnet.training.train import (TrainConfig, engine_for, prepare, run_epochs, start_run,
                                       train)

METRICS = ("train_loss", "test_loss", "train_acc", "test_acc")


@pytest.fixture(scope="module")
def prep():
    return prepare(TrainConfig())


def drive(run: Run, pieces) -> Run:
    for n in pieces:
        run.advance(n)
    return run


@pytest.mark.parametrize("config", [dict(epochs=120, lr=1e-2, engine="numpy"),
                                    dict(epochs=120, lr=1e-2, optimizer="adam"),
                                    dict(epochs=120, lr=1e-2, batch_size=16, jitter=0.1,
                                         schedule="cosine")],
                         ids=["gd", "adam", "batches"])
def test_any_slicing_gives_the_same_run_as_train(config):
    cfg = TrainConfig(**config, log_every=25)
    whole = train(cfg)
    prep = whole.prepared
    for pieces in ([120], [1, 2, 3, 50, 64], [7] * 20):
        run = drive(start_run(cfg, prep), pieces)
        assert run.finished and run.stopped == "completed" and run.epoch == 120
        np.testing.assert_array_equal(run.w, whole.model.w)
        for m in METRICS:
            np.testing.assert_array_equal(getattr(run.history, m), getattr(whole.history, m))


def test_advance_returns_the_absolute_epoch_and_a_run_may_start_later(prep):
    cfg = TrainConfig(epochs=50, lr=1e-2, engine="numpy")
    first = start_run(cfg, prep)
    assert first.advance(20) == 20 and first.last["epoch"] == 19
    # a second Run continuing from epoch 20 (the report's segments): absolute epochs
    second = Run(engine_for(cfg, prep), first.w, 50, start=20)
    assert second.advance(10) == 30 and second.history.epochs.tolist() == list(range(20, 30))
    drive(second, [100])
    whole = train(cfg)
    np.testing.assert_array_equal(second.w, whole.model.w)
    np.testing.assert_array_equal(second.history.train_loss, whole.history.train_loss[20:])


def test_engines_declare_what_they_run(prep):
    assert options_used(TrainConfig()) == frozenset()
    assert options_used(TrainConfig(optimizer="adam", l2=0.1)) == {"optimizer", "l2"}
    loop = engine_for(TrainConfig(optimizer="adam", engine="numpy"), prep)
    assert isinstance(loop, Engine) and loop.name == "numpy" and "optimizer" in loop.supports
    step = StepEngine("numpy", run_epochs, prep.layout, "sse", prep.problem, 1e-3)
    assert isinstance(step, Engine) and step.supports == frozenset()
    with pytest.raises(TypeError, match="Engine contract"):
        Run(object(), np.zeros(29), 10)


@pytest.mark.parametrize("make", ["loop", "step"])
def test_infinite_weights_with_a_finite_loss_count_as_divergence(prep, make):
    """--lr 1e308: the sigmoid saturates, so the loss stays finite while w becomes ±inf; the
    run keeps the last epoch whose weights and loss are both finite."""
    cfg = TrainConfig(lr=1e308, epochs=50, engine="numpy")
    engine = engine_for(cfg, prep) if make == "loop" else StepEngine(
        "numpy", run_epochs, prep.layout, "sse", prep.problem, cfg.lr)
    with np.errstate(all="ignore"):
        run = drive(Run(engine, np.random.RandomState(0).randn(29), 50, slice_epochs=7), [50])
    assert run.stopped == "diverged" and run.finished
    assert np.all(np.isfinite(run.w)) and np.all(np.isfinite(run.history.train_loss))
    assert len(run.history) == run.diverged_at and run.epoch == max(run.diverged_at - 1, 0)
    with pytest.raises(DivergedError, match=r"diverged at epoch \d+ .*keeping epoch") as e:
        train(cfg)
    assert np.all(np.isfinite(e.value.result.model.w))


def test_divergence_right_at_a_slice_start_keeps_the_epoch_before(prep):
    """The readable engine without its own check (the compiled one's way): a slice whose
    first epoch already has a broken loss; the Run finds the weights of the epoch before by
    replaying the previous slice."""
    cfg = dict(output="identity", lr=5.0, epochs=2000, engine="numpy")
    with pytest.raises(DivergedError) as e:
        train(TrainConfig(**cfg, log_every=100))
    d = e.value.result.final["epochs"] + 1  # the first broken epoch
    P = prepare(TrainConfig(**cfg)).problem
    layout = e.value.result.model.layout
    engine = StepEngine("numpy", run_epochs, layout, "sse", P, 5.0)
    w0 = np.random.RandomState(0).randn(layout.n_params)
    with np.errstate(all="ignore"):
        run = drive(Run(engine, w0, 2000, slice_epochs=d), [2000])  # slice 2 starts at d
    assert run.diverged_at == d and run.epoch == d - 1
    np.testing.assert_array_equal(run.w, e.value.result.model.w)


class Flaky:
    """An engine that raises KeyboardInterrupt in the middle of its n-th call, after changing
    the weights and its own state: the Run must undo both."""

    def __init__(self, inner: Loop, when: int):
        self.inner, self.when, self.calls = inner, when, 0
        for name in ("name", "supports", "keeps_last_finite", "stops_early"):
            setattr(self, name, getattr(inner, name))

    @property
    def best_epoch(self):
        return self.inner.best_epoch

    def epochs(self, w, start, stop, out) -> Outcome:
        self.calls += 1
        if self.calls == self.when:
            self.inner.epochs(w, start, start + 1, out)  # half done: w and moments moved
            raise KeyboardInterrupt
        return self.inner.epochs(w, start, stop, out)

    def rollback(self):
        self.inner.rollback()

    def finish(self, w):
        return self.inner.finish(w)


def test_an_interrupted_slice_is_undone_and_the_run_can_go_on(prep):
    cfg = TrainConfig(epochs=60, lr=1e-2, optimizer="adam")
    w0 = np.random.RandomState(0).randn(29)  # the seed-0 draw train() starts from
    run = Run(Flaky(engine_for(cfg, prep), when=3), w0, 60, slice_epochs=10)
    run.advance(60)
    assert run.stopped == "interrupted" and run.epoch == 20 and len(run.history) == 20
    assert not run.finished
    run.advance(60)  # going on after Ctrl-C gives the uninterrupted run exactly
    whole = train(cfg)
    assert run.stopped == "completed" and run.epoch == 60
    np.testing.assert_array_equal(run.w, whole.model.w)
    np.testing.assert_array_equal(run.history.train_loss, whole.history.train_loss)


def test_an_interrupt_in_a_callback_keeps_the_run(prep):
    seen = []

    def on_log(t, tr, te):
        seen.append(t)
        if t == 30:
            raise KeyboardInterrupt  # Ctrl-C landing in the log line

    r = train(TrainConfig(epochs=100, lr=1e-2, log_every=10, engine="numpy"), on_log=on_log)
    assert r.stopped == "interrupted" and r.final["epochs"] == 40 and len(r.history) == 40
    np.testing.assert_array_equal(r.model.w, train(TrainConfig(epochs=40, lr=1e-2,
                                                               engine="numpy")).model.w)


def test_deferred_interrupts_deliver_after_the_block():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("after the signal")  # still runs: the signal waits
    assert done == ["after the signal"]


def test_records_stay_within_their_budget_and_say_which_epochs_they_keep():
    rec = Records(budget=64)
    for start in range(0, 1000, 37):  # slices of any length
        n = min(37, 1000 - start)
        slab = History(*(np.arange(start, start + n, dtype=float) for _ in METRICS))
        rec.append(start, slab, n)
        assert rec.n <= 64
    h = rec.view()
    assert rec.every == 16 and len(h) == 63  # epochs 0, 16, …, 992
    np.testing.assert_array_equal(h.epochs, np.arange(0, 1000, 16))
    np.testing.assert_array_equal(h.train_loss, h.epochs.astype(float))  # row ↔ its epoch
    assert rec.epoch.size <= 64  # storage: the budget, not the epochs


def test_a_thinned_history_writes_its_epochs(tmp_path, prep):
    cfg = TrainConfig(epochs=300, lr=1e-2, engine="numpy")
    run = Run(engine_for(cfg, prep), np.random.RandomState(0).randn(29), 300, history_budget=50)
    drive(run, [300])
    h = run.history
    assert len(h) <= 50 and h.epochs[0] == 0 and np.all(np.diff(h.epochs) == h.epochs[1])
    full = train(cfg).history
    np.testing.assert_array_equal(h.train_loss, full.train_loss[h.epochs])
    h.to_csv(tmp_path / "h.csv")
    lines = (tmp_path / "h.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,") and [int(x.split(",")[0]) for x in lines[1:]] == \
        h.epochs.tolist()


def test_train_no_longer_allocates_the_history_up_front(prep):
    """1e9 epochs used to mean 4 arrays of 8 GB allocated before the first epoch."""
    cfg = TrainConfig(epochs=100, lr=1e-2, engine="numpy")
    run = Run(engine_for(cfg, prep), np.random.RandomState(0).randn(29), 10**9)
    run.advance(5)
    assert run.records.epoch.size < 1000 and run.epoch == 5 and not run.finished


def test_the_monitor_forgets_an_interrupted_slice(prep):
    cfg = TrainConfig(epochs=30, lr=1e-2, monitor=True)
    run = Run(Flaky(engine_for(cfg, prep), when=2), np.random.RandomState(0).randn(29), 30,
              slice_epochs=10)
    run.advance(30)
    assert run.stopped == "interrupted" and run.engine.inner.monitor.epochs == list(range(10))
    run.advance(30)
    assert run.engine.inner.monitor.epochs == list(range(30))  # no epoch twice
    np.testing.assert_array_equal(run.w, train(cfg).model.w)
