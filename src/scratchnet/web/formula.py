"""The chain-rule formula of ∂E/∂w_k for one weight, as text for the playground's hover.

For the problem set's 2-7-1 network it reads as the problem set writes it:

    ∂E/∂w8 = Σ (β_O1 − y) β_O1(1 − β_O1) · w23 · β_H1(1 − β_H1) · x_1

i.e. the output error, the weight that carries it back, the hidden unit's f′ written from its
output, and the value that entered the weight.  Weights further from the output get the
δ-form of backprop.py (δ of the unit the weight enters, times the value that left its source),
with that δ spelled out one layer back.  The sum Σ runs over the training rows.

The page shows the derivation module's own formulas (``scratchnet.report.derive``, generated with
sympy, as MathML that the browser renders natively) when sympy is installed and the network is
small enough to derive in a moment; this text is the fallback, and what the tests read.
"""
from __future__ import annotations

import functools
import threading

from ..core.losses import CANONICAL_PAIRS
from ..core.network import Layout
from ..report.derive import _mml, derive


def _unit(layout: Layout, layer: int, j: int) -> str:
    """PS5 names (as scratchnet.report.derive's unit_tag): inputs x_1.., hidden H1.. (one hidden
    layer) or H1.1.. (layer.unit), outputs O1.."""
    if layer == 0:
        return layout.input_names[j]
    if layer == len(layout.sizes) - 1:
        return f"O{j + 1}"
    if len(layout.sizes) == 3:
        return f"H{j + 1}"
    return f"H{layer}.{j + 1}"


def _beta(layout: Layout, layer: int, j: int) -> str:
    return layout.input_names[j] if layer == 0 else f"β_{_unit(layout, layer, j)}"


def _fprime(act: str, b: str) -> str:
    """f′ written from the output β, as activations.py does; '' when it is 1."""
    return {"sigmoid": f"{b}(1 − {b})", "tanh": f"(1 − {b}²)", "relu": f"1[{b} > 0]",
            "identity": "", "leaky_relu": f"(1 if {b} > 0 else 0.01)",
            "softplus": f"(1 − e^(−{b}))"}.get(act, f"f′({b})")


def _output_delta(layout: Layout, loss: str, c: int) -> str:
    """δ of output unit c = ∂E/∂α_Oc, from the (output activation, loss) pair."""
    n_out = layout.sizes[-1]
    b = _beta(layout, len(layout.sizes) - 1, c)
    y = "y" if n_out == 1 else f"y_{c + 1}"
    if (layout.output, loss) in CANONICAL_PAIRS:
        return f"({b} − {y})"
    if layout.output == "softmax":  # softmax is not elementwise: keep δ as a symbol
        return f"δ_O{c + 1}"
    dE = {"sse": f"({b} − {y})", "bce": f"({b} − {y}) / ({b}(1 − {b}))",
          "ce": f"(−{y} / {b})"}[loss]
    fp = _fprime(layout.output, b)
    return f"{dE} {fp}".strip() if loss == "sse" else f"{dE} · {fp}".rstrip(" ·")


def _wname(layout: Layout, layer: int, row: int, col: int) -> str:
    offset = sum((layout.sizes[i] + 1) * layout.sizes[i + 1] for i in range(layer))
    return f"w{offset + row * layout.sizes[layer + 1] + col + 1}"


def _delta_sum(layout: Layout, layer: int, j: int) -> str:
    """Σ_k w(j→k) δ_k over the units k of layer+1 fed by unit j of ``layer``; lists ≤ 3 terms
    (the weight layer leaving the units of ``layer`` is weight layer ``layer``)."""
    n = layout.sizes[layer + 1]
    shown = range(n) if n <= 3 else (0, n - 1)
    terms = [f"{_wname(layout, layer, j + 1, k)} δ_{_unit(layout, layer + 1, k)}"
             for k in shown]
    return " + ".join(terms) if n <= 3 else f"{terms[0]} + … + {terms[-1]}"


def local_weight_formula(layout: Layout, loss: str, k: int) -> str:
    """``∂E/∂w{k+1} = …`` for weight k (0-based) of ``layout`` trained with ``loss``."""
    l, r, c = layout.weight_index(k)
    L = layout.n_layers
    src = "" if r == 0 else _beta(layout, l, r - 1)  # the value that entered the weight
    tail = f" · {src}" if src else ""
    head = f"∂E/∂w{k + 1} = Σ "
    out_defs = ""
    if layout.output == "softmax" and (layout.output, loss) not in CANONICAL_PAIRS:
        out_defs = ", δ_O = β_O ⊙ (g − Σₖ gₖ β_Ok) with g = ∂E/∂β_O"
    if l == L - 1:  # a weight into an output unit
        return head + _output_delta(layout, loss, c) + tail + out_defs
    unit = _unit(layout, l + 1, c)
    fp = _fprime(layout.activations[l], f"β_{unit}")
    fp_part = f" · {fp}" if fp else ""
    if l == L - 2:  # a weight into the last hidden layer: the problem set's form
        if layout.sizes[-1] == 1:
            return (head + _output_delta(layout, loss, 0) + " · "
                    + _wname(layout, L - 1, c + 1, 0) + fp_part + tail + out_defs)
        defs = ", ".join(f"δ_O{m + 1} = {_output_delta(layout, loss, m)}"
                         for m in range(min(layout.sizes[-1], 2)))
        more = ", …" if layout.sizes[-1] > 2 else ""
        return (head + f"({_delta_sum(layout, l + 1, c)})" + fp_part + tail
                + f"   with {defs}{more}" + out_defs)
    # deeper: the δ-form, δ of the unit this weight enters, spelled out one layer back
    delta = f"δ_{unit}"
    return (head + delta + tail + f",   {delta} = "
            + (f"{fp} · " if fp else "") + f"({_delta_sum(layout, l + 1, c)})"
            + "   (each δ sent back the same way from the output's δ)")


def weight_formula(layout: Layout, loss: str, k: int) -> str:
    """The chain-rule text of ∂E/∂w_k (plain Unicode)."""
    return local_weight_formula(layout, loss, k)


def notation(layout: Layout) -> str:
    """The page's names next to the problem set's, said once on the hover card."""
    L = len(layout.sizes) - 1
    pairs = []
    for layer in range(1, L + 1):
        names = layout.unit_names(layer)
        tags = [_unit(layout, layer, j) for j in range(len(names))]
        pairs.append(f"{names[0]} = {tags[0]}" if len(names) == 1 else
                     f"{names[0]}…{names[-1]} = {tags[0]}…{tags[-1]}")
    inputs = ", ".join(layout.input_names[:3]) + (", …" if len(layout.input_names) > 3 else "")
    return (f"Units: {'; '.join(pairs)} (the page's names = the problem set's). "
            f"{inputs} in the formula are the standardized inputs; Σ runs over the training "
            "rows n, each with its own β and y.")


def _summed(k: int, mathml: str) -> str:
    """derive's per-row ``∂E_n/∂w = …`` as the page's ``∂E/∂w = Σ_n …`` (E = Σ_n E_n)."""
    head, eq, rest = mathml.partition("<mo>=</mo>")
    if not eq:
        return mathml
    lhs = (f"<mfrac><mrow><mo>&#8706;</mo><mi>E</mi></mrow><mrow><mo>&#8706;</mo><msub>"
           f"<mi>w</mi><mi>{k + 1}</mi></msub></mrow></mfrac>")
    return lhs + eq + "<munder><mo>&#8721;</mo><mi>n</mi></munder>" + rest


DERIVE_MAX_WEIGHTS = 400  # sympy derives ~1000 weights a second: keep the page quick
_derive_lock = threading.Lock()  # sympy's caches are not meant for concurrent builders


@functools.lru_cache(maxsize=16)
def derived_mathml(layout: Layout, loss: str) -> tuple[str, ...] | None:
    """Per weight, ``scratchnet.report.derive``'s formula as MathML, followed by the definitions of
    the δ it uses (one level back); None when sympy is missing, the network has more than
    DERIVE_MAX_WEIGHTS weights, or the derivation fails (the page then shows the text)."""
    if layout.n_params > DERIVE_MAX_WEIGHTS:
        return None
    try:
        with _derive_lock:
            d = derive(layout, loss)
            deltas = {}
            for section in d.sections:  # "δ_u = f′(β_u) Σ_d w δ_d" definitions
                for f in section.formulas:
                    head = f.pieces[0]
                    if str(getattr(head, "name", "")).startswith("delta_"):
                        deltas[head.name] = "".join(_mml(p) for p in f.pieces)
            out = []
            for k, f in enumerate(d.weights):
                math = [f'<math display="block">'
                        f'{_summed(k, "".join(_mml(p) for p in f.pieces))}</math>']
                used = sorted({s.name for s in f.pieces[-1].free_symbols} & deltas.keys())
                math += [f'<math display="block">{deltas[n]}</math>' for n in used]
                out.append("".join(math))
        return tuple(out)
    except Exception:  # noqa: BLE001 - no sympy, or a derive that changed: fall back to text
        return None
