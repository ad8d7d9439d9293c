import numpy as np
import pytest

from scratchnet.core.backprop import loss_and_grad
from scratchnet.training.monitor import layer_gradient_norms, saturated_share
from scratchnet.core.network import Layout, init_weights


@pytest.mark.parametrize("hidden", [(7,), (4, 3), ()])
def test_gradient_norms_are_the_norms_of_each_layers_block(hidden, rng):
    layout = Layout.build(2, hidden, 1)
    w = init_weights(layout)
    x, y = rng.randn(12, 2), rng.rand(12, 1)
    norms = layer_gradient_norms(layout, "sse", w, x, y)
    _, g = loss_and_grad(layout, "sse", w, x, y)
    assert len(norms) == layout.n_layers
    for l, G in enumerate(layout.views(g)):
        assert norms[l] == pytest.approx(np.sqrt(np.sum(G**2)), rel=1e-12)
    # the blocks together are the whole gradient
    assert np.sum(np.square(norms)) == pytest.approx(np.sum(g**2), rel=1e-12)


def test_gradient_norms_of_a_saturated_first_layer_vanish(rng):
    layout = Layout.build(2, (5, 5), 1)
    w = init_weights(layout)
    x, y = rng.randn(20, 2), rng.rand(20, 1)
    first, _, last = layer_gradient_norms(layout, "sse", w, x, y)
    layout.views(w)[0][...] *= 200.0  # huge first-layer weights: sigmoid units pinned at 0 / 1
    first_sat, _, last_sat = layer_gradient_norms(layout, "sse", w, x, y)
    assert first_sat / last_sat < 0.05 * first / last


def test_saturated_share_sigmoid_extremes(rng):
    layout = Layout.build(2, (6,), 1)
    x = rng.randn(30, 2)
    assert saturated_share(layout, np.zeros(layout.n_params), x) == [0.0]  # β = ½: full slope
    w = init_weights(layout)
    layout.views(w)[0][0] = 50.0  # bias of every hidden unit: β ≈ 1 everywhere
    layout.views(w)[0][1:] = 0.0
    assert saturated_share(layout, w, x) == [1.0]


def test_saturated_share_counts_sample_unit_pairs(rng):
    layout = Layout.build(1, (2,), 1)
    w = np.zeros(layout.n_params)
    W0 = layout.views(w)[0]
    W0[0] = [10.0, 0.0]  # unit 1 saturated (α = 10), unit 2 at α = 0
    share = saturated_share(layout, w, np.zeros((4, 1)))
    assert share == [0.5]
    # the threshold is relative to the largest slope: ¼ for the sigmoid
    beta = 1 / (1 + np.exp(-10.0))
    assert saturated_share(layout, w, np.zeros((4, 1)), threshold=0.0) == [0.0]
    assert saturated_share(layout, w, np.zeros((4, 1)),
                           threshold=1.01 * beta * (1 - beta) / 0.25) == [0.5]
    assert saturated_share(layout, w, np.zeros((4, 1)), threshold=1.01) == [1.0]


@pytest.mark.parametrize("act, bias, expected", [
    ("relu", -5.0, 1.0),  # dead: β = 0 for every input near 0
    ("relu", 5.0, 0.0),
    ("tanh", 8.0, 1.0),
    ("tanh", 0.0, 0.0),
    ("identity", 100.0, 0.0),  # never saturates
])
def test_saturated_share_over_the_activation_table(act, bias, expected, rng):
    layout = Layout.build(2, (3, 4), 1, act)
    w = np.zeros(layout.n_params)
    for W in layout.views(w)[:2]:
        W[0] = bias
    shares = saturated_share(layout, w, 0.01 * rng.randn(10, 2))
    assert len(shares) == 2
    assert shares[0] == pytest.approx(expected)


def test_no_hidden_layer_no_shares(rng):
    layout = Layout.build(2, (), 1)
    assert saturated_share(layout, init_weights(layout), rng.randn(5, 2)) == []


def test_a_monitor_with_no_epoch_yet_has_empty_series_of_the_right_width():
    """Ctrl-C before the first slice ends: train() still builds the (empty) monitor result
    (it raised ValueError from reshape(0, -1) before, a traceback for the user)."""
    from types import SimpleNamespace

    from scratchnet.training.optim import GradientMonitor

    layout = Layout.build(2, (7, 5), 1)
    prob = SimpleNamespace(x_train=np.zeros((4, 2)), y_train=np.zeros((4, 1)))
    m = GradientMonitor(layout, "sse", prob)
    r = m.result()
    assert r["epoch"].shape == (0,) and r["grad_norms"].shape == (0, 3)
    assert r["saturated"].shape == (0, 2)
    m(0, init_weights(layout))
    assert m.result()["saturated"].shape == (1, 2) and m.result(0)["grad_norms"].shape == (0, 3)
