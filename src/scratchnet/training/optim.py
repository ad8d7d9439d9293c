"""Beyond full-batch gradient descent: optimizers, learning-rate schedules, penalties, early
stopping and input jitter — and the general numpy training loop that combines them.

The problem set updates every weight with w ← w − η ∂E/∂w once per epoch, the gradient summed
over all training rows.  Everything here keeps that gradient (a sum over the rows of a batch,
never an average) and changes only *how* it becomes a step:

    sgd / gd   w ← w − η g
    momentum   v ← μ v + g;              w ← w − η v
    nesterov   v ← μ v + g;              w ← w − η (g + μ v)
    rmsprop    r ← ρ r + (1 − ρ) g²;      w ← w − η g / (√r + ε)
    adam       m ← β₁ m + (1 − β₁) g;  v ← β₂ v + (1 − β₂) g²;  t ← t + 1
               w ← w − η m̂ / (√v̂ + ε)   with m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ)

(the same conventions as ``torch.optim``: SGD with dampening 0, RMSprop uncentred, Adam with
coupled L2; the tests hold each step equal to torch's on the same gradients).

``OPTIMIZERS`` is a table name → :class:`Optimizer` (an ``init`` giving the state, a ``step``
updating ``w`` in place); ``SCHEDULES`` a table name → η_t.  Both work on any float array, so the
dense network, the CNN (``scratchnet.cnn.net``) and the estimator share them.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..core.backprop import accuracy, backward, forward, output_delta, predict
from ..core.losses import LOSSES
from ..core.network import Layout
from .monitor import layer_gradient_norms, saturated_share
from .run import ENGINE_OPTIONS, Outcome

Array = np.ndarray


# ---- optimizers -------------------------------------------------------------------------
@dataclass(frozen=True)
class Hyper:
    """The optimizers' hyperparameters (each optimizer reads the ones it needs)."""

    momentum: float = 0.9  # μ of momentum / nesterov
    beta1: float = 0.9  # β₁ of adam
    beta2: float = 0.999  # β₂ of adam
    rho: float = 0.99  # ρ of rmsprop (torch's ``alpha``)
    eps: float = 1e-8  # ε of rmsprop / adam


@dataclass(frozen=True)
class Optimizer:
    name: str
    init: Callable[[Array], dict]  # w → a fresh state (zeros shaped like w)
    step: Callable[[Array, Array, float, dict, Hyper], None]  # (w, g, η, state, hyper): in place
    formula: str


def _no_state(w: Array) -> dict:
    return {}


def _sgd(w: Array, g: Array, lr: float, s: dict, h: Hyper) -> None:
    w -= lr * g


def _velocity(w: Array) -> dict:
    return {"v": np.zeros_like(w)}


def _momentum(w: Array, g: Array, lr: float, s: dict, h: Hyper) -> None:
    v = s["v"]
    v *= h.momentum
    v += g  # v ← μ v + g  (a running sum of past gradients, decaying by μ per step)
    w -= lr * v


def _nesterov(w: Array, g: Array, lr: float, s: dict, h: Hyper) -> None:
    v = s["v"]
    v *= h.momentum
    v += g
    w -= lr * (g + h.momentum * v)  # look one velocity step ahead (Sutskever's form, as torch)


def _square_avg(w: Array) -> dict:
    return {"r": np.zeros_like(w)}


def _rmsprop(w: Array, g: Array, lr: float, s: dict, h: Hyper) -> None:
    r = s["r"]
    r *= h.rho
    r += (1.0 - h.rho) * g * g  # running mean of g²: each weight gets its own step size
    w -= lr * g / (np.sqrt(r) + h.eps)


def _moments(w: Array) -> dict:
    return {"m": np.zeros_like(w), "v": np.zeros_like(w), "t": 0}


def _adam(w: Array, g: Array, lr: float, s: dict, h: Hyper) -> None:
    s["t"] += 1
    m, v, t = s["m"], s["v"], s["t"]
    m *= h.beta1
    m += (1.0 - h.beta1) * g  # first moment (mean of g)
    v *= h.beta2
    v += (1.0 - h.beta2) * g * g  # second moment (mean of g²)
    m_hat = m / (1.0 - h.beta1 ** t)  # both start at 0: undo that bias
    v_hat = v / (1.0 - h.beta2 ** t)
    w -= lr * m_hat / (np.sqrt(v_hat) + h.eps)


OPTIMIZERS: dict[str, Optimizer] = {
    "gd": Optimizer("gd", _no_state, _sgd, "w ← w − η g"),
    "sgd": Optimizer("sgd", _no_state, _sgd, "w ← w − η g  (g over one mini-batch)"),
    "momentum": Optimizer("momentum", _velocity, _momentum, "v ← μv + g;  w ← w − η v"),
    "nesterov": Optimizer("nesterov", _velocity, _nesterov,
                          "v ← μv + g;  w ← w − η (g + μv)"),
    "rmsprop": Optimizer("rmsprop", _square_avg, _rmsprop,
                         "r ← ρr + (1 − ρ)g²;  w ← w − η g / (√r + ε)"),
    "adam": Optimizer("adam", _moments, _adam,
                      "m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;  w ← w − η m̂ / (√v̂ + ε)"),
}


# ---- learning-rate schedules ------------------------------------------------------------
@dataclass(frozen=True)
class Schedule:
    """η_t for epoch t (counted from 0), from the base rate η; epoch-wise like torch's
    ``StepLR``, ``ExponentialLR`` and ``CosineAnnealingLR`` stepped once per epoch."""

    name: str = "constant"
    step_size: int = 1000  # step: multiply by gamma every step_size epochs
    gamma: float = 0.5  # step / exponential factor
    lr_min: float = 0.0  # cosine: η at the end of the period
    period: int = 1000  # cosine: epochs from η down to lr_min (train() uses --epochs)

    def lr(self, base: float, t: int) -> float:
        return SCHEDULES[self.name](base, t, self)


SCHEDULES: dict[str, Callable[[float, int, Schedule], float]] = {
    "constant": lambda lr, t, s: lr,
    "step": lambda lr, t, s: lr * s.gamma ** (t // s.step_size),  # η γ^⌊t/k⌋
    "exponential": lambda lr, t, s: lr * s.gamma ** t,  # η γᵗ
    # η_min + (η − η_min)(1 + cos(π t / T)) / 2, held at η_min after T epochs
    "cosine": lambda lr, t, s: s.lr_min + (lr - s.lr_min) * 0.5 * (
        1.0 + math.cos(math.pi * min(t, s.period) / max(s.period, 1))),
}


# ---- penalties --------------------------------------------------------------------------
def weight_mask(layout: Layout) -> Array:
    """1.0 for every weight, 0.0 for every bias weight (row 0 of each W_l): penalties shrink
    the weights between units, not the offsets (as scikit-learn's ``alpha`` does)."""
    mask = np.ones(layout.n_params)
    for M in layout.views(mask):
        M[0] = 0.0
    return mask


def penalty(w: Array, mask: Array, l2: float = 0.0, l1: float = 0.0) -> tuple[float, Array]:
    """R(w) = ½ λ₂ Σ w² + λ₁ Σ |w| over the masked weights, and ∂R/∂w = λ₂ w + λ₁ sign(w)."""
    wm = w * mask
    value = 0.5 * l2 * float(np.sum(wm * wm)) + l1 * float(np.sum(np.abs(wm)))
    return value, l2 * wm + l1 * np.sign(wm)


# ---- augmentation -----------------------------------------------------------------------
def epoch_rng(seed: int, epoch: int, stream: int = 0) -> np.random.Generator:
    """The random numbers of one epoch: a function of (seed, epoch) only, so a run is
    reproducible by seed whatever the chunking, and an interrupted run replays identically."""
    return np.random.default_rng([seed % 2**32, epoch, stream])


def jitter(x: Array, sigma: float, rng: np.random.Generator) -> Array:
    """x + σ·N(0, 1) noise, fresh per call (inputs are standardized, so σ is in std units)."""
    return x + sigma * rng.standard_normal(x.shape) if sigma > 0 else x


# ---- early stopping ---------------------------------------------------------------------
class EarlyStopping:
    """Stop when the watched loss has not improved for ``patience`` epochs; keep the best w."""

    def __init__(self, patience: int):
        self.patience = patience
        self.best_loss = np.inf
        self.best_epoch = -1
        self.best_w: Array | None = None

    def update(self, t: int, loss: float, w: Array) -> bool:
        """Record epoch t's loss for weights w; True when training should stop now."""
        if loss < self.best_loss:
            self.best_loss, self.best_epoch, self.best_w = loss, t, w.copy()
            return False
        return t - self.best_epoch >= self.patience


# ---- seeing vanishing gradients ---------------------------------------------------------
def _monitor_functions():
    """``scratchnet.training.monitor``'s per-layer gradient norms and saturated share."""
    return layer_gradient_norms, saturated_share


class GradientMonitor:
    """Per epoch: ‖∂E/∂W_l‖ for every weight layer and the share of saturated hidden units,
    on the training rows (``--monitor``)."""

    def __init__(self, layout: Layout, loss: str, prob):
        self.layout, self.loss, self.prob = layout, loss, prob
        self.norms, self.saturated = _monitor_functions()
        self.epochs: list[int] = []
        self.grad_norms: list[Array] = []
        self.shares: list[Array] = []

    def __call__(self, t: int, w: Array) -> None:
        prob = self.prob
        self.epochs.append(t)
        self.grad_norms.append(np.asarray(self.norms(self.layout, self.loss, w, prob.x_train,
                                                     prob.y_train), float))
        self.shares.append(np.asarray(self.saturated(self.layout, w, prob.x_train), float))

    def forget_from(self, t: int) -> None:
        """Drop the records of epochs ≥ t (a slice that was interrupted)."""
        keep = [i for i, e in enumerate(self.epochs) if e < t]
        self.epochs = [self.epochs[i] for i in keep]
        self.grad_norms = [self.grad_norms[i] for i in keep]
        self.shares = [self.shares[i] for i in keep]

    def result(self, n: int | None = None) -> dict:
        """{"epoch": (T,), "grad_norms": (T, L), "saturated": (T, L − 1)} for epochs < n."""
        keep = [i for i, t in enumerate(self.epochs) if n is None or t < n]
        L = self.layout.n_layers
        return {"epoch": np.array([self.epochs[i] for i in keep], int),
                "grad_norms": np.array([self.grad_norms[i] for i in keep]).reshape(-1, L),
                "saturated": np.array([self.shares[i] for i in keep]).reshape(len(keep), L - 1)}


# ---- the one readable training loop ---------------------------------------------------
class Loop:
    """The readable numpy engine — the one training loop of scratchnet, for the problem set's
    plain full-batch gradient descent and for every option above alike.  It implements the
    ``scratchnet.training.run.Engine`` contract: bind it to a problem, then
    ``loop.epochs(w, start, stop, out)`` runs epochs start..stop−1.

    Per epoch t, as the problem set orders it: record the train/test loss and accuracy of the
    current weights (the clean training rows, the data loss without penalty), then update —
    once (full batch) or once per mini-batch of a fresh seeded permutation, on jittered inputs
    when ``jitter`` > 0, with η_t from the schedule and ∂(E + R)/∂w.  With nothing added the
    update is w ← w − η ∂E/∂w from the recorded forward pass: exactly ``train.run_epochs``.

    State (optimizer moments, best weights) lives on the object, so a Run calls it slice after
    slice.  It ends a slice itself in two cases: an epoch whose loss or weights are not finite
    puts back the weights of the epoch before (``keeps_last_finite``; off for the legacy
    ``run_epochs``, which runs NaNs on as the compiled engine does); early stopping puts back
    the best weights (``stops_early``).  Early stopping watches the validation rows of the
    problem (``prob.x_val``) when there are any, else — an explicit choice of the caller, which
    makes the reported test score optimistic — the test rows.
    """

    name = "numpy"
    supports = ENGINE_OPTIONS
    stops_early = True

    def __init__(self, optimizer: str = "gd", hyper: Hyper = Hyper(), schedule: Schedule =
                 Schedule(), batch_size: int | None = None, l2: float = 0.0, l1: float = 0.0,
                 patience: int | None = None, jitter: float = 0.0, seed: int = 0,
                 monitor=None, keeps_last_finite: bool = True):
        self.opt = OPTIMIZERS[optimizer]
        self.hyper, self.schedule = hyper, schedule
        self.batch_size, self.l2, self.l1 = batch_size, l2, l1
        self.sigma, self.seed = jitter, seed
        self.early = EarlyStopping(patience) if patience else None
        self.monitor = monitor  # called as monitor(t, w) after recording epoch t
        self.keeps_last_finite = keeps_last_finite
        self.plain = (optimizer in ("gd", "sgd") and schedule.name == "constant" and not l2
                      and not l1 and not jitter and batch_size is None)
        self.state: dict | None = None
        self.mask: Array | None = None
        self.prev: Array | None = None  # weights of the last recorded epoch
        self.stopped_at: int | None = None  # legacy __call__: epochs recorded at early stop
        self._saved = None
        self.layout = self.loss = self.prob = None
        self.lr = 0.0

    @classmethod
    def from_config(cls, config, monitor=None) -> "Loop":
        return cls(config.optimizer,
                   Hyper(config.momentum, config.beta1, config.beta2, config.rho, config.eps),
                   Schedule(config.schedule, config.step_size, config.gamma, config.lr_min,
                            config.epochs),
                   config.batch_size, config.l2, config.l1,
                   config.patience if config.early_stopping else None, config.jitter,
                   config.seed, monitor)

    def bind(self, layout: Layout, loss: str, prob, lr: float) -> "Loop":
        """The problem this engine trains on: layout, loss, data (train.Problem) and η."""
        self.layout, self.loss, self.prob, self.lr = layout, loss, prob, lr
        return self

    @property
    def best_epoch(self) -> int | None:
        return self.early.best_epoch if self.early else None

    def gradient(self, layout: Layout, loss: str, w: Array, x: Array, y: Array,
                 betas: list[Array] | None = None) -> Array:
        """∂(E + R)/∂w on the rows (x, y), summed over them."""
        betas = betas or forward(layout, w, x)
        g = backward(layout, w, betas, output_delta(layout, loss, betas[-1], y))
        if self.l2 or self.l1:
            g += penalty(w, self.mask, self.l2, self.l1)[1]
        return g

    def _watched_loss(self, w: Array, test_loss: float) -> float:
        prob = self.prob
        x_val = getattr(prob, "x_val", None)
        if x_val is None or len(x_val) == 0:
            return test_loss  # no validation rows: the caller chose the test split
        return LOSSES[self.loss].value(prob.y_val, predict(self.layout, w, x_val))

    def epochs(self, w: Array, start: int, stop: int, out, row0: int | None = None):
        """Epochs start..stop−1; epoch t is recorded in row t − row0 of ``out`` (row0 =
        start by default).  Returns a ``run.Outcome``."""
        layout, loss, prob = self.layout, self.loss, self.prob
        row0 = start if row0 is None else row0
        E = LOSSES[loss].value
        if self.state is None:
            self.state, self.mask = self.opt.init(w), weight_mask(layout)
        self._saved = (copy.deepcopy(self.state), None if self.prev is None else
                       self.prev.copy(), copy.deepcopy(self.early), start)
        N = len(prob.x_train)
        B = min(self.batch_size or N, N)
        for t in range(start, stop):
            i = t - row0
            betas = forward(layout, w, prob.x_train)  # β_0 … β_L on the clean training rows
            y_test = predict(layout, w, prob.x_test)
            out.train_loss[i] = E(prob.y_train, betas[-1])
            out.test_loss[i] = E(prob.y_test, y_test)
            out.train_acc[i] = accuracy(betas[-1], prob.l_train, prob.threshold)
            out.test_acc[i] = accuracy(y_test, prob.l_test, prob.threshold)
            if self.keeps_last_finite and not (np.isfinite(out.train_loss[i])
                                               and np.all(np.isfinite(w))):
                if self.prev is not None:
                    w[:] = self.prev  # the last weights whose loss and values were finite
                return Outcome(t - start + 1, "diverged")
            if self.keeps_last_finite:
                self.prev = w.copy()
            if self.monitor is not None:
                self.monitor(t, w)
            if self.early and self.early.update(t, self._watched_loss(w, out.test_loss[i]), w):
                w[:] = self.early.best_w
                self.stopped_at = t + 1
                return Outcome(t - start + 1, "early_stopped")
            if self.plain:  # the problem set's step, from the recorded forward pass
                w -= self.lr * self.gradient(layout, loss, w, prob.x_train, prob.y_train, betas)
                continue
            eta = self.schedule.lr(self.lr, t)
            rng = epoch_rng(self.seed, t)
            x = jitter(prob.x_train, self.sigma, rng)
            if B == N:  # full batch: the recorded forward pass is the gradient's, when clean
                g = self.gradient(layout, loss, w, x, prob.y_train, None if self.sigma else betas)
                self.opt.step(w, g, eta, self.state, self.hyper)
                continue
            order = rng.permutation(N)  # a fresh shuffle every epoch
            for b in range(0, N, B):
                rows = order[b:b + B]
                g = self.gradient(layout, loss, w, x[rows], prob.y_train[rows])
                self.opt.step(w, g, eta, self.state, self.hyper)
        return Outcome(stop - start)

    def rollback(self) -> None:
        """Undo what the interrupted ``epochs`` call changed in the optimizer's state."""
        if self._saved is not None:
            self.state, self.prev, self.early, start = self._saved
            if self.monitor is not None:  # forget what it watched in the dropped slice
                self.monitor.forget_from(start)

    def __call__(self, layout: Layout, loss: str, w: Array, prob, lr: float, start: int,
                 stop: int, hist) -> None:
        """The legacy call of ``train.run_epochs``: epochs start..stop−1 into
        ``hist[start:stop]`` (absolute rows)."""
        self.bind(layout, loss, prob, lr).epochs(w, start, stop, hist, row0=0)

    def finish(self, w: Array) -> bool:
        """At the end of a run that early stopping did not cut short: keep the best weights
        seen if the final ones are worse on the watched rows.  True when it put them back."""
        if self.early is None or self.early.best_w is None or self.stopped_at is not None:
            return False
        test = LOSSES[self.loss].value(self.prob.y_test, predict(self.layout, w, self.prob.x_test))
        if self._watched_loss(w, test) > self.early.best_loss:
            w[:] = self.early.best_w
            return True
        return False

