"""train_ensemble: K networks at once, each the very network train() gives for its seed and η."""
from dataclasses import replace

import numpy as np
import pytest

from scratchnet.engines import ensemble, gpu
from scratchnet.engines.ensemble import METRICS, train_ensemble
from scratchnet.core.errors import DivergedError, ScratchnetError
from scratchnet.core.network import init_weights
from scratchnet.training.train import TrainConfig, prepare, train



def rel_err(a, b) -> float:
    """max |a − b| / max(1, |b|) over the finite values; NaN and ±inf in the same places."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    for same in (np.isnan, np.isposinf, np.isneginf):
        assert np.array_equal(same(a), same(b))
    ok = np.isfinite(b)
    return float(np.max(np.abs(a[ok] - b[ok]) / np.maximum(1.0, np.abs(b[ok])), initial=0.0))

CFG = TrainConfig(epochs=300)
SEEDS, LRS = [0, 3, 7], [1e-4, 1e-3, 3e-3]


@pytest.fixture(scope="module")
def prep():
    return prepare(CFG)


@pytest.fixture(scope="module")
def result(prep):
    return train_ensemble(CFG, seeds=SEEDS, lrs=LRS, prepared=prep)


def test_each_network_equals_train(result):
    assert result.engine == "fast" and result.W.shape == (3, 29)
    assert result.train_loss.shape == (3, 300) and np.array_equal(result.epochs, np.arange(300))
    for k, (seed, lr) in enumerate(zip(SEEDS, LRS)):
        solo = train(replace(CFG, seed=seed, lr=lr))
        assert rel_err(result.W[k], solo.model.w) <= 1e-12
        for m in METRICS:
            assert rel_err(getattr(result, m)[k], getattr(solo.history, m)) <= 1e-12
            assert abs(result.final[m][k] - solo.final[m]) <= 1e-12 * max(1, abs(solo.final[m]))
        assert result.model(k).config["seed"] == seed
        assert rel_err(result.model(k).predict_proba(solo.prepared.dataset.X),
                       solo.model.predict_proba(solo.prepared.dataset.X)) <= 1e-12


def test_numpy_engine_equals_fast_engine():
    cfg = TrainConfig(data="gaussians", n_classes=3, n_samples=60, output="softmax", loss="ce",
                      hidden=(5, 4), activation="tanh", epochs=60, lr=1e-2)
    a = train_ensemble(cfg, seeds=[1, 2], lrs=[1e-2, 3e-2], engine="numpy")
    b = train_ensemble(cfg, seeds=[1, 2], lrs=[1e-2, 3e-2], engine="fast")
    assert (a.engine, b.engine) == ("numpy", "fast")
    assert rel_err(b.W, a.W) <= 1e-12
    for m in METRICS:
        assert rel_err(getattr(b, m), getattr(a, m)) <= 1e-12


def test_record_every(prep, result):
    r = train_ensemble(CFG, seeds=SEEDS, lrs=LRS, prepared=prep, record_every=7)
    assert np.array_equal(r.epochs, np.arange(0, 300, 7))
    assert r.test_loss.shape == (3, 43)
    np.testing.assert_allclose(r.test_loss, result.test_loss[:, ::7], rtol=1e-13)
    np.testing.assert_allclose(r.W, result.W, rtol=1e-13)
    best = r.epochs[np.argmin(r.test_loss, axis=1)]
    assert np.array_equal(r.best_epoch, best)


def test_best_epoch_is_argmin_of_test_loss(result):
    assert np.array_equal(result.best_epoch, np.argmin(result.test_loss, axis=1))


@pytest.mark.parametrize("engine", ["fast", "numpy"])
def test_diverged_network_does_not_break_the_others(engine):
    cfg = TrainConfig(epochs=150, hidden=(5, 4), activation="relu", output="identity",
                      lr=1e-3)
    with np.errstate(all="ignore"):
        r = train_ensemble(cfg, seeds=[0, 1, 2], lrs=[1e-3, 0.5, 2e-3], engine=engine)
    assert list(r.diverged) == [False, True, False]
    t = r.diverged_at[1]
    assert 0 < t < 150
    assert np.isnan(r.train_loss[1, t:]).all() and np.isfinite(r.train_loss[1, :t]).all()
    with pytest.raises(DivergedError) as err:
        with np.errstate(all="ignore"):
            train(replace(cfg, seed=1, lr=0.5))
    solo = err.value.result
    assert len(solo.history) == t
    assert rel_err(r.W[1], solo.model.w) <= 1e-12  # the last weights with a finite loss
    assert rel_err(r.train_loss[1, :t], solo.history.train_loss) <= 1e-12
    for k, lr in ((0, 1e-3), (2, 2e-3)):
        ok = train(replace(cfg, seed=k, lr=lr))
        assert rel_err(r.W[k], ok.model.w) <= 1e-12
        assert np.isfinite(r.final["test_loss"][k])


@pytest.mark.parametrize("engine", ["fast", "numpy"])
def test_divergence_right_at_a_chunk_boundary(engine, monkeypatch):
    """A network diverging in the first epoch of a chunk gets the weights from the chunk
    before (the engines carry the previous weights across calls)."""
    cfg = TrainConfig(epochs=150, hidden=(5, 4), activation="relu", output="identity")
    with np.errstate(all="ignore"):
        whole = train_ensemble(cfg, seeds=[0, 1], lrs=[1e-3, 0.5], engine=engine)
        t = int(whole.diverged_at[1])
        monkeypatch.setattr(ensemble, "CHUNK_WORK", {"cpu": t * 2 * 100 + 1, "cuda": 0})
        cut = train_ensemble(cfg, seeds=[0, 1], lrs=[1e-3, 0.5], engine=engine)
    assert t > 1 and cut.diverged_at[1] == t  # diverged in the first epoch of chunk 2
    assert rel_err(cut.W, whole.W) <= 1e-12
    assert rel_err(cut.train_loss, whole.train_loss) <= 1e-12


def test_loss_non_finite_from_the_start_keeps_the_initial_weights(prep):
    cfg = TrainConfig(epochs=5, hidden=(3,), activation="identity", output="identity")
    prep2 = prepare(cfg)
    bad = replace(prep2, problem=replace(prep2.problem,
                                         y_train=np.full_like(prep2.problem.y_train, np.inf)))
    with np.errstate(all="ignore"):
        r = train_ensemble(cfg, seeds=[2, 3], prepared=bad)
    assert list(r.diverged_at) == [0, 0]
    assert np.array_equal(r.W[0], init_weights(prep2.layout, "normal", 2))


def test_broadcasting_and_validation(prep):
    r = train_ensemble(replace(CFG, epochs=5), seeds=4, lrs=[1e-3, 2e-3], prepared=prep)
    assert list(r.seeds) == [4, 4] and list(r.lrs) == [1e-3, 2e-3]
    r = train_ensemble(replace(CFG, epochs=5, lr=5e-4), seeds=range(4), prepared=prep)
    assert np.array_equal(r.lrs, [5e-4] * 4) and r.K == 4
    assert np.array_equal(r.W[2], train(replace(CFG, epochs=5, lr=5e-4, seed=2)).model.w)
    with pytest.raises(ScratchnetError, match="one value per network"):
        train_ensemble(CFG, seeds=[1, 2, 3], lrs=[1e-3, 1e-2], prepared=prep)
    with pytest.raises(ScratchnetError, match="positive"):
        train_ensemble(CFG, seeds=[1, 2], lrs=[1e-3, -1.0], prepared=prep)
    with pytest.raises(ScratchnetError, match="record_every"):
        train_ensemble(CFG, record_every=0, prepared=prep)
    with pytest.raises(ScratchnetError, match="device"):
        train_ensemble(CFG, device="tpu", prepared=prep)


def test_zero_epochs_gives_initial_weights(prep):
    r = train_ensemble(replace(CFG, epochs=0), seeds=[5, 6], prepared=prep)
    assert r.train_loss.shape == (2, 0) and r.epochs_done == 0
    assert np.array_equal(r.W[1], init_weights(prep.layout, "normal", 6))
    assert np.all(np.isfinite(r.final["train_loss"]))


@pytest.mark.parametrize("init", ["normal", "xavier", "he"])
@pytest.mark.parametrize("engine", ["fast", "numpy"])
def test_every_network_starts_from_its_own_seeds_draw(init, engine):
    cfg = replace(CFG, epochs=0, init=init, hidden=(4, 3))
    seeds = [9, 0, 2**31, 9, 123]
    r = train_ensemble(cfg, seeds=seeds, engine=engine)
    for k, s in enumerate(seeds):  # bit for bit the single network's draw
        assert np.array_equal(r.W[k], init_weights(r.layout, init, s))
    # the final metrics (the compiled engine: one more epoch-0 pass) are those of the draw
    ref = ensemble.final_metrics(r.layout, cfg.loss, r.W, r.prepared.problem)
    for m in METRICS:
        assert rel_err(r.final[m], ref[m]) <= 1e-12


def test_progress_and_history(prep):
    calls = []
    r = train_ensemble(replace(CFG, epochs=40), seeds=[0, 1], prepared=prep,
                       progress=lambda *a: calls.append(a))
    assert calls and calls[-1][:2] == (40, 40)
    assert calls[-1][2] == pytest.approx(np.min(r.train_loss[:, -1]))
    h = r.history(1)
    assert np.array_equal(h.test_acc, r.test_acc[1])


def test_cuda_without_a_device_is_a_user_error(prep, monkeypatch):
    monkeypatch.setattr(gpu, "cuda_available", lambda: False)
    with pytest.raises(ScratchnetError, match="no CUDA device"):
        train_ensemble(CFG, seeds=[0, 1], device="cuda", prepared=prep)


def test_interrupt_keeps_finished_chunks(prep, monkeypatch):
    real = ensemble.numpy_engine
    calls = {"n": 0}

    def flaky(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        real(*args)

    monkeypatch.setattr(ensemble, "select_ensemble_engine", lambda d, e, dt: ("numpy", flaky))
    monkeypatch.setattr(ensemble, "CHUNK_WORK", {"cpu": 2e4, "cuda": 2e4})  # 100-epoch chunks
    r = train_ensemble(replace(CFG, epochs=1000), seeds=[0, 1], prepared=prep)
    assert r.stopped == "interrupted" and r.epochs_done == 100
    done = r.epochs_done
    assert np.isfinite(r.train_loss[:, :done]).all() and np.isnan(r.train_loss[:, done:]).all()
    ref = train_ensemble(replace(CFG, epochs=done), seeds=[0, 1], prepared=prep)
    assert rel_err(r.W, ref.W) <= 1e-12


# ---- optimizers and penalties ---------------------------------------------------------------
OPTIMIZERS = ["gd", "momentum", "nesterov", "rmsprop", "adam"]
PENALTIES = {"none": {}, "l2": {"l2": 0.05}, "l1": {"l1": 0.01},
             "l2+l1": {"l2": 0.05, "l1": 0.01}}


def _engines_with_steps() -> list[str]:
    """numpy always; the compiled ensemble where numba is available."""
    from scratchnet.engines import fast

    return ["numpy"] + (["fast"] if fast.available() else [])


@pytest.mark.parametrize("engine", _engines_with_steps())
@pytest.mark.parametrize("penalty", list(PENALTIES))
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_each_network_with_an_optimizer_equals_train(prep, optimizer, penalty, engine):
    cfg = replace(CFG, epochs=30, optimizer=optimizer, beta2=0.99, **PENALTIES[penalty])
    r = train_ensemble(cfg, seeds=SEEDS, lrs=[1e-3, 3e-3, 1e-2], prepared=prep, engine=engine)
    assert r.engine == engine and not r.diverged.any()
    for k, (seed, lr) in enumerate(zip(SEEDS, [1e-3, 3e-3, 1e-2])):
        solo = train(replace(cfg, seed=seed, lr=lr))
        assert rel_err(r.W[k], solo.model.w) <= 1e-12
        for m in METRICS:
            assert rel_err(getattr(r, m)[k], getattr(solo.history, m)) <= 1e-12
            assert abs(r.final[m][k] - solo.final[m]) <= 1e-12 * max(1, abs(solo.final[m]))
        assert r.model(k).config["optimizer"] == optimizer
    # the option really changed the steps: not the weights plain gradient descent gives
    if optimizer != "gd" or penalty != "none":
        plain = train_ensemble(replace(CFG, epochs=30), seeds=SEEDS, lrs=[1e-3, 3e-3, 1e-2],
                               prepared=prep, engine="numpy")
        assert np.abs(plain.W - r.W).max() > 1e-6


def test_the_penalty_spares_the_bias_weights(prep):
    """With λ₂ alone and no data gradient the step would shrink w; the bias row (mask 0) is
    left to the data: one epoch of gd + l2 moves each weight by η λ₂ w more than gd."""
    base = train_ensemble(replace(CFG, epochs=1), seeds=[4], lrs=[1e-2], prepared=prep,
                          engine="numpy")
    pen = train_ensemble(replace(CFG, epochs=1, l2=0.5), seeds=[4], lrs=[1e-2], prepared=prep,
                         engine="numpy")
    w0 = init_weights(prep.layout, "normal", 4)
    from scratchnet.training.optim import weight_mask

    mask = weight_mask(prep.layout)
    np.testing.assert_allclose(base.W[0] - pen.W[0], 1e-2 * 0.5 * w0 * mask, rtol=1e-9,
                               atol=1e-15)
    assert np.array_equal(base.W[0][mask == 0], pen.W[0][mask == 0])


@pytest.mark.parametrize("name, value", [("batch_size", 16), ("schedule", "step"),
                                         ("early_stopping", True), ("jitter", 0.1),
                                         ("monitor", True)])
def test_single_network_options_are_refused_by_name(prep, name, value):
    from scratchnet.core.errors import OptionError
    from scratchnet.training.options import flag

    cfg = replace(CFG, optimizer="adam", l2=0.1, **{name: value})
    with pytest.raises(OptionError) as err:
        train_ensemble(cfg, seeds=[0, 1], prepared=prep)
    assert err.value.name == name
    worded = err.value.worded(flag)  # as the command line prints it
    assert worded.startswith(flag(name) + ": ensembles train every network full batch")
    assert "--optimizer, --l2 and --l1, not " + flag(name) in worded


ADAM_DIVERGES = TrainConfig(epochs=30, hidden=(5,), activation="relu", output="identity",
                            optimizer="adam", eps=1e200)  # ε ≫ √v̂: steps like gd's, lr / ε
ADAM_LRS = [1e197, 1e199]  # network 1 diverges (at epoch 6 on PS5)


@pytest.mark.parametrize("engine", _engines_with_steps())
def test_a_diverging_adam_network_keeps_its_last_finite_weights(engine):
    with np.errstate(all="ignore"):
        r = train_ensemble(ADAM_DIVERGES, seeds=[0, 1], lrs=ADAM_LRS, engine=engine)
        with pytest.raises(DivergedError) as err:
            train(replace(ADAM_DIVERGES, seed=1, lr=ADAM_LRS[1]))
    t = int(r.diverged_at[1])
    assert r.diverged_at[0] == -1 and 2 < t < 30
    solo = err.value.result
    assert len(solo.history) == t
    assert np.all(np.isfinite(r.W[1]))
    assert rel_err(r.W[1], solo.model.w) <= 1e-12
    assert rel_err(r.train_loss[1, :t], solo.history.train_loss) <= 1e-12
    assert np.isnan(r.train_loss[1, t:]).all()
    ok = train(replace(ADAM_DIVERGES, seed=0, lr=ADAM_LRS[0]))
    assert rel_err(r.W[0], ok.model.w) <= 1e-12


@pytest.mark.parametrize("engine", _engines_with_steps())
def test_weights_running_off_with_a_finite_loss_count_as_diverging(engine):
    """Saturated sigmoids keep the loss finite (21.5) while momentum at η = 1e307 drives
    weights to ±inf: the network stops at the first non-finite weight, as train() does."""
    cfg = TrainConfig(epochs=30, optimizer="momentum")
    with np.errstate(all="ignore"):
        r = train_ensemble(cfg, seeds=[0, 1], lrs=[1e307, 1e307], engine=engine)
    assert list(r.diverged_at) == [9, 7]  # (on PS5)
    for k in (0, 1):
        with pytest.raises(DivergedError) as err:
            with np.errstate(all="ignore"):
                train(replace(cfg, seed=k, lr=1e307))
        solo = err.value.result
        assert np.all(np.isfinite(r.W[k])) and len(solo.history) == r.diverged_at[k]
        assert rel_err(r.W[k], solo.model.w) <= 1e-12
        assert rel_err(r.train_loss[k, :r.diverged_at[k]], solo.history.train_loss) <= 1e-12


@pytest.mark.parametrize("engine", _engines_with_steps())
def test_adam_state_carries_over_chunks(engine, monkeypatch):
    """Chunks of 4 epochs (the diverging network too: at a chunk's first epoch or inside one)
    give the numbers of one chunk: the moments and adam's count go from slice to slice."""
    with np.errstate(all="ignore"):
        whole = train_ensemble(ADAM_DIVERGES, seeds=[0, 1], lrs=ADAM_LRS, engine=engine)
        for chunk in (3, 4, 5):
            monkeypatch.setattr(ensemble, "CHUNK_WORK", {"cpu": chunk * 2 * 100 + 1, "cuda": 0})
            cut = train_ensemble(ADAM_DIVERGES, seeds=[0, 1], lrs=ADAM_LRS, engine=engine)
            assert np.array_equal(cut.diverged_at, whole.diverged_at)
            assert rel_err(cut.W, whole.W) <= 1e-12
            assert rel_err(cut.train_loss, whole.train_loss) <= 1e-12


@pytest.mark.parametrize("engine", _engines_with_steps())
def test_an_interrupted_slice_puts_the_optimizer_state_back(prep, monkeypatch, engine):
    """Ctrl-C inside a slice: the weights and the adam moments and count of the slices before
    it are kept, those of the dropped slice are not."""
    from scratchnet.engines import fast

    run = {"numpy": ensemble.numpy_engine, "fast": fast.ensemble_engine}[engine]
    seen = []

    class Spy(ensemble._Ensemble):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            seen.append(self)

    calls = {"n": 0}

    def flaky(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 3:  # the third slice: half its epochs run, then Ctrl-C
            a = list(args)
            a[7] = a[6] + (a[7] - a[6]) // 2
            run(*a, **kw)
            raise KeyboardInterrupt
        run(*args, **kw)

    cfg = replace(CFG, epochs=1000, optimizer="adam")
    monkeypatch.setattr(ensemble, "_Ensemble", Spy)
    monkeypatch.setattr(ensemble, "CHUNK_WORK", {"cpu": 2e4, "cuda": 2e4})  # 100-epoch slices
    monkeypatch.setattr(ensemble, "select_ensemble_engine",
                        lambda d, e, dt: (engine, flaky))
    r = train_ensemble(cfg, seeds=[0, 1], prepared=prep)
    assert r.stopped == "interrupted" and r.epochs_done == 200
    monkeypatch.undo()
    monkeypatch.setattr(ensemble, "_Ensemble", Spy)
    ref = train_ensemble(replace(cfg, epochs=200), seeds=[0, 1], prepared=prep,
                         engine="numpy")
    assert rel_err(r.W, ref.W) <= 1e-12
    got, want = seen[0].steps.state, seen[1].steps.state
    assert got["t"] == want["t"] == 200
    assert rel_err(got["m"], want["m"]) <= 1e-12 and rel_err(got["v"], want["v"]) <= 1e-12


def test_auto_gives_an_optimizer_to_the_compiled_ensemble(prep):
    from scratchnet.engines import fast

    if not fast.available():
        pytest.skip("numba is not available")
    for extra in ({"optimizer": "adam"}, {"l2": 0.1}):
        r = train_ensemble(replace(CFG, epochs=2, **extra), seeds=[0, 1], prepared=prep)
        assert r.engine == "fast"
