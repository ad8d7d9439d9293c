import numpy as np
import pytest

sp = pytest.importorskip("sympy")

from scratchnet.core.backprop import loss_and_grad  # noqa: E402
from scratchnet.cli import main  # noqa: E402
from scratchnet.report.derive import activation_rules, derive, loss_rules  # noqa: E402
from scratchnet.core.network import Layout  # noqa: E402


@pytest.fixture(scope="module")
def ps5():
    return derive(Layout.build(2, (7,), 1))


def test_ps5_has_the_problem_sets_29_formulas(ps5):
    assert len(ps5.weights) == 29
    md = ps5.to_markdown()
    chain = r"\left(\beta_{O1} - y\right) \beta_{O1} \left(1 - \beta_{O1}\right)"
    # the two the problem set works out, and w8 of its list
    assert rf"\frac{{\partial E_{{n}}}}{{\partial w_{{22}}}} = {chain}$" in md
    assert (rf"\frac{{\partial E_{{n}}}}{{\partial w_{{1}}}} = {chain} w_{{23}} \beta_{{H1}} "
            r"\left(1 - \beta_{H1}\right)$") in md
    assert (rf"\frac{{\partial E_{{n}}}}{{\partial w_{{8}}}} = {chain} w_{{23}} \beta_{{H1}} "
            r"\left(1 - \beta_{H1}\right) x_{1}$") in md
    assert rf"\frac{{\partial E_{{n}}}}{{\partial w_{{29}}}} = {chain} \beta_{{H7}}$" in md
    # forward equations in α/β notation, bias weight first
    assert r"\alpha_{H1} = w_{1} + w_{8} x_{1} + w_{15} x_{2}" in md
    assert r"\beta_{O1} = S\left(\alpha_{O1}\right)" in md
    assert "w_k^{(t+1)} = w_k^{(t)}" in md  # the update rule
    assert "**w8: x_1 → n1**" in md


def test_ps5_worked_chain_rule_lists_the_partials(ps5):
    md = ps5.to_markdown()
    assert (r"\frac{\partial E_{n}}{\partial \beta_{O1}} \frac{\partial \beta_{O1}}{\partial "
            r"\alpha_{O1}} \frac{\partial \alpha_{O1}}{\partial \beta_{H1}} \frac{\partial "
            r"\beta_{H1}}{\partial \alpha_{H1}} \frac{\partial \alpha_{H1}}{\partial w_{1}}") in md


def _targets(layout, loss, rng, n):
    k = layout.sizes[-1]
    if layout.output == "softmax":
        return np.eye(k)[rng.randint(k, size=n)]
    if loss == "bce":
        return rng.randint(2, size=(n, k)).astype(float)
    return rng.randn(n, k)


CASES = [  # hidden, activation, output, loss, outputs
    ((7,), "sigmoid", "sigmoid", "sse", 1),  # the problem set
    ((7,), "sigmoid", "sigmoid", "bce", 1),
    ((3, 4), "tanh", "sigmoid", "sse", 1),
    ((4,), "relu", "softmax", "ce", 3),
    ((3, 2), "sigmoid", "softmax", "sse", 3),
    ((3,), "tanh", "softmax", "bce", 3),
    ((2,), "identity", "identity", "sse", 2),
    ((3,), "tanh", "sigmoid", "sse", 2),
    ((2, 3, 2), "sigmoid", "identity", "sse", 1),
    ((), "sigmoid", "sigmoid", "sse", 1),
]


@pytest.mark.parametrize("hidden, act, out, loss, k", CASES)
def test_every_formula_equals_the_engines_gradient(hidden, act, out, loss, k, rng):
    layout = Layout.build(3 if hidden == (3, 4) else 2, hidden, k, act, out)
    der = derive(layout, loss)
    assert len(der.weights) == layout.n_params
    for _ in range(3):  # random points: weights, inputs, targets
        w = rng.randn(layout.n_params)
        x = rng.randn(7, layout.sizes[0])
        y = _targets(layout, loss, rng, 7)
        g_formula = der.gradient(w, x, y)
        _, g_engine = loss_and_grad(layout, loss, w, x, y)
        scale = max(1.0, np.max(np.abs(g_engine)))
        np.testing.assert_allclose(g_formula, g_engine, rtol=1e-9, atol=1e-12 * scale)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "identity"])
def test_slope_written_from_the_output_is_sympys_derivative(name):
    a, b = sp.Symbol("a"), sp.Symbol("b")
    f, _, fprime = activation_rules(name, a, b)
    exact = sp.diff(f, a)
    from_output = fprime.subs(b, f)
    if name == "relu":  # not differentiable at 0: compare away from the kink
        for v in (-2.0, -0.3, 0.4, 3.0):
            assert float(exact.subs(a, v)) == float(from_output.subs(a, v))
    else:
        assert sp.simplify(exact - from_output) == 0


@pytest.mark.parametrize("loss", ["sse", "bce", "ce"])
def test_loss_derivatives_are_sympys(loss):
    ys = [sp.Symbol("y_1"), sp.Symbol("y_2")]
    bs = [sp.Symbol("b_1", positive=True), sp.Symbol("b_2", positive=True)]
    E, dE = loss_rules(loss, ys, bs)
    for b, d in zip(bs, dE):
        assert sp.simplify(sp.diff(E, b) - d) == 0


def test_deeper_nets_name_the_errors_sent_back():
    der = derive(Layout.build(2, (3, 2), 1))
    md = der.to_markdown()
    assert "## Errors sent back" in md
    assert r"\delta_{H1.1} = " in md  # first hidden layer: several paths → a named δ
    assert r"\frac{\partial E_{n}}{\partial w_{1}} = \delta_{H1.1}$" in md
    assert r"\frac{\partial E_{n}}{\partial w_{4}} = \delta_{H1.1} x_{1}$" in md


def test_latex_and_html_outputs(ps5):
    tex = ps5.to_latex()
    assert tex.startswith(r"\documentclass{article}") and tex.rstrip().endswith(r"\end{document}")
    assert tex.count(r"\begin{align*}") == tex.count(r"\end{align*}") >= 6
    assert r"w8: x\_1 $\to$ n1" in tex
    page = ps5.to_html()
    assert page.count("<tr>") == 29
    assert page.count("<math") == page.count("</math>") >= 29 + 8
    assert "&#8706;" in page and "<mfrac>" in page


def test_derive_command(capsys, tmp_path):
    assert main(["derive"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Backpropagation for the 2-7-1 network")
    assert out.count(r"\frac{\partial E_{n}}{\partial w_{") >= 29
    f = tmp_path / "d.tex"
    assert main(["derive", "--hidden", "4,3", "--format", "latex", "--out", str(f)]) == 0
    assert r"\begin{document}" in f.read_text()
    assert main(["derive", "--output", "softmax", "--outputs", "3", "--loss", "ce"]) == 0
    capsys.readouterr()
    assert main(["derive", "--output", "softmax"]) == 2
    assert "--outputs" in capsys.readouterr().err


def test_notation_per_row_loss_deltas_and_four_patterns(ps5):
    md = ps5.to_markdown()
    assert "E = Σ_n E_n" in md and "summed, not averaged, as in the problem set" in md
    assert "without averaging as the problem set does" not in md
    assert r"E_{n} = \frac{\left(y - \beta_{O1}\right)^{2}}{2}" in md
    chain = r"\left(\beta_{O1} - y\right) \beta_{O1} \left(1 - \beta_{O1}\right)"
    assert rf"\delta_{{O1}} = {chain} $$" in md  # the problem set's s
    assert r"\delta_{H3} = \delta_{O1} w_{25} \beta_{H3} \left(1 - \beta_{H3}\right) $$" in md
    assert "## All 29 derivatives in 4 patterns" in md
    for pattern in (r"= \delta_{Hj} \qquad k = 1 \ldots 7", r"= \delta_{Hj} x_{i} \qquad k = 8",
                    r"= \delta_{O1} \qquad k = 22", r"= \delta_{O1} \beta_{Hj} \qquad k = 23"):
        assert pattern in md
    assert "standardized units" in md


LATEX_LAYOUTS = [((7,), "sigmoid", "sigmoid", "sse", 1), ((3, 4), "tanh", "sigmoid", "sse", 1),
                 ((4,), "relu", "softmax", "ce", 3), ((3,), "identity", "identity", "sse", 2),
                 ((3,), "sigmoid", "sigmoid", "bce", 1), ((), "sigmoid", "sigmoid", "sse", 1)]


@pytest.mark.parametrize("hidden, act, out, loss, k", LATEX_LAYOUTS)
def test_every_exported_formula_is_valid_math_mode_latex(hidden, act, out, loss, k):
    """A real parser (matplotlib's mathtext) reads every formula, and every inline $…$ of the
    document's text; the text between holds none of LaTeX's special characters unescaped."""
    import re

    mathtext = pytest.importorskip("matplotlib.mathtext")
    parser = mathtext.MathTextParser("path")
    der = derive(Layout.build(2, hidden, k, act, out), loss)
    formulas = der.latex_formulas()
    assert len(formulas) >= der.layout.n_params
    for f in formulas:
        parser.parse(f"${f}$")  # raises ValueError on anything mathtext cannot parse
    tex = der.to_latex()
    body = tex.split(r"\begin{document}", 1)[1]
    text = re.sub(r"\\begin\{align\*\}.*?\\end\{align\*\}", "", body, flags=re.S)
    inline = re.findall(r"(?<!\\)\$(.+?)(?<!\\)\$", text)
    assert inline  # Greek letters in the prose are inline math
    for m in inline:
        parser.parse(f"${m}$")
    prose = re.sub(r"(?<!\\)\$(.+?)(?<!\\)\$", "", text)
    prose = re.sub(r"\\[a-zA-Z]+\*?(\{[^{}]*\})?", "", prose)  # commands like \section*{…}
    prose = re.sub(r"\\[\^~]\{\}|\\[_^{}%&#$~]", "", prose)  # escaped specials
    assert not re.search(r"[_^{}%&#$~]", prose), prose[:300]


def test_derive_latex_command_has_no_text_mode_exponent(capsys):
    assert main(["derive", "--format", "latex"]) == 0
    tex = capsys.readouterr().out
    assert "e^(-$" not in tex and r"e\^{}(-$\alpha$)" in tex
