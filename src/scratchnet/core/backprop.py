"""Forward pass and hand-derived backpropagation, in the problem set's notation.

    α_l = β_{l−1} W_l[1:] + W_l[0]        weighted sum entering layer l (bias row first)
    β_l = f_l(α_l)                        output of layer l; β_0 = x
    δ_L = ∂E/∂α_L = f_L′(β_L) ⊙ ∂E/∂ŷ     output error (ŷ − y when the pair is canonical)
    δ_l = (δ_{l+1} W_{l+1}[1:]ᵀ) ⊙ f_l′(β_l)   error sent one layer back
    ∂E/∂W_l[0]  = Σ_n δ_l                 bias weights
    ∂E/∂W_l[1:] = β_{l−1}ᵀ δ_l            every other weight

For the 2-7-1 sigmoid network with E = ½Σ(y − ŷ)² these lines are the problem set's 29 formulas:
δ_out = (ŷ − y) ŷ(1 − ŷ) is its ``s``, ∂E/∂w23 = Σ s β_H1, and ∂E/∂w8 = Σ s w23 β_H1(1 − β_H1) x_1.
No autograd, no per-weight loops: each line is one array expression over the whole batch.
"""
from __future__ import annotations

import numpy as np

from .activations import ACTIVATIONS
from .losses import CANONICAL_PAIRS, LOSSES
from .network import Layout

Array = np.ndarray


def forward(layout: Layout, w: Array, x: Array) -> list[Array]:
    """β_0 = x, β_1, …, β_L = ŷ for a batch x of shape (N, n_in); returns the list of β.

    ``w`` is one network (P,) — then β_l has shape (N, n_l) — or K networks (K, P) sharing
    the inputs x — then β_l has shape (K, N, n_l) for l ≥ 1.  The same lines serve both."""
    betas = [x]
    for l, W in enumerate(layout.views(w)):  # W: (…, fan_in + 1, fan_out)
        alpha = betas[-1] @ W[..., 1:, :] + W[..., :1, :]  # (…, N, fan_out)   α_l
        betas.append(layout.layer_activation(l).f(alpha))  # (…, N, fan_out)   β_l = f(α_l)
    return betas


def predict(layout: Layout, w: Array, x: Array) -> Array:
    """ŷ of shape (N, n_out), or (K, N, n_out) for K networks w (K, P)."""
    return forward(layout, w, x)[-1]


def accuracy(y_pred: Array, labels: Array, threshold: float) -> Array | float:
    """Share of rows classified right: one output unit says class 1 when ŷ > threshold,
    several take the argmax.  ŷ (N, n_out) gives a float, ŷ (K, N, n_out) one per network."""
    if y_pred.shape[-1] == 1:
        hits = (y_pred[..., 0] > threshold) == (labels == 1)
    else:
        hits = y_pred.argmax(axis=-1) == labels
    score = np.mean(hits, axis=-1)
    return float(score) if score.ndim == 0 else score


def output_delta(layout: Layout, loss: str, y_pred: Array, y: Array) -> Array:
    """δ_L = ∂E/∂α_L for the output layer, shape of ŷ: (N, n_out) or (K, N, n_out)."""
    if (layout.output, loss) in CANONICAL_PAIRS:
        return y_pred - y
    return ACTIVATIONS[layout.output].backward(y_pred, LOSSES[loss].grad(y, y_pred))


def backward(layout: Layout, w: Array, betas: list[Array], delta: Array, *,
             input_delta: bool = False) -> Array | tuple[Array, Array]:
    """∂E/∂w (the same w1..wP order as ``w``, shape (P,) or (K, P)) from the forward pass and
    δ_L.  With ``input_delta`` also δ_0 = ∂E/∂x = δ_1 W_1[1:]ᵀ, shape (…, N, n_in), the
    error the layers below the inputs need (the CNN's convolutions)."""
    grad = np.empty_like(w)
    Ws, Gs = layout.views(w), layout.views(grad)
    for l in reversed(range(layout.n_layers)):
        Gs[l][..., 0, :] = delta.sum(axis=-2)  # (…, fan_out)   ∂E/∂bias = Σ_n δ_l
        Gs[l][..., 1:, :] = np.swapaxes(betas[l], -1, -2) @ delta  # β_{l−1}ᵀ δ_l  (…, in, out)
        if l > 0 or input_delta:  # the error one layer back: δ_l W_l[1:]ᵀ …
            back = delta @ np.swapaxes(Ws[l][..., 1:, :], -1, -2)  # (…, N, fan_in)
            if l == 0:
                return grad, back  # the inputs have no activation: δ_0 = ∂E/∂x
            delta = layout.layer_activation(l - 1).backward(betas[l], back)  # … ⊙ f′(β_{l−1})
    return grad


def loss_and_grad(layout: Layout, loss: str, w: Array, x: Array, y: Array) -> tuple[float, Array]:
    """E(w) on (x, y) and ∂E/∂w, by one forward and one backward pass."""
    betas = forward(layout, w, x)
    value = LOSSES[loss].value(y, betas[-1])
    return value, backward(layout, w, betas, output_delta(layout, loss, betas[-1], y))


def loss_value(layout: Layout, loss: str, w: Array, x: Array, y: Array) -> float:
    return LOSSES[loss].value(y, predict(layout, w, x))


def numeric_grad(layout: Layout, loss: str, w: Array, x: Array, y: Array,
                 h: float = 1e-6) -> Array:
    """Central finite differences (E(w + h e_k) − E(w − h e_k)) / 2h for every weight k."""
    g = np.empty_like(w)
    wp = w.copy()
    for k in range(w.size):
        wp[k] = w[k] + h
        e_plus = loss_value(layout, loss, wp, x, y)
        wp[k] = w[k] - h
        e_minus = loss_value(layout, loss, wp, x, y)
        wp[k] = w[k]
        g[k] = (e_plus - e_minus) / (2 * h)
    return g
