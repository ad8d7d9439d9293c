"""A small convolutional network: convolution blocks (kernels → activation → pooling), flatten,
then the existing dense layers (``network.Layout`` + ``backprop``) with a softmax output.

All parameters live in one flat vector θ, as the dense network's ``w``: for every block its
kernels K (F, C, k, k) then its biases b (F,), row-major, then the dense ``w`` in the usual
w1..wP order.  The backward pass is the chain rule block by block (``scratchnet.cnn.conv``), the
dense part is ``backprop.backward``; the optimizers are ``scratchnet.training.optim``'s table.

Trained on scikit-learn's bundled 8×8 digits (``sklearn.datasets.load_digits``: a file inside
the package, no download), with augmentation by small random shifts.
"""
from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from . import conv
from ..core.activations import ACTIVATIONS
from ..core.backprop import backward, forward, output_delta
from ..core.data import split_indices
from ..core.errors import ScratchnetError
from ..core.losses import LOSSES
from ..core.network import Layout, init_weights
from ..training.optim import OPTIMIZERS, Hyper, Schedule, epoch_rng, penalty
from ..training.options import check_epochs_fit
from ..training.run import METRICS, Outcome, Run, deferred_interrupts

Array = np.ndarray


@dataclass(frozen=True)
class ConvBlock:
    """Kernels (``filters`` of ``kernel``×``kernel``) → activation → pooling."""

    filters: int
    kernel: int = 3
    padding: str = "same"  # valid | same
    pool: str | None = "max"  # max | avg | None
    pool_size: int = 2


@dataclass(frozen=True)
class CNNLayout:
    in_shape: tuple[int, int, int]  # (C, H, W) of one image
    blocks: tuple[ConvBlock, ...]
    dense: Layout  # flattened maps → hidden… → classes (softmax)
    activation: str = "relu"  # after every convolution, from the ACTIVATIONS table

    @classmethod
    def build(cls, in_shape=(1, 8, 8), blocks=(ConvBlock(16),), hidden=(64,),
              n_classes: int = 10, activation: str = "relu") -> "CNNLayout":
        if activation not in ACTIVATIONS or activation == "softmax":
            raise ScratchnetError(f"activation: unknown '{activation}'")
        blocks = tuple(blocks)
        for blk in blocks:
            if blk.padding not in conv.PADDINGS:
                raise ScratchnetError(f"padding: unknown '{blk.padding}' (valid, same)")
            if blk.pool is not None and blk.pool not in conv.POOLS:
                raise ScratchnetError(f"pool: unknown '{blk.pool}' (max, avg or None)")
        shapes = _map_shapes(tuple(in_shape), blocks)
        n_flat = int(np.prod(shapes[-1]))
        dense = Layout.build(n_flat, tuple(hidden), n_classes, activation, "softmax")
        return cls(tuple(in_shape), blocks, dense, activation)

    @property
    def map_shapes(self) -> list[tuple[int, int, int]]:
        """(C, H, W) of the input and after every block."""
        return _map_shapes(self.in_shape, self.blocks)

    @property
    def conv_shapes(self) -> list[tuple[int, int, int, int]]:
        """K's shape (F, C, k, k) per block."""
        return [(b.filters, c, b.kernel, b.kernel)
                for b, (c, _, _) in zip(self.blocks, self.map_shapes)]

    @property
    def n_params(self) -> int:
        return sum(int(np.prod(s)) + s[0] for s in self.conv_shapes) + self.dense.n_params

    def views(self, theta: Array) -> tuple[list[tuple[Array, Array]], Array]:
        """([(K, b) per block], dense w): views into θ, no copies."""
        out, o = [], 0
        for s in self.conv_shapes:
            n = int(np.prod(s))
            out.append((theta[o:o + n].reshape(s), theta[o + n:o + n + s[0]]))
            o += n + s[0]
        return out, theta[o:]

    def weight_mask(self) -> Array:
        """1 for kernels and dense weights, 0 for every bias (what the penalties shrink)."""
        mask = np.ones(self.n_params)
        convs, w = self.views(mask)
        for _, b in convs:
            b[:] = 0.0
        for M in self.dense.views(w):
            M[0] = 0.0
        return mask

    def describe(self) -> str:
        parts = [f"{self.in_shape[1]}×{self.in_shape[2]}×{self.in_shape[0]}"]
        for b in self.blocks:
            parts.append(f"conv{b.kernel}×{b.kernel}·{b.filters}({b.padding})"
                         + (f"-{b.pool}pool{b.pool_size}" if b.pool else ""))
        return " → ".join(parts + [self.dense.describe()])


def _map_shapes(in_shape, blocks) -> list[tuple[int, int, int]]:
    shapes = [in_shape]
    for b in blocks:
        _, H, W = shapes[-1]
        H, W = conv.conv_output_size(H, b.kernel, b.padding), conv.conv_output_size(
            W, b.kernel, b.padding)
        if b.pool:
            H, W = H // b.pool_size, W // b.pool_size
        if H < 1 or W < 1:
            raise ScratchnetError(f"the maps shrink to nothing after block {b}")
        shapes.append((b.filters, H, W))
    return shapes


def init_params(layout: CNNLayout, seed: int = 0) -> Array:
    """He initialisation (N(0, 1)·√(2/fan_in)) for kernels, zero biases, dense layers ``he``."""
    rng = np.random.RandomState(seed)
    theta = np.zeros(layout.n_params)
    convs, w = layout.views(theta)
    for K, _ in convs:
        F, C, k, _ = K.shape
        K[:] = rng.randn(*K.shape) * np.sqrt(2.0 / (C * k * k))
    w[:] = init_weights(layout.dense, "he", seed + 1)
    return theta


# ---- forward and backward ---------------------------------------------------------------
def forward_all(layout: CNNLayout, theta: Array, x: Array) -> tuple[list, list[Array]]:
    """(caches per block, the dense β list) for images x of shape (N, C, H, W)."""
    convs, w = layout.views(theta)
    act = ACTIVATIONS[layout.activation]
    caches, h = [], x
    for blk, (K, b) in zip(layout.blocks, convs):
        alpha, c_conv = conv.conv2d_forward(h, K, b, blk.padding)  # (N, F, H', W')
        beta = act.f(alpha)  # (N, F, H', W')   β = f(α)
        c_pool = None
        if blk.pool:
            h, c_pool = conv.POOL_FUNCTIONS[blk.pool][0](beta, blk.pool_size)
        else:
            h = beta
        caches.append((c_conv, beta, c_pool))
    betas = forward(layout.dense, w, conv.flatten(h))  # the existing dense layers
    caches.append(h.shape)
    return caches, betas


def predict_proba(layout: CNNLayout, theta: Array, x: Array, batch: int = 512) -> Array:
    """Softmax probabilities (N, classes), computed in batches to bound memory."""
    return np.vstack([forward_all(layout, theta, x[i:i + batch])[1][-1]
                      for i in range(0, len(x), batch)])


def loss_and_grad(layout: CNNLayout, theta: Array, x: Array, y: Array,
                  loss: str = "ce") -> tuple[float, Array]:
    """E on (x, y one-hot) summed over the images, and ∂E/∂θ."""
    caches, betas = forward_all(layout, theta, x)
    w = layout.views(theta)[1]
    grad = np.empty_like(theta)
    gconvs, gw = layout.views(grad)
    delta = output_delta(layout.dense, loss, betas[-1], y)  # ŷ − y for softmax + ce
    # the dense weights the usual way, and δ_0 = ∂E/∂β_0: the error reaching the flattened maps
    gw[:], delta_0 = backward(layout.dense, w, betas, delta, input_delta=True)
    g = conv.unflatten(delta_0, caches[-1])  # (N, n_flat) → the maps' shape
    act = ACTIVATIONS[layout.activation]
    for i in reversed(range(len(layout.blocks))):
        blk, (gK, gb), (c_conv, beta, c_pool) = layout.blocks[i], gconvs[i], caches[i]
        if blk.pool:
            g = conv.POOL_FUNCTIONS[blk.pool][1](g, c_pool)  # ∂E/∂β through the pooling
        g = act.backward(beta, g)  # ∂E/∂α = ∂E/∂β ⊙ f′(β)
        # ∂E/∂(block input) (not needed below the first block: the image does not learn)
        g, gK[:], gb[:] = conv.conv2d_backward(g, c_conv, input_grad=i > 0)
    return LOSSES[loss].value(y, betas[-1]), grad


def numeric_grad(layout: CNNLayout, theta: Array, x: Array, y: Array, loss: str = "ce",
                 h: float = 1e-6, index=None) -> Array:
    """Central differences of E for the θ entries in ``index`` (default: all)."""
    index = range(theta.size) if index is None else index
    E = LOSSES[loss].value
    out, tp = [], theta.copy()
    for k in index:
        tp[k] = theta[k] + h
        ep = E(y, forward_all(layout, tp, x)[1][-1])
        tp[k] = theta[k] - h
        em = E(y, forward_all(layout, tp, x)[1][-1])
        tp[k] = theta[k]
        out.append((ep - em) / (2 * h))
    return np.array(out)


# ---- image augmentation -----------------------------------------------------------------
def shift_images(x: Array, dy: Array, dx: Array) -> Array:
    """Image n moved dy[n] rows down and dx[n] columns right, zeros filling in (N, C, H, W)."""
    N, C, H, W = x.shape
    m = int(max(np.abs(dy).max(initial=0), np.abs(dx).max(initial=0)))
    padded = np.pad(x, ((0, 0), (0, 0), (m, m), (m, m)))
    rows = (m - np.asarray(dy))[:, None] + np.arange(H)  # (N, H) source rows
    cols = (m - np.asarray(dx))[:, None] + np.arange(W)  # (N, W)
    n = np.arange(N)[:, None, None, None]
    c = np.arange(C)[None, :, None, None]
    return padded[n, c, rows[:, None, :, None], cols[:, None, None, :]]


def augment(x: Array, rng: np.random.Generator, max_shift: int = 1,
            flip: bool = False) -> Array:
    """Every image shifted by a random (dy, dx) in [−max_shift, max_shift]² and, with
    ``flip``, mirrored left-right with probability ½ (right for many photos, wrong for digits:
    a mirrored 2 is no 2)."""
    if max_shift:
        x = shift_images(x, rng.integers(-max_shift, max_shift + 1, len(x)),
                         rng.integers(-max_shift, max_shift + 1, len(x)))
    if flip:
        mirror = rng.random(len(x)) < 0.5
        x = np.where(mirror[:, None, None, None], x[..., ::-1], x)
    return x


# ---- data and training ------------------------------------------------------------------
def load_digits_images() -> tuple[Array, Array]:
    """scikit-learn's 8×8 digits: images (1797, 1, 8, 8) scaled to [0, 1], labels (1797,)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ScratchnetError("the digits data ship with scikit-learn: pip install "
                              "'scratchnet[sklearn]'") from None
    d = load_digits()
    return d.images[:, None, :, :] / 16.0, d.target.astype(int)


@dataclass
class CNNConfig:
    # 8×8 → 32 kernels 3×3 (same) → ReLU → 2×2 max-pool → 4×4×32 = 512 → 128 ReLU → 10 softmax
    blocks: tuple[ConvBlock, ...] = (ConvBlock(32, 3, "same", "max"),)
    hidden: tuple[int, ...] = (128,)
    activation: str = "relu"
    optimizer: str = "adam"
    lr: float = 3e-3
    schedule: str = "cosine"
    epochs: int = 30
    batch_size: int = 32
    l2: float = 0.0
    max_shift: int = 1  # augmentation: random shifts of up to this many pixels
    flip: bool = False
    seed: int = 0
    test_size: float = 0.2
    split_seed: int = 0
    blas_threads: int | None = 1  # None: leave numpy's BLAS threads as they are

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CNNResult:
    layout: CNNLayout
    theta: Array
    history: dict  # per epoch (the weights before that epoch's updates): losses, accuracies
    final: dict
    config: CNNConfig
    x_test: Array = field(repr=False, default=None)
    l_test: Array = field(repr=False, default=None)


def _evaluate(layout, theta, x, labels) -> tuple[float, float]:
    p = predict_proba(layout, theta, x)
    return (LOSSES["ce"].value(np.eye(p.shape[1])[labels], p),
            float(np.mean(p.argmax(axis=1) == labels)))


def blas_threads(n: int | None):
    """A context limiting numpy's BLAS to n threads.  These matrices are small: one thread
    multiplies them faster than several that wait for each other (4× faster on the shared
    2-core box).  threadpoolctl ships with scikit-learn; without it, nothing changes."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        n = None
    return contextlib.nullcontext() if n is None else threadpool_limits(n, "blas")


class _CNNEngine:
    """The CNN's epochs under the ``Engine`` contract of ``scratchnet.training.run``.

    Per epoch t, as everywhere in scratchnet: record the train/test loss and accuracy of the
    current weights θ, then one update per mini-batch of a fresh seeded shuffle of the
    training images, shifted (and flipped) afresh for the epoch."""

    name = "numpy"
    supports = frozenset({"optimizer", "batch_size", "schedule", "l2"})
    keeps_last_finite = False  # the Run finds a diverged epoch by replaying
    stops_early = False
    best_epoch = None
    monitor = None

    def __init__(self, layout: CNNLayout, config: "CNNConfig", Y: Array, x_tr: Array,
                 l_tr: Array, x_te: Array, l_te: Array):
        self.layout, self.config, self.Y = layout, config, Y
        self.x_tr, self.l_tr, self.x_te, self.l_te = x_tr, l_tr, x_te, l_te
        self.opt, self.hyper = OPTIMIZERS[config.optimizer], Hyper()
        self.schedule = Schedule(config.schedule, period=config.epochs)
        self.mask = layout.weight_mask()
        self.state: dict | None = None
        self._saved = None

    def epochs(self, theta: Array, start: int, stop: int, out) -> Outcome:
        c, layout = self.config, self.layout
        if self.state is None:
            self.state = self.opt.init(theta)
        self._saved = copy.deepcopy(self.state)
        for t in range(start, stop):
            i = t - start
            out.train_loss[i], out.train_acc[i] = _evaluate(layout, theta, self.x_tr, self.l_tr)
            out.test_loss[i], out.test_acc[i] = _evaluate(layout, theta, self.x_te, self.l_te)
            rng = epoch_rng(c.seed, t)
            x = augment(self.x_tr, rng, c.max_shift, c.flip)  # fresh shifts every epoch
            order = rng.permutation(len(x))
            eta = self.schedule.lr(c.lr, t)
            for b in range(0, len(x), c.batch_size):
                rows = order[b:b + c.batch_size]
                _, g = loss_and_grad(layout, theta, x[rows], self.Y[self.l_tr[rows]])
                if c.l2:
                    g += penalty(theta, self.mask, c.l2)[1]
                self.opt.step(theta, g, eta, self.state, self.hyper)
        return Outcome(stop - start)

    def rollback(self) -> None:
        self.state = self._saved

    def finish(self, theta: Array) -> bool:
        return False


def train_cnn(config: CNNConfig | None = None, images: Array | None = None,
              labels: Array | None = None, progress=None) -> CNNResult:
    """Train the CNN (default: on the digits) with mini-batches from ``scratchnet.training.optim``.

    Per epoch, as everywhere in scratchnet: record the train/test loss and accuracy of the
    current weights, then one update per mini-batch of a fresh seeded shuffle of the
    (augmented) training images.  ``progress(epoch, history)`` is called after each epoch.
    """
    config = config or CNNConfig()
    if config.optimizer not in OPTIMIZERS:
        raise ScratchnetError(f"optimizer: unknown '{config.optimizer}'")
    check_epochs_fit(config.epochs, 48)  # the per-epoch history below, before it exists
    if images is None:
        images, labels = load_digits_images()
    labels = np.asarray(labels, int)
    classes = int(labels.max()) + 1
    tr, te = split_indices(len(labels), config.test_size, config.split_seed)
    x_tr, x_te, l_tr, l_te = images[tr], images[te], labels[tr], labels[te]
    Y = np.eye(classes)
    layout = CNNLayout.build(images.shape[1:], config.blocks, config.hidden, classes,
                             config.activation)
    theta = init_params(layout, config.seed)
    run = Run(_CNNEngine(layout, config, Y, x_tr, l_tr, x_te, l_te), theta, config.epochs,
              slice_epochs=1)
    hist = {k: np.full(config.epochs, np.nan) for k in METRICS}
    t0 = time.perf_counter()
    with blas_threads(config.blas_threads):
        try:
            while not run.finished and run.stopped != "interrupted":
                run.advance(1)  # one epoch: the smallest piece Ctrl-C keeps
                if run.stopped in ("interrupted", "diverged"):
                    break
                last = run.last
                for k in METRICS:
                    hist[k][last["epoch"]] = last[k]
                if progress:
                    progress(last["epoch"], hist)
        except KeyboardInterrupt:  # in the progress callback: the epochs done are whole
            run.stopped = "interrupted"
        # after Ctrl-C the epochs done are kept; a second one waits until the result is whole
        try:
            with deferred_interrupts():
                result = _cnn_result(run, hist, config, (x_tr, l_tr, x_te, l_te), t0)
        except KeyboardInterrupt:  # delivered once the result was built
            result.final["stopped"] = "interrupted"
    return result


def _cnn_result(run, hist: dict, config: "CNNConfig", data, t0: float) -> CNNResult:
    """The result of ``run`` (finished or stopped): final metrics of the weights it holds."""
    x_tr, l_tr, x_te, l_te = data
    layout, theta = run.engine.layout, run.w
    recorded = run.history
    for k in METRICS:
        hist[k][:len(recorded)] = getattr(recorded, k)
    seconds = time.perf_counter() - t0
    (tr_loss, tr_acc), (te_loss, te_acc) = (_evaluate(layout, theta, x_tr, l_tr),
                                            _evaluate(layout, theta, x_te, l_te))
    final = {"train_loss": tr_loss, "test_loss": te_loss, "train_acc": tr_acc,
             "test_acc": te_acc, "epochs": run.epoch, "seconds": seconds,
             "n_train": len(l_tr), "n_test": len(l_te), "n_params": layout.n_params,
             "layout": layout.describe(), "stopped": run.stopped or "completed"}
    return CNNResult(layout, theta, hist, final, config, x_te, l_te)


# ---- the PyTorch twin -------------------------------------------------------------------
def to_torch(layout: CNNLayout, theta: Array):
    """The same network in PyTorch (float64), θ copied in: Conv2d → activation → MaxPool2d /
    AvgPool2d per block, Flatten, Linear layers.  It returns the logits α_L (apply softmax to
    compare with :func:`predict_proba`); ``from_torch_grad`` maps its gradients back to θ."""
    import torch
    from torch import nn

    acts = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "identity": nn.Identity}
    convs, w = layout.views(theta)
    mods = []
    for blk, (K, b) in zip(layout.blocks, convs):
        c = nn.Conv2d(K.shape[1], K.shape[0], blk.kernel, padding=blk.padding).double()
        with torch.no_grad():
            c.weight.copy_(torch.from_numpy(K))
            c.bias.copy_(torch.from_numpy(b))
        mods += [c, acts[layout.activation]()]
        if blk.pool:
            mods.append((nn.MaxPool2d if blk.pool == "max" else nn.AvgPool2d)(blk.pool_size))
    mods.append(nn.Flatten())
    Ws = layout.dense.views(w)
    for l, W in enumerate(Ws):
        lin = nn.Linear(W.shape[0] - 1, W.shape[1]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W[1:].T.copy()))  # torch: (out, in)
            lin.bias.copy_(torch.from_numpy(W[0].copy()))
        mods.append(lin)
        if l < len(Ws) - 1:
            mods.append(acts[layout.dense.activations[l]]())
    return nn.Sequential(*mods)


def from_torch_grad(layout: CNNLayout, model) -> Array:
    """θ-shaped gradient from the ``.grad`` of a :func:`to_torch` model's parameters."""
    grad = np.empty(layout.n_params)
    gconvs, gw = layout.views(grad)
    convs = [m for m in model if m.__class__.__name__ == "Conv2d"]
    lins = [m for m in model if m.__class__.__name__ == "Linear"]
    for (gK, gb), c in zip(gconvs, convs):
        gK[:], gb[:] = c.weight.grad.numpy(), c.bias.grad.numpy()
    for G, lin in zip(layout.dense.views(gw), lins):
        G[0], G[1:] = lin.bias.grad.numpy(), lin.weight.grad.numpy().T
    return grad
