"""What TensorFlow Playground offers beyond the problem set, for the page: feature inputs
(x₁², x₂², x₁x₂, sin x₁, sin x₂), two regression data sets, regression on an uploaded CSV's
numeric target, and a suggested setting when a hard set stalls.

Pure numpy over the core: the core's ``prepare`` is for classification (the problem set's
task); regression here standardizes the target as the problem set standardizes y and trains
an identity output with the problem set's loss ½Σ(ŷ − y)².
"""
from __future__ import annotations

import numpy as np

from ..core.data import DEFAULT_FEATURES, Dataset, Standardizer, check_features, split_indices
from ..core.network import Layout
from ..training.train import Prepared, Problem
from . import PlaygroundError

# key → (the input's name from the first two features a, b; its values from their raw values)
EXTRAS = {
    "sq1": (lambda a, b: f"{a}²", lambda u, v: u * u),
    "sq2": (lambda a, b: f"{b}²", lambda u, v: v * v),
    "prod": (lambda a, b: f"{a}·{b}", lambda u, v: u * v),
    "sin1": (lambda a, b: f"sin {a}", lambda u, v: np.sin(u)),
    "sin2": (lambda a, b: f"sin {b}", lambda u, v: np.sin(v)),
}


def parse_extras(data: dict) -> tuple[str, ...]:
    """The page's feature toggles (``data.extras``), checked, in the table's order."""
    extras = data.get("extras") or []
    if not isinstance(extras, list) or not all(isinstance(e, str) for e in extras):
        raise PlaygroundError("feature inputs: expected a list of names")
    unknown = [e for e in extras if e not in EXTRAS]
    if unknown:
        raise PlaygroundError(f"feature inputs: unknown '{unknown[0][:20]}' (choose from "
                              f"{', '.join(EXTRAS)})")
    return tuple(k for k in EXTRAS if k in extras)


def extra_columns(extras, X2: np.ndarray) -> np.ndarray:
    """The extra inputs computed from the first two raw features (N, 2) → (N, len(extras))."""
    with np.errstate(all="ignore"):
        cols = [EXTRAS[k][1](X2[:, 0], X2[:, 1]) for k in extras]
    return np.stack(cols, axis=1) if cols else np.empty((len(X2), 0))


def with_extras(ds: Dataset, extras) -> Dataset:
    """``ds`` with the extra inputs appended as columns after its features."""
    if not extras:
        return ds
    a, b = ds.feature_names[:2]
    names = tuple(EXTRAS[k][0](a, b) for k in extras)
    X = np.concatenate([ds.X, extra_columns(extras, ds.X[:, :2])], axis=1)
    return Dataset(X, ds.y, tuple(ds.feature_names) + names, ds.target_name, ds.source)


# ---- regression data sets (TensorFlow Playground's two) --------------------------------------
def make_plane(n_samples=200, noise=0.05, seed=0):
    """A tilted plane: y = (x₁ + x₂) / 12 over [−6, 6]², plus noise·N(0, 1)."""
    rng = np.random.RandomState(seed)
    X = rng.uniform(-6, 6, (n_samples, 2))
    return X, (X[:, 0] + X[:, 1]) / 12 + noise * rng.randn(n_samples)


BUMPS = [(-4, 2.5, 1), (0, 2.5, -1), (4, 2.5, 1), (-4, -2.5, -1), (0, -2.5, 1), (4, -2.5, -1)]


def make_bumps(n_samples=200, noise=0.05, seed=0):
    """Six Gaussian bumps of alternating sign over [−6, 6]² ("multi Gaussian"), plus noise."""
    rng = np.random.RandomState(seed)
    X = rng.uniform(-6, 6, (n_samples, 2))
    y = sum(s * np.exp(-((X[:, 0] - cx) ** 2 + (X[:, 1] - cy) ** 2) / (2 * 1.2 ** 2))
            for cx, cy, s in BUMPS)
    return X, y + noise * rng.randn(n_samples)


REGRESSION = {"plane": make_plane, "bumps": make_bumps}
REGRESSION_DEFAULTS = {"plane": {"n_samples": 200, "noise": 0.05, "regression": True},
                       "bumps": {"n_samples": 300, "noise": 0.05, "regression": True}}


def regression_dataset(name: str, n_samples: int, noise: float, seed: int) -> Dataset:
    X, y = REGRESSION[name](n_samples, noise, seed)
    return Dataset(X, y.astype(float), DEFAULT_FEATURES, "y", name)


def prepare_regression(config, ds: Dataset):
    """The core's ``prepare`` for a numeric target: split as scikit-learn does, standardize the
    inputs with the training rows' statistics and the target as the problem set does, one
    identity output trained with ½Σ(ŷ − y)²."""
    check_features(ds)
    y = np.asarray(ds.y, float)
    if not np.all(np.isfinite(y)) or np.abs(y).max() > 1e150:
        i = int(np.argmax(~np.isfinite(y) | (np.abs(y) > 1e150)))
        raise PlaygroundError(f"{ds.source} column {ds.target_name}: {y[i]:g} is too large "
                              "for a regression target (|values| must stay below 1e150)")
    if np.ptp(y) == 0:
        raise PlaygroundError(f"{ds.source} column {ds.target_name}: every row has the same "
                              "target; there is nothing to learn")
    train_idx, test_idx = split_indices(len(y), config.test_size, config.split_seed)
    x_scaler = Standardizer.fit(ds.X[train_idx])
    Y = y[:, None]
    y_scaler = Standardizer.fit(Y[train_idx])
    Yn, x = y_scaler.transform(Y), x_scaler.transform(ds.X)
    layout = Layout.build(ds.X.shape[1], config.hidden, 1, config.activation, "identity",
                          ds.feature_names)
    none = np.zeros(len(y), int)  # no classes: accuracy is not computed for regression
    problem = Problem(x[train_idx], Yn[train_idx], x[test_idx], Yn[test_idx],
                      none[train_idx], none[test_idx], 0.0)
    return Prepared(dataset=ds, layout=layout, problem=problem, x_scaler=x_scaler,
                    y_scaler=y_scaler, classes=None, train_idx=train_idx, test_idx=test_idx)


def r2(y: np.ndarray, y_hat: np.ndarray) -> float | None:
    """The coefficient of determination 1 − Σ(y − ŷ)² / Σ(y − ȳ)² (None when undefined)."""
    ss = float(((y - y.mean()) ** 2).sum())
    with np.errstate(all="ignore"):
        v = 1.0 - float(((y - y_hat) ** 2).sum()) / ss if ss > 0 else float("nan")
    return v if np.isfinite(v) else None


# ---- a suggestion when a hard set stalls -------------------------------------------------------
SUGGESTED = {"activation": "tanh", "hidden": [8, 8], "lr": 0.03}
SUGGESTION_TEXT = ("Progress is slow with these settings: try tanh, 2 hidden layers of 8 units, "
                   "η 0.03 (measured on spiral: 100 % in 5,000 epochs).")


def suggestion(config, before: float, epoch: int, acc_now: float) -> dict | None:
    """A better setting to try, when a generated set (not ps5: the problem set keeps its
    defaults) is below 90 % accuracy and gained under 2 points in the last 2,000 epochs."""
    if config.data in ("ps5",) or config.data in REGRESSION or epoch < 2000:
        return None
    if (config.activation, tuple(config.hidden), config.lr) == ("tanh", (8, 8), 0.03):
        return None
    # ``before``: the training accuracy 2,000 epochs ago
    if not np.isfinite(before) or acc_now >= 0.9 or acc_now - before >= 0.02:
        return None
    return {"text": SUGGESTION_TEXT, "network": SUGGESTED}
