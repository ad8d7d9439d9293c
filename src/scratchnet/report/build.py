"""``scratchnet ps5``: everything the problem set's notebook shows, done right, in one folder.

    build_report(config, "ps5-report")  →  report.html (one self-contained page) + its parts:
    data.png, network.png/.svg, derivation.md, losses.png, decision_map.png, hidden_units.png,
    torch_losses.png, torch_decision_map.png, monitor.png, learning_rates.png, softmax_map.png,
    kernels.png, learned_kernels.png, model.json, history.csv, summary.json

The training is the engine's (``train.train``, the compiled path when available).  It runs in
segments between a few log-spaced epochs, each segment continuing from the last one's weights —
bit-identical to one call for plain gradient descent — so that the weights at those epochs are
kept for Question 4's gradient-norm and saturation curves.  Every other step is measured and
the times land in ``summary.json``.  The page needs no network: images are embedded as base64,
the mathematics is MathML, which browsers render natively.
"""
from __future__ import annotations

import importlib.util
import math
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace

import numpy as np

from ..cnn.net import CNNConfig, forward_all, train_cnn
from ..core.backprop import loss_and_grad, numeric_grad
from ..core.errors import DivergedError, ScratchnetError
from ..core.io import write_json, write_text
from ..core.model import Model
from ..core.network import init_weights
from ..engines.ensemble import train_ensemble
from ..training import train as train_module
from ..training.monitor import layer_gradient_norms, saturated_share
from ..training.run import deferred_interrupts
from ..training.train import TrainConfig, train
from ..trust import twin
from . import experiments as ex
from . import plots
from .derive import derive
from .diagram import network_figure
from .experiments import grid_standardized_model, student_run
from .html import ReportData, render_html
from .notebook import write_notebook
from .worked import worked_step

AUX_FACTORS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)  # η × these, compared


@dataclass
class ReportOptions:
    log_y: bool = False  # loss curves on a log scale
    torch_epochs: int = 10_000  # the twin's epochs (0 = no twin); PyTorch is ~0.2 ms/epoch
    aux_epochs: int = 20_000  # epochs of the η comparison (0 = none)
    snapshots: int = 40  # log-spaced epochs whose weights are kept for Question 4
    verbose: bool = False  # print the problem set's loss line every log_every epochs
    exercise: bool = False  # derivation, worked step and Q4 answers behind "show solution"
    notebook: bool = False  # also report.ipynb (the steps with the Python API)
    pdf: bool = False  # also report.pdf (headless Chromium)
    progress: object = None  # progress(done, total, train_loss, test_loss)
    status: object = None  # status(step name) when a report step starts


@dataclass
class Report:
    out: str
    summary: dict
    files: list[str] = field(default_factory=list)
    code: int = 0  # 0, 2 = diverged (what was trained is reported), 130 = interrupted


# ---- training with snapshots -------------------------------------------------------------------


def snapshot_epochs(epochs: int, n: int = 40, extra=()) -> list[int]:
    """0, the last epoch, ``n`` log-spaced epochs between and ``extra``."""
    pts = {0, int(epochs)} | {int(e) for e in extra if 0 <= e <= epochs}
    if epochs > 0:
        pts |= set(np.unique(np.round(np.geomspace(1, epochs, n)).astype(int)).tolist())
    return sorted(pts)


def _is_plain(config) -> bool:
    return config.plain_gd() if hasattr(config, "plain_gd") else True


def train_with_snapshots(config, marks, progress=None, on_log=None):
    """``train(config)`` as one :class:`~scratchnet.training.run.Run`, advanced up to each of
    the epochs ``marks`` in turn; returns (TrainResult, {epoch: weights after that many
    updates}).  The Run keeps every engine's state between advances (momentum, Adam's moments,
    schedules), so the numbers are those of one ``train`` call for every optimizer.  A diverged
    run raises :class:`DivergedError` with train()'s message (the absolute epoch) whose
    ``result`` is (TrainResult, snapshots) for the epochs before it."""
    if not _is_plain(config) and hasattr(config, "monitor"):
        config = replace(config, monitor=True)  # Question 4's curves: recorded every epoch
    prep = train_module.prepare(config)
    run = train_module.start_run(config, prep)
    snaps = {0: run.w.copy()}
    t0 = time.perf_counter()
    try:
        for mark in sorted(set(int(m) for m in marks if 0 < m <= config.epochs)):
            while run.epoch < mark and not run.finished and run.stopped != "interrupted":
                seen = run.recorded
                run.advance(min(run.slice, mark - run.epoch))
                if run.stopped in ("diverged", "interrupted"):
                    break
                train_module._report(run, seen, config, on_log, progress)
            if run.stopped in ("diverged", "interrupted"):
                break
            snaps[mark] = run.w.copy()
    except KeyboardInterrupt:
        run.stopped = "interrupted"
    result = train_module._result(run, config, prep, time.perf_counter() - t0)
    if run.diverged_at is not None:
        raise train_module.diverged_error(run, config, (result, snaps))
    return result, snaps


# ---- measurements ----------------------------------------------------------------------------


def confusion(model, X, y, classes) -> list[list[int]]:
    """Rows: true class, columns: predicted class (in the order of ``classes``)."""
    K = len(classes)
    t = np.searchsorted(classes, y)
    p = np.searchsorted(classes, model.predict(X))
    m = np.zeros((K, K), int)
    np.add.at(m, (t, p), 1)
    return m.tolist()


def monitor_series(result, snaps):
    """(epochs, grad norms (T, L), saturated share (T, H)) over training."""
    layout, prob = result.prepared.layout, result.prepared.problem
    mon = getattr(result, "monitor", None)
    if mon is not None and len(mon.get("epoch", ())) > 0:  # the general loop recorded every epoch
        ep = np.asarray(mon["epoch"])
        keep = np.unique(np.round(np.geomspace(1, max(ep.size, 1), 40)).astype(int) - 1)
        return ep[keep], np.asarray(mon["grad_norms"])[keep], np.asarray(mon["saturated"])[keep]
    epochs = sorted(snaps)
    G = [layer_gradient_norms(layout, result.config.loss, snaps[e], prob.x_train, prob.y_train)
         for e in epochs]
    S = [saturated_share(layout, snaps[e], prob.x_train) for e in epochs]
    return np.array(epochs), np.array(G), np.array(S).reshape(len(epochs), -1)


def lr_comparison(config, prepared, epochs: int):
    """Training loss curves for η × AUX_FACTORS, all networks at once (train_ensemble)."""
    lrs = np.array([config.lr * f for f in AUX_FACTORS])
    every = max(1, epochs // 400)
    ens = train_ensemble(replace(config, epochs=epochs), seeds=config.seed, lrs=lrs,
                         prepared=prepared, record_every=every, epochs=epochs)
    return lrs, ens.train_loss, ens.epochs, ens.final["train_loss"], ens.diverged


def softmax_example(epochs: int = 2000):
    """Question 4's softmax: a 2-7-3 softmax / cross-entropy network on three Gaussian blobs."""
    cfg = TrainConfig(data="gaussians", n_classes=3, output="softmax", loss="ce", hidden=(7,),
                      lr=1e-3, epochs=epochs, log_every=0)
    return train(cfg)


def jitter_stability(model, X, sigma: float = 0.1, draws: int = 50, seed: int = 0) -> float:
    """Share of predictions unchanged when the standardized inputs get N(0, σ²) noise — the
    invariance data augmentation trains for."""
    rng = np.random.RandomState(seed)
    base = model.predict(X)
    std = model.x_scaler.std if model.x_scaler is not None else np.ones(X.shape[1])
    same = [np.mean(model.predict(X + sigma * std * rng.randn(*X.shape)) == base)
            for _ in range(draws)]
    return float(np.mean(same))


def _finite(v):
    """JSON-safe: numpy → Python, NaN/inf → None."""
    if isinstance(v, dict):
        return {str(k): _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    if isinstance(v, np.ndarray):
        return _finite(v.tolist())
    if isinstance(v, (np.floating, float)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


# ---- the report --------------------------------------------------------------------------------


class _Steps:
    """Times the report's steps; ``guard`` steps (Question 4's side measurements) that fail are
    recorded and reported instead of stopping the report."""

    def __init__(self, status=None):
        self.times: dict[str, float] = {}
        self.errors: dict[str, str] = {}
        self.status = status
        self.current: str | None = None  # the step running now (where an interrupt landed)

    def __call__(self, name, into: dict | None = None, key: str | None = None):
        steps = self

        class _Step:
            def __enter__(self):
                steps.current = name
                if steps.status is not None:
                    steps.status(name)
                self.t0 = time.perf_counter()

            def __exit__(self, kind, exc, tb):
                steps.times[name] = steps.times.get(name, 0.0) + time.perf_counter() - self.t0
                if into is None or kind is None or not issubclass(kind, Exception):
                    return False
                why = f"{kind.__name__}: {exc}"
                steps.errors[name] = why
                into[key] = {"skipped": f"it failed ({why})"}
                print(f"scratchnet ps5: {name} failed ({why}); the report goes on",
                      file=sys.stderr)
                return True

        return _Step()


class _Folder:
    """The output folder: every file written through it is listed, figures are timed."""

    def __init__(self, out: str):
        self.out = out
        self.files: list[str] = []
        self.fig_times: dict[str, float] = {}

    def path(self, name: str) -> str:
        if name not in self.files:
            self.files.append(name)
        return os.path.join(self.out, name)

    def savefig(self, fig, name: str) -> None:
        t0 = time.perf_counter()
        plots.save(fig, self.path(name))
        self.fig_times[name] = time.perf_counter() - t0


def build_report(config, out: str = "ps5-report", options: ReportOptions | None = None) -> Report:
    """Train as ``config`` says and write the whole report into the folder ``out``.

    An interrupt (Ctrl-C, SIGTERM, SIGHUP: ``KeyboardInterrupt``) during the training keeps the
    epochs done, and the report of them is written without the side experiments; one during
    the side experiments keeps those that finished.  Either way ``summary.json`` says
    ``"interrupted": true`` and ``code`` is 130."""
    import matplotlib

    matplotlib.use("Agg")

    opt = options or ReportOptions()
    os.makedirs(out, exist_ok=True)
    T, F = _Steps(opt.status), _Folder(out)
    s: dict = {"config": config.to_dict()}
    n_epochs = int(config.epochs)
    n_twin = min(n_epochs, max(0, int(opt.torch_epochs)))
    with T("training"):
        marks = snapshot_epochs(n_epochs, opt.snapshots, (n_twin,))
        result, snaps, code = _train(config, opt, marks, s)
    t_report = time.perf_counter()  # everything from here on is "the report"
    s.update(torch={"skipped": "the run was interrupted"}, q4={})
    twin = der = student = None
    try:
        with deferred_interrupts():  # the run's own files and Questions 1–2: always whole
            if code != 130:
                with T("torch twin"):  # in a worker process while the figures are drawn
                    twin, skipped = start_twin(config, result, snaps, n_twin)
                s["torch"] = {"skipped": skipped}
            _describe_run(s, result)
            with T("files"):
                result.model.save(F.path("model.json"))
                result.history.to_csv(F.path("history.csv"))
            der = _question1(result, T, F, s)
            _question2(result, opt, T, F, s)
        if code != 130:
            student = _student(config, result, T, F, s)
            _question4(config, result, snaps, opt, T, F, student, s["q4"])
            with T("torch twin"):
                s["torch"] = torch_section(config, result, snaps, n_twin, twin,
                                           s["torch"].get("skipped"), F)
    except KeyboardInterrupt:
        code = 130
        s["interrupted_during"] = T.current
    finally:
        if twin is not None:
            twin.cancel()  # a no-op once its numbers were collected
    with deferred_interrupts():  # the page and summary.json: written whole, then the signal
        _finish(config, opt, result, der, student, T, F, s, code, t_report)
    return Report(out, s, s["files"], code)


def _finish(config, opt, result, der, student, T, F: _Folder, s: dict, code: int,
            t_report: float) -> None:
    """The worked step, report.html, the optional outputs and summary.json."""
    if code == 130:
        s["interrupted"] = True
        s["epochs_done"] = int(result.final["epochs"])
    with T("worked step"):
        worked = _worked(config, result)
    t0 = time.perf_counter()
    data = ReportData(out=F.out, result=result, derivation=der, files=F.files, summary=s,
                      init_w=init_weights(result.prepared.layout, config.init, config.seed),
                      worked=worked, student=student.result if student else None,
                      exercise=opt.exercise)
    write_text(F.path("report.html"), render_html(data))
    T.times["html"] = time.perf_counter() - t0
    s.update(timings=T.times, figure_save_seconds=F.fig_times,
             report_seconds=time.perf_counter() - t_report)
    if T.errors:
        s["errors"] = T.errors
    if code != 130:
        _extras(config, opt, F, s)
    s["files"] = F.files + ["summary.json"]
    write_json(os.path.join(F.out, "summary.json"), _finite(s))


def _extras(config, opt: ReportOptions, F: _Folder, s: dict) -> None:
    """The optional outputs: the notebook and the printed PDF."""
    if opt.notebook:

        write_notebook(config, F.path("report.ipynb"))
    if opt.pdf:
        t0 = time.perf_counter()
        write_pdf(F.out, exercise=opt.exercise)
        F.files.append("report.pdf")
        s["timings"]["pdf"] = time.perf_counter() - t0


def _train(config, opt: ReportOptions, marks, s: dict):
    """(result, snapshots, exit code): the run itself, with the verbose log and progress."""
    def log(t, tr, te):
        if opt.verbose:
            if getattr(opt.progress, "enabled", False):
                sys.stderr.write("\r\033[K")  # clear the progress bar's line first
            print(f"epoch {t:>7}  train loss {tr:.6f}  test loss {te:.6f}", flush=True)

    code = 0
    try:
        result, snaps = train_with_snapshots(config, marks, opt.progress, log)
    except DivergedError as e:
        (result, snaps), code = e.result, 2
        s["diverged"] = str(e)
        s["diverged_at"] = int(re.search(r"at epoch (\d+)", str(e)).group(1))
        s["kept_epoch"] = int(result.final["epochs"])
    if result.stopped == "interrupted":
        code = 130
    return result, snaps, code


def _describe_run(s: dict, result) -> None:
    prep, model = result.prepared, result.model
    ds = prep.dataset
    s.update(
        data={"source": ds.source, "rows": int(len(ds.y)), "features": list(ds.feature_names),
              "target": ds.target_name, "classes": prep.classes.tolist(),
              "n_train": int(len(prep.train_idx)), "n_test": int(len(prep.test_idx))},
        layout=prep.layout.describe(), n_params=prep.layout.n_params, final=result.final,
        training_seconds=result.seconds, engine=result.engine,
        per_row={"train_loss": result.final["train_loss"] / len(prep.train_idx),
                 "test_loss": result.final["test_loss"] / len(prep.test_idx)},
        confusion={"labels": prep.classes.tolist(),
                   "train": confusion(model, ds.X[prep.train_idx], ds.y[prep.train_idx],
                                      prep.classes),
                   "test": confusion(model, ds.X[prep.test_idx], ds.y[prep.test_idx],
                                     prep.classes)})
    rise = test_loss_rise(result.history.test_loss)
    if rise:
        s["test_loss_rise"] = rise


def test_loss_rise(test_loss) -> dict | None:
    """The largest rise of the test loss above its lowest value so far: {from_epoch, from,
    to_epoch, to}, or None when it never rises (over-fitting shows as such a rise)."""
    te = np.asarray(test_loss, float)
    if te.size < 2 or not np.isfinite(te).all():
        return None
    low = np.minimum.accumulate(te)
    t = int(np.argmax(te - low))
    if te[t] - low[t] <= 0:
        return None
    s = int(np.argmin(te[:t + 1]))
    return {"from_epoch": s, "from": float(te[s]), "to_epoch": t, "to": float(te[t])}


def _question1(result, T, F: _Folder, s: dict):
    """The data, the diagram and the derivation (checked against the engine)."""
    prep, model = result.prepared, result.model
    layout, prob = prep.layout, prep.problem
    with T("figures"):
        if prep.dataset.X.shape[1] == 2:
            F.savefig(plots.data_figure(prep.dataset), "data.png")
        net = network_figure(layout)
        F.savefig(net, "network.png")
        F.savefig(net, "network.svg")
    with T("derivation"):
        der = derive(layout, result.config.loss)
        write_text(F.path("derivation.md"), der.to_markdown())
        _, g_engine = loss_and_grad(layout, result.config.loss, model.w, prob.x_train, prob.y_train)
        g_formula = der.gradient(model.w, prob.x_train, prob.y_train)
        s["derivation"] = {"formulas": layout.n_params,
                           "max_abs_diff_vs_engine": float(np.max(np.abs(g_formula - g_engine))),
                           "max_abs_gradient": float(np.max(np.abs(g_engine)))}
    return der


def _question2(result, opt: ReportOptions, T, F: _Folder, s: dict) -> None:
    prep, model, hist = result.prepared, result.model, result.history
    ds = prep.dataset
    with T("figures"):
        rows = (len(prep.train_idx), len(prep.test_idx))
        F.savefig(plots.losses_figure(hist.train_loss, hist.test_loss, log=opt.log_y, rows=rows),
                  "losses.png")
        if ds.X.shape[1] == 2:
            grid = plots.grid_axes(ds.X, 200)
            F.savefig(plots.decision_map_figure(model, ds, prep.train_idx, prep.test_idx,
                                                grid=grid), "decision_map.png")
            F.savefig(plots.hidden_units_figure(model, ds), "hidden_units.png")


def _student(config, result, T, F: _Folder, s: dict):
    """The problem set's own procedure beside ours: its loss floor, its accuracy read two ways
    and its self-standardized map (for the problem set's sigmoid output only)."""
    prep = result.prepared
    if prep.layout.sizes[-1] != 1 or len(prep.classes) != 2 or prep.layout.output != "sigmoid":
        return None
    st = None
    with T("student's procedure", s, "student"):
        st = student_run(config, result)
        s["student"] = st.summary
        h = st.result.history
        fig = plots.losses_figure(h.train_loss, h.test_loss, label="the problem set's procedure",
                                  rows=(len(st.result.prepared.train_idx),
                                        len(st.result.prepared.test_idx)),
                                  title="The problem set's procedure (--faithful): standardized "
                                  "0/1 labels")
        for ax, key in zip(fig.axes[:2], ("floor", "test_floor")):  # the rows' own floors
            ax.axhline(st.summary[key], c="#e31a1c", ls="--", lw=1.4,
                       label=f"floor {st.summary[key]:.4g} (unreachable targets)")
            ax.legend(loc="upper right")
        F.savefig(fig, "student_losses.png")
        if prep.dataset.X.shape[1] == 2:
            ds = prep.dataset
            g1, g2 = plots.grid_axes(ds.X, 200)
            F.savefig(plots.decision_map_figure(
                grid_standardized_model(st.result.model, g1, g2), ds, prep.train_idx,
                prep.test_idx, grid=(g1, g2), title="The problem set's map: raw output,\ngrid "
                "standardized with its own mean and std"), "student_map.png")
    return st


def _worked(config, result):
    prob, lay = result.prepared.problem, result.prepared.layout
    w0 = init_weights(lay, config.init, config.seed)
    return worked_step(lay, config.loss, w0, prob.x_train, prob.y_train, config.lr, row=0)


def _question4(config, result, snaps, opt: ReportOptions, T, F: _Folder, student,
               q4: dict) -> dict:
    """Question 4's concepts into ``q4``, each measured on this run or changed in a side
    experiment (one that fails is reported, the rest goes on; an interrupt keeps those done)."""
    prep = result.prepared
    layout, prob = prep.layout, prep.problem
    with T("monitor", q4, "monitor"):
        ep, G, S = monitor_series(result, snaps)
        hidden_names = [f"hidden layer {l}" if len(layout.sizes) > 3 else "hidden layer"
                        for l in range(1, len(layout.sizes) - 1)]
        layer_names = [f"layer {l + 1}: {layout.sizes[l]}+1 → {layout.sizes[l + 1]}"
                       for l in range(layout.n_layers)]
        q4["monitor"] = {"epochs": ep, "grad_norms": G, "saturated": S,
                         "layer_names": layer_names, "hidden_names": hidden_names}
        F.savefig(plots.monitor_figure(ep, G, S, layer_names, hidden_names), "monitor.png")
    with T("vanishing gradients", q4, "vanishing"):
        q4["vanishing"] = ex.vanishing_experiment(config, prep)
    with T("linear baseline", q4, "linear"):
        q4["linear"] = _linear_baseline(config, result)
    n_aux = min(int(config.epochs), max(0, int(opt.aux_epochs)))
    if n_aux > 0 and not _is_plain(config):
        why = {"skipped": "these experiments train plain gradient descent; this run used other "
               "optimizer flags"}
        q4.update(learning_rates=why, activation=why, bias=why)
    elif n_aux > 0:
        _q4_side_runs(config, prep, n_aux, T, F, q4)
    _q4_softmax_kernels(result, T, F, q4)
    with T("jitter", q4, "augmentation"):
        q4["augmentation"] = {"sigma": 0.1, "unchanged_share": jitter_stability(
            result.model, prep.dataset.X[prep.test_idx])}
    with T("gradient check", q4, "gradient_check"):

        _, g = loss_and_grad(layout, config.loss, result.model.w, prob.x_train, prob.y_train)
        num = numeric_grad(layout, config.loss, result.model.w, prob.x_train, prob.y_train)
        q4["gradient_check"] = {"max_abs_diff": float(np.max(np.abs(num - g))),
                                "max_abs_gradient": float(np.max(np.abs(g)))}
    return q4


def _q4_side_runs(config, prep, n_aux: int, T, F: _Folder, q4: dict) -> None:
    """The experiments that train: η to divergence, sigmoid vs identity over seeds, no biases,
    jitter on and off."""
    with T("learning rates", q4, "learning_rates"):
        lr = ex.learning_rate_experiment(config, prep, n_aux, AUX_FACTORS)
        F.savefig(plots.lr_figure(lr["lrs"], lr["curves"], lr["curve_epochs"],
                                  lr["final_test_loss"], config.lr, lr["diverged"],
                                  final_label="test loss at the end"), "learning_rates.png")
        q4["learning_rates"] = {k: v for k, v in lr.items() if k not in ("curves",
                                                                         "curve_epochs")}
    with T("activation experiment", q4, "activation"):
        q4["activation"] = ex.activation_experiment(config, prep, n_aux)
    if len(prep.layout.sizes) >= 3:
        with T("bias experiment", q4, "bias"):
            q4["bias"] = ex.bias_experiment(config, prep, min(n_aux, 5000))  # numpy loop
    with T("augmentation experiment", q4, "augmentation_runs"):
        aug = ex.augmentation_experiment(config, n_aux)
        models = {"on": aug.pop("model_on"), "off": aug.pop("model_off")}
        q4["augmentation_runs"] = aug
        ds = prep.dataset
        for name, how in (("off", "without jitter"), ("on", f"with --jitter {aug['sigma']:g}")):
            if ds.X.shape[1] == 2:  # the same epochs, noise off and on, side by side
                F.savefig(plots.decision_map_figure(
                    models[name], ds, prep.train_idx, prep.test_idx,
                    title=f"Trained {how} ({n_aux} epochs)"),
                    "augmentation_map.png" if name == "on" else "augmentation_off_map.png")


def _q4_softmax_kernels(result, T, F: _Folder, q4: dict) -> None:
    with T("softmax example", q4, "softmax"):
        sm = softmax_example()
        sm_prep = sm.prepared
        proba = sm.model.predict_proba(sm_prep.dataset.X)
        q4["softmax"] = {"test_acc": sm.final["test_acc"], "train_acc": sm.final["train_acc"],
                         "max_abs_sum_minus_1": float(np.max(np.abs(proba.sum(axis=1) - 1))),
                         "sigmoid_vs_two_class_softmax": ex.softmax_identity()}
        F.savefig(plots.decision_map_figure(sm.model, sm_prep.dataset, sm_prep.train_idx,
                                            sm_prep.test_idx, title="Softmax: three classes"),
                  "softmax_map.png")
    with T("learned kernels", q4, "learned_kernels"):
        q4["learned_kernels"] = learned_kernels(F)
    ds = result.prepared.dataset
    if ds.X.shape[1] == 2:
        with T("kernels", q4, "kernels"):
            g1, g2 = plots.grid_axes(ds.X, 200)
            Pm = plots.probability_grid(result.model, g1, g2)[..., -1]
            edges, pooled = plots.conv_pool(Pm)
            top = edges >= np.quantile(edges, 0.98)
            q4["kernels"] = {"mean_p_at_strongest_edges": float(Pm[1:-1, 1:-1][top].mean()),
                             "pooled_shape": list(pooled.shape), "grid_shape": list(Pm.shape)}
            F.savefig(plots.conv_pool_figure(g1, g2, Pm), "kernels.png")


KERNEL_EPOCHS = 3  # the digits CNN's epochs in the report (demo digits: 30); ~1 s, 93 % test


def learned_kernels(F: _Folder, epochs: int = KERNEL_EPOCHS) -> dict:
    """The CNN of ``scratchnet demo digits`` trained ``epochs`` epochs: its learned kernels and
    what they make of one test digit (learned_kernels.png)."""
    r = train_cnn(CNNConfig(epochs=epochs))
    if r.final["stopped"] == "interrupted":
        raise KeyboardInterrupt  # the report's own interrupt: keep what finished before
    (K, _), = r.layout.views(r.theta)[0]  # (F, 1, 3, 3): the one conv block's kernels
    caches, _ = forward_all(r.layout, r.theta, r.x_test[:1])
    maps = caches[0][1][0]  # (F, 8, 8) β after ReLU
    F.savefig(plots.learned_kernels_figure(K, r.x_test[0, 0], maps, epochs,
                                           r.final["test_acc"]), "learned_kernels.png")
    return {"epochs": epochs, "kernels": int(K.shape[0]), "test_acc": r.final["test_acc"],
            "n_test": r.final["n_test"], "layout": r.final["layout"],
            "n_params": r.final["n_params"]}


def _linear_baseline(config, result) -> dict:
    """The same network and epochs with identity hidden units: a straight border at best."""
    if len(result.prepared.layout.sizes) < 3:
        return {"skipped": "the network has no hidden layer"}
    cfg = replace(config, activation="identity", epochs=len(result.history), log_every=0)
    try:
        r = train(cfg)
    except DivergedError as e:
        r = e.result
    return {"epochs": r.final["epochs"], "test_acc": r.final["test_acc"],
            "train_acc": r.final["train_acc"], "train_loss": r.final["train_loss"]}


def _twin_job(prepared, config, w0, epochs):
    """Run in a separate process: the PyTorch twin (torch's import alone takes seconds)."""
    import torch


    torch.set_num_threads(1)  # tiny tensors; leave the other core to the report
    tw = twin.train_twin(prepared, config, w0=w0, dtype="float64", epochs=epochs)
    return tw.w, tw.train_loss, tw.test_loss, tw.seconds, tw.dtype


def start_twin(config, result, snaps, n: int):
    """Start the PyTorch twin for ``n`` epochs in a worker process (while the figures are
    drawn); returns (a callable giving the twin's numbers, None) or (None, why it is skipped)."""
    if n <= 0:
        return None, "--torch-epochs 0"
    if importlib.util.find_spec("torch") is None:
        return None, "PyTorch is not installed (pip install 'scratchnet[torch]')"
    if not _is_plain(config):
        return None, ("the twin trains plain full-batch gradient descent only (the problem "
                      "set's); this run used other optimizer flags")
    if n not in snaps:
        return None, f"training stopped before epoch {n}"
    args = (result.prepared, config, snaps[0], n)
    try:
        return _Twin(args), None
    except (OSError, RuntimeError, ValueError):  # no processes here: run it in line later
        return _Twin(args, in_line=True), None


class _Twin:
    """The twin's job in a worker process: called, its numbers; ``cancel()`` ends the worker
    (on an interrupt: the report does not wait for a comparison it will not show)."""

    def __init__(self, args, in_line: bool = False):
        self.args, self.pool, self.job = args, None, None
        if not in_line:

            self.pool = multiprocessing.get_context("spawn").Pool(1)
            self.job = self.pool.apply_async(_twin_job, args)

    def __call__(self):
        if self.pool is None:
            return _twin_job(*self.args)
        try:
            return self.job.get()
        finally:
            self.pool.close()
            self.pool.join()
            self.pool = None

    def cancel(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None


def torch_section(config, result, snaps, n: int, collect, skipped, F: _Folder) -> dict:
    """Question 3 done right: the PyTorch twin from the same initial weights, compared; the
    engine's map after the twin's epochs beside the twin's."""
    if collect is None:
        return {"skipped": skipped}

    try:
        w_t, tr_t, te_t, seconds, dtype = collect()
    except ScratchnetError as e:
        return {"skipped": str(e)}
    except Exception as e:  # a broken torch install or a worker that died: report the rest
        return {"skipped": f"the PyTorch twin failed ({e.__class__.__name__}: {e})"}
    prep, hist = result.prepared, result.history
    F.savefig(plots.losses_figure(hist.train_loss[:n], hist.test_loss[:n],
                                  rows=(len(prep.train_idx), len(prep.test_idx)),
                                  others={"PyTorch twin": (tr_t, te_t)},
                                  label=f"scratchnet ({result.engine} engine)",
                                  title=f"The first {n} epochs: scratchnet and its PyTorch twin"),
              "torch_losses.png")
    out = {"epochs": n, "dtype": dtype, "seconds": seconds,
           "max_abs_train_loss_diff": float(np.max(np.abs(tr_t - hist.train_loss[:n]))),
           "max_abs_test_loss_diff": float(np.max(np.abs(te_t - hist.test_loss[:n]))),
           "max_abs_weight_diff": float(np.max(np.abs(w_t - snaps[n])))}
    if prep.dataset.X.shape[1] == 2:
        lay, ds = prep.layout, prep.dataset

        def model(w):
            return Model(lay, w, config.loss, prep.x_scaler, prep.y_scaler, prep.classes,
                         ds.target_name)

        g1, g2 = plots.grid_axes(ds.X, 200)
        out["max_abs_map_diff"] = float(np.max(np.abs(
            plots.probability_grid(model(w_t), g1, g2)
            - plots.probability_grid(model(snaps[n]), g1, g2))))
        for name, w, who in (("torch_decision_map.png", w_t, "PyTorch twin"),
                             ("engine_map_at_twin.png", snaps[n], "scratchnet")):
            F.savefig(plots.decision_map_figure(model(w), ds, prep.train_idx, prep.test_idx,
                                                grid=(g1, g2), title=f"{who} after {n} epochs"),
                      name)
    return out


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def write_pdf(out: str, exercise: bool = False, timeout: float = 120.0) -> str:
    """``report.pdf`` from ``report.html`` through headless Chromium, with the print
    stylesheet; collapsed sections are opened first (not the exercise's solutions)."""
    browser = find_chromium()
    if browser is None:
        raise ScratchnetError("--pdf: needs Chromium (apt-get install chromium, or `make "
                              "browser`)")
    with open(os.path.join(out, "report.html"), encoding="utf-8") as fh:
        page = fh.read()
    if not exercise:
        page = page.replace("<details>", "<details open>")  # screen-only ones stay hidden
    pdf = os.path.join(out, "report.pdf")
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        src = os.path.join(tmp, "print.html")
        with open(src, "w", encoding="utf-8") as fh:
            fh.write(page)
        target = os.path.join(tmp, "report.pdf")
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu",
               "--no-pdf-header-footer", f"--user-data-dir={os.path.join(tmp, 'profile')}",
               f"--print-to-pdf={target}", "file://" + os.path.abspath(src)]
        try:
            subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise ScratchnetError(f"--pdf: Chromium did not finish within {timeout:g} s") \
                from None
        if not os.path.exists(target) or os.path.getsize(target) == 0:
            raise ScratchnetError("--pdf: Chromium wrote no PDF")
        os.replace(target, pdf)  # same folder tree: atomic
    return pdf
