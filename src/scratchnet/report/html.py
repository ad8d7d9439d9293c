"""The PS5 report's page: ``render_html`` turns a :class:`ReportData` into one self-contained
HTML page — images as base64, mathematics as MathML (browsers render it natively), no script and
no link outside the page.  One function per part of the page; a print stylesheet; in exercise
mode the solutions sit behind "show solution" toggles (details/summary, no script)."""
from __future__ import annotations

import base64
import html
import math
import os

import re
from dataclasses import dataclass

import numpy as np

from .. import __version__
from ..core.losses import LOSSES
from .experiments import STUDENT_Q3_TEST_LOSS

CSS = """
body{font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 color:#1d1d1f;max-width:1040px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:1.9em;margin:.2em 0 .1em}h2{margin-top:2.2em;border-bottom:2px solid #6a3d9a;
 padding-bottom:.2em}h3{margin-top:1.6em}figure{margin:1.2em 0;text-align:center}
figure img{max-width:100%;height:auto;border:1px solid #eee;border-radius:4px}
figcaption{font-size:.9em;color:#555;margin-top:.4em;text-align:left}
.lead{color:#444}.cards{display:flex;flex-wrap:wrap;gap:12px;margin:1em 0}
.card{flex:1 1 150px;border:1px solid #ddd;border-radius:8px;padding:10px 14px;background:#faf9fc}
.card b{display:block;font-size:1.35em}.card b .lead{display:block;font-size:.62em;font-weight:normal}.card span{color:#666;font-size:.85em}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}
td,th{border:1px solid #ddd;padding:3px 9px;text-align:right}th{background:#f4f2f8}
td:first-child{text-align:left}
table.formulas th{text-align:left;white-space:nowrap;font-weight:normal;color:#555}
table.formulas td{text-align:left;border:none}table.formulas th{border:none;background:none}
table.formulas tr{border-bottom:1px solid #f0f0f0}math[display=block]{margin:.5em 0;
 overflow-x:auto;overflow-y:hidden}.note{background:#fff8e6;border-left:4px solid #e6ab02;
 padding:8px 12px;margin:1em 0}.q4{border-left:4px solid #6a3d9a;padding:2px 14px;margin:1.3em 0}
.q4 h3{margin-top:.6em}.measured{background:#f4f2f8;padding:6px 10px;border-radius:6px}
code{background:#f3f3f3;padding:0 4px;border-radius:3px}details{margin:.8em 0}
summary{cursor:pointer;color:#6a3d9a}.toc a{margin-right:1em}
.pair{display:flex;gap:10px;flex-wrap:wrap}.pair figure{flex:1 1 420px;margin:.6em 0}
.solution{border:1px dashed #6a3d9a;border-radius:6px;padding:4px 12px}
.solution>summary{font-weight:600}ul.five li{margin:.25em 0}
@media print{
 body{max-width:none;padding:0;font-size:9.5pt;line-height:1.35}
 h2{margin-top:1em;break-after:avoid}h3{margin-top:.8em;break-after:avoid}
 figure,tr,.card,math{break-inside:avoid}figure{margin:.4em 0}
 figure img{max-height:31vh;width:auto;max-width:100%;border:none}
 .pair figure{flex:1 1 45%}.pair figure img{max-height:27vh}
 table{font-size:7.5pt;margin:.4em 0}td,th{padding:0 4px}
 table.formulas math{font-size:90%}math[display=block]{margin:.15em 0}
 .derivation p,.q4 p{margin:.3em 0}.q4{padding:0 10px;margin:.6em 0}
 .toc,.screen-only{display:none}a{color:inherit;text-decoration:none}
}
@page{size:A4;margin:14mm 12mm}
"""


def _img(out: str, name: str, alt: str, caption: str = "") -> str:
    p = os.path.join(out, name)
    if not os.path.exists(p):
        return ""
    mime = "image/svg+xml" if name.endswith(".svg") else "image/png"
    with open(p, "rb") as fh:
        data = base64.b64encode(fh.read()).decode("ascii")
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return (f'<figure><img src="data:{mime};base64,{data}" alt="{html.escape(alt)}">'
            f"{cap}</figure>")


def _math(body: str) -> str:
    return f'<math display="block">{body}</math>'


def _num(v, fmt=".4g") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return format(v, fmt)


def _table(head, rows) -> str:
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def _confusion_html(labels, m, name) -> str:
    head = [f"{name}: true ↓ / predicted →"] + [f"{c:g}" for c in labels]
    return _table(head, [[f"<b>{labels[i]:g}</b>"] + [str(v) for v in row]
                         for i, row in enumerate(m)])


SIGMOID_MML = ("<mi>S</mi><mo>(</mo><mi>α</mi><mo>)</mo><mo>=</mo><mfrac><mn>1</mn><mrow><mn>1"
               "</mn><mo>+</mo><msup><mi>e</mi><mrow><mo>&#8722;</mo><mi>α</mi></mrow></msup></mrow>"
               "</mfrac><mspace width='2em'/><mfrac><mrow><mo>∂</mo><mi>β</mi></mrow><mrow><mo>∂"
               "</mo><mi>α</mi></mrow></mfrac><mo>=</mo><mi>β</mi><mo>(</mo><mn>1</mn><mo>&#8722;</mo>"
               "<mi>β</mi><mo>)</mo>")
SOFTMAX_MML = ("<mi>σ</mi><msub><mrow><mo>(</mo><mi mathvariant='bold'>z</mi><mo>)</mo></mrow>"
               "<mi>i</mi></msub><mo>=</mo><mfrac><msup><mi>e</mi><msub><mi>z</mi><mi>i</mi>"
               "</msub></msup><mrow><munderover><mo>∑</mo><mrow><mi>j</mi><mo>=</mo><mn>1</mn>"
               "</mrow><mi>K</mi></munderover><msup><mi>e</mi><msub><mi>z</mi><mi>j</mi></msub>"
               "</msup></mrow></mfrac>")
UPDATE_MML = ("<msubsup><mi>w</mi><mi>k</mi><mrow><mo>(</mo><mi>t</mi><mo>+</mo><mn>1</mn>"
              "<mo>)</mo></mrow></msubsup><mo>=</mo><msubsup><mi>w</mi><mi>k</mi><mrow><mo>(</mo>"
              "<mi>t</mi><mo>)</mo></mrow></msubsup><mo>&#8722;</mo><mi>η</mi><mfrac><mrow><mo>∂</mo>"
              "<mi>E</mi></mrow><mrow><mo>∂</mo><msub><mi>w</mi><mi>k</mi></msub></mrow></mfrac>")


def _weight_ranges(layout) -> list[str]:
    """'w1–w7: b1 → n1..n7' per row of every W_l: the numbering in one glance."""
    rows = []
    for l in range(layout.n_layers):
        srcs = [layout.bias_name(l)] + layout.unit_names(l)
        dst = layout.unit_names(l + 1)
        for r, src in enumerate(srcs):
            a = layout.offsets[l] + r * layout.sizes[l + 1]
            b = a + layout.sizes[l + 1] - 1
            span = f"w{a + 1}" if a == b else f"w{a + 1}–w{b + 1}"
            to = dst[0] if len(dst) == 1 else f"{dst[0]}..{dst[-1]}"
            rows.append(f"{span}: {src} → {to}")
    return rows


@dataclass
class ReportData:
    """Everything the page shows, built by ``report.build.build_report``."""

    out: str  # the report folder (figures are read from it)
    result: object  # training.train.TrainResult of the run
    derivation: object  # report.derive.Derivation of its layout and loss
    files: list[str]  # the files written so far, in order
    summary: dict  # the numbers of every step, as written to summary.json
    init_w: np.ndarray  # (P,) the starting weights
    worked: object | None = None  # report.worked.WorkedStep at the starting weights
    student: object | None = None  # TrainResult of the problem set's procedure (--faithful)
    exercise: bool = False  # solutions behind "show solution" toggles

    @property
    def config(self):
        return self.result.config

    @property
    def layout(self):
        return self.result.prepared.layout

    @property
    def final(self) -> dict:
        return self.summary["final"]


# β_O1, E_n, Σ_n, x_i, H2.3 (a dot only between digits: "∂w_k." ends the sentence)
_SUB = re.compile(r"(∂?[A-Za-zα-ωΣ])_(\{[^}]*\}|[A-Za-z0-9]+(?:\.[0-9]+)*)")
_SUP = re.compile(r"\be\^(\([^()]*\)|[α-ω])")  # e^(−α), e^α


def _tokens(text: str) -> str:
    """A short plain formula (−α, 1 − β) as MathML tokens."""
    out = []
    for tok in re.findall(r"[A-Za-zα-ω]_[A-Za-z0-9]+|\S", text):
        if "_" in tok:
            out.append(f"<msub><mi>{tok[0]}</mi><mi>{tok[2:]}</mi></msub>")
        else:
            tag = "mi" if tok.isalpha() else "mn" if tok.isdigit() else "mo"
            out.append(f"<{tag}>{tok}</{tag}>")
    return "".join(out)


def prose(text: str) -> str:
    """Plain text with the derivation's subscripts (β_O1, E_n, Σ_n, x_i) and exponents
    (e^(−α)) as inline MathML."""
    def sub(m):
        base, idx = m.group(1), m.group(2).strip("{}")
        d = "<mo>∂</mo>" if base.startswith("∂") else ""
        b = base.lstrip("∂")
        tag = "mo" if b == "Σ" else "mi"
        return (f"<math>{d}<msub><{tag}>{b}</{tag}><mi>{html.escape(idx)}</mi></msub></math>")

    def sup(m):
        return f"<math><msup><mi>e</mi><mrow>{_tokens(m.group(1).strip('()'))}</mrow></msup></math>"
    return _SUB.sub(sub, _SUP.sub(sup, html.escape(text, quote=False)))


def solution(d: ReportData, body: str, what: str = "show solution") -> str:
    """``body`` as is, or in exercise mode behind a details/summary toggle."""
    if not d.exercise:
        return body
    return f"<details class='solution'><summary>{what}</summary>{body}</details>"


def _per_row(total, n) -> str:
    return f"{_num(total)} <span class='lead'>({_num(total / n if total is not None else None)}" \
           " per row)</span>"


LOSS_WORDS = {"sse": "the squared-error loss, summed over the rows as in the problem set",
              "bce": "the binary cross-entropy loss", "ce": "the cross-entropy loss"}


def render_html(d: ReportData) -> str:
    """The report page: the run, Questions 1–4 in order, every number from this run."""
    parts = [_header(d), _question1(d), _question2(d), _student_panel(d), _question3(d),
             _question4(d), _files(d)]
    body = "\n".join(x for x in parts if x)
    title = "Problem set 5 — " + ("exercise" if d.exercise else "report")
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>{title}: {d.layout.describe()} network on {html.escape(d.result.prepared.dataset.source)}"
            f"</title><style>{CSS}</style></head><body>{body}</body></html>\n")
    return _with_own_size(page)


_OWN_SIZE = "\x00page size\x00"  # the Files table's size of report.html, filled in last


def _kb(n: int) -> str:
    return f"{n / 1024:.1f} kB"


def _with_own_size(page: str) -> str:
    """The page with its own size written into the Files table (the size counts itself: a
    few rounds until the number stops changing)."""
    text = _kb(len(page.encode("utf-8")))
    for _ in range(5):
        full = page.replace(_OWN_SIZE, text)
        now = _kb(len(full.encode("utf-8")))
        if now == text:
            break
        text = now
    return page.replace(_OWN_SIZE, text)


def _header(d: ReportData) -> str:
    c, f, lay = d.config, d.final, d.layout
    prep = d.result.prepared
    ds, e = prep.dataset, html.escape
    hidden = ", ".join(dict.fromkeys(lay.activations)) or "no"
    data = ("the stand-in for the problem set's CSV" if ds.source == "ps5" else e(ds.source))
    n_tr, n_te = len(prep.train_idx), len(prep.test_idx)
    H = [f"<h1>Problem set 5: a {lay.describe()} network trained by backpropagation</h1>"
         f"<p class='lead'>Data: <b>{data}</b>, {len(ds.y)} rows, features "
         f"{prose(', '.join(ds.feature_names))}, {n_tr} for training and {n_te} for testing. "
         f"Network <b>{lay.describe()}</b> with {lay.n_params} weights, {hidden} hidden units, "
         f"a {lay.output} output and {LOSS_WORDS.get(c.loss, e(c.loss))}. {f['epochs']} epochs "
         f"of gradient descent with η = {c.lr:g}. Made by scratchnet {__version__}.</p>"]
    cards = [("training loss E", _per_row(f["train_loss"], n_tr)),
             ("test loss E", _per_row(f["test_loss"], n_te)),
             ("training accuracy", _num(f["train_acc"], ".3f")),
             ("test accuracy", _num(f["test_acc"], ".3f"))]
    H.append("<div class='cards'>" + "".join(f"<div class='card'><b>{v}</b><span>{k}</span>"
                                             "</div>" for k, v in cards) + "</div>")
    if "diverged" in d.summary:
        H.append(f"<p class='note'>{e(d.summary['diverged'])}. Everything below shows the "
                 "epochs before it.</p>")
    if d.result.stopped == "interrupted":
        H.append(f"<p class='note'>Training was interrupted after {f['epochs']} epochs; the "
                 "report shows what was trained, without the side experiments.</p>")
    elif d.summary.get("interrupted"):
        H.append(f"<p class='note'>Training finished ({f['epochs']} epochs); the report was "
                 f"interrupted while {e(str(d.summary.get('interrupted_during')))}: the parts "
                 "after it say so.</p>")
    if d.exercise:
        H.append("<p class='note'>Exercise version: the derivation, the worked step and the "
                 "answers to Question 4 are hidden behind <b>show solution</b>.</p>")
    student = ("<a href='#student'>The problem set's numbers</a>" if d.summary.get("student")
               else "")
    H.append("<p class='toc'><a href='#q1'>Question 1</a><a href='#q2'>Question 2</a>"
             f"{student}<a href='#q3'>Question 3</a>"
             "<a href='#q4'>Question 4</a><a href='#files'>Files</a></p>")
    return "".join(H)


def _question1(d: ReportData) -> str:
    out, lay, e = d.out, d.layout, html.escape
    ranges = _weight_ranges(lay)
    H = ["<h2 id='q1'>Question 1 — the data, the network, the derivation</h2>",
         _img(out, "data.png", "the data", "The raw data by class. Class colours are the same "
              "in every figure of this page."),
         "<p>Each unit sums its weighted inputs into α and passes α through its activation; "
         "the problem set's units are sigmoids:</p>" + _math(SIGMOID_MML),
         _img(out, "network.svg", "the network", "The network (<code>scratchnet diagram</code>)."
              " Edge labels are the weights' numbers in the problem set's order: "
              + prose("; ".join(ranges[:12])) + ("; …" if len(ranges) > 12 else "") + ".")]
    dv = d.summary["derivation"]
    der = ("<p>Generated from the architecture with sympy (<code>scratchnet derive</code>; also "
           "<code>derivation.md</code>). Checked here: the "
           f"{dv['formulas']} formulas, evaluated on the training rows at the final weights, "
           f"give the engine's gradient to within {dv['max_abs_diff_vs_engine']:.1e} (largest "
           f"gradient entry {dv['max_abs_gradient']:.3g}).</p>"
           "<div class='derivation'>" + d.derivation.to_html(heading_level=4) + "</div>")
    H.append("<h3>Backpropagation, derived</h3>" + solution(d, der, "show the derivation"))
    if d.worked is not None:
        H.append("<h3>One step worked in numbers</h3>"
                 + solution(d, _worked_html(d), "show the worked step"))
    return "".join(H)


def _worked_html(d: ReportData) -> str:
    st, lay = d.worked, d.layout
    y = ", ".join(f"{v:.4f}" for v in st.y)
    x = ", ".join(f"x_{i + 1} = {v:+.4f}" for i, v in enumerate(st.x))
    H = [f"<p>{prose(f'Training row n = {st.row + 1} (standardized: {x}; target y = {y}), at the starting weights (seed {d.config.seed}). Forward: α and β of every unit; backward: its δ = ∂E_n/∂α.')}</p>",
         _table(["unit", "α", "β", "δ"], [[f"<b>{u}</b>", f"{a:+.5f}", f"{b:.5f}", f"{dl:+.3e}"]
                                           for u, a, b, dl in st.unit_rows()])]
    rows = []
    for k in range(lay.n_params):
        dn, dv = st.receiving(k)
        cn, cv = st.carried(k)
        rows.append([prose(lay.weight_name(k)), prose(f"{dn} × {cn}"),
                     f"{dv:+.3e} × {cv:+.4f}", f"{st.grad_row[k]:+.3e}", f"{st.grad[k]:+.4e}",
                     f"{st.w[k]:+.6f}", f"{st.w_next[k]:+.6f}"])
    H.append(f"<p>{prose(f'Every derivative is δ of the unit the weight enters × what the weight carries. The column Σ_n sums the row formula over all {len(d.result.prepared.train_idx)} training rows; the last column is the weight after one step w − η ∂E/∂w with η = {st.lr:g} — the weights the engine holds after epoch 1.')}</p>")
    H.append("<div style='overflow-x:auto'>" + _table(
        ["weight", "formula", "values (row n)", "∂E_n/∂w", "∂E/∂w = Σ_n", "w before",
         "w after one step"], rows) + "</div>")
    return "".join(H)


def _question2(d: ReportData) -> str:
    c, f, prep, hist = d.config, d.final, d.result.prepared, d.result.history
    n_tr, n_te = len(prep.train_idx), len(prep.test_idx)
    std = ("the <b>whole</b> data set's mean and std, and the 0/1 targets too — as the "
           "problem set did (<code>--faithful</code>)" if c.faithful else
           "the <b>training rows'</b> mean and std (the test rows stay unseen; "
           "<code>--faithful</code> reproduces the problem set's whole-data standardizing)")
    init = (f"<code>np.random.seed({c.seed}); np.random.randn({d.layout.n_params})</code>, the "
            "problem set's draw" if c.init == "normal" else f"{c.init} (seed {c.seed})")
    H = ["<h2 id='q2'>Question 2 — training the network</h2>",
         f"<p>Split: {n_te} of {len(prep.dataset.y)} rows held out, the same rows as "
         f"scikit-learn's <code>train_test_split(test_size={c.test_size:g}, random_state="
         f"{c.split_seed})</code>. Inputs standardized with {std}. Initial weights: {init}. "
         "Each epoch records the training and test loss of the current weights, then updates "
         "every weight from the same old weights:</p>" + _math(UPDATE_MML)]
    every = c.log_every or 1000
    rows = [[str(t), _num(hist.train_loss[t], ".6f"), _num(hist.train_loss[t] / n_tr, ".5f"),
             _num(hist.test_loss[t], ".6f"), _num(hist.test_loss[t] / n_te, ".5f"),
             _num(hist.train_acc[t], ".3f"), _num(hist.test_acc[t], ".3f")]
            for t in range(0, len(hist), every)]
    head = ["epoch", f"training loss E ({n_tr} rows)", "per row", f"test loss E ({n_te} rows)",
            "per row", "training acc", "test acc"]
    H.append("<h3>Training log</h3><p>The losses are sums over the rows, as the problem set "
             "prints them; the per-row columns (E/N) compare the training and test rows.</p>"
             + _table(head, rows[:6]))
    if len(rows) > 6:
        H.append(f"<details class='screen-only'><summary>all {len(rows)} lines (every {every} "
                 "epochs)</summary>" + _table(head, rows) + "</details>")
    H.append(_img(d.out, "losses.png", "loss curves", "Training and test loss against epoch, "
                  "as the problem set plots them; the dot marks the lowest test loss."))
    rise = d.summary.get("test_loss_rise")
    if rise and rise["to"] > 1.01 * rise["from"]:
        H.append(f"<p>The test loss of this correct run rises too: from {rise['from']:.4g} at "
                 f"epoch {rise['from_epoch']} to {rise['to']:.4g} at epoch {rise['to_epoch']}"
                 f", while the training loss keeps falling. The network fits details of the "
                 "training rows that do not carry over to the test rows. A rising test loss is "
                 "therefore not by itself a sign of a bug, in Question 3 or here; early "
                 "stopping on a validation split is the usual remedy.</p>")
    cm = d.summary["confusion"]
    H.append("<h3>Final numbers</h3><p>" + prose(
        f"The losses are sums E = Σ_n E_n over {n_tr} training and {n_te} test rows, so "
        "compare them per row.") + "</p>" + _table(
        ["", "rows", "loss E (sum)", "per row E/N", "accuracy"],
        [["training", str(n_tr), _num(f["train_loss"]), _num(f["train_loss"] / n_tr),
          _num(f["train_acc"], ".3f")],
         ["test", str(n_te), _num(f["test_loss"]), _num(f["test_loss"] / n_te),
          _num(f["test_acc"], ".3f")]])
        + "<div style='display:flex;gap:2em;flex-wrap:wrap'>"
        + _confusion_html(cm["labels"], cm["train"], "training")
        + _confusion_html(cm["labels"], cm["test"], "test") + "</div>")
    H.append(_img(d.out, "decision_map.png", "decision map", "The smooth map of "
                  "classification: the predicted probability on a grid over the raw data range."
                  " The grid is standardized with the <b>model's training statistics</b> "
                  "(stored in model.json), so the map and the points are in the same place. "
                  "Circles: training rows; diamonds: test rows."))
    H.append(_img(d.out, "hidden_units.png", "hidden units", "What every hidden unit computes "
                  "over the same grid. A sigmoid unit is a soft step across one straight line "
                  "(dashed, α = 0); the output combines them with the weights shown in the "
                  "titles into the curved border."))
    return "".join(H)


STAND_IN = ("The problem set's CSV is not public. scratchnet ships a synthetic stand-in with the "
            "same columns, size and class balance, so its numbers differ from the problem "
            "set's; on the original CSV the same procedure gives the problem set's numbers.")


def _student_panel(d: ReportData) -> str:
    st = d.summary.get("student")
    if not st:
        return ""
    e = html.escape
    H = ["<h2 id='student'>The problem set's numbers, explained</h2>",
         f"<p class='note'>{STAND_IN}</p>"]
    if "skipped" in st:
        return "".join(H) + f"<p class='note'>Not measured: {e(st['skipped'])}</p>"
    tv = " and ".join(f"{v:+.2f}" for v in st["targets"])
    H.append(
        f"<p><b>Why the problem set's loss stalled.</b> The problem set standardized the 0/1 "
        f"labels too, into {tv}. A sigmoid output lies between 0 and 1, so each of the "
        f"{st['floor_rows']} training rows with a target outside that range keeps a loss of at "
        f"least ½(target − nearest reachable value)². Together that is a floor of "
        f"<b>{st['floor']:.4g}</b> (computed from the data) that no training can go below — the "
        f"first reason its loss stayed near 23.4. The run below is the problem set's own "
        f"procedure (<code>--faithful</code>) for {st['epochs']} epochs; the dashed lines are "
        "the floors of its training and test rows.</p>")
    rows = [[f"epoch {k}", f"{v:.3f}", _num(st["ours"].get(k), ".3f")]
            for k, v in st["printed"].items()]
    H.append(_table([f"training loss (sum over {st['n_train']} rows)",
                     "printed by the problem set (original data)",
                     "the same procedure here (stand-in data)"], rows))
    H.append(_img(d.out, "student_losses.png", "the problem set's procedure",
                  "The problem set's procedure: standardized labels under a sigmoid output."))
    if "acc_midpoint" in st:
        (m_tr, m_te), (h_tr, h_te) = st["acc_midpoint"], st["acc_half"]
        H.append(
            f"<p><b>Its accuracy, read two ways.</b> <code>--faithful</code> thresholds the "
            f"output at the standardized midpoint between the labels "
            f"({st['threshold_midpoint']:+.3f}). A sigmoid output is always above that, so every row is called class 1: "
            f"{m_tr:.3f} training / {m_te:.3f} test, which is exactly what always answering "
            f"class 1 scores ({st['always_class_1'][0]:.3f} / {st['always_class_1'][1]:.3f}). "
            f"The same network thresholded at 0.5 on its raw output scores {h_tr:.3f} / "
            f"{h_te:.3f}" + (": it did learn the classes, the midpoint hides it.</p>"
                             if h_tr > st["always_class_1"][0] else
                             ", no better than always answering class 1 on the training rows: "
                             "after these epochs it has not learned the classes yet.</p>"))
    line = (" Its black line is 0.5 on the raw output, the threshold that scores "
            f"{st['acc_half'][0]:.3f} / {st['acc_half'][1]:.3f} above." if "acc_half" in st
            else "")
    H.append("<div class='pair'>"
             + _img(d.out, "student_map.png", "the problem set's map", "The problem set's map: "
                    "the network's raw sigmoid output, as the problem set drew it, over a grid "
                    "standardized with the grid's own mean and std instead of the training "
                    "statistics, so the map is shifted and stretched against the data." + line)
             + _img(d.out, "decision_map.png", "the corrected map", "Corrected: the grid "
                    "standardized with the training statistics (this report's run).")
             + "</div>")
    return "".join(H)


FIVE_DIFFERENCES = [
    "the standardized labels (−0.98 / +1.02 on the original data), which a sigmoid cannot "
    "reach — see the floor above;",
    "no sigmoid on the output layer (<code>nn.Linear</code> last);",
    "<code>MSELoss(reduction='sum')</code> = Σ(ŷ − y)², twice the ½Σ of Question 2, so every "
    "step was 2η;",
    "PyTorch's own initial weights instead of w1..w29;",
    "a map grid passed to the model unstandardized.",
]


def _q3_printed() -> str:
    v = list(STUDENT_Q3_TEST_LOSS.values())
    return (f"<p>The problem set's PyTorch run printed a test loss of {v[0]:g} at epoch 0, "
            f"{v[1]:g} at its lowest (near epoch 33000) and {v[2]:g} at epoch 99000. A test loss"
            " that rises while the training loss falls is over-fitting, which the correct run "
            "of Question 2 shows as well; it does not mean the model had not converged.</p>")


def _question3(d: ReportData) -> str:
    t, e = d.summary["torch"], html.escape
    H = ["<h2 id='q3'>Question 3 — the same network in PyTorch</h2>",
         "<p>The problem set rebuilt the network in PyTorch, got a different map and a test loss"
         " that rose again, and concluded the model had not converged. Its PyTorch run "
         "differed from the numpy one in five ways, each enough to change the numbers:</p>"
         "<ul class='five'>" + "".join(f"<li>{x}</li>" for x in FIVE_DIFFERENCES) + "</ul>"
         "<p>The twin (<code>scratchnet.trust.twin</code>) removes all five: the same layers and"
         " output activation, the same loss, the same initial weights, the same standardized "
         "rows. <code>scratchnet doctor --data ps5 --ps5-q3</code> names each of the five "
         "and measures what it changes: the share of the map that changes class, the test "
         "accuracy and the loss.</p>", _q3_printed()]
    if "skipped" in t:
        H.append(f"<p class='note'>The PyTorch comparison was skipped: {e(t['skipped'])}. The "
                 "rest of the report does not need it.</p>")
        return "".join(H)
    H.append(f"<p class='measured'>Trained from the same initial weights for the first "
             f"{t['epochs']} epochs in {t['dtype']}: the largest "
             f"difference in the training loss was {t['max_abs_train_loss_diff']:.1e}, in the "
             f"test loss {t['max_abs_test_loss_diff']:.1e}, in any weight "
             f"{t['max_abs_weight_diff']:.1e}"
             + (f", in the map's probabilities {t['max_abs_map_diff']:.1e}"
                if "max_abs_map_diff" in t else "")
             + ". Done right, the two are the same network.</p>")
    H.append(_img(d.out, "torch_losses.png", "torch losses", "The engine's losses (solid) and "
                  "the twin's (dashed) over the same epochs: the curves lie on top of each "
                  "other."))
    later = (f" Question 2's map is after all {d.final['epochs']} epochs; compare maps at the "
             "same epoch." if t["epochs"] < d.final["epochs"] else "")
    H.append("<div class='pair'>"
             + _img(d.out, "torch_decision_map.png", "torch map", f"The PyTorch twin after "
                    f"{t['epochs']} epochs.")
             + _img(d.out, "engine_map_at_twin.png", "engine map", f"scratchnet after the "
                    f"same {t['epochs']} epochs: the same map." + later)
             + "</div>")
    return "".join(H)


def _concept(d: ReportData, title: str, text: str, measured: str, fig: str = "") -> str:
    answer = (f"<p class='measured'>{measured}</p>" if measured else "") + fig
    return f"<div class='q4'><h3>{title}</h3><p>{text}</p>{solution(d, answer)}</div>"


def _why(d: ReportData, key: str) -> str:
    q = d.summary["q4"].get(key) or {}
    return f"Not measured: {html.escape(str(q.get('skipped', 'not run')))}."


def _got(d: ReportData, key: str, field: str):
    m = d.summary["q4"].get(key) or {}
    return m if field in m else None


def _question4(d: ReportData) -> str:
    H = ["<h2 id='q4'>Question 4 — the concepts, each changed and measured</h2>"]
    for part in (_q4_activation, _q4_backprop, _q4_learning_rate, _q4_vanishing, _q4_bias,
                 _q4_loss, _q4_kernels, _q4_augmentation, _q4_softmax):
        H.append(part(d))
    return "".join(H)


def _q4_activation(d: ReportData) -> str:
    f, c = d.final, d.config
    lin, ae = d.summary["q4"].get("linear") or {}, _got(d, "activation", "seeds")
    text = ("A unit passes its weighted sum α through a non-linear f. Without it every layer "
            "is linear and so is the whole network: its border between the classes can only be"
            " a straight line.")
    m = (f"The same network with identity hidden units, trained the same {lin['epochs']} "
         f"epochs: test accuracy {_num(lin['test_acc'], '.3f')} against "
         f"{_num(f['test_acc'], '.3f')}. " if "test_acc" in lin else _why(d, "linear") + " ")
    if ae:
        a, b = ae[c.activation], ae["identity"]
        m += (f"One test row is {100 * ae['one_row']:.0f}% of the {ae['n_test']} test rows, so a "
              "difference of a row or two is noise (binomial standard error "
              f"{100 * ae['binomial_se']:.0f} points). Over {ae['seeds']} initial draws "
              f"({ae['epochs']} epochs each): {c.activation} {a['test_acc_mean']:.3f} ± "
              f"{a['test_acc_std']:.3f}, identity {b['test_acc_mean']:.3f} ± "
              f"{b['test_acc_std']:.3f} (mean ± std over seeds; <code>scratchnet sweep</code> "
              "runs such ensembles)" + _verdict(a, b) + ".")
    return _concept(d, "Activation function", text, m)


def _verdict(a: dict, b: dict) -> str:
    """Whether two seed ensembles' mean test accuracies differ by more than their spread."""
    gap = abs(a["test_acc_mean"] - b["test_acc_mean"])
    spread = math.hypot(a["test_acc_std"], b["test_acc_std"])
    if gap <= spread:
        return (": the means lie within the spread, so on these test rows the two cannot be "
                "told apart")
    return f": the means differ by {gap:.3f}, more than the spread ({spread:.3f})"


def _q4_backprop(d: ReportData) -> str:
    gc, dv = _got(d, "gradient_check", "max_abs_diff"), d.summary["derivation"]
    m = (f"At the final weights the backpropagated gradient and central finite differences "
         f"agree to {gc['max_abs_diff']:.1e} (largest entry {gc['max_abs_gradient']:.3g}); the "
         f"sympy formulas agree with it to {dv['max_abs_diff_vs_engine']:.1e}."
         if gc else _why(d, "gradient_check"))
    return _concept(d, "Backpropagation", prose(
        "The chain rule applied backwards, layer by layer: the output error δ_O = ∂E_n/∂α_O is "
        "sent back through the weights and multiplied by each unit's slope; every weight's "
        "gradient is the δ of the unit it enters times what it carries (the derivation and the"
        " worked step above)."), m)


def _q4_learning_rate(d: ReportData) -> str:
    lr, c = d.summary["q4"].get("learning_rates"), d.config
    text = ("η scales every step. Too small and training crawls; too large and the steps "
            "overshoot: the loss oscillates or explodes. With a sigmoid output and 0/1 targets "
            "every row's loss stays below ½, so the loss is capped at N/2 and cannot explode; "
            "this experiment therefore uses an identity (linear) output.")
    if not lr or "skipped" in lr:
        return _concept(d, "Learning rate", text, _why(d, "learning_rates"))
    lrs, div = np.asarray(lr["lrs"], float), np.asarray(lr["diverged"], bool)
    te = np.where(div, np.inf, np.asarray(lr["final_test_loss"], float))
    best = float(lrs[int(np.argmin(te))])
    rows = [[f"{v:g}" + (" (chosen)" if np.isclose(v, c.lr) else ""),
             "diverged" if dv else _num(tr), "diverged" if dv else _num(t)]
            for v, tr, t, dv in zip(lrs, lr["final_train_loss"], lr["final_test_loss"], div)]
    m = (f"The network with a linear output trained {lr['epochs']} epochs for {len(lrs)} values"
         f" of η from {lrs[0]:g} to {lrs[-1]:g}, all at once (<code>train_ensemble</code>). "
         f"Judged on the test loss, the best η is {best:g}. "
         + (f"Diverged (the loss became infinite): η ≥ {lrs[div].min():g}." if div.any() else
            "None diverged within these epochs."))
    fig = (_img(d.out, "learning_rates.png", "learning rates")
           + _table(["η", f"training loss E after {lr['epochs']} epochs "
                     f"({len(d.result.prepared.train_idx)} rows)",
                     f"test loss E ({len(d.result.prepared.test_idx)} rows)"], rows))
    return _concept(d, "Learning rate", text, m, fig)


def _q4_vanishing(d: ReportData) -> str:
    v, mon = _got(d, "vanishing", "saturated_raw"), _got(d, "monitor", "grad_norms")
    text = ("Each layer passes the error back multiplied by |w|·f′ — the weight it travels "
            "through times the unit's slope (for the sigmoid f′ = β(1 − β) ≤ ¼, and ≈ 0 when the "
            "unit saturates at β near 0 or 1, from large weights or unstandardized inputs). "
            "Over several layers these factors multiply, and the gradient reaching the first "
            "weights vanishes. (<code>scratchnet demo vanishing</code> shows it over depth.)")
    m = ""
    if v:
        raw, std = 100 * np.mean(v["saturated_raw"]), 100 * np.mean(v["saturated_standardized"])
        m = (f"At the starting weights, {raw:.1f}% of the hidden units are saturated (slope "
             f"below 10% of its largest) on the raw inputs, against {std:.1f}% on the "
             "standardized inputs — why the problem set standardizes. ")
        if "factor_mean" in v:
            m += (f"The mean factor |w|·f′ a hidden unit applies is {v['factor_mean']:.3f} "
                  f"(mean slope f′ alone: {v['slope_mean']:.3f}).")
    else:
        m = _why(d, "vanishing")
    if mon:
        G = np.asarray(mon["grad_norms"])
        if G.size:
            m += (f" Gradient size of the first and last weight layer: {G[0, 0]:.3g} and "
                  f"{G[0, -1]:.3g} at the start, {G[-1, 0]:.3g} and {G[-1, -1]:.3g} at the end.")
    return _concept(d, "Vanishing gradients", text, m, _img(d.out, "monitor.png",
                                                             "gradient norms"))


def _q4_bias(d: ReportData) -> str:
    lay, f, b = d.layout, d.final, _got(d, "bias", "test_acc")
    rows = [[prose(lay.weight_name(k)), f"{d.init_w[k]:+.4f}", f"{d.result.model.w[k]:+.4f}"]
            for k in range(min(lay.n_params, 60))]
    text = ("A weight says how much one unit's output matters to the next unit; the bias weight"
            " (from the constant node b) shifts where the unit's step sits, so a border need not"
            " pass through the origin.")
    m = (f"The same network with its {b['n_biases']} bias weights held at 0, trained "
         f"{b['epochs']} epochs: training loss {_num(b['train_loss'])}, test accuracy "
         f"{_num(b['test_acc'], '.3f')} — every hidden unit's line now passes through the "
         "centre of the standardized data." if b else _why(d, "bias"))
    fig = ("<details class='screen-only'><summary>every weight, initial and final (in "
           "standardized units: they multiply the standardized inputs)</summary>"
           + _table(["weight", "initial", "final"], rows) + "</details>")
    return _concept(d, "Weights and biases", text, m, fig)


def _q4_loss(d: ReportData) -> str:
    f, st = d.final, d.summary.get("student") or {}
    prep = d.result.prepared
    m = (f"Final training loss {_num(f['train_loss'])} ({_num(f['train_loss'] / len(prep.train_idx))}"
         f" per row), test loss {_num(f['test_loss'])} ({_num(f['test_loss'] / len(prep.test_idx))}"
         " per row).")
    if "floor" in st and d.config.faithful:
        m += (f" This run keeps the problem set's standardized labels, so its training loss "
              f"cannot go below the floor {st['floor']:.4g} (see above).")
    elif "floor" in st:
        m += (" The 0/1 targets lie within the output's range, so no row has a floor; with the "
              f"problem set's standardized labels the training loss could not go below "
              f"{st['floor']:.4g} (see above).")
    per_row = (d.derivation.loss_mathml() if d.derivation is not None
               else html.escape(LOSSES[d.config.loss].formula))
    return _concept(d, "Loss", f"The loss measures how far the outputs are from the targets. "
                    f"This run's loss of one row is {per_row}; the training loss sums it over "
                    + prose("the rows, E = Σ_n E_n (summed, not averaged, as in the problem "
                            "set). Training lowers it on the training rows; the test loss tells "
                            "whether that generalizes."), m)


def _q4_kernels(d: ReportData) -> str:
    kq, lk = _got(d, "kernels", "grid_shape"), _got(d, "learned_kernels", "kernels")
    text = ("A CNN slides small kernels over an image; the same kernel is used at every "
            "position (shared weights), and its numbers are <b>learned</b> by backpropagation "
            "like any other weight. Pooling keeps the strongest response of each block. Below, "
            "the kernels the CNN of <code>scratchnet demo digits</code> learned on the 8×8 "
            "digits, and a hand-set 3×3 Sobel kernel (not learned) applied to this run's map as"
            " an image: it responds where the probability changes, i.e. on the border.")
    if "kernels" not in d.summary["q4"] and "learned_kernels" not in d.summary["q4"]:
        return ""
    m, figs = "", ""
    if lk:
        m += (f"The digits CNN ({html.escape(lk['layout'])}, {lk['n_params']:,} weights) "
              f"trained {lk['epochs']} epochs here (the demo trains 30): test accuracy "
              f"{lk['test_acc']:.3f} on {lk['n_test']} digits; {lk['kernels']} kernels of 9 "
              "weights each, every one shared by all 64 positions. ")
        figs += _img(d.out, "learned_kernels.png", "learned kernels")
    else:
        m += _why(d, "learned_kernels") + " "
    if kq:
        m += (f"Sobel on the map: mean probability where the kernel responds most (top 2%): "
              f"{kq['mean_p_at_strongest_edges']:.2f} — on the border. Pooling: "
              f"{kq['grid_shape'][1]}×{kq['grid_shape'][0]} → {kq['pooled_shape'][1]}×"
              f"{kq['pooled_shape'][0]} pixels.")
        figs += _img(d.out, "kernels.png", "kernels")
    return _concept(d, "Convolution kernels and pooling", text, m, figs)


def _q4_augmentation(d: ReportData) -> str:
    au, runs = _got(d, "augmentation", "unchanged_share"), _got(d, "augmentation_runs", "on")
    text = ("Training on altered copies (shifted, flipped, noisy) teaches the network that these"
            " changes do not change the class; <code>--jitter σ</code> adds fresh Gaussian noise"
            " to the training inputs every epoch.")
    m = ""
    if runs:
        m = (f"Trained {runs['epochs']} epochs without and with <code>--jitter "
             f"{runs['sigma']:g}</code>: test accuracy {runs['off']['test_acc']:.3f} → "
             f"{runs['on']['test_acc']:.3f}, test loss {_num(runs['off']['test_loss'])} → "
             f"{_num(runs['on']['test_loss'])}. ")
    elif "augmentation_runs" in d.summary["q4"]:
        m = _why(d, "augmentation_runs") + " "
    m += (f"This run's test predictions stay unchanged under input noise of {au['sigma']:g} "
          f"standard deviations in {100 * au['unchanged_share']:.1f}% of 50 draws."
          if au else _why(d, "augmentation"))
    figs = (_img(d.out, "augmentation_off_map.png", "trained without jitter")
            + _img(d.out, "augmentation_map.png", "trained with jitter"))
    return _concept(d, "Data augmentation", text, m, f"<div class='pair'>{figs}</div>")


def _q4_softmax(d: ReportData) -> str:
    sm = _got(d, "softmax", "test_acc")
    text = ("For K classes the output layer has K units and the softmax turns their sums into "
            "probabilities that are positive and add up to 1." + _math(SOFTMAX_MML)
            + prose("For K = 2 it is the sigmoid: with the sums (0, α) the second "
                    "probability is e^α / (1 + e^α) = 1 / (1 + e^(−α)) = S(α), so the problem "
                    "set's single sigmoid output already is a 2-class softmax. Its usual partner "
                    "is the cross-entropy loss, with which the output error is simply δ = β − y."
                    " Whether the probabilities are calibrated (an output of 0.8 right 80% of "
                    "the time) depends on that loss: the squared error of the problem set does "
                    "not aim for it, the cross-entropy does."))
    m = (f"A 2-7-3 softmax network with cross-entropy on three Gaussian blobs: test accuracy "
         f"{sm['test_acc']:.3f} (the 2-class identity above checked numerically: largest "
         f"difference {sm.get('sigmoid_vs_two_class_softmax', 0):.1g} over α ∈ [−30, 30])."
         if sm else _why(d, "softmax"))
    return _concept(d, "Softmax", text, m, _img(d.out, "softmax_map.png", "softmax map"))


def _files(d: ReportData) -> str:
    rows = []
    for n in d.files:
        p = os.path.join(d.out, n)
        size = (_OWN_SIZE + " (this page)" if n == "report.html" else
                _kb(os.path.getsize(p)) if os.path.exists(p) else "")
        rows.append([f"<a href='{html.escape(n)}'><code>{html.escape(n)}</code></a>", size])
    if "report.html" not in d.files:
        rows.append(["<a href='report.html'><code>report.html</code></a>",
                     _OWN_SIZE + " (this page)"])
    rows.append(["<a href='summary.json'><code>summary.json</code></a>",
                 "every number of this page (and the timings)"])
    return "<h2 id='files'>Files</h2>" + _table(["file", "size"], rows)
