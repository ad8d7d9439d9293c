"""Scaling curves: time per epoch against rows and against parameters, four engines.

One full-batch gradient-descent epoch of a 2-h-1 sigmoid network (forward on the training
rows, ½Σ loss, backward, update; the engines that record one also compute the test loss on
20 fixed rows), timed for

* scratchnet's compiled engine (``engines.fast.run_epochs``, numba),
* scratchnet's readable numpy engine (``training.train.run_epochs``),
* plain PyTorch on the CPU (``nn.Sequential``, autograd, SGD, float64, its default threads),
* scikit-learn's ``MLPClassifier`` (sgd, full batch, no momentum, no penalty; ``fit`` with
  ``max_iter`` = the epochs: its own loop, log-loss, no test loss),

against rows (h = 7, the PS5 network's 29 weights; 1e2 … 1e6 rows) and against parameters
(200 rows; h = 7 … 25 000, i.e. P = 4h + 1 = 29 … 1e5 weights).  Each point is the best of two
runs of as many epochs as take ``--target`` seconds (at least one).  One JSON line per point,
and the log-log figure ``bench/scaling.png`` (``--out``).  ``--quick``: small sizes only, to
check that it works (a few seconds).  docs/speed.md explains the bends.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from _common import HERE, emit, machine, sklearn_full_batch_gd

BENCH = "scaling"
ENGINES = ("fast", "numpy", "torch", "sklearn")
ROWS = (100, 1_000, 10_000, 100_000, 1_000_000)
WIDTHS = (7, 25, 250, 2_500, 25_000)  # P = 4h + 1: 29, 101, 1001, 10 001, 100 001
PARAM_ROWS = 200
LR = 1e-4
MAX_EPOCH_S = 3.0  # an engine stops climbing a curve once one epoch takes longer than this


def problem(n: int, seed: int = 0):
    """n standardized training rows of two inputs, XOR-like labels; 20 test rows."""
    from scratchnet.training.train import Problem

    rng = np.random.default_rng(seed)
    x, xt = rng.standard_normal((n, 2)), rng.standard_normal((20, 2))
    lab = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    labt = (xt[:, 0] * xt[:, 1] > 0).astype(np.int64)
    return Problem(x, lab[:, None] * 1.0, xt, labt[:, None] * 1.0, lab, labt, 0.5)


def scratchnet_runner(engine: str, h: int, P):
    """run(E): E epochs of scratchnet's fast or readable engine from the same start."""
    from scratchnet.core.network import Layout, init_weights
    from scratchnet.training.train import History

    if engine == "fast":
        from scratchnet.engines.fast import run_epochs
    else:
        from scratchnet.training.train import run_epochs
    layout = Layout.build(2, h)
    w0 = init_weights(layout, "normal", 0)

    def run(E: int) -> None:
        run_epochs(layout, "sse", w0.copy(), P, LR, 0, E, History.empty(E))
    return run


def torch_runner(h: int, P):
    import torch

    torch.manual_seed(0)
    xtr, ytr = torch.tensor(P.x_train), torch.tensor(P.y_train)
    xte, yte = torch.tensor(P.x_test), torch.tensor(P.y_test)

    def run(E: int) -> None:
        net = torch.nn.Sequential(torch.nn.Linear(2, h), torch.nn.Sigmoid(),
                                  torch.nn.Linear(h, 1), torch.nn.Sigmoid()).double()
        opt = torch.optim.SGD(net.parameters(), lr=LR)
        for _ in range(E):
            opt.zero_grad()
            loss = 0.5 * ((net(xtr) - ytr) ** 2).sum()
            with torch.no_grad():
                float(0.5 * ((net(xte) - yte) ** 2).sum())
            loss.item()
            loss.backward()
            opt.step()
    return run


def sklearn_runner(h: int, P):
    def run(E: int) -> None:
        sklearn_full_batch_gd(P, h, LR, E)
    return run


def runner(engine: str, h: int, P):
    if engine in ("fast", "numpy"):
        return scratchnet_runner(engine, h, P)
    return torch_runner(h, P) if engine == "torch" else sklearn_runner(h, P)


def seconds_per_epoch(run, target: float) -> tuple[float, int]:
    """(seconds per epoch, epochs per run): after a one-epoch warm-up (compilation, first
    touch of the buffers), the epochs grow until one run takes ``target`` seconds — so a
    per-call cost (building the model, checking the input) is spread over many epochs — and
    the faster of that run and one more is kept (other work on the box only slows)."""
    run(1)
    E = 1
    while True:
        t0 = time.perf_counter()
        run(E)
        best = time.perf_counter() - t0
        if best >= target or E >= 100_000:
            break
        E = min(100_000, max(2 * E, int(1.2 * E * target / max(best, 1e-9))))
    t0 = time.perf_counter()
    run(E)
    return min(best, time.perf_counter() - t0) / E, E


def available(engine: str) -> str | None:
    """None when the engine can run here, else why not."""
    mod = {"fast": "numba", "torch": "torch", "sklearn": "sklearn"}.get(engine)
    if mod is None:
        return None
    try:
        __import__(mod)
    except ImportError:
        return f"{mod} not installed"
    if engine == "fast" and os.environ.get("SCRATCHNET_NO_NUMBA"):
        return "SCRATCHNET_NO_NUMBA is set"
    return None


def engine_curves(engine: str, rows, widths, target: float) -> None:
    """Both curves of one engine, one JSON line per point as it is measured."""
    why = available(engine)
    if why:
        emit(BENCH, f"{engine}: skipped", engine=engine, skipped=why)
        return
    settings = [None]  # threads: the engine's own choice
    if engine == "torch":  # 1 thread can beat 2 on a busy 2-core box: the better one counts
        import torch

        settings = sorted({1, torch.get_num_threads()})
    elif engine == "fast":
        import numba

        settings = [numba.get_num_threads()]
    for axis, sizes in (("rows", rows), ("params", widths)):
        for size in sizes:
            n, h = (size, 7) if axis == "rows" else (PARAM_ROWS, size)
            best = (float("inf"), 0, None)
            for threads in settings:
                if engine == "torch":
                    torch.set_num_threads(threads)
                s, E = seconds_per_epoch(runner(engine, h, problem(n)), target)
                best = min(best, (s, E, threads))
            s, E, threads = best
            emit(BENCH, f"{engine} vs {axis}", engine=engine, axis=axis, rows=n, hidden=h,
                 params=4 * h + 1, us_per_epoch=s * 1e6, epochs=E, threads=threads)
            if s > MAX_EPOCH_S:  # the next size would take 10× longer
                break


def curves(argv: list[str], engines) -> list[dict]:
    """Every engine in a process of its own (numba's OpenMP threads keep spinning for a while
    after a parallel run and would slow PyTorch's down; memory is given back in between);
    their JSON lines are passed on and returned."""
    import json
    import subprocess

    points = []
    for engine in engines:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), *argv,
                               "--engine-only", engine], capture_output=True, text=True)
        for line in proc.stdout.splitlines():
            print(line, flush=True)
            if line.startswith("{"):
                points.append(json.loads(line))
        if proc.returncode:
            points.append(emit(BENCH, f"{engine}: failed", engine=engine,
                               error=proc.stderr[-800:]))
    return points


def figure(points: list[dict], path: str, title: str) -> str:
    """The two log-log panels side by side, written atomically to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    style = {"fast": ("C0", "o", "scratchnet compiled (numba)"),
             "numpy": ("C1", "s", "scratchnet numpy (readable)"),
             "torch": ("C2", "^", "PyTorch CPU (autograd, float64)"),
             "sklearn": ("C3", "v", "scikit-learn MLPClassifier")}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, axis, xlabel in ((axes[0], "rows", "training rows (2-7-1 network, 29 weights)"),
                             (axes[1], "params",
                              f"weights P = 4h + 1 (2-h-1 network, {PARAM_ROWS} rows)")):
        for engine, (color, marker, label) in style.items():
            pts = [p for p in points if p.get("engine") == engine and p.get("axis") == axis]
            if pts:
                ax.loglog([p["rows" if axis == "rows" else "params"] for p in pts],
                          [p["us_per_epoch"] for p in pts], color=color, marker=marker,
                          label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("time per epoch (µs)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes only (a few seconds)")
    ap.add_argument("--target", type=float, default=None,
                    help="seconds per timed run (default 0.1, --quick 0.01)")
    ap.add_argument("--out", default=os.path.join(HERE, "scaling.png"), help="the figure")
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset")
    ap.add_argument("--engine-only", choices=ENGINES, help=argparse.SUPPRESS)  # (internal)
    args = ap.parse_args(argv)
    engines = [e for e in args.engines.split(",") if e]
    if any(e not in ENGINES for e in engines):
        print(f"bench_scaling: --engines: choose from {', '.join(ENGINES)}", file=sys.stderr)
        return 2
    rows, widths = (ROWS[:3], WIDTHS[:3]) if args.quick else (ROWS, WIDTHS)
    target = args.target or (0.01 if args.quick else 0.1)
    if args.engine_only:
        engine_curves(args.engine_only, rows, widths, target)
        return 0
    load = round(os.getloadavg()[0], 2)
    t0 = time.perf_counter()
    points = curves([*(["--quick"] if args.quick else []), "--target", str(target)], engines)
    m = machine()
    info = emit(BENCH, "machine and load", **m, loadavg_1min_before=load,
                loadavg_1min_after=round(os.getloadavg()[0], 2),
                seconds=round(time.perf_counter() - t0, 1))
    title = (f"time per full-batch epoch — {m['cpu']}, {m['cores']} cores, load "
             f"{info['loadavg_1min_before']}→{info['loadavg_1min_after']}")
    emit(BENCH, "figure", path=os.path.relpath(figure(points, args.out, title), HERE))
    return 0


if __name__ == "__main__":
    sys.exit(main())
