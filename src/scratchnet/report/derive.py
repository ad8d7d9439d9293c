"""Question 1's derivation, generated from the architecture with sympy.

The problem set derived ∂E/∂w by hand for the 2-7-1 network, wrote two of the 29 chain rules
out and typed the rest.  Here the derivation is built from any :class:`~scratchnet.core.network.Layout`
and a loss, in the problem set's notation:

    α_u = w_bias + Σ_s w_{s→u} β_s        weighted sum entering unit u     (β of an input = x)
    β_u = f(α_u)                           its output; hidden units H1.., outputs O1..
    ∂E/∂w_k = ∂E/∂β_O ∂β_O/∂α_O ∂α_O/∂β_H ∂β_H/∂α_H ∂α_H/∂w_k      (one chain per weight)

Every local derivative is a sympy object: ∂α/∂β and ∂α/∂w are ``sympy.diff`` of the forward
equations, f′ is written from the output β (the sigmoid's β(1 − β)) and ∂E/∂β from the loss —
the tests check both against ``sympy.diff``.  When a unit's error reaches the loss along one path
only (the problem set's single hidden layer and single output) the chain is multiplied out, which
gives the problem set's formulas, e.g.
    ∂E/∂w_8 = (β_O1 − y) β_O1 (1 − β_O1) w_23 β_H1 (1 − β_H1) x_1.
Otherwise the error δ_u = ∂E/∂α_u is named and defined once, δ_u = f′(β_u) Σ_d w_{u→d} δ_d.

:meth:`Derivation.gradient` evaluates the generated equations themselves (forward equations, δ
definitions and the P formulas, via ``sympy.lambdify``), so the tests can hold every formula to
the engine's gradient.  sympy is imported lazily; it is needed only here.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from ..core.network import Layout

# ---- display pieces -------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A piece of notation given in every output format: LaTeX, MathML and plain text."""

    tex: str
    mml: str


@dataclass(frozen=True)
class Partial:
    """∂num/∂den for two sympy symbols."""

    num: object
    den: object


EQ = Raw("=", "<mo>=</mo>")
UPDATE = Raw(r"w_k^{(t+1)} = w_k^{(t)} - \eta \sum_n \frac{\partial E_n}{\partial w_k}",
             "<msubsup><mi>w</mi><mi>k</mi><mrow><mo>(</mo><mi>t</mi><mo>+</mo><mn>1</mn>"
             "<mo>)</mo></mrow></msubsup><mo>=</mo><msubsup><mi>w</mi><mi>k</mi><mrow><mo>(</mo>"
             "<mi>t</mi><mo>)</mo></mrow></msubsup><mo>&#8722;</mo><mi>&#951;</mi><munder>"
             "<mo>&#8721;</mo><mi>n</mi></munder><mfrac><mrow><mo>&#8706;</mo><msub><mi>E</mi>"
             "<mi>n</mi></msub></mrow><mrow><mo>&#8706;</mo><msub><mi>w</mi><mi>k</mi></msub>"
             "</mrow></mfrac>")
QUAD = Raw(r"\qquad", '<mspace width="2em"/>')


@dataclass
class Formula:
    pieces: tuple  # sympy expressions, Partial and Raw, side by side
    label: str = ""  # e.g. "w8: x_1 → n1"


@dataclass
class Section:
    title: str
    text: str
    formulas: list[Formula]


@functools.lru_cache(maxsize=None)
def _sympy():
    """sympy, the display function S(α), and LaTeX / MathML printers that keep factor order."""
    import sympy as sp
    from sympy.printing.latex import LatexPrinter
    from sympy.printing.mathml import MathMLPresentationPrinter

    class S(sp.Function):  # the sigmoid as the problem set writes it: S(x) = 1 / (1 + e^(−x))
        pass

    class Tex(LatexPrinter):
        def _print_S(self, e):
            return r"S\left(%s\right)" % self._print(e.args[0])

        def _print_Heaviside(self, e):  # ReLU′ written from β: the Iverson bracket [β > 0]
            return r"\left[%s > 0\right]" % self._print(e.args[0])

    class MML(MathMLPresentationPrinter):
        def _as_ordered_terms(self, expr, order=None):  # sums too keep the order built
            return list(expr.args)

        def _row(self, *parts):
            row = self.dom.createElement("mrow")
            for p in parts:
                if isinstance(p, str):
                    mo = self.dom.createElement("mo")
                    mo.appendChild(self.dom.createTextNode(p))
                    p = mo
                row.appendChild(p)
            return row

        def _print_S(self, e):
            mi = self.dom.createElement("mi")
            mi.appendChild(self.dom.createTextNode("S"))
            return self._row(mi, "(", self._print(e.args[0]), ")")

        def _print_Heaviside(self, e):
            zero = self.dom.createElement("mn")
            zero.appendChild(self.dom.createTextNode("0"))
            return self._row("[", self._print(e.args[0]), ">", zero, "]")

    # keep the order in which the chain rule's factors and the sums were built
    return sp, S, Tex({"order": "none"}), MML({"order": "old"})


def _tex(piece) -> str:
    sp, _, tex, _ = _sympy()
    if isinstance(piece, Raw):
        return piece.tex
    if isinstance(piece, Partial):
        return r"\frac{\partial %s}{\partial %s}" % (tex.doprint(piece.num), tex.doprint(piece.den))
    return tex.doprint(piece)


def _mml(piece) -> str:
    _, _, _, mml = _sympy()
    if isinstance(piece, Raw):
        return piece.mml
    if isinstance(piece, Partial):
        return (f"<mfrac><mrow><mo>&#8706;</mo>{mml.doprint(piece.num)}</mrow>"
                f"<mrow><mo>&#8706;</mo>{mml.doprint(piece.den)}</mrow></mfrac>")
    return mml.doprint(piece).replace("<mo>-</mo>", "<mo>&#8722;</mo>")  # a real minus


# ---- the tables: activations (f(α), display of f, f′ written from β) and losses --------------


def activation_rules(name: str, alpha, beta):
    """(f(α) as a formula in α, f(α) as displayed, f′ written from the output β)."""
    sp, S, _, _ = _sympy()
    one_minus = sp.Add(1, -beta, evaluate=False)
    return {
        "sigmoid": (1 / (1 + sp.exp(-alpha)), S(alpha), sp.Mul(beta, one_minus, evaluate=False)),
        "tanh": (sp.tanh(alpha), sp.tanh(alpha), sp.Add(1, -beta**2, evaluate=False)),
        "relu": (sp.Max(0, alpha), sp.Max(0, alpha), sp.Heaviside(beta, 0)),
        "identity": (alpha, alpha, sp.Integer(1)),
    }[name]


def loss_rules(loss: str, ys, betas):
    """(E for one sample, [∂E/∂β_Ok for every output k]) in the order the terms are printed."""
    sp = _sympy()[0]
    half = sp.Rational(1, 2)
    if loss == "sse":
        E = sp.Add(*[sp.Mul(half, (y - b) ** 2, evaluate=False) for y, b in zip(ys, betas)],
                   evaluate=False)
        return E, [sp.Add(b, -y, evaluate=False) for y, b in zip(ys, betas)]
    if loss == "bce":
        E = -sp.Add(*[y * sp.log(b) + (1 - y) * sp.log(1 - b) for y, b in zip(ys, betas)])
        return E, [sp.Mul(sp.Add(b, -y, evaluate=False),
                          sp.Pow(sp.Mul(b, sp.Add(1, -b, evaluate=False), evaluate=False), -1),
                          evaluate=False) for y, b in zip(ys, betas)]
    if loss == "ce":
        E = -sp.Add(*[sp.Mul(y, sp.log(b), evaluate=False) for y, b in zip(ys, betas)],
                    evaluate=False)
        return E, [sp.Mul(-1, y, sp.Pow(b, -1), evaluate=False) for y, b in zip(ys, betas)]
    raise ValueError(f"unknown loss {loss!r}")


CANONICAL = {("sigmoid", "bce"), ("softmax", "ce"), ("identity", "sse")}


# ---- the derivation ---------------------------------------------------------------------------


@dataclass
class Derivation:
    layout: Layout
    loss: str
    sections: list[Section]
    weights: list[Formula]  # one per weight, w1..wP
    # for the numeric check: ordered forward equations, δ definitions and the P right-hand sides
    _forward: list = field(default_factory=list, repr=False)  # (α or β symbol, its expr)
    _deltas: list = field(default_factory=list, repr=False)  # (δ sym, expr), outputs first
    _rhs: list = field(default_factory=list, repr=False)
    _symbols: dict = field(default_factory=dict, repr=False)

    @property
    def title(self) -> str:
        return f"Backpropagation for the {self.layout.describe()} network"

    # -- numbers --------------------------------------------------------------------------
    def gradient(self, w: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """∂E/∂w (flat, w1..wP) computed from the generated equations alone, summed over the
        rows of ``x`` (N, n_in) with targets ``y`` (N, n_out)."""
        sp = _sympy()[0]
        env = {s: float(v) for s, v in zip(self._symbols["w"], w)}
        env.update({s: x[:, i] for i, s in enumerate(self._symbols["x"])})
        env.update({s: y[:, k] for k, s in enumerate(self._symbols["y"])})

        def value(expr):
            args = sorted(expr.free_symbols, key=str)
            fn = sp.lambdify(args, expr, modules=[{"S": lambda a: 1 / (1 + np.exp(-a))},
                                                  "numpy"])
            return np.broadcast_to(np.asarray(fn(*(env[a] for a in args)), float), (len(x),))

        with np.errstate(over="ignore"):  # e^(−α) → ∞ gives S(α) = 0, as it should
            for s, expr in self._forward:  # the forward equations, layer by layer
                env[s] = value(expr)
            for d, d_expr in self._deltas:  # outputs first, then back layer by layer
                env[d] = value(d_expr)
            return np.array([value(r).sum() for r in self._rhs])

    # -- text -----------------------------------------------------------------------------
    def to_markdown(self) -> str:
        out = [f"# {self.title}", "", "Generated with sympy by `scratchnet derive`."]
        for sec in self.sections:
            out += ["", f"## {sec.title}", "", sec.text, ""]
            for f in sec.formulas:
                math = " ".join(_tex(p) for p in f.pieces)
                out.append(f"- **{f.label}**: ${math}$" if f.label else f"$$ {math} $$")
                if not f.label:
                    out.append("")
        return "\n".join(out).rstrip() + "\n"

    def to_latex(self) -> str:
        out = [r"\documentclass{article}", r"\usepackage{amsmath}", r"\begin{document}",
               r"\section*{%s}" % self.title]
        for sec in self.sections:
            out += [r"\subsection*{%s}" % sec.title, _latex_text(sec.text), r"\begin{align*}"]
            rows = []
            for f in sec.formulas:
                body = " ".join(_tex(p) for p in f.pieces).replace(" = ", " &= ", 1)
                label = r"\quad\text{(%s)}" % _latex_text(f.label) if f.label else ""
                rows.append(body + label)
            out += [" \\\\\n".join(rows), r"\end{align*}"]
        return "\n".join(out + [r"\end{document}"]) + "\n"

    def to_html(self, heading_level: int = 3) -> str:
        """HTML with MathML (rendered natively by browsers, no script, no network)."""
        import html

        h = f"h{heading_level}"
        out = []
        for sec in self.sections:
            out.append(f"<{h}>{html.escape(sec.title)}</{h}>")
            out.append(f"<p>{html.escape(sec.text)}</p>")
            labelled = [f for f in sec.formulas if f.label]
            if labelled:
                out.append('<table class="formulas">')
            for f in sec.formulas:
                mml = "".join(_mml(p) for p in f.pieces)
                if f.label:  # a table row: inline math, left-aligned next to its weight
                    out.append(f"<tr><th>{html.escape(f.label)}</th><td><math "
                               f'displaystyle="true">{mml}</math></td></tr>')
                else:
                    out.append(f'<math display="block">{mml}</math>')
            if labelled:
                out.append("</table>")
        return "\n".join(out)


def _latex_text(s: str) -> str:
    return (s.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("→", r"$\to$")
            .replace("∂", r"$\partial$").replace("η", r"$\eta$").replace("δ", r"$\delta$")
            .replace("α", r"$\alpha$").replace("β", r"$\beta$").replace("Σ", r"$\Sigma$")
            .replace("′", "'").replace("≈", r"$\approx$").replace("−", "-"))


def unit_tag(layout: Layout, layer: int, j: int) -> str:
    """The problem set's subscripts: H1..H7 for one hidden layer, H2.3 for layer 2 unit 3
    of several, O1.. for the outputs."""
    if layer == len(layout.sizes) - 1:
        return f"O{j + 1}"
    return f"H{j + 1}" if len(layout.sizes) == 3 else f"H{layer}.{j + 1}"


def derive(layout: Layout, loss: str = "sse") -> Derivation:
    """Build the derivation of ∂E/∂w_k for every weight of ``layout`` with loss ``loss``."""
    sp, _, _, _ = _sympy()
    L = layout.n_layers
    P = layout.n_params
    w = [sp.Symbol(f"w_{k + 1}") for k in range(P)]
    xs = [sp.Symbol(f"x_{i + 1}") for i in range(layout.sizes[0])]
    n_out = layout.sizes[-1]
    ys = [sp.Symbol("y")] if n_out == 1 else [sp.Symbol(f"y_{k + 1}") for k in range(n_out)]
    A = [None] + [[sp.Symbol(f"alpha_{unit_tag(layout, l, j)}") for j in range(layout.sizes[l])]
                  for l in range(1, L + 1)]
    B = [xs] + [[sp.Symbol(f"beta_{unit_tag(layout, l, j)}") for j in range(layout.sizes[l])]
                for l in range(1, L + 1)]
    D = [None] + [[sp.Symbol(f"delta_{unit_tag(layout, l, j)}") for j in range(layout.sizes[l])]
                  for l in range(1, L + 1)]
    widx = [np.arange(layout.offsets[l], layout.offsets[l + 1]).reshape(layout.shapes[l])
            for l in range(L)]  # widx[l][r, c]: index k of the weight from source r to unit c

    # forward equations α_u = w_bias + Σ w β_src, β_u = f(α_u)
    alpha_expr, fwd, fwd_num = {}, [], []  # fwd_num: (symbol, expr) in evaluation order
    for l in range(1, L + 1):
        betas_l = []
        name = layout.output if l == L else layout.activations[l - 1]
        for j in range(layout.sizes[l]):
            terms = [w[widx[l - 1][0, j]]] + [sp.Mul(w[widx[l - 1][r + 1, j]], B[l - 1][r],
                                                     evaluate=False)
                                              for r in range(layout.sizes[l - 1])]
            alpha_expr[l, j] = sp.Add(*terms, evaluate=False)
            if name == "softmax":
                f_num = sp.exp(A[l][j]) / sp.Add(*[sp.exp(a) for a in A[l]], evaluate=False)
                f_show = f_num
            else:
                f_num, f_show, _ = activation_rules(name, A[l][j], B[l][j])
            fwd.append(Formula((A[l][j], EQ, alpha_expr[l, j], QUAD, B[l][j], EQ, f_show)))
            fwd_num.append((A[l][j], alpha_expr[l, j]))
            betas_l.append((B[l][j], f_num))
        fwd_num += betas_l  # all α of a layer before its β: the softmax needs every α

    E, dE = loss_rules(loss, ys, B[L])
    canonical = (layout.output, loss) in CANONICAL
    sym_E = sp.Symbol("E")

    # the output error δ_Ok = ∂E/∂α_Ok: its factors (partial, value) for the chain rule
    def out_chain(k):
        if canonical:
            return [(Partial(sym_E, A[L][k]), sp.Add(B[L][k], -ys[k], evaluate=False))]
        if layout.output == "softmax":  # ∂β_j/∂α_k = β_j([j = k] − β_k): a sum over the outputs
            terms = [sp.Mul(dE[j], B[L][j], sp.Add(int(j == k), -B[L][k], evaluate=False),
                            evaluate=False) for j in range(n_out)]
            return [(Partial(sym_E, A[L][k]), sp.Add(*terms, evaluate=False))]
        fprime = activation_rules(layout.output, A[L][k], B[L][k])[2]
        return [(Partial(sym_E, B[L][k]), dE[k]), (Partial(B[L][k], A[L][k]), fprime)]

    # chain(l, j): the factors of δ_u when u's error reaches E along one path only, else None
    chains = {(L, k): out_chain(k) for k in range(n_out)}
    for l in range(L - 1, 0, -1):
        for j in range(layout.sizes[l]):
            nxt = chains.get((l + 1, 0)) if layout.sizes[l + 1] == 1 else None
            if nxt is None:
                chains[l, j] = None
                continue
            fprime = activation_rules(layout.activations[l - 1], A[l][j], B[l][j])[2]
            chains[l, j] = nxt + [(Partial(A[l + 1][0], B[l][j]),
                                   sp.diff(alpha_expr[l + 1, 0], B[l][j])),
                                  (Partial(B[l][j], A[l][j]), fprime)]

    def product(factors):
        vals = []  # the chain's factors side by side: β(1 − β) spliced in, 1s dropped
        for v in factors:
            nested = isinstance(v, sp.Mul) and not v.args[0].is_Number
            vals += [a for a in (v.args if nested else (v,)) if a != 1]
        return vals[0] if len(vals) == 1 else sp.Mul(*vals, evaluate=False)

    # δ definitions for the units whose error has several paths (and for what they use)
    delta_defs = {}

    def define(l, j):
        if (l, j) in delta_defs:
            return
        if chains.get((l, j)) is not None:
            delta_defs[l, j] = product(v for _, v in chains[l, j])
            return
        fprime = activation_rules(layout.activations[l - 1], A[l][j], B[l][j])[2]
        back = sp.Add(*[sp.Mul(w[widx[l][j + 1, d]], D[l + 1][d], evaluate=False)
                        for d in range(layout.sizes[l + 1])], evaluate=False)
        delta_defs[l, j] = back if fprime == 1 else sp.Mul(fprime, back, evaluate=False)
        for d in range(layout.sizes[l + 1]):
            define(l + 1, d)

    weights, rhs, examples = [], [], []
    for k in range(P):
        l0, r, c = layout.weight_index(k)
        l = l0 + 1  # the layer of the unit the weight enters
        src_d = sp.diff(alpha_expr[l, c], w[k])  # ∂α/∂w_k: 1 for a bias, else the source β / x
        if chains[l, c] is not None:
            factors = chains[l, c] + [(Partial(A[l][c], w[k]), src_d)]
            value = product(v for _, v in factors)
            if k == layout.offsets[l0]:  # worked example: the first weight of every layer
                examples.append(Formula((Partial(sym_E, w[k]), EQ,
                                         *[p for p, _ in factors], EQ, value)))
        else:
            define(l, c)
            value = D[l][c] if src_d == 1 else sp.Mul(D[l][c], src_d, evaluate=False)
        weights.append(Formula((Partial(sym_E, w[k]), EQ, value), layout.weight_name(k)))
        rhs.append(value)

    deltas = sorted(delta_defs.items(), key=lambda kv: (-kv[0][0], kv[0][1]))
    fnames = {"sigmoid": "S(α) = 1 / (1 + e^(−α)), whose slope is S′ = β(1 − β)",
              "tanh": "tanh(α), whose slope is 1 − β²", "relu": "max(0, α), whose slope is "
              "[β > 0]", "identity": "α itself, whose slope is 1",
              "softmax": "the softmax e^(α_Ok) / Σ_j e^(α_Oj)"}
    acts = ", ".join(dict.fromkeys(list(layout.activations) + [layout.output]))
    names = "; ".join(f"{a}: {fnames[a]}" for a in dict.fromkeys(
        list(layout.activations) + [layout.output]))
    local = [Formula((Partial(sym_E, b), EQ, v)) for b, v in zip(B[L], dE)]
    for a in dict.fromkeys(layout.activations):
        if a != "identity":
            beta = sp.Symbol("beta")
            local.append(Formula((Partial(beta, sp.Symbol("alpha")), EQ,
                                  activation_rules(a, sp.Symbol("alpha"), beta)[2])))
    if layout.output not in ("softmax",) and layout.output not in layout.activations:
        beta = sp.Symbol("beta")
        local.append(Formula((Partial(beta, sp.Symbol("alpha")), EQ,
                              activation_rules(layout.output, sp.Symbol("alpha"), beta)[2])))
    inputs = ", ".join(f"x_{i + 1} = {n}" for i, n in enumerate(layout.input_names)
                       if n != f"x_{i + 1}")
    update = Formula((UPDATE,))
    sections = [
        Section("The loss", f"For one sample (targets y, outputs β_O) the loss is E below; the "
                "training loss sums it over the N training rows, E = Σ_n E_n, without averaging "
                "as the problem set does." + (" The output activation and the loss form a "
                                              "canonical pair: δ_O = ∂E/∂α_O = β_O − y, the "
                                              "activation's slope cancels." if canonical else ""),
                [Formula((sym_E, EQ, E))]),
        Section("The forward pass", f"α is the weighted sum entering a unit (bias weight first, "
                f"as in the numbering w1..w{P}), β its output; activations: {acts}. "
                f"{names}." + (f" Inputs: {inputs}." if inputs else ""), fwd),
        Section("Local derivatives", "Every factor of the chain rule is one of these (the slope "
                "written from the unit's output β, as the problem set writes β(1 − β)), or "
                "∂α/∂β = the weight between the two units, or ∂α/∂w = the weight's source "
                "(1 for a bias).", local),
        Section("The chain rule, worked", "The first weight of every layer, as the problem set "
                "works out w22 and w1.", examples),
    ]
    if deltas:
        sections.append(Section(
            "Errors sent back", "Where a unit's error reaches the loss along several paths "
            "(several outputs, or a later hidden layer) it is named δ = ∂E/∂α and the paths are "
            "summed: δ_u = f′(β_u) Σ_d w_{u→d} δ_d.",
            [Formula((D[l][j], EQ, v)) for (l, j), v in deltas]))
    sections += [
        Section(f"All {P} derivatives", "One per weight, in the problem set's numbering; β are "
                "the forward-pass values of the current weights.", weights),
        Section("The update rule", "Full-batch gradient descent with learning rate η: every "
                "weight from the same old weights, gradients summed over the training rows.",
                [update]),
    ]
    return Derivation(layout, loss, sections, weights, fwd_num,
                      [(D[l][j], v) for (l, j), v in deltas], rhs,
                      {"w": w, "x": xs, "y": ys})
