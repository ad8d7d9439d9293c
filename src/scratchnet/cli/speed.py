"""``scratchnet sweep``: many networks at once — architectures × learning rates × seeds.

The engine is :mod:`scratchnet.sweep` (chunks trained as vectorized ensembles, streamed to a
CSV, resumable, optionally on Dask); this module parses the flags, prints the summary table and
draws the plots.  Dask and matplotlib are imported only when ``--scheduler`` / ``--plots`` ask.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys

import numpy as np

from ..core.errors import ScratchnetError
from ..core.io import check_folder, check_writable, save_figure
from ..training.progress import ProgressBar
from .common import add_training_args, config_from_args, path, positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "sweep", conflict_handler="resolve",  # --hidden / --lr / --seed become lists here
        help="train a grid of networks (architectures × learning rates × seeds)",
        description="Train every (architecture, learning rate, seed) of a grid as vectorized "
        "ensembles; one CSV row per network, a summary of how the test accuracy spreads "
        "across seeds, optional plots. Re-running the same command resumes.")
    add_training_args(p, epochs=10_000)
    g = p.add_argument_group("the grid")
    g.add_argument("--hidden", default="7",
                   help="architectures: 3,7,15 = three one-layer networks; 16x8 = two hidden "
                   "layers (default: 7)")
    g.add_argument("--lr", default="1e-4", help="learning rates, e.g. 1e-4,1e-3 (1e-4)")
    g.add_argument("--seeds", "--seed", dest="seeds", default="0:100",
                   help="init seeds: 0:1000 (end excluded), 0,5,9 or 0:10,100:110 (0:100)")
    g.add_argument("--chunk-size", type=positive_int, default=None,
                   help="networks per ensemble / per Dask task (default: 100 on the CPU, "
                   "100000 with --device cuda: an H200 is full from about 50000 networks)")
    g.add_argument("--record-every", type=positive_int, default=None,
                   help="record losses every N epochs; best_epoch has this resolution "
                   "(default: epochs / 1000)")
    g.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="cuda: one GPU thread per network (default: cpu)")
    g.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="float32 (with --device cuda): the kernel in single precision; a few "
                   "networks are trained again in float64 on the CPU and the summary says how "
                   "far apart they end (default: float64)")
    o = p.add_argument_group("output and where to run")
    o.add_argument("--out", type=path, required=True, metavar="SWEEP.csv",
                   help="one row per network; an existing file is resumed")
    o.add_argument("--plots", type=path, metavar="DIR",
                   help="write the loss histogram and band plots")
    o.add_argument("--scheduler", metavar="local|ADDRESS",
                   help="run the chunks on Dask: 'local' starts a cluster on this machine, "
                   "tcp://host:8786 joins a running one (default: in this process)")
    o.add_argument("--workers", type=positive_int,
                   help="worker processes of --scheduler local (default: one per core)")
    o.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from .. import sweep  # the command's own module, loaded when it runs
    from ..sweepfile import is_stream

    hiddens, lrs = sweep.parse_hidden(args.hidden), sweep.parse_lrs(args.lr)
    seeds = sweep.parse_seeds(args.seeds)
    check_writable(args.out, "--out")  # before any network is trained
    check_folder(args.plots, "--plots")
    if args.plots and is_stream(args.out):
        raise ScratchnetError(f"--plots needs the sweep's files, and --out {args.out} is not a "
                              "regular file (its rows are only streamed): give --out a file")
    if args.workers and args.scheduler != "local":
        raise ScratchnetError("--workers goes with --scheduler local")
    if args.dtype != "float64" and args.device != "cuda":
        raise ScratchnetError(f"--dtype {args.dtype} runs on the GPU only (--device cuda)")
    one = copy.copy(args)  # the setup every network shares; hidden, lr, seed vary per network
    one.hidden, one.lr, one.seed = hiddens[0], lrs[0], seeds[0]
    config = config_from_args(one)
    total = len(hiddens) * len(lrs) * len(seeds)
    bar = ProgressBar(total, "sweep", enabled=False if args.quiet else None)
    try:
        chunk = args.chunk_size or (100_000 if args.device == "cuda" else 100)
        run = sweep.run_sweep(config, hiddens, lrs, seeds, args.out, chunk_size=chunk,
                        record_every=args.record_every, device=args.device,
                        scheduler=args.scheduler, workers=args.workers,
                        progress=lambda done, tot: bar(done, tot), dtype=args.dtype)
    except KeyboardInterrupt:
        bar.close()
        print(f"scratchnet: interrupted; the finished chunks are in {args.out}: run the same "
              "command again to resume", file=sys.stderr)
        return 130
    if not args.quiet:  # to stderr when the rows go to stdout (--out /dev/stdout)
        out = sys.stderr if _is_stdout(args.out) else sys.stdout
        where = f"on Dask ({args.scheduler})" if args.scheduler else "in process"
        rate = run.network_epochs / run.seconds if run.seconds > 0 else float("nan")
        engines = "/".join(run.engines) or "-"
        print(f"sweep: {run.trained} networks trained {where} in {run.seconds:.2f} s "
              f"({rate:,.0f} network-epochs/s, {engines} engine), {run.skipped} already in "
              f"{args.out}", file=out)
        print(format_summary(sweep.summarize(run.columns)), file=out)
        if run.agreement:
            print(format_agreement(run.agreement), file=out)
    if args.plots:
        for path in plot_sweep(args.out, args.plots):
            print(f"wrote {path}")
    return 0


def _is_stdout(path: str) -> bool:
    """``path`` is the file this process's standard output (fd 1) writes to."""
    try:
        return os.path.samestat(os.stat(path), os.fstat(1))
    except OSError:
        return False


def format_agreement(a: dict) -> str:
    """One line: how far the reduced-precision networks are from float64 (sweep.merge_agreement)."""
    return (f"{a['dtype']} vs float64 ({a['networks']} networks trained again on the CPU): "
            f"max |Δw| {a['max_abs_dw']:.2g}, final loss difference {a['max_train_loss_diff']:.2g}"
            f" train / {a['max_test_loss_diff']:.2g} test (relative {a['max_rel_loss_diff']:.2g}),"
            f" accuracy {a['max_acc_diff']:.2g}, diverged differently: "
            f"{a['diverged_differently']}")


def format_summary(stats: list[dict]) -> str:
    """The summary table: one line per (architecture, η), the spread across seeds."""
    from ..sweep import QUANTILES

    head = (f"{'hidden':>8} {'lr':>9} {'runs':>5}  {'test acc mean ± std':>19}  "
            + " ".join(f"{f'q{int(q * 100):02d}':>6}" for q in QUANTILES)
            + f"  {'test loss (median)':>18} {'best epoch':>10} {'diverged':>8}")
    lines = [head]
    for s in stats:
        lines.append(f"{s['hidden']:>8} {s['lr']:>9.3g} {s['runs']:>5}  "
                     f"{s['acc_mean']:>10.4f} ± {s['acc_std']:<6.4f}  "
                     + " ".join(f"{s[f'acc_q{int(q * 100):02d}']:>6.3f}" for q in QUANTILES)
                     + f"  {s['loss_median']:>18.5g} {s['best_epoch_median']:>10.0f} "
                     f"{s['diverged']:>8}")
    return "\n".join(lines)


def plot_sweep(out: str, directory: str) -> list[str]:
    """Two figures from a sweep file and its curves file: per configuration the histogram of
    the final test loss across seeds, and the band (5–95 % and 25–75 % across seeds, median
    line) of the train and test loss curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..sweep import arch_key, read_curves, read_rows

    rows = read_rows(out)
    configs = sorted({(r["hidden"], r["lr"]) for r in rows},
                     key=lambda c: (arch_key(c[0]), c[1]))
    os.makedirs(directory, exist_ok=True)
    n = len(configs)
    cols = min(n, 3)
    nrows = -(-n // cols)
    paths = []

    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3 * nrows), squeeze=False)
    for ax, (h, lr) in zip(axes.flat, configs):
        loss = np.array([r["test_loss"] for r in rows if (r["hidden"], r["lr"]) == (h, lr)])
        ax.hist(loss[np.isfinite(loss)], bins=30, color="tab:blue", alpha=0.8)
        ax.set_title(f"hidden {h}, η = {lr:g} ({loss.size} seeds)", fontsize=10)
        ax.set_xlabel("final test loss")
        ax.set_ylabel("networks")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    paths.append(os.path.join(directory, "sweep_test_loss_hist.png"))
    save_figure(fig, paths[-1], dpi=120)  # atomic
    plt.close(fig)

    curves = read_curves(out)  # one record per network: key, epochs, train, test
    c_hidden = curves["hidden"].astype(str)
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3 * nrows), squeeze=False)
    for ax, (h, lr) in zip(axes.flat, configs):
        C = curves[(c_hidden == h) & (curves["lr"] == lr)]
        if C.size == 0:
            ax.axis("off")
            continue
        epochs = C["epochs"][0]
        for part, color, name in (("train", "tab:blue", "train"),
                                  ("test", "tab:orange", "test")):
            with np.errstate(all="ignore"):
                q = np.nanquantile(C[part], [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
            ax.fill_between(epochs, q[0], q[4], color=color, alpha=0.15, lw=0)
            ax.fill_between(epochs, q[1], q[3], color=color, alpha=0.3, lw=0)
            ax.plot(epochs, q[2], color=color, lw=1.5, label=f"{name} (median)")
        ax.set_yscale("log")
        ax.set_title(f"hidden {h}, η = {lr:g} ({len(C)} seeds)", fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    paths.append(os.path.join(directory, "sweep_loss_bands.png"))
    save_figure(fig, paths[-1], dpi=120)  # atomic
    plt.close(fig)
    return paths
