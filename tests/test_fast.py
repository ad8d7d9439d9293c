"""The compiled fast path computes the readable engine's numbers (to 1e-12, relative)."""
import json
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from scratchnet.engines import fast
from scratchnet.core.activations import HIDDEN_ACTIVATIONS
from scratchnet.core.errors import ScratchnetError
from scratchnet.core.network import Layout, init_weights
from scratchnet.training.train import (History, Problem, TrainConfig, prepare, run_epochs, select_engine,
                              train)

SRC = os.path.join(os.path.dirname(__file__), "..", "src")
METRICS = ("train_loss", "test_loss", "train_acc", "test_acc")
PAIRS = [("sigmoid", "sse"), ("sigmoid", "bce"), ("identity", "sse"), ("softmax", "ce"),
         ("softmax", "sse"), ("softmax", "bce")]


def rel_err(a, b) -> float:
    """max |a − b| / max(1, |b|) over the finite values; NaN and ±inf in the same places."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    assert np.array_equal(np.isposinf(a), np.isposinf(b))
    assert np.array_equal(np.isneginf(a), np.isneginf(b))
    ok = np.isfinite(b)
    if not ok.any():
        return 0.0
    return float(np.max(np.abs(a[ok] - b[ok]) / np.maximum(1.0, np.abs(b[ok]))))


@pytest.fixture(scope="module")
def problems():
    binary = prepare(TrainConfig()).problem  # the PS5 stand-in: 80 train / 20 test rows
    three = prepare(TrainConfig(data="gaussians", n_classes=3, n_samples=60, output="softmax",
                                loss="ce")).problem
    return {1: binary, 3: three}


def both_engines(layout, loss, P, lr, epochs, seed=0, scale=1.0):
    w0 = init_weights(layout, "normal", seed) * scale
    runs = []
    for run in (run_epochs, fast.run_epochs):
        w, h = w0.copy(), History.empty(epochs)
        run(layout, loss, w, P, lr, 0, epochs, h)
        runs.append((w, h))
    return runs


def assert_same(runs, tol=1e-12):
    (w1, h1), (w2, h2) = runs
    assert rel_err(w2, w1) <= tol
    for m in METRICS:
        assert rel_err(getattr(h2, m), getattr(h1, m)) <= tol, m


def test_available():
    assert fast.available()
    assert select_engine("auto")[0] == "fast"
    assert select_engine("fast")[1] is fast.run_epochs


@pytest.mark.parametrize("hidden", [(), (5,), (4, 3)], ids=["0hidden", "1hidden", "2hidden"])
@pytest.mark.parametrize("out,loss", PAIRS, ids=[f"{o}-{l}" for o, l in PAIRS])
@pytest.mark.parametrize("act", HIDDEN_ACTIVATIONS)
def test_fast_equals_readable_engine(problems, act, out, loss, hidden):
    P = problems[3 if out == "softmax" else 1]
    layout = Layout.build(2, hidden, P.y_train.shape[1], act, out)
    assert_same(both_engines(layout, loss, P, lr=3e-3, epochs=25, seed=len(hidden), scale=0.7))


def test_ps5_job_long_run(problems):
    """The problem set's run: 2-7-1 sigmoid, ½Σ loss, η = 1e-4; 3000 epochs stay equal."""
    layout = Layout.build(2, 7)
    runs = both_engines(layout, "sse", problems[1], lr=1e-4, epochs=3000)
    assert_same(runs)
    assert runs[1][1].train_loss[-1] < runs[1][1].train_loss[0]


def test_chunks_continue_exactly(problems):
    """run_epochs(start, stop) in pieces fills the same history as one call."""
    layout, P = Layout.build(2, 7), problems[1]
    w1, h1 = init_weights(layout), History.empty(30)
    fast.run_epochs(layout, "sse", w1, P, 1e-3, 0, 30, h1)
    w2, h2 = init_weights(layout), History.empty(30)
    for a, b in ((0, 7), (7, 8), (8, 30)):
        fast.run_epochs(layout, "sse", w2, P, 1e-3, a, b, h2)
    assert np.array_equal(w1, w2)
    assert np.array_equal(h1.test_loss, h2.test_loss)


def test_many_rows_split_over_cores(problems, monkeypatch):
    """The row-parallel path (used from fast.PARALLEL_ROWS rows on) gives the same numbers."""
    monkeypatch.setattr(fast, "PARALLEL_ROWS", 10)
    monkeypatch.setattr(fast, "BLOCK_ROWS", 16)  # 80 rows → 5 blocks, 20 test rows → 2
    monkeypatch.setattr(fast, "_threads", lambda: 2)
    layout = Layout.build(2, (6, 4), 1, "tanh")
    assert_same(both_engines(layout, "bce", problems[1], lr=1e-2, epochs=40))


def test_diverging_run_keeps_numpy_semantics(problems):
    """Non-finite losses run on as in numpy (train() detects them and replays)."""
    layout = Layout.build(2, 5, 1, "relu", "identity")
    with np.errstate(all="ignore"):
        runs = both_engines(layout, "sse", problems[1], lr=0.5, epochs=120, seed=1)
        assert not np.isfinite(runs[0][1].train_loss[-1])
    assert_same(runs)


def test_train_uses_fast_engine_and_matches_numpy():
    cfg = TrainConfig(epochs=500, lr=1e-3)
    r_fast, r_np = train(cfg), train(replace(cfg, engine="numpy"))
    assert (r_fast.engine, r_np.engine) == ("fast", "numpy")
    assert rel_err(r_fast.model.w, r_np.model.w) <= 1e-12
    assert rel_err(r_fast.history.test_loss, r_np.history.test_loss) <= 1e-12


def test_faithful_matches_problem_set_reference():
    """--faithful with the fast engine reproduces the problem set's procedure to 1e-9."""
    sys.path.insert(0, os.path.dirname(__file__))
    try:
        import ps5_reference
    finally:
        sys.path.pop(0)
    from scratchnet.core.data import bundled_csv

    epochs = 400
    w_ref, tr_ref, te_ref = ps5_reference.run(bundled_csv("ps5"), epochs)
    r = train(TrainConfig(epochs=epochs, faithful=True))
    assert r.engine == "fast"
    np.testing.assert_allclose(r.model.w, w_ref, rtol=0, atol=1e-9)
    np.testing.assert_allclose(r.history.train_loss, tr_ref, rtol=0, atol=1e-9)
    np.testing.assert_allclose(r.history.test_loss, te_ref, rtol=0, atol=1e-9)


def test_exp_matches_numpy():
    x = -np.concatenate([np.linspace(0, 40, 2001), np.abs(np.random.RandomState(0).randn(500))
                         * 30, [0.0, 1e-300, 5e-324, 700.0]])
    got = np.array([fast._exp_neg(v) for v in x])
    want = np.exp(x)
    assert np.max(np.abs(got - want) / want) < 4.5e-16  # about two units in the last place
    assert fast._exp_neg(-800.0) < 1e-300  # flushed, but still ~0


def test_nan_and_inf_propagate_as_in_numpy(problems):
    """A NaN weight must make the loss NaN (that is how divergence is detected), and ±inf
    inputs saturate the sigmoid as numpy's does."""
    assert np.isnan(fast._exp_neg(np.nan))
    assert fast._exp_neg(-np.inf) < 1e-300
    for act in HIDDEN_ACTIVATIONS:
        layout = Layout.build(2, (4, 3), 1, act)
        w0 = init_weights(layout, "normal", 0)
        w0[5] = np.nan
        runs = []
        with np.errstate(all="ignore"):
            for run in (run_epochs, fast.run_epochs):
                w, h = w0.copy(), History.empty(3)
                run(layout, "sse", w, problems[1], 1e-2, 0, 3, h)
                runs.append((w, h))
        assert np.isnan(runs[1][1].train_loss).all(), act
        assert_same(runs)


def test_empty_range_is_a_no_op(problems):
    layout = Layout.build(2, 7)
    w = init_weights(layout)
    h = History.empty(3)
    fast.run_epochs(layout, "sse", w, problems[1], 1e-3, 2, 2, h)
    assert np.array_equal(w, init_weights(layout)) and np.isnan(h.train_loss).all()


def run_python(code: str, **env) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": SRC, **env}, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_fallback_without_numba():
    """Without numba: available() is False, auto takes numpy, --engine fast says why."""
    code = ("import sys, json; sys.modules['numba'] = None\n"
            "from scratchnet.engines import fast\nfrom scratchnet.training import train\n"
            "from scratchnet.core.errors import ScratchnetError\n"
            "try:\n    train.select_engine('fast'); msg = ''\n"
            "except ScratchnetError as e:\n    msg = str(e)\n"
            "r = train.train(train.TrainConfig(epochs=20))\n"
            "print(json.dumps([fast.available(), train.select_engine('auto')[0], msg, "
            "r.engine]))")
    avail, auto, msg, used = json.loads(run_python(code))
    assert (avail, auto, used) == (False, "numpy", "numpy")
    assert "numba" in msg


def test_compiled_code_is_cached_across_processes(problems):
    """A fresh process loads the compiled training loop from numba's disk cache."""
    layout = Layout.build(2, 7)
    fast.run_epochs(layout, "sse", init_weights(layout), problems[1], 1e-4, 0, 2,
                    History.empty(2))  # compiles and writes the cache if needed
    code = ("import json; from scratchnet.engines import fast\nfrom scratchnet.training import train\n"
            "r = train.train(train.TrainConfig(epochs=50))\n"
            "s = fast._epochs.stats\n"
            "print(json.dumps([r.engine, sum(s.cache_hits.values()), "
            "sum(s.cache_misses.values())]))")
    engine, hits, misses = json.loads(run_python(code))
    assert engine == "fast" and hits >= 1 and misses == 0


def test_train_command_imports_no_heavy_library():
    code = ("import sys; from scratchnet.cli import main\n"
            "main(['train', '--epochs', '30', '--quiet'])\n"
            "heavy = [m for m in ('torch', 'matplotlib', 'sklearn', 'scipy.optimize') "
            "if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    assert run_python(code) == "HEAVY []"


def test_unknown_engine_is_a_user_error():
    with pytest.raises(ScratchnetError):
        select_engine("turbo")


def test_problem_with_more_test_rows_than_train_rows(problems):
    """Test rows are cut into as many blocks as needed."""
    P = problems[1]
    Q = Problem(P.x_test, P.y_test, P.x_train, P.y_train, P.l_test, P.l_train, P.threshold)
    assert_same(both_engines(Layout.build(2, 3), "sse", Q, lr=1e-2, epochs=10))


# ---- every option of optim.Loop, compiled ---------------------------------------------------
from itertools import product  # noqa: E402
from types import SimpleNamespace  # noqa: E402

from scratchnet.training.optim import OPTIMIZERS, SCHEDULES, Hyper, Loop, Schedule  # noqa: E402
from scratchnet.training.run import ENGINE_OPTIONS  # noqa: E402

EXTRAS = list(product((None, 24), (0.0, 0.3), ((0.0, 0.0), (0.02, 0.0), (0.02, 0.01)),
                      (None, 2)))  # batch size × jitter × (λ₂, λ₁) × patience


def loop_pair(P, layout, loss, lr, opt="gd", sched="constant", batch=None, sigma=0.0,
              l2=0.0, l1=0.0, patience=None):
    """The numpy loop and the compiled one, bound to the same problem and options."""
    kw = dict(optimizer=opt, hyper=Hyper(momentum=0.8, beta1=0.85, beta2=0.99, rho=0.9,
                                         eps=1e-7),
              schedule=Schedule(sched, step_size=3, gamma=0.7, lr_min=lr / 10, period=8),
              batch_size=batch, l2=l2, l1=l1, patience=patience, jitter=sigma, seed=3)
    return Loop(**kw).bind(layout, loss, P, lr), fast.CompiledLoop(**kw).bind(layout, loss, P,
                                                                              lr)


def run_slices(engine, w0, slices):
    """The engine driven slice by slice as run.Run drives it: (w, history rows, outcomes)."""
    w, outs = w0.copy(), []
    hist = History.empty(slices[-1][1])
    for a, b in slices:
        slab = History.empty(b - a)
        outcome = engine.epochs(w, a, b, slab)
        outs.append((outcome.recorded, outcome.ended))
        for m in METRICS:
            getattr(hist, m)[a:a + outcome.recorded] = getattr(slab, m)[:outcome.recorded]
        if outcome.ended:
            break
    return w, hist, outs, engine.finish(w), engine.best_epoch


def assert_same_run(a, b, tol=1e-12):
    (w1, h1, o1, f1, b1), (w2, h2, o2, f2, b2) = a, b
    assert o2 == o1 and f2 == f1 and b2 == b1
    assert_same([(w1, h1), (w2, h2)], tol)


@pytest.mark.parametrize("sched", list(SCHEDULES))
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_every_option_combination_compiled(problems, opt, sched):
    """optimizer × schedule × batch × jitter × penalty × early stopping: the compiled loop
    gives the numpy loop's weights and records to 1e-12, across slices (state carried)."""
    layout = Layout.build(2, (5,), 1, "tanh")
    lr = 0.02 if opt in ("rmsprop", "adam") else 5e-3
    w0 = init_weights(layout, "normal", 1) * 0.7
    stopped = 0
    for batch, sigma, (l2, l1), patience in EXTRAS:
        pair = loop_pair(problems[1], layout, "sse", lr, opt, sched, batch, sigma, l2, l1,
                         patience)
        runs = [run_slices(e, w0, [(0, 4), (4, 5), (5, 12)]) for e in pair]
        assert_same_run(*runs)
        stopped += runs[1][2][-1][1] == "early_stopped"
    assert len(EXTRAS) == 24


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_every_option_on_rows_split_over_cores(problems, monkeypatch, opt):
    """The row-parallel path with options (every optimizer, mini-batches, jitter, penalties,
    early stopping): the numpy loop's numbers.  It raised "Sizes of ... w do not match" on
    every path but plain gradient descent (scratchnet train --data moons --n-samples 25000
    --optimizer adam: a traceback)."""
    monkeypatch.setattr(fast, "PARALLEL_ROWS", 10)
    monkeypatch.setattr(fast, "BLOCK_ROWS", 16)  # 80 rows → 5 blocks on 2 workers
    monkeypatch.setattr(fast, "_threads", lambda: 2)
    layout = Layout.build(2, (5,), 1, "tanh")
    lr = 0.02 if opt in ("rmsprop", "adam") else 5e-3
    w0 = init_weights(layout, "normal", 1) * 0.7
    for batch, sigma, (l2, l1), patience in EXTRAS[::3]:
        pair = loop_pair(problems[1], layout, "sse", lr, opt, "step", batch, sigma, l2, l1,
                         patience)
        assert_same_run(*[run_slices(e, w0, [(0, 4), (4, 12)]) for e in pair])


@pytest.mark.parametrize("out,loss", PAIRS, ids=[f"{o}-{l}" for o, l in PAIRS])
def test_options_for_every_output_and_loss(problems, out, loss):
    P = problems[3 if out == "softmax" else 1]
    layout = Layout.build(2, (4, 3), P.y_train.shape[1], "relu", out)
    pair = loop_pair(P, layout, loss, 0.01, "adam", "cosine", 16, 0.2, 0.01, 0.0)
    w0 = init_weights(layout, "normal", 2) * 0.7
    assert_same_run(*(run_slices(e, w0, [(0, 6), (6, 10)]) for e in pair))


def test_early_stopping_compiled_stops_where_numpy_stops(problems):
    layout = Layout.build(2, 7)
    pair = loop_pair(problems[1], layout, "sse", 0.3, "momentum", patience=3)
    runs = [run_slices(e, init_weights(layout), [(0, 40), (40, 200)]) for e in pair]
    assert runs[1][2][-1][1] == "early_stopped"
    assert_same_run(*runs)


def test_early_stopping_watches_validation_rows(problems):
    P = problems[1]
    Q = SimpleNamespace(**{**vars(P), "x_val": P.x_test[:10], "y_val": P.y_test[:10]})
    layout = Layout.build(2, 7)
    pair = loop_pair(Q, layout, "sse", 0.3, "nesterov", patience=3)
    runs = [run_slices(e, init_weights(layout), [(0, 200)]) for e in pair]
    assert runs[1][2][-1][1] == "early_stopped"
    assert_same_run(*runs)


def test_divergence_keeps_the_last_finite_weights(problems):
    layout = Layout.build(2, 5, 1, "relu", "identity")
    pair = loop_pair(problems[1], layout, "sse", 0.5, "momentum", batch=24)
    with np.errstate(all="ignore"):
        runs = [run_slices(e, init_weights(layout, "normal", 1), [(0, 60), (60, 120)])
                for e in pair]
    assert runs[1][2][-1][1] == "diverged"
    assert np.all(np.isfinite(runs[1][0]))
    assert_same_run(*runs)


def test_compiled_loop_declares_every_option_but_the_monitor():
    assert fast.CompiledLoop.supports == ENGINE_OPTIONS - {"monitor"}
    assert set(fast.OPT_KINDS) == set(OPTIMIZERS)


def test_mean_reduction_divides_each_batch_gradient(problems):
    """mean=True (the estimator's reduction="mean"): plain gradient descent with η on the
    mean gradient is gradient descent with η/N on the summed one."""
    P, layout = problems[1], Layout.build(2, 7)
    N = len(P.x_train)
    mean = fast.CompiledLoop().bind(layout, "sse", P, 0.5)
    mean.mean = True
    plain = fast.CompiledLoop().bind(layout, "sse", P, 0.5 / N)
    runs = [run_slices(e, init_weights(layout), [(0, 30)]) for e in (plain, mean)]
    assert_same_run(*runs, tol=1e-13)


def test_train_routes_every_option_to_the_compiled_loop():
    """train(): auto takes the compiled loop for options (not for the monitor), with the
    numpy engine's weights and history; an interrupt rolls its state back like numpy's."""
    cfg = TrainConfig(epochs=60, lr=0.01, hidden=(5,), optimizer="adam", batch_size=24,
                      schedule="step", step_size=20, l2=0.01, jitter=0.1, early_stopping=True,
                      patience=30, log_every=10)
    r_fast, r_np = train(cfg), train(replace(cfg, engine="numpy"))
    assert (r_fast.engine, r_np.engine) == ("fast", "numpy")
    assert rel_err(r_fast.model.w, r_np.model.w) <= 1e-12
    assert rel_err(r_fast.history.test_loss, r_np.history.test_loss) <= 1e-12
    assert r_fast.stopped == r_np.stopped
    assert train(replace(cfg, monitor=True, epochs=5)).engine == "numpy"


def test_interrupted_compiled_slice_rolls_back(monkeypatch):
    calls = []
    real = fast.CompiledLoop.epochs

    def flaky(self, w, start, stop, out, row0=None):
        calls.append(start)
        if len(calls) == 3:
            real(self, w.copy(), start, stop, out, row0)  # changes the state, then Ctrl-C
            raise KeyboardInterrupt
        return real(self, w, start, stop, out, row0)

    monkeypatch.setattr(fast.CompiledLoop, "epochs", flaky)
    cfg = dict(epochs=50, log_every=10, lr=1e-2, optimizer="adam")
    r = train(TrainConfig(**cfg))
    assert r.stopped == "interrupted" and len(r.history) == 20 and r.engine == "fast"
    monkeypatch.undo()
    clean = train(TrainConfig(**{**cfg, "epochs": 20}))
    assert rel_err(r.model.w, clean.model.w) <= 1e-12


@pytest.mark.parametrize("kw", [
    dict(), dict(reduction="sum", lr=1e-3, optimizer="nesterov"),
    dict(optimizer="adam", lr=0.01, schedule="cosine", l2=0.01, l1=0.001),
    dict(optimizer="rmsprop", lr=0.01, jitter=0.2, batch_size=500),
    dict(activation="softplus", optimizer="momentum", schedule="step", step_size=7)])
def test_estimator_full_batch_fit_runs_compiled(monkeypatch, kw):
    """ScratchNetClassifier's full-batch fit on the compiled loop: the weights, loss curve and
    optimizer state of its numpy epochs (to 1e-12), then partial_fit goes on from them."""
    sk = pytest.importorskip("scratchnet.sklearn")
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    calls = []
    real = fast.CompiledLoop.epochs
    monkeypatch.setattr(fast.CompiledLoop, "epochs",
                        lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    a = sk.ScratchNetClassifier(epochs=40, random_state=0, **kw).fit(X, y).partial_fit(X, y)
    compiled = len(calls)
    monkeypatch.setattr(sk, "compiled_engine", lambda name: None)
    b = sk.ScratchNetClassifier(epochs=40, random_state=0, **kw).fit(X, y).partial_fit(X, y)
    assert compiled >= 2 and len(calls) == compiled and a.n_iter_ == b.n_iter_ == 41
    assert rel_err(a.w_, b.w_) <= 1e-12
    assert rel_err(a.loss_curve_, b.loss_curve_) <= 1e-12


def test_auto_takes_the_compiled_loop_where_it_was_measured_to_win():
    from scratchnet.training.train import engine_for

    def engine(**kw):
        cfg = TrainConfig(**kw)
        return engine_for(cfg, prepare(cfg)).name

    assert engine(optimizer="adam", hidden=(16, 16), activation="tanh") == "fast"
    assert engine(optimizer="adam", hidden=(64, 64)) == "fast"
    assert engine(optimizer="adam", hidden=(65, 64)) == "numpy"
    assert engine(optimizer="adam", hidden=(65, 64), engine="fast") == "fast"
    assert engine(hidden=(16, 16), activation="tanh") == "numpy"  # plain gd: fast_pays
    assert engine(monitor=True) == "numpy"
