"""A trained network: layout + flat weights + the standardizers it was trained with.

Saved as JSON (no pickle): a format name and version, the layout, the loss, the standardizers,
the flat ``w`` in w1..wP order, the class labels, the training config and final losses.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from .activations import ACTIVATIONS
from .backprop import predict as _forward_predict
from .data import Standardizer
from .errors import ModelFileError
from .losses import LOSSES
from .network import Layout

FORMAT = "scratchnet-model"
VERSION = 1


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
    def to_dict(self) -> dict:
        return {
            "format": FORMAT, "version": VERSION,
            "layout": self.layout.to_dict(), "loss": self.loss,
            "x_scaler": self.x_scaler.to_dict() if self.x_scaler is not None else None,
            "y_scaler": self.y_scaler.to_dict() if self.y_scaler is not None else None,
            "classes": None if self.classes is None else np.asarray(self.classes).tolist(),
            "target": self.target_name,
            "w": np.asarray(self.w, dtype=float).tolist(),
            "weight_names": self.layout.weight_names(),
            "config": self.config, "final": self.final,
        }

    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh, indent=1)

    @classmethod
    def from_dict(cls, d: dict, source: str = "model") -> "Model":
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ModelFileError(f"{source}: not a scratchnet model file (no \"format\": "
                                 f"\"{FORMAT}\")")
        if d.get("version") != VERSION:
            raise ModelFileError(f"{source}: model format version {d.get('version')!r} is not "
                                 f"supported (this scratchnet reads version {VERSION})")
        try:
            layout = Layout.from_dict(d["layout"])
            w = np.asarray(d["w"], dtype=float)
            if w.shape != (layout.n_params,):
                raise ModelFileError(f"{source}: \"w\" has {w.size} values, the layout "
                                     f"{layout.describe()} needs {layout.n_params}")
            if d["loss"] not in LOSSES:
                raise ModelFileError(f"{source}: unknown loss {d['loss']!r}")
            xs = Standardizer.from_dict(d["x_scaler"]) if d.get("x_scaler") else None
            ys = Standardizer.from_dict(d["y_scaler"]) if d.get("y_scaler") else None
            classes = np.asarray(d["classes"], dtype=float) if d.get("classes") is not None \
                else None
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(f"{source}: malformed model file ({e.__class__.__name__}: "
                                 f"{e})") from None
        if not np.all(np.isfinite(w)):
            raise ModelFileError(f"{source}: \"w\" holds non-finite values")
        assert layout.output in ACTIVATIONS
        return cls(layout, w, d["loss"], xs, ys, classes, d.get("target", "classification"),
                   d.get("config", {}), d.get("final", {}))

    @classmethod
    def load(cls, path: str) -> "Model":
        try:
            with open(path, encoding="utf-8") as fh:
                d = json.load(fh)
        except FileNotFoundError:
            raise ModelFileError(f"{path}: no such file") from None
        except json.JSONDecodeError as e:
            raise ModelFileError(f"{path}: not valid JSON (truncated?) at line {e.lineno}, "
                                 f"column {e.colno}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ModelFileError(f"{path}: cannot read the file ({e})") from None
        return cls.from_dict(d, path)
