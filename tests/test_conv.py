"""Convolution and pooling: hand-derived gradients against finite differences and against
torch autograd (Conv2d, MaxPool2d, AvgPool2d), forward values against torch."""
import warnings

import numpy as np
import pytest

from scratchnet.cnn import conv
from scratchnet.core.errors import ScratchnetError


def numeric(f, a: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar f() with respect to every entry of a (in place)."""
    g = np.empty_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + h
        ep = f()
        a[i] = old - h
        em = f()
        a[i] = old
        g[i] = (ep - em) / (2 * h)
    return g


@pytest.mark.parametrize("padding", conv.PADDINGS)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_conv2d_gradients_match_finite_differences(rng, padding, k):
    x, K, b = rng.randn(2, 2, 5, 4), rng.randn(3, 2, k, k), rng.randn(3)
    y, cache = conv.conv2d_forward(x, K, b, padding)
    R = rng.randn(*y.shape)  # E = Σ R ⊙ y, so ∂E/∂y = R

    def E():
        return float(np.sum(R * conv.conv2d_forward(x, K, b, padding)[0]))

    dx, dK, db = conv.conv2d_backward(R, cache)
    for analytic, param in ((dx, x), (dK, K), (db, b)):
        np.testing.assert_allclose(analytic, numeric(E, param), rtol=1e-6, atol=1e-7)


def test_conv2d_output_sizes(rng):
    x = rng.randn(1, 1, 8, 8)
    assert conv.conv2d_forward(x, rng.randn(4, 1, 3, 3), np.zeros(4), "valid")[0].shape == \
        (1, 4, 6, 6)
    assert conv.conv2d_forward(x, rng.randn(4, 1, 3, 3), np.zeros(4), "same")[0].shape == \
        (1, 4, 8, 8)
    assert conv.same_padding(3) == (1, 1) and conv.same_padding(2) == (0, 1)


def test_conv2d_hand_worked_example():
    # a 3×3 image, a 2×2 kernel that subtracts the pixel to the right: y[i, j] = x[i,j] − x[i,j+1]
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    K = np.array([[[[1.0, -1.0], [0.0, 0.0]]]])
    y, _ = conv.conv2d_forward(x, K, np.array([0.5]), "valid")
    np.testing.assert_allclose(y, np.full((1, 1, 2, 2), -1.0 + 0.5))


@pytest.mark.parametrize("padding,k", [("valid", 3), ("same", 3), ("valid", 2), ("same", 2),
                                       ("same", 1)])
def test_conv2d_matches_torch(rng, padding, k):
    import torch
    x, K, b = rng.randn(3, 2, 7, 6), rng.randn(4, 2, k, k), rng.randn(4)
    y, cache = conv.conv2d_forward(x, K, b, padding)
    R = rng.randn(*y.shape)
    dx, dK, db = conv.conv2d_backward(R, cache)
    xt, Kt, bt = (torch.tensor(a, requires_grad=True) for a in (x, K, b))
    with warnings.catch_warnings():  # torch notes that even kernels with 'same' copy the input
        warnings.simplefilter("ignore", UserWarning)
        yt = torch.nn.functional.conv2d(xt, Kt, bt, padding=padding)
    (yt * torch.from_numpy(R)).sum().backward()
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dK, Kt.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, bt.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", conv.POOLS)
@pytest.mark.parametrize("size,shape", [(2, (2, 3, 6, 4)), (2, (1, 2, 5, 7)), (3, (2, 1, 6, 6))])
def test_pooling_matches_torch(rng, kind, size, shape):
    import torch
    fwd, bwd = conv.POOL_FUNCTIONS[kind]
    x = rng.randn(*shape)
    y, cache = fwd(x, size)
    R = rng.randn(*y.shape)
    dx = bwd(R, cache)
    xt = torch.tensor(x, requires_grad=True)
    pool = torch.nn.MaxPool2d(size) if kind == "max" else torch.nn.AvgPool2d(size)
    yt = pool(xt)
    (yt * torch.from_numpy(R)).sum().backward()
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", conv.POOLS)
def test_pooling_gradients_match_finite_differences(rng, kind):
    fwd, bwd = conv.POOL_FUNCTIONS[kind]
    x = rng.randn(2, 2, 4, 5)  # distinct values: the max is unique, so E is differentiable
    y, cache = fwd(x, 2)
    R = rng.randn(*y.shape)
    np.testing.assert_allclose(bwd(R, cache),
                               numeric(lambda: float(np.sum(R * fwd(x, 2)[0])), x),
                               rtol=1e-6, atol=1e-7)


def test_maxpool_sends_the_gradient_to_the_first_winner_only():
    x = np.array([[[[1.0, 3.0], [3.0, 0.0]]]])  # a tie between two 3s
    y, cache = conv.maxpool_forward(x, 2)
    assert y.item() == 3.0
    np.testing.assert_array_equal(conv.maxpool_backward(np.ones((1, 1, 1, 1)), cache),
                                  [[[[0.0, 1.0], [0.0, 0.0]]]])


def test_flatten_round_trip_and_order(rng):
    x = rng.randn(2, 3, 4, 5)
    f = conv.flatten(x)
    assert f.shape == (2, 60) and f[1, 5] == x[1, 0, 1, 0]  # row-major: channel, row, column
    np.testing.assert_array_equal(conv.unflatten(f, x.shape), x)


def test_bad_shapes_are_user_errors(rng):
    with pytest.raises(ScratchnetError, match="does not fit"):
        conv.conv2d_forward(rng.randn(1, 1, 2, 2), rng.randn(1, 1, 3, 3), np.zeros(1), "valid")
    with pytest.raises(ScratchnetError, match="padding"):
        conv.conv2d_forward(rng.randn(1, 1, 4, 4), rng.randn(1, 1, 3, 3), np.zeros(1), "full")
    with pytest.raises(ScratchnetError, match="pooling does not fit"):
        conv.maxpool_forward(rng.randn(1, 1, 1, 4), 2)


def test_conv2d_backward_can_skip_the_input_gradient(rng):
    y, cache = conv.conv2d_forward(rng.randn(2, 1, 5, 5), rng.randn(3, 1, 3, 3), np.zeros(3),
                                   "same")
    R = rng.randn(*y.shape)
    dx, dK, db = conv.conv2d_backward(R, cache, input_grad=False)
    full = conv.conv2d_backward(R, cache)
    assert dx is None
    np.testing.assert_array_equal(dK, full[1])
    np.testing.assert_array_equal(db, full[2])
