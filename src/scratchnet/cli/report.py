"""``scratchnet ps5`` (the report), ``scratchnet diagram`` and ``scratchnet derive``."""
from __future__ import annotations

import argparse
import os
import sys

from ..core.activations import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS
from ..core.errors import ScratchnetError
from ..core.io import check_folder, check_writable, write_text
from ..core.losses import LOSSES
from ..core.network import Layout
from ..training.progress import ProgressBar
from .common import (add_training_args, config_from_args, int_list, nonneg_int, path,
                     positive_int)


def register(sub) -> None:
    p = sub.add_parser("ps5", help="the whole problem set as one offline report folder",
                       description="Train the network and write everything PS5 shows — data, "
                       "diagram, derivation, losses, maps, the PyTorch comparison and Question "
                       "4 measured — into a folder with one self-contained report.html.")
    add_training_args(p)
    g = p.add_argument_group("report")
    g.add_argument("--out", type=path, default="ps5-report", metavar="DIR",
                   help="output folder (default: ps5-report)")
    g.add_argument("--log-y", action="store_true", help="loss curves on a log scale")
    g.add_argument("--torch-epochs", type=nonneg_int, default=10_000,
                   help="epochs of the PyTorch twin, 0 = skip it (default: 10000; the twin "
                   "takes about 0.2 ms per epoch)")
    g.add_argument("--aux-epochs", type=nonneg_int, default=20_000,
                   help="epochs of the learning-rate comparison, 0 = skip it (default: 20000)")
    g.add_argument("--exercise", action="store_true",
                   help="hide the derivation, the worked step and the Question 4 answers "
                   "behind 'show solution' toggles (a hand-out for students)")
    g.add_argument("--pdf", action="store_true",
                   help="also print the report to report.pdf (headless Chromium)")
    g.add_argument("--notebook", action="store_true",
                   help="also write report.ipynb, the steps redone with the Python API")
    g.add_argument("--verbose", action="store_true",
                   help="print the problem set's loss line every --log-every epochs")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_ps5)

    d = sub.add_parser("diagram", help="draw the network diagram (daft-pgm)",
                       description="Draw the network with the problem set's weight labels.")
    _add_architecture_args(d)
    d.add_argument("--max-units", type=nonneg_int, default=10,
                   help="units drawn per layer before eliding with ⋮ (default: 10)")
    d.add_argument("--out", type=path, default="network.png", metavar="FILE",
                   help="PNG, SVG or PDF file (default: network.png)")
    d.set_defaults(func=cmd_diagram)

    v = sub.add_parser("derive", help="print the backprop derivation (sympy)",
                       description="Derive ∂E/∂w_k for every weight of the architecture in the "
                       "problem set's α/β notation.")
    _add_architecture_args(v)
    v.add_argument("--loss", choices=tuple(LOSSES), default="sse", help="loss (default: sse)")
    v.add_argument("--format", choices=("markdown", "latex"), default="markdown",
                   help="markdown with $…$ math (default) or a LaTeX document")
    v.add_argument("--out", type=path, metavar="FILE", help="write to FILE instead of stdout")
    v.set_defaults(func=cmd_derive)


def _add_architecture_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hidden", type=int_list, default=(7,),
                   help="hidden layer sizes, e.g. 7 or 16,8 (default: 7)")
    p.add_argument("--inputs", type=positive_int, default=2, help="number of inputs (2)")
    p.add_argument("--outputs", type=positive_int, default=1, help="number of outputs (1)")
    p.add_argument("--activation", choices=HIDDEN_ACTIVATIONS, default="sigmoid",
                   help="hidden activation (default: sigmoid)")
    p.add_argument("--output", choices=OUTPUT_ACTIVATIONS, default="sigmoid",
                   help="output activation (default: sigmoid)")


def _layout(args):
    n_out = args.outputs
    if args.output == "softmax" and n_out < 2:
        raise ScratchnetError("--output softmax needs --outputs K with K >= 2 classes")
    return Layout.build(args.inputs, args.hidden, n_out, args.activation, args.output)


def cmd_diagram(args: argparse.Namespace) -> int:
    import matplotlib

    from ..report.diagram import save_diagram  # the command's own module, loaded when it runs

    matplotlib.use("Agg")
    ext = os.path.splitext(args.out)[1].lower()
    if ext not in (".png", ".svg", ".pdf"):
        raise ScratchnetError(f"--out {args.out}: use a .png, .svg or .pdf file name")

    check_writable(args.out, "--out")
    layout = _layout(args)
    save_diagram(layout, args.out, max_units=max(args.max_units, 3))
    print(f"scratchnet diagram: {layout.describe()} network → {args.out}")
    return 0


def cmd_derive(args: argparse.Namespace) -> int:
    from ..report.derive import derive  # the command's own module, loaded when it runs

    if args.out:
        check_writable(args.out, "--out")
    der = derive(_layout(args), args.loss)
    text = der.to_markdown() if args.format == "markdown" else der.to_latex()
    if args.out:
        write_text(args.out, text)
        print(f"scratchnet derive: {len(der.weights)} derivatives → {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_ps5(args: argparse.Namespace) -> int:
    from ..report.build import ReportOptions, build_report, find_chromium  # (~60 ms)

    config = config_from_args(args)
    check_folder(args.out, "--out")  # before training, not after it
    if args.pdf:

        if find_chromium() is None:  # refuse before training, not after
            raise ScratchnetError("--pdf: needs Chromium (apt-get install chromium, or "
                                  "`make browser`)")
    bar = ProgressBar(config.epochs, "training", enabled=False if args.quiet else None)

    def status(step: str) -> None:  # one self-overwriting line on a terminal
        if bar.enabled and step != "training":
            sys.stderr.write(f"\rreport: {step} …\033[K")
            sys.stderr.flush()

    opts = ReportOptions(log_y=args.log_y, torch_epochs=args.torch_epochs,
                         aux_epochs=args.aux_epochs, verbose=args.verbose, progress=bar,
                         status=status, exercise=args.exercise, pdf=args.pdf,
                         notebook=args.notebook)
    rep = build_report(config, args.out, opts)
    if bar.enabled:
        sys.stderr.write("\r\033[K")
    if rep.code:
        bar.close()
        if "diverged" in rep.summary:
            print(f"scratchnet: {rep.summary['diverged']}", file=sys.stderr)
    s, f = rep.summary, rep.summary["final"]
    if s.get("interrupted"):
        where = (f"while {s['interrupted_during']}, after training" if "interrupted_during" in s
                 else "during training")
        print(f"scratchnet ps5: interrupted {where}: kept {f['epochs']} epochs; wrote the "
              f"report of what finished to {args.out}", file=sys.stderr)
    print(f"scratchnet ps5: {os.path.join(args.out, 'report.html')} — {s['layout']} on "
          f"{s['data']['source']}, {f['epochs']} epochs: train loss {f['train_loss']:.4g}, "
          f"test loss {f['test_loss']:.4g}, test acc {f['test_acc']:.3f}; training "
          f"{s['training_seconds']:.2f} s ({s['engine']}), report {s['report_seconds']:.2f} s")
    return rep.code
