"""``scratchnet compare``, ``scratchnet gradcheck`` and ``scratchnet doctor``: why to trust it."""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from ..core.errors import ScratchnetError
from ..core.io import check_writable, save_figure
from ..training.run import deferred_interrupts
from ..training.train import prepare
from ..trust import differences
from .common import (add_training_args, config_from_args, nonneg_int, path, positive_float,
                     seconds)


def register(sub) -> None:
    p = sub.add_parser("compare", help="train the engine and its PyTorch twin side by side",
                       description="Train the numpy engine and the equivalent torch.nn."
                       "Sequential from the same initial weights with the same loss and plain "
                       "gradient descent; report max |Δw| and max |Δloss| at checkpoints. "
                       "Exit code 1 when they disagree beyond the tolerance.")
    add_training_args(p, epochs=10_000)
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="the twin's precision (default: float64)")
    p.add_argument("--checkpoints", type=nonneg_int, default=10,
                   help="how many evenly spaced checkpoints to report (default: 10)")
    p.add_argument("--torch-init", action="store_true",
                   help="start the twin from PyTorch's own initialisation (as PS5 Question 3 "
                   "did) to see what a comparison without a shared init looks like")
    p.add_argument("--out", type=path, metavar="FIG.png", help="save the overlaid loss curves")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_compare)

    g = sub.add_parser("gradcheck", help="check every hand-derived gradient",
                       description="For every weight: the hand-derived gradient, the central "
                       "finite difference and torch autograd (when installed), at the initial "
                       "weights on the training rows. Exit code 1 on FAIL.")
    add_training_args(g)
    g.add_argument("--step", type=positive_float, default=None,
                   help="finite-difference step h (default: 1e-5)")
    g.add_argument("--no-autograd", action="store_true", help="skip the torch column")
    g.add_argument("--json", action="store_true", help="print the result as JSON")
    g.set_defaults(func=cmd_gradcheck)

    d = sub.add_parser("doctor", help="find what is wrong with a setup",
                       description="Check a setup: static checks on the data and the initial "
                       "weights, then a short training run (bounded time; --quick skips it). "
                       "Findings most serious first; exit code 1 when one is serious.")
    add_training_args(d)
    d.add_argument("--quick", action="store_true", help="static checks only, no training")
    d.add_argument("--check-epochs", type=nonneg_int, default=20_000,
                   help="at most this many epochs for the dynamic checks (default: 20000)")
    d.add_argument("--time-limit", type=seconds, default=5.0,
                   help="about this many seconds for the dynamic checks (default: 5)")
    d.add_argument("--json", action="store_true", help="print the findings as JSON")
    differences.add_arguments(d)
    d.set_defaults(func=cmd_doctor)


def _describe(config, prep) -> str:
    lay = prep.layout
    acts = "/".join(lay.activations) or "—"
    return (f"{prep.dataset.source} ({len(prep.dataset.y)} rows), {lay.describe()} "
            f"{acts} → {lay.output}, {config.loss}, η = {config.lr:g}, {config.epochs} epochs")


def cmd_compare(args: argparse.Namespace) -> int:
    """Exit 0 when the engine and the twin agree, 1 when not; after Ctrl-C (SIGTERM, SIGHUP)
    the checkpoints both reached are printed and drawn, and the exit is 130 (``main`` makes it
    128 + the signal); a diverging engine compares up to its last checkpoint and exits 2."""
    from ..trust import twin  # the command's own module, loaded when it runs

    if not twin.torch_available():
        raise ScratchnetError("compare needs PyTorch: pip install 'scratchnet[torch]'")
    config = config_from_args(args)
    check_writable(args.out, "--out")  # before training
    prep = prepare(config)
    res = twin.compare(config, args.dtype, args.checkpoints, args.torch_init, prep)
    with deferred_interrupts():  # a second Ctrl-C waits for the figure
        if args.out and res.epochs:
            save_compare_figure(res, args.out)
    code = 0 if res.agree else 1
    if res.stopped == "interrupted":
        code = 130
        print(f"scratchnet: interrupted at epoch {res.epochs} of {res.planned}; keeping the "
              f"{len(res.checkpoints)} checkpoints both reached", file=sys.stderr)
    elif res.stopped == "diverged":
        code = 2
        print(f"scratchnet: the engine diverged at epoch {res.diverged_at}: try a lower --lr "
              f"(now {config.lr:g}); compared up to epoch {res.epochs}", file=sys.stderr)
    # after an interrupt stdout may be a full pipe nobody reads: the table goes to stderr
    _print_comparison(res, config, prep, args, sys.stderr if code == 130 else sys.stdout)
    return code


def _print_comparison(res, config, prep, args, file) -> None:
    if args.json:
        print(json.dumps(res.to_dict(), indent=1), file=file)
        return
    print(f"compare: {_describe(config, prep)}; {res.engine} engine vs torch, {res.dtype}, "
          f"{'same' if res.same_init else 'DIFFERENT'} initial weights", file=file)
    print(f"{'epoch':>8}  {'max |Δw|':>10}  {'max |Δloss|':>11}  {'engine loss':>14}  "
          f"{'torch loss':>14}", file=file)
    for r in res.checkpoints:
        print(f"{r['epoch']:>8}  {r['max_abs_weight_diff']:>10.2e}  "
              f"{r['max_abs_loss_diff']:>11.2e}  {r['engine_train_loss']:>14.9g}  "
              f"{r['torch_train_loss']:>14.9g}", file=file)
    verdict = ("agree" if res.agree else "DISAGREE") + f" (tolerance {res.tolerance:.0e})"
    print(f"max |Δw| = {res.max_abs_weight_diff:.3e}, max |Δloss| = "
          f"{res.max_abs_loss_diff:.3e} after {res.epochs} epochs in {res.dtype}: the engine and "
          f"PyTorch {verdict}; {res.engine_seconds:.2f} s vs {res.twin.seconds:.2f} s",
          file=file)
    for f in res.findings:
        print(f.format(), file=file)
    if args.out and res.epochs:
        print(f"figure: {args.out}", file=file)


def save_compare_figure(res, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(2, 1, figsize=(7, 6), sharex=True,
                                 gridspec_kw={"height_ratios": [2, 1]})
    t = np.arange(res.epochs)
    ax.plot(t, res.engine_train_loss, color="C0", lw=2.5, alpha=0.6, label="engine train")
    ax.plot(t, res.engine_test_loss, color="C1", lw=2.5, alpha=0.6, label="engine test")
    ax.plot(t, res.twin.train_loss, color="k", ls="--", lw=1, label=f"torch train ({res.dtype})")
    ax.plot(t, res.twin.test_loss, color="0.4", ls=":", lw=1, label=f"torch test ({res.dtype})")
    ax.set_ylabel("loss")
    ax.legend()
    ax.set_title(f"numpy engine vs PyTorch twin: max |Δw| = {res.max_abs_weight_diff:.2e}")
    for name, a, b, c in (("train", res.twin.train_loss, res.engine_train_loss, "C0"),
                          ("test", res.twin.test_loss, res.engine_test_loss, "C1")):
        worst = np.maximum.accumulate(np.abs(a - b)) if res.epochs else a
        bx.semilogy(t, np.maximum(worst, 1e-18), color=c, lw=1.5, label=f"{name} loss")
    cp = res.checkpoints
    bx.semilogy([r["epoch"] for r in cp], [max(r["max_abs_weight_diff"], 1e-18) for r in cp],
                "ko", ms=4, label="|Δw| (max)")
    bx.set_ylabel("largest |Δ| so far")
    bx.legend(fontsize=8)
    bx.set_xlabel("epoch")
    fig.tight_layout()

    save_figure(fig, path, dpi=120)
    plt.close(fig)


def cmd_gradcheck(args: argparse.Namespace) -> int:
    from ..trust import gradcheck  # the command's own module, loaded when it runs

    config = config_from_args(args)
    kw = {"autograd": False} if args.no_autograd else {}
    if args.step:
        kw["h"] = args.step
    res = gradcheck.check_config(config, **kw)
    if args.json:
        print(json.dumps(res.to_dict(), indent=1))
    else:
        print(res.table())
        for note in res.notes:
            print(f"note: {note}")
        print(res.summary())
    return 0 if res.passed else 1


def cmd_doctor(args: argparse.Namespace) -> int:
    from ..trust import doctor  # the command's own module, loaded when it runs

    config, setup = differences.from_args(args, config_from_args(args))
    prep = prepare(config)
    findings, trained = doctor.diagnose(config, quick=args.quick, prepared=prep,
                                        check_epochs=args.check_epochs,
                                        time_limit=args.time_limit, setup=setup)
    serious = sum(f.severity == "serious" for f in findings)
    if any(f.id == doctor.INTERRUPTED for f in findings):
        print(f"scratchnet: interrupted after {trained} epochs of the check run; the findings "
              "use those epochs", file=sys.stderr)
    if args.json:
        print(json.dumps({"setup": _describe(config, prep), "epochs_trained": trained,
                          "serious": serious, "findings": [f.to_dict() for f in findings]},
                         indent=1))
        return 1 if serious else 0
    how = "static checks only (--quick)" if trained == 0 else \
        f"static checks and a {trained}-epoch training run"
    print(f"doctor: {_describe(config, prep)}\nchecked: {how}\n")
    for f in findings:
        print(f.format() + "\n")
    counts = ", ".join(f"{sum(f.severity == s for f in findings)} {s}"
                       for s in doctor.SEVERITIES)
    print(("nothing found; " if not findings else "") + counts
          + (" — fix the serious findings first" if serious else " — nothing serious"))
    return 1 if serious else 0
