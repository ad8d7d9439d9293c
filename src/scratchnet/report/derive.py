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
import html
from dataclasses import dataclass, field

import numpy as np

from ..core.network import Layout
from .html import prose

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
        "leaky_relu": (sp.Max(alpha, alpha / 100), sp.Max(alpha, alpha / 100),
                       sp.Piecewise((1, beta > 0), (sp.Rational(1, 100), True))),
        "softplus": (sp.log(1 + sp.exp(alpha)), sp.log(1 + sp.exp(alpha)),
                     sp.Add(1, -sp.exp(-beta), evaluate=False)),
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

    def latex_formulas(self) -> list[str]:
        """Every formula as the math-mode LaTeX that ``to_latex`` and ``to_markdown`` write."""
        return [" ".join(_tex(p) for p in f.pieces) for sec in self.sections
                for f in sec.formulas]

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

    def loss_mathml(self) -> str:
        """The per-row loss E_n = … as inline MathML (the first formula of "The loss")."""
        return "<math>" + "".join(_mml(p) for p in self.sections[0].formulas[0].pieces) + \
            "</math>"

    def to_html(self, heading_level: int = 3) -> str:
        """HTML with MathML (rendered natively by browsers, no script, no network)."""
        h = f"h{heading_level}"
        out = []
        for sec in self.sections:
            out.append(f"<{h}>{html.escape(sec.title)}</{h}>")
            out.append(f"<p>{prose(sec.text)}</p>")
            labelled = [f for f in sec.formulas if f.label]
            if labelled:
                out.append('<table class="formulas">')
            for f in sec.formulas:
                mml = "".join(_mml(p) for p in f.pieces)
                if f.label:  # a table row: inline math, left-aligned next to its weight
                    out.append(f"<tr><th>{prose(f.label)}</th><td><math "
                               f'displaystyle="true">{mml}</math></td></tr>')
                else:
                    out.append(f'<math display="block">{mml}</math>')
            if labelled:
                out.append("</table>")
        return "\n".join(out)


_TEXT_ESCAPES = {"\\": r"\textbackslash{}", "_": r"\_", "^": r"\^{}", "{": r"\{", "}": r"\}",
                 "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$", "~": r"\~{}"}
_TEXT_MATH = {"→": r"\to", "∂": r"\partial", "η": r"\eta", "δ": r"\delta", "α": r"\alpha",
              "β": r"\beta", "Σ": r"\Sigma", "≈": r"\approx", "−": "-", "′": "'", "×": r"\times",
              "²": "^2", "…": r"\ldots"}


def _latex_text(s: str) -> str:
    """Plain text for LaTeX's text mode: its special characters escaped, Greek letters and
    symbols as inline math."""
    out = []
    for ch in s:
        if ch in _TEXT_ESCAPES:
            out.append(_TEXT_ESCAPES[ch])
        elif ch in _TEXT_MATH:
            out.append(_TEXT_MATH[ch] if ch in "−′" else f"${_TEXT_MATH[ch]}$")
        else:
            out.append(ch)
    return "".join(out)


def unit_tag(layout: Layout, layer: int, j: int) -> str:
    """The problem set's subscripts: H1..H7 for one hidden layer, H2.3 for layer 2 unit 3
    of several, O1.. for the outputs."""
    if layer == len(layout.sizes) - 1:
        return f"O{j + 1}"
    return f"H{j + 1}" if len(layout.sizes) == 3 else f"H{layer}.{j + 1}"


@dataclass
class _Symbols:
    E: object  # E_n
    A: list  # A[l][j] = α of unit j of layer l (A[0] unused)
    B: list  # B[l][j] = β (B[0] = the inputs x)
    D: list  # D[l][j] = δ
    w: list
    x: list
    widx: list  # widx[l][r, c]: index k of the weight from source r to unit c


FNAMES = {"sigmoid": ("the sigmoid S(α) = 1 / (1 + e^(−α))", "β(1 − β)"),
          "tanh": ("tanh(α)", "1 − β²"), "relu": ("max(0, α)", "[β > 0]"),
          "identity": ("α itself", "1"), "softmax": ("the softmax e^(α_Ok) / Σ_j e^(α_Oj)", ""),
          "leaky_relu": ("max(α, 0.01 α)", "1 if β > 0, else 0.01"),
          "softplus": ("the softplus log(1 + e^α)", "1 − e^(−β)")}


def _activation_text(layout: Layout) -> str:
    """'the hidden and output units use the sigmoid S(α) = …, whose slope is β(1 − β)'."""
    parts = []
    names = list(dict.fromkeys(list(layout.activations) + [layout.output]))
    for a in names:
        where = ("hidden and output" if a in layout.activations and a == layout.output
                 else "hidden" if a in layout.activations else "output")
        f, slope = FNAMES[a]
        parts.append(f"the {where} units use {f}" + (f", whose slope is {slope}" if slope
                                                     else ""))
    return "; ".join(parts)


def _delta_display(layout, chains, s: _Symbols) -> list[Formula]:
    """δ_u = ∂E_n/∂α_u for every unit whose error reaches the loss along one path, written
    as the problem set's `s` for the output and δ_O · w · f′ for the hidden units."""
    sp = _sympy()[0]
    L = layout.n_layers
    out = []
    for l in range(L, 0, -1):
        for j in range(layout.sizes[l]):
            ch = chains.get((l, j))
            if ch is None:
                continue
            if l == L:
                vals = [v for _, v in ch]
                value = vals[0] if len(vals) == 1 else sp.Mul(*vals, evaluate=False)
            else:
                fprime = activation_rules(layout.activations[l - 1], s.A[l][j], s.B[l][j])[2]
                factors = [s.D[l + 1][0], s.w[s.widx[l][j + 1, 0]]]
                factors += list(fprime.args) if isinstance(fprime, sp.Mul) else [fprime]
                value = sp.Mul(*[f for f in factors if f != 1], evaluate=False)
            out.append(Formula((s.D[l][j], EQ, value)))
    return out


def _pattern_display(layout, s: _Symbols) -> list[Formula]:
    """The P derivatives as a few patterns: δ of the receiving unit × what the weight carries
    (1 for a bias weight, x_i for an input, β of the sending unit)."""
    sp = _sympy()[0]
    out = []
    for l0 in range(layout.n_layers):
        l = l0 + 1
        many = layout.sizes[l] > 1
        dst = unit_tag(layout, l, 0)[:-1] + "j" if many else unit_tag(layout, l, 0)
        src_letter = "i" if many else "j"
        delta = sp.Symbol(f"delta_{dst}")
        first, last = layout.offsets[l0], layout.offsets[l0 + 1] - 1
        n_bias = layout.sizes[l]
        carried = [(sp.Integer(1), first, first + n_bias - 1)]
        src = (sp.Symbol(f"x_{src_letter}") if l0 == 0 else
               sp.Symbol(f"beta_{unit_tag(layout, l0, 0)[:-1]}{src_letter}"))
        carried.append((src, first + n_bias, last))
        for what, a, b in carried:
            value = delta if what == 1 else sp.Mul(delta, what, evaluate=False)
            span = Raw(rf"\qquad k = {a + 1} \ldots {b + 1}" if b > a else rf"\qquad k = {a + 1}",
                       f'<mspace width="2em"/><mi>k</mi><mo>=</mo><mn>{a + 1}</mn>'
                       + (f"<mo>&#8230;</mo><mn>{b + 1}</mn>" if b > a else ""))
            out.append(Formula((Partial(s.E, sp.Symbol("w_k")), EQ, value, span)))
    return out


def _sections(layout, E, dE, canonical, examples, deltas, chains, s: _Symbols, fwd, weights):
    sp = _sympy()[0]
    L, P = layout.n_layers, layout.n_params
    local = [Formula((Partial(s.E, b), EQ, v)) for b, v in zip(s.B[L], dE)]
    beta, alpha = sp.Symbol("beta"), sp.Symbol("alpha")
    for a in dict.fromkeys(list(layout.activations) + [layout.output]):
        if a not in ("identity", "softmax"):
            local.append(Formula((Partial(beta, alpha), EQ, activation_rules(a, alpha, beta)[2])))
    inputs = ", ".join(f"x_{i + 1} = {n}" for i, n in enumerate(layout.input_names)
                       if n != f"x_{i + 1}")
    shown = _delta_display(layout, chains, s)
    sections = [
        Section("The loss", "For one training row n (targets y, outputs β_O) the loss is E_n "
                "below; the training loss is the sum over the N training rows, E = Σ_n E_n — "
                "summed, not averaged, as in the problem set. The formulas below are per row: "
                "∂E/∂w_k = Σ_n ∂E_n/∂w_k." + (" The output activation and the loss form a "
                                              "canonical pair: δ_O = ∂E_n/∂α_O = β_O − y, the "
                                              "activation's slope cancels." if canonical else ""),
                [Formula((s.E, EQ, E))]),
        Section("The forward pass", f"α is the weighted sum entering a unit (bias weight first, "
                f"as in the numbering w1..w{P}), β its output; {_activation_text(layout)}. "
                "The inputs x_i are in standardized units (each column minus its mean, divided "
                "by its standard deviation), and so are the weights that multiply them."
                + (f" Inputs: {inputs}." if inputs else ""), fwd),
        Section("Local derivatives", "Every factor of the chain rule is one of these (the slope "
                "written from the unit's output β, as the problem set writes β(1 − β)), or "
                "∂α/∂β = the weight between the two units, or ∂α/∂w = the weight's source "
                "(1 for a bias).", local),
        Section("The chain rule, worked", "The first weight of every layer, as the problem set "
                "works out w22 and w1.", examples),
    ]
    if shown:
        sections.append(Section(
            "The error δ of each unit", "δ_u = ∂E_n/∂α_u, the loss's sensitivity to the weighted "
            "sum entering unit u. For the output it is the problem set's s; a hidden unit "
            "receives the output's δ through its outgoing weight, times its own slope.", shown))
    if deltas:
        sections.append(Section(
            "Errors sent back", "Where a unit's error reaches the loss along several paths "
            "(several outputs, or a later hidden layer) it is named δ = ∂E_n/∂α and the paths "
            "are summed: δ_u = f′(β_u) Σ_d w_{u→d} δ_d.",
            [Formula((s.D[l][j], EQ, v)) for (l, j), v in deltas]))
    sections += [
        Section(f"All {P} derivatives in {2 * L} patterns", "Every line below is δ of the "
                "unit the weight enters × what the weight carries: 1 for a bias weight, the "
                "input x_i or the sending unit's β.", _pattern_display(layout, s)),
        Section(f"All {P} derivatives", "One per weight, in the problem set's numbering; β are "
                "the forward-pass values of the current weights for row n.",
                weights),
        Section("The update rule", "Full-batch gradient descent with learning rate η: every "
                "weight from the same old weights, gradients summed over the training rows.",
                [Formula((UPDATE,))]),
    ]
    return sections


def derive(layout: Layout, loss: str = "sse") -> Derivation:
    """Build the derivation of ∂E_n/∂w_k for every weight of ``layout`` with loss ``loss``."""
    sp = _sympy()[0]
    L, P = layout.n_layers, layout.n_params
    xs = [sp.Symbol(f"x_{i + 1}") for i in range(layout.sizes[0])]
    n_out = layout.sizes[-1]
    ys = [sp.Symbol("y")] if n_out == 1 else [sp.Symbol(f"y_{k + 1}") for k in range(n_out)]

    def per_unit(greek):
        return [[sp.Symbol(f"{greek}_{unit_tag(layout, l, j)}") for j in range(layout.sizes[l])]
                for l in range(1, L + 1)]

    s = _Symbols(E=sp.Symbol("E_n"),  # the loss of one row n; the training loss is Σ_n E_n
                 A=[None] + per_unit("alpha"), B=[xs] + per_unit("beta"),
                 D=[None] + per_unit("delta"), w=[sp.Symbol(f"w_{k + 1}") for k in range(P)],
                 x=xs, widx=[np.arange(layout.offsets[l], layout.offsets[l + 1])
                             .reshape(layout.shapes[l]) for l in range(L)])
    alpha_expr, fwd, fwd_num = _forward(layout, s)
    E, dE = loss_rules(loss, ys, s.B[L])
    canonical = (layout.output, loss) in CANONICAL
    chains = _chains(layout, s, alpha_expr, dE, ys, canonical)
    weights, rhs, examples, delta_defs = _per_weight(layout, s, alpha_expr, chains)
    deltas = sorted(delta_defs.items(), key=lambda kv: (-kv[0][0], kv[0][1]))
    sections = _sections(layout, E, dE, canonical, examples, deltas, chains, s, fwd, weights)
    return Derivation(layout, loss, sections, weights, fwd_num,
                      [(s.D[l][j], v) for (l, j), v in deltas], rhs,
                      {"w": s.w, "x": xs, "y": ys})


def _forward(layout: Layout, s: _Symbols):
    """The forward equations α_u = w_bias + Σ w β_src, β_u = f(α_u): (α expressions by (l, j),
    their display formulas, (symbol, expression) pairs in evaluation order)."""
    sp = _sympy()[0]
    A, B, w, widx = s.A, s.B, s.w, s.widx
    alpha_expr, fwd, fwd_num = {}, [], []
    for l in range(1, layout.n_layers + 1):
        betas_l = []
        name = layout.output if l == layout.n_layers else layout.activations[l - 1]
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
    return alpha_expr, fwd, fwd_num


def _chains(layout: Layout, s: _Symbols, alpha_expr, dE, ys, canonical: bool) -> dict:
    """chains[l, j]: the chain rule's factors (partial, value) of δ_u when unit u's error
    reaches E_n along one path only, else None."""
    sp = _sympy()[0]
    L, A, B = layout.n_layers, s.A, s.B
    n_out = layout.sizes[-1]

    def out_chain(k):  # the output error δ_Ok = ∂E_n/∂α_Ok
        if canonical:
            return [(Partial(s.E, A[L][k]), sp.Add(B[L][k], -ys[k], evaluate=False))]
        if layout.output == "softmax":  # ∂β_j/∂α_k = β_j([j = k] − β_k): a sum over the outputs
            terms = [sp.Mul(dE[j], B[L][j], sp.Add(int(j == k), -B[L][k], evaluate=False),
                            evaluate=False) for j in range(n_out)]
            return [(Partial(s.E, A[L][k]), sp.Add(*terms, evaluate=False))]
        fprime = activation_rules(layout.output, A[L][k], B[L][k])[2]
        return [(Partial(s.E, B[L][k]), dE[k]), (Partial(B[L][k], A[L][k]), fprime)]

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
    return chains


def _product(factors):
    """The chain's factors side by side: β(1 − β) spliced in, 1s dropped."""
    sp = _sympy()[0]
    vals = []
    for v in factors:
        nested = isinstance(v, sp.Mul) and not v.args[0].is_Number
        vals += [a for a in (v.args if nested else (v,)) if a != 1]
    return vals[0] if len(vals) == 1 else sp.Mul(*vals, evaluate=False)


def _per_weight(layout: Layout, s: _Symbols, alpha_expr, chains):
    """(one labelled formula per weight, their right-hand sides, the worked examples, the δ
    definitions of the units whose error has several paths)."""
    sp = _sympy()[0]
    delta_defs = {}

    def define(l, j):
        if (l, j) in delta_defs:
            return
        if chains.get((l, j)) is not None:
            delta_defs[l, j] = _product(v for _, v in chains[l, j])
            return
        fprime = activation_rules(layout.activations[l - 1], s.A[l][j], s.B[l][j])[2]
        back = sp.Add(*[sp.Mul(s.w[s.widx[l][j + 1, d]], s.D[l + 1][d], evaluate=False)
                        for d in range(layout.sizes[l + 1])], evaluate=False)
        delta_defs[l, j] = back if fprime == 1 else sp.Mul(fprime, back, evaluate=False)
        for d in range(layout.sizes[l + 1]):
            define(l + 1, d)

    weights, rhs, examples = [], [], []
    for k in range(layout.n_params):
        l0, r, c = layout.weight_index(k)
        l = l0 + 1  # the layer of the unit the weight enters
        src_d = sp.diff(alpha_expr[l, c], s.w[k])  # ∂α/∂w_k: 1 for a bias, else the source
        if chains[l, c] is not None:
            factors = chains[l, c] + [(Partial(s.A[l][c], s.w[k]), src_d)]
            value = _product(v for _, v in factors)
            if k == layout.offsets[l0]:  # worked example: the first weight of every layer
                examples.append(Formula((Partial(s.E, s.w[k]), EQ,
                                         *[p for p, _ in factors], EQ, value)))
        else:
            define(l, c)
            value = s.D[l][c] if src_d == 1 else sp.Mul(s.D[l][c], src_d, evaluate=False)
        weights.append(Formula((Partial(s.E, s.w[k]), EQ, value), layout.weight_name(k)))
        rhs.append(value)
    return weights, rhs, examples, delta_defs
