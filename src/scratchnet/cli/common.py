"""Flags shared by every command that trains: one place that turns argv into a TrainConfig.

The training flags are generated from the options table (``scratchnet.training.options``):
spelling (``--lr-min`` for ``lr_min``), default, help, choices, and an argparse ``type=`` that
parses and checks the text, so ``--lr -1`` fails as ``argument --lr: must be a positive number,
got -1``.  A rule between options (``--lr-min`` above ``--lr``) is refused when the TrainConfig
is built; ``scratchnet.cli.main`` words that error with the flags' spelling.
"""
from __future__ import annotations

import argparse
import math
import sys

from ..core.errors import DivergedError, OptionError
from ..training.options import OPTIONS, flag, parse_text
from ..training.progress import ProgressBar
from ..training.train import TrainConfig, train


def option_type(name: str):
    """The argparse ``type=`` of option ``name``: the table's parser and check, its refusal
    worded with the flags' spelling (argparse adds ``argument --flag:``)."""

    def parse(text: str):
        try:
            return parse_text(name, text)
        except OptionError as e:
            raise argparse.ArgumentTypeError(e.explain(flag)) from None

    parse.__name__ = name
    return parse


def int_list(text: str) -> tuple[int, ...]:
    """``7`` or ``16,8`` → (16, 8), positive integers (the table's ``hidden``)."""
    return option_type("hidden")(text)


def add_option(g, name: str, **override) -> None:
    """One table option as a flag of the argument group ``g`` (``override``: e.g. a default)."""
    o = OPTIONS[name]
    kw = dict(default=o.default, help=o.help)
    if o.kind == "bool":
        kw["action"] = "store_true"
    elif o.kind == "choice":
        kw["choices"] = o.choices
    else:
        kw["type"] = option_type(name)
    g.add_argument(o.flag, **(kw | override))


def _checked(cast, ok, need: str):
    """An argparse type for a flag outside the table: ``cast`` the text, then insist on
    ``ok(value)``; the messages name the text, and argparse adds the flag."""
    kind = "an integer" if cast is int else "a number"

    def parse(text: str):
        try:
            v = cast(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"'{text}' is not {kind}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"'{text}' {need}")
        return v

    return parse


positive_float = _checked(float, lambda v: 0 < v < math.inf, "must be a positive number")
nonneg_int = _checked(int, lambda v: v >= 0, "must be >= 0")
positive_int = _checked(int, lambda v: v >= 1, "must be >= 1")
# a time in seconds: at most a day, so that deadlines and epoch counts derived from it stay finite
seconds = _checked(float, lambda v: 0 < v <= 86_400, "must be a number of seconds in (0, 86400]")


def path(text: str) -> str:
    """An output or input path: not empty (``--save ''`` would name no file)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path names no file")
    return text


# which table options each flag group holds, in --help order
DATA_OPTIONS = ("data", "features", "target", "n_samples", "noise", "data_seed", "n_classes")
OPTIMIZER_FIELDS = tuple(n for n, o in OPTIONS.items() if o.group.startswith("beyond"))
TRAINING_OPTIONS = tuple(n for n in OPTIONS if n not in DATA_OPTIONS + OPTIMIZER_FIELDS)


def add_data_args(p: argparse.ArgumentParser, default: str | None = "ps5") -> None:
    g = p.add_argument_group("data")
    add_option(g, "data", default=default, required=default is None,
               help=f"{OPTIONS['data'].help} (default: {default})")
    for name in DATA_OPTIONS[1:]:
        add_option(g, name)


def add_training_args(p: argparse.ArgumentParser, epochs: int = 100_000) -> None:
    add_data_args(p)
    g = p.add_argument_group("network and training")
    for name in TRAINING_OPTIONS:  # --epochs: with this command's default
        add_option(g, name, **({"default": epochs, "help": f"full-batch epochs (default: "
                                f"{epochs})"} if name == "epochs" else {}))
    add_optimizer_args(p)


def add_optimizer_args(p: argparse.ArgumentParser) -> None:
    """Beyond the problem set's full-batch gradient descent (scratchnet.training.optim). With
    none of these flags a run is exactly the problem set's, on the compiled fast path."""
    g = p.add_argument_group(OPTIONS["optimizer"].group)
    for name in OPTIMIZER_FIELDS:
        add_option(g, name)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of parsed flags: one field per table option the command has."""
    return TrainConfig(**{n: getattr(args, n) for n in OPTIONS if hasattr(args, n)})


def run_training(config, quiet: bool = False, desc: str = "training"):
    """Train with the problem set's log lines on stdout and a progress bar on stderr.

    Returns (result, exit_code): on Ctrl-C the partial result and 130; on divergence the
    partial result and 2 (the message printed). The caller saves whatever it gets."""
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
        watched = ("test" if getattr(result.prepared, "val_idx", None) is None
                   else "validation")  # the test split only by --validation-fraction 0
        why = ("early stopping" if result.stopped == "early_stopped"
               else f"the final weights were worse on the {watched} rows")
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
