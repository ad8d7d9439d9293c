import numpy as np
import pytest

from scratchnet.core.activations import ACTIVATIONS, sigmoid, softmax

ELEMENTWISE = [a for a in ACTIVATIONS.values() if a.df is not None]


@pytest.mark.parametrize("act", ELEMENTWISE, ids=lambda a: a.name)
def test_derivative_from_output_matches_finite_difference(act, rng):
    alpha = rng.uniform(-3, 3, size=50)
    alpha = alpha[np.abs(alpha) > 1e-3]  # keep away from relu's kink
    h = 1e-6
    numeric = (act.f(alpha + h) - act.f(alpha - h)) / (2 * h)
    np.testing.assert_allclose(act.df(act.f(alpha)), numeric, rtol=1e-6, atol=1e-9)


def test_softmax_backward_is_the_jacobian_product(rng):
    alpha = rng.randn(4, 3)
    g = rng.randn(4, 3)
    beta = softmax(alpha)
    got = ACTIVATIONS["softmax"].backward(beta, g)
    h = 1e-6
    for n in range(4):
        J = np.empty((3, 3))
        for j in range(3):
            e = np.zeros(3)
            e[j] = h
            J[:, j] = (softmax(alpha[n] + e) - softmax(alpha[n] - e)) / (2 * h)
        np.testing.assert_allclose(got[n], J.T @ g[n], rtol=1e-6, atol=1e-9)


def test_sigmoid_is_stable_and_exact():
    a = np.array([-1000.0, -30.0, -1.0, 0.0, 1.0, 30.0, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = sigmoid(a)
    np.testing.assert_allclose(s[2:5], 1 / (1 + np.exp(-a[2:5])), rtol=1e-15)
    assert s[0] == 0.0 and s[-1] == 1.0
    assert np.all(np.diff(s) >= 0)


def test_softmax_rows_sum_to_one_even_for_huge_inputs():
    p = softmax(np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert p[0, 0] == pytest.approx(1.0)


@pytest.mark.parametrize("act", ACTIVATIONS.values(), ids=lambda a: a.name)
def test_range_is_respected(act, rng):
    b = act.f(rng.uniform(-10, 10, size=(20, 3)))
    assert np.all(b >= act.low) and np.all(b <= act.high)
