"""What a page may ask for: the checked training configuration and the uploaded CSV files.

Every value from the browser is checked here against :class:`~.session.Limits` before the core
sees it; a refusal is a :class:`~.session.PlaygroundError` whose message the page shows as is.
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import math
import os
import secrets
import tempfile
import threading
import uuid
from collections import OrderedDict

import numpy as np

from ..core.data import DEFAULT_FEATURES, DEFAULT_TARGET, Dataset, load_data, read_csv
from ..core.datasets import NAMES
from ..core.errors import OptionError
from ..training.options import OPTIONS
from ..training.train import TrainConfig
from . import PlaygroundError
from .features import REGRESSION_DEFAULTS, regression_dataset
from .session import Limits

# the defaults of each bundled set, as the page offers them (ps5 is a fixed file of 100 rows)
DATASETS = {
    "ps5": {"n_samples": 100, "noise": None},
    "moons": {"n_samples": 200, "noise": 0.1},
    "circles": {"n_samples": 200, "noise": 0.05},
    "xor": {"n_samples": 200, "noise": 0.3},
    "gaussians": {"n_samples": 200, "noise": 0.8, "n_classes": 2},
    "spiral": {"n_samples": 300, "noise": 0.1, "n_classes": 2},
}
assert set(DATASETS) == set(NAMES)


def previews(n: int = 120) -> dict:
    """Each bundled set with its defaults, as ≤ n points scaled to [0, 1]² (the buttons' icons)."""
    out = {}
    for name in (*DATASETS, *REGRESSION_DEFAULTS):
        if name in DATASETS:
            ds = load_data(name)
            X, y = ds.X[:, :2], np.searchsorted(np.unique(ds.y), ds.y)
        else:  # regression: the sign of the target, for the icon
            ds = regression_dataset(name, 300, 0.0, 0)
            X, y = ds.X, (ds.y > np.median(ds.y)).astype(int)
        keep = np.linspace(0, len(y) - 1, min(n, len(y))).round().astype(int)
        lo, hi = X.min(axis=0), X.max(axis=0)
        U = (X[keep] - lo) / np.where(hi > lo, hi - lo, 1.0)
        out[name] = {"x": np.round(U[:, 0], 3).tolist(), "y": np.round(U[:, 1], 3).tolist(),
                     "label": y[keep].tolist()}
    return out


def _number(d: dict, key: str, default, lo, hi, what: str, integer: bool = False):
    v = d.get(key, default)
    if v is None or v == "":
        v = default
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise PlaygroundError(f"{what}: expected a number, got {v!r}")
    if isinstance(v, str) and len(v) > 40:
        raise PlaygroundError(f"{what}: '{v[:20]}…' is not a number the playground takes")
    try:
        x = float(v)
    except ValueError:
        raise PlaygroundError(f"{what}: '{v}' is not a number") from None
    except OverflowError:  # a whole number too large for a float (JSON allows any length)
        raise PlaygroundError(f"{what}: {str(v)[:20]}… is out of range") from None
    if not math.isfinite(x):
        raise PlaygroundError(f"{what}: '{v}' is not a finite number")
    if integer:
        if x != round(x):
            raise PlaygroundError(f"{what}: '{v}' is not a whole number")
        x = int(round(x))
    if not lo <= x <= hi:
        raise PlaygroundError(f"{what}: {x:g} is out of range (allowed {lo:g} to {hi:g})")
    return x


def _choice(d: dict, key: str, default: str, options, what: str) -> str:
    v = d.get(key, default)
    if v not in options:
        raise PlaygroundError(f"{what}: unknown '{v}' (choose from {', '.join(options)})")
    return v


# the page's name for each training option it sets: a refusal names the field
FIELDS = {"hidden": "hidden layers", "activation": "activation", "output": "output activation",
          "loss": "loss", "init": "init", "lr": "learning rate", "epochs": "epoch budget",
          "seed": "weight seed", "test_size": "test fraction", "split_seed": "data seed",
          "data_seed": "data seed", "optimizer": "optimizer", "batch_size": "batch size",
          "l2": "L2 penalty λ", "l1": "L1 penalty λ₁", "n_samples": "data size", "noise": "noise",
          "n_classes": "classes", "features": "features", "target": "target",
          "data": "data set"}


def _option(d: dict, key: str, name: str | None = None) -> str:
    """A choice of the options table (its choices and default), named as the page names it."""
    o = OPTIONS[name or key]
    return _choice(d, key, o.default, o.choices, FIELDS[o.name])


def parse_config(msg: dict, uploads: "Uploads", limits: Limits) -> tuple[TrainConfig,
                                                                          Dataset | None]:
    """A page's {"data": {...}, "network": {...}} → (TrainConfig, uploaded Dataset or None).

    The page's limits (``Limits``: sizes a shared server can afford) are checked here; the
    options' own ranges and the rules between them are the table's (``TrainConfig`` checks
    them), their refusal worded with the page's field names."""
    data, net = msg.get("data") or {}, msg.get("network") or {}
    if not isinstance(data, dict) or not isinstance(net, dict):
        raise PlaygroundError("config: 'data' and 'network' must be objects")
    name = _choice(data, "name", "ps5", (*NAMES, "upload"), "data set")

    hidden = net.get("hidden", list(OPTIONS["hidden"].default))
    if not isinstance(hidden, list):
        raise PlaygroundError("hidden layers: expected a list of unit counts")
    if len(hidden) > limits.hidden_layers:
        raise PlaygroundError(f"hidden layers: at most {limits.hidden_layers} "
                              f"(asked for {len(hidden)})")
    hidden = tuple(_number({"h": h}, "h", None, 1, limits.units,
                           f"units in hidden layer {i + 1} (at most {limits.units})", True)
                   for i, h in enumerate(hidden))
    seed_max = 2**31 - 1  # a page's seed fits a JavaScript int32
    kw = dict(
        hidden=hidden, activation=_option(net, "activation"), output=_option(net, "output"),
        loss=_option(net, "loss"), init=_option(net, "init"),
        lr=_number(net, "lr", OPTIONS["lr"].default, 1e-12, 100.0, FIELDS["lr"]),
        epochs=_number(net, "epochs", OPTIONS["epochs"].default, 1, limits.epochs,
                       f"epoch budget (at most {limits.epochs:,})", True),
        seed=_number(net, "seed", 0, 0, seed_max, FIELDS["seed"], True),
        test_size=_number(data, "test_size", OPTIONS["test_size"].default, 0.05, 0.9,
                          FIELDS["test_size"]),
        split_seed=_number(data, "seed", 0, 0, seed_max, FIELDS["split_seed"], True),
        optimizer=_option(net, "optimizer"),
    )
    batch = net.get("batch_size")
    kw["batch_size"] = None if batch in (None, "", 0, "full") else _number(
        net, "batch_size", None, 1, limits.rows, FIELDS["batch_size"], True)
    kw["l2"] = _number(net, "l2", 0.0, 0.0, 10.0, FIELDS["l2"])
    kw["l1"] = _number(net, "l1", 0.0, 0.0, 10.0, FIELDS["l1"])
    dataset = None
    if name == "upload":
        features = data.get("features") or None
        if features is not None:
            if not (isinstance(features, list) and all(isinstance(f, str) for f in features)):
                raise PlaygroundError("features: expected a list of column names")
            if not 2 <= len(features) <= limits.features:
                raise PlaygroundError(f"features: choose 2 to {limits.features} columns (the "
                                      f"map is drawn over the first two), got {len(features)}")
        target = data.get("target") or None
        if target is not None and not isinstance(target, str):
            raise PlaygroundError("target: expected a column name")
        _train_config(kw)  # the options' rules before the file is read
        dataset = uploads.dataset(str(data.get("upload_id", "")), features, target)
        if dataset.X.shape[1] < 2:
            raise PlaygroundError(f"{dataset.source}: choose at least two feature columns "
                                  "(the map is drawn over the first two)")
        config = _train_config(dict(data=dataset.source, features=dataset.feature_names,
                                    target=dataset.target_name, **kw))
    else:
        opts = DATASETS[name]
        gen = {}
        if name != "ps5":
            gen["n_samples"] = _number(data, "n_samples", opts["n_samples"], 10, limits.rows,
                                       f"data size (at most {limits.rows:,} rows)", True)
            gen["noise"] = _number(data, "noise", opts["noise"], 0.0, 5.0, FIELDS["noise"])
            gen["data_seed"] = kw["split_seed"]
            if "n_classes" in opts:
                gen["n_classes"] = _number(data, "n_classes", 2, 2, limits.classes,
                                           FIELDS["n_classes"], True)
        config = _train_config(dict(data=name, **gen, **kw))
    return config, dataset


def _train_config(kw: dict) -> TrainConfig:
    """``TrainConfig(**kw)``, an option it refuses worded with the page's field names."""
    try:
        return TrainConfig(**kw)
    except OptionError as e:
        raise PlaygroundError(e.worded(lambda n: FIELDS.get(n, n))) from None


class Uploads:
    """Uploaded CSV files kept in memory, per page: each page (its token) keeps its newest
    ``limits.uploads_per_page`` files, and at most ``limits.upload_pages`` pages keep files (the
    least recently used page's files go first).  One page's uploads never push out another's
    unless that many pages upload at once; a token that is not this server's keeps nothing."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self._pages: OrderedDict[str, OrderedDict[str, tuple[str, bytes]]] = OrderedDict()
        self._lock = threading.Lock()
        self._secret = secrets.token_bytes(32)

    # ---- tokens: a page gets one with /api/meta; only this server can make a valid one ---
    def new_token(self) -> str:
        nonce = secrets.token_hex(12)
        return f"{nonce}.{self._sign(nonce)}"

    def _sign(self, nonce: str) -> str:
        return hmac.new(self._secret, nonce.encode(), hashlib.sha256).hexdigest()[:32]

    def valid(self, token: str | None) -> bool:
        if not isinstance(token, str) or len(token) > 80 or token.count(".") != 1:
            return False
        nonce, sig = token.split(".")
        return hmac.compare_digest(sig, self._sign(nonce))

    def add(self, token: str, filename: str, data: bytes) -> dict:
        """Check and keep one file for the page with ``token``; returns its id, columns and
        suggested columns."""
        if not self.valid(token):
            raise PlaygroundError("uploads need the page's token: reload the playground page")
        info = check_csv(filename, data, self.limits)
        uid = uuid.uuid4().hex
        with self._lock:
            page = self._pages.pop(token, None) or OrderedDict()
            page[uid] = (info["name"], data)
            while len(page) > self.limits.uploads_per_page:
                page.popitem(last=False)
            self._pages[token] = page
            while len(self._pages) > self.limits.upload_pages:
                self._pages.popitem(last=False)
        return {"upload_id": uid, **info}

    def for_page(self, token: str | None) -> "PageUploads":
        return PageUploads(self, token if self.valid(token) else None)

    def get(self, token: str | None, upload_id: str) -> tuple[str, bytes] | None:
        with self._lock:
            page = self._pages.get(token) if token else None
            if page is None:
                return None
            self._pages.move_to_end(token)
            return page.get(upload_id)

    def count(self) -> int:
        with self._lock:
            return sum(len(p) for p in self._pages.values())


class PageUploads:
    """One page's view of the uploads: what a tab's config may name."""

    def __init__(self, uploads: Uploads, token: str | None):
        self.uploads, self.token = uploads, token

    def dataset(self, upload_id: str, features, target) -> Dataset:
        item = self.uploads.get(self.token, upload_id)
        if item is None:
            raise PlaygroundError("the uploaded file is no longer on the server; upload it "
                                  "again")
        name, data = item
        with tempfile.TemporaryDirectory(prefix="scratchnet-upload-") as tmp:
            path = os.path.join(tmp, "data.csv")
            with open(path, "wb") as fh:
                fh.write(data)
            return read_csv(path, features, target, display=name)


def check_csv(filename: str, data: bytes, lim: Limits) -> dict:
    """The file's name, rows, columns and suggested columns, or a PlaygroundError saying why
    the playground cannot take it."""
    name = os.path.basename(filename or "upload.csv")[:100] or "upload.csv"
    if len(data) > lim.upload_bytes:
        raise PlaygroundError(f"{name}: the file has {len(data):,} bytes; the playground "
                              f"takes CSV files up to {lim.upload_bytes:,} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PlaygroundError(f"{name}: not a UTF-8 text file (is it a CSV?)") from None
    try:
        rows = [r for r in csv.reader(io.StringIO(text, newline=""))
                if any(c.strip() for c in r)]
    except csv.Error as e:
        raise PlaygroundError(f"{name}: not a readable CSV file ({e})") from None
    if not rows:
        raise PlaygroundError(f"{name}: the file is empty")
    header = [c.strip() for c in rows[0]]
    if len(rows) == 1:
        raise PlaygroundError(f"{name}: has a header but no data rows")
    if len(rows) - 1 > lim.rows:
        raise PlaygroundError(f"{name}: {len(rows) - 1:,} data rows; the playground takes "
                              f"at most {lim.rows:,}")
    if len(header) > lim.columns:
        raise PlaygroundError(f"{name}: {len(header)} columns; the playground takes at "
                              f"most {lim.columns}")
    if len(header) < 3:
        raise PlaygroundError(f"{name}: needs at least 3 columns (two features and a "
                              f"target), found {len(header)}: {', '.join(header)}")
    if len(set(header)) != len(header) or "" in header:
        raise PlaygroundError(f"{name}: the header row needs distinct, non-empty column "
                              f"names (found: {', '.join(header)})")
    numeric = [all(_is_number(r[j]) for r in rows[1:] if j < len(r))
               for j in range(len(header))]
    target = DEFAULT_TARGET if DEFAULT_TARGET in header else header[-1]
    feats = [c for c in DEFAULT_FEATURES if c in header]
    if len(feats) < 2:
        feats = [c for c, ok in zip(header, numeric) if ok and c != target][:2] or \
            [c for c in header if c != target][:2]
    return {"name": name, "rows": len(rows) - 1, "columns": header, "numeric": numeric,
            "features": feats, "target": target}


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False
