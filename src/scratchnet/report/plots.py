"""Every figure of the report, each a function returning a matplotlib ``Figure``.

Notebook users call them directly (``data_figure(prepared.dataset)``); the report saves them.
Figures are built on ``matplotlib.figure.Figure`` (no pyplot state, nothing to close) with one
style: class k always has ``CLASS_COLORS[k]`` (class 0 purple, class 1 red, as in the problem
set), probabilities of class 1 run from the class-0 colour through white to the class-1 colour,
and no LaTeX is needed (mathtext only).  matplotlib is imported inside the functions.
"""
from __future__ import annotations

import functools

import numpy as np

from ..core.backprop import forward
from ..core.io import save_figure

CLASS_COLORS = ("#6a3d9a", "#d7301f", "#1b9e77", "#1f78b4", "#e6ab02", "#666666", "#a6761d")
STYLE = {
    "text.usetex": False, "mathtext.fontset": "dejavusans", "font.size": 11,
    "axes.titlesize": 12, "axes.labelsize": 11.5, "legend.fontsize": 9.5,
    "xtick.labelsize": 10, "ytick.labelsize": 10, "axes.spines.top": False,
    "axes.spines.right": False, "axes.grid": False, "savefig.dpi": 130,
}
TRAIN_MARKER = dict(marker="o", s=30, edgecolors="black", linewidths=0.6)
TEST_MARKER = dict(marker="D", s=42, edgecolors="black", linewidths=1.5)


def class_color(k: int) -> str:
    return CLASS_COLORS[k % len(CLASS_COLORS)]


def styled(fn):
    """Build the figure under the common rc style (text objects keep it after the block)."""

    @functools.wraps(fn)
    def wrapper(*args, **kw):
        import matplotlib

        with matplotlib.rc_context(STYLE):
            return fn(*args, **kw)

    return wrapper


def new_figure(width: float, height: float, **kw):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained", **kw)


def probability_cmap():
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list(
        "scratchnet_classes", [class_color(0), "#f7f7f7", class_color(1)])


def unit_cmap():
    """Hidden-unit outputs: white (low) to slate grey (high), so class colours stay visible."""
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("scratchnet_units", ["#ffffff", "#9fb3c8",
                                                                 "#2f4858"])


def axis_label(name: str) -> str:
    """``x_1`` → ``$x_1$`` (mathtext, no LaTeX); other names as they are."""
    if len(name) >= 3 and name[0].isalpha() and name[1] == "_" and name[2:].isdigit():
        return f"${name[0]}_{{{name[2:]}}}$" if len(name) > 3 else f"${name}$"
    return name


def class_label(c) -> str:
    return f"class {float(c):g}"


def save(fig, path: str) -> None:
    """Write ``fig`` (format by extension).  Constrained-layout figures already fit their
    labels; the others (the daft diagram) are cut to their content."""
    if fig.get_layout_engine() is None:
        save_figure(fig, path, bbox_inches="tight", pad_inches=0.08)
    else:
        save_figure(fig, path)


# ---- data -----------------------------------------------------------------------------------


def _scatter_classes(ax, X, labels, classes, marker: dict, suffix: str = "", **kw):
    for k, c in enumerate(classes):
        m = labels == k
        if m.any():
            ax.scatter(X[m, 0], X[m, 1], c=class_color(k), label=class_label(c) + suffix,
                       **{**marker, **kw})


@styled
def data_figure(dataset, title: str | None = None):
    """Question 1: the raw data, coloured by class, with a legend and x_1 / x_2 axis labels."""
    classes = np.unique(dataset.y)
    labels = np.searchsorted(classes, dataset.y)
    if title is None:
        title = "PS5 data" if dataset.source == "ps5" else f"data: {dataset.source}"
    fig = new_figure(6.6, 4.6)
    ax = fig.add_subplot()
    _scatter_classes(ax, dataset.X, labels, classes, TRAIN_MARKER, s=40)
    ax.set_xlabel(axis_label(dataset.feature_names[0]))
    ax.set_ylabel(axis_label(dataset.feature_names[1]))
    ax.set_title(f"{title} ({len(dataset.y)} points)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


# ---- losses ---------------------------------------------------------------------------------


@styled
def losses_figure(train_loss, test_loss, log: bool = False, others: dict | None = None,
                  title: str = "", label: str = "scratchnet", rows: tuple | None = None):
    """Training and test loss against epoch in two panels, as the problem set plots them.

    ``others``: {label: (train_loss, test_loss)} drawn dashed on top (e.g. the PyTorch twin).
    The lowest test loss is marked: a test loss that rises again is over-fitting.
    ``rows``: (training rows, test rows): the losses are sums over them; a second axis on the
    right of each panel reads the loss per row (E/N), the scale on which the two compare.
    """
    from matplotlib.ticker import MaxNLocator

    fig = new_figure(11.0, 4.3)
    axes = fig.subplots(1, 2)
    extra = list((others or {}).items())
    for i, (ax, name) in enumerate(zip(axes, ("Training loss", "Test loss"))):
        main = np.asarray(train_loss if i == 0 else test_loss, float)
        ax.plot(np.arange(main.size), main, c="k", lw=1.6, label=label)
        for j, (lab, curves) in enumerate(extra):
            c = np.asarray(curves[i], float)
            ax.plot(np.arange(c.size), c, ls="--", lw=1.6, c=("#ff7f00", "#1f78b4")[j % 2],
                    label=lab)
        if i == 1 and main.size and np.isfinite(main).any():
            t = int(np.nanargmin(main))
            ax.plot([t], [main[t]], "o", c=class_color(1), ms=6, zorder=3,
                    label=f"lowest: {main[t]:.4g} at epoch {t}")
        ax.set_xlabel("Epoch")
        ax.set_title(name)
        ax.xaxis.set_major_locator(MaxNLocator(6))
        if log:
            _log_y(ax)
        else:
            ax.yaxis.set_major_locator(MaxNLocator(6))
        if extra or i == 1:
            ax.legend(loc="upper right")
        if rows:
            n = float(rows[i])
            ax.set_ylabel(f"E (sum over {rows[i]} rows)")
            per = ax.secondary_yaxis("right", functions=(lambda v, n=n: v / n,
                                                         lambda v, n=n: v * n))
            per.set_ylabel("per row E/N")
    if not rows:
        axes[0].set_ylabel("Loss")
    if title:
        fig.suptitle(title)
    return fig


# ---- maps over the input plane ---------------------------------------------------------------


def grid_axes(X: np.ndarray, resolution: int = 200, margin: float = 0.08):
    """Two 1-D grids spanning the raw data range of the first two features, with a margin."""
    lo, hi = X[:, :2].min(axis=0), X[:, :2].max(axis=0)
    pad = margin * (hi - lo)
    return (np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution),
            np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution))


def probability_grid(model, g1: np.ndarray, g2: np.ndarray) -> np.ndarray:
    """Class probabilities on the grid g1 × g2 of *raw* inputs, shape (len(g2), len(g1), K).

    The raw grid goes through ``model.predict_proba``, which standardizes it with the model's
    training statistics — the problem set standardized its grid with the grid's own mean and
    std, which shifts and stretches the map against the data.
    """
    xx, yy = np.meshgrid(g1, g2)
    proba = model.predict_proba(np.column_stack([xx.ravel(), yy.ravel()]))
    return proba.reshape(len(g2), len(g1), -1)


def _points(ax, dataset, train_idx, test_idx, classes):
    labels = np.searchsorted(classes, dataset.y)
    X = dataset.X
    _scatter_classes(ax, X[train_idx], labels[train_idx], classes, TRAIN_MARKER, " (train)")
    _scatter_classes(ax, X[test_idx], labels[test_idx], classes, TEST_MARKER, " (test)")


def _class_mix(proba: np.ndarray) -> np.ndarray:
    """RGB image for K classes: the likeliest class's colour, faded to white where unsure."""
    from matplotlib.colors import to_rgb

    K = proba.shape[-1]
    cols = np.array([to_rgb(class_color(k)) for k in range(K)])
    top = proba.argmax(axis=-1)
    conf = (proba.max(axis=-1) - 1.0 / K) / (1.0 - 1.0 / K)  # 0 = undecided, 1 = certain
    a = 0.15 + 0.7 * conf[..., None]
    return a * cols[top] + (1 - a) * np.ones(3)


@styled
def decision_map_figure(model, dataset, train_idx, test_idx, resolution: int = 200,
                        title: str = "Smooth map of classification", grid=None):
    """The predicted probability over the raw input plane (filled contours, colorbar, the 0.5
    border) with the data on top: class by colour, training points as circles, test points as
    diamonds.  With K > 2 classes each region takes its class's colour, faded where unsure."""
    classes = model.classes if model.classes is not None else np.unique(dataset.y)
    g1, g2 = grid if grid is not None else grid_axes(dataset.X, resolution)
    proba = probability_grid(model, g1, g2)
    fig = new_figure(7.0, 5.2)
    ax = fig.add_subplot()
    if proba.shape[-1] == 2:
        cs = ax.contourf(g1, g2, proba[..., 1], levels=np.linspace(0, 1, 21),
                         cmap=probability_cmap(), vmin=0, vmax=1)
        ax.contour(g1, g2, proba[..., 1], levels=[0.5], colors="k", linewidths=1.6)
        cb = fig.colorbar(cs, ax=ax, ticks=np.linspace(0, 1, 6))
        cb.set_label(f"P({class_label(classes[1])})   (black line: 0.5)")
    else:
        ax.imshow(_class_mix(proba), origin="lower", aspect="auto", interpolation="bilinear",
                  extent=(g1[0], g1[-1], g2[0], g2[-1]))
        for k in range(proba.shape[-1]):  # border of class k: p_k = the largest other p_j
            margin = proba[..., k] - np.delete(proba, k, axis=-1).max(axis=-1)
            ax.contour(g1, g2, margin, levels=[0.0], colors="k", linewidths=1.4)
    _points(ax, dataset, train_idx, test_idx, classes)
    ax.set_xlim(g1[0], g1[-1])
    ax.set_ylim(g2[0], g2[-1])
    names = model.feature_names
    ax.set_xlabel(axis_label(names[0]))
    ax.set_ylabel(axis_label(names[1]))
    ax.set_title(title)
    handles, names = ax.get_legend_handles_labels()  # one column per class: train over test
    rank = {class_label(c): k for k, c in enumerate(classes)}
    order = sorted(range(len(names)), key=lambda i: (rank.get(names[i].rsplit(" (", 1)[0], 0), i))
    fig.legend([handles[i] for i in order], [names[i] for i in order],
               loc="outside lower center", ncol=min(len(classes), 4), frameon=False,
               fontsize=9.5, handletextpad=0.2, columnspacing=1.6)
    return fig


@styled
def hidden_units_figure(model, dataset, resolution: int = 120, max_units: int = 15):
    """The output β of every hidden unit over the same raw grid (small multiples), and the
    network's output in the last panel.  Dashed: where the unit's α = 0 (for a sigmoid unit the
    line β = 0.5 — each hidden unit splits the plane along one straight line)."""
    layout, w = model.layout, model.w
    g1, g2 = grid_axes(dataset.X, resolution)
    xx, yy = np.meshgrid(g1, g2)
    ext = (g1[0], g1[-1], g2[0], g2[-1])
    x = model.standardize(np.column_stack([xx.ravel(), yy.ravel()]))
    betas = forward(layout, w, x)
    Ws = layout.views(w)
    panels = []  # (title, values, alpha or None, (lo, hi))
    for l in range(1, len(layout.sizes) - 1):
        act = layout.layer_activation(l - 1)
        alpha = betas[l - 1] @ Ws[l - 1][1:] + Ws[l - 1][0]
        for j, name in enumerate(layout.unit_names(l)):
            b = betas[l][:, j]
            lo = act.low if np.isfinite(act.low) else float(b.min())
            hi = act.high if np.isfinite(act.high) else float(max(b.max(), lo + 1e-9))
            sub = ""
            if len(layout.sizes) == 3 and layout.sizes[-1] == 1:
                k = layout.offsets[1] + j + 1  # the weight from this unit to the output
                sub = f"  ($w_{{{k + 1}}}$ = {w[k]:+.2f})"
            panels.append((f"{name}{sub}", b, alpha[:, j], (lo, hi)))
    shown = panels[:max_units]
    proba = model.predict_proba(np.column_stack([xx.ravel(), yy.ravel()]))
    classes = model.classes if model.classes is not None else np.arange(proba.shape[1])
    out_title = (f"output: P({class_label(classes[1])})" if proba.shape[1] == 2
                 else "output: likeliest class")
    n = len(shown) + 1
    ncols = min(4, n)
    nrows = int(np.ceil(n / ncols))
    fig = new_figure(3.0 * ncols + 0.9, 2.55 * nrows + 0.5)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, sharey=True)).ravel()
    labels = np.searchsorted(classes, dataset.y) if model.classes is not None else None
    im = None
    for ax, (name, b, a, (lo, hi)) in zip(axes, shown):
        im = ax.imshow(b.reshape(xx.shape), cmap=unit_cmap(), vmin=lo, vmax=hi, origin="lower",
                       aspect="auto", extent=ext, interpolation="bilinear")
        ax.contour(g1, g2, a.reshape(xx.shape), levels=[0.0], colors="#222222",
                   linewidths=1.0, linestyles="--")
        ax.set_title(name, fontsize=10.5)
    ax = axes[len(shown)]
    if proba.shape[1] == 2:
        ax.imshow(proba[:, 1].reshape(xx.shape), cmap=probability_cmap(), vmin=0, vmax=1,
                  origin="lower", aspect="auto", extent=ext, interpolation="bilinear")
    else:
        ax.imshow(_class_mix(proba.reshape(*xx.shape, -1)), origin="lower", aspect="auto",
                  extent=ext, interpolation="bilinear")
    ax.set_title(out_title, fontsize=10.5)
    for a in axes[: len(shown) + 1]:
        if labels is not None:
            a.scatter(dataset.X[:, 0], dataset.X[:, 1], c=[class_color(k) for k in labels],
                      s=11, edgecolors="white", linewidths=0.4)
    for a in axes[len(shown) + 1:]:
        a.set_visible(False)
    for a in axes[(nrows - 1) * ncols:]:
        a.set_xlabel(axis_label(model.feature_names[0]))
    for a in axes[::ncols]:
        a.set_ylabel(axis_label(model.feature_names[1]))
    if im is not None:
        fig.colorbar(im, ax=axes.tolist(), shrink=0.6, pad=0.01, label="hidden unit output β")
    more = f" (first {len(shown)} of {len(panels)})" if len(panels) > len(shown) else ""
    fig.suptitle(f"What every hidden unit computes{more}", fontsize=12.5)
    return fig


# ---- Question 4: measurements ----------------------------------------------------------------


@styled
def monitor_figure(epochs, grad_norms, saturated, layer_names, hidden_names):
    """Left: ‖∂E/∂W_l‖ per weight layer over training; right: the share of saturated hidden
    units (f′ ≈ 0) per hidden layer over training.  Epochs on a log scale (0 at the left)."""
    x = np.asarray(epochs, float)
    fig = new_figure(11.0, 4.0)
    a, b = fig.subplots(1, 2)
    G = np.asarray(grad_norms, float).reshape(len(x), -1)
    for l in range(G.shape[1]):
        a.plot(x, G[:, l], "-o", ms=3, lw=1.5, label=layer_names[l])
    _log_y(a)
    a.set_ylabel(r"$\Vert\partial E / \partial W_l\Vert$")
    a.set_title("Gradient norm per weight layer")
    a.legend()
    S = 100 * np.asarray(saturated, float).reshape(len(x), -1)
    for h in range(S.shape[1]):
        b.plot(x, S[:, h], "-o", ms=3, lw=1.5, label=hidden_names[h])
    top = float(np.nanmax(S)) if S.size and np.isfinite(S).any() else 0.0
    b.set_ylim(0, min(100.0, max(10.0, 1.25 * top)))
    b.set_ylabel("saturated (%)")
    b.set_title("Saturated hidden units (slope < 10% of its maximum)")
    if S.shape[1]:
        b.legend()
    for ax in (a, b):
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlim(left=0)
        ax.set_xlabel("Epoch (log scale)")
    return fig


def _log_y(ax) -> None:
    """Log y axis labelled with plain numbers (0.2, 0.5, 1, 2, 5 …) instead of 2×10⁰.
    Call it after plotting: it reads the data range."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.yaxis.set_major_formatter(plain)
    if hi / max(lo, 1e-300) < 1000:  # up to three decades: label 2 and 5 between the powers
        ax.yaxis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0)))
        ax.yaxis.set_minor_formatter(plain)
    else:
        ax.yaxis.set_minor_formatter(NullFormatter())


@styled
def lr_figure(lrs, curves, epochs, finals, chosen: float, diverged=None,
              final_label: str = "training loss at the end"):
    """Left: training loss against epoch for each η (``curves[k]`` recorded at ``epochs``);
    right: the training loss after the last epoch (``finals``) against η, diverged runs ×."""
    from matplotlib.ticker import MaxNLocator

    lrs, finals = np.asarray(lrs, float), np.asarray(finals, float)
    diverged = np.zeros(lrs.size, bool) if diverged is None else np.asarray(diverged, bool)
    fig = new_figure(11.0, 4.0)
    a, b = fig.subplots(1, 2)
    for k, eta in enumerate(lrs):
        c = np.asarray(curves[k], float)
        ok = np.isfinite(c)
        mine = np.isclose(eta, chosen)
        a.plot(np.asarray(epochs)[ok], c[ok], lw=2.6 if mine else 1.3,
               c="k" if mine else None, label=f"η = {eta:.3g}" + (" (chosen)" if mine else "")
               + (": diverged, off the plot" if diverged[k] else ""))
    a.set_xlabel("Epoch")
    a.xaxis.set_major_locator(MaxNLocator(5))
    a.set_ylabel("training loss")
    a.set_title("Training loss for a few learning rates")
    _log_y(a)
    fig.legend(loc="outside right upper", fontsize=9, frameon=False)
    good = ~diverged & np.isfinite(finals)
    b.plot(lrs[good], finals[good], "-o", c="k")
    if (~good).any():
        y = np.nanmax(finals[good]) if good.any() else 1.0
        b.plot(lrs[~good], np.full((~good).sum(), y), "x", c=class_color(1), ms=10, mew=2,
               label="diverged")
        b.legend()
    b.axvline(chosen, c="0.6", lw=1, ls="--")
    b.set_xscale("log")
    b.set_xlabel("learning rate η")
    b.set_ylabel(final_label)
    b.set_title("Final loss against η (dashed: the chosen η)")
    _log_y(b)
    return fig


def conv_pool(proba: np.ndarray, pool: int = 8):
    """A 3×3 Sobel kernel convolved with the probability image, and a ``pool``×``pool`` max
    pooling of it: (|edge response| of shape (H−2, W−2), pooled of shape (H//pool, W//pool))."""
    kx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float)
    H, W = proba.shape
    win = np.lib.stride_tricks.sliding_window_view(proba, (3, 3))  # (H−2, W−2, 3, 3)
    gx = np.einsum("ijkl,kl->ij", win, kx)
    gy = np.einsum("ijkl,kl->ij", win, kx.T)
    edges = np.hypot(gx, gy)
    h, w = H // pool * pool, W // pool * pool
    pooled = proba[:h, :w].reshape(H // pool, pool, W // pool, pool).max(axis=(1, 3))
    return edges, pooled


@styled
def conv_pool_figure(g1, g2, proba: np.ndarray, pool: int = 8):
    """The map ``proba`` (class-1 probability on the grid), a convolution kernel run over it,
    and max pooling of it — what a CNN layer does, on this run's own 'image'."""
    edges, pooled = conv_pool(proba, pool)
    fig = new_figure(11.0, 3.5)
    axes = fig.subplots(1, 3)
    ext = (g1[0], g1[-1], g2[0], g2[-1])
    axes[0].imshow(proba, origin="lower", aspect="auto", extent=ext, cmap=probability_cmap(),
                   vmin=0, vmax=1)
    axes[0].set_title("the map: P(class 1)")
    axes[1].imshow(edges, origin="lower", aspect="auto", extent=ext, cmap="magma")
    axes[1].set_title("3×3 Sobel kernel: |response|")
    axes[2].imshow(pooled, origin="lower", aspect="auto", extent=ext, cmap=probability_cmap(),
                   vmin=0, vmax=1, interpolation="nearest")
    axes[2].set_title(f"{pool}×{pool} max pooling: {pooled.shape[1]}×{pooled.shape[0]} pixels")
    for a in axes:
        a.set_xticks([])
        a.set_yticks([])
    return fig


def draw_kernels(axes, K: np.ndarray, n: int, fontsize: int = 9) -> None:
    """The 3×3 kernels K[f, 0] for f < n, one to an axis on one symmetric red (+) / blue (−)
    scale; axes beyond n are hidden."""
    lim = np.abs(K[:n]).max()
    for f, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if f < n:
            ax.imshow(K[f, 0], cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_title(f"K{f + 1}", fontsize=fontsize)
        else:
            ax.set_visible(False)


@styled
def learned_kernels_figure(K: np.ndarray, image: np.ndarray, maps: np.ndarray, epochs: int,
                           test_acc: float, show: int = 16):
    """The first ``show`` learned 3×3 kernels K (F, 1, 3, 3) of the digits CNN, then one test
    digit and what four of them make of it (feature maps after ReLU): learned, and the same
    kernel applied at every position."""
    fig = new_figure(11.0, 2.9)
    top = fig.subfigures(1, 2, width_ratios=[1.15, 1.0])
    n = min(show, K.shape[0])
    draw_kernels(top[0].subplots(2, (n + 1) // 2).ravel(), K, n, fontsize=8)
    top[0].suptitle(f"Learned 3×3 kernels after {epochs} epochs (red +, blue −)", fontsize=10)
    right = top[1].subplots(1, 5)
    right[0].imshow(image, cmap="gray_r")
    right[0].set_title("test digit", fontsize=8)
    for j, ax in enumerate(right[1:]):
        ax.imshow(maps[j], cmap="magma")
        ax.set_title(f"K{j + 1} map", fontsize=8)
    for ax in right:
        ax.set_xticks([])
        ax.set_yticks([])
    top[1].suptitle(f"its feature maps after ReLU (test accuracy {test_acc:.2f})", fontsize=10)
    return fig
