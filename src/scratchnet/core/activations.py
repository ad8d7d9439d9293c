"""The table of activation functions: each a pair (f, f′) with f′ written from the output β.

The problem set writes the sigmoid's derivative as β(1 − β), i.e. in terms of the unit's
*output*; every entry here does the same (as scikit-learn's ``_base.py`` does), so backprop
never has to keep α around.  Adding an activation is one entry in ``ACTIVATIONS``; the tests are
parametrized over the table and pick it up.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Array = np.ndarray


def sigmoid(alpha: Array) -> Array:
    """S(α) = 1 / (1 + e^(−α)), evaluated without overflow for large |α|."""
    e = np.exp(-np.abs(alpha))  # in (0, 1], never overflows
    return np.where(alpha >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softmax(alpha: Array) -> Array:
    """σ(z)_i = e^(z_i) / Σ_j e^(z_j) over the last axis, shifted by max(z) for stability."""
    z = np.exp(alpha - alpha.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def softplus(alpha: Array) -> Array:
    """log(1 + e^α) = max(α, 0) + log(1 + e^(−|α|)), without overflow for large |α|."""
    return np.maximum(alpha, 0.0) + np.log1p(np.exp(-np.abs(alpha)))


LEAK = 0.01  # leaky_relu's slope for α ≤ 0


@dataclass(frozen=True)
class Activation:
    name: str
    f: Callable[[Array], Array]  # β = f(α)
    df: Callable[[Array], Array] | None  # f′(α) written from β; None when not elementwise
    low: float  # the range of f: targets outside it can never be reached
    high: float

    def backward(self, beta: Array, g: Array) -> Array:
        """∂E/∂α from ∂E/∂β = g (a vector-Jacobian product). Elementwise: g · f′."""
        if self.df is not None:
            return g * self.df(beta)
        # softmax: ∂β_i/∂α_j = β_i (δ_ij − β_j)  ⇒  ∂E/∂α = β ⊙ (g − Σ_j g_j β_j)
        return beta * (g - (g * beta).sum(axis=-1, keepdims=True))


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation("sigmoid", sigmoid, lambda b: b * (1.0 - b), 0.0, 1.0),
    "tanh": Activation("tanh", np.tanh, lambda b: 1.0 - b * b, -1.0, 1.0),
    "relu": Activation("relu", lambda a: np.maximum(a, 0.0), lambda b: (b > 0).astype(b.dtype),
                       0.0, np.inf),
    "identity": Activation("identity", lambda a: a, np.ones_like, -np.inf, np.inf),
    "softmax": Activation("softmax", softmax, None, 0.0, 1.0),
    # f′ from β: β has α's sign, so the slope is 1 where β > 0, else LEAK
    "leaky_relu": Activation("leaky_relu", lambda a: np.where(a > 0, a, LEAK * a),
                             lambda b: np.where(b > 0, 1.0, LEAK), -np.inf, np.inf),
    # f′(α) = S(α) = 1 − e^(−β), since e^β = 1 + e^α
    "softplus": Activation("softplus", softplus, lambda b: -np.expm1(-b), 0.0, np.inf),
}

HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity", "leaky_relu", "softplus")
OUTPUT_ACTIVATIONS = ("sigmoid", "identity", "softmax")
