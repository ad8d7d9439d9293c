"""Question 4 of the problem set explains vanishing gradients, the learning rate, the softmax
layer, convolution kernels and pooling in words.  Each function here makes one of them a run a
student can repeat and see (``scratchnet demo NAME --out DIR``):

* ``vanishing``: one deep net on the same data, four ways — sigmoid with the problem set's
  N(0, 1) weights, sigmoid with Xavier weights, tanh with Xavier, ReLU with He — with the
  gradient norm of every layer and the share of saturated units recorded each epoch;
* ``learning-rate``: the problem set's network trained with a range of η on one figure:
  too small, good, oscillating, diverging (each verdict computed from its curve);
* ``softmax``: a 3-class problem (``gaussians`` or ``spiral``), the class map and the
  per-class probability maps σ(z)_k;
* ``digits``: the small CNN on scikit-learn's 8×8 digits, its learned kernels and feature maps.

Each returns a :class:`DemoResult` (the lines the CLI prints, the numbers, the figure paths).
Figures are written only when ``out`` is given; matplotlib is imported only then.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ..cnn import conv
from ..cnn.net import CNNConfig, predict_proba, train_cnn
from ..core.errors import DivergedError
from ..training.run import deferred_interrupts
from ..training.train import TrainConfig, train
from .plots import (class_color, draw_kernels, grid_axes, new_figure, probability_grid, save,
                    styled)


@dataclass
class DemoResult:
    name: str
    lines: list[str]  # what `scratchnet demo` prints
    data: dict  # the measured numbers
    figures: list[str] = field(default_factory=list)  # paths written
    interrupted: str | None = None  # "interrupted at epoch N …" when Ctrl-C stopped the runs


def _train_each(configs: dict) -> tuple[dict, dict, str | None]:
    """Train every config of ``{label: TrainConfig}`` in turn (all were checked when built,
    before any training).  Returns the finished runs ``{label: TrainResult}``, which of them
    diverged (kept at their last finite epoch), and None — or, after Ctrl-C (SIGTERM and
    SIGHUP take its path), the one line saying where it stopped: the finished runs are kept,
    the one in flight is left out (a partial curve would read as a verdict)."""
    done, diverged = {}, {}
    label = next(iter(configs), "")
    try:
        for label, cfg in configs.items():
            try:
                r, bad = train(cfg), False
            except DivergedError as e:
                r, bad = e.result, True
            if r.stopped == "interrupted":
                return done, diverged, _stopped_line(r.final["epochs"], label, len(done),
                                                     len(configs))
            done[label], diverged[label] = r, bad
    except KeyboardInterrupt:  # outside a run (preparing the next one): nothing of it trained
        return done, diverged, _stopped_line(0, label, len(done), len(configs))
    return done, diverged, None


def _stopped_line(epoch: int, label, finished: int, total: int) -> str:
    return (f"interrupted at epoch {epoch} of {label} ({finished} of {total} finished, "
            "kept)")


def _figure_path(out: str, name: str) -> str:
    os.makedirs(out, exist_ok=True)
    return os.path.join(out, name)


# ---- vanishing gradients ----------------------------------------------------------------
VANISHING_SETUPS = (("sigmoid", "normal", "sigmoid, N(0, 1) weights (the problem set)"),
                    ("sigmoid", "xavier", "sigmoid, Xavier weights"),
                    ("tanh", "xavier", "tanh, Xavier weights"),
                    ("relu", "he", "ReLU, He weights"))


def vanishing(out: str | None = None, epochs: int = 1500, data: str = "spiral",
              depth: int = 8, width: int = 16, lr: float = 1e-3, seed: int = 0) -> DemoResult:
    """The same deep network (``depth`` hidden layers of ``width`` units) on the same data and
    the same plain gradient descent, four ways (``VANISHING_SETUPS``), monitored every epoch.

    The sigmoid's slope β(1 − β) is at most ¼, and the chain rule multiplies one slope per layer
    into the gradient of the early weights; saturated units (slope ≈ 0) multiply by almost
    nothing.  The output is a sigmoid with cross-entropy (δ = ŷ − y) in every setup, so the
    output layer itself never vanishes: what differs is the hidden layers.
    """
    configs = {label: TrainConfig(data=data, hidden=(width,) * depth, activation=act,
                                  init=init, output="sigmoid", loss="bce", lr=lr,
                                  epochs=epochs, seed=seed, monitor=True, log_every=0)
               for act, init, label in VANISHING_SETUPS}
    runs, _, stopped = _train_each(configs)
    with deferred_interrupts():  # a second Ctrl-C waits for the lines and figures
        result = _vanishing_result(runs, out, epochs, data, depth, width, lr)
    result.interrupted = stopped
    return result


def _vanishing_result(runs: dict, out, epochs, data, depth, width, lr) -> DemoResult:
    lines = [f"{depth} hidden layers of {width} units on '{data}', plain gradient descent "
             f"η = {lr:g}, {epochs} epochs; ‖∂E/∂W_l‖ at epoch 0, first → last layer:"]
    data_out = {}
    for label, r in runs.items():
        g0 = r.monitor["grad_norms"][0]
        sat = r.monitor["saturated"]
        ratio = g0[0] / g0[-1]
        data_out[label] = {"grad_norms_0": g0, "first_over_last": ratio,
                           "saturated_0": float(sat[0].mean()),
                           "train_loss": r.history.train_loss,
                           "final_train_loss": r.final["train_loss"],
                           "test_acc": r.final["test_acc"], "monitor": r.monitor}
        lines.append(f"  {label:<42} first/last layer {ratio:8.1e}   saturated {sat[0].mean():4.0%}"
                     f"   loss {r.history.train_loss[0]:7.1f} → {r.final['train_loss']:7.1f}"
                     f"   test acc {r.final['test_acc']:.2f}")
    lines.append("  (saturated: f′ below 10% of its maximum; for ReLU that is β = 0, an inactive "
                 "unit, normal for about half of them)")
    figures = []
    if out is not None and runs:
        figures = [_figure_path(out, "vanishing.png"), _figure_path(out, "gradients.png")]
        _save(_vanishing_figure(runs, depth), figures[0])
        _save(_gradients_figure(runs), figures[1])
    return DemoResult("vanishing", lines, data_out, figures)


def _save(fig, path: str) -> None:
    save(fig, path)


def _vanishing_figure(runs: dict, depth: int):

    @styled
    def build():
        fig = new_figure(14.0, 4.2)
        a, b, c = fig.subplots(1, 3)
        layers = np.arange(1, depth + 2)
        for k, (label, r) in enumerate(runs.items()):
            m = r.monitor
            a.plot(layers, m["grad_norms"][0], "-o", c=class_color(k), label=label)
            b.plot(r.history.train_loss, c=class_color(k), label=label)
            c.plot(m["epoch"], 100 * m["saturated"].mean(axis=1), c=class_color(k), label=label)
        a.set_yscale("log")
        a.set_xticks(layers)
        a.set_xlabel("weight layer l (1 = inputs → first hidden, last = → output)")
        a.set_ylabel(r"$\Vert\partial E/\partial W_l\Vert$ at epoch 0")
        a.set_title("Gradient reaching each layer")
        a.legend(fontsize=8.5)
        b.set_yscale("log")
        b.set_xlabel("epoch")
        b.set_ylabel("training loss")
        b.set_title("Training loss")
        c.set_ylim(-3, 103)
        c.set_xlabel("epoch")
        c.set_ylabel("saturated hidden units (%)")
        c.set_title("Saturation (all hidden layers)\nReLU: inactive units (β = 0) count as "
                    "saturated", fontsize=10.5)
        return fig

    return build()


def _gradients_figure(runs: dict):
    from matplotlib import colormaps


    @styled
    def build():
        fig = new_figure(4.0 * len(runs), 3.8)
        axes = np.atleast_1d(fig.subplots(1, len(runs), sharey=True))
        for ax, (label, r) in zip(axes, runs.items()):
            G = r.monitor["grad_norms"]
            ep = np.maximum(r.monitor["epoch"], 1)
            cmap = colormaps["viridis"]
            for l in range(G.shape[1]):
                ax.plot(ep, G[:, l], c=cmap(l / max(G.shape[1] - 1, 1)), lw=1.3,
                        label=f"layer {l + 1}" if l in (0, G.shape[1] - 1) else None)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(label, fontsize=10.5)
            ax.set_xlabel("epoch (log)")
        axes[0].set_ylabel(r"$\Vert\partial E/\partial W_l\Vert$")
        axes[0].legend(fontsize=8.5)
        fig.suptitle("Per-layer gradient norm during training (dark: first layer, yellow: "
                     "output layer)")
        return fig

    return build()


# ---- learning rate ----------------------------------------------------------------------
LEARNING_RATES = (1e-4, 1e-3, 3e-3, 2e-2, 3e-2)


def verdict(loss: np.ndarray, diverged: bool, best_final: float) -> str:
    """diverged / oscillating / too small / good, read off one training-loss curve.

    Gradient descent with a small enough η lowers the loss every epoch; an η beyond what the
    curvature allows overshoots the valley, and the loss goes *up* on some epochs
    (oscillating) or on all of them (diverged: it ends above where it started, or overflows).
    Among the curves that only go down, one that ends 1.5× above the best run's final loss is
    too small: it is still on its way."""
    if diverged or loss[-1] > loss[0]:
        return "diverged"
    if np.any(np.diff(loss) > 1e-3 * loss[:-1]):  # a rise of more than 0.1% in one epoch
        return "oscillating"
    if loss[-1] > 1.5 * best_final:
        return "too small"
    return "good"


def learning_rate(out: str | None = None, lrs=LEARNING_RATES, epochs: int = 2000,
                  data: str = "ps5", seed: int = 0) -> DemoResult:
    """The problem set's 2-7-1 sigmoid network, with a linear output as in its Question 3
    (a sigmoid output bounds the loss and hides divergence), trained with each η."""
    configs = {f"η = {float(lr):g}": TrainConfig(data=data, output="identity", lr=float(lr),
                                                 epochs=epochs, seed=seed, log_every=0)
               for lr in lrs}
    runs, bad, stopped = _train_each(configs)
    with deferred_interrupts():  # a second Ctrl-C waits for the lines and the figure
        result = _lr_result({r.config.lr: r.history.train_loss for r in runs.values()},
                            {runs[k].config.lr: bad[k] for k in runs}, out, epochs, data)
    result.interrupted = stopped
    return result


def _lr_result(curves: dict, diverged: dict, out, epochs: int, data: str) -> DemoResult:
    finals = [c[-1] for lr, c in curves.items() if not diverged[lr]]
    best = min(finals) if finals else np.inf
    verdicts = {lr: verdict(c, diverged[lr], best) for lr, c in curves.items()}
    lines = [f"2-7-1 network on '{data}' (linear output, E = ½Σ(y − ŷ)²), {epochs} epochs:"]
    for lr, c in curves.items():
        rises = int(np.sum(np.diff(c) > 1e-3 * c[:-1]))
        end = (f"diverged at epoch {len(c)}" if diverged[lr]
               else f"loss {c[0]:.2f} → {c[-1]:.3f}"
               + (f" (rose on {rises} of {len(c) - 1} epochs)" if rises else ""))
        lines.append(f"  η = {lr:<8g} {verdicts[lr]:<12} {end}")
    figures = []
    if out is not None and curves:
        figures = [_figure_path(out, "learning-rate.png")]
        _save(_lr_figure(curves, verdicts), figures[0])
    return DemoResult("learning-rate", lines, {"curves": curves, "verdicts": verdicts},
                      figures)


def _lr_figure(curves: dict, verdicts: dict):

    @styled
    def build():
        fig = new_figure(8.0, 4.8)
        ax = fig.add_subplot()
        cap = 100 * max(c[0] for c in curves.values())  # diverging curves leave the plot here
        for k, (lr, c) in enumerate(curves.items()):
            c = np.asarray(c, float)
            shown = np.where(c <= cap, c, np.nan)  # drawn until it leaves the plot, not clipped
            rises = int(np.sum(np.diff(c) > 1e-3 * c[:-1]))
            note = f" (rose on {rises} epochs)" if verdicts[lr] == "oscillating" else ""
            ax.plot(shown, c=class_color(k), lw=1.6, label=f"η = {lr:g}: {verdicts[lr]}{note}")
            if verdicts[lr] == "diverged":
                last = int(np.flatnonzero(np.isfinite(shown))[-1]) if np.isfinite(shown).any() \
                    else 0
                ax.plot([last], [shown[last]], "x", c=class_color(k), ms=10, mew=2)
        ax.set_yscale("log")
        ax.set_ylim(top=cap)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss  ½Σ(y − ŷ)²")
        ax.set_title("One network, linear output, five learning rates (× = diverged)\n"
                     "a sigmoid output would cap the loss at N/2 and hide divergence",
                     fontsize=10.5)
        ax.legend()
        _oscillation_inset(ax, curves, verdicts)
        return fig

    return build()


def _oscillation_inset(ax, curves: dict, verdicts: dict, width: int = 24) -> None:
    """The first oscillating curve zoomed in on ``width`` epochs up to just past the last
    epoch where it rose: at the main plot's scale its rises and falls (steps across the
    valley and back) look like a flat line."""
    found = [(k, lr) for k, lr in enumerate(curves) if verdicts[lr] == "oscillating"]
    if not found:
        return
    k, lr = found[0]
    c = np.asarray(curves[lr], float)
    rose = np.flatnonzero(np.diff(c) > 1e-3 * c[:-1])
    stop = min(len(c), int(rose[-1]) + 6) if rose.size else len(c)
    start = max(0, stop - width)
    inset = ax.inset_axes([0.14, 0.3, 0.42, 0.3])  # clear of the curves and the legend
    inset.plot(np.arange(start, stop), c[start:stop], "o-", c=class_color(k), ms=3, lw=1)
    inset.set_title(f"η = {lr:g}, epochs {start}–{stop - 1}: the loss rises and falls",
                    fontsize=8.5)
    inset.tick_params(labelsize=7.5)


# ---- softmax ----------------------------------------------------------------------------
def softmax(out: str | None = None, data: str = "gaussians", n_classes: int = 3,
            epochs: int | None = None, seed: int = 0) -> DemoResult:
    """A softmax output layer σ(z)_k = e^{z_k} / Σ_j e^{z_j} with cross-entropy on K classes:
    the likeliest-class map and one probability map per class (they sum to 1 everywhere)."""
    spiral = data == "spiral"
    cfg = TrainConfig(data=data, n_classes=n_classes, n_samples=150 * n_classes if spiral
                      else None, hidden=(32, 32) if spiral else (16,), activation="tanh",
                      init="xavier", output="softmax", loss="ce", optimizer="adam", lr=0.01,
                      epochs=epochs or (1500 if spiral else 300), seed=seed, log_every=0)
    r = train(cfg)  # Ctrl-C: the epochs so far are kept (r.stopped == "interrupted")
    with deferred_interrupts():  # a second Ctrl-C waits for the lines and the figure
        result = _softmax_result(r, out, data, n_classes)
    if r.stopped == "interrupted":
        result.interrupted = (f"interrupted at epoch {r.final['epochs']} of {cfg.epochs} "
                              "(the epochs so far kept)")
    return result


def _softmax_result(r, out, data: str, n_classes: int) -> DemoResult:
    model, ds = r.model, r.prepared.dataset
    proba = model.predict_proba(ds.X)
    lines = [f"{n_classes} classes on '{data}': {r.model.layout.describe()} network, softmax "
             f"output, cross-entropy, adam; {r.final['epochs']} epochs",
             f"  train acc {r.final['train_acc']:.3f}   test acc {r.final['test_acc']:.3f}",
             f"  σ(z) of the first point: [{', '.join(f'{p:.3f}' for p in proba[0])}] "
             f"(sums to {proba[0].sum():.3f}; the largest is the predicted class)"]
    figures = []
    if out is not None and r.final["epochs"]:
        figures = [_figure_path(out, "softmax.png")]
        _save(_softmax_figure(r), figures[0])
    return DemoResult("softmax", lines, {"result": r, "proba": proba}, figures)


def _softmax_figure(r):
    from matplotlib.colors import LinearSegmentedColormap


    @styled
    def build():
        model, ds = r.model, r.prepared.dataset
        g1, g2 = grid_axes(ds.X, 150)
        proba = probability_grid(model, g1, g2)  # (len(g2), len(g1), K)
        K = proba.shape[-1]
        labels = np.searchsorted(model.classes, ds.y)
        fig = new_figure(3.6 * (K + 1), 3.7)
        axes = fig.subplots(1, K + 1, sharex=True, sharey=True)
        top = proba.argmax(axis=-1)
        from matplotlib.colors import ListedColormap

        axes[0].pcolormesh(g1, g2, top, cmap=ListedColormap([class_color(k) for k in range(K)]),
                           alpha=0.35, shading="auto", rasterized=True)
        axes[0].set_title("likeliest class: argmax σ(z)")
        for k in range(K):
            cmap = LinearSegmentedColormap.from_list(f"c{k}", ["#ffffff", class_color(k)])
            im = axes[k + 1].pcolormesh(g1, g2, proba[..., k], cmap=cmap, vmin=0, vmax=1,
                                        shading="auto", rasterized=True)
            axes[k + 1].contour(g1, g2, proba[..., k], levels=[0.5], colors="k", linewidths=1)
            axes[k + 1].set_title(f"σ(z)_{k + 1} = P(class {model.classes[k]:g})")
            fig.colorbar(im, ax=axes[k + 1], shrink=0.8)
        for ax in axes:
            ax.scatter(ds.X[:, 0], ds.X[:, 1], c=[class_color(k) for k in labels], s=8,
                       edgecolors="white", linewidths=0.4)
        fig.suptitle("Softmax output: one probability map per class (black: 0.5)")
        return fig

    return build()


# ---- digits: kernels and pooling --------------------------------------------------------
def digits(out: str | None = None, epochs: int = 30, seed: int = 0) -> DemoResult:
    """The CNN of ``scratchnet.cnn.net`` on the 8×8 digits: accuracy, its 3×3 kernels and what they
    make of a few test digits (feature maps after ReLU, then after 2×2 max pooling)."""
    r = train_cnn(CNNConfig(epochs=epochs, seed=seed))  # Ctrl-C: the epochs so far are kept
    with deferred_interrupts():  # a second Ctrl-C waits for the lines and the figures
        result = _digits_result(r, out)
    if r.final["stopped"] == "interrupted":
        result.interrupted = (f"interrupted at epoch {r.final['epochs']} of {epochs} (the "
                              "epochs so far kept)")
    return result


def _digits_result(r, out) -> DemoResult:
    f = r.final
    lines = [f"CNN {f['layout']} ({f['n_params']} parameters), adam + cosine schedule, "
             f"shifts of ±1 pixel; {f['epochs']} epochs in {f['seconds']:.1f} s",
             f"  train acc {f['train_acc']:.4f}   test acc {f['test_acc']:.4f} "
             f"({f['n_test']} test digits)"]
    figures = []
    if out is not None and f["epochs"]:
        figures = [_figure_path(out, "digits-kernels.png"),
                   _figure_path(out, "digits-feature-maps.png")]
        _save(_kernels_figure(r), figures[0])
        _save(_feature_maps_figure(r), figures[1])
    return DemoResult("digits", lines, {"result": r}, figures)


def _kernels_figure(r):

    @styled
    def build():
        K, _ = r.layout.views(r.theta)[0][0]  # the first block's kernels (F, 1, 3, 3)
        F = K.shape[0]
        cols = 8
        rows = int(np.ceil(F / cols))
        fig = new_figure(1.3 * cols, 1.4 * rows + 0.5)
        draw_kernels(np.atleast_1d(fig.subplots(rows, cols)).ravel(), K, F)
        fig.suptitle("Learned 3×3 kernels (red +, blue −)")
        return fig

    return build()


def _feature_maps_figure(r, n_images: int = 3, n_maps: int = 6):

    @styled
    def build():
        K, b = r.layout.views(r.theta)[0][0]
        blk = r.layout.blocks[0]
        x = r.x_test[:n_images]
        alpha, _ = conv.conv2d_forward(x, K, b, blk.padding)
        beta = np.maximum(alpha, 0.0) if r.layout.activation == "relu" else alpha
        pooled = conv.maxpool_forward(beta, blk.pool_size)[0] if blk.pool == "max" else beta
        pred = predict_proba(r.layout, r.theta, x).argmax(axis=1)
        strongest = np.argsort(-beta.reshape(n_images, len(K), -1).mean(axis=(0, 2)))[:n_maps]
        fig = new_figure(1.35 * (2 * n_maps + 1), 1.45 * n_images + 0.6)
        axes = fig.subplots(n_images, 2 * n_maps + 1)
        for i in range(n_images):
            axes[i, 0].imshow(x[i, 0], cmap="gray_r")
            axes[i, 0].set_title(f"digit {r.l_test[i]} → {pred[i]}", fontsize=8.5)
            for j, f in enumerate(strongest):
                axes[i, 1 + j].imshow(beta[i, f], cmap="magma")
                axes[i, 1 + n_maps + j].imshow(pooled[i, f], cmap="magma")
                if i == 0:
                    axes[i, 1 + j].set_title(f"K{f + 1}", fontsize=8.5)
                    axes[i, 1 + n_maps + j].set_title(f"K{f + 1} pooled", fontsize=8.5)
        for ax in axes.ravel():
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle("Test digits, their feature maps after ReLU (8×8) and after 2×2 max "
                     "pooling (4×4)")
        return fig

    return build()


DEMOS = {"vanishing": vanishing, "learning-rate": learning_rate, "softmax": softmax,
         "digits": digits}
