"""The user-facing gradient check: correct on known derivatives, PASS on the tables, FAIL on a
broken derivative."""
import numpy as np
import pytest

from scratchnet.trust import gradcheck
from scratchnet.core.activations import ACTIVATIONS, Activation, sigmoid
from scratchnet.core.network import Layout, init_weights
from scratchnet.training.train import TrainConfig, prepare

HIDDEN = ["sigmoid", "tanh", "relu", "identity"]
PAIRS = [("sigmoid", "sse"), ("sigmoid", "bce"), ("identity", "sse"), ("softmax", "ce"),
         ("softmax", "sse")]


@pytest.mark.parametrize("f,df", [
    (lambda w: float(np.sum(np.sin(w))), np.cos),
    (lambda w: float(np.sum(w ** 3)), lambda w: 3 * w ** 2),
    (lambda w: float(np.exp(w[0]) * w[1]), lambda w: np.array([np.exp(w[0]) * w[1],
                                                              np.exp(w[0])])),
])
def test_central_difference_gives_the_known_derivative(f, df):
    # a checker that returned 1.5× (or 0.5×) the derivative would miss these by 50 %
    w = np.array([0.3, -1.2])
    np.testing.assert_allclose(gradcheck.central_difference(f, w), df(w), rtol=1e-8)


def test_linear_network_gradient_is_the_normal_equations_residual(rng):
    # no hidden layer, identity output, E = ½Σ(Xw − y)²  ⇒  ∂E/∂w = X̃ᵀ(X̃w − y), bias row first
    lay = Layout((3, 1), (), "identity")
    x, y, w = rng.randn(20, 3), rng.randn(20, 1), rng.randn(4)
    X1 = np.column_stack([np.ones(20), x])
    known = X1.T @ (X1 @ w[:, None] - y)
    res = gradcheck.check(lay, "sse", w, x, y, autograd=False)
    np.testing.assert_allclose(res.analytic, known[:, 0], rtol=1e-12)
    np.testing.assert_allclose(res.numeric, known[:, 0], rtol=1e-7)
    assert res.passed


@pytest.mark.parametrize("output,loss", PAIRS)
@pytest.mark.parametrize("act", HIDDEN)
def test_every_table_entry_passes(act, output, loss):
    config = TrainConfig(hidden=(5, 4), activation=act, output=output, loss=loss)
    res = gradcheck.check_config(config)
    assert res.passed, res.summary()
    assert res.max_rel_error < 1e-5  # 10× margin below the tolerance
    assert res.summary().startswith("PASS")
    assert len(res.names) == prepare(config).layout.n_params
    if act == "relu":
        assert res.checked.all()  # the PS5 init puts no ReLU input on its kink


def test_a_broken_derivative_fails(monkeypatch):
    broken = Activation("sigmoid", sigmoid, lambda b: 1.5 * b * (1.0 - b), 0.0, 1.0)
    monkeypatch.setitem(ACTIVATIONS, "sigmoid", broken)
    res = gradcheck.check_config(TrainConfig(output="identity"))
    assert not res.passed
    assert res.summary().startswith("FAIL")
    lay = Layout.build(2, 7, 1, "sigmoid", "identity")
    hidden_w = np.arange(lay.n_params) < lay.offsets[1]
    # every first-layer weight goes through the hidden σ′: off by 1.5 → relative error 1/3
    np.testing.assert_allclose(res.rel_error[hidden_w], 1 / 3, rtol=1e-4)
    assert np.all(res.rel_error[~hidden_w] < 1e-6)  # the output layer does not use σ′
    assert "FAIL" in res.table()


def test_saturated_outputs_are_checked_on_the_exact_loss():
    lay = Layout.build(2, 3, 1, "tanh", "sigmoid")
    w = 40.0 * init_weights(lay, seed=3)  # outputs saturate past EPS = 1e-12
    x = np.array([[1.0, -1.0], [0.5, 2.0], [-1.5, 0.3]])
    y = np.array([[0.0], [1.0], [1.0]])
    res = gradcheck.check(lay, "bce", w, x, y)
    assert res.notes and "clipped" in res.notes[0]
    assert res.passed, res.table()


def test_relu_kink_is_marked_not_failed():
    # zero input weight and bias put the ReLU input α = 0 exactly on the kink for every row
    lay = Layout.build(1, 1, 1, "relu", "identity")
    w = np.array([0.0, 0.0, 0.0, 1.0])  # b1, x→n1, b2, n1→o1
    x, y = np.array([[1.0], [2.0]]), np.array([[1.0], [1.0]])
    res = gradcheck.check(lay, "sse", w, x, y, autograd=False)
    assert res.kinks.tolist() == [True, True, False, False]
    assert res.analytic[0] == 0.0 and abs(res.numeric[0]) > 0.1  # the two one-sided slopes
    assert np.isnan(res.rel_error[0])  # no finite-difference reference across a kink
    assert res.passed and "kink" in res.table()


def test_autograd_column_matches_when_torch_is_installed():
    pytest.importorskip("torch", reason="torch not installed (make test installs it)")
    res = gradcheck.check_config(TrainConfig())
    np.testing.assert_allclose(res.autograd, res.analytic, rtol=1e-10, atol=1e-13)
    d = res.to_dict()
    assert d["passed"] and d["autograd"] and d["weights"][7]["weight"] == "w8: x_1 → n1"
