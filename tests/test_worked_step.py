"""The worked numeric step (report.worked) equals the engine: δ, per-row gradient, one epoch."""
from dataclasses import replace

import numpy as np
import pytest

from scratchnet.core.backprop import loss_and_grad
from scratchnet.core.network import Layout, init_weights
from scratchnet.report.worked import worked_step
from scratchnet.training.train import TrainConfig, prepare, train

CASES = [  # hidden, activation, output, loss, outputs
    ((7,), "sigmoid", "sigmoid", "sse", 1),  # the problem set
    ((3, 4), "tanh", "sigmoid", "sse", 1),
    ((4,), "relu", "softmax", "ce", 3),
    ((2, 3), "sigmoid", "identity", "sse", 2),
    ((), "sigmoid", "sigmoid", "bce", 1),
]


@pytest.mark.parametrize("hidden, act, out, loss, k", CASES)
def test_per_row_gradient_is_the_engines(hidden, act, out, loss, k, rng):
    layout = Layout.build(2, hidden, k, act, out)
    w = rng.randn(layout.n_params)
    x = rng.randn(6, 2)
    y = np.eye(k)[rng.randint(k, size=6)] if out == "softmax" else rng.rand(6, k)
    total = np.zeros(layout.n_params)
    for n in range(6):
        st = worked_step(layout, loss, w, x, y, lr=0.1, row=n)
        _, g_n = loss_and_grad(layout, loss, w, x[n:n + 1], y[n:n + 1])
        np.testing.assert_allclose(st.grad_row, g_n, rtol=1e-12, atol=1e-14)
        total += st.grad_row
    np.testing.assert_allclose(total, st.grad, rtol=1e-10, atol=1e-13)  # E = Σ_n E_n
    assert len(st.unit_rows()) == sum(layout.sizes[1:])
    assert len(st.deltas) == layout.n_layers


def test_ps5_step_is_one_epoch_of_training():
    config = TrainConfig(epochs=1, log_every=0, engine="numpy")
    prep = prepare(config)
    P, layout = prep.problem, prep.layout
    w0 = init_weights(layout, config.init, config.seed)
    st = worked_step(layout, config.loss, w0, P.x_train, P.y_train, config.lr)
    one = train(config)
    np.testing.assert_allclose(st.w_next, one.model.w, rtol=0, atol=1e-14)
    # the problem set's s and its hidden δ, by hand for row 0
    b = st.betas[-1][0]
    s = (b - P.y_train[0, 0]) * b * (1 - b)
    assert st.deltas[-1][0] == pytest.approx(s, rel=1e-12)
    bh = st.betas[1]
    np.testing.assert_allclose(st.deltas[0], s * w0[22:29] * bh * (1 - bh), rtol=1e-12)
    assert st.carried(7) == ("x_1", pytest.approx(P.x_train[0, 0]))  # w8 carries x_1
    assert st.carried(22)[0] == "β_H1" and st.receiving(22)[0] == "δ_O1"  # w23
    two = train(replace(config, epochs=2))
    assert not np.allclose(st.w_next, two.model.w)  # the test can tell one step from two
