"""The scalar math of the compiled back-ends, written once: one snippet per activation and loss.

``core/activations.py`` and ``core/losses.py`` hold the readable numpy definitions.  The
compiled engines work one value at a time, so they need the same formulas as *scalar* Python
expressions: the numba CPU loop (``engines/fast.py``) and the CUDA code generator
(``engines/codegen.py``) both render their source from the tables below — tinygrad's habit of
one table of snippets, each back-end supplying only the few functions that differ:

    exp_neg(x)   e^x for x ≤ 0 (every exponential here has a non-positive argument); the CPU
                 back-end uses a short vectorizable polynomial, CUDA ``math.exp``
    clip(p)      np.clip(p, EPS, 1 − EPS), NaN staying NaN
    tanh, log, log1p, expm1   the ``math`` functions

A snippet is a few statements (``pre``, may set temporaries ``e``, ``inv``, ``q``) and one
expression; ``{a}`` stands for the weighted sum α, ``{b}`` for the output β, ``{p}`` for ŷ and
``{y}`` for the target.  Adding an activation is one entry here and one in
``core/activations.py``; the order of the tables fixes the integer codes the kernels use.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ActSnippet:
    """β = f(α) as ``pre`` statements + ``f`` (in ``{a}``); f′ written from the output β as
    ``df`` (in ``{b}``).  ``elementwise=False`` (softmax): each back-end writes it itself."""

    f: str = ""
    df: str = ""
    pre: tuple[str, ...] = ()
    elementwise: bool = True


@dataclass(frozen=True)
class LossSnippet:
    """E = scale · Σ term, and ∂E/∂ŷ = grad, per output value (``pre`` runs before either)."""

    term: str
    grad: str
    scale: float
    pre: tuple[str, ...] = ()


ACTIVATIONS: dict[str, ActSnippet] = {
    # the overflow-free sigmoid of activations.sigmoid: e = e^(−|α|) ∈ (0, 1]
    "sigmoid": ActSnippet("inv if {a} >= 0.0 else e * inv", "{b} * (1.0 - {b})",
                          ("e = exp_neg(-abs({a}))", "inv = 1.0 / (1.0 + e)")),
    "tanh": ActSnippet("tanh({a})", "1.0 - {b} * {b}"),
    # np.maximum(α, 0): NaN stays NaN
    "relu": ActSnippet("0.0 if {a} <= 0.0 else {a}", "1.0 if {b} > 0.0 else 0.0"),
    "identity": ActSnippet("{a}", "1.0"),
    "softmax": ActSnippet(elementwise=False),
    "leaky_relu": ActSnippet("{a} if {a} > 0.0 else 0.01 * {a}", "1.0 if {b} > 0.0 else 0.01"),
    # max(α, 0) + log(1 + e^(−|α|)), NaN staying NaN; f′ = 1 − e^(−β)
    "softplus": ActSnippet("({a} if {a} > 0.0 else 0.0) + log1p(exp_neg(-abs({a})))",
                           "-expm1(-{b})"),
}

LOSSES: dict[str, LossSnippet] = {
    "sse": LossSnippet("({p} - {y}) * ({p} - {y})", "{p} - {y}", 0.5),
    "bce": LossSnippet("{y} * log(q) + (1.0 - {y}) * log(1.0 - q)", "(q - {y}) / (q * (1.0 - q))",
                       -1.0, ("q = clip({p})",)),
    "ce": LossSnippet("{y} * log(q)", "-{y} / q", -1.0, ("q = clip({p})",)),
}

ACT_CODES = {name: code for code, name in enumerate(ACTIVATIONS)}
LOSS_CODES = {name: code for code, name in enumerate(LOSSES)}
SOFTMAX = ACT_CODES["softmax"]


def act(code: int) -> ActSnippet:
    return list(ACTIVATIONS.values())[code]


def loss(code: int) -> LossSnippet:
    return list(LOSSES.values())[code]


def apply(a: str, code: int) -> tuple[list[str], str]:
    """(statements, expression) of β = f(α) for α named ``a``."""
    s = act(code)
    return [line.format(a=a) for line in s.pre], s.f.format(a=a)


def deriv(b: str, code: int) -> str:
    """f′ from β named ``b``, as an expression."""
    return act(code).df.format(b=b)


def loss_term(p: str, y: str, code: int) -> tuple[list[str], str]:
    s = loss(code)
    return [line.format(p=p, y=y) for line in s.pre], s.term.format(p=p, y=y)


def loss_grad(p: str, y: str, code: int) -> tuple[list[str], str]:
    s = loss(code)
    return [line.format(p=p, y=y) for line in s.pre], s.grad.format(p=p, y=y)
