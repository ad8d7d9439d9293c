"""The PS5 report's page: ``render_html`` turns the report's summary, result and derivation
into one self-contained HTML page — images as base64, mathematics as MathML (browsers render
it natively), no script and no link outside the page."""
from __future__ import annotations

import base64
import html
import math
import os

import numpy as np

CSS = """
body{font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 color:#1d1d1f;max-width:1040px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:1.9em;margin:.2em 0 .1em}h2{margin-top:2.2em;border-bottom:2px solid #6a3d9a;
 padding-bottom:.2em}h3{margin-top:1.6em}figure{margin:1.2em 0;text-align:center}
figure img{max-width:100%;height:auto;border:1px solid #eee;border-radius:4px}
figcaption{font-size:.9em;color:#555;margin-top:.4em;text-align:left}
.lead{color:#444}.cards{display:flex;flex-wrap:wrap;gap:12px;margin:1em 0}
.card{flex:1 1 150px;border:1px solid #ddd;border-radius:8px;padding:10px 14px;background:#faf9fc}
.card b{display:block;font-size:1.35em}.card span{color:#666;font-size:.85em}
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


def _loss_floor(result) -> float:
    """The smallest training loss the output can reach: targets outside the output's range
    (the problem set's standardized −0.98 / +1.02 under a sigmoid) leave a floor above 0."""
    from ..core.activations import ACTIVATIONS

    act = ACTIVATIONS[result.prepared.layout.output]
    y = result.prepared.problem.y_train
    if result.config.loss != "sse":
        return 0.0
    return float(0.5 * np.sum((y - np.clip(y, act.low, act.high)) ** 2))


def render_html(s: dict, result, der, out: str, files: list[str]) -> str:
    """The report page: Questions 1–4 in order, every number from this run."""
    from .. import __version__
    from ..core.losses import LOSSES

    c, f, lay = result.config, s["final"], result.prepared.layout
    ds, prep = result.prepared.dataset, result.prepared
    e = html.escape
    H: list[str] = []
    add = H.append
    acts = ", ".join(dict.fromkeys(lay.activations)) or "none"
    add(f"<h1>PS5, done right</h1><p class='lead'>scratchnet {__version__} · data <b>{e(ds.source)}"
        f"</b> ({len(ds.y)} rows; features {e(', '.join(ds.feature_names))}; "
        f"{len(prep.train_idx)} train / {len(prep.test_idx)} test) · network <b>"
        f"{lay.describe()}</b> ({lay.n_params} weights, {acts} hidden, {lay.output} output, "
        f"loss {c.loss}) · {f['epochs']} epochs, η = {c.lr:g} · {result.engine} engine</p>")
    cards = [("train loss", _num(f["train_loss"])), ("test loss", _num(f["test_loss"])),
             ("train accuracy", _num(f["train_acc"], ".3f")),
             ("test accuracy", _num(f["test_acc"], ".3f")),
             ("training time", f"{result.seconds:.2f} s")]
    add("<div class='cards'>" + "".join(f"<div class='card'><b>{v}</b><span>{k}</span></div>"
                                        for k, v in cards) + "</div>")
    if "diverged" in s:
        add(f"<p class='note'>{e(s['diverged'])}. Everything below shows the epochs before it."
            "</p>")
    if result.stopped == "interrupted":
        add(f"<p class='note'>Training was interrupted after {f['epochs']} epochs; the report "
            "shows what was trained.</p>")
    add("<p class='toc'><a href='#q1'>Question 1</a><a href='#q2'>Question 2</a>"
        "<a href='#q3'>Question 3</a><a href='#q4'>Question 4</a><a href='#files'>Files</a></p>")

    # Question 1
    add("<h2 id='q1'>Question 1 — the data, the network, the derivation</h2>")
    add(_img(out, "data.png", "the data", "The raw data by class. Class colours are the same in "
             "every figure of this page."))
    add("<p>The network has one hidden layer of sigmoid units in the problem set; here "
        f"<b>{lay.describe()}</b>. Its units use</p>" + _math(SIGMOID_MML))
    add(_img(out, "network.svg", "the network", "The network drawn with daft-pgm "
             "(<code>scratchnet diagram</code>). Edge labels are the weights' numbers in the "
             "problem set's order: " + e("; ".join(_weight_ranges(lay)[:12]))
             + ("; …" if len(_weight_ranges(lay)) > 12 else "") + "."))
    d = s["derivation"]
    add("<h3>Backpropagation, derived</h3><p>Generated from the architecture with sympy "
        "(<code>scratchnet derive</code>; also <code>derivation.md</code>). Checked here: "
        f"the {d['formulas']} formulas, evaluated on the training rows at the final weights, "
        f"give the engine's gradient to within {d['max_abs_diff_vs_engine']:.1e} "
        f"(largest gradient entry {d['max_abs_gradient']:.3g}).</p>")
    add("<div class='derivation'>" + der.to_html(heading_level=4) + "</div>")

    # Question 2
    add("<h2 id='q2'>Question 2 — training the network</h2>")
    std = ("the <b>whole</b> data set's mean and std, and the 0/1 targets too — exactly as the "
           "problem set did (<code>--faithful</code>)" if c.faithful else
           "the <b>training rows'</b> mean and std (the test rows stay unseen; "
           "<code>--faithful</code> reproduces the problem set's whole-data standardizing)")
    init = ("<code>np.random.seed({0}); np.random.randn({1})</code> — the problem set's draw"
            .format(c.seed, lay.n_params) if c.init == "normal" else f"{c.init} (seed {c.seed})")
    add(f"<p>Split: {len(prep.test_idx)} of {len(ds.y)} rows held out, the same rows as "
        f"scikit-learn's <code>train_test_split(test_size={c.test_size:g}, random_state="
        f"{c.split_seed})</code>. Inputs standardized with {std}. Initial weights: {init}. "
        f"Each epoch records the train and test loss of the current weights, then updates every "
        f"weight from the same old weights:</p>" + _math(UPDATE_MML))
    every = c.log_every or 1000
    rows = [[str(t), _num(result.history.train_loss[t], ".6f"),
             _num(result.history.test_loss[t], ".6f"), _num(result.history.train_acc[t], ".3f"),
             _num(result.history.test_acc[t], ".3f")]
            for t in range(0, len(result.history), every)]
    head = ["epoch", "train loss", "test loss", "train acc", "test acc"]
    add("<h3>Training log</h3>" + _table(head, rows[:6]))
    if len(rows) > 6:
        add(f"<details><summary>all {len(rows)} lines (every {every} epochs)</summary>"
            + _table(head, rows) + "</details>")
    add(_img(out, "losses.png", "loss curves", "Training and test loss against epoch, as the "
             "problem set plots them; the dot marks the lowest test loss (a test loss that rises "
             "afterwards means the network starts to fit the training rows' noise)."))
    cm = s["confusion"]
    add("<h3>Final numbers</h3>" + _table(
        ["", "loss", "accuracy"],
        [["train", _num(f["train_loss"]), _num(f["train_acc"], ".3f")],
         ["test", _num(f["test_loss"]), _num(f["test_acc"], ".3f")]])
        + "<div style='display:flex;gap:2em;flex-wrap:wrap'>"
        + _confusion_html(cm["labels"], cm["train"], "train")
        + _confusion_html(cm["labels"], cm["test"], "test") + "</div>")
    add(_img(out, "decision_map.png", "decision map", "The smooth map of classification: the "
             "predicted probability on a grid over the raw data range. The grid is standardized "
             "with the <b>model's training statistics</b> (stored in model.json), so the map and "
             "the points are in the same place. The problem set standardized its grid with the "
             "grid's own mean and std, which shifts and stretches the map against the data. "
             "Circles: training rows; diamonds: test rows."))
    add(_img(out, "hidden_units.png", "hidden units", "What every hidden unit computes over the "
             "same grid. A sigmoid unit is a soft step across one straight line (dashed, "
             "α = 0); the output combines them with the weights shown in the titles into the "
             "curved border."))

    # Question 3
    add("<h2 id='q3'>Question 3 — the same network in PyTorch</h2>")
    t = s["torch"]
    add("<p>The problem set rebuilt the network in PyTorch and got a different map and a test "
        "loss that rose again, and could not say why. Its PyTorch network differed from the "
        "numpy one in four ways, each enough to change the numbers: no sigmoid on the output; "
        "<code>MSELoss(reduction='sum')</code> = Σ(ŷ − y)², twice the ½Σ of Question 2, so "
        "every step was 2η; PyTorch's own initial weights instead of w1..w29; and a map grid "
        "passed to the model unstandardized. The twin (<code>scratchnet.trust.twin</code>) removes "
        "all four: same layers and output activation, the same loss, the same initial weights, "
        "the same standardized rows.</p>")
    if "skipped" in t:
        add(f"<p class='note'>The PyTorch comparison was skipped: {e(t['skipped'])}. The rest of "
            "the report does not need it.</p>")
    else:
        add(f"<p class='measured'>Trained from the same initial weights for the first "
            f"{t['epochs']} epochs in {t['dtype']} ({t['seconds']:.1f} s): the largest "
            f"difference in the training loss was {t['max_abs_train_loss_diff']:.1e}, in the "
            f"test loss {t['max_abs_test_loss_diff']:.1e}, in any weight "
            f"{t['max_abs_weight_diff']:.1e}"
            + (f", in the map's probabilities {t['max_abs_map_diff']:.1e}"
               if "max_abs_map_diff" in t else "")
            + ". Done right, the two are the same network.</p>")
        add(_img(out, "torch_losses.png", "torch losses", "The engine's losses (solid) and the "
                 "twin's (dashed) over the same epochs: the curves lie on top of each other."))
        add(_img(out, "torch_decision_map.png", "torch map", f"The twin's map after its "
                 f"{t['epochs']} epochs (grid standardized with the training statistics). The "
                 "engine's map after the same epochs is the same map"
                 + (f" (largest difference {t['max_abs_map_diff']:.1e})"
                    if "max_abs_map_diff" in t else "")
                 + (f"; the map of Question 2 is after all {f['epochs']}."
                    if t["epochs"] < f["epochs"] else ".")))

    # Question 4
    add("<h2 id='q4'>Question 4 — the concepts, measured in this run</h2>")
    q = s["q4"]

    def concept(title, text, measured, fig=""):
        add(f"<div class='q4'><h3>{title}</h3><p>{text}</p>"
            + (f"<p class='measured'>{measured}</p>" if measured else "") + fig + "</div>")

    def done(key, field):  # the measurement, or None with the reason shown instead
        m = q.get(key) or {}
        return m if field in m else None

    def why(key):
        return f"Not measured: {e(str((q.get(key) or {}).get('skipped', 'not run')))}."

    lin = q.get("linear") or {}
    concept("Activation function", "A unit passes its weighted sum α through a non-linear f. "
            "Without it every layer is linear and so is the whole network: its border between "
            "the classes can only be a straight line.",
            (f"The same network with identity hidden units, trained the same {lin['epochs']} "
             f"epochs: train loss {_num(lin['train_loss'])}, accuracy "
             f"{_num(lin['train_acc'], '.3f')} on the training rows and "
             f"{_num(lin['test_acc'], '.3f')} on the test rows — against "
             f"{_num(f['train_loss'])}, {_num(f['train_acc'], '.3f')} and "
             f"{_num(f['test_acc'], '.3f')} with {acts} units.")
            if "test_acc" in lin else why("linear"))
    gc = done("gradient_check", "max_abs_diff")
    concept("Backpropagation", "The chain rule applied backwards, layer by layer: the output "
            "error δ = ∂E/∂α is sent back through the weights and multiplied by each unit's "
            "slope; every weight's gradient is its δ times its input (the derivation above).",
            (f"At the final weights the backpropagated gradient and central finite differences "
             f"agree to {gc['max_abs_diff']:.1e} (largest entry {gc['max_abs_gradient']:.3g}); "
             f"the sympy formulas agree with it to {d['max_abs_diff_vs_engine']:.1e}.")
            if gc else why("gradient_check"))
    lr = q.get("learning_rates")
    if lr and "skipped" in lr:
        concept("Learning rate", "η scales every step. Too small and training crawls; too "
                "large and the steps overshoot: the loss oscillates or explodes.",
                why("learning_rates"))
    elif lr:
        div = [f"{v:g}" for v, dv in zip(lr["lrs"], lr["diverged"]) if dv]
        rows = [[f"{v:g}" + (" (chosen)" if np.isclose(v, c.lr) else ""),
                 "diverged" if dv else _num(fl)]
                for v, fl, dv in zip(lr["lrs"], lr["final_train_loss"], lr["diverged"])]
        fin = np.where(lr["diverged"], np.inf, np.asarray(lr["final_train_loss"], float))
        best = float(lr["lrs"][int(np.argmin(fin))])
        concept("Learning rate", "η scales every step. Too small and training crawls; too "
                "large and the steps overshoot: the loss oscillates or explodes.",
                f"The same network trained {lr['epochs']} epochs with {len(lr['lrs'])} values of "
                f"η from {lr['lrs'][0]:g} to {lr['lrs'][-1]:g}, all at once "
                f"(<code>train_ensemble</code>). The lowest training loss came from η = "
                f"{best:g}" + (f" ({best / c.lr:g}× the chosen {c.lr:g})" if best != c.lr else
                               " — the chosen value") + ". "
                + (f"Diverged: η = {', '.join(div)}." if div else
                   "None diverged within these epochs: with a sigmoid output and the squared "
                   "error, the output's slope ŷ(1 − ŷ) shrinks as it saturates and damps big "
                   "steps."),
                _img(out, "learning_rates.png", "learning rates")
                + "<details><summary>the numbers</summary>"
                + _table(["η", f"train loss after {lr['epochs']} epochs"], rows) + "</details>")
    mon = done("monitor", "grad_norms")
    G, S = (np.asarray(mon["grad_norms"]), np.asarray(mon["saturated"])) if mon else \
        (np.zeros(0), np.zeros(0))
    txt = "" if mon else why("monitor")
    if G.size:
        txt = (f"At epoch 0 the gradient of the first weight layer is "
               f"{G[0, 0]:.3g} and of the last {G[0, -1]:.3g}; at the end {G[-1, 0]:.3g} "
               f"and {G[-1, -1]:.3g}.")
    if S.size:
        txt += (f" Saturated hidden units (slope below 10% of its maximum): "
                f"{100 * S[0].mean():.1f}% at the start, {100 * S[-1].mean():.1f}% at the end.")
    concept("Vanishing gradients", "Each layer multiplies the error by a slope f′ — for the "
            "sigmoid β(1 − β) ≤ ¼, and ≈ 0 when the unit saturates (β near 0 or 1, from large "
            "weights or unstandardized inputs). Multiplied over layers the gradient reaching the "
            "first weights shrinks and they stop learning.", txt,
            _img(out, "monitor.png", "gradient norms"))
    init_w = s["init_w"]
    rows = [[e(lay.weight_name(k)), f"{init_w[k]:+.4f}", f"{result.model.w[k]:+.4f}"]
            for k in range(min(lay.n_params, 60))]
    biases = [k for k in range(lay.n_params) if lay.weight_index(k)[1] == 0]
    concept("Weights and biases", "A weight says how much one unit's output matters to the "
            "next unit; the bias weight (from the constant node b) shifts where the unit's "
            "step sits, so borders need not pass through the origin.",
            f"Largest |weight| after training: {np.max(np.abs(result.model.w)):.3g} (initially "
            f"{np.max(np.abs(init_w)):.3g}); {len(biases)} of the {lay.n_params} weights are "
            "biases.",
            "<details><summary>every weight, initial and final</summary>"
            + _table(["weight", "initial", "final"], rows) + "</details>")
    floor = _loss_floor(result)
    concept("Loss", f"This run minimizes {e(LOSSES[c.loss].formula)}, summed over the rows. "
            "Training lowers it on the training rows; the test loss tells whether that "
            "generalizes.",
            f"Final train loss {_num(f['train_loss'])}, test loss {_num(f['test_loss'])}. "
            + (f"The targets lie outside the output's range (standardized as the problem set "
               f"did), so the training loss can never go below {floor:.4g}."
               if floor > 0 else "The targets are reachable: the loss can approach 0."))
    kq = done("kernels", "grid_shape")
    if "kernels" in q and not kq:
        concept("Convolution kernels and pooling", "A CNN slides a small kernel over an image "
                "and pools neighbouring responses.", why("kernels"))
    if kq:
        concept("Convolution kernels and pooling", "A CNN slides a small kernel over an image "
                "and pools neighbouring responses. Applied to this run's map as an image: the "
                "3×3 Sobel kernel responds where the probability changes — the border — and "
                "max pooling keeps the strongest value of each block at a fraction of the "
                "pixels.",
                f"Mean probability where the kernel responds most (top 2%): "
                f"{kq['mean_p_at_strongest_edges']:.2f} — on the border. Pooling: "
                f"{kq['grid_shape'][1]}×{kq['grid_shape'][0]} → {kq['pooled_shape'][1]}×"
                f"{kq['pooled_shape'][0]} pixels.", _img(out, "kernels.png", "kernels"))
    au = done("augmentation", "unchanged_share")
    concept("Data augmentation", "Training on altered copies (shifted, flipped, noisy) teaches "
            "the network that these changes do not change the class"
            + (" (<code>--jitter σ</code> adds fresh noise to the training inputs every epoch)"
               if hasattr(c, "jitter") else "") + ".",
            (f"Test predictions unchanged when the inputs get noise of {au['sigma']:g} standard "
             f"deviations: {100 * au['unchanged_share']:.1f}% (50 draws).") if au
            else why("augmentation"))
    sm = done("softmax", "test_acc")
    concept("Softmax", "For K classes the output layer has K units and the softmax turns their "
            "sums into probabilities that are positive and add up to 1; trained with "
            "cross-entropy its output error is simply δ = β − y." + _math(SOFTMAX_MML),
            (f"A 2-7-3 softmax network on three Gaussian blobs: test accuracy "
             f"{sm['test_acc']:.3f}; its probabilities sum to 1 within "
             f"{sm['max_abs_sum_minus_1']:.1e}.") if sm else why("softmax"),
            _img(out, "softmax_map.png", "softmax map"))

    # files and timings
    add("<h2 id='files'>Files and timings</h2>")
    rows = [[f"<code>{e(n)}</code>", f"{os.path.getsize(os.path.join(out, n)) / 1024:.1f} kB"
             if os.path.exists(os.path.join(out, n)) else ""] for n in files]
    add(_table(["file", "size"], rows + [["<code>report.html</code>", "this page"],
                                         ["<code>summary.json</code>", ""]]))
    add(_table(["step", "seconds"], [[e(k), f"{v:.2f}"] for k, v in s["timings"].items()]))
    body = "\n".join(x for x in H if x)
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>PS5 report — {lay.describe()} on {e(ds.source)}</title><style>{CSS}</style>"
            f"</head><body>{body}</body></html>\n")
