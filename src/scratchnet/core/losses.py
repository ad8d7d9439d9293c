"""The table of losses: E(y, ŷ) summed over samples (never averaged, as in the problem set)
and its derivative ∂E/∂ŷ."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Array = np.ndarray
EPS = 1e-12  # keeps log() finite when an output saturates at exactly 0 or 1


def _clip(p: Array) -> Array:
    return np.clip(p, EPS, 1.0 - EPS)


@dataclass(frozen=True)
class Loss:
    """E(y, ŷ) = scale · Σ term(y, ŷ): the formula written once, for one network's ŷ (N, n_out)
    and for K networks' ŷ (K, N, n_out) alike."""

    name: str
    scale: float  # ½ for sse, −1 for the log losses
    term: Callable[[Array, Array], Array]  # the elementwise summand, same shape as ŷ
    grad: Callable[[Array, Array], Array]  # ∂E/∂ŷ
    formula: str  # shown in reports and on the playground

    def value(self, y: Array, p: Array) -> float:
        """E(y, ŷ) of one network, a float."""
        return self.scale * float(np.sum(self.term(y, p)))

    def values(self, y: Array, p: Array) -> Array:
        """E(y, ŷ[k]) of each of K networks' predictions ŷ (K, N, n_out): shape (K,)."""
        return self.scale * np.sum(self.term(y, p), axis=(-2, -1))


LOSSES: dict[str, Loss] = {
    # E = ½ Σ (y − ŷ)², the problem set's loss; ∂E/∂ŷ = ŷ − y.
    "sse": Loss("sse", 0.5, lambda y, p: (p - y) ** 2, lambda y, p: p - y,
                "E = ½ Σᵢ (yᵢ − ŷᵢ)²"),
    # E = −Σ [y log ŷ + (1 − y) log(1 − ŷ)]; ∂E/∂ŷ = (ŷ − y) / (ŷ(1 − ŷ)).
    "bce": Loss("bce", -1.0, lambda y, p: y * np.log(_clip(p)) + (1 - y) * np.log(1 - _clip(p)),
                lambda y, p: (_clip(p) - y) / (_clip(p) * (1 - _clip(p))),
                "E = −Σᵢ [yᵢ log ŷᵢ + (1 − yᵢ) log(1 − ŷᵢ)]"),
    # E = −Σ_i Σ_k y_ik log ŷ_ik with one-hot y; ∂E/∂ŷ = −y / ŷ.
    "ce": Loss("ce", -1.0, lambda y, p: y * np.log(_clip(p)), lambda y, p: -y / _clip(p),
               "E = −Σᵢ Σₖ yᵢₖ log ŷᵢₖ"),
}

# For these (output activation, loss) pairs the output error δ = ∂E/∂α collapses to ŷ − y
# (the canonical link): exact, and free of the 0/0 that the general product hits when the
# output saturates.  For every other pair δ = f′ ⊙ ∂E/∂ŷ through Activation.backward.
CANONICAL_PAIRS = {("sigmoid", "bce"), ("softmax", "ce"), ("identity", "sse")}
