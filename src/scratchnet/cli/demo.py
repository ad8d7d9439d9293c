"""``scratchnet demo vanishing | learning-rate | softmax | digits``: Question 4's concepts, run."""
from __future__ import annotations

import argparse
import sys

from ..core.errors import ScratchnetError
from ..core.io import check_folder
from .common import nonneg_int, option_type, positive_float, positive_int


def register(sub) -> None:
    p = sub.add_parser("demo", help="run one of Question 4's concepts and plot it",
                       description="Question 4 of the problem set, each concept a run you can "
                       "repeat: the numbers are printed, the figures written to --out.")
    demos = p.add_subparsers(dest="demo", metavar="DEMO", required=True)

    def add(name: str, help: str, epochs: int):
        q = demos.add_parser(name, help=help, description=help)
        q.add_argument("--out", metavar="DIR", help="write the figures (PNG) into DIR")
        q.add_argument("--epochs", type=nonneg_int, default=epochs,
                       help=f"training epochs (default: {epochs})")
        q.add_argument("--seed", type=option_type("seed"), default=0,
                       help="weight init seed (default: 0)")
        q.set_defaults(func=cmd_demo, demo_name=name)
        return q

    q = add("vanishing", "a deep sigmoid net with N(0,1) weights vs tanh/ReLU with Xavier/He "
            "weights: per-layer gradient norms and saturated units (vanishing.png, "
            "gradients.png)", 1500)
    q.add_argument("--data", default="spiral", help="bundled data set (default: spiral)")
    q.add_argument("--depth", type=positive_int, default=8, help="hidden layers (default: 8)")
    q.add_argument("--width", type=positive_int, default=16,
                   help="units per hidden layer (default: 16)")
    q.add_argument("--lr", type=positive_float, default=1e-3, help="η (default: 1e-3)")
    q = add("learning-rate", "loss curves for a range of η on one figure: too small, good, "
            "oscillating, diverging (learning-rate.png)", 2000)
    q.add_argument("--lrs", type=lambda s: tuple(positive_float(v) for v in s.split(",")),
                   help="comma-separated learning rates (default: 1e-4,1e-3,3e-3,2e-2,3e-2)")
    q.add_argument("--data", default="ps5", help="data set (default: ps5)")
    q = add("softmax", "softmax output on 3+ classes: class map and per-class probability "
            "maps (softmax.png)", 0)
    q.add_argument("--data", choices=("gaussians", "spiral"), default="gaussians",
                   help="gaussians (default) or spiral")
    q.add_argument("--n-classes", type=option_type("n_classes"), default=3,
                   help="classes, 3 or more (default: 3)")
    add("digits", "a small CNN on the 8×8 digits: accuracy, learned kernels, feature maps "
        "(digits-kernels.png, digits-feature-maps.png)", 30)


def cmd_demo(args: argparse.Namespace) -> int:
    from ..report.demos import DEMOS  # the command's own module, loaded when it runs

    check_folder(args.out, "--out")  # before training
    kw = {"out": args.out, "epochs": args.epochs, "seed": args.seed}
    name = args.demo_name
    if name == "vanishing":
        if args.depth < 1 or args.width < 1:
            raise ScratchnetError("--depth and --width must be >= 1")
        kw.update(data=args.data, depth=args.depth, width=args.width, lr=args.lr)
    elif name == "learning-rate":
        kw.update(data=args.data, **({"lrs": args.lrs} if args.lrs else {}))
    elif name == "softmax":
        if args.n_classes < 3:
            raise ScratchnetError("--n-classes: the softmax demo needs 3 or more classes")
        kw.update(data=args.data, n_classes=args.n_classes, epochs=args.epochs or None)
    result = DEMOS[name](**kw)
    # after Ctrl-C (SIGTERM, SIGHUP) the figures of what finished are written; stdout may be a
    # full pipe nobody reads, so the lines go to stderr, and the exit is 130 (main: 128 + sig)
    file = sys.stderr if result.interrupted else sys.stdout
    if result.interrupted:
        print(f"scratchnet: {result.interrupted}", file=sys.stderr)
    for line in result.lines:
        print(line, file=file)
    for path in result.figures:
        print(f"wrote {path}", file=file)
    return 130 if result.interrupted else 0
