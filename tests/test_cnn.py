"""The small CNN: its θ layout, gradients (finite differences and torch), augmentation and a
tiny training run.  The ≥ 97 % digits target is a benchmark (bench/bench_cnn.py), not a test."""
import numpy as np
import pytest

from scratchnet.cnn import net as cnn
from scratchnet.cnn.net import CNNConfig, CNNLayout, ConvBlock
from scratchnet.core.errors import ScratchnetError

LAYOUTS = {
    "same-max-relu": CNNLayout.build((1, 6, 6), (ConvBlock(3, 3, "same", "max"),), (5,), 3),
    "valid-avg-tanh": CNNLayout.build((2, 5, 5), (ConvBlock(2, 2, "valid", "avg"),), (4,), 3,
                                      "tanh"),
    "two-blocks-sigmoid": CNNLayout.build(
        (1, 6, 6), (ConvBlock(2, 3, "same", "max"), ConvBlock(3, 3, "valid", None)), (), 2,
        "sigmoid"),
}


def batch(layout, rng, n=3):
    x = rng.rand(n, *layout.in_shape)
    k = layout.dense.sizes[-1]
    return x, np.eye(k)[rng.randint(0, k, n)]


def test_theta_layout_counts_and_views():
    L = LAYOUTS["same-max-relu"]
    # 3 kernels 1×3×3 + 3 biases; 3 maps of 3×3 after the pool = 27 → 5 → 3: 28·5 + 6·3
    assert L.map_shapes == [(1, 6, 6), (3, 3, 3)]
    assert L.n_params == 27 + 3 + 28 * 5 + 6 * 3
    theta = np.arange(L.n_params, dtype=float)
    (K, b), = L.views(theta)[0]
    assert K.shape == (3, 1, 3, 3) and b.tolist() == [27.0, 28.0, 29.0]
    assert L.views(theta)[1][0] == 30.0
    mask = L.weight_mask()
    assert mask.sum() == 27 + 27 * 5 + 5 * 3  # kernels and weights, no biases


@pytest.mark.parametrize("name", LAYOUTS)
def test_cnn_gradient_matches_finite_differences(rng, name):
    L = LAYOUTS[name]
    theta = cnn.init_params(L, 3) + 0.05 * rng.randn(L.n_params)  # nonzero biases too
    x, y = batch(L, rng)
    _, g = cnn.loss_and_grad(L, theta, x, y)
    np.testing.assert_allclose(g, cnn.numeric_grad(L, theta, x, y), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", LAYOUTS)
def test_cnn_matches_its_pytorch_twin(rng, name):
    import torch

    L = LAYOUTS[name]
    theta = cnn.init_params(L, 1) + 0.05 * rng.randn(L.n_params)
    x, y = batch(L, rng, 4)
    E, g = cnn.loss_and_grad(L, theta, x, y)
    model = cnn.to_torch(L, theta)
    logits = model(torch.from_numpy(x))
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y.argmax(1)),
                                             reduction="sum")
    loss.backward()
    np.testing.assert_allclose(torch.softmax(logits, 1).detach().numpy(),
                               cnn.predict_proba(L, theta, x), rtol=1e-12, atol=1e-14)
    assert loss.item() == pytest.approx(E, rel=1e-12)
    np.testing.assert_allclose(cnn.from_torch_grad(L, model), g, rtol=1e-10, atol=1e-13)


def test_shift_images_moves_pixels_and_fills_zeros():
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    down_left = cnn.shift_images(np.repeat(x, 2, 0), np.array([1, 0]), np.array([-1, 0]))
    np.testing.assert_array_equal(down_left[0, 0], [[0, 0, 0], [2, 3, 0], [5, 6, 0]])
    np.testing.assert_array_equal(down_left[1], x[0])  # (0, 0): unchanged


def test_augmentation_is_reproducible_by_seed(rng):
    from scratchnet.training.optim import epoch_rng

    x = rng.rand(20, 1, 8, 8)
    a = cnn.augment(x, epoch_rng(0, 3), 1, flip=True)
    np.testing.assert_array_equal(a, cnn.augment(x, epoch_rng(0, 3), 1, flip=True))
    assert not np.array_equal(a, cnn.augment(x, epoch_rng(1, 3), 1, flip=True))
    assert not np.array_equal(a, cnn.augment(x, epoch_rng(0, 4), 1, flip=True))
    np.testing.assert_array_equal(cnn.augment(x, epoch_rng(0, 3), 0), x)


def test_flip_mirrors_some_images_left_right(rng):
    from scratchnet.training.optim import epoch_rng

    x = rng.rand(40, 1, 4, 4)
    a = cnn.augment(x, epoch_rng(5, 0), max_shift=0, flip=True)
    mirrored = [np.array_equal(a[i], x[i, :, :, ::-1]) for i in range(40)]
    kept = [np.array_equal(a[i], x[i]) for i in range(40)]
    assert all(m or k for m, k in zip(mirrored, kept)) and 5 < sum(mirrored) < 35


def bars(n: int, seed: int = 0):
    """6×6 images of one horizontal (class 0) or vertical (class 1) bar, plus noise."""
    r = np.random.RandomState(seed)
    x = 0.1 * r.rand(n, 1, 6, 6)
    labels = r.randint(0, 2, n)
    pos = r.randint(0, 6, n)
    for i in range(n):
        if labels[i]:
            x[i, 0, :, pos[i]] += 1.0
        else:
            x[i, 0, pos[i], :] += 1.0
    return x, labels


def test_train_cnn_learns_bars_and_is_reproducible():
    x, labels = bars(120)
    cfg = CNNConfig(blocks=(ConvBlock(4, 3, "same", "max"),), hidden=(8,), epochs=8,
                    batch_size=16, lr=1e-2, max_shift=1)
    r = cnn.train_cnn(cfg, x, labels)
    assert r.final["test_acc"] >= 0.95
    assert r.history["train_loss"][-1] < 0.5 * r.history["train_loss"][0]
    r2 = cnn.train_cnn(cfg, x, labels)
    np.testing.assert_array_equal(r.theta, r2.theta)
    # the history records the weights before each epoch's updates: epoch 0 = the init
    p0 = cnn.predict_proba(r.layout, cnn.init_params(r.layout, cfg.seed), r.x_test)
    assert r.history["test_acc"][0] == np.mean(p0.argmax(1) == r.l_test)


def test_digits_load_from_scikit_learn_without_download():
    images, labels = cnn.load_digits_images()
    assert images.shape == (1797, 1, 8, 8) and labels.shape == (1797,)
    assert images.min() == 0.0 and images.max() == 1.0 and set(labels) == set(range(10))


def test_bad_layouts_are_user_errors():
    with pytest.raises(ScratchnetError, match="shrink to nothing"):
        CNNLayout.build((1, 4, 4), (ConvBlock(2, 3, "valid", "max", 4),), (), 2)
    with pytest.raises(ScratchnetError, match="pool"):
        CNNLayout.build((1, 4, 4), (ConvBlock(2, 3, "same", "median"),), (), 2)


def test_training_runs_on_one_blas_thread():
    from threadpoolctl import threadpool_info

    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    with cnn.blas_threads(1):
        inside = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    assert blas and inside == [1] * len(blas)
    assert [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"] == \
        [i["num_threads"] for i in blas]  # restored afterwards
