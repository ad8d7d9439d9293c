"""scikit-learn estimators on top of scratchnet's hand-derived backprop.

    from scratchnet.sklearn import ScratchNetClassifier
    clf = ScratchNetClassifier(hidden=(7,), random_state=0).fit(X, y)
    clf.predict_proba(X_new); clf.w_  # w1..wP in the problem set's order

A thin edge over the core: the layout (:class:`~scratchnet.core.network.Layout`), the initial draw
(:func:`~scratchnet.core.network.init_weights`) and every gradient
(:func:`~scratchnet.core.backprop.backward`) come from scratchnet; this module only adds the
scikit-learn conventions (``__init__`` stores its arguments, validation happens in ``fit``,
learned attributes end in ``_``).  The training is ``scratchnet train``'s: ``fit`` and
``partial_fit`` drive the one driver (:class:`scratchnet.training.run.Run`) over the shared
engines, the compiled loop (``engines.fast.CompiledLoop``) where ``auto`` takes it and the
readable one (``training.optim.Loop``) otherwise, with their optimizers (plain gradient descent
by default), learning-rate schedules, L2 / L1 penalty, mini-batch order, input jitter and
early-stopping rule.

Two choices differ from the problem set, and both can be switched back (see docs/sklearn.md):

* ``reduction="mean"``: the loss and its gradient are averaged over the rows, so a learning rate
  does not depend on how many rows there are (``lr=0.5`` is a sensible default).  The problem
  set sums (``reduction="sum"``) with ``lr=1e-4``.
* ``standardize=True``: inputs are standardized inside the estimator with the *training* data's
  statistics, kept in ``x_scaler_`` and applied to every later input (the regressor standardizes
  its targets too and maps predictions back).
"""
from __future__ import annotations

import math
from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .core.backprop import backward, forward, output_delta, predict as _network_output
from .core.data import Standardizer, split_indices
from .core.errors import OptionError
from .core.losses import LOSSES
from .core.model import Model
from .core.network import Layout, init_weights
from .training.optim import Hyper, Loop, Schedule, penalty
from .training.options import check_all
from .training.run import Run
from .training.train import Problem, compiled_engine

__all__ = ["ScratchNetClassifier", "ScratchNetRegressor"]

# The estimators' parameters that are training options: checked against the one table
# (scratchnet.training.options) in ``fit``, with the same ranges and rules as ``scratchnet
# train``.  The other parameters (output/loss "auto", reduction, standardize,
# validation_fraction, random_state) are the estimators' own.
OPTION_PARAMS = ("hidden", "activation", "lr", "epochs", "optimizer", "init", "momentum",
                 "batch_size", "beta1", "beta2", "rho", "eps", "schedule", "step_size", "gamma",
                 "lr_min", "l2", "l1", "early_stopping", "patience", "jitter")
# where an estimator's default differs from the table's: the loss is averaged over the rows
# (reduction="mean"), so a larger step; fewer epochs; the scaled draw that suits any depth
ESTIMATOR_DEFAULTS = {"lr": 0.5, "epochs": 1000, "init": "xavier"}

# the outputs a classifier may use; "auto" picks sigmoid for two classes, softmax for more,
# and the canonical loss of that output (the pairs any other loss makes are the table's rule)
_CANONICAL_LOSS = {"sigmoid": "bce", "softmax": "ce"}

# the held-out share when early_stopping=True leaves validation_fraction=None (as MLPClassifier)
_EARLY_STOPPING_FRACTION = 0.1


class _NumpyLoop(Loop):
    """The readable engine, ``optim.Loop``, with the estimators' reduction: with ``mean`` a
    batch's summed ∂E/∂w is divided by its rows before the penalty's ∂R/∂w is added (the
    order of ``engines.fast.CompiledLoop``'s ``mean``, so the two agree to 1e-12)."""

    mean = False

    def gradient(self, layout, loss, w, x, y, betas=None):
        betas = betas or forward(layout, w, x)  # β_0 … β_L of the rows (x, y)
        g = backward(layout, w, betas, output_delta(layout, loss, betas[-1], y))  # ∂E/∂w, Σ
        if self.mean:
            g /= len(x)
        if self.l2 or self.l1:
            g += penalty(w, self.mask, self.l2, self.l1)[1]
        return g


class _ScratchNet(BaseEstimator):
    """What the classifier and the regressor share: validation, the layout and the epochs."""

    def _keep(self, params: dict) -> None:
        """scikit-learn's rule for ``__init__``: store every parameter as given, under its own
        name, and do nothing else (checks happen in ``fit``)."""
        for name, value in params.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    # ---- subclass hooks -----------------------------------------------------------------
    def _start(self, y, classes) -> None:
        """Learn what the targets look like (classes_, n_outputs_) on the first fit."""
        raise NotImplementedError

    def _encode_targets(self, y, first: bool):
        """Targets in network space, shape (N, n_out), and n_out; ``first`` fits scalers."""
        raise NotImplementedError

    def _output_and_loss(self) -> tuple[str, str]:
        raise NotImplementedError

    # ---- parameters ---------------------------------------------------------------------
    def _check_params(self) -> tuple[int, ...]:
        """Validate the parameters (scikit-learn's convention: in ``fit``, not ``__init__``);
        the training options against the table.  Returns the hidden layer sizes."""
        try:
            values = check_all({name: getattr(self, name) for name in OPTION_PARAMS})
        except OptionError as e:  # `lr must be a positive number, got -1` (the Python name)
            raise ValueError(f"{e.name} {e.explain()}") from None
        if self.reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {self.reduction!r}")
        if self.validation_fraction is not None and not (
                isinstance(self.validation_fraction, Real)
                and 0.0 < self.validation_fraction < 1.0):
            raise ValueError("validation_fraction must be None or in (0, 1), got "
                             f"{self.validation_fraction!r}")
        return values["hidden"]

    def _hyper(self) -> Hyper:
        return Hyper(self.momentum, self.beta1, self.beta2, self.rho, self.eps)

    def _schedule(self) -> Schedule:
        # cosine: from lr down to lr_min over ``epochs`` epochs (partial_fit counts n_iter_)
        return Schedule(self.schedule, self.step_size, self.gamma, self.lr_min, self.epochs)

    # ---- fitting --------------------------------------------------------------------------
    def _initialize(self, X, y, early: bool) -> tuple[np.ndarray, np.ndarray]:
        """Fresh layout, scalers and weights from (X, y); returns the (X, Y) to train on.
        ``early``: this fit stops early (holding out a validation split for it)."""
        hidden = self._check_params()
        rs = self.random_state
        # An int seeds init_weights directly, so random_state=0 draws the problem set's
        # np.random.seed(0); np.random.randn(P); None / a RandomState draw a seed from it.
        seed = int(rs) if isinstance(rs, (int, np.integer)) else \
            int(check_random_state(rs).randint(np.iinfo(np.int32).max))
        val = None
        fraction = self.validation_fraction
        if fraction is None and early:
            fraction = _EARLY_STOPPING_FRACTION
        if fraction is not None:
            n, n_val = len(X), math.ceil(fraction * len(X))
            if n - n_val < 2:
                raise ValueError(f"validation_fraction={fraction} with "
                                 f"n_samples={n} leaves {n - n_val} training rows; at least 2 "
                                 "are needed")
            train_idx, val_idx = split_indices(n, fraction, seed)
            X, y, val = X[train_idx], y[train_idx], (X[val_idx], y[val_idx])
        Y, n_out = self._encode_targets(y, first=True)
        self.x_scaler_ = Standardizer.fit(X) if self.standardize else None
        names = getattr(self, "feature_names_in_", None)
        output, self._loss_name = self._output_and_loss()
        self.layout_ = Layout.build(X.shape[1], hidden, n_out, self.activation, output,
                                    () if names is None else tuple(str(c) for c in names))
        self.w_ = init_weights(self.layout_, self.init, seed)  # (P,) w1..wP
        # the mini-batch order and the jitter of epoch t: optim.epoch_rng(seed, t), as
        # `scratchnet train` draws them
        self._seed = seed
        self._loop = None  # the engine; its optimizer state carries over to partial_fit
        self.loss_curve_ = []
        self.n_iter_ = 0
        self._validation = None
        for stale in ("validation_loss_curve_", "best_loss_", "best_epoch_"):
            self.__dict__.pop(stale, None)  # from an earlier fit
        if val is not None:
            self._validation = (self._scale_x(val[0]),
                                self._encode_targets(val[1], first=False)[0])
            self.validation_loss_curve_ = []
        return X, Y

    def _scale_x(self, X) -> np.ndarray:
        return self.x_scaler_.transform(X) if self.x_scaler_ is not None else X

    # ---- training: the shared engines, driven by training.run.Run -----------------------
    def _problem(self, x: np.ndarray, Y: np.ndarray) -> Problem:
        """The rows the engines train on.  The validation rows go where the engines keep their
        test rows: the loss they record there every epoch is ``validation_loss_curve_``, and
        early stopping watches it (no validation rows: the first training row stands in, its
        record unused).  The labels only feed the engines' accuracies, which are not used."""
        xv, Yv = self._validation if self._validation is not None else (x[:1], Y[:1])
        return Problem(x, Y, xv, Yv, np.zeros(len(x), np.int64), np.zeros(len(xv), np.int64))

    def _engine(self, prob: Problem, early: bool):
        """The engine of this call, bound to ``P``: the compiled loop
        (``engines.fast.CompiledLoop``) where ``auto`` takes it for the layout (numba present,
        ``fast.loop_pays``), else the readable numpy loop.  A later call (``partial_fit``)
        keeps the first call's kind of engine and carries its optimizer state over (velocity,
        Adam's moments and step count); the other parameters are read afresh."""
        old = self._loop
        if old is None:
            fast = compiled_engine("auto")
            kind = fast.CompiledLoop if fast is not None and fast.loop_pays(self.layout_) \
                else _NumpyLoop
        else:
            kind = type(old)
        loop = kind(self.optimizer, self._hyper(), self._schedule(), self.batch_size, self.l2,
                    self.l1, self.patience if early else None, self.jitter, self._seed)
        loop.mean = self.reduction == "mean"
        if old is not None:
            loop.state, loop.mask = old.state, old.mask
            ints = getattr(loop.state, "ints", None)  # the compiled state: [adam t, best, stop]
            if ints is not None:
                ints[2] = 0  # an earlier fit's early stop does not end this call
        return loop.bind(self.layout_, self._loss_name, prob, self.lr)

    def _train(self, x: np.ndarray, Y: np.ndarray, n_epochs: int, early: bool) -> None:
        """Epochs n_iter_ .. n_iter_ + n_epochs − 1 on (x, Y), driven by ``Run`` as
        ``scratchnet train`` drives them.  Per epoch t (absolute, so schedules, the mini-batch
        shuffle and the jitter of ``optim.epoch_rng(seed, t)`` go on across ``partial_fit``
        calls): record the training and validation loss of the current weights (clean rows,
        no penalty), then one optimizer step per batch.  With ``early`` the run stops when the
        validation loss stalls and keeps the best weights (``Loop``'s rule)."""
        loop = self._loop = self._engine(self._problem(x, Y), early)
        self.engine_ = loop.name
        t = self.n_iter_
        run = Run(loop, self.w_, t + n_epochs, start=t, history_budget=n_epochs + 1)
        run.advance()
        if early:
            run.finish()  # ran to the end: the best weights if the final ones are worse
            best = loop.early
            if best.best_w is not None:  # the epoch whose weights w_ holds, its val. loss
                n_val = len(self._validation[0]) if self.reduction == "mean" else 1
                self.best_loss_ = float(best.best_loss / n_val)
                self.best_epoch_ = int(best.best_epoch)
        self._record(run, len(x))
        loop.bind(self.layout_, self._loss_name, None, self.lr)  # keep no training rows
        if run.stopped == "interrupted":
            raise KeyboardInterrupt

    def _record(self, run: Run, n_rows: int) -> None:
        """The run's epochs into ``loss_curve_`` (and ``validation_loss_curve_``), its weights
        into ``w_``; a run whose loss or weights stopped being finite is a ValueError."""
        mean = self.reduction == "mean"
        hist = run.history
        self.loss_curve_.extend((hist.train_loss / (n_rows if mean else 1)).tolist())
        if self._validation is not None:
            n_val = len(self._validation[0]) if mean else 1
            self.validation_loss_curve_.extend((hist.test_loss / n_val).tolist())
        self.n_iter_ += len(hist)
        self.w_[:] = run.w  # the last weights whose loss and values were finite
        if self.loss_curve_:
            self.loss_ = self.loss_curve_[-1]
        if run.diverged_at is None and np.all(np.isfinite(run.w)):
            return
        at = self.n_iter_ if run.diverged_at is None else run.diverged_at
        why = "the weights became infinite" if run.bad_loss is None or np.isfinite(
            run.bad_loss) else f"loss {run.bad_loss}"
        raise ValueError(f"training diverged in epoch {at} ({why}): lower lr (now "
                         f"{self.lr:g})")

    def _fit(self, X, y, epochs: int | None, partial: bool, classes=None):
        first = not (partial and hasattr(self, "w_"))
        regressor = isinstance(self, RegressorMixin)
        X, y = validate_data(self, X, y, reset=first, dtype=np.float64, multi_output=regressor,
                             y_numeric=regressor)
        # early stopping belongs to fit; partial_fit never stops (as MLPClassifier)
        early = not partial and bool(self.early_stopping)
        if first:
            self._start(y, classes)
            X, Y = self._initialize(X, y, early)
        else:
            self._check_params()
            Y, _ = self._encode_targets(y, first=False)
        self._train(self._scale_x(X), Y, self.epochs if epochs is None else epochs, early)
        return self

    def _output(self, X) -> np.ndarray:
        """ŷ of the network, shape (n_samples, n_outputs), for raw inputs X."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return _network_output(self.layout_, self.w_, self._scale_x(X))

    @property
    def coefs_(self) -> list[np.ndarray]:
        """Per-layer views W_l of shape (fan_in + 1, fan_out) into ``w_``; row 0 is the bias."""
        check_is_fitted(self)
        return self.layout_.views(self.w_)


class ScratchNetClassifier(ClassifierMixin, _ScratchNet):
    """A feed-forward network classifier trained by hand-derived backprop.

    Parameters
    ----------
    hidden : int or tuple of int, default=(7,)
        Hidden layer sizes; the problem set's network is ``(7,)``.
    activation : {"sigmoid", "tanh", "relu", "identity"}, default="sigmoid"
        Hidden-layer activation.
    output : {"auto", "sigmoid", "softmax"}, default="auto"
        ``auto``: one sigmoid unit for two classes, softmax for more.
    loss : {"auto", "bce", "sse", "ce"}, default="auto"
        ``auto``: ``bce`` with a sigmoid output, ``ce`` with softmax.  ``sse`` = ½Σ(y − ŷ)², the
        problem set's loss; ``ce`` needs the softmax output (as ``scratchnet train``).
    lr : float, default=0.5
        Learning rate η.  With ``reduction="sum"`` the problem set used 1e-4.
    epochs : int, default=1000
        Passes over the training data in ``fit`` (``partial_fit`` makes one); 0 keeps the
        initial draw.
    optimizer : {"gd", "sgd", "momentum", "nesterov", "rmsprop", "adam"}, default="gd"
        How a gradient becomes a step (:data:`scratchnet.training.optim.OPTIMIZERS`); ``gd`` is the
        problem set's w ← w − η ∂E/∂w.  rmsprop / adam want a smaller ``lr`` (e.g. 0.01).
    init : {"xavier", "he", "normal"}, default="xavier"
        ``normal`` is the problem set's ``np.random.randn`` draw.
    reduction : {"mean", "sum"}, default="mean"
        Average or sum the loss (and its gradient) over the rows of a batch.
    momentum : float, default=0.9
        μ of the ``momentum`` and ``nesterov`` optimizers.
    batch_size : int or None, default=None
        Rows per gradient step; ``None`` = full batch (the problem set).
    standardize : bool, default=True
        Standardize inputs with the training data's mean and (population) std.
    validation_fraction : float or None, default=None
        Hold out this fraction of the rows and record ``validation_loss_curve_``; with
        ``early_stopping=True`` and ``None``, 0.1 of the rows are held out.
    random_state : int, RandomState or None, default=None
        Seeds the initial weights (an int is the problem set's ``np.random.seed``), the
        validation split, and the mini-batch order and jitter of every epoch t
        (``optim.epoch_rng(seed, t)``, as ``scratchnet train``).
    beta1, beta2 : float, default=0.9, 0.999
        β₁, β₂ of ``adam``.
    rho : float, default=0.99
        ρ of ``rmsprop``.
    eps : float, default=1e-8
        ε of ``rmsprop`` / ``adam``.
    schedule : {"constant", "step", "exponential", "cosine"}, default="constant"
        η_t of epoch t (:data:`scratchnet.training.optim.SCHEDULES`): ``step`` = lr·gamma^⌊t/step_size⌋,
        ``exponential`` = lr·gammaᵗ, ``cosine`` from lr down to ``lr_min`` over ``epochs``.
    step_size : int, default=1000
        Epochs between the ``step`` schedule's decays.
    gamma : float, default=0.5
        Decay factor of the ``step`` / ``exponential`` schedules, in (0, 1].
    lr_min : float, default=0.0
        η of the ``cosine`` schedule after ``epochs`` epochs; at most ``lr``.
    l2, l1 : float, default=0.0
        Penalty ½λ₂Σw² + λ₁Σ|w| over the non-bias weights, added to the (mean or summed) loss.
    early_stopping : bool, default=False
        ``fit`` stops when the validation loss has not improved for ``patience`` epochs and
        keeps the best weights (also when it runs out of epochs first); ``partial_fit`` never
        stops early.
    patience : int, default=100
        Epochs without a better validation loss before early stopping.
    jitter : float, default=0.0
        σ of Gaussian noise added to the (standardized) training inputs, fresh every epoch.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)  (only for DataFrames)
    layout_ : scratchnet.core.network.Layout
    w_ : ndarray of shape (n_params,)
        All weights, flat, in the problem set's w1..wP order.
    coefs_ : list of ndarray of shape (fan_in + 1, fan_out)
        Per-layer views into ``w_`` (row 0 holds the bias weights).
    loss_curve_ : list of float
        Training loss per epoch (before that epoch's update, on the clean rows, without the
        penalty; mean or sum as ``reduction``).
    validation_loss_curve_ : list of float
        Validation loss per epoch (of the same weights as ``loss_curve_``); only with
        ``validation_fraction`` or ``early_stopping``.
    best_loss_, best_epoch_ : float, int
        Only after ``fit`` with ``early_stopping``: the epoch whose weights ``w_`` holds and
        their validation loss.
    n_iter_ : int
        Epochs recorded so far (``len(loss_curve_)``); an early-stopped fit's last epoch
        records its losses and stops instead of stepping.
    engine_ : {"fast", "numpy"}
        The shared engine of the last ``fit`` / ``partial_fit``: the compiled loop where
        ``auto`` takes it, else the readable numpy loop (the same numbers to 1e-12).
    """

    def __init__(self, hidden=(7,), activation="sigmoid", output="auto", loss="auto", lr=0.5,
                 epochs=1000, optimizer="gd", momentum=0.9, init="xavier", reduction="mean",
                 batch_size=None, standardize=True, validation_fraction=None,
                 random_state=None, *, beta1=0.9, beta2=0.999, rho=0.99, eps=1e-8,
                 schedule="constant", step_size=1000, gamma=0.5, lr_min=0.0, l2=0.0, l1=0.0,
                 early_stopping=False, patience=100, jitter=0.0):
        self._keep(locals())

    def _output_and_loss(self) -> tuple[str, str]:
        n_classes = len(self.classes_)
        output = self.output
        if output == "auto":
            output = "sigmoid" if n_classes == 2 else "softmax"
        if output not in _CANONICAL_LOSS:
            raise ValueError(f"output must be 'auto', 'sigmoid' or 'softmax', got {output!r}")
        if output == "sigmoid" and n_classes > 2:
            raise ValueError(f"output='sigmoid' has one output unit for two classes, but y has "
                             f"{n_classes} classes: use output='softmax' (or 'auto')")
        loss = _CANONICAL_LOSS[output] if self.loss == "auto" else self.loss
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {('auto', *LOSSES)}, got {self.loss!r}")
        try:
            check_all({"output": output, "loss": loss})
        except OptionError as e:
            raise ValueError(f"loss={self.loss!r} does not go with a {output} output: "
                             f"{e.explain()}") from None
        return output, loss

    def _start(self, y, classes) -> None:
        check_classification_targets(y)
        self.classes_ = np.unique(y if classes is None else classes)
        if len(self.classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs at least two classes, but y has "
                             f"one class ({self.classes_[0]!r})")

    def _encode_targets(self, y, first: bool):
        check_classification_targets(y)
        K = len(self.classes_)
        labels = np.minimum(np.searchsorted(self.classes_, y), K - 1)
        unseen = self.classes_[labels] != y
        if unseen.any():
            raise ValueError(f"y holds labels not in classes_ {self.classes_.tolist()}: "
                             f"{np.unique(np.asarray(y)[unseen]).tolist()}")
        one_unit = self._output_and_loss()[0] == "sigmoid" if first \
            else self.layout_.sizes[-1] == 1
        if one_unit:
            return labels[:, None].astype(float), 1  # (N, 1): 1 means classes_[1]
        return np.eye(K)[labels], K  # (N, K) one-hot

    def fit(self, X, y):
        """Train from a fresh initial draw for ``epochs`` epochs; returns self."""
        return self._fit(X, y, None, partial=False)

    def partial_fit(self, X, y, classes=None):
        """One epoch on (X, y), continuing from the current weights and optimizer state
        (starting fresh on the first call).  ``classes``: every label the later calls may
        see (default: y's)."""
        return self._fit(X, y, 1, partial=True, classes=classes)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities of shape (n_samples, n_classes), columns as ``classes_``."""
        out = self._output(X)
        if out.shape[1] == 1:
            p = out[:, 0]
            return np.column_stack([1.0 - p, p])
        return out

    def to_model(self):
        """The fitted network as a :class:`scratchnet.core.model.Model` (JSON ``save``, the
        ``scratchnet predict`` command); needs numeric class labels."""
        check_is_fitted(self)
        try:
            classes = np.asarray(self.classes_, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"to_model needs numeric class labels, got {self.classes_!r}")
        return Model(self.layout_, self.w_.copy(), self._loss_name, self.x_scaler_, None,
                     classes, config={"estimator": repr(self)})

    def predict(self, X) -> np.ndarray:
        """The most probable class label for each row, shape (n_samples,)."""
        proba = self.predict_proba(X)  # checks that the model is fitted
        return self.classes_[proba.argmax(axis=1)]


class ScratchNetRegressor(RegressorMixin, _ScratchNet):
    """A feed-forward network regressor: identity output, loss ½Σ(y − ŷ)².

    Parameters are those of :class:`ScratchNetClassifier` without ``output`` and ``loss``; with
    ``standardize=True`` the targets are standardized too (``y_scaler_``), so ``loss_curve_`` is
    measured in standardized target units and predictions are mapped back.
    """

    def __init__(self, hidden=(7,), activation="sigmoid", lr=0.5, epochs=1000, optimizer="gd",
                 momentum=0.9, init="xavier", reduction="mean", batch_size=None,
                 standardize=True, validation_fraction=None,
                 random_state=None, *, beta1=0.9, beta2=0.999, rho=0.99, eps=1e-8,
                 schedule="constant", step_size=1000, gamma=0.5, lr_min=0.0, l2=0.0, l1=0.0,
                 early_stopping=False, patience=100, jitter=0.0):
        self._keep(locals())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _output_and_loss(self) -> tuple[str, str]:
        return "identity", "sse"

    def _start(self, y, classes) -> None:
        self.n_outputs_ = 1 if np.ndim(y) == 1 else np.shape(y)[1]
        self._y_1d = np.ndim(y) == 1

    def _encode_targets(self, y, first: bool):
        Y = np.asarray(y, dtype=float).reshape(len(y), -1)  # (N, n_outputs)
        if Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} outputs, the model {self.n_outputs_}")
        if first:
            self.y_scaler_ = Standardizer.fit(Y) if self.standardize else None
        return (self.y_scaler_.transform(Y) if self.y_scaler_ is not None else Y,
                self.n_outputs_)

    def fit(self, X, y):
        """Train from a fresh initial draw for ``epochs`` epochs; returns self."""
        return self._fit(X, y, None, partial=False)

    def partial_fit(self, X, y):
        """One epoch on (X, y), continuing from the current weights and optimizer state."""
        return self._fit(X, y, 1, partial=True)

    def predict(self, X) -> np.ndarray:
        """Predictions of shape (n_samples,) or (n_samples, n_outputs), in y's units."""
        out = self._output(X)
        if self.y_scaler_ is not None:
            out = self.y_scaler_.inverse(out)
        return out[:, 0] if self._y_1d else out
