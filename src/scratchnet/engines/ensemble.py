"""Ensembles: K networks of one architecture trained at once, differing in seed and/or η.

The problem set trained one network and wondered how much the result depends on the
initialisation.  ``train_ensemble(config, seeds=range(1000))`` answers that in one call: every
network k starts from ``init_weights(layout, config.init, seeds[k])``, takes full-batch steps
with its own ``lrs[k]`` on the same prepared data, and is the very network
``train(config with seed=seeds[k], lr=lrs[k])`` would produce (a test holds them equal).  The
steps are plain gradient descent or any of ``optim.OPTIMIZERS`` (momentum, nesterov, rmsprop,
adam; ``config``'s hyper-parameters), with or without the L2 / L1 penalty (``EnsembleSteps``);
mini-batches, schedules, early stopping, jitter and the monitor are single-network options.

The K weight vectors are the rows of one (K, P) matrix in the w1..wP order; the engines that
train them are interchangeable:

* ``fast`` (numba): one network per parallel iteration, the whole chunk of epochs in cache,
  the same compiled loop as a single network's (``scratchnet.engines.fast``), optimizer and
  penalty included — used whenever numba is available;
* ``numpy``: the readable equations of ``backprop.py`` batched over a leading K axis;
* ``cuda``: one GPU thread per network (``scratchnet.engines.gpu``), with ``device="cuda"``.

A network whose training loss becomes non-finite is marked diverged: it keeps the weights of
its last finite epoch (as ``train`` does), its later records are NaN, and the others go on.
"""
from __future__ import annotations

import copy
import functools
import time
from dataclasses import dataclass, field, replace

import numpy as np

from ..core.backprop import accuracy, backward, forward, output_delta, predict
from ..core.errors import OptionError, ScratchnetError
from ..core.losses import LOSSES
from ..core.model import Model
from ..core.network import Layout, init_weights_batch
from ..training.optim import OPTIMIZERS, Hyper, penalty, weight_mask
from ..training.run import Outcome, Run, options_used
from ..training.train import History, compiled_engine, prepare

METRICS = ("train_loss", "test_loss", "train_acc", "test_acc")
# row-network-epochs per chunk: a fraction of a second on CPU cores, on a GPU
CHUNK_WORK = {"cpu": 2e7, "cuda": 2e10}


@dataclass
class EnsembleResult:
    """Stacked results of K networks; row k belongs to ``seeds[k]`` and ``lrs[k]``."""

    W: np.ndarray  # (K, P) final weights, w1..wP order (last finite weights if diverged)
    seeds: np.ndarray  # (K,) int
    lrs: np.ndarray  # (K,) float
    epochs: np.ndarray  # (n_records,) the epoch index of every record column
    train_loss: np.ndarray  # (K, n_records) loss of the weights after `epochs[j]` updates
    test_loss: np.ndarray  # (K, n_records)
    train_acc: np.ndarray  # (K, n_records)
    test_acc: np.ndarray  # (K, n_records)
    layout: Layout
    prepared: object  # train.Prepared
    config: object  # train.TrainConfig (its seed and lr are those of network 0)
    seconds: float = 0.0
    engine: str = "numpy"
    device: str = "cpu"
    diverged_at: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (K,), −1
    final: dict = field(default_factory=dict)  # metric → (K,) array for the final weights
    stopped: str = "completed"  # completed | interrupted
    epochs_done: int = 0
    dtype: str = "float64"  # the arithmetic of the run (float32: GPU only)
    # float32 runs: how far a sample of the networks is from the same networks in float64
    # (max_abs_dw, max_loss_diff, ...; see train_ensemble's ``check``); empty for float64
    agreement: dict = field(default_factory=dict)

    @property
    def K(self) -> int:
        return self.W.shape[0]

    @property
    def diverged(self) -> np.ndarray:
        """(K,) bool: the network's training loss became non-finite."""
        return self.diverged_at >= 0

    @property
    def best_epoch(self) -> np.ndarray:
        """(K,) the recorded epoch of lowest test loss per network (NaNs ignored)."""
        tl = np.where(np.isfinite(self.test_loss), self.test_loss, np.inf)
        if tl.shape[1] == 0:
            return np.zeros(self.K, np.int64)
        return self.epochs[np.argmin(tl, axis=1)]

    def history(self, k: int):
        """The per-record history of network k as a ``train.History``."""
        return History(*(getattr(self, m)[k].copy() for m in METRICS))

    def model(self, k: int):
        """Network k as a :class:`scratchnet.core.model.Model` (save it, predict with it)."""
        prep = self.prepared
        cfg = replace(self.config, seed=int(self.seeds[k]), lr=float(self.lrs[k]))
        final = {m: float(self.final[m][k]) for m in METRICS}
        return Model(self.layout, self.W[k].copy(), self.config.loss, prep.x_scaler,
                     prep.y_scaler, prep.classes, prep.dataset.target_name, cfg.to_dict(), final)


def _per_network(values, K: int, name: str, default, dtype) -> np.ndarray:
    """A scalar / None broadcast to K values, or a length-K sequence, as a 1-D array."""
    if values is None:
        values = default
    arr = np.asarray(values, dtype=dtype)
    if arr.ndim == 0:
        return np.full(K, arr, dtype=dtype)
    if arr.ndim != 1 or arr.size != K:
        raise ScratchnetError(f"{name}: expected one value per network ({K}), got {arr.size}")
    return arr


# ---- steps beyond w ← w − η g ------------------------------------------------------------
# What an ensemble takes beyond plain gradient descent: every network still steps once per
# epoch on the full batch with its own constant η, so only how a gradient becomes a step may
# change.  Mini-batches, schedules, early stopping, jitter and the monitor stay refused.
ENSEMBLE_OPTIONS = frozenset({"optimizer", "l2", "l1"})
# optim's state keys that the compiled engines keep as their arrays s1, s2 (fast.State's)
STATE_KEYS = {"gd": (None, None), "sgd": (None, None), "momentum": ("v", None),
              "nesterov": ("v", None), "rmsprop": ("r", None), "adam": ("m", "v")}


def check_options(config) -> None:
    """Refuse, naming it, an option of ``config`` that ensembles do not run (``OptionError``:
    the CLI words it ``--batch-size: …``)."""
    refused = sorted(options_used(config) - ENSEMBLE_OPTIONS)
    if refused:
        name = refused[0]
        raise OptionError(name, getattr(config, name), "ensembles train every network full "
                          "batch at a constant rate: they take {optimizer}, {l2} and {l1}, "
                          "not {%s}" % name, ("optimizer", "l2", "l1", name))


@dataclass
class EnsembleSteps:
    """How the K networks' gradients become steps: the optimizer (an ``optim.OPTIMIZERS``
    name with its ``Hyper``), the penalty ½λ₂Σw² + λ₁Σ|w| over the non-bias weights
    (``mask``), and optim's state of that optimizer for all K networks at once — its arrays
    (K, P) (velocity v, rmsprop's r, adam's m and v) and adam's step count ``t``.  One count
    serves every network: they all take one full-batch step per epoch from epoch 0, and a
    diverged network is never stepped again (its count no longer matters)."""

    optimizer: str
    hyper: Hyper
    l2: float
    l1: float
    mask: np.ndarray  # (P,) 1.0 on the weights, 0.0 on the bias weights (optim.weight_mask)
    state: dict  # optim's: {"v": (K, P)}, {"r": (K, P)}, {"m", "v": (K, P), "t": int}, {}

    @classmethod
    def from_config(cls, config, layout: Layout, K: int) -> "EnsembleSteps | None":
        """The steps of ``config`` for K networks; None for plain gradient descent."""
        opt = getattr(config, "optimizer", "gd")
        l2, l1 = float(getattr(config, "l2", 0.0)), float(getattr(config, "l1", 0.0))
        if opt in ("gd", "sgd") and not l2 and not l1:
            return None
        hyper = Hyper(config.momentum, config.beta1, config.beta2, config.rho, config.eps)
        return cls(opt, hyper, l2, l1, weight_mask(layout),
                   OPTIMIZERS[opt].init(np.zeros((K, layout.n_params))))

    @property
    def penalized(self) -> bool:
        return bool(self.l2 or self.l1)

    def hyper_array(self) -> np.ndarray:
        """[μ, β₁, β₂, ρ, ε, λ₂, λ₁]: the order of ``fast.Steps.hyper`` and the CUDA kernel's."""
        h = self.hyper
        return np.array([h.momentum, h.beta1, h.beta2, h.rho, h.eps, self.l2, self.l1])

    def arrays(self) -> tuple:
        """The state arrays (K, P) as the compiled engines name them (s1, s2; None: unused)."""
        return tuple(None if key is None else self.state[key]
                     for key in STATE_KEYS[self.optimizer])

    def corrections(self, n: int) -> np.ndarray:
        """(2, n): adam's 1 − β₁ⁱ and 1 − β₂ⁱ for its next n steps i = t + 1 … t + n, with
        Python's ``**`` as ``optim._adam`` computes them (the kernel reads them from here
        rather than trusting the device's pow to the last bit)."""
        t, h = int(self.state.get("t", 0)), self.hyper
        return np.array([[1.0 - h.beta1 ** i for i in range(t + 1, t + n + 1)],
                         [1.0 - h.beta2 ** i for i in range(t + 1, t + n + 1)]]).reshape(2, n)

    def advance(self, n: int) -> None:
        """After a compiled engine ran n epochs: adam's count moves on by n steps."""
        if "t" in self.state:
            self.state["t"] += n

    def step(self, W: np.ndarray, g: np.ndarray, lrs: np.ndarray, rows: np.ndarray) -> None:
        """One step of networks ``rows``: ∂R/∂w added to g, then optim's own step function on
        those rows (η = lrs[k] per row) — the numpy loop's lines, batched."""
        w, gr = W[rows], g[rows]  # (n, P) copies
        if self.penalized:
            gr += penalty(w, self.mask, self.l2, self.l1)[1]
        sub = {k: v[rows] if isinstance(v, np.ndarray) else v for k, v in self.state.items()}
        OPTIMIZERS[self.optimizer].step(w, gr, lrs[rows, None], sub, self.hyper)
        W[rows] = w
        for k, v in sub.items():
            if isinstance(v, np.ndarray):
                self.state[k][rows] = v
            else:
                self.state[k] = v


# ---- the readable batched engine -------------------------------------------------------------
# The equations are backprop.py's own: forward/backward/output_delta take W (K, P) as they take
# w (P,), LOSSES[loss].values gives the K losses and accuracy the K accuracies.
def numpy_engine(layout: Layout, loss: str, W: np.ndarray, W_prev: np.ndarray,
                 lrs: np.ndarray, prob, start: int, stop: int, record_every: int, rec: dict,
                 diverged_at: np.ndarray, steps: EnsembleSteps | None = None) -> None:
    """Epochs start..stop−1 for all K networks at once (readable numpy, batched over K).

    Updates ``W`` (K, P) in place; at every epoch t with t % record_every == 0 writes the four
    metrics into column t // record_every of ``rec[m]`` (K, n_records).  ``W_prev`` holds the
    weights before the last update (kept across calls).  A network whose train loss turns
    non-finite gets ``diverged_at[k] = t``, those weights back, and is left alone from then
    on.  ``steps``: the optimizer and penalty (their state updated in place), None for
    w ← w − η g.  Every engine (fast, cuda) has this signature and these semantics.
    """
    with np.errstate(all="ignore"):  # diverging networks overflow; they are handled below
        for t in range(start, stop):
            active = diverged_at < 0
            betas = forward(layout, W, prob.x_train)  # β_l: (K, N, n_l)
            trl = LOSSES[loss].values(prob.y_train, betas[-1])  # (K,)
            # a saturated sigmoid keeps the loss finite while w runs off: check both
            bad = active & ~(np.isfinite(trl) & np.isfinite(W).all(axis=1))
            if bad.any():
                # the update of epoch t − 1 led here: undo it (w_{t−1} = w_t + η g_{t−1} is not
                # exact in floating point, so the previous weights were kept instead)
                W[bad] = W_prev[bad]
                diverged_at[bad] = t
                active &= ~bad
            if t % record_every == 0:
                j = t // record_every
                y_test = predict(layout, W, prob.x_test)
                rows = np.flatnonzero(active)
                rec["train_loss"][rows, j] = trl[rows]
                rec["test_loss"][rows, j] = LOSSES[loss].values(prob.y_test, y_test)[rows]
                rec["train_acc"][rows, j] = accuracy(betas[-1], prob.l_train,
                                                     prob.threshold)[rows]
                rec["test_acc"][rows, j] = accuracy(y_test, prob.l_test, prob.threshold)[rows]
            W_prev[active] = W[active]
            g = backward(layout, W, betas, output_delta(layout, loss, betas[-1], prob.y_train))
            if steps is None:
                W -= np.where(active[:, None], lrs[:, None] * g, 0.0)
            else:
                steps.step(W, g, lrs, np.flatnonzero(active))


def final_metrics(layout: Layout, loss: str, W: np.ndarray, prob) -> dict:
    """(K,) losses and accuracies of the final weights, as ``train.final_metrics`` per row."""
    with np.errstate(all="ignore"):
        ptr, pte = predict(layout, W, prob.x_train), predict(layout, W, prob.x_test)
        return {"train_loss": LOSSES[loss].values(prob.y_train, ptr),
                "test_loss": LOSSES[loss].values(prob.y_test, pte),
                "train_acc": accuracy(ptr, prob.l_train, prob.threshold),
                "test_acc": accuracy(pte, prob.l_test, prob.threshold)}


DTYPES = ("float64", "float32")


def select_ensemble_engine(device: str, engine: str = "auto", dtype: str = "float64"):
    """(name, engine function) for ``device`` ("cpu" or "cuda"), ``engine`` and ``dtype``.
    Every engine takes ``EnsembleSteps`` (an optimizer or a penalty) through ``steps=``."""
    if dtype not in DTYPES:
        raise OptionError("dtype", dtype, f"unknown {dtype!r} (choose from {', '.join(DTYPES)})")
    if device == "cuda":
        from . import gpu  # imports numba.cuda: only for device="cuda"

        gpu.require_cuda()
        return "cuda", functools.partial(gpu.cuda_engine, dtype=dtype)
    if device != "cpu":
        raise OptionError("device", device, f"unknown {device!r} (choose from cpu, cuda)")
    if dtype != "float64":
        raise OptionError("dtype", dtype, f"{dtype} runs on the GPU only ({{device}} cuda)",
                          ("device",))

    fast = compiled_engine(engine)
    if fast is not None:
        return "fast", fast.ensemble_engine
    return "numpy", numpy_engine


class _Ensemble:
    """The K-network engines (numpy, fast, cuda: one signature) under the ``Engine`` contract
    of ``scratchnet.training.run``: the Run's ``w`` is W (K, P).  A network whose loss or
    weights stop being finite keeps its last finite weights and is left alone while the others
    go on, so the run as a whole never ends on divergence (``keeps_last_finite``)."""

    supports = frozenset()
    keeps_last_finite = True
    stops_early = False
    best_epoch = None
    monitor = None

    def __init__(self, name: str, fn, layout: Layout, loss: str, prob, lrs: np.ndarray,
                 record_every: int, W: np.ndarray, steps: EnsembleSteps | None = None):
        self.name, self.fn, self.layout, self.loss, self.prob = name, fn, layout, loss, prob
        self.lrs, self.record_every, self.steps = lrs, record_every, steps
        self.W_prev = W.copy()  # the weights before the last update, per network
        self.diverged_at = np.full(W.shape[0], -1, np.int64)  # (K,) −1: still training
        self._saved = None

    def epochs(self, W: np.ndarray, start: int, stop: int, rec: dict) -> Outcome:
        state = None if self.steps is None else copy.deepcopy(self.steps.state)
        self._saved = (self.W_prev.copy(), self.diverged_at.copy(), state)
        extra = {} if self.steps is None else {"steps": self.steps}
        self.fn(self.layout, self.loss, W, self.W_prev, self.lrs, self.prob, start, stop,
                self.record_every, rec, self.diverged_at, **extra)
        return Outcome(stop - start)

    def rollback(self) -> None:
        """Undo what an interrupted slice changed: the previous weights, the divergence marks
        and the optimizer's state (moments, adam's count)."""
        if self._saved is not None:
            self.W_prev[:], self.diverged_at[:], state = self._saved
            if state is not None:
                self.steps.state = state

    def finish(self, W: np.ndarray) -> bool:
        return False


class _EnsembleRecords:
    """The (K, n_records) metric arrays, one column every ``record_every`` epochs, which the
    engines write in place: the Run's records for K networks."""

    def __init__(self, rec: dict, rec_epochs: np.ndarray):
        self.rec, self.rec_epochs, self.n = rec, rec_epochs, 0

    def slab(self, n: int) -> dict:
        return self.rec

    def append(self, start: int, slab, n: int) -> None:
        self.n = int(np.searchsorted(self.rec_epochs, start + n))

    def drop_from(self, epoch: int) -> None:
        for m in METRICS:  # the columns of a dropped slice
            self.rec[m][:, self.rec_epochs >= epoch] = np.nan


def train_ensemble(config, seeds=(0,), lrs=None, *, device: str = "cpu", prepared=None,
                   record_every: int = 1, progress=None, epochs: int | None = None,
                   engine: str | None = None, dtype: str = "float64",
                   check: int = 8) -> EnsembleResult:
    """Train K networks of ``config``'s architecture at once, full batch: gradient descent or
    ``config.optimizer`` (momentum, nesterov, rmsprop, adam), with ``config.l2`` / ``l1``.

    ``seeds`` and ``lrs``: one value per network (equal lengths K), or a scalar / None that is
    broadcast (``lrs=None`` → ``config.lr``).  ``prepared``: the output of
    ``train.prepare(config)``, to skip loading the data again.  Metrics are recorded every
    ``record_every`` epochs (epoch 0 always).  ``progress(done, total, train_loss, test_loss)``
    is called after each chunk of epochs with the lowest current losses.  ``epochs`` overrides
    ``config.epochs``; ``engine`` overrides ``config.engine`` (auto | numpy | fast, CPU only).
    Ctrl-C stops after the chunk in flight and returns what was done (``stopped="interrupted"``).
    ``dtype="float32"`` (``device="cuda"`` only) runs the kernel in single precision; then
    ``check`` networks spread over the ensemble are trained again in float64 on the CPU and
    ``result.agreement`` says how far apart the two end (max |Δw|, loss differences).
    """
    if hasattr(config, "plain_gd"):
        check_options(config)
    prep = prepared if prepared is not None else prepare(config)
    layout, prob = prep.layout, prep.problem
    seeds_arr = np.atleast_1d(np.asarray(seeds))
    lrs_arr = None if lrs is None else np.atleast_1d(np.asarray(lrs, dtype=float))
    K = max(seeds_arr.size, 1 if lrs_arr is None else lrs_arr.size)
    seeds_arr = _per_network(seeds, K, "seeds", 0, np.int64)
    lrs_arr = _per_network(lrs, K, "lrs", config.lr, float)
    if not np.all(np.isfinite(lrs_arr) & (lrs_arr > 0)):
        raise ScratchnetError("lrs: every learning rate must be a positive number")
    if int(record_every) < 1:
        raise ScratchnetError(f"record_every must be >= 1, got {record_every}")
    record_every = int(record_every)
    n_epochs = int(config.epochs if epochs is None else epochs)
    if n_epochs < 0:
        raise ScratchnetError(f"epochs must be >= 0, got {n_epochs}")
    steps = EnsembleSteps.from_config(config, layout, K)
    name, run = select_ensemble_engine(device, engine or config.engine, dtype)

    W = init_weights_batch(layout, config.init, seeds_arr)  # (K, P)
    rec_epochs = np.arange(0, n_epochs, record_every)
    rec = _records(name, K, rec_epochs.size, dtype)
    # slices of a fraction of a second between progress reports and Ctrl-C checks
    rows = prob.x_train.shape[0] + prob.x_test.shape[0] / record_every
    budget = CHUNK_WORK["cuda" if name == "cuda" else "cpu"]
    chunk = int(max(1, min(n_epochs, budget // max(1.0, K * rows)))) if n_epochs else 1
    engine = _Ensemble(name, run, layout, config.loss, prob, lrs_arr, record_every, W, steps)
    driver = Run(engine, W, n_epochs, slice_epochs=chunk,
                 records=_EnsembleRecords(rec, rec_epochs))
    W = driver.w  # (K, P), updated in place by every slice
    t0 = time.perf_counter()
    try:
        while not driver.finished and driver.stopped != "interrupted":
            driver.advance(chunk)
            if progress is not None and driver.epoch and driver.stopped != "interrupted":
                j = (driver.epoch - 1) // record_every
                with np.errstate(all="ignore"):
                    progress(driver.epoch, n_epochs,
                             float(np.nanmin(rec["train_loss"][:, j], initial=np.inf)),
                             float(np.nanmin(rec["test_loss"][:, j], initial=np.inf)))
    except KeyboardInterrupt:  # in the progress callback: every finished slice is whole
        driver.stopped = "interrupted"
    seconds = time.perf_counter() - t0
    stopped, done, diverged_at = driver.stopped or "completed", driver.epoch, engine.diverged_at
    final = _final(name, run, layout, config.loss, W, lrs_arr, prob, dtype)
    res = EnsembleResult(W, seeds_arr, lrs_arr, rec_epochs, rec["train_loss"], rec["test_loss"],
                         rec["train_acc"], rec["test_acc"], layout, prep, config, seconds, name,
                         device, diverged_at, final, stopped, done, dtype)
    if dtype != "float64" and check > 0 and K:
        res.agreement = _agreement(res, check, record_every)
    return res


def _records(engine: str, K: int, n: int, dtype: str = "float64") -> dict:
    """The four metric arrays, (K, n) each.  For the GPU they are transposed views of (n, K)
    arrays — the device's own layout — so each chunk's records come back in one contiguous
    copy, without a transpose; and they are left unfilled (the kernel writes every column,
    NaN for a diverged network; an interrupted run NaNs the columns it did not reach)."""
    if engine == "cuda":
        return {m: np.empty((n, K), dtype).T for m in METRICS}
    return {m: np.full((K, n), np.nan) for m in METRICS}


def _final(name: str, run, layout: Layout, loss: str, W: np.ndarray, lrs: np.ndarray, prob,
           dtype: str) -> dict:
    """(K,) metrics of the final weights W.  The compiled engines (fast, cuda) compute them
    as one more epoch 0 on a copy of W — an engine's records at epoch 0 are the metrics of
    the weights it starts from; the copy's update is dropped — instead of a numpy forward pass
    over (K, N, units) arrays (~50 µs a network, most of the host's time on the GPU).  The few
    networks whose final loss is not finite get no record there; ``final_metrics`` for them."""
    if name == "numpy" or W.shape[0] == 0:
        return final_metrics(layout, loss, W, prob)
    K = W.shape[0]
    rec = _records(name, K, 1, dtype)
    div = np.full(K, -1, np.int64)
    with np.errstate(all="ignore"):
        run(layout, loss, W.copy(), W.copy(), lrs, prob, 0, 1, 1, rec, div)
    final = {m: np.array(rec[m][:, 0], dtype=float) for m in METRICS}  # (K,) each
    bad = np.flatnonzero(div >= 0)
    if bad.size:
        rest = final_metrics(layout, loss, W[bad], prob)
        for m in METRICS:
            final[m][bad] = rest[m]
    return final


def _agreement(res: EnsembleResult, check: int, record_every: int) -> dict:
    """How far ``check`` networks of a reduced-precision run (spread over the ensemble, the
    first and last included) are from the same networks trained in float64 on the CPU."""
    idx = np.unique(np.linspace(0, res.K - 1, min(res.K, check)).round().astype(np.int64))
    t0 = time.perf_counter()
    ref = train_ensemble(res.config, res.seeds[idx], res.lrs[idx], prepared=res.prepared,
                         record_every=record_every, epochs=res.epochs_done)
    both = ~res.diverged[idx] & ~ref.diverged  # (n,) networks neither run lost

    def worst(a, b, scale: bool = False) -> float:
        with np.errstate(all="ignore"):
            d = np.abs(np.asarray(a, float)[both] - np.asarray(b, float)[both])
            if scale:
                d = d / np.maximum(1.0, np.abs(np.asarray(b, float)[both]))
        return float(np.nanmax(d, initial=0.0))

    return {"dtype": res.dtype, "networks": int(idx.size),
            "max_abs_dw": worst(res.W[idx], ref.W),
            "max_train_loss_diff": worst(res.final["train_loss"][idx], ref.final["train_loss"]),
            "max_test_loss_diff": worst(res.final["test_loss"][idx], ref.final["test_loss"]),
            "max_rel_loss_diff": max(worst(res.final[m][idx], ref.final[m], True)
                                     for m in ("train_loss", "test_loss")),
            "max_curve_loss_diff": worst(res.train_loss[idx], ref.train_loss),
            "max_acc_diff": max(worst(res.final[m][idx], ref.final[m])
                                for m in ("train_acc", "test_acc")),
            "diverged_differently": int(np.sum(res.diverged[idx] != ref.diverged)),
            "seconds": round(time.perf_counter() - t0, 3)}
