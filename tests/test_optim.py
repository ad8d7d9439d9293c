"""Optimizers, schedules, penalties, early stopping, jitter and the general training loop:
each step against a hand-computed one and against torch.optim on the same gradients."""
import numpy as np
import pytest

from scratchnet.training import optim
from scratchnet.core.backprop import backward, forward, output_delta
from scratchnet.core.errors import DivergedError, OptionError, ScratchnetError
from scratchnet.training.optim import OPTIMIZERS, SCHEDULES, Hyper, Schedule
from scratchnet.training.options import flag
from scratchnet.training.train import TrainConfig, prepare, train

W0 = np.array([1.0, -2.0])
G1, G2 = np.array([0.5, -1.0]), np.array([0.1, 0.2])

# Two steps with η = 0.1 from w = (1, −2), gradients g1 = (0.5, −1) then g2 = (0.1, 0.2), worked
# by hand (ε = 0):
HAND = {
    # w − η g
    "gd": ([0.95, -1.9], [0.94, -1.92]),
    "sgd": ([0.95, -1.9], [0.94, -1.92]),
    # v1 = g1; v2 = 0.9 v1 + g2 = (0.55, −0.7); w2 = w1 − 0.1 v2
    "momentum": ([0.95, -1.9], [0.895, -1.83]),
    # w1 = w − 0.1 (g1 + 0.9 g1); w2 = w1 − 0.1 (g2 + 0.9 v2) = w1 − 0.1 (0.595, −0.43)
    "nesterov": ([0.905, -1.81], [0.8455, -1.767]),
    # r1 = 0.01 g1² ⇒ g1/√r1 = (10, −10); r2 = 0.99 r1 + 0.01 g2² = (0.002575, 0.0103)
    # ⇒ g2/√r2 = (1.9706585563, 1.9706585563)
    "rmsprop": ([0.0, -1.0], [-0.19706585563, -1.19706585563]),
    # step 1: m̂ = g1, v̂ = g1² ⇒ w − 0.1 sign(g1); step 2: m̂ = (0.055, −0.07)/0.19,
    # v̂ = (0.00025975, 0.001039)/0.001999 ⇒ m̂/√v̂ = (0.8030409784, −0.5110260772)
    "adam": ([0.9, -1.9], [0.81969590216, -1.84889739228]),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_steps_match_hand_computed_steps(name):
    opt = OPTIMIZERS[name]
    w, hyper = W0.copy(), Hyper(eps=0.0)
    state = opt.init(w)
    opt.step(w, G1, 0.1, state, hyper)
    np.testing.assert_allclose(w, HAND[name][0], rtol=0, atol=1e-10)
    opt.step(w, G2, 0.1, state, hyper)
    np.testing.assert_allclose(w, HAND[name][1], rtol=0, atol=1e-10)


def torch_optimizer(name, params, lr, hyper, weight_decay=0.0):
    import torch

    groups = params if isinstance(params[0], dict) else [{"params": params}]
    for g in groups:
        g.setdefault("weight_decay", weight_decay)
    if name in ("gd", "sgd"):
        return torch.optim.SGD(groups, lr=lr)
    if name in ("momentum", "nesterov"):
        return torch.optim.SGD(groups, lr=lr, momentum=hyper.momentum,
                               nesterov=name == "nesterov")
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, alpha=hyper.rho, eps=hyper.eps)
    return torch.optim.Adam(groups, lr=lr, betas=(hyper.beta1, hyper.beta2), eps=hyper.eps)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_steps_match_torch_optim_on_the_same_gradients(rng, name):
    import torch

    hyper = Hyper(momentum=0.8, beta1=0.85, beta2=0.99, rho=0.9, eps=1e-6)
    w = rng.randn(3, 4)  # any shape: the step is elementwise
    p = torch.nn.Parameter(torch.tensor(w))
    topt = torch_optimizer(name, [p], 0.05, hyper)
    opt, state = OPTIMIZERS[name], OPTIMIZERS[name].init(w)
    for _ in range(6):
        g = rng.randn(3, 4)
        opt.step(w, g, 0.05, state, hyper)
        p.grad = torch.tensor(g)
        topt.step()
        np.testing.assert_allclose(w, p.detach().numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_l2_penalty_is_torch_weight_decay_on_the_weights_not_the_biases(rng, name):
    import torch

    prep = prepare(TrainConfig(data="moons", hidden=(3,)))
    layout = prep.layout
    w = rng.randn(layout.n_params)
    mask = optim.weight_mask(layout)
    bias = mask == 0
    pw, pb = torch.nn.Parameter(torch.tensor(w[~bias])), torch.nn.Parameter(torch.tensor(w[bias]))
    topt = torch_optimizer(name, [{"params": [pw], "weight_decay": 0.3},
                                  {"params": [pb], "weight_decay": 0.0}], 0.01, Hyper())
    opt, state = OPTIMIZERS[name], OPTIMIZERS[name].init(w)
    for _ in range(4):
        g = rng.randn(w.size)
        opt.step(w, g + optim.penalty(w, mask, l2=0.3)[1], 0.01, state, Hyper())
        pw.grad, pb.grad = torch.tensor(g[~bias]), torch.tensor(g[bias])
        topt.step()
    np.testing.assert_allclose(w[~bias], pw.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(w[bias], pb.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_penalty_value_and_gradient_against_torch_autograd(rng):
    import torch

    prep = prepare(TrainConfig(hidden=(4, 3)))
    mask = optim.weight_mask(prep.layout)
    # bias rows of the 2-4-3-1 network (W_0 3×4, W_1 5×3, W_2 4×1): w1–w4, w13–w15, w28
    assert np.flatnonzero(mask == 0).tolist() == [0, 1, 2, 3, 12, 13, 14, 27]
    w = rng.randn(prep.layout.n_params)
    value, grad = optim.penalty(w, mask, l2=0.7, l1=0.2)
    wt = torch.tensor(w, requires_grad=True)
    m = torch.tensor(mask)
    r = 0.5 * 0.7 * ((wt * m) ** 2).sum() + 0.2 * (wt * m).abs().sum()
    r.backward()
    assert value == pytest.approx(r.item(), rel=1e-12)
    np.testing.assert_allclose(grad, wt.grad.numpy(), rtol=1e-12, atol=1e-15)


def torch_schedule(name, opt, sched):
    import torch.optim.lr_scheduler as S

    if name == "step":
        return S.StepLR(opt, step_size=sched.step_size, gamma=sched.gamma)
    if name == "exponential":
        return S.ExponentialLR(opt, gamma=sched.gamma)
    if name == "cosine":
        return S.CosineAnnealingLR(opt, T_max=sched.period, eta_min=sched.lr_min)
    return S.ConstantLR(opt, factor=1.0, total_iters=0)


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedules_match_torch_lr_schedulers(name):
    import torch

    sched = Schedule(name, step_size=3, gamma=0.7, lr_min=0.01, period=10)
    p = torch.nn.Parameter(torch.zeros(1))
    topt = torch.optim.SGD([p], lr=0.2)
    ts = torch_schedule(name, topt, sched)
    for t in range(11):  # epochs 0..10: the cosine period ends at 10
        assert sched.lr(0.2, t) == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12)
        topt.step()
        ts.step()


def test_schedules_by_hand():
    s = Schedule("step", step_size=10, gamma=0.5)
    assert [s.lr(1.0, t) for t in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]
    assert Schedule("exponential", gamma=0.9).lr(2.0, 2) == pytest.approx(1.62)
    c = Schedule("cosine", lr_min=0.1, period=100)
    assert c.lr(1.0, 0) == 1.0 and c.lr(1.0, 50) == pytest.approx(0.55)
    assert c.lr(1.0, 100) == pytest.approx(0.1) and c.lr(1.0, 150) == pytest.approx(0.1)


def test_early_stopping_rule():
    es = optim.EarlyStopping(patience=2)
    w = np.zeros(1)
    decisions = []
    for t, loss in enumerate([3.0, 2.0, 2.5, 2.0, 1.0]):
        decisions.append(es.update(t, loss, w + t))
        if decisions[-1]:
            break
    assert decisions == [False, False, False, True]  # a tie does not count as better
    assert es.best_epoch == 1 and es.best_w[0] == 1.0 and es.best_loss == 2.0


OVERFIT = dict(data="moons", n_samples=60, noise=0.35, hidden=(32,), activation="tanh",
               init="xavier", optimizer="adam", lr=0.05, epochs=1500, log_every=100)


def test_early_stopping_restores_the_best_weights():
    # validation_fraction=0: the explicit choice to watch the test split (recorded in history)
    r = train(TrainConfig(**OVERFIT, early_stopping=True, patience=40, validation_fraction=0))
    best = r.final["best_epoch"]
    h = r.history
    assert r.stopped == "early_stopped" and len(h) == best + 40 + 1 < 1500
    assert h.test_loss[best] == h.test_loss.min() < h.test_loss[-1]
    assert r.final["test_loss"] == pytest.approx(h.test_loss[best], rel=1e-12)
    # early stopping does not change the path: plain training for `best` epochs ends there
    plain = train(TrainConfig(**{**OVERFIT, "epochs": best}))
    np.testing.assert_allclose(r.model.w, plain.model.w, rtol=0, atol=1e-13)


def test_best_weights_are_kept_when_the_run_ends_before_the_patience():
    cfg = TrainConfig(**{**OVERFIT, "epochs": 400}, early_stopping=True, patience=10_000,
                      validation_fraction=0)
    r = train(cfg)
    h = r.history
    assert r.stopped == "completed" and len(h) == 400
    assert r.final["best_epoch"] == int(np.argmin(h.test_loss))
    assert r.final["test_loss"] == pytest.approx(h.test_loss.min(), rel=1e-12)


def test_early_stopping_watches_held_out_training_rows_by_default():
    from scratchnet.core.backprop import predict
    from scratchnet.core.losses import LOSSES

    r = train(TrainConfig(**OVERFIT, early_stopping=True, patience=40))
    prep, P = r.prepared, r.prepared.problem
    # 0.1 of the training split held out: neither trained on nor part of the test rows
    assert len(prep.val_idx) == 5 and len(P.x_train) == 43 and len(P.x_test) == 12
    assert not set(prep.val_idx) & set(prep.train_idx) and not set(prep.val_idx) & set(
        prep.test_idx)
    best = r.final["best_epoch"]
    assert r.stopped == "early_stopped" and len(r.history) == best + 40 + 1
    # the weights kept are the best on the validation rows: replay the run epoch by epoch
    from scratchnet.training.train import start_run

    run = start_run(TrainConfig(**{**OVERFIT, "epochs": len(r.history)}, early_stopping=True,
                                patience=10**6), prep)
    E, val = LOSSES["sse"].value, []
    while not run.finished:
        val.append(E(P.y_val, predict(prep.layout, run.w, P.x_val)))
        run.advance(1)
    assert int(np.argmin(val)) == best and len(val) == len(r.history)
    assert E(P.y_val, predict(prep.layout, r.model.w, P.x_val)) == pytest.approx(val[best],
                                                                                rel=1e-12)
    with_test = train(TrainConfig(**OVERFIT, early_stopping=True, patience=40,
                                  validation_fraction=0))
    assert with_test.prepared.val_idx is None and len(with_test.prepared.problem.x_train) == 48


def test_full_batch_loop_equals_the_problem_sets_engine():
    base = dict(epochs=300, lr=0.01, hidden=(5,), engine="numpy")
    plain = train(TrainConfig(**base))
    loop = train(TrainConfig(**base, batch_size=80))  # 80 rows: one batch, through optim.Loop
    assert plain.engine == "numpy" and not TrainConfig(**base, batch_size=80).plain_gd()
    np.testing.assert_allclose(loop.model.w, plain.model.w, rtol=0, atol=1e-12)
    np.testing.assert_allclose(loop.history.train_loss, plain.history.train_loss, rtol=1e-12)


def test_faithful_parity_keeps_the_fast_path():
    cfg = TrainConfig(faithful=True, epochs=10)
    assert cfg.plain_gd() and cfg.optimizer == "gd" and cfg.batch_size is None
    from scratchnet.training.train import select_engine

    assert train(cfg).engine == select_engine("auto")[0]  # "fast" where numba is installed
    # every option but the gradient monitor runs on the compiled engine (issue 15)
    assert train(TrainConfig(epochs=10, optimizer="adam", engine="fast")).engine == "fast"
    with pytest.raises(OptionError, match="^engine: fast runs every option but monitor ") as e:
        train(TrainConfig(epochs=10, monitor=True, engine="fast"))
    assert e.value.worded(flag).startswith("--engine: fast runs every option but --monitor (")


def test_mini_batches_follow_a_fresh_seeded_shuffle_each_epoch():
    cfg = TrainConfig(epochs=2, lr=0.05, hidden=(4,), optimizer="sgd", batch_size=32, seed=3)
    r = train(cfg)
    prep = prepare(cfg)
    layout, P = prep.layout, prep.problem
    from scratchnet.core.network import init_weights

    w = init_weights(layout, "normal", 3)
    for t in range(2):  # by hand: 80 rows → batches of 32, 32, 16 of epoch t's permutation
        order = optim.epoch_rng(3, t).permutation(80)
        for b in (0, 32, 64):
            rows = order[b:b + 32]
            betas = forward(layout, w, P.x_train[rows])
            w = w - 0.05 * backward(layout, w, betas,
                                    output_delta(layout, "sse", betas[-1], P.y_train[rows]))
    np.testing.assert_allclose(r.model.w, w, rtol=0, atol=1e-12)
    other = train(TrainConfig(**{**cfg.to_dict(), "hidden": (4,), "seed": 4}))
    assert not np.allclose(other.model.w, r.model.w)


def test_jitter_is_fresh_each_epoch_reproducible_and_recorded_on_clean_rows():
    base = dict(data="moons", epochs=30, lr=0.01, hidden=(6,), activation="tanh")
    clean = train(TrainConfig(**base, engine="numpy"))
    a = train(TrainConfig(**base, jitter=0.3))
    b = train(TrainConfig(**base, jitter=0.3))
    np.testing.assert_array_equal(a.model.w, b.model.w)
    # same init, clean rows (a runs on the compiled loop, clean on numpy: equal to 1e-12)
    assert a.history.train_loss[0] == pytest.approx(clean.history.train_loss[0], rel=1e-12)
    assert not np.allclose(a.model.w, clean.model.w)
    x = np.zeros((50, 2))
    n0 = optim.jitter(x, 0.3, optim.epoch_rng(0, 0))
    n1 = optim.jitter(x, 0.3, optim.epoch_rng(0, 1))
    assert not np.allclose(n0, n1)  # fresh every epoch
    np.testing.assert_array_equal(n0, optim.jitter(x, 0.3, optim.epoch_rng(0, 0)))
    assert abs(n0.std() - 0.3) < 0.05


def test_l2_shrinks_the_weights_and_l1_zeroes_some():
    base = dict(data="moons", epochs=400, lr=0.01, hidden=(8,), activation="tanh",
                optimizer="adam")
    free = train(TrainConfig(**base))
    l2 = train(TrainConfig(**base, l2=1.0))
    l1 = train(TrainConfig(**base, l1=2.0))
    mask = optim.weight_mask(free.model.layout) == 1
    assert np.sum(l2.model.w[mask] ** 2) < 0.5 * np.sum(free.model.w[mask] ** 2)
    assert np.mean(np.abs(l1.model.w[mask]) < 1e-2) > np.mean(np.abs(free.model.w[mask]) < 1e-2)


def test_divergence_in_the_general_loop_keeps_the_last_finite_epoch():
    cfg = TrainConfig(output="identity", optimizer="momentum", lr=1.0, epochs=500,
                      log_every=50)
    with pytest.raises(DivergedError, match=r"diverged at epoch \d+") as e:
        train(cfg)
    r = e.value.result
    n = len(r.history)
    assert r.stopped == "diverged" and 0 < n < 500
    assert np.all(np.isfinite(r.history.train_loss)) and np.all(np.isfinite(r.model.w))
    assert r.final["train_loss"] == pytest.approx(r.history.train_loss[-1], rel=1e-12)
    replay = train(TrainConfig(**{**cfg.to_dict(), "hidden": (7,), "epochs": n - 1}))
    np.testing.assert_array_equal(r.model.w, replay.model.w)


def test_interrupt_in_the_general_loop_keeps_finished_chunks(monkeypatch):
    calls = []
    real = optim.Loop.epochs

    def flaky(self, w, start, stop, out, row0=None):
        calls.append(start)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, w, start, stop, out, row0)

    monkeypatch.setattr(optim.Loop, "epochs", flaky)
    cfg = dict(epochs=50, log_every=10, lr=1e-2, optimizer="adam", engine="numpy")
    r = train(TrainConfig(**cfg))
    assert r.stopped == "interrupted" and len(r.history) == 20
    monkeypatch.undo()
    clean = train(TrainConfig(**{**cfg, "epochs": 20}))
    np.testing.assert_array_equal(r.model.w, clean.model.w)


@pytest.mark.parametrize("kw,pattern", [
    (dict(optimizer="lbfgs"), "^optimizer: "), (dict(schedule="linear"), "^schedule: "),
    (dict(batch_size=0), "^batch_size: "), (dict(momentum=1.0), "^momentum: "),
    (dict(beta2=-0.1), "^beta2: "), (dict(l2=-1.0), "^l2: "), (dict(patience=0), "^patience: "),
    (dict(jitter=float("nan")), "^jitter: "), (dict(gamma=0.0), "^gamma: ")])
def test_option_validation(kw, pattern):
    with pytest.raises(ScratchnetError, match=pattern):
        TrainConfig(**kw)


def test_cli_flags_reach_the_config(capsys):
    from scratchnet.cli import main

    code = main(["train", "--data", "moons", "--optimizer", "nesterov", "--momentum", "0.5",
                 "--batch-size", "16", "--schedule", "step", "--step-size", "10", "--gamma",
                 "0.9", "--l2", "0.01", "--jitter", "0.1", "--early-stopping", "--patience",
                 "30", "--lr", "0.01", "--epochs", "40", "--quiet"])
    out = capsys.readouterr().out
    from scratchnet.engines import fast  # every option but --monitor runs compiled

    engine = "fast" if fast.available() else "numpy"
    assert code == 0 and f"{engine} engine" in out and "test acc" in out
    with pytest.raises(SystemExit) as e:
        main(["train", "--optimizer", "adam", "--batch-size", "0", "--quiet"])
    assert e.value.code == 2 and "--batch-size" in capsys.readouterr().err


def test_monitor_records_layer_gradient_norms_and_saturation_every_epoch():
    from scratchnet.core.backprop import loss_and_grad
    from scratchnet.core.network import init_weights

    cfg = TrainConfig(hidden=(4, 3), epochs=5, lr=0.01, monitor=True)
    assert not cfg.plain_gd()
    r = train(cfg)
    m = r.monitor
    assert m["epoch"].tolist() == [0, 1, 2, 3, 4]
    assert m["grad_norms"].shape == (5, 3) and m["saturated"].shape == (5, 2)
    P, layout = r.prepared.problem, r.prepared.layout
    _, g = loss_and_grad(layout, "sse", init_weights(layout, "normal", 0), P.x_train, P.y_train)
    np.testing.assert_allclose(m["grad_norms"][0], [np.linalg.norm(G) for G in layout.views(g)],
                               rtol=1e-12)
    assert np.all((0 <= m["saturated"]) & (m["saturated"] <= 1))
    plain = train(TrainConfig(hidden=(4, 3), epochs=5, lr=0.01, engine="numpy"))
    np.testing.assert_allclose(r.model.w, plain.model.w, rtol=0, atol=1e-13)  # only watches


def test_cli_monitor_and_early_stopping_lines(capsys):
    from scratchnet.cli import main

    assert main(["train", "--hidden", "4,3", "--epochs", "5", "--lr", "0.01", "--monitor",
                 "--log-every", "0"]) == 0
    out = capsys.readouterr().out
    assert "monitor: ‖∂E/∂W_l‖" in out and "epoch       0:" in out and "epoch       4:" in out
    assert main(["train", "--data", "moons", "--n-samples", "60", "--noise", "0.35",
                 "--hidden", "32", "--activation", "tanh", "--init", "xavier", "--optimizer",
                 "adam", "--lr", "0.05", "--epochs", "1500", "--early-stopping", "--patience",
                 "40", "--log-every", "0"]) == 0
    assert "early stopping: keeping the weights of epoch" in capsys.readouterr().out
