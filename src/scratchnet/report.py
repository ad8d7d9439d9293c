"""``scratchnet ps5``: everything the problem set's notebook shows, done right, in one folder.

    build_report(config, "ps5-report")  →  report.html (one self-contained page) + its parts:
    data.png, network.png/.svg, derivation.md, losses.png, decision_map.png, hidden_units.png,
    torch_losses.png, torch_decision_map.png, monitor.png, learning_rates.png, softmax_map.png,
    kernels.png, model.json, history.csv, summary.json

The training is the engine's (``train.train``, the compiled path when available).  It runs in
segments between a few log-spaced epochs, each segment continuing from the last one's weights —
bit-identical to one call for plain gradient descent — so that the weights at those epochs are
kept for Question 4's gradient-norm and saturation curves.  Every other step is measured and
the times land in ``summary.json``.  The page needs no network: images are embedded as base64,
the mathematics is MathML, which browsers render natively.
"""
from __future__ import annotations

import base64
import html
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field, replace

import numpy as np

from .errors import DivergedError, ScratchnetError

AUX_FACTORS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)  # η × these, compared


@dataclass
class ReportOptions:
    log_y: bool = False  # loss curves on a log scale
    torch_epochs: int = 10_000  # the twin's epochs (0 = no twin); PyTorch is ~0.2 ms/epoch
    aux_epochs: int = 20_000  # epochs of the η comparison (0 = none)
    snapshots: int = 40  # log-spaced epochs whose weights are kept for Question 4
    verbose: bool = False  # print the problem set's loss line every log_every epochs
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
    """``train(config)`` run in segments between the epochs ``marks``; returns (TrainResult,
    {epoch: weights after that many updates}).

    Plain full-batch gradient descent keeps no state but ``w``, so the segments give the very
    numbers of one call.  Other optimizers carry state (momentum, Adam's moments, schedules), so
    they run in one call with ``monitor`` on and only the start and end weights are kept.
    A diverged run raises :class:`DivergedError` whose ``result`` is (TrainResult, snapshots)
    for the epochs before it."""
    from .model import Model
    from .network import init_weights
    from .train import History, TrainResult, train

    E = int(config.epochs)
    plain = _is_plain(config)
    bounds = [(a, b) for a, b in zip(marks[:-1], marks[1:]) if b > a] if plain else [(0, E)]
    if not bounds:
        bounds = [(0, E)]
    w, parts, snaps, seconds, last, error = None, [], {}, 0.0, None, None
    for a, b in bounds:
        seg = replace(config, epochs=b - a, log_every=0)
        if not plain and hasattr(config, "monitor"):
            seg = replace(seg, monitor=True)
        prog = (lambda d, tot, tr, te, a=a: progress(a + d, E, tr, te)) if progress else None
        try:
            r = train(seg, w0=w, progress=prog)
        except DivergedError as e:
            r, error = e.result, e
        if not snaps:
            snaps[0] = (init_weights(r.prepared.layout, config.init, config.seed)
                        if w is None else w.copy())
        parts.append(r.history)
        seconds += r.seconds
        last = r
        if on_log and config.log_every:
            for t in range(a, a + len(r.history)):
                if t % config.log_every == 0:
                    on_log(t, float(r.history.train_loss[t - a]), float(r.history.test_loss[t - a]))
        if error is not None or r.stopped != "completed":
            break
        w = r.model.w.copy()
        snaps[b] = w.copy()
    hist = History(*(np.concatenate([getattr(h, f) for h in parts])
                     for f in ("train_loss", "test_loss", "train_acc", "test_acc")))
    done = len(hist) if error is None else last.final["epochs"] + (bounds[len(parts) - 1][0])
    stopped = "diverged" if error is not None else last.stopped
    final = dict(last.final)
    final.update(epochs=int(done), seconds=seconds, stopped=stopped)
    prep = last.prepared
    model = Model(prep.layout, last.model.w, config.loss, prep.x_scaler, prep.y_scaler,
                  prep.classes, prep.dataset.target_name, config.to_dict(), final)
    result = TrainResult(model, hist, config, prep, seconds, stopped, last.engine, final)
    result.monitor = getattr(last, "monitor", None)
    if error is not None:
        raise DivergedError(str(error), (result, snaps))
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
    from .monitor import layer_gradient_norms, saturated_share

    layout, P = result.prepared.layout, result.prepared.problem
    mon = getattr(result, "monitor", None)
    if mon is not None and len(mon.get("epoch", ())) > 0:  # the general loop recorded every epoch
        ep = np.asarray(mon["epoch"])
        keep = np.unique(np.round(np.geomspace(1, max(ep.size, 1), 40)).astype(int) - 1)
        return ep[keep], np.asarray(mon["grad_norms"])[keep], np.asarray(mon["saturated"])[keep]
    epochs = sorted(snaps)
    G = [layer_gradient_norms(layout, result.config.loss, snaps[e], P.x_train, P.y_train)
         for e in epochs]
    S = [saturated_share(layout, snaps[e], P.x_train) for e in epochs]
    return np.array(epochs), np.array(G), np.array(S).reshape(len(epochs), -1)


def lr_comparison(config, prepared, epochs: int):
    """Training loss curves for η × AUX_FACTORS, all networks at once (train_ensemble)."""
    from .ensemble import train_ensemble

    lrs = np.array([config.lr * f for f in AUX_FACTORS])
    every = max(1, epochs // 400)
    ens = train_ensemble(replace(config, epochs=epochs), seeds=config.seed, lrs=lrs,
                         prepared=prepared, record_every=every, epochs=epochs)
    return lrs, ens.train_loss, ens.epochs, ens.final["train_loss"], ens.diverged


def softmax_example(epochs: int = 2000):
    """Question 4's softmax: a 2-7-3 softmax / cross-entropy network on three Gaussian blobs."""
    from .train import TrainConfig, train

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

    def __call__(self, name, into: dict | None = None, key: str | None = None):
        steps = self

        class _Step:
            def __enter__(self):
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


def build_report(config, out: str = "ps5-report", options: ReportOptions | None = None) -> Report:
    """Train as ``config`` says and write the whole report into the folder ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    from . import plots
    from .derive import derive
    from .diagram import network_figure
    from .network import init_weights

    opt = options or ReportOptions()
    os.makedirs(out, exist_ok=True)
    T = _Steps(opt.status)
    files: list[str] = []
    s: dict = {"config": config.to_dict()}
    code = 0

    def path(name):
        files.append(name)
        return os.path.join(out, name)

    fig_times: dict[str, float] = {}

    def savefig(fig, name):
        t0 = time.perf_counter()
        plots.save(fig, path(name))
        fig_times[name] = time.perf_counter() - t0

    # -- training ---------------------------------------------------------------------------
    E = int(config.epochs)
    n_twin = min(E, max(0, int(opt.torch_epochs)))
    marks = snapshot_epochs(E, opt.snapshots, extra=(n_twin,))

    def log(t, tr, te):
        if opt.verbose:
            if getattr(opt.progress, "enabled", False):
                sys.stderr.write("\r\033[K")  # clear the progress bar's line first
            print(f"epoch {t:>7}  train loss {tr:.6f}  test loss {te:.6f}", flush=True)

    with T("training"):
        try:
            result, snaps = train_with_snapshots(config, marks, opt.progress, log)
        except DivergedError as e:
            (result, snaps), code = e.result, 2
            s["diverged"] = str(e)
    if result.stopped == "interrupted":
        code = 130
    t_report = time.perf_counter()  # everything from here on is "the report"
    with T("torch twin"):
        collect, skipped = start_twin(config, result, snaps, n_twin)
    prep, model, hist = result.prepared, result.model, result.history
    layout, ds, P = prep.layout, prep.dataset, prep.problem
    two_d = ds.X.shape[1] == 2
    final = result.final
    s.update(
        data={"source": ds.source, "rows": int(len(ds.y)), "features": list(ds.feature_names),
              "target": ds.target_name, "classes": prep.classes.tolist(),
              "n_train": int(len(prep.train_idx)), "n_test": int(len(prep.test_idx))},
        layout=layout.describe(), n_params=layout.n_params, final=final,
        training_seconds=result.seconds, engine=result.engine,
        confusion={"labels": prep.classes.tolist(),
                   "train": confusion(model, ds.X[prep.train_idx], ds.y[prep.train_idx],
                                      prep.classes),
                   "test": confusion(model, ds.X[prep.test_idx], ds.y[prep.test_idx],
                                     prep.classes)})
    with T("files"):
        model.save(path("model.json"))
        hist.to_csv(path("history.csv"))

    # -- Question 1 -----------------------------------------------------------------------------
    with T("figures"):
        if two_d:
            savefig(plots.data_figure(ds), "data.png")
        net = network_figure(layout)
        savefig(net, "network.png")
        savefig(net, "network.svg")
    with T("derivation"):
        der = derive(layout, config.loss)
        with open(path("derivation.md"), "w", encoding="utf-8") as fh:
            fh.write(der.to_markdown())
        from .backprop import loss_and_grad

        _, g_engine = loss_and_grad(layout, config.loss, model.w, P.x_train, P.y_train)
        g_formula = der.gradient(model.w, P.x_train, P.y_train)
        s["derivation"] = {"formulas": layout.n_params,
                           "max_abs_diff_vs_engine": float(np.max(np.abs(g_formula - g_engine))),
                           "max_abs_gradient": float(np.max(np.abs(g_engine)))}

    # -- Question 2 -----------------------------------------------------------------------------
    with T("figures"):
        savefig(plots.losses_figure(hist.train_loss, hist.test_loss, log=opt.log_y),
                "losses.png")
        if two_d:
            g1, g2 = plots.grid_axes(ds.X, 200)
            savefig(plots.decision_map_figure(model, ds, prep.train_idx, prep.test_idx,
                                              grid=(g1, g2)), "decision_map.png")
            savefig(plots.hidden_units_figure(model, ds), "hidden_units.png")

    # -- Question 4 (side measurements: one that fails is reported, the rest goes on) --------
    q4: dict = {}
    with T("monitor", q4, "monitor"):
        ep, G, S = monitor_series(result, snaps)
        hidden_names = [f"hidden layer {l}" if len(layout.sizes) > 3 else "hidden layer"
                        for l in range(1, len(layout.sizes) - 1)]
        layer_names = [f"layer {l + 1}: {layout.sizes[l]}+1 → {layout.sizes[l + 1]}"
                       for l in range(layout.n_layers)]
        q4["monitor"] = {"epochs": ep, "grad_norms": G, "saturated": S,
                         "layer_names": layer_names, "hidden_names": hidden_names}
        savefig(plots.monitor_figure(ep, G, S, layer_names, hidden_names), "monitor.png")
    with T("linear baseline", q4, "linear"):
        q4["linear"] = _linear_baseline(config, result)
    n_aux = min(E, max(0, int(opt.aux_epochs)))
    if n_aux > 0 and not _is_plain(config):
        q4["learning_rates"] = {"skipped": "the η comparison trains plain gradient descent; "
                                "this run used other optimizer flags"}
    elif n_aux > 0:
        with T("learning rates", q4, "learning_rates"):
            lrs, curves, rec_ep, finals, div = lr_comparison(config, prep, n_aux)
            q4["learning_rates"] = {"lrs": lrs, "epochs": n_aux, "final_train_loss": finals,
                                    "diverged": div}
            savefig(plots.lr_figure(lrs, curves, rec_ep, finals, config.lr, div),
                    "learning_rates.png")
    with T("softmax example", q4, "softmax"):
        sm = softmax_example()
        sm_prep = sm.prepared
        proba = sm.model.predict_proba(sm_prep.dataset.X)
        q4["softmax"] = {"test_acc": sm.final["test_acc"], "train_acc": sm.final["train_acc"],
                         "max_abs_sum_minus_1": float(np.max(np.abs(proba.sum(axis=1) - 1)))}
        savefig(plots.decision_map_figure(sm.model, sm_prep.dataset, sm_prep.train_idx,
                                          sm_prep.test_idx, title="Softmax: three classes"),
                "softmax_map.png")
    if two_d:
        with T("kernels", q4, "kernels"):
            Pm = plots.probability_grid(model, g1, g2)[..., -1]
            edges, pooled = plots.conv_pool(Pm)
            top = edges >= np.quantile(edges, 0.98)
            q4["kernels"] = {"mean_p_at_strongest_edges": float(Pm[1:-1, 1:-1][top].mean()),
                             "pooled_shape": list(pooled.shape), "grid_shape": list(Pm.shape)}
            savefig(plots.conv_pool_figure(g1, g2, Pm), "kernels.png")
    with T("jitter", q4, "augmentation"):
        q4["augmentation"] = {"sigma": 0.1, "unchanged_share": jitter_stability(
            model, ds.X[prep.test_idx])}
    with T("gradient check", q4, "gradient_check"):
        from .backprop import numeric_grad

        num = numeric_grad(layout, config.loss, model.w, P.x_train, P.y_train)
        q4["gradient_check"] = {"max_abs_diff": float(np.max(np.abs(num - g_engine))),
                                "max_abs_gradient": float(np.max(np.abs(g_engine)))}
    # -- Question 3: the PyTorch twin, trained meanwhile in a worker process -----------------
    with T("torch twin"):
        s["torch"] = torch_section(config, result, snaps, n_twin, collect, skipped, savefig,
                                   plots, two_d)

    s["q4"] = q4
    s["init_w"] = init_weights(layout, config.init, config.seed)
    s["timings"] = T.times

    # -- the page -------------------------------------------------------------------------------
    t0 = time.perf_counter()
    page = render_html(s, result, der, out, files)
    with open(path("report.html"), "w", encoding="utf-8") as fh:
        fh.write(page)
    T.times["html"] = time.perf_counter() - t0
    s["timings"] = T.times
    s["figure_save_seconds"] = fig_times
    s["report_seconds"] = time.perf_counter() - t_report
    if T.errors:
        s["errors"] = T.errors
    s["files"] = files + ["summary.json"]
    with open(os.path.join(out, "summary.json"), "w", encoding="utf-8") as fh:
        json.dump(_finite({k: v for k, v in s.items() if k not in ("init_w",)}), fh, indent=1,
                  allow_nan=False)
    return Report(out, s, s["files"], code)


def _linear_baseline(config, result) -> dict:
    """The same network and epochs with identity hidden units: a straight border at best."""
    from .train import train

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

    from . import twin

    torch.set_num_threads(1)  # tiny tensors; leave the other core to the report
    tw = twin.train_twin(prepared, config, w0=w0, dtype="float64", epochs=epochs)
    return tw.w, tw.train_loss, tw.test_loss, tw.seconds, tw.dtype


def start_twin(config, result, snaps, n: int):
    """Start the PyTorch twin for ``n`` epochs in a worker process (while the figures are
    drawn); returns (a callable giving the twin's numbers, None) or (None, why it is skipped)."""
    import importlib.util

    if n <= 0:
        return None, "--torch-epochs 0"
    try:
        from . import twin  # noqa: F401
    except ImportError:
        return None, "scratchnet.twin is not available in this installation"
    if importlib.util.find_spec("torch") is None:
        return None, "PyTorch is not installed (pip install 'scratchnet[torch]')"
    if not _is_plain(config):
        return None, ("the twin trains plain full-batch gradient descent only (the problem "
                      "set's); this run used other optimizer flags")
    if n not in snaps:
        return None, f"training stopped before epoch {n}"
    args = (result.prepared, config, snaps[0], n)
    try:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        fut = pool.submit(_twin_job, *args)
    except (OSError, RuntimeError, ValueError):  # no processes here: run it in line later
        return (lambda: _twin_job(*args)), None

    def collect():
        try:
            return fut.result()
        finally:
            pool.shutdown()

    return collect, None


def torch_section(config, result, snaps, n: int, collect, skipped, savefig, plots,
                  two_d: bool) -> dict:
    """Question 3 done right: the PyTorch twin from the same initial weights, compared."""
    if collect is None:
        return {"skipped": skipped}
    from .model import Model

    try:
        w_t, tr_t, te_t, seconds, dtype = collect()
    except ScratchnetError as e:
        return {"skipped": str(e)}
    except Exception as e:  # a broken torch install or a worker that died: report the rest
        return {"skipped": f"the PyTorch twin failed ({e.__class__.__name__}: {e})"}
    prep, hist = result.prepared, result.history
    savefig(plots.losses_figure(hist.train_loss[:n], hist.test_loss[:n],
                                others={"PyTorch twin": (tr_t, te_t)},
                                label=f"scratchnet ({result.engine} engine)",
                                title=f"The first {n} epochs: scratchnet and its PyTorch twin"),
            "torch_losses.png")
    out = {"epochs": n, "dtype": dtype, "seconds": seconds,
           "max_abs_train_loss_diff": float(np.max(np.abs(tr_t - hist.train_loss[:n]))),
           "max_abs_test_loss_diff": float(np.max(np.abs(te_t - hist.test_loss[:n]))),
           "max_abs_weight_diff": float(np.max(np.abs(w_t - snaps[n])))}
    if two_d:
        lay, ds = prep.layout, prep.dataset

        def model(w):
            return Model(lay, w, config.loss, prep.x_scaler, prep.y_scaler, prep.classes,
                         ds.target_name)

        g1, g2 = plots.grid_axes(ds.X, 200)
        out["max_abs_map_diff"] = float(np.max(np.abs(
            plots.probability_grid(model(w_t), g1, g2)
            - plots.probability_grid(model(snaps[n]), g1, g2))))
        savefig(plots.decision_map_figure(model(w_t), ds, prep.train_idx, prep.test_idx,
                                          grid=(g1, g2), title=f"PyTorch twin after {n} epochs"),
                "torch_decision_map.png")
    return out


# ---- HTML ------------------------------------------------------------------------------------

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
    from .activations import ACTIVATIONS

    act = ACTIVATIONS[result.prepared.layout.output]
    y = result.prepared.problem.y_train
    if result.config.loss != "sse":
        return 0.0
    return float(0.5 * np.sum((y - np.clip(y, act.low, act.high)) ** 2))


def render_html(s: dict, result, der, out: str, files: list[str]) -> str:
    """The report page: Questions 1–4 in order, every number from this run."""
    from . import __version__
    from .losses import LOSSES

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
        "passed to the model unstandardized. The twin (<code>scratchnet.twin</code>) removes "
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
