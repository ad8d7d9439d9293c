"""The PyTorch twin computes what the numpy engine computes (float64, tight tolerance)."""
import numpy as np
import pytest

from scratchnet.core.backprop import loss_and_grad, predict
from scratchnet.core.errors import ScratchnetError
from scratchnet.core.losses import LOSSES
from scratchnet.core.activations import HIDDEN_ACTIVATIONS
from scratchnet.core.network import Layout, init_weights
from scratchnet.training.train import History, TrainConfig, prepare, run_epochs
from scratchnet.trust import twin

torch = pytest.importorskip("torch", reason="torch not installed (make test installs it)")

HIDDEN = list(HIDDEN_ACTIVATIONS)  # the table: a new activation is tested here at once
PAIRS = [("sigmoid", "sse"), ("sigmoid", "bce"), ("identity", "sse"), ("softmax", "ce"),
         ("softmax", "sse")]


def engine_run(prep, config, w0=None):
    w = init_weights(prep.layout, config.init, config.seed) if w0 is None else w0.copy()
    hist = History.empty(config.epochs)
    run_epochs(prep.layout, config.loss, w, prep.problem, config.lr, 0, config.epochs, hist)
    return w, hist


@pytest.mark.parametrize("hidden", [(), (5,), (4, 3)], ids=["0-hidden", "1-hidden", "2-hidden"])
@pytest.mark.parametrize("output,loss", PAIRS)
@pytest.mark.parametrize("act", HIDDEN)
def test_twin_trains_like_the_engine(act, output, loss, hidden):
    config = TrainConfig(data="moons", n_samples=60, hidden=hidden, activation=act,
                         output=output, loss=loss, init="xavier", lr=0.01, epochs=150)
    prep = prepare(config)
    w, hist = engine_run(prep, config)
    res = twin.train_twin(prep, config)
    scale = max(1.0, np.abs(w).max())
    assert np.abs(res.w - w).max() <= 1e-10 * scale
    np.testing.assert_allclose(res.train_loss, hist.train_loss, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(res.test_loss, hist.test_loss, rtol=1e-10, atol=1e-10)
    # the weights moved: a twin that ignored the gradient would fail the comparison above
    assert np.abs(w - init_weights(prep.layout, "xavier", 0)).max() > 1e-3


def test_ps5_setup_agrees_to_1e9_in_float64():
    config = TrainConfig(epochs=2000)
    prep = prepare(config)
    w, hist = engine_run(prep, config)
    res = twin.train_twin(prep, config, checkpoints=(0, 1000, 2000))
    assert np.abs(res.w - w).max() <= 1e-9
    assert np.abs(res.train_loss - hist.train_loss).max() <= 1e-9
    assert res.train_loss[-1] < res.train_loss[0] - 1.0  # it did train
    np.testing.assert_array_equal(res.snapshots[0], init_weights(prep.layout))
    np.testing.assert_array_equal(res.snapshots[2000], res.w)
    assert res.dtype == "float64"


def test_float32_is_close_but_not_float64_exact():
    config = TrainConfig(epochs=500)
    prep = prepare(config)
    w, _ = engine_run(prep, config)
    res = twin.train_twin(prep, config, dtype="float32")
    d = np.abs(res.w - w).max()
    assert 1e-12 < d < 1e-3
    assert res.dtype == "float32"


def test_weight_mapping_follows_the_ps5_numbering():
    lay = Layout.build(2, 7)
    w = np.arange(1.0, 30.0)  # w_k = k
    m = twin.to_torch(lay, w)
    lin0, lin1 = m[0], m[2]
    np.testing.assert_array_equal(lin0.bias.detach().numpy(), np.arange(1.0, 8.0))  # w1..w7
    assert lin0.weight[0, 0].item() == 8.0  # w8: x_1 → n1
    assert lin0.weight[0, 1].item() == 15.0  # w15: x_2 → n1
    assert lin0.weight[6, 0].item() == 14.0  # w14: x_1 → n7
    assert lin1.bias.item() == 22.0 and lin1.weight[0, 0].item() == 23.0
    assert isinstance(m[-1], torch.nn.Sigmoid)  # the output activation is part of the twin
    np.testing.assert_array_equal(twin.from_torch(m, lay), w)


@pytest.mark.parametrize("output", ["sigmoid", "identity", "softmax"])
def test_forward_and_gradient_match_the_engine(output, rng):
    n_out = 3 if output == "softmax" else 1
    lay = Layout.build(2, (4, 3), n_out, "tanh", output)
    w = rng.randn(lay.n_params)
    x = rng.randn(9, 2)
    y = np.eye(3)[rng.randint(0, 3, 9)] if output == "softmax" else rng.rand(9, 1)
    m = twin.to_torch(lay, w)
    xt = torch.from_numpy(x)
    np.testing.assert_allclose(m(xt).detach().numpy(), predict(lay, w, x), rtol=1e-13,
                               atol=1e-14)
    loss = "ce" if output == "softmax" else "sse"
    value, _ = twin.loss_fn(loss, output)
    E = value(m(xt), torch.from_numpy(y))
    E.backward()
    e_ref, g_ref = loss_and_grad(lay, loss, w, x, y)
    assert abs(E.item() - e_ref) <= 1e-12 * max(1, abs(e_ref))
    g = twin.from_torch_grad(m, lay)
    np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-12)


def test_loss_value_clips_like_losses_py():
    value, _ = twin.loss_fn("bce", "sigmoid")
    p = np.array([[1.0], [0.0], [0.3]])  # saturated outputs: log(0) without the clip
    y = np.array([[0.0], [1.0], [1.0]])
    got = value(torch.from_numpy(p), torch.from_numpy(y)).item()
    assert np.isfinite(got)
    assert abs(got - LOSSES["bce"].value(y, p)) <= 1e-9 * got


def test_model_input_and_torch_default_init():
    from scratchnet.core.model import Model

    lay = Layout.build(2, 3)
    w = np.linspace(-1, 1, lay.n_params)
    m = twin.to_torch(Model(lay, w))
    np.testing.assert_array_equal(twin.from_torch(m, lay), w)
    wt = twin.torch_default_weights(lay, seed=0)
    assert wt.shape == w.shape and not np.allclose(wt, init_weights(lay))
    np.testing.assert_array_equal(wt, twin.torch_default_weights(lay, seed=0))
    bound = 1 / np.sqrt(2)  # PyTorch's U(−1/√fan_in, 1/√fan_in) for the first layer
    assert np.abs(lay.views(wt)[0]).max() <= bound


def test_bad_input_raises_a_user_error():
    lay = Layout.build(2, 3)
    with pytest.raises(ScratchnetError, match="needs 13"):
        twin.to_torch(lay, np.zeros(5))
    with pytest.raises(ScratchnetError, match="dtype"):
        twin.to_torch(lay, dtype="float16")
    with pytest.raises(ScratchnetError, match="Linear layers"):
        twin.from_torch(twin.to_torch(Layout.build(2, (3, 3))), lay)
    assert twin.torch_available() is True
