"""scikit-learn estimators on top of scratchnet's hand-derived backprop.

    from scratchnet.sklearn import ScratchNetClassifier
    clf = ScratchNetClassifier(hidden=(7,), random_state=0).fit(X, y)
    clf.predict_proba(X_new); clf.w_  # w1..wP in the problem set's order

A thin edge over the core: the layout (:class:`~scratchnet.network.Layout`), the initial draw
(:func:`~scratchnet.network.init_weights`) and every gradient
(:func:`~scratchnet.backprop.loss_and_grad`) come from scratchnet; this module only adds the
scikit-learn conventions (``__init__`` stores its arguments, validation happens in ``fit``,
learned attributes end in ``_``) and the loop over epochs and mini-batches; the step itself is
one of the shared optimizers of :mod:`scratchnet.optim` (plain gradient descent by default).

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

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .backprop import loss_and_grad, predict as _network_output
from .data import Standardizer, split_indices
from .losses import LOSSES
from .network import INITS, Layout, init_weights
from .optim import OPTIMIZERS, Hyper

__all__ = ["ScratchNetClassifier", "ScratchNetRegressor"]

# (output activation, loss) pairs a classifier may use; "auto" picks the canonical loss.
_CLASSIFIER_LOSSES = {"sigmoid": ("bce", "sse"), "softmax": ("ce", "sse")}


class _ScratchNet(BaseEstimator):
    """What the classifier and the regressor share: validation, the layout and the epochs."""

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
        hidden = (self.hidden,) if isinstance(self.hidden, (int, np.integer)) else self.hidden
        try:
            hidden = tuple(int(h) for h in hidden)
        except (TypeError, ValueError):
            raise ValueError(f"hidden must be an int or a tuple of ints, got {self.hidden!r}")
        if not hidden or any(h < 1 for h in hidden):
            raise ValueError(f"hidden needs positive layer sizes, got {self.hidden!r}")
        if not (isinstance(self.lr, (int, float, np.number)) and np.isfinite(self.lr)
                and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not (isinstance(self.epochs, (int, np.integer)) and self.epochs >= 1):
            raise ValueError(f"epochs must be a positive integer, got {self.epochs!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if self.reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {self.reduction!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {tuple(OPTIMIZERS)}, got "
                             f"{self.optimizer!r}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if self.batch_size is not None and not (
                isinstance(self.batch_size, (int, np.integer)) and self.batch_size >= 1):
            raise ValueError(f"batch_size must be None or a positive int, got "
                             f"{self.batch_size!r}")
        if self.validation_fraction is not None and not 0.0 < self.validation_fraction < 1.0:
            raise ValueError("validation_fraction must be None or in (0, 1), got "
                             f"{self.validation_fraction!r}")
        return hidden

    # ---- fitting --------------------------------------------------------------------------
    def _initialize(self, X, y) -> tuple[np.ndarray, np.ndarray]:
        """Fresh layout, scalers and weights from (X, y); returns the (X, Y) to train on."""
        hidden = self._check_params()
        rs = self.random_state
        # An int seeds init_weights directly, so random_state=0 draws the problem set's
        # np.random.seed(0); np.random.randn(P); None / a RandomState draw a seed from it.
        seed = int(rs) if isinstance(rs, (int, np.integer)) else \
            int(check_random_state(rs).randint(np.iinfo(np.int32).max))
        val = None
        if self.validation_fraction is not None:
            n, n_val = len(X), math.ceil(self.validation_fraction * len(X))
            if n - n_val < 2:
                raise ValueError(f"validation_fraction={self.validation_fraction} with "
                                 f"n_samples={n} leaves {n - n_val} training rows; at least 2 "
                                 "are needed")
            train_idx, val_idx = split_indices(n, self.validation_fraction, seed)
            X, y, val = X[train_idx], y[train_idx], (X[val_idx], y[val_idx])
        Y, n_out = self._encode_targets(y, first=True)
        self.x_scaler_ = Standardizer.fit(X) if self.standardize else None
        names = getattr(self, "feature_names_in_", None)
        output, self._loss_name = self._output_and_loss()
        self.layout_ = Layout.build(X.shape[1], hidden, n_out, self.activation, output,
                                    () if names is None else tuple(str(c) for c in names))
        self.w_ = init_weights(self.layout_, self.init, seed)  # (P,) w1..wP
        # the optimizer's state (velocity, moments) carries over between partial_fit calls
        self._opt_state = OPTIMIZERS[self.optimizer].init(self.w_)
        self._rng = np.random.RandomState(seed)  # shuffles mini-batches
        self.loss_curve_ = []
        self.n_iter_ = 0
        self._validation = None
        self.__dict__.pop("validation_loss_curve_", None)  # from an earlier fit
        if val is not None:
            self._validation = (self._scale_x(val[0]),
                                self._encode_targets(val[1], first=False)[0])
            self.validation_loss_curve_ = []
        return X, Y

    def _scale_x(self, X) -> np.ndarray:
        return self.x_scaler_.transform(X) if self.x_scaler_ is not None else X

    def _epoch(self, x: np.ndarray, Y: np.ndarray) -> None:
        """One pass over (x, Y): one optimizer step per batch, from ∂E/∂w of that batch
        (divided by the batch's rows with ``reduction="mean"``).

        With ``batch_size=None`` and ``optimizer="gd"`` the pass is one step w ← w − η ∂E/∂w,
        exactly the problem set's epoch: the recorded loss is that of the weights *before*
        the update."""
        n = len(x)
        order = np.arange(n) if self.batch_size is None or self.batch_size >= n \
            else self._rng.permutation(n)
        step = n if self.batch_size is None else self.batch_size
        mean = self.reduction == "mean"
        opt, hyper = OPTIMIZERS[self.optimizer], Hyper(momentum=self.momentum)
        total = 0.0
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported below
            if self._validation is not None:  # loss of the same (pre-update) weights
                xv, Yv = self._validation
                value = LOSSES[self._loss_name].value(
                    Yv, _network_output(self.layout_, self.w_, xv))
                self.validation_loss_curve_.append(value / len(xv) if mean else value)
            for start in range(0, n, step):
                b = order[start:start + step]
                value, grad = loss_and_grad(self.layout_, self._loss_name, self.w_, x[b], Y[b])
                total += value
                opt.step(self.w_, grad / len(b) if mean else grad, self.lr, self._opt_state,
                         hyper)
        total = total / n if mean else total
        if not (np.isfinite(total) and np.all(np.isfinite(self.w_))):
            raise ValueError(f"training diverged in epoch {self.n_iter_} (loss {total}): "
                             f"lower lr (now {self.lr:g})")
        self.loss_curve_.append(float(total))
        self.loss_ = float(total)
        self.n_iter_ += 1

    def _fit(self, X, y, epochs: int | None, partial: bool, classes=None):
        first = not (partial and hasattr(self, "w_"))
        regressor = isinstance(self, RegressorMixin)
        X, y = validate_data(self, X, y, reset=first, dtype=np.float64, multi_output=regressor,
                             y_numeric=regressor)
        if first:
            self._start(y, classes)
            X, Y = self._initialize(X, y)
        else:
            self._check_params()
            Y, _ = self._encode_targets(y, first=False)
        x = self._scale_x(X)
        for _ in range(self.epochs if epochs is None else epochs):
            self._epoch(x, Y)
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
        problem set's loss.
    lr : float, default=0.5
        Learning rate η.  With ``reduction="sum"`` the problem set used 1e-4.
    epochs : int, default=1000
        Passes over the training data in ``fit`` (``partial_fit`` makes one).
    optimizer : {"gd", "sgd", "momentum", "nesterov", "rmsprop", "adam"}, default="gd"
        How a gradient becomes a step (:data:`scratchnet.optim.OPTIMIZERS`); ``gd`` is the
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
        Hold out this fraction of the rows and record ``validation_loss_curve_``.
    random_state : int, RandomState or None, default=None
        Seeds the initial weights (an int is the problem set's ``np.random.seed``), the
        validation split and the mini-batch order.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)  (only for DataFrames)
    layout_ : scratchnet.network.Layout
    w_ : ndarray of shape (n_params,)
        All weights, flat, in the problem set's w1..wP order.
    coefs_ : list of ndarray of shape (fan_in + 1, fan_out)
        Per-layer views into ``w_`` (row 0 holds the bias weights).
    loss_curve_ : list of float
        Training loss per epoch (before that epoch's update; mean or sum as ``reduction``).
    validation_loss_curve_ : list of float
        Only with ``validation_fraction``.
    n_iter_ : int
        Epochs trained so far.
    """

    def __init__(self, hidden=(7,), activation="sigmoid", output="auto", loss="auto", lr=0.5,
                 epochs=1000, optimizer="gd", momentum=0.9, init="xavier", reduction="mean",
                 batch_size=None, standardize=True, validation_fraction=None,
                 random_state=None):
        self.hidden = hidden
        self.activation = activation
        self.output = output
        self.loss = loss
        self.lr = lr
        self.epochs = epochs
        self.optimizer = optimizer
        self.init = init
        self.reduction = reduction
        self.momentum = momentum
        self.batch_size = batch_size
        self.standardize = standardize
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def _output_and_loss(self) -> tuple[str, str]:
        n_classes = len(self.classes_)
        output = self.output
        if output == "auto":
            output = "sigmoid" if n_classes == 2 else "softmax"
        if output not in _CLASSIFIER_LOSSES:
            raise ValueError(f"output must be 'auto', 'sigmoid' or 'softmax', got {output!r}")
        if output == "sigmoid" and n_classes > 2:
            raise ValueError(f"output='sigmoid' has one output unit for two classes, but y has "
                             f"{n_classes} classes: use output='softmax' (or 'auto')")
        loss = _CLASSIFIER_LOSSES[output][0] if self.loss == "auto" else self.loss
        if loss not in _CLASSIFIER_LOSSES[output]:
            raise ValueError(f"loss={self.loss!r} does not go with a {output} output: choose "
                             f"from {('auto',) + _CLASSIFIER_LOSSES[output]}")
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
        """The fitted network as a :class:`scratchnet.model.Model` (JSON ``save``, the
        ``scratchnet predict`` command); needs numeric class labels."""
        from .model import Model

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
                 standardize=True, validation_fraction=None, random_state=None):
        self.hidden = hidden
        self.activation = activation
        self.lr = lr
        self.epochs = epochs
        self.optimizer = optimizer
        self.init = init
        self.reduction = reduction
        self.momentum = momentum
        self.batch_size = batch_size
        self.standardize = standardize
        self.validation_fraction = validation_fraction
        self.random_state = random_state

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
