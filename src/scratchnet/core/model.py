"""A trained network: layout + flat weights + the standardizers it was trained with.

Saved as JSON (no pickle): a format name and version, the layout, the loss, the standardizers,
the flat ``w`` in w1..wP order, the class labels, the training config and final losses.

A model file is a contract.  :func:`validate` checks the *whole* file against one schema before
anything is built from it: every number finite, every length agreeing with the layout, integer
layer sizes, known activations and loss, one class label per output (two for one sigmoid unit),
nesting bounded.  A bad file is one line naming the file and the field.

Large models (more than ``INLINE_MAX`` weights) keep the readable JSON for everything but ``w``,
which goes to a ``.safetensors`` file beside it (a plain header + raw float64 bytes, no pickle);
the JSON names that file and its SHA-256, and loading checks both, the dtype and the shape.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field

import numpy as np

from .activations import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS
from .backprop import predict as _forward_predict
from .data import Standardizer
from .errors import ModelFileError, OutputError
from .io import atomic_write, dumps_json, write_bytes
from .losses import LOSSES
from .network import Layout

FORMAT = "scratchnet-model"
VERSION = 1
INLINE_MAX = 100_000  # weights kept inline in the JSON (≈ 2.5 MB of text); beyond: safetensors
MAX_DEPTH = 32  # nesting allowed in the free-form "config" and "final" sections
MAX_PARAMS = 2 ** 31  # a layout claiming more weights than this is refused before allocating


@dataclass
class Model:
    layout: Layout
    w: np.ndarray  # (P,) flat weights, w1..wP
    loss: str = "sse"
    x_scaler: Standardizer | None = None  # applied to every raw input
    y_scaler: Standardizer | None = None  # only when targets were standardized (--faithful)
    classes: np.ndarray | None = None  # the raw class labels; None for regression
    target_name: str = "classification"
    config: dict = field(default_factory=dict)
    final: dict = field(default_factory=dict)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.layout.input_names

    # ---- prediction on raw inputs -------------------------------------------------------
    def standardize(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if X.ndim == 1:
            X = X[None, :]
        if X.shape[1] != self.layout.sizes[0]:
            raise ValueError(f"expected {self.layout.sizes[0]} features, got {X.shape[1]}")
        return self.x_scaler.transform(X) if self.x_scaler is not None else X

    def output(self, X) -> np.ndarray:
        """The network's output ŷ, shape (N, n_out), for raw inputs X of shape (N, D)."""
        return _forward_predict(self.layout, self.w, self.standardize(X))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (N, n_classes); for one output unit [1 − p, p].

        With standardized targets (--faithful) the output is mapped back to the 0/1 label scale
        and clipped to [0, 1] — which is how the problem set's outputs must be read."""
        out = self.output(X)
        if out.shape[1] > 1:
            return out
        p = out[:, 0]
        if self.y_scaler is not None:
            p = self.y_scaler.inverse(p)
        p = np.clip(p, 0.0, 1.0)
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        """Predicted class labels (the raw labels of the training data), shape (N,)."""
        idx = self.predict_proba(X).argmax(axis=1)
        return self.classes[idx] if self.classes is not None else idx

    # ---- files --------------------------------------------------------------------------
    def to_dict(self, with_w: bool = True) -> dict:
        """The file's content; ``with_w=False`` leaves out ``w`` and the per-weight names (a
        large model's readable part)."""
        d = {
            "format": FORMAT, "version": VERSION,
            "layout": self.layout.to_dict(), "loss": self.loss,
            "x_scaler": self.x_scaler.to_dict() if self.x_scaler is not None else None,
            "y_scaler": self.y_scaler.to_dict() if self.y_scaler is not None else None,
            "classes": None if self.classes is None else np.asarray(self.classes).tolist(),
            "target": self.target_name,
            "config": _json_safe(self.config), "final": _json_safe(self.final),
        }
        if with_w:
            d["w"] = np.asarray(self.w, dtype=float).tolist()
            d["weight_names"] = self.layout.weight_names()
        return d

    def save(self, path) -> None:
        """Write the model atomically; the weights must be finite (a diverged run keeps its
        last finite epoch before it gets here).  Above ``INLINE_MAX`` weights, ``w`` goes to a
        safetensors file beside the JSON, named by its hash, written before the JSON that
        names it: a run killed in between leaves the old model whole."""
        path = os.fspath(path)
        w = np.ascontiguousarray(self.w, dtype=np.float64)
        if not np.all(np.isfinite(w)):
            k = int(np.flatnonzero(~np.isfinite(w))[0])
            raise OutputError(f"{path}: refusing to save non-finite weights (w{k + 1} is "
                              f"{w[k]}); the run diverged")
        if w.size <= INLINE_MAX:
            with atomic_write(path) as fh:
                fh.write(dumps_json(self.to_dict(), source=path) + "\n")
            _remove_orphans(path, keep=None)  # a big model saved here before, now small
            return
        from safetensors.numpy import save as st_save  # lazily: only big models need it

        blob = st_save({"w": w})
        digest = hashlib.sha256(blob).hexdigest()
        name = f"{os.path.splitext(os.path.basename(path))[0]}.w-{digest[:12]}.safetensors"
        write_bytes(os.path.join(os.path.dirname(path), name), blob)
        d = self.to_dict(with_w=False)
        d["w"] = {"safetensors": name, "tensor": "w", "sha256": digest}
        with atomic_write(path) as fh:
            fh.write(dumps_json(d, source=path) + "\n")
        _remove_orphans(path, keep=name)  # the previous weights, and any a kill left behind

    @classmethod
    def from_dict(cls, d: dict, source: str = "model", folder: str = ".") -> "Model":
        """A model from a parsed file, validated whole first (see :func:`validate`)."""
        v = validate(d, source, folder)
        return cls(v["layout"], v["w"], v["loss"], v["x_scaler"], v["y_scaler"], v["classes"],
                   v["target"], v["config"], v["final"])

    @classmethod
    def load(cls, path) -> "Model":
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8-sig") as fh:  # a UTF-8 BOM is fine, as for CSVs
                text = fh.read()
        except FileNotFoundError:
            raise ModelFileError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise ModelFileError(f"{path}: is a folder, not a model file") from None
        except UnicodeDecodeError as e:
            raise ModelFileError(f"{path}: not a model file (not UTF-8 text at byte "
                                 f"{e.start})") from None
        except OSError as e:
            raise ModelFileError(f"{path}: cannot read the file ({e.strerror or e})") from None
        try:
            d = json.loads(text, parse_constant=_refuse_constant)
        except json.JSONDecodeError as e:
            raise ModelFileError(f"{path}: not valid JSON (truncated?) at line {e.lineno}, "
                                 f"column {e.colno}") from None
        except RecursionError:
            raise ModelFileError(f"{path}: not a model file (JSON nested too deeply)") from None
        except _NonFinite as e:
            raise ModelFileError(f"{path}: holds the non-standard JSON token {e.args[0]} (a "
                                 "model file has finite numbers only)") from None
        return cls.from_dict(d, path, os.path.dirname(path))


# ---- the schema -------------------------------------------------------------------------------
class _NonFinite(ValueError):
    pass


def _refuse_constant(token: str):
    raise _NonFinite(token)


def _json_safe(obj):
    """config/final with NaN/±inf as null (JSON has no such numbers; these are metadata)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return _json_safe(obj.item())
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    return obj


def _weights_file_of(path: str) -> str | None:
    """The safetensors file an existing model file names, if any (to tidy it up on save)."""
    try:
        with open(path, encoding="utf-8-sig") as fh:
            w = json.load(fh).get("w")
        return w.get("safetensors") if isinstance(w, dict) else None
    except (OSError, ValueError, AttributeError, RecursionError):
        return None


def _remove_orphans(path: str, keep: str | None) -> None:
    """Remove the weights files of this model's own naming pattern (``<stem>.w-<12 hex>
    .safetensors``) that no model file names: the one the previous save named, and one a kill
    left between writing the weights and replacing the JSON.  A file some other model file of
    the same stem (``m.json`` beside ``m.model``) still names is kept; nothing else is
    touched."""
    folder = os.path.dirname(path) or "."
    stem = os.path.splitext(os.path.basename(path))[0]
    pattern = re.compile(re.escape(stem) + r"\.w-[0-9a-f]{12}\.safetensors")
    try:
        names = os.listdir(folder)
    except OSError:
        return
    weights = [n for n in names if pattern.fullmatch(n) and n != keep]
    if not weights:
        return
    here = os.path.basename(path)
    named = {_weights_file_of(os.path.join(folder, n)) for n in names
             if n != here and n.startswith(stem + ".") and not n.endswith(".safetensors")
             and _may_be_model_file(os.path.join(folder, n))}
    for n in weights:
        if n not in named:
            try:
                os.remove(os.path.join(folder, n))
            except OSError:
                pass


def _may_be_model_file(path: str) -> bool:
    """A regular file small enough to be a model's JSON (a big model keeps ``w`` out of it)
    that starts like a JSON object: a history CSV beside the model is not read whole."""
    try:
        if not os.path.isfile(path) or os.path.getsize(path) > 8 * INLINE_MAX * 32:
            return False
        with open(path, "rb") as fh:
            return fh.read(4).lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")
    except OSError:
        return False


class _Bad(Exception):
    """A field and what is wrong with it; becomes ``<file>: "<field>" <problem>``."""


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v))


def _need(cond: bool, field_: str, problem: str) -> None:
    if not cond:
        raise _Bad(field_, problem)


def _numbers(v, field_: str, n: int | None = None) -> np.ndarray:
    """A list of finite numbers (of length ``n``) → float64 array."""
    _need(isinstance(v, list), field_, "must be a list of numbers")
    if n is not None:
        _need(len(v) == n, field_, f"has {len(v)} values, the layout needs {n}")
    for i, x in enumerate(v):
        _need(_is_num(x), f"{field_}[{i}]", f"is {json.dumps(x)[:40]}, not a finite number")
    return np.asarray(v, dtype=np.float64).reshape(len(v))


def _depth_ok(obj, limit: int) -> bool:
    stack = [(obj, 0)]
    while stack:  # iterative, so a deep object cannot exhaust the recursion limit
        o, depth = stack.pop()
        if isinstance(o, (dict, list)):
            if depth >= limit:
                return False
            stack.extend((v, depth + 1) for v in (o.values() if isinstance(o, dict) else o))
    return True


def _layout(d) -> Layout:
    _need(isinstance(d, dict), "layout", "must be an object with sizes, activations, output")
    sizes = d.get("sizes")
    _need(isinstance(sizes, list) and len(sizes) >= 2, "layout.sizes",
          "must be a list of at least two layer sizes")
    for i, s in enumerate(sizes):
        _need(_is_int(s) and s >= 1, f"layout.sizes[{i}]",
              f"is {json.dumps(s)[:40]}, not a positive whole number")
    n_params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    _need(n_params <= MAX_PARAMS, "layout.sizes", f"needs {n_params} weights, more than "
          f"this scratchnet loads ({MAX_PARAMS})")
    acts = d.get("activations")
    _need(isinstance(acts, list) and len(acts) == len(sizes) - 2, "layout.activations",
          f"must list one activation per hidden layer ({len(sizes) - 2})")
    for i, a in enumerate(acts):
        _need(a in HIDDEN_ACTIVATIONS, f"layout.activations[{i}]",
              f"{json.dumps(a)[:40]} is not one of {', '.join(HIDDEN_ACTIVATIONS)}")
    out = d.get("output")
    _need(out in OUTPUT_ACTIVATIONS, "layout.output",
          f"{json.dumps(out)[:40]} is not one of {', '.join(OUTPUT_ACTIVATIONS)}")
    names = d.get("input_names", [])
    _need(isinstance(names, list) and all(isinstance(n, str) and n for n in names)
          and len(names) in (0, sizes[0]) and len(set(names)) == len(names),
          "layout.input_names", f"must be {sizes[0]} distinct column names")
    return Layout(tuple(sizes), tuple(acts), out, tuple(names))


def _scaler(d, field_: str, n: int) -> Standardizer | None:
    if d is None:
        return None
    _need(isinstance(d, dict), field_, "must be an object with mean and std, or null")
    mean = _numbers(d.get("mean"), f"{field_}.mean", n)
    std = _numbers(d.get("std"), f"{field_}.std", n)
    bad = np.flatnonzero(std <= 0)
    _need(bad.size == 0, f"{field_}.std[{bad[0] if bad.size else 0}]", "must be positive")
    return Standardizer(mean, std)


def _weights(v, n: int, folder: str) -> np.ndarray:
    if isinstance(v, list):
        return _numbers(v, "w", n)
    _need(isinstance(v, dict) and isinstance(v.get("safetensors"), str)
          and isinstance(v.get("sha256"), str), "w",
          "must be a list of numbers or {\"safetensors\": file, \"sha256\": hash}")
    name = v["safetensors"]
    _need(name == os.path.basename(name) and not name.startswith(".") and "\\" not in name,
          "w.safetensors", f"'{name[:60]}' must be a file name in the model's folder")
    path = os.path.join(folder, name)
    try:
        with open(path, "rb") as fh:
            blob = fh.read()
    except OSError as e:
        raise _Bad("w.safetensors", f"cannot read {path} ({e.strerror or e})") from None
    _need(hashlib.sha256(blob).hexdigest() == v["sha256"].lower(), "w.sha256",
          f"does not match {name} (changed or cut off since it was saved)")
    from safetensors import SafetensorError
    from safetensors.numpy import load as st_load

    try:
        tensors = st_load(blob)
    except (SafetensorError, ValueError, TypeError) as e:
        raise _Bad("w.safetensors", f"{name} is not a valid safetensors file ({e})") from None
    key = v.get("tensor", "w")
    _need(key in tensors, "w.tensor", f"{name} holds no tensor '{key}'")
    w = tensors[key]
    _need(w.dtype == np.float64, "w", f"{name}: tensor '{key}' is {w.dtype}, not float64")
    _need(w.shape == (n,), "w", f"{name}: tensor '{key}' has shape {w.shape}, the layout "
          f"needs ({n},)")
    bad = np.flatnonzero(~np.isfinite(w))
    _need(bad.size == 0, f"w[{bad[0] if bad.size else 0}]", f"in {name} is not finite")
    return w


def validate(d, source: str = "model", folder: str = ".") -> dict:
    """Check a parsed model file whole and return its parts; a problem raises
    :class:`ModelFileError` naming ``source`` and the field."""
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ModelFileError(f"{source}: not a scratchnet model file (no \"format\": "
                             f"\"{FORMAT}\")")
    if d.get("version") != VERSION:
        raise ModelFileError(f"{source}: model format version {d.get('version')!r} is not "
                             f"supported (this scratchnet reads version {VERSION})")
    try:
        for k in ("layout", "w", "loss"):
            _need(k in d, k, "is missing (malformed model file)")
        layout = _layout(d["layout"])
        n_in, n_out = layout.sizes[0], layout.sizes[-1]
        _need(isinstance(d["loss"], str) and d["loss"] in LOSSES, "loss", f"unknown loss {json.dumps(d['loss'])[:40]}")
        xs = _scaler(d.get("x_scaler"), "x_scaler", n_in)
        ys = _scaler(d.get("y_scaler"), "y_scaler", n_out)
        classes = d.get("classes")
        if classes is not None:
            need = 2 if n_out == 1 else n_out
            classes = _numbers(classes, "classes")
            _need(classes.size == need, "classes", f"has {classes.size} labels, a network "
                  f"with {n_out} output{'s' if n_out > 1 else ''} needs {need}")
            _need(np.unique(classes).size == classes.size, "classes", "repeats a label")
        target = d.get("target", "classification")
        _need(isinstance(target, str), "target", "must be a column name")
        extra = {}
        for k in ("config", "final"):
            v = d.get(k) or {}
            _need(isinstance(v, dict), k, "must be an object")
            _need(_depth_ok(v, MAX_DEPTH), k, f"is nested more than {MAX_DEPTH} deep")
            extra[k] = v
        w = _weights(d["w"], layout.n_params, folder)
    except _Bad as e:
        field_, problem = e.args
        raise ModelFileError(f"{source}: \"{field_}\" {problem}") from None
    return {"layout": layout, "w": w, "loss": d["loss"], "x_scaler": xs, "y_scaler": ys,
            "classes": classes, "target": target, **extra}
