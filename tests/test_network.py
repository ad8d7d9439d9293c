import numpy as np
import pytest

from scratchnet.core.errors import ScratchnetError
from scratchnet.core.network import Layout, init_weights, init_weights_batch


@pytest.fixture
def ps5():
    return Layout.build(2, 7)


def test_ps5_has_29_weights_in_the_problem_set_order(ps5):
    assert ps5.n_params == 29
    assert ps5.weight_name(0) == "w1: b1 → n1"
    assert ps5.weight_name(6) == "w7: b1 → n7"
    assert ps5.weight_name(7) == "w8: x_1 → n1"
    assert ps5.weight_name(13) == "w14: x_1 → n7"
    assert ps5.weight_name(14) == "w15: x_2 → n1"
    assert ps5.weight_name(20) == "w21: x_2 → n7"
    assert ps5.weight_name(21) == "w22: b2 → o1"
    assert ps5.weight_name(22) == "w23: n1 → o1"
    assert ps5.weight_name(28) == "w29: n7 → o1"


def test_views_are_views_with_bias_row_first(ps5):
    w = np.arange(29, dtype=float)
    W0, W1 = ps5.views(w)
    assert W0.shape == (3, 7) and W1.shape == (8, 1)
    assert W0[0, 0] == 0 and W0[1, 0] == 7 and W0[2, 6] == 20  # w1, w8, w21
    assert W1[0, 0] == 21 and W1[7, 0] == 28  # w22, w29
    W0[2, 6] = -1.0
    assert w[20] == -1.0  # writing through the view writes w


def test_views_of_a_stack_of_weight_vectors(ps5):
    Wk = np.random.RandomState(0).randn(5, 29)
    V0, V1 = ps5.views(Wk)
    assert V0.shape == (5, 3, 7) and V1.shape == (5, 8, 1)
    np.testing.assert_array_equal(V0[3], ps5.views(Wk[3])[0])


def test_normal_init_is_the_problem_sets_draw(ps5):
    np.random.seed(0)
    expected = np.concatenate([np.random.randn(7), np.random.randn(7), np.random.randn(7),
                               np.random.randn(8)])
    np.testing.assert_array_equal(init_weights(ps5, "normal", 0), expected)


@pytest.mark.parametrize("init,scale", [("xavier", lambda i, o: np.sqrt(2 / (i + o))),
                                        ("he", lambda i, o: np.sqrt(2 / i))])
def test_xavier_and_he_scale_each_layer_and_zero_the_biases(init, scale):
    lay = Layout.build(4, (30, 20), 1)
    w = init_weights(lay, init, 3)
    raw = init_weights(lay, "normal", 3)
    for l, (W, R) in enumerate(zip(lay.views(w), lay.views(raw))):
        assert np.all(W[0] == 0)
        np.testing.assert_allclose(W[1:], R[1:] * scale(lay.sizes[l], lay.sizes[l + 1]))


def test_deep_names_and_sizes():
    lay = Layout.build(3, (4, 2), 3, "tanh", "softmax", ("a", "b", "c"))
    assert lay.sizes == (3, 4, 2, 3)
    assert lay.n_params == 4 * 4 + 5 * 2 + 3 * 3
    assert lay.weight_name(4) == "w5: a → n1.1"
    assert lay.weight_name(16) == "w17: b2 → n2.1"
    assert lay.weight_names()[-1] == "w35: n2.2 → o3"


@pytest.mark.parametrize("kw", [dict(activation="swish"), dict(output="relu"),
                                dict(hidden=(0,))])
def test_bad_layouts_are_user_errors(kw):
    args = dict(n_in=2, hidden=(7,), n_out=1) | kw
    with pytest.raises(ScratchnetError):
        Layout.build(**args)


def test_unknown_init():
    with pytest.raises(ScratchnetError, match="^init: must be one of normal, xavier, he"):
        init_weights(Layout.build(2, 7), "uniform")


@pytest.mark.parametrize("init", ["normal", "xavier", "he"])
@pytest.mark.parametrize("sizes", [(2, 7, 1), (4, 30, 20, 3), (3, 2)])
def test_batched_draw_is_the_per_seed_draw_bit_for_bit(init, sizes):
    lay = Layout.build(sizes[0], sizes[1:-1], sizes[-1]) if len(sizes) > 2 else \
        Layout((3, 2), (), "sigmoid")
    seeds = [0, 1, 2, 17, 0, 2**32 - 1, 123456789]  # repeats and the largest legal seed
    W = init_weights_batch(lay, init, seeds)
    assert W.shape == (len(seeds), lay.n_params) and W.dtype == np.float64
    for k, s in enumerate(seeds):
        assert np.array_equal(W[k], init_weights(lay, init, s))


def test_batched_draw_leaves_the_global_state_alone_and_checks_its_input():
    lay = Layout.build(2, 7)
    np.random.seed(5)
    expected = np.random.rand(3)
    np.random.seed(5)
    init_weights_batch(lay, "normal", range(10))
    assert np.array_equal(np.random.rand(3), expected)
    assert init_weights_batch(lay, "he", []).shape == (0, 29)
    with pytest.raises(ScratchnetError, match="^init: "):
        init_weights_batch(lay, "uniform", [0])
    with pytest.raises(ValueError):
        init_weights_batch(lay, "normal", [-1])
