import numpy as np
import pytest

from scratchnet.core.backprop import forward, loss_and_grad, numeric_grad, output_delta
from scratchnet.core.activations import HIDDEN_ACTIVATIONS
from scratchnet.core.network import Layout, init_weights

HIDDEN = list(HIDDEN_ACTIVATIONS)  # the table: a new activation is tested here at once
# every (output activation, loss) pair the engine supports
PAIRS = [("sigmoid", "sse"), ("sigmoid", "bce"), ("identity", "sse"), ("softmax", "ce"),
         ("softmax", "sse")]


def problem(rng, n_out, output, n=12):
    x = rng.randn(n, 3)
    labels = rng.randint(0, max(n_out, 2), size=n)
    if output == "softmax":
        y = np.eye(n_out)[labels]
    elif output == "identity":
        y = rng.randn(n, n_out)
    else:
        y = labels[:, None].astype(float)
    return x, y


@pytest.mark.parametrize("hidden", [(5,), (4, 3)], ids=["1-hidden", "2-hidden"])
@pytest.mark.parametrize("output,loss", PAIRS)
@pytest.mark.parametrize("act", HIDDEN)
def test_hand_derived_gradient_matches_central_differences(act, output, loss, hidden, rng):
    n_out = 3 if output == "softmax" else 1
    lay = Layout.build(3, hidden, n_out, act, output)
    w = init_weights(lay, "xavier", 7) + 0.1 * rng.randn(lay.n_params)
    x, y = problem(rng, n_out, output)
    _, g = loss_and_grad(lay, loss, w, x, y)
    num = numeric_grad(lay, loss, w, x, y, h=1e-6)
    rel = np.linalg.norm(g - num) / (np.linalg.norm(g) + np.linalg.norm(num))
    assert rel <= 1e-7, rel


def test_one_gradient_step_worked_out_by_hand():
    # 1-1-1 sigmoid network, x = 2, y = 1, w = (b1, w_x, b2, v) = (0, 0, 0, 1), η = 0.5.
    # β_h = S(0) = 0.5; α_o = 0 + 1·0.5 = 0.5; ŷ = S(0.5) = 0.6224593312018546
    # s = (ŷ − y) ŷ (1 − ŷ) = −0.08872345867463687
    # ∂E/∂b2 = s;  ∂E/∂v = s·β_h;  ∂E/∂b1 = s·v·β_h(1 − β_h);  ∂E/∂w_x = that · x
    lay = Layout.build(1, 1)
    w = np.array([0.0, 0.0, 0.0, 1.0])
    x, y = np.array([[2.0]]), np.array([[1.0]])
    E, g = loss_and_grad(lay, "sse", w, x, y)
    assert E == pytest.approx(0.5 * (1 - 0.6224593312018546) ** 2, rel=1e-15)
    np.testing.assert_allclose(g, [-0.022180864668659216, -0.04436172933731843,
                                   -0.08872345867463687, -0.04436172933731843], rtol=1e-14)
    np.testing.assert_allclose(w - 0.5 * g, [0.011090432334329608, 0.022180864668659216,
                                             0.04436172933731843, 1.0221808646686592],
                               rtol=1e-14)


def test_ps5_formulas_for_w22_w23_w1_w8(rng):
    """The problem set's own chain-rule products, summed over the rows."""
    lay = Layout.build(2, 7)
    w = init_weights(lay, "normal", 0)
    x = rng.randn(9, 2)
    y = rng.randint(0, 2, size=(9, 1)).astype(float)
    betas = forward(lay, w, x)
    bh, yp = betas[1], betas[2][:, 0]
    s = (yp - y[:, 0]) * yp * (1 - yp)
    _, g = loss_and_grad(lay, "sse", w, x, y)
    assert g[21] == pytest.approx(np.sum(s))  # ∂E/∂w22
    assert g[22] == pytest.approx(np.sum(s * bh[:, 0]))  # ∂E/∂w23
    assert g[0] == pytest.approx(np.sum(s * w[22] * bh[:, 0] * (1 - bh[:, 0])))  # ∂E/∂w1
    assert g[7] == pytest.approx(np.sum(s * w[22] * bh[:, 0] * (1 - bh[:, 0]) * x[:, 0]))
    assert g[20] == pytest.approx(np.sum(s * w[28] * bh[:, 6] * (1 - bh[:, 6]) * x[:, 1]))


def test_canonical_pairs_give_y_pred_minus_y(rng):
    lay = Layout.build(2, 3, 1, output="sigmoid")
    p = rng.uniform(0.1, 0.9, size=(5, 1))
    y = rng.randint(0, 2, size=(5, 1)).astype(float)
    np.testing.assert_allclose(output_delta(lay, "bce", p, y), p - y)
    np.testing.assert_allclose(output_delta(lay, "sse", p, y), (p - y) * p * (1 - p))
