"""One playground tab's training run: the data, the weights, the epochs and the frames it shows.

Pure numpy on top of the core (``prepare``, the training driver ``training.run.Run`` that
``train()`` drives too, ``forward``/``backward``) — no web framework here.

A frame is what the page draws: the epoch, the losses, the decision map on a 48×48 grid in the
data's raw units (the grid is standardized with the model's own ``x_scaler``, the right way that
the problem set's map missed), each hidden unit's output on that grid as a 24×24 thumbnail, and
the weights w1..wP with ∂E/∂w at the current weights.  Arrays travel as base64 (uint8 maps,
float32 weights) to keep a frame small.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np

from ..core.backprop import backward, forward, output_delta
from ..core.data import Dataset, load_data
from ..core.losses import LOSSES
from ..core.model import Model
from ..training.optim import OPTIMIZERS
from ..training.train import (Prepared, TrainConfig, accuracy, final_metrics, prepare,
                              start_run)
from . import PlaygroundError
from .features import extra_columns, prepare_regression, r2, suggestion, with_extras
from .formula import derived_mathml, notation, weight_formula

MAP_RES = 48  # decision-map grid (cells per side)
THUMB_STEP = 2  # hidden-unit thumbnails: every 2nd grid cell → 24×24


@dataclass(frozen=True)
class Limits:
    """What one playground accepts; everything past it is refused with a message."""

    upload_bytes: int = 1_000_000
    rows: int = 20_000
    columns: int = 64
    features: int = 16
    hidden_layers: int = 4
    units: int = 64
    epochs: int = 1_000_000
    classes: int = 10
    sessions: int = 16  # open tabs training at once
    uploads_per_page: int = 4  # the newest files of one page (its token)
    upload_pages: int = 32  # pages keeping files at once (least recently used go first)
    message_bytes: int = 65_536  # one WebSocket message from the page
    inbox: int = 64  # messages waiting while the tab trains a slice


def b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def _q8(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Values in [lo, hi] → 0..255 (clipped; NaN → the middle), for the page's colour scale."""
    span = hi - lo if hi > lo else 1.0
    v = np.nan_to_num(v, nan=(lo + hi) / 2, posinf=hi, neginf=lo)
    return np.clip(np.rint(255.0 * (v - lo) / span), 0, 255).astype(np.uint8)


def _num(x: float) -> float | None:
    """A float for JSON (which has no NaN or infinity): None when not finite."""
    return float(x) if np.isfinite(x) else None


def engine_options() -> dict:
    """The optimizers the engine has (scratchnet.training.optim), with their update rules."""
    return {name: o.formula for name, o in OPTIMIZERS.items() if name != "sgd"}


class Session:
    """The state of one tab: prepared data, weights ``w``, epoch counter and history."""

    def __init__(self, config: TrainConfig, dataset: Dataset | None = None,
                 limits: Limits = Limits(), extras: tuple[str, ...] = (),
                 regression: bool = False):
        """``extras``: feature inputs computed from the first two (features.EXTRAS);
        ``regression``: a numeric target (``dataset`` given: a regression set or a CSV)."""
        self.config, self.extras, self.regression = config, tuple(extras), regression
        if dataset is None and self.extras:  # a bundled set, with inputs added
            dataset = load_data(config.data, n_samples=config.n_samples, noise=config.noise,
                                seed=config.data_seed, n_classes=config.n_classes)
        if dataset is not None:
            dataset = with_extras(dataset, self.extras)
        if regression:
            self.prep: Prepared = prepare_regression(config, dataset)
        else:
            self.prep = prepare(config, dataset)
            n_classes = self.prep.classes.size
            if n_classes > limits.classes:
                raise PlaygroundError(f"the target has {n_classes} classes; the playground "
                                      f"draws at most {limits.classes}")
        self.layout = self.prep.layout
        self._grid_setup()
        self.reset()

    # ---- the run ----------------------------------------------------------------------
    def reset(self) -> None:
        """Back to epoch 0 with the seed's initial weights: the very same run again (a fresh
        ``training.run.Run``: the engine of ``train()``, its optimizer state new)."""
        self.run = start_run(self.config, self.prep)
        self.engine = self.run.engine.name
        self._betas = None  # (epoch, β of the training rows) from the last advance
        self.status = "ready"  # ready | running | paused | done | diverged
        self.message = ""
        self._sent = 0  # first epoch not yet sent in a frame's curve

    @property
    def w(self) -> np.ndarray:
        """(P,) the weights after ``epoch`` updates (the Run's own array)."""
        return self.run.w

    @property
    def epoch(self) -> int:
        return self.run.epoch

    @property
    def budget_left(self) -> int:
        return self.config.epochs - self.epoch

    def advance(self, n: int) -> int:
        """Run up to n epochs (never past the budget) with ``Run.advance``; returns how many
        ran.  A diverged run keeps its last epoch whose loss and weights are finite."""
        n = max(0, min(int(n), self.budget_left))
        if n == 0 or self.run.stopped == "diverged":
            return 0
        e = self.epoch
        self.run.advance(n)
        if self.run.stopped == "diverged":
            t = self.run.diverged_at
            self.status = "diverged"
            self.message = (f"training diverged at epoch {t} (the loss became infinite or "
                            f"NaN); lower the learning rate (now {self.config.lr:g}) and "
                            "press Reset")
        else:
            with np.errstate(all="ignore"):  # the frame reuses this pass
                self._betas = (self.epoch, forward(self.layout, self.w,
                                                   self.prep.problem.x_train))
            if self.budget_left == 0:
                self.status = "done"
        return self.epoch - e

    def _records(self, lo: int, hi: int) -> tuple[np.ndarray, dict]:
        """The run's records of epochs lo..hi−1 (thinned ones absent): epochs and metrics."""
        r = self.run.records
        ep = r.epoch[:r.n]
        i, j = np.searchsorted(ep, lo), np.searchsorted(ep, hi)
        return ep[i:j], {m: r.cols[m][i:j] for m in r.cols}

    # ---- the map grid -------------------------------------------------------------------
    def _grid_setup(self) -> None:
        """A MAP_RES² grid over the first two features in raw units (5 % margin)."""
        X = self.prep.dataset.X
        lo, hi = X[:, :2].min(axis=0), X[:, :2].max(axis=0)
        pad = 0.05 * (hi - lo)
        self.extent = [float(lo[0] - pad[0]), float(hi[0] + pad[0]),
                       float(lo[1] - pad[1]), float(hi[1] + pad[1])]  # x0, x1, y0, y1
        c = (np.arange(MAP_RES) + 0.5) / MAP_RES
        gx = self.extent[0] + c * (self.extent[1] - self.extent[0])
        gy = self.extent[3] - c * (self.extent[3] - self.extent[2])  # row 0 at the top
        XX, YY = np.meshgrid(gx, gy)  # (R, R)
        raw = np.tile(self.prep.x_scaler.mean, (MAP_RES * MAP_RES, 1))  # other features: mean
        raw[:, 0], raw[:, 1] = XX.ravel(), YY.ravel()
        if self.extras:  # the feature inputs, from the grid's own first two coordinates

            raw[:, -len(self.extras):] = extra_columns(self.extras, raw[:, :2])
        self.grid_x = self.prep.x_scaler.transform(raw)  # (R², D) standardized as in training

    def _map_values(self, out: np.ndarray) -> np.ndarray:
        """What the map shows per grid cell, as 0..255: p(class 1), or ŷ in the target's raw
        units over the data's target range (regression)."""
        if self.regression:
            lo, hi = self.y_range
            return _q8(self.prep.y_scaler.inverse(out[:, :1])[:, 0], lo, hi)
        return _q8(self._map_probability(out), 0.0, 1.0)

    @property
    def y_range(self) -> tuple[float, float]:
        y = self.prep.dataset.y
        return float(np.min(y)), float(np.max(y))

    def set_weight(self, k: int, value: float) -> None:
        """Weight k (0-based) ← value: the page's edit of one edge (Reset undoes it)."""
        self.w[k] = value
        self._betas = None  # the cached forward pass is of the old weights
        if self.status == "diverged":
            self.status, self.message = "paused", ""

    def _map_probability(self, out: np.ndarray) -> np.ndarray:
        """p(class 1) per grid cell, read as Model.predict_proba reads the output."""
        p = out[:, -1] if out.shape[1] <= 2 else out.max(axis=1)
        if out.shape[1] == 1 and self.prep.y_scaler is not None:
            p = self.prep.y_scaler.inverse(p)
        return np.clip(p, 0.0, 1.0)

    # ---- what the page draws ------------------------------------------------------------
    def info(self) -> dict:
        """Everything that stays fixed for this data and network (sent once)."""
        L, prob, ds = self.layout, self.prep.problem, self.prep.dataset
        is_test = np.zeros(len(ds.y), bool)
        is_test[self.prep.test_idx] = True
        if self.regression:  # the points coloured by their target, as the map by ŷ
            labels = _q8(np.asarray(ds.y, float), *self.y_range)
        else:
            labels = np.searchsorted(self.prep.classes, ds.y)
        loss = LOSSES[self.config.loss]
        return {
            "type": "ready",
            "layout": L.to_dict(), "describe": L.describe(),
            "unit_names": [L.unit_names(i) for i in range(len(L.sizes))],
            "weight_names": L.weight_names(),
            "formulas": [weight_formula(L, self.config.loss, k) for k in range(L.n_params)],
            "formulas_mathml": derived_mathml(L, self.config.loss),
            "notation": notation(L),
            "loss": self.config.loss, "loss_formula": loss.formula,
            "lr": self.config.lr, "budget": self.config.epochs, "engine": self.engine,
            "optimizer": self.optimizer_text(),
            "source": ds.source, "features": list(ds.feature_names), "target": ds.target_name,
            "classes": [] if self.regression else [float(c) for c in self.prep.classes],
            "regression": self.regression, "y_range": list(self.y_range),
            "extras": list(self.extras), "input_thumbs": self._input_thumbs(),
            "n_train": int(prob.x_train.shape[0]), "n_test": int(prob.x_test.shape[0]),
            "extent": self.extent, "map_res": MAP_RES, "thumb_res": MAP_RES // THUMB_STEP,
            "points": {"x": np.round(ds.X[:, 0], 6).tolist(), "y": np.round(ds.X[:, 1], 6).tolist(),
                       "label": labels.tolist(), "test": is_test.astype(int).tolist()},
            "multiclass": bool(L.sizes[-1] > 2),
        }

    def _input_thumbs(self) -> list[str]:
        """Each input over the map, standardized as the network sees it (±max|x| of the
        grid), as uint8 planes: the ramps of x_1, x_2 and the shapes of x_1², sin x_2, …"""
        R, out = MAP_RES, []
        for j in range(self.grid_x.shape[1]):
            v = self.grid_x[:, j].reshape(R, R)[::THUMB_STEP, ::THUMB_STEP]
            m = float(np.abs(v).max()) or 1.0
            out.append(b64(_q8(v, -m, m)))
        return out

    def optimizer_text(self) -> str:
        c = self.config
        batch = ("full batch: g = ∂E/∂w summed over all training rows" if not c.batch_size
                 else f"mini-batches of {c.batch_size} rows, reshuffled every epoch (seeded)")
        rule = OPTIMIZERS[c.optimizer].formula
        l2 = f"; L2 penalty ½λ₂Σw² with λ₂ = {c.l2:g} on the non-bias weights" if c.l2 else ""
        l1 = f"; L1 penalty λ₁Σ|w| with λ₁ = {c.l1:g} on the non-bias weights" if c.l1 else ""
        return f"{c.optimizer}: {rule}; {batch}{l2}{l1}"

    def frame(self, progress: bool = False) -> dict:
        """The current state as the page draws it (computed at the current weights).  A
        ``progress`` frame's curve is sent again with the next frame (which then has all of
        the epochs since the frame before)."""
        L, prob, loss = self.layout, self.prep.problem, self.config.loss
        E = LOSSES[loss].value
        with np.errstate(all="ignore"):
            cached = self._betas
            b_train = cached[1] if cached and cached[0] == self.epoch else \
                forward(L, self.w, prob.x_train)  # the training pass, as one epoch does
            grad = backward(L, self.w, b_train, output_delta(L, loss, b_train[-1], prob.y_train))
            y_test = forward(L, self.w, prob.x_test)[-1]
            e_train, e_test = E(prob.y_train, b_train[-1]), E(prob.y_test, y_test)
            if self.regression:  # no accuracy: R² of ŷ (standardized units: the same R²)

                acc_train, acc_test = r2(prob.y_train, b_train[-1]), r2(prob.y_test, y_test)
            else:
                acc_train = accuracy(b_train[-1], prob.l_train, prob.threshold)
                acc_test = accuracy(y_test, prob.l_test, prob.threshold)
            betas = forward(L, self.w, self.grid_x)  # β_0 … β_L on the map grid
            w32, g32 = self.w.astype(np.float32), grad.astype(np.float32)
        n_tr, n_te = prob.x_train.shape[0], prob.x_test.shape[0]
        out = betas[-1]
        frame = {
            "type": "frame", "epoch": self.epoch, "budget": self.config.epochs,
            "status": self.status, "message": self.message,
            "train_loss": _num(e_train), "test_loss": _num(e_test),
            "train_acc": None if self.regression else acc_train,
            "test_acc": None if self.regression else acc_test,
            "train_r2": acc_train if self.regression else None,
            "test_r2": acc_test if self.regression else None,
            "curve": self._curve(e_train / n_tr, e_test / n_te, consume=not progress),
            "map": b64(self._map_values(out)),
            "w": b64(w32), "grad": b64(g32),
        }
        if out.shape[1] > 2:  # several classes: the winning class of each cell
            frame["map_class"] = b64(out.argmax(axis=1).astype(np.uint8))
        frame["thumbs"], frame["thumb_ranges"] = self._thumbs(betas)
        if not self.regression:
            ep, cols = self._records(self.epoch - 2000, self.epoch - 1999)
            before = float(cols["train_acc"][0]) if ep.size else float("nan")
            frame["suggestion"] = suggestion(self.config, before, self.epoch, acc_train)
        return frame

    def _curve(self, now_train: float, now_test: float,
               consume: bool = True) -> list[list[float]]:
        """Per-row losses E/N since the last frame (≤ 64 points) and the current one."""
        prob = self.prep.problem
        epochs, cols = self._records(self._sent, self.epoch)
        idx = np.arange(epochs.size)
        if idx.size > 64:
            idx = np.unique(np.linspace(0, epochs.size - 1, 64).round().astype(int))
        pts = [[int(epochs[i]), float(cols["train_loss"][i]) / prob.x_train.shape[0],
                float(cols["test_loss"][i]) / prob.x_test.shape[0]] for i in idx]
        pts.append([self.epoch, float(now_train), float(now_test)])
        if consume:
            self._sent = self.epoch + 1
        return [[t, _num(a), _num(b)] for t, a, b in pts]

    def _thumbs(self, betas: list[np.ndarray]) -> tuple[list[str], list[list[float]]]:
        """Each hidden layer's units on the grid, every THUMB_STEP-th cell, as uint8 planes
        (unit-major).  Bounded activations keep their range; unbounded ones ±max|β|."""
        out, ranges = [], []
        R = MAP_RES
        for l in range(1, len(betas) - 1):
            B = betas[l].reshape(R, R, -1)[::THUMB_STEP, ::THUMB_STEP]  # (r, r, units)
            act = self.layout.activations[l - 1]
            if act == "sigmoid":
                lo, hi = 0.0, 1.0
            elif act == "tanh":
                lo, hi = -1.0, 1.0
            else:
                m = float(np.nanmax(np.abs(B))) if np.isfinite(B).any() else 1.0
                lo, hi = -(m or 1.0), (m or 1.0)
            out.append(b64(_q8(np.moveaxis(B, 2, 0), lo, hi)))
            ranges.append([lo, hi])
        return out, ranges

    # ---- export -------------------------------------------------------------------------
    def model(self) -> Model:
        """The current network as ``scratchnet predict --model`` loads it."""

        final = final_metrics(self.layout, self.config.loss, self.w, self.prep.problem)
        final.update(epochs=self.epoch, stopped=self.status, engine=self.engine)
        if self.regression:
            final.pop("train_acc", None), final.pop("test_acc", None)
        return Model(self.layout, self.w.copy(), self.config.loss, self.prep.x_scaler,
                     self.prep.y_scaler, self.prep.classes, self.prep.dataset.target_name,
                     self.config.to_dict(), final)
