"""Training: the configuration, the data preparation and full-batch gradient descent.

One epoch, exactly as the problem set orders it:
  a. forward pass on the training rows and on the test rows with the current weights;
  b. record train and test loss (and accuracy) for those weights;
  c. w ← w − η ∂E/∂w from the training forward pass (sums over rows, no averaging).
``history.train_loss[t]`` is therefore the loss of the weights after t updates.
"""
from __future__ import annotations

import csv
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from ..core.backprop import backward, forward, output_delta, predict
from ..core.data import (Dataset, Standardizer, check_classification, check_features, load_data,
                   split_indices)
from ..core.errors import DivergedError, ScratchnetError
from ..core.losses import LOSSES
from ..core.model import Model
from ..core.network import Layout, init_weights
from .options import check_all


@dataclass
class TrainConfig:
    """Everything that defines a training run; filled by the CLI and the Python API alike."""

    data: str = "ps5"
    features: tuple[str, ...] | None = None
    target: str | None = None
    hidden: tuple[int, ...] = (7,)
    activation: str = "sigmoid"
    output: str = "sigmoid"
    loss: str = "sse"
    init: str = "normal"
    lr: float = 1e-4
    epochs: int = 100_000
    seed: int = 0
    test_size: float = 0.2
    split_seed: int = 0
    faithful: bool = False  # the problem set exactly: whole-data standardizing of x AND y
    standardize_targets: bool = False  # only the targets as the problem set (implied by faithful)
    log_every: int = 1000
    engine: str = "auto"  # auto | numpy | fast
    # options of generated data sets (moons, spiral, …)
    n_samples: int | None = None
    noise: float | None = None
    data_seed: int | None = None
    n_classes: int | None = None
    # beyond the problem set (scratchnet.training.optim); the defaults are the problem set's plain
    # full-batch gradient descent, which keeps the compiled fast path
    optimizer: str = "gd"  # gd | sgd | momentum | nesterov | rmsprop | adam
    batch_size: int | None = None  # None = full batch; else mini-batches of a fresh shuffle
    momentum: float = 0.9  # μ of momentum / nesterov
    beta1: float = 0.9  # adam
    beta2: float = 0.999  # adam
    rho: float = 0.99  # rmsprop
    eps: float = 1e-8  # rmsprop / adam
    schedule: str = "constant"  # constant | step | exponential | cosine
    step_size: int = 1000  # step schedule: epochs between decays
    gamma: float = 0.5  # step / exponential decay factor
    lr_min: float = 0.0  # cosine schedule: η after --epochs
    l2: float = 0.0  # + ½ λ₂ Σ w² over the non-bias weights
    l1: float = 0.0  # + λ₁ Σ |w| over the non-bias weights
    early_stopping: bool = False  # stop when the test loss stalls; keep the best weights
    patience: int = 100  # epochs without a better test loss before stopping
    jitter: float = 0.0  # σ of Gaussian noise added to the training inputs, fresh each epoch
    monitor: bool = False  # record per-layer gradient norms and saturated units each epoch

    def __post_init__(self):
        """Check every field against ``training.options.OPTIONS`` (one field per option, same
        default: tests/test_options.py holds them equal); raises ``OptionError`` naming the
        field.  Values come back normalized (``hidden=7`` → ``(7,)``)."""
        checked = check_all({f.name: getattr(self, f.name) for f in fields(self)})
        for name, value in checked.items():
            setattr(self, name, value)

    def plain_gd(self) -> bool:
        """True for the problem set's full-batch gradient descent with nothing added: the
        run the engines of ``select_engine`` (the compiled fast path among them) compute."""
        return (self.optimizer in ("gd", "sgd") and self.batch_size is None
                and self.schedule == "constant" and not self.l2 and not self.l1
                and not self.early_stopping and not self.jitter and not self.monitor)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        d["features"] = list(self.features) if self.features else None
        return d


@dataclass
class Problem:
    """The arrays one training run works on, already standardized and encoded."""

    x_train: np.ndarray  # (N, D)
    y_train: np.ndarray  # (N, n_out) targets in network space
    x_test: np.ndarray
    y_test: np.ndarray
    l_train: np.ndarray  # (N,) class indices 0..K−1, for accuracy
    l_test: np.ndarray
    threshold: float = 0.5  # one output unit: class 1 when ŷ > threshold (network space)


@dataclass
class History:
    train_loss: np.ndarray
    test_loss: np.ndarray
    train_acc: np.ndarray
    test_acc: np.ndarray

    @classmethod
    def empty(cls, n: int) -> "History":
        return cls(*(np.full(n, np.nan) for _ in range(4)))

    def truncate(self, n: int) -> "History":
        return History(self.train_loss[:n].copy(), self.test_loss[:n].copy(),
                       self.train_acc[:n].copy(), self.test_acc[:n].copy())

    def __len__(self) -> int:
        return len(self.train_loss)

    def to_csv(self, path: str) -> None:
        with open(path, "w", newline="") as fh:
            wr = csv.writer(fh)
            wr.writerow(["epoch", "train_loss", "test_loss", "train_acc", "test_acc"])
            for t in range(len(self)):
                wr.writerow([t, repr(float(self.train_loss[t])), repr(float(self.test_loss[t])),
                             repr(float(self.train_acc[t])), repr(float(self.test_acc[t]))])


@dataclass
class Prepared:
    dataset: Dataset
    layout: Layout
    problem: Problem
    x_scaler: Standardizer
    y_scaler: Standardizer | None
    classes: np.ndarray
    train_idx: np.ndarray
    test_idx: np.ndarray


@dataclass
class TrainResult:
    model: Model
    history: History
    config: TrainConfig
    prepared: Prepared
    seconds: float = 0.0
    stopped: str = "completed"  # completed | interrupted | diverged
    engine: str = "numpy"
    final: dict = field(default_factory=dict)
    monitor: dict | None = None  # with config.monitor: per-epoch gradient norms, saturation


def prepare(config: TrainConfig, dataset: Dataset | None = None) -> Prepared:
    """Load, validate, split, standardize and encode the data; build the layout."""
    ds = dataset or load_data(config.data, config.features, config.target,
                              n_samples=config.n_samples, noise=config.noise,
                              seed=config.data_seed, n_classes=config.n_classes)
    classes = check_classification(ds)
    check_features(ds)
    labels = np.searchsorted(classes, ds.y)  # class indices 0..K−1
    K = classes.size
    if config.output == "softmax":
        n_out, Y = K, np.eye(K)[labels]
    elif K == 2:
        n_out, Y = 1, labels[:, None].astype(float)
    else:
        raise ScratchnetError(f"{ds.source}: {K} classes need one output per class: use "
                              "--output softmax --loss ce")
    if config.loss == "ce" and config.output != "softmax":
        raise ScratchnetError("--loss ce needs --output softmax")
    train_idx, test_idx = split_indices(len(ds.y), config.test_size, config.split_seed)
    if config.faithful:
        # The problem set standardizes with the WHOLE data set's statistics, before the split.
        x_scaler = Standardizer.fit(ds.X)
    else:
        x_scaler = Standardizer.fit(ds.X[train_idx])
    y_scaler = None
    threshold = 0.5
    if (config.faithful or config.standardize_targets) and n_out == 1:
        y_scaler = Standardizer.fit(Y)  # targets become −0.98 / +1.02 for balanced 0/1 labels
        Y = y_scaler.transform(Y)
        threshold = float(y_scaler.transform(np.array([[0.5]]))[0, 0])
    x = x_scaler.transform(ds.X)
    hidden_act = config.activation
    layout = Layout.build(ds.X.shape[1], config.hidden, n_out, hidden_act, config.output,
                          ds.feature_names)
    problem = Problem(x[train_idx], Y[train_idx], x[test_idx], Y[test_idx],
                      labels[train_idx], labels[test_idx], threshold)
    return Prepared(ds, layout, problem, x_scaler, y_scaler, classes, train_idx, test_idx)


def accuracy(y_pred: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    if y_pred.shape[1] == 1:
        return float(np.mean((y_pred[:, 0] > threshold) == (labels == 1)))
    return float(np.mean(y_pred.argmax(axis=1) == labels))


def run_epochs(layout: Layout, loss: str, w: np.ndarray, P: Problem, lr: float,
               start: int, stop: int, hist: History) -> None:
    """Epochs start..stop−1 of full-batch gradient descent with the readable engine.

    Updates ``w`` in place and fills ``hist[start:stop]``.  The fast path
    (``scratchnet.engines.fast.run_epochs``) has the same signature and computes the same numbers.
    """
    E = LOSSES[loss].value
    for t in range(start, stop):
        betas = forward(layout, w, P.x_train)  # β_0 … β_L on the training rows
        y_test = predict(layout, w, P.x_test)
        hist.train_loss[t] = E(P.y_train, betas[-1])
        hist.test_loss[t] = E(P.y_test, y_test)
        hist.train_acc[t] = accuracy(betas[-1], P.l_train, P.threshold)
        hist.test_acc[t] = accuracy(y_test, P.l_test, P.threshold)
        w -= lr * backward(layout, w, betas, output_delta(layout, loss, betas[-1], P.y_train))


# Where the compiled loop stops paying (measured on the 2-core box, see docs/speed.md): its
# tanh is a scalar libm call per value, and for wide hidden-to-hidden layers numpy's BLAS
# matrix products beat its loops.  ``auto`` then keeps the readable engine.
FAST_MAX_HIDDEN_PRODUCT = 1024  # largest n_l · n_{l+1} between two hidden layers


def fast_pays(layout: Layout | None) -> bool:
    """Whether ``auto`` should take the compiled engine for this layout."""
    if layout is None:
        return True
    hidden = layout.sizes[1:-1]
    widest = max((a * b for a, b in zip(hidden, hidden[1:])), default=0)
    return "tanh" not in layout.activations and widest <= FAST_MAX_HIDDEN_PRODUCT


def compiled_engine(name: str):
    """The ``scratchnet.engines.fast`` module when ``name`` (auto | numpy | fast) asks for it and numba
    is usable, else None; ``fast`` without numba is a user error.  Shared by ``select_engine``
    and ``ensemble.select_engine``."""
    if name not in ("auto", "numpy", "fast"):
        raise ScratchnetError(f"--engine: unknown '{name}' (choose from auto, numpy, fast)")
    if name == "numpy":
        return None
    try:
        from ..engines import fast
    except ImportError:
        fast = None
    if fast is not None and fast.available():
        return fast
    if name == "fast":
        raise ScratchnetError("--engine fast: the compiled engine is unavailable "
                              "(is numba installed?)")
    return None


def select_engine(name: str = "auto", layout: Layout | None = None):
    """(engine name, run_epochs function). ``auto`` takes the compiled path when it is
    available and, given the ``layout``, when it is the faster one for it (``fast_pays``)."""
    fast = compiled_engine(name)
    if fast is not None and (name == "fast" or fast_pays(layout)):
        return "fast", fast.run_epochs
    return "numpy", run_epochs


def final_metrics(layout: Layout, loss: str, w: np.ndarray, P: Problem) -> dict:
    """Losses and accuracies of the final weights (after the last update)."""
    E = LOSSES[loss].value
    ptr, pte = predict(layout, w, P.x_train), predict(layout, w, P.x_test)
    return {"train_loss": E(P.y_train, ptr), "test_loss": E(P.y_test, pte),
            "train_acc": accuracy(ptr, P.l_train, P.threshold),
            "test_acc": accuracy(pte, P.l_test, P.threshold)}


def train(config: TrainConfig | None = None, dataset: Dataset | None = None, *,
          w0: np.ndarray | None = None, on_log=None, progress=None) -> TrainResult:
    """Train one network as ``config`` says; returns the model and its per-epoch history.

    ``on_log(epoch, train_loss, test_loss)`` is called every ``config.log_every`` epochs (the
    problem set's print); ``progress(done, total, train_loss, test_loss)`` after every chunk.
    Ctrl-C stops cleanly (``stopped="interrupted"``, the weights and history up to the last
    finished chunk kept).  A non-finite loss raises :class:`DivergedError` carrying the partial
    result: weights and history up to the last epoch whose loss was finite.
    """
    config = config or TrainConfig()
    prep = prepare(config, dataset)
    layout, P = prep.layout, prep.problem
    w = init_weights(layout, config.init, config.seed) if w0 is None else np.array(w0, float)
    if config.plain_gd():
        engine, run = select_engine(config.engine, layout)
    else:  # optimizers, mini-batches, schedules, penalties, …: the general numpy loop
        from .optim import GradientMonitor, Loop

        if config.engine == "fast":
            raise ScratchnetError("--engine fast runs plain full-batch gradient descent only; "
                                  "use --engine auto or numpy with --optimizer, --batch-size, "
                                  "--schedule, --l2/--l1, --early-stopping, --jitter, --monitor")
        engine = "numpy"
        run = Loop.from_config(config, GradientMonitor(layout, config.loss, P)
                               if config.monitor else None)
    hist = History.empty(config.epochs)
    chunk = max(1, min(config.log_every or 1000, 1000))
    done, stopped = 0, "completed"
    t0 = time.perf_counter()
    diverged_at = None
    while done < config.epochs:
        stop = min(done + chunk, config.epochs)
        w_start = w.copy()
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # divergence is checked below
                run(layout, config.loss, w, P, config.lr, done, stop, hist)
        except KeyboardInterrupt:
            w[:] = w_start  # the chunk in flight is dropped; everything before it is kept
            stopped = "interrupted"
            break
        early_stop = getattr(run, "stopped_at", None)  # early stopping ended the run here
        if early_stop is not None:
            stop = early_stop
        bad = np.flatnonzero(~np.isfinite(hist.train_loss[done:stop]))
        if bad.size and getattr(run, "keeps_last_finite", False):
            # the general loop already put back the weights of the last finite epoch
            diverged_at = done + int(bad[0])
            done = max(diverged_at - 1, 0)
            stopped = "diverged"
            break
        if bad.size:
            diverged_at = done + int(bad[0])
            w[:] = w_start  # replay up to the last finite epoch to keep its weights exactly
            if diverged_at - 1 > done:
                run(layout, config.loss, w, P, config.lr, done, diverged_at - 1,
                           History.empty(config.epochs))
            done = max(diverged_at - 1, done)
            stopped = "diverged"
            break
        if on_log and config.log_every:
            for t in range(done, stop):
                if t % config.log_every == 0:
                    on_log(t, float(hist.train_loss[t]), float(hist.test_loss[t]))
        done = stop
        if progress:
            progress(done, config.epochs, float(hist.train_loss[done - 1]),
                     float(hist.test_loss[done - 1]))
        if early_stop is not None:
            stopped = "early_stopped"
            break
    restored = stopped == "completed" and hasattr(run, "finish") and \
        run.finish(layout, config.loss, w, P)
    seconds = time.perf_counter() - t0
    bad_value = hist.train_loss[diverged_at] if diverged_at is not None else None
    hist = hist.truncate(diverged_at if diverged_at is not None else done)
    final = final_metrics(layout, config.loss, w, P)
    final.update(epochs=done, seconds=seconds, stopped=stopped, engine=engine)
    if getattr(run, "best_epoch", None) is not None and (stopped == "early_stopped" or restored):
        final["best_epoch"] = run.best_epoch  # the weights kept are those of this epoch
    model = Model(layout, w, config.loss, prep.x_scaler, prep.y_scaler, prep.classes,
                  prep.dataset.target_name, config.to_dict(), final)
    result = TrainResult(model, hist, config, prep, seconds, stopped, engine, final,
                         run.monitor.result(len(hist)) if getattr(run, "monitor", None)
                         else None)
    if diverged_at is not None:
        raise DivergedError(
            f"training diverged at epoch {diverged_at} (train loss {bad_value}): try a lower "
            f"--lr (now {config.lr:g}); the {done} epochs before it are kept", result)
    return result
