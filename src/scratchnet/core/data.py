"""Loading, validating, splitting and standardizing data.

Every problem with a user's file is a :class:`DataError` whose message names the file, the row
(counted as a spreadsheet shows it: the header is row 1) and the column.
"""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from importlib import resources

import numpy as np

from . import datasets
from .errors import DataError

DEFAULT_FEATURES = ("x_1", "x_2")
DEFAULT_TARGET = "classification"


@dataclass
class Dataset:
    X: np.ndarray  # (N, D) raw features, float64
    y: np.ndarray  # (N,) raw labels (class labels as float64, or regression targets)
    feature_names: tuple[str, ...]
    target_name: str
    source: str  # file path or bundled name, used in messages


def bundled_csv(name: str) -> str:
    return str(resources.files("scratchnet") / "datasets" / f"{name}.csv")


def load_data(spec: str, features=None, target=None, *, n_samples=None, noise=None, seed=None,
              n_classes=None) -> Dataset:
    """A CSV path or a bundled name (``ps5``, ``moons``, ``circles``, ``xor``, ``gaussians``,
    ``spiral``).  Generated sets have columns x_1, x_2 → classification."""
    if spec in datasets.NAMES and not os.path.exists(spec):
        if spec == "ps5" and n_samples is None and seed is None:
            return read_csv(bundled_csv("ps5"), features, target, display="ps5")
        X, y = datasets.generate(spec, n_samples, noise, seed, n_classes)
        return Dataset(X.astype(float), y.astype(float), DEFAULT_FEATURES, DEFAULT_TARGET, spec)
    return read_csv(spec, features, target)


def _number(text: str, where: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise DataError(f"{where}: '{text}' is not a number") from None
    if not math.isfinite(v):
        raise DataError(f"{where}: '{text}' is not a finite number")
    return v


def read_csv(path: str, features=None, target=None, display: str | None = None,
             target_optional: bool = False) -> Dataset:
    """Read ``features`` → ``target`` columns from a CSV with a header row.

    With ``target_optional`` a file without the target column is fine (``y`` is then NaN)."""
    name = display or path
    features = tuple(features) if features else None
    target = target or DEFAULT_TARGET
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except FileNotFoundError:
        raise DataError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{name}: is a directory, not a CSV file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{name}: cannot read the file ({e.__class__.__name__}: {e})") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"{name}: the file is empty")
    header = [c.strip() for c in rows[0]]
    if len(rows) == 1:
        raise DataError(f"{name}: has a header but no data rows")
    hint = ""
    if features is None:
        features, hint = DEFAULT_FEATURES, "; choose others with --features"
    has_target = target in header or not target_optional
    for col in (*features, target) if has_target else features:
        if col not in header:
            raise DataError(f"{name}: no column '{col}' (columns found: {', '.join(header)})"
                            + (hint if col in features else "; choose another with --target"))
    if target in features:
        raise DataError(f"{name}: column '{target}' is both a feature and the target")
    if not features:
        raise DataError(f"{name}: no feature columns besides the target '{target}'")
    idx = [header.index(c) for c in features]
    t_idx = header.index(target) if has_target else None
    X = np.empty((len(rows) - 1, len(features)))
    y = np.empty(len(rows) - 1)
    for i, row in enumerate(rows[1:]):
        if len(row) != len(header):
            raise DataError(f"{name} row {i + 2}: has {len(row)} fields, the header has "
                            f"{len(header)}")
        for j, (c, k) in enumerate(zip(features, idx)):
            X[i, j] = _number(row[k].strip(), f"{name} row {i + 2}, column {c}")
        y[i] = _number(row[t_idx].strip(), f"{name} row {i + 2}, column {target}") \
            if has_target else np.nan
    return Dataset(X, y, features, target, name)


def check_classification(ds: Dataset) -> np.ndarray:
    """Validate class labels; returns the sorted distinct labels (the model's ``classes``)."""
    bad = np.flatnonzero(ds.y != np.round(ds.y))
    if bad.size:
        raise DataError(f"{ds.source} row {bad[0] + 2}, column {ds.target_name}: label "
                        f"'{ds.y[bad[0]]:g}' is not an integer class label")
    classes = np.unique(ds.y)
    if classes.size < 2:
        raise DataError(f"{ds.source}: column {ds.target_name} has a single class "
                        f"({classes[0]:g}); a classifier needs at least two")
    return classes


def check_features(ds: Dataset) -> None:
    for j, c in enumerate(ds.feature_names):
        if np.ptp(ds.X[:, j]) == 0:
            raise DataError(f"{ds.source}: feature {c} is constant (every row is "
                            f"{ds.X[0, j]:g}); it carries no information and cannot be "
                            "standardized")


# ---- split --------------------------------------------------------------------------------
def split_indices(n: int, test_size: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indices, identical to scikit-learn's
    ``train_test_split(..., test_size=test_size, random_state=seed)`` (its ShuffleSplit draws
    one permutation of a RandomState(seed); the first ⌈test_size·n⌉ rows are the test set).
    Done here so that training never imports scikit-learn."""
    if not 0.0 < test_size < 1.0:
        raise DataError(f"--test-size must be between 0 and 1, got {test_size}")
    n_test = math.ceil(test_size * n)
    n_train = n - n_test
    if n_test < 1 or n_train < 2:
        raise DataError(f"{n} rows are too few for --test-size {test_size}: need at least 2 "
                        "training rows and 1 test row")
    perm = np.random.RandomState(seed).permutation(n)
    return perm[n_test:], perm[:n_test]


# ---- standardizing ------------------------------------------------------------------------
@dataclass
class Standardizer:
    """(v − mean) / std per column with the population std (ddof = 0, as ``np.std``)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, A: np.ndarray) -> "Standardizer":
        A = np.asarray(A, dtype=float)
        std = A.std(axis=0)
        return cls(A.mean(axis=0), np.where(std == 0, 1.0, std))

    def transform(self, A: np.ndarray) -> np.ndarray:
        return (np.asarray(A, dtype=float) - self.mean) / self.std

    def inverse(self, A: np.ndarray) -> np.ndarray:
        return np.asarray(A, dtype=float) * self.std + self.mean

    def to_dict(self) -> dict:
        return {"mean": np.atleast_1d(self.mean).tolist(), "std": np.atleast_1d(self.std).tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Standardizer":
        return cls(np.asarray(d["mean"], dtype=float), np.asarray(d["std"], dtype=float))
