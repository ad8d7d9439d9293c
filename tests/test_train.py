import json
import os

import numpy as np
import pytest

import scratchnet.training.train as train_mod
from scratchnet.core.data import bundled_csv
from scratchnet.core.errors import DivergedError, ScratchnetError
from scratchnet.training.run import StepEngine
from scratchnet.training.train import TrainConfig, prepare, train

from ps5_reference import run as reference_run


@pytest.fixture(scope="module")
def reference():
    return reference_run(bundled_csv("ps5"), 2000)


@pytest.mark.parametrize("engine", ["numpy", "auto"])
def test_faithful_matches_the_problem_sets_procedure(reference, engine):
    w_ref, tr_ref, te_ref = reference
    r = train(TrainConfig(faithful=True, epochs=2000, engine=engine))
    np.testing.assert_allclose(r.model.w, w_ref, rtol=0, atol=1e-9)
    np.testing.assert_allclose(r.history.train_loss, tr_ref, rtol=0, atol=1e-9)
    np.testing.assert_allclose(r.history.test_loss, te_ref, rtol=0, atol=1e-9)


def test_faithful_standardizes_targets_like_the_problem_set():
    prep = prepare(TrainConfig(faithful=True))
    ds = prep.dataset
    labels = ds.y[prep.train_idx]
    expected = (labels - ds.y.mean()) / ds.y.std()  # whole-data mean and population std
    np.testing.assert_allclose(prep.problem.y_train[:, 0], expected)
    assert prep.problem.y_train.min() < 0  # outside the sigmoid's range: the PS5 pitfall
    ds = prep.dataset
    np.testing.assert_allclose(prep.x_scaler.mean, ds.X.mean(axis=0))  # whole data set


def test_default_standardizer_is_fitted_on_the_training_split_only():
    prep = prepare(TrainConfig())
    ds = prep.dataset
    np.testing.assert_allclose(prep.x_scaler.mean, ds.X[prep.train_idx].mean(axis=0))
    np.testing.assert_allclose(prep.x_scaler.std, ds.X[prep.train_idx].std(axis=0))
    assert set(np.unique(prep.problem.y_train)) == {0.0, 1.0}
    assert len(prep.train_idx) == 80 and len(prep.test_idx) == 20


def test_history_records_the_loss_before_each_update():
    r1 = train(TrainConfig(epochs=1, lr=1e-2, engine="numpy"))
    r2 = train(TrainConfig(epochs=2, lr=1e-2, engine="numpy"))
    assert r2.history.train_loss[0] == r1.history.train_loss[0]
    assert r2.history.train_loss[1] == pytest.approx(r1.final["train_loss"], rel=1e-12)
    assert len(r2.history) == 2


def test_training_learns_the_ps5_stand_in():
    r = train(TrainConfig(epochs=3000, lr=0.05, engine="numpy"))
    assert r.history.train_loss[-1] < 0.5 * r.history.train_loss[0]
    assert r.final["train_acc"] > 0.85


def test_softmax_multiclass_training():
    cfg = TrainConfig(data="gaussians", n_classes=3, output="softmax", loss="ce", lr=0.01,
                      epochs=300, hidden=(8,), engine="numpy")
    r = train(cfg)
    assert r.model.layout.sizes == (2, 8, 3)
    assert r.final["test_acc"] > 0.7
    p = r.model.predict_proba(r.prepared.dataset.X)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_three_classes_without_softmax_is_a_user_error():
    with pytest.raises(ScratchnetError, match="--output softmax"):
        prepare(TrainConfig(data="spiral", n_classes=3))


def test_interrupt_keeps_every_finished_chunk(monkeypatch):
    calls = []

    def flaky(layout, loss, w, P, lr, start, stop, hist):
        calls.append(start)
        if len(calls) == 3:
            raise KeyboardInterrupt
        train_mod.run_epochs(layout, loss, w, P, lr, start, stop, hist)

    monkeypatch.setattr(train_mod, "engine_for", lambda config, prep: StepEngine(
        "numpy", flaky, prep.layout, config.loss, prep.problem, config.lr))
    r = train(TrainConfig(epochs=50, log_every=10, lr=1e-2))
    assert r.stopped == "interrupted" and len(r.history) == 20 and r.final["epochs"] == 20
    monkeypatch.undo()
    clean = train(TrainConfig(epochs=20, lr=1e-2, engine="numpy"))
    np.testing.assert_array_equal(r.model.w, clean.model.w)


def test_divergence_names_the_epoch_and_keeps_the_partial_result():
    cfg = TrainConfig(output="identity", lr=5.0, epochs=2000, log_every=100, engine="numpy")
    with pytest.raises(DivergedError, match=r"diverged at epoch \d+ .*lower --lr") as e:
        train(cfg)
    r = e.value.result
    assert r.stopped == "diverged"
    assert np.all(np.isfinite(r.history.train_loss)) and np.all(np.isfinite(r.model.w))
    n = len(r.history)
    assert 0 < n < 2000
    # the kept weights are exactly those after n − 1 updates
    replay = train(TrainConfig(output="identity", lr=5.0, epochs=n - 1, engine="numpy"))
    np.testing.assert_array_equal(r.model.w, replay.model.w)


@pytest.mark.parametrize("kw,pattern", [(dict(lr=-1), "^lr: "), (dict(loss="hinge"), "^loss: "),
                                        (dict(epochs=-5), "^epochs: ")])
def test_config_validation(kw, pattern):
    with pytest.raises(ScratchnetError, match=pattern):
        TrainConfig(**kw)


def test_auto_engine_keeps_numpy_where_the_compiled_loop_does_not_pay():
    from scratchnet.core.network import Layout
    from scratchnet.training.train import fast_pays

    assert fast_pays(Layout.build(2, 7))  # the PS5 job: compiled
    assert fast_pays(Layout.build(2, (16, 8), activation="relu"))
    assert not fast_pays(Layout.build(2, 7, activation="tanh"))  # scalar libm tanh
    assert not fast_pays(Layout.build(2, (64, 64)))  # BLAS wins on wide hidden layers
    assert train_mod.select_engine("auto", Layout.build(2, (64, 64)))[0] == "numpy"


BEFORE = os.path.join(os.path.dirname(__file__), "data", "ps5_weights_before_restructuring.json")


@pytest.mark.parametrize("engine", ["fast", "numpy"])
@pytest.mark.parametrize("run", ["default", "faithful"])
def test_same_weights_as_before_the_restructuring(run, engine):
    """`scratchnet train --data ps5 [--faithful]` (100000 epochs) gives the weights the code of
    commit 1305bb9 (before issue 11's restructuring) gave, to 1e-12, on both engines (the
    numpy engine's 1e5 epochs take about 30 s of CPU each on the 2-core box)."""
    if engine == "fast" and train_mod.compiled_engine("auto") is None:
        pytest.skip("numba is not installed")
    with open(BEFORE, encoding="utf-8") as fh:
        before = json.load(fh)["runs"][run]
    w = np.asarray(before["w"])
    r = train(TrainConfig(data="ps5", faithful=run == "faithful", engine=engine))
    assert r.engine == engine and r.final["epochs"] == before["final"]["epochs"] == 100_000
    np.testing.assert_allclose(r.model.w, w, rtol=0, atol=1e-12 * max(1.0, np.abs(w).max()))
    assert abs(r.final["train_loss"] - before["final"]["train_loss"]) <= 1e-9
