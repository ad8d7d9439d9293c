"""Flags shared by every command that trains: one place that turns argv into a TrainConfig."""
from __future__ import annotations

import argparse

from ..core.activations import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS
from ..core.losses import LOSSES
from ..core.network import INITS


def int_list(text: str) -> tuple[int, ...]:
    """``7`` or ``16,8`` → (16, 8), positive integers."""
    try:
        vals = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of integers")
    if not vals or any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError(f"'{text}' needs positive integers")
    return vals


def _checked(cast, ok, need: str):
    """An argparse type: ``cast`` the text, then insist on ``ok(value)``; the messages name
    the text, and argparse adds the flag."""
    kind = "an integer" if cast is int else "a number"

    def parse(text: str):
        try:
            v = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not {kind}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"'{text}' {need}")
        return v

    return parse


INF = float("inf")
positive_float = _checked(float, lambda v: 0 < v < INF, "must be a positive number")
nonneg_float = _checked(float, lambda v: 0 <= v < INF, "must be a number >= 0")
fraction = _checked(float, lambda v: 0 < v < 1, "must be between 0 and 1")
unit_interval = _checked(float, lambda v: 0 <= v < 1, "must be in [0, 1)")
nonneg_int = _checked(int, lambda v: v >= 0, "must be >= 0")
positive_int = _checked(int, lambda v: v >= 1, "must be >= 1")


def add_data_args(p: argparse.ArgumentParser, default: str | None = "ps5") -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", default=default, required=default is None,
                   help="CSV path or bundled name: ps5, moons, circles, xor, gaussians, spiral "
                   f"(default: {default})")
    g.add_argument("--features", type=lambda s: tuple(c.strip() for c in s.split(",")),
                   help="comma-separated feature columns (default: x_1,x_2)")
    g.add_argument("--target", help="target column (default: classification)")
    g.add_argument("--n-samples", type=nonneg_int, help="rows of a generated data set")
    g.add_argument("--noise", type=float, help="noise of a generated data set")
    g.add_argument("--data-seed", type=int, help="seed of a generated data set")
    g.add_argument("--n-classes", type=nonneg_int, help="classes of gaussians / spiral")


def add_training_args(p: argparse.ArgumentParser, epochs: int = 100_000) -> None:
    add_data_args(p)
    g = p.add_argument_group("network and training")
    g.add_argument("--hidden", type=int_list, default=(7,),
                   help="hidden layer sizes, e.g. 7 or 16,8 (default: 7)")
    g.add_argument("--activation", choices=HIDDEN_ACTIVATIONS, default="sigmoid",
                   help="hidden activation (default: sigmoid)")
    g.add_argument("--output", choices=OUTPUT_ACTIVATIONS, default="sigmoid",
                   help="output activation (default: sigmoid)")
    g.add_argument("--loss", choices=tuple(LOSSES), default="sse",
                   help="sse = ½Σ(y − ŷ)² (default), bce, ce (with softmax)")
    g.add_argument("--init", choices=INITS, default="normal",
                   help="normal = the problem set's np.random.randn draw (default), xavier, he")
    g.add_argument("--lr", type=positive_float, default=1e-4, help="learning rate η (1e-4)")
    g.add_argument("--epochs", type=nonneg_int, default=epochs,
                   help=f"full-batch epochs (default: {epochs})")
    g.add_argument("--seed", type=int, default=0, help="weight init seed (default: 0)")
    g.add_argument("--test-size", type=fraction, default=0.2, help="test fraction (0.2)")
    g.add_argument("--split-seed", type=int, default=0, help="split random_state (0)")
    g.add_argument("--faithful", action="store_true",
                   help="reproduce PS5 Question 2 exactly: standardize inputs AND 0/1 targets "
                   "with the whole data set's statistics")
    g.add_argument("--standardize-targets", action="store_true",
                   help="standardize the 0/1 targets as the problem set did")
    g.add_argument("--log-every", type=nonneg_int, default=1000,
                   help="print the loss every N epochs, 0 = never (default: 1000)")
    g.add_argument("--engine", choices=("auto", "numpy", "fast"), default="auto",
                   help="auto = compiled when available (default)")
    add_optimizer_args(p)


# (the names of the flags below = the TrainConfig fields they fill)
OPTIMIZER_FIELDS = ("optimizer", "batch_size", "momentum", "beta1", "beta2", "rho", "eps",
                    "schedule", "step_size", "gamma", "lr_min", "l2", "l1", "early_stopping",
                    "patience", "jitter", "monitor")


def add_optimizer_args(p: argparse.ArgumentParser) -> None:
    """Beyond the problem set's full-batch gradient descent (scratchnet.training.optim). With none of
    these flags a run is exactly the problem set's, on the compiled fast path."""
    from ..training.optim import OPTIMIZERS, SCHEDULES

    g = p.add_argument_group("beyond plain gradient descent (default: none of it)")
    g.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default="gd",
                   help="gd (default), sgd, momentum, nesterov, rmsprop, adam")
    g.add_argument("--batch-size", type=positive_int, default=None,
                   help="mini-batch size, rows reshuffled every epoch (default: full batch)")
    g.add_argument("--momentum", type=unit_interval, default=0.9,
                   help="μ of momentum / nesterov (0.9)")
    g.add_argument("--beta1", type=unit_interval, default=0.9, help="adam β₁ (0.9)")
    g.add_argument("--beta2", type=unit_interval, default=0.999, help="adam β₂ (0.999)")
    g.add_argument("--rho", type=unit_interval, default=0.99, help="rmsprop decay ρ (0.99)")
    g.add_argument("--eps", type=positive_float, default=1e-8, help="rmsprop / adam ε (1e-8)")
    g.add_argument("--schedule", choices=tuple(SCHEDULES), default="constant",
                   help="learning-rate schedule: constant (default), step, exponential, cosine")
    g.add_argument("--step-size", type=positive_int, default=1000,
                   help="step schedule: multiply η by --gamma every N epochs (1000)")
    g.add_argument("--gamma", type=positive_float, default=0.5,
                   help="step / exponential schedule factor (0.5)")
    g.add_argument("--lr-min", type=nonneg_float, default=0.0,
                   help="cosine schedule: η at the last epoch (0)")
    g.add_argument("--l2", type=nonneg_float, default=0.0,
                   help="L2 penalty ½λΣw² on the non-bias weights (0)")
    g.add_argument("--l1", type=nonneg_float, default=0.0,
                   help="L1 penalty λΣ|w| on the non-bias weights (0)")
    g.add_argument("--early-stopping", action="store_true",
                   help="stop when the test loss has not improved for --patience epochs and "
                   "keep the best weights")
    g.add_argument("--patience", type=positive_int, default=100,
                   help="early stopping patience in epochs (100)")
    g.add_argument("--jitter", type=nonneg_float, default=0.0,
                   help="augment: add N(0, σ²) noise to the standardized training inputs, "
                   "fresh every epoch (σ, default 0)")
    g.add_argument("--monitor", action="store_true",
                   help="record per-layer gradient norms and the share of saturated units "
                   "every epoch (vanishing gradients)")


def config_from_args(args: argparse.Namespace):
    from ..training.train import TrainConfig

    return TrainConfig(
        data=args.data, features=args.features, target=args.target, hidden=args.hidden,
        activation=args.activation, output=args.output, loss=args.loss, init=args.init,
        lr=args.lr, epochs=args.epochs, seed=args.seed, test_size=args.test_size,
        split_seed=args.split_seed, faithful=args.faithful,
        standardize_targets=args.standardize_targets, log_every=args.log_every,
        engine=args.engine, n_samples=args.n_samples, noise=args.noise,
        data_seed=args.data_seed, n_classes=args.n_classes,
        **{f: getattr(args, f) for f in OPTIMIZER_FIELDS if hasattr(args, f)})


def run_training(config, quiet: bool = False, desc: str = "training"):
    """Train with the problem set's log lines on stdout and a progress bar on stderr.

    Returns (result, exit_code): on Ctrl-C the partial result and 130; on divergence the
    partial result and 2 (the message printed). The caller saves whatever it gets."""
    import sys

    from ..core.errors import DivergedError
    from ..training.progress import ProgressBar
    from ..training.train import train

    bar = ProgressBar(config.epochs, desc, enabled=None if not quiet else False)

    def log(t, tr, te):
        if not quiet:
            if bar.enabled:
                sys.stderr.write("\r\033[K")
            print(f"epoch {t:>7}  train loss {tr:.6f}  test loss {te:.6f}", flush=True)

    try:
        result = train(config, on_log=log, progress=bar)
    except DivergedError as e:
        bar.close()
        print(f"scratchnet: {e}", file=sys.stderr)
        if not quiet:
            print("\n".join(extra_lines(e.result)))
        return e.result, 2
    if result.stopped == "interrupted":
        bar.close()
        print(f"scratchnet: interrupted after {result.final['epochs']} epochs; keeping what "
              "was trained", file=sys.stderr)
        return result, 130
    if not quiet and extra_lines(result):
        print("\n".join(extra_lines(result)))
    return result, 0


def extra_lines(result) -> list[str]:
    """What --early-stopping and --monitor add to the summary."""
    lines = []
    f = result.final
    if "best_epoch" in f:
        why = ("early stopping" if result.stopped == "early_stopped"
               else "the final weights were worse on the test rows")
        lines.append(f"{why}: keeping the weights of epoch {f['best_epoch']} "
                     f"(test loss {result.history.test_loss[f['best_epoch']]:.6f})")
    mon = getattr(result, "monitor", None)
    if mon is not None and len(mon["epoch"]):
        layout = result.model.layout
        lines.append("monitor: ‖∂E/∂W_l‖ per weight layer (first → output) and saturated "
                     "hidden units")
        for i in sorted({0, len(mon["epoch"]) - 1}):
            norms = "  ".join(f"{v:.3g}" for v in mon["grad_norms"][i])
            sat = "  ".join(f"{v:.0%}" for v in mon["saturated"][i])
            lines.append(f"  epoch {mon['epoch'][i]:>7}: {norms}   saturated: {sat or '-'}")
        g0 = mon["grad_norms"][0]
        if layout.n_layers > 1 and g0[-1] > 0 and g0[0] / g0[-1] < 1e-2:
            lines.append(f"  the first layer gets {g0[0] / g0[-1]:.1e} of the output layer's "
                         "gradient: vanishing gradients (try --activation tanh/relu with "
                         "--init xavier/he)")
    return lines
