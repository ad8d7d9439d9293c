"""The network's layout and the one flat parameter vector ``w`` in the problem set's numbering.

For layer l (inputs → first hidden layer is l = 0) the weights form a matrix W_l of shape
(fan_in + 1, fan_out): row 0 holds the bias weights, row r the weights leaving input r, column j
the weights entering unit j.  The matrices are flattened row-major and concatenated, so for the
problem set's 2-7-1 network

    W_0 = [[w1 … w7],        bias → n1..n7
           [w8 … w14],       x_1  → n1..n7
           [w15 … w21]]      x_2  → n1..n7
    W_1 = [[w22], [w23], …, [w29]]   bias, n1..n7 → output

which is exactly w1..w29, and ``np.random.seed(0); np.random.randn(29)`` (the problem set's
draw) fills it in the problem set's order.

Unit names: the problem set uses two spellings for the same units, and so does scratchnet.
Its network diagram calls the hidden units n_1..n_7 (here ``Layout.unit_names``: ``n1``..``n7``,
``n2.3`` for unit 3 of hidden layer 2 of several, outputs ``o1``..); its derivation writes them
as subscripts, β_H1..β_H7 and β_O1 (``report/derive.py`` and the playground's hover card:
``H1``..``H7``, ``H2.3``, ``O1``..).  n_j is H_j and o_k is O_k: one unit, two notations.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .activations import ACTIVATIONS, HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS
from .errors import OptionError, ScratchnetError

INITS = ("normal", "xavier", "he")


@dataclass(frozen=True)
class Layout:
    """Layer sizes (inputs, hidden…, outputs) and one activation per non-input layer."""

    sizes: tuple[int, ...]
    activations: tuple[str, ...]  # one per hidden layer
    output: str = "sigmoid"
    input_names: tuple[str, ...] = field(default=())

    def __post_init__(self):
        if len(self.sizes) < 2 or any(int(s) < 1 for s in self.sizes):
            raise ScratchnetError(f"layer sizes must be positive integers, got {self.sizes}")
        if len(self.activations) != len(self.sizes) - 2:
            raise ScratchnetError(
                f"{len(self.sizes) - 2} hidden layer(s) need as many activations, "
                f"got {len(self.activations)}")
        for a in self.activations:
            if a not in HIDDEN_ACTIVATIONS:
                raise OptionError("activation", a, f"must be one of "
                                  f"{', '.join(HIDDEN_ACTIVATIONS)}, got {a!r}")
        if self.output not in OUTPUT_ACTIVATIONS:
            raise OptionError("output", self.output, f"must be one of "
                              f"{', '.join(OUTPUT_ACTIVATIONS)}, got {self.output!r}")
        if not self.input_names:
            object.__setattr__(self, "input_names",
                               tuple(f"x_{i + 1}" for i in range(self.sizes[0])))
        if len(self.input_names) != self.sizes[0]:
            raise ScratchnetError("one input name per input is needed")

    @classmethod
    def build(cls, n_in: int, hidden, n_out: int = 1, activation="sigmoid",
              output: str = "sigmoid", input_names=()) -> "Layout":
        hidden = tuple(int(h) for h in ([hidden] if isinstance(hidden, int) else hidden))
        acts = ((activation,) * len(hidden) if isinstance(activation, str)
                else tuple(activation))
        if len(acts) == 1 and len(hidden) > 1:
            acts = acts * len(hidden)
        return cls((int(n_in), *hidden, int(n_out)), acts, output, tuple(input_names))

    # ---- shapes -------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        """Number of weight layers (hidden layers + the output layer)."""
        return len(self.sizes) - 1

    @property
    def shapes(self) -> list[tuple[int, int]]:
        return [(self.sizes[l] + 1, self.sizes[l + 1]) for l in range(self.n_layers)]

    @property
    def offsets(self) -> list[int]:
        out, o = [], 0
        for r, c in self.shapes:
            out.append(o)
            o += r * c
        return out + [o]

    @property
    def n_params(self) -> int:
        return self.offsets[-1]

    def layer_activation(self, l: int):
        """The Activation of weight layer l (the last one is the output activation)."""
        name = self.output if l == self.n_layers - 1 else self.activations[l]
        return ACTIVATIONS[name]

    def views(self, w: np.ndarray) -> list[np.ndarray]:
        """Per-layer views W_l of shape (fan_in + 1, fan_out) into ``w`` (no copies).

        Works for one vector (P,) and for a stack of K vectors (K, P) alike.
        """
        o = self.offsets
        lead = w.shape[:-1]
        return [w[..., o[l]:o[l + 1]].reshape(*lead, *self.shapes[l])
                for l in range(self.n_layers)]

    # ---- names --------------------------------------------------------------------------
    def unit_names(self, layer: int) -> list[str]:
        """Names of the units of ``layer`` (0 = inputs, last = outputs), as in the problem set:
        inputs x_1.., hidden n1.. (n1.1.. when there are several hidden layers), outputs o1.."""
        if layer == 0:
            return list(self.input_names)
        if layer == len(self.sizes) - 1:
            return [f"o{j + 1}" for j in range(self.sizes[layer])]
        if len(self.sizes) == 3:
            return [f"n{j + 1}" for j in range(self.sizes[layer])]
        return [f"n{layer}.{j + 1}" for j in range(self.sizes[layer])]

    def bias_name(self, l: int) -> str:
        return f"b{l + 1}"

    def weight_index(self, k: int) -> tuple[int, int, int]:
        """(layer, row, column) of the k-th weight, k counted from 0."""
        o = self.offsets
        for l in range(self.n_layers):
            if k < o[l + 1]:
                r, c = divmod(k - o[l], self.shapes[l][1])
                return l, r, c
        raise IndexError(f"weight index {k} out of range for {self.n_params} weights")

    def weight_source_target(self, k: int) -> tuple[str, str]:
        l, r, c = self.weight_index(k)
        src = self.bias_name(l) if r == 0 else self.unit_names(l)[r - 1]
        return src, self.unit_names(l + 1)[c]

    def weight_name(self, k: int) -> str:
        """``w8: x_1 → n1`` for k = 7 (0-based) in the 2-7-1 network."""
        src, dst = self.weight_source_target(k)
        return f"w{k + 1}: {src} → {dst}"

    def weight_names(self) -> list[str]:
        return [self.weight_name(k) for k in range(self.n_params)]

    def describe(self) -> str:
        return "-".join(str(s) for s in self.sizes)

    def to_dict(self) -> dict:
        return {"sizes": list(self.sizes), "activations": list(self.activations),
                "output": self.output, "input_names": list(self.input_names)}

    @classmethod
    def from_dict(cls, d: dict) -> "Layout":
        return cls(tuple(d["sizes"]), tuple(d["activations"]), d["output"],
                   tuple(d.get("input_names", ())))


def init_weights(layout: Layout, init: str = "normal", seed: int = 0) -> np.ndarray:
    """Initial flat weights.

    ``normal``: the problem set's draw, ``np.random.seed(seed); np.random.randn(P)`` (done on a
    private RandomState so global numpy state is left alone, with identical numbers).
    ``xavier`` / ``he``: the same standard-normal draw scaled per layer by √(2/(fan_in+fan_out))
    or √(2/fan_in), biases set to 0.
    """
    _check_init(init)
    return _scale(layout, init, np.random.RandomState(seed).randn(layout.n_params))


def init_weights_batch(layout: Layout, init: str = "normal", seeds=(0,)) -> np.ndarray:
    """(K, P): row k is ``init_weights(layout, init, seeds[k])``, bit for bit.

    The per-network draw spends most of its time building a ``RandomState`` (MT19937's 624
    words of state and the Python object around them: ~90 µs).  Re-seeding *one* state gives
    the very same numbers — ``RandomState(s)`` and ``rs.seed(s)`` both run MT19937's
    ``init_genrand(s)`` and clear the cached Gaussian — in ~3 µs a network.
    """
    _check_init(init)
    seeds = np.asarray(seeds).reshape(-1)
    P = layout.n_params
    W = np.empty((seeds.size, P))  # (K, P)
    rs = np.random.RandomState()  # one private state, re-seeded per network
    for k, s in enumerate(seeds.tolist()):
        rs.seed(s)
        W[k] = rs.randn(P)
    return _scale(layout, init, W)


def _check_init(init: str) -> None:
    if init not in INITS:
        raise OptionError("init", init, f"must be one of {', '.join(INITS)}, got {init!r}")


def _scale(layout: Layout, init: str, w: np.ndarray) -> np.ndarray:
    """xavier / he scaling of standard-normal weights w (P,) or (K, P), in place."""
    if init == "normal":
        return w
    for l, W in enumerate(layout.views(w)):  # W: (..., fan_in + 1, fan_out)
        fan_in, fan_out = layout.sizes[l], layout.sizes[l + 1]
        W *= np.sqrt(2.0 / (fan_in + fan_out)) if init == "xavier" else np.sqrt(2.0 / fan_in)
        W[..., 0, :] = 0.0  # biases
    return w
