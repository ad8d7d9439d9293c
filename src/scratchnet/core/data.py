"""Loading, validating, splitting and standardizing data.

Every problem with a user's file is a :class:`DataError` whose message names the file, the row
(counted as a spreadsheet shows it: the header is row 1) and the column.
"""
from __future__ import annotations

import codecs
import csv
import io
import math
import os
import warnings
from dataclasses import dataclass
from importlib import resources

import numpy as np

from . import datasets
from .errors import DataError, OptionError

DEFAULT_FEATURES = ("x_1", "x_2")
DEFAULT_TARGET = "classification"


@dataclass
class Dataset:
    X: np.ndarray  # (N, D) raw features, float64
    y: np.ndarray  # (N,) raw labels (class labels as float64, or regression targets)
    feature_names: tuple[str, ...]
    target_name: str
    source: str  # file path or bundled name, used in messages
    rows: list[list[str]] | None = None  # the CSV's text rows, header first (read_csv keep_rows)


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
    if len(text) > FIELD_LIMIT:
        raise DataError(f"{where}: a field of {len(text):,} characters (at most "
                        f"{FIELD_LIMIT:,}); not a number")
    try:
        v = float(text)
    except ValueError:
        raise DataError(f"{where}: '{text}' is not a number") from None
    if not math.isfinite(v):
        raise DataError(f"{where}: '{text}' is not a finite number")
    return v


# ---- reading a CSV ------------------------------------------------------------------------
# numpy's C reader (np.loadtxt, in C since numpy 1.23) parses the numbers: a 1e6-row file in a
# fraction of a second, with no Python object per row.  numpy is already the core's one
# dependency (pandas is only a dev dependency).  The C reader's errors do not use our row
# numbering, and it silently takes ragged rows when only some columns are used, so it is the
# fast path only: a file it does not take cleanly is read again, from the same bytes, by the
# row-by-row reader, which names the row and the column of the first problem.
FIELD_LIMIT = 131_072  # the csv module's default field limit: a longer used field is an error
_CHUNK = 1 << 20  # bytes per step of the field-count check (bounded memory)


def _read_bytes(path: str, name: str) -> bytes:
    """The whole file, read once: a pipe or ``/dev/stdin`` can only be read once."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise DataError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{name}: is a directory, not a CSV file") from None
    except OSError as e:
        raise DataError(f"{name}: cannot read the file ({e.strerror or e})") from None
    return data[len(codecs.BOM_UTF8):] if data.startswith(codecs.BOM_UTF8) else data


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(f"{name} line {line}: not UTF-8 text (byte 0x{data[e.start]:02x}); "
                        "save the file as UTF-8 CSV") from None


def _columns(header: list[str], features, target: str, target_optional: bool, name: str):
    """Check the header and resolve the chosen columns: (features, has_target)."""
    seen: dict[str, int] = {}
    for j, c in enumerate(header):
        if c in seen:
            raise DataError(f"{name}: column '{c}' appears twice in the header (columns "
                            f"{seen[c] + 1} and {j + 1}); rename one")
        seen[c] = j
    hint = ""
    if features is None:
        features, hint = DEFAULT_FEATURES, "; choose others with --features"
    for c in features:
        if features.count(c) > 1:
            raise DataError(f"{name}: column '{c}' is chosen twice as a feature")
    has_target = target in header or not target_optional
    for col in (*features, target) if has_target else features:
        if col not in header:
            raise DataError(f"{name}: no column '{col}' (columns found: {', '.join(header)})"
                            + (hint if col in features else "; choose another with --target"))
    if target in features:
        raise DataError(f"{name}: column '{target}' is both a feature and the target")
    if not features:
        raise DataError(f"{name}: no feature columns besides the target '{target}'")
    return features, has_target


def _line_count(data: bytes, start: int, n_fields: int) -> int:
    """The number of lines after ``start`` if each has exactly ``n_fields`` comma-separated
    fields and none is longer than FIELD_LIMIT, else 0.  In chunks, with numpy: a few MB of
    memory whatever the file's size."""
    n_lines, pos, end = 0, start, len(data)
    while pos < end:
        stop = min(end, pos + _CHUNK)
        if stop < end:
            stop = data.rfind(b"\n", pos, stop) + 1 or data.find(b"\n", stop) + 1 or end
        arr = np.frombuffer(data, np.uint8, stop - pos, pos)
        nl = np.flatnonzero(arr == 10)
        if nl.size == 0 or nl[-1] != arr.size - 1:
            nl = np.append(nl, arr.size)  # the last line, without its newline
        commas = np.flatnonzero(arr == 44)
        if (np.any(np.diff(np.searchsorted(commas, nl), prepend=0) != n_fields - 1)
                or np.diff(nl, prepend=-1).max() > FIELD_LIMIT):
            return 0
        n_lines += nl.size
        pos = stop
    return n_lines


def _fast_parse(data: bytes, header: list[str], cols: list[int]) -> np.ndarray | None:
    """The used columns as one (N, len(cols)) float64 array via numpy's C reader, or None when
    the file needs the row-by-row reader (quotes, blank or ragged lines, a bad value)."""
    first = data.find(b"\n") + 1
    if not first or b'"' in data:
        return None
    n = _line_count(data, first, len(header))
    if not n:
        return None
    stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline="")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": handled below
            arr = np.loadtxt(stream, delimiter=",", usecols=cols, dtype=np.float64, ndmin=2,
                             skiprows=1, comments=None, quotechar=None)
    except (ValueError, UnicodeDecodeError):
        return None
    if arr.shape[0] != n or not np.isfinite(arr).all():
        return None
    return arr


def read_csv(path: str, features=None, target=None, display: str | None = None,
             target_optional: bool = False, keep_rows: bool = False) -> Dataset:
    """Read ``features`` → ``target`` columns from a CSV with a header row.

    The file is read once, so a pipe or ``/dev/stdin`` works.  With ``target_optional`` a file
    without the target column is fine (``y`` is then NaN).  With ``keep_rows`` the text rows
    (header first) are kept in ``Dataset.rows``, for ``predict`` to echo them."""
    name = display or path
    features = tuple(features) if features else None
    target = DEFAULT_TARGET if target is None else target
    data = _read_bytes(path, name)
    first_line = data[:data.find(b"\n") + 1 or len(data)]
    if not keep_rows and first_line.strip() and b'"' not in first_line:
        header = [c.strip() for c in _decode(first_line, name).rstrip("\r\n").split(",")]
        feats, has_target = _columns(header, features, target, target_optional, name)
        cols = [header.index(c) for c in (*feats, target)[:len(feats) + has_target]]
        arr = _fast_parse(data, header, cols)
        if arr is not None:
            X = arr[:, :len(feats)]  # views of one array: no copy of a big file
            y = arr[:, len(feats)] if has_target else np.full(arr.shape[0], np.nan)
            return Dataset(X, y, feats, target, name)
    text = _decode(data, name)
    del data
    old_limit = csv.field_size_limit()
    csv.field_size_limit(1 << 30)  # the used fields' lengths are checked below, by column
    rows: list[list[str]] = []
    try:
        for r in csv.reader(io.StringIO(text, newline="")):
            if any(c.strip() for c in r):
                rows.append(r)
    except csv.Error as e:
        raise DataError(f"{name} row {len(rows) + 1}: not a CSV row ({e})") from None
    finally:
        csv.field_size_limit(old_limit)
    del text
    if not rows:
        raise DataError(f"{name}: the file is empty")
    header = [c.strip() for c in rows[0]]
    features, has_target = _columns(header, features, target, target_optional, name)
    if len(rows) == 1:
        raise DataError(f"{name}: has a header but no data rows")
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
    return Dataset(X, y, features, target, name, rows if keep_rows else None)


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


# Standardizing squares the deviations: beyond ~1e150 the squares overflow to inf (the inputs
# all become 0), and below ~1e-150 they underflow to 0 (the std is 0 and the column silently
# constant).  Such columns are refused by name: a data problem, not a learning-rate one.
MAX_ABS = 1e150
MIN_SPREAD = 1e-150


def check_features(ds: Dataset) -> None:
    """Every feature column must be standardizable: not constant, no value beyond ±1e150, and
    a spread (std) of at least 1e-150 so that neither the squares overflow nor the std
    underflows."""
    for j, c in enumerate(ds.feature_names):
        col = ds.X[:, j]
        with np.errstate(all="ignore"):
            spread, std = float(np.ptp(col)), float(col.std())
        if spread == 0:
            raise DataError(f"{ds.source}: feature {c} is constant (every row is "
                            f"{col[0]:g}); it carries no information and cannot be "
                            "standardized")
        big = np.abs(col).max()
        if big > MAX_ABS:
            i = int(np.abs(col).argmax())
            raise DataError(f"{ds.source} row {i + 2}, column {c}: {col[i]:g} is too large to "
                            f"standardize (|values| must stay below {MAX_ABS:g}); rescale "
                            "the column")
        if not std >= MIN_SPREAD:
            raise DataError(f"{ds.source}: column {c} varies by only {spread:.3g} (std "
                            f"{std:g}), too little to standardize (at least {MIN_SPREAD:g}); "
                            "rescale the column")


# ---- split --------------------------------------------------------------------------------
def split_indices(n: int, test_size: float = 0.2, seed: int = 0,
                  option: str = "test_size") -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indices, identical to scikit-learn's
    ``train_test_split(..., test_size=test_size, random_state=seed)`` (its ShuffleSplit draws
    one permutation of a RandomState(seed); the first ⌈test_size·n⌉ rows are the test set).
    Done here so that training never imports scikit-learn.

    A refusal is an :class:`OptionError` naming ``option`` (the option that gave
    ``test_size``), so each edge words it its own way (``--test-size`` on the command line)."""
    if not 0.0 < test_size < 1.0:
        raise OptionError(option, test_size, f"must be between 0 and 1, got {test_size}")
    n_test = math.ceil(test_size * n)
    n_train = n - n_test
    if n_test < 1 or n_train < 2:
        raise OptionError(option, test_size, f"{test_size} leaves too few of the {n} rows: "
                          "need at least 2 training rows and 1 test row")
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
