"""``scratchnet ps5 --notebook``: the report's steps redone with the Python API, as a Jupyter
notebook (``report.ipynb``, written with nbformat) that runs from the report folder.

Every cell calls the public API (``TrainConfig``, ``prepare``, ``train``, ``derive``,
``worked_step``, the plots); the last cell compares the notebook's own numbers with the
report's ``summary.json`` next to it, so a student can check that the two agree.
"""
from __future__ import annotations

import json

from ..core.io import write_text

# Config fields the notebook passes on (the others keep their defaults).
_SKIP = {"log_every", "monitor"}


def _config_literal(config) -> str:
    d = {k: v for k, v in config.to_dict().items() if k not in _SKIP}
    d["hidden"] = tuple(d["hidden"])
    if d.get("features") is not None:
        d["features"] = tuple(d["features"])
    defaults = type(config)().to_dict()
    defaults["hidden"] = tuple(defaults["hidden"])
    args = [f"{k}={v!r}" for k, v in d.items() if defaults.get(k) != v]
    return "TrainConfig(" + ", ".join(args + ["log_every=0"]) + ")"


def _cells(config) -> list[tuple[str, str]]:
    """(kind, source) of every cell, in order."""
    cfg = _config_literal(config)
    return [
        ("markdown", "# Problem set 5, step by step\n\nThis notebook redoes the report's steps "
         "with scratchnet's Python API. Run it from the report folder: its last cell checks "
         "its numbers against `summary.json`."),
        ("code", "import json\nimport numpy as np\nimport matplotlib.pyplot as plt\n"
         "from scratchnet import TrainConfig, train\nfrom scratchnet.training.train import "
         f"prepare\n\nconfig = {cfg}\nprep = prepare(config)\nlayout, prob = prep.layout, "
         "prep.problem\nprint(layout.describe(), 'network,', layout.n_params, 'weights;', "
         "len(prob.y_train), 'training rows,', len(prob.y_test), 'test rows')"),
        ("markdown", "## Question 1: the derivation\n\nGenerated with sympy and checked "
         "against the engine's gradient at the starting weights."),
        ("code", "from scratchnet.core.backprop import loss_and_grad\nfrom scratchnet.core."
         "network import init_weights\nfrom scratchnet.report.derive import derive\n\n"
         "der = derive(layout, config.loss)\nw0 = init_weights(layout, config.init, "
         "config.seed)\n_, g = loss_and_grad(layout, config.loss, w0, prob.x_train, prob.y_train)\n"
         "print(len(der.weights), 'formulas; largest difference to the engine:',\n"
         "      np.max(np.abs(der.gradient(w0, prob.x_train, prob.y_train) - g)))"),
        ("markdown", "## One step worked in numbers\n\nα, β and δ of every unit for training "
         "row 1, and the first weights before and after one step."),
        ("code", "from scratchnet.report.worked import worked_step\n\nst = worked_step(layout,"
         " config.loss, w0, prob.x_train, prob.y_train, config.lr)\nfor unit, a, b, d in "
         "st.unit_rows():\n    print(f'{unit:>4}  α={a:+.5f}  β={b:.5f}  δ={d:+.3e}')\n"
         "for k in range(3):\n    print(layout.weight_name(k), f'{st.w[k]:+.6f} → "
         "{st.w_next[k]:+.6f}')"),
        ("markdown", "## Question 2: training"),
        ("code", "result = train(config)\nf = result.final\nprint({k: f[k] for k in "
         "('epochs', 'train_loss', 'test_loss', 'train_acc', 'test_acc')})\n"
         "fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))\n"
         "ax[0].plot(result.history.train_loss); ax[0].set_title('training loss')\n"
         "ax[1].plot(result.history.test_loss); ax[1].set_title('test loss')\n"
         "for a in ax: a.set_xlabel('epoch')\nplt.show()"),
        ("markdown", "## The problem set's own procedure\n\nStandardized 0/1 labels leave a "
         "loss floor; the accuracy read at the standardized midpoint and at 0.5."),
        ("code", "from scratchnet.report.experiments import student_run\n\n"
         "student = student_run(config, result).summary\n"
         "print('floor', student.get('floor'), '| accuracy at the midpoint', "
         "student.get('acc_midpoint'), '| at 0.5', student.get('acc_half'))"),
        ("markdown", "## Question 3: the PyTorch twin\n\nThe same network in PyTorch, from "
         "the same initial weights, the same loss and the same standardized rows, for the "
         "first epochs; both weight vectors should agree to rounding."),
        ("code", "import importlib.util\nfrom dataclasses import replace\n\n"
         "n = min(config.epochs, 1000)\nif importlib.util.find_spec('torch') is None:\n"
         "    print('PyTorch is not installed: pip install \"scratchnet[torch]\"')\n"
         "elif not config.plain_gd():\n    print('the twin trains plain gradient descent "
         "only')\nelse:\n"
         "    from scratchnet.trust.twin import train_twin\n"
         "    tw = train_twin(prep, config, w0=w0, dtype='float64', epochs=n)\n"
         "    mine = train(replace(config, epochs=n)).model.w\n"
         "    print(f'after {n} epochs: largest weight difference', np.max(np.abs(tw.w - "
         "mine)))"),
        ("markdown", "## Question 4: two concepts changed and measured\n\nSaturated hidden "
         "units at the starting weights, raw inputs against standardized ones; and η pushed "
         "until training diverges (with a linear output, which can)."),
        ("code", "from scratchnet.report.experiments import (learning_rate_experiment,\n"
         "                                              vanishing_experiment)\n\n"
         "v = vanishing_experiment(config, prep)\nprint('saturated hidden units: raw inputs',"
         " np.mean(v['saturated_raw']), '| standardized', np.mean(v['saturated_standardized']))"
         "\nif config.plain_gd() and layout.sizes[-1] == 1:\n"
         "    lr = learning_rate_experiment(config, prep, min(config.epochs, 2000),\n"
         "                                  (1, 10, 100, 1000))\n"
         "    for eta, te, bad in zip(lr['lrs'], lr['final_test_loss'], lr['diverged']):\n"
         "        print(f'η = {eta:g}:', 'diverged' if bad else f'test loss {te:.4g}')"),
        ("markdown", "## The same numbers as the report?"),
        ("code", "with open('summary.json') as fh:\n    s = json.load(fh)\n"
         "mine = {'train_loss': f['train_loss'], 'test_loss': f['test_loss'],\n"
         "        'test_acc': f['test_acc'], 'floor': student.get('floor')}\n"
         "theirs = {'train_loss': s['final']['train_loss'], 'test_loss': s['final']"
         "['test_loss'],\n          'test_acc': s['final']['test_acc'], 'floor': "
         "(s.get('student') or {}).get('floor')}\nprint(json.dumps({'notebook': mine, "
         "'report': theirs}))\nfor k in mine:\n    assert mine[k] is None or abs(mine[k] - "
         "theirs[k]) <= 1e-9 * max(1.0, abs(theirs[k])), k\nprint('the notebook agrees "
         "with summary.json')"),
    ]


def notebook_json(config) -> str:
    """The notebook as JSON text (nbformat 4)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "markdown"
                else nbformat.v4.new_code_cell(src) for kind, src in _cells(config)]
    nbformat.validate(nb)
    return nbformat.writes(nb)


def write_notebook(config, path: str) -> None:
    text = notebook_json(config)
    json.loads(text)  # always valid JSON
    write_text(path, text)
