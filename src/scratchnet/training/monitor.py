"""Two numbers that show vanishing gradients while they happen.

* ``layer_gradient_norms``: ‖∂E/∂W_l‖ for every weight layer l (inputs → first hidden layer is
  l = 0, the output layer is last).  When the gradient reaching the first layers is orders of
  magnitude smaller than the one at the output, the early weights barely move.
* ``saturated_share``: per hidden layer, the share of (sample, unit) pairs whose local slope
  f′(β) is almost zero.  The chain rule multiplies by f′ once per layer, so a saturated unit
  (sigmoid β ≈ 0 or 1, where β(1 − β) ≈ 0; a dead ReLU, β = 0) passes (almost) no error back.

Both take the flat ``w`` of the problem set's numbering and standardized inputs, as the core
does; both are cheap (one forward and at most one backward pass).
"""
from __future__ import annotations

import numpy as np

from ..core.backprop import forward, loss_and_grad
from ..core.network import Layout

# A unit counts as saturated on a sample when f′(β) < SATURATION · (largest f′ of f):
# for the sigmoid β(1 − β) < 0.025, i.e. β < 0.026 or β > 0.974 (|α| > 3.6); for tanh |β| > 0.95;
# a ReLU is saturated ("dead") only where β = 0; the identity never saturates.
SATURATION = 0.1


def layer_gradient_norms(layout: Layout, loss: str, w: np.ndarray, x: np.ndarray,
                         y: np.ndarray) -> list[float]:
    """The Euclidean norm of ∂E/∂W_l for every weight layer l, first layer first.

    ``x``: standardized inputs (N, n_in); ``y``: targets in network space (N, n_out).
    Returns ``layout.n_layers`` floats (the bias row is part of W_l).
    """
    _, grad = loss_and_grad(layout, loss, np.asarray(w, dtype=float), x, y)
    return [float(np.linalg.norm(G)) for G in layout.views(grad)]


def _largest_slope(layout: Layout, l: int) -> float:
    """max f′ of the activation of weight layer l, read off f′ at α ∈ {−1, 0, 1}."""
    act = layout.layer_activation(l)
    return float(np.max(act.df(act.f(np.array([-1.0, 0.0, 1.0])))))


def saturated_share(layout: Layout, w: np.ndarray, x: np.ndarray,
                    threshold: float = SATURATION) -> list[float]:
    """For every hidden layer, the share (0..1) of (sample, unit) pairs whose slope
    f′(β) is below ``threshold`` times the activation's largest slope.

    ``x``: standardized inputs (N, n_in).  Returns one float per hidden layer (an empty list for
    a network without hidden layers).
    """
    betas = forward(layout, np.asarray(w, dtype=float), x)
    shares = []
    for l in range(layout.n_layers - 1):  # hidden layers only: β_1 … β_{L−1}
        act = layout.layer_activation(l)
        slope = act.df(betas[l + 1])  # (N, units)   f′ written from the output β
        shares.append(float(np.mean(slope < threshold * _largest_slope(layout, l))))
    return shares
