"""One training step worked out in numbers, for any architecture: the hand-out's centrepiece.

For one training row n at the starting weights: α, β and δ of every unit, the per-row gradient
∂E_n/∂w_k of every weight written as the derivation's pattern (δ of the unit the weight enters ×
what the weight carries), the full-batch gradient ∂E/∂w_k = Σ_n ∂E_n/∂w_k over the training
rows, and every weight after one step w_k − η ∂E/∂w_k.

The δ here are computed unit by unit from their definitions (δ_O = ∂E_n/∂α_O, and a hidden
unit's δ = f′(β) Σ_d w_{u→d} δ_d); the tests hold the result to the engine's ``backward`` and to
one epoch of ``train``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.activations import ACTIVATIONS
from ..core.backprop import forward, loss_and_grad, output_delta
from ..core.network import Layout
from .derive import unit_tag


@dataclass
class WorkedStep:
    layout: Layout
    loss: str
    row: int  # which training row (0-based among the training rows)
    x: np.ndarray  # (n_in,) its standardized inputs
    y: np.ndarray  # (n_out,) its target
    alphas: list[np.ndarray]  # per layer 1..L: (n_l,) weighted sums
    betas: list[np.ndarray]  # per layer 0..L: (n_l,) outputs (β_0 = x)
    deltas: list[np.ndarray]  # per layer 1..L: (n_l,) δ = ∂E_n/∂α
    grad_row: np.ndarray  # (P,) ∂E_n/∂w_k for this row
    grad: np.ndarray  # (P,) ∂E/∂w_k summed over the training rows
    w: np.ndarray  # (P,) the weights before the step
    lr: float

    @property
    def w_next(self) -> np.ndarray:
        """The weights after one full-batch gradient-descent step."""
        return self.w - self.lr * self.grad

    def carried(self, k: int) -> tuple[str, float]:
        """(name, value) of what weight k carries into its unit: 1 for a bias, else x_i or β."""
        l0, r, _ = self.layout.weight_index(k)
        if r == 0:
            return "1", 1.0
        name = (f"x_{r}" if l0 == 0 else f"β_{self.unit(l0, r - 1)}")
        return name, float(self.betas[l0][r - 1])

    def unit(self, layer: int, j: int) -> str:
        """The derivation's unit names: H1..H7 (H2.3 for several hidden layers), O1.."""
        return unit_tag(self.layout, layer, j)

    def receiving(self, k: int) -> tuple[str, float]:
        """(δ's name, value) of the unit weight k enters."""
        l0, _, c = self.layout.weight_index(k)
        return f"δ_{self.unit(l0 + 1, c)}", float(self.deltas[l0][c])

    def unit_rows(self) -> list[tuple[str, float, float, float]]:
        """(unit, α, β, δ) for every hidden and output unit, layer by layer."""
        return [(self.unit(l + 1, j), float(self.alphas[l][j]), float(self.betas[l + 1][j]),
                 float(self.deltas[l][j]))
                for l in range(self.layout.n_layers) for j in range(self.layout.sizes[l + 1])]


def worked_step(layout: Layout, loss: str, w: np.ndarray, x_train: np.ndarray,
                y_train: np.ndarray, lr: float, row: int = 0) -> WorkedStep:
    """The step for training row ``row`` at weights ``w`` (see the module docstring)."""
    x, y = x_train[row:row + 1], y_train[row:row + 1]  # (1, n_in), (1, n_out)
    W = layout.views(w)  # W[l]: (n_l + 1, n_{l+1}), bias row first
    betas = forward(layout, w, x)  # β_0 … β_L, each (1, n_l)
    alphas = [W[l][0] + betas[l] @ W[l][1:] for l in range(layout.n_layers)]  # (1, n_{l+1})
    deltas = [None] * layout.n_layers
    deltas[-1] = output_delta(layout, loss, betas[-1], y)  # δ_O = ∂E_n/∂α_O
    for l in range(layout.n_layers - 2, -1, -1):  # hidden: δ_u = f′(β_u) Σ_d w_{u→d} δ_d
        back = deltas[l + 1] @ W[l + 1][1:].T  # (1, n_{l+1})
        deltas[l] = ACTIVATIONS[layout.activations[l]].backward(betas[l + 1], back)
    grad_row = np.empty(layout.n_params)
    for k in range(layout.n_params):  # δ of the receiving unit × what the weight carries
        l0, r, c = layout.weight_index(k)
        carried = 1.0 if r == 0 else betas[l0][0, r - 1]
        grad_row[k] = deltas[l0][0, c] * carried
    _, grad = loss_and_grad(layout, loss, w, x_train, y_train)
    return WorkedStep(layout, loss, row, x[0], y[0], [a[0] for a in alphas],
                      [b[0] for b in betas], [d[0] for d in deltas], grad_row, grad,
                      np.array(w, float), float(lr))
