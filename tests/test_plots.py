import io

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from scratchnet.report import plots  # noqa: E402
from scratchnet.core.backprop import predict  # noqa: E402
from scratchnet.core.data import Standardizer  # noqa: E402
from scratchnet.training.train import TrainConfig, train  # noqa: E402


@pytest.fixture(scope="module")
def run():
    return train(TrainConfig(epochs=400, lr=1e-2, log_every=0))


@pytest.fixture(scope="module")
def run3():
    return train(TrainConfig(data="gaussians", n_classes=3, output="softmax", loss="ce",
                             lr=1e-3, epochs=300, log_every=0))


def png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = buf.getvalue()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return data


def scatter_colors(ax) -> set[str]:
    return {to_hex(c) for coll in ax.collections if isinstance(coll, PathCollection)
            for c in coll.get_facecolors()}


def test_map_at_training_points_is_predict_proba(run):
    """The grid goes through the model's training statistics: at the training points (put on
    the grid) the map's probability is exactly model.predict_proba there."""
    model, prep = run.model, run.prepared
    X = prep.dataset.X[prep.train_idx]
    g1, g2 = np.unique(X[:, 0]), np.unique(X[:, 1])
    P = plots.probability_grid(model, g1, g2)
    at_points = P[np.searchsorted(g2, X[:, 1]), np.searchsorted(g1, X[:, 0])]
    np.testing.assert_allclose(at_points, model.predict_proba(X), rtol=0, atol=1e-14)
    # and that is the network on the training-standardized inputs, prepared.x_scaler
    direct = predict(prep.layout, model.w, prep.x_scaler.transform(X))[:, 0]
    np.testing.assert_allclose(at_points[:, 1], direct, atol=1e-14)
    # the problem set's way — its grid x_1 ∈ [−6, −4], x_2 ∈ [−900, 1035] standardized with
    # the grid's own mean and std — draws another map
    g1, g2 = np.linspace(-6, -4, 100), np.linspace(-900, 1035, 100)
    xx, yy = np.meshgrid(g1, g2)
    grid = np.column_stack([xx.ravel(), yy.ravel()])
    ps5 = predict(prep.layout, model.w, Standardizer.fit(grid).transform(grid))[:, 0]
    ours = plots.probability_grid(model, g1, g2)[..., 1].ravel()
    assert np.max(np.abs(ps5 - ours)) > 1e-2


def test_grid_axes_cover_the_data_with_a_margin(run):
    X = run.prepared.dataset.X
    g1, g2 = plots.grid_axes(X, 50)
    assert g1.size == g2.size == 50
    assert g1[0] < X[:, 0].min() and g1[-1] > X[:, 0].max()
    assert g2[0] < X[:, 1].min() and g2[-1] > X[:, 1].max()


def test_data_figure(run):
    fig = plots.data_figure(run.prepared.dataset)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert "x_1" in ax.get_xlabel() and "x_2" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["class 0", "class 1"]
    assert scatter_colors(ax) == {plots.CLASS_COLORS[0], plots.CLASS_COLORS[1]}
    png(fig)


def test_decision_map_uses_the_same_class_colours(run):
    prep = run.prepared
    fig = plots.decision_map_figure(run.model, prep.dataset, prep.train_idx, prep.test_idx,
                                    resolution=60)
    ax = fig.axes[0]
    assert scatter_colors(ax) == {plots.CLASS_COLORS[0], plots.CLASS_COLORS[1]}
    assert len(fig.axes) == 2  # the map and its colorbar
    names = [t.get_text() for t in fig.legends[0].get_texts()]
    assert names == ["class 0 (train)", "class 0 (test)", "class 1 (train)", "class 1 (test)"]
    png(fig)


def test_decision_map_three_classes(run3):
    prep = run3.prepared
    fig = plots.decision_map_figure(run3.model, prep.dataset, prep.train_idx, prep.test_idx,
                                    resolution=60)
    assert scatter_colors(fig.axes[0]) == set(plots.CLASS_COLORS[:3])
    png(fig)


def test_losses_figure(run):
    h = run.history
    fig = plots.losses_figure(h.train_loss, h.test_loss, log=True,
                              others={"twin": (h.train_loss, h.test_loss)})
    assert [ax.get_title() for ax in fig.axes] == ["Training loss", "Test loss"]
    assert all(ax.get_yscale() == "log" for ax in fig.axes)
    assert plots.losses_figure(h.train_loss, h.test_loss).axes[0].get_yscale() == "linear"
    png(fig)


def test_hidden_units_figure(run, run3):
    fig = plots.hidden_units_figure(run.model, run.prepared.dataset, resolution=40)
    visible = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert len(visible) == 7 + 1  # n1..n7 and the output
    assert visible[0].get_title().startswith("n1")
    png(fig)
    png(plots.hidden_units_figure(run3.model, run3.prepared.dataset, resolution=30))


def test_question4_figures(run):
    ep = np.array([0, 1, 10, 100])
    png(plots.monitor_figure(ep, np.ones((4, 2)), np.zeros((4, 1)), ["a", "b"], ["h"]))
    curves = np.vstack([np.linspace(10, 1, 20), np.linspace(10, 2, 20),
                        np.full(20, np.nan)])
    fig = plots.lr_figure([1e-3, 1e-2, 1e-1], curves, np.arange(20), [1, 2, np.nan], 1e-2,
                          [False, False, True])
    assert fig.axes[1].get_xscale() == "log"
    png(fig)
    g = np.linspace(0, 1, 64)
    png(plots.conv_pool_figure(g, g, np.tile(g, (64, 1))))


def test_conv_pool():
    P = np.zeros((40, 40))
    P[:, 20:] = 1.0  # a vertical border
    edges, pooled = plots.conv_pool(P, pool=8)
    assert edges.shape == (38, 38) and pooled.shape == (5, 5)
    assert np.all(edges[:, :17] == 0) and np.all(edges[:, 18:20] > 0)
    assert np.all(pooled[:, :2] == 0) and np.all(pooled[:, 3:] == 1)


def test_figures_do_not_touch_pyplot(run):
    before = plt.get_fignums()
    plots.data_figure(run.prepared.dataset)
    plots.losses_figure(run.history.train_loss, run.history.test_loss)
    assert plt.get_fignums() == before


def test_no_latex_needed(run):
    with matplotlib.rc_context({"text.usetex": True}):
        fig = plots.data_figure(run.prepared.dataset)
    png(fig)
