"""Training: the configuration, the data preparation and full-batch gradient descent.

One epoch, exactly as the problem set orders it:
  a. forward pass on the training rows and on the test rows with the current weights;
  b. record train and test loss (and accuracy) for those weights;
  c. w ← w − η ∂E/∂w from the training forward pass (sums over rows, no averaging).
``history.train_loss[t]`` is therefore the loss of the weights after t updates.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from ..core.backprop import accuracy, predict
from ..core.data import (Dataset, Standardizer, check_classification, check_features, load_data,
                   split_indices)
from ..core.errors import DivergedError, OptionError, ScratchnetError
from ..core.losses import LOSSES
from ..core.model import Model
from ..core.network import Layout, init_weights
from .optim import GradientMonitor, Loop
from .run import Engine, History, Run, StepEngine, deferred_interrupts, options_used
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
    early_stopping: bool = False  # stop when the validation loss stalls; keep the best weights
    # rows held out of the training split for early stopping (None: 0.1 with early stopping);
    # 0 watches the test split: an explicit choice that makes the test score optimistic
    validation_fraction: float | None = None
    patience: int = 100  # epochs without a better watched loss before stopping
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
    # rows held out of the training split for early stopping to watch (None: none held out)
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    l_val: np.ndarray | None = None


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
    val_idx: np.ndarray | None = None  # rows early stopping watches (see validation_fraction)


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
        raise OptionError("loss", "ce", "ce needs {output} softmax", ("output",))
    train_idx, test_idx = split_indices(len(ds.y), config.test_size, config.split_seed)
    val_idx = None
    fraction = validation_fraction(config)
    if fraction:  # early stopping watches rows the updates never see, nor the test score
        try:
            keep, held = split_indices(len(train_idx), fraction, config.split_seed)
        except ScratchnetError:
            raise OptionError("validation_fraction", fraction,
                              f"{fraction:g} leaves the {len(train_idx)} training rows too few "
                              "to hold some out (need at least 2 left and 1 held out)") from None
        train_idx, val_idx = train_idx[keep], train_idx[held]
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
    if val_idx is not None:
        problem.x_val, problem.y_val, problem.l_val = x[val_idx], Y[val_idx], labels[val_idx]
    return Prepared(ds, layout, problem, x_scaler, y_scaler, classes, train_idx, test_idx,
                    val_idx)


# the held-out share when early stopping leaves validation_fraction=None (as scikit-learn)
EARLY_STOPPING_FRACTION = 0.1


def validation_fraction(config: TrainConfig) -> float:
    """The share of the training rows held out: none without early stopping, else
    ``config.validation_fraction`` (None: 0.1; 0: none — early stopping watches the test
    split, an explicit choice that makes the reported test score optimistic)."""
    if not config.early_stopping:
        return 0.0
    f = config.validation_fraction
    return EARLY_STOPPING_FRACTION if f is None else float(f)


def run_epochs(layout: Layout, loss: str, w: np.ndarray, prob: Problem, lr: float,
               start: int, stop: int, hist: History) -> None:
    """Epochs start..stop−1 of full-batch gradient descent with the readable engine.

    Updates ``w`` in place and fills ``hist[start:stop]``; NaNs run on as in the compiled
    engine (``scratchnet.engines.fast.run_epochs`` has the same signature and computes the
    same numbers).  It is the one loop, ``optim.Loop``, called the legacy way."""
    Loop(keeps_last_finite=False)(layout, loss, w, prob, lr, start, stop, hist)


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
        raise OptionError("engine", name, f"unknown '{name}' (choose from auto, numpy, fast)")
    if name == "numpy":
        return None
    try:
        from ..engines import fast
    except ImportError:
        fast = None
    if fast is not None and fast.available():
        return fast
    if name == "fast":
        raise OptionError("engine", name, "fast: the compiled engine is unavailable (is numba "
                          "installed?)")
    return None


def select_engine(name: str = "auto", layout: Layout | None = None):
    """(engine name, run_epochs function). ``auto`` takes the compiled path when it is
    available and, given the ``layout``, when it is the faster one for it (``fast_pays``)."""
    fast = compiled_engine(name)
    if fast is not None and (name == "fast" or fast_pays(layout)):
        return "fast", fast.run_epochs
    return "numpy", run_epochs


def engine_for(config: TrainConfig, prep: Prepared) -> Engine:
    """The engine that trains ``config`` on ``prep``: the compiled one when it runs every
    option the config uses (``Engine.supports``) and pays for the layout, else the readable
    ``optim.Loop``."""
    used = options_used(config)
    layout, prob = prep.layout, prep.problem
    fast = compiled_engine(config.engine)
    if fast is not None and (config.engine == "fast" or fast_pays(layout)) and not used:
        return StepEngine("fast", fast.run_epochs, layout, config.loss, prob, config.lr)
    if fast is not None and used and used <= fast.CompiledLoop.supports and (
            config.engine == "fast" or fast.loop_pays(layout)):  # options: see loop_pays
        return fast.CompiledLoop.from_config(config).bind(layout, config.loss, prob, config.lr)
    if config.engine == "fast":
        raise OptionError("engine", "fast", "fast runs every option but {monitor} (the "
                          "gradient monitor runs on the numpy engine): choose auto or numpy",
                          ("monitor",))
    monitor = GradientMonitor(layout, config.loss, prob) if config.monitor else None
    return Loop.from_config(config, monitor).bind(layout, config.loss, prob, config.lr)


def final_metrics(layout: Layout, loss: str, w: np.ndarray, prob: Problem) -> dict:
    """Losses and accuracies of the final weights (after the last update)."""
    E = LOSSES[loss].value
    ptr, pte = predict(layout, w, prob.x_train), predict(layout, w, prob.x_test)
    return {"train_loss": E(prob.y_train, ptr), "test_loss": E(prob.y_test, pte),
            "train_acc": accuracy(ptr, prob.l_train, prob.threshold),
            "test_acc": accuracy(pte, prob.l_test, prob.threshold)}


def start_run(config: TrainConfig, prep: Prepared, w0: np.ndarray | None = None) -> Run:
    """A :class:`~scratchnet.training.run.Run` of ``config`` on ``prep`` from ``w0`` (the
    seed's initial weights by default), sliced as ``train()`` slices it."""
    w = init_weights(prep.layout, config.init, config.seed) if w0 is None else w0
    return Run(engine_for(config, prep), w, config.epochs,
               slice_epochs=max(1, min(config.log_every or 1000, 1000)))


def train(config: TrainConfig | None = None, dataset: Dataset | None = None, *,
          w0: np.ndarray | None = None, on_log=None, progress=None) -> TrainResult:
    """Train one network as ``config`` says; returns the model and its per-epoch history.

    ``on_log(epoch, train_loss, test_loss)`` is called every ``config.log_every`` epochs (the
    problem set's print); ``progress(done, total, train_loss, test_loss)`` after every slice.
    Ctrl-C — wherever it lands: in the engine, in a log line or the progress bar — stops
    cleanly (``stopped="interrupted"``, the weights and history up to the last finished slice
    kept).  A run whose loss or weights stop being finite raises :class:`DivergedError`
    carrying the partial result: the last epoch whose weights and loss were both finite.
    """
    config = config or TrainConfig()
    prep = prepare(config, dataset)
    run = start_run(config, prep, w0)
    t0 = time.perf_counter()
    try:
        while not run.finished and run.stopped != "interrupted":
            seen = run.recorded
            run.advance(run.slice)
            if run.stopped in ("diverged", "interrupted"):
                break
            _report(run, seen, config, on_log, progress)
    except KeyboardInterrupt:  # in a log line or the progress bar: the run itself is whole
        run.stopped = "interrupted"
    try:
        with deferred_interrupts():  # the result is built whole, then a signal is delivered
            result = _result(run, config, prep, time.perf_counter() - t0)
    except KeyboardInterrupt:
        result.stopped = result.final["stopped"] = "interrupted"
    if run.diverged_at is not None:
        raise diverged_error(run, config, result)
    return result


def diverged_error(run, config: TrainConfig, partial) -> DivergedError:
    """The one message of a diverged run (``train`` and the report's snapshots): the absolute
    epoch it diverged at and the epoch it keeps; ``partial`` rides along for the caller."""
    why = (f"train loss {run.bad_loss}" if not np.isfinite(run.bad_loss)
           else "the weights became infinite")
    return DivergedError(
        f"training diverged at epoch {run.diverged_at} ({why}): try a lower --lr (now "
        f"{config.lr:g}); keeping epoch {run.epoch}, the last whose weights and loss are "
        "finite", partial)


def _report(run: Run, seen: int, config: TrainConfig, on_log, progress) -> None:
    """The log lines of the records new since ``seen``, then the progress bar."""
    rec = run.records
    if on_log and config.log_every:  # (found with numpy: a slice is 1000 records)
        for i in seen + np.flatnonzero(rec.epoch[seen:rec.n] % config.log_every == 0):
            on_log(int(rec.epoch[i]), float(rec.cols["train_loss"][i]),
                   float(rec.cols["test_loss"][i]))
    if progress and rec.n:
        last = run.last
        progress(run.epoch, config.epochs, last["train_loss"], last["test_loss"])


def _result(run: Run, config: TrainConfig, prep: Prepared, seconds: float) -> TrainResult:
    layout, prob = prep.layout, prep.problem
    restored = run.finish()
    stopped = run.stopped or "completed"
    final = final_metrics(layout, config.loss, run.w, prob)
    final.update(epochs=run.epoch, seconds=seconds, stopped=stopped, engine=run.engine.name)
    if run.best_epoch is not None and (stopped == "early_stopped" or restored):
        final["best_epoch"] = run.best_epoch  # the weights kept are those of this epoch
    model = Model(layout, run.w.copy(), config.loss, prep.x_scaler, prep.y_scaler,
                  prep.classes, prep.dataset.target_name, config.to_dict(), final)
    hist = run.history
    monitor = getattr(run.engine, "monitor", None)
    return TrainResult(model, hist, config, prep, seconds, stopped, run.engine.name, final,
                       monitor.result(len(hist)) if monitor is not None else None)
