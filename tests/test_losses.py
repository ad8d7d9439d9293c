import numpy as np
import pytest

from scratchnet.core.losses import LOSSES


@pytest.mark.parametrize("name", LOSSES)
def test_gradient_matches_finite_difference(name, rng):
    y = np.eye(3)[rng.randint(0, 3, size=6)]
    p = rng.uniform(0.05, 0.95, size=(6, 3))
    loss = LOSSES[name]
    g = loss.grad(y, p)
    h = 1e-6
    num = np.empty_like(p)
    for idx in np.ndindex(p.shape):
        e = np.zeros_like(p)
        e[idx] = h
        num[idx] = (loss.value(y, p + e) - loss.value(y, p - e)) / (2 * h)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


def test_sse_is_half_the_sum_of_squares():
    y = np.array([[0.0], [1.0]])
    p = np.array([[0.5], [0.25]])
    assert LOSSES["sse"].value(y, p) == pytest.approx(0.5 * (0.25 + 0.5625))


def test_bce_and_ce_values():
    y = np.array([[1.0], [0.0]])
    p = np.array([[0.8], [0.1]])
    assert LOSSES["bce"].value(y, p) == pytest.approx(-(np.log(0.8) + np.log(0.9)))
    y3 = np.array([[0, 1, 0]], float)
    p3 = np.array([[0.2, 0.7, 0.1]])
    assert LOSSES["ce"].value(y3, p3) == pytest.approx(-np.log(0.7))
