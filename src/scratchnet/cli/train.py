"""``scratchnet train`` and ``scratchnet predict``."""
from __future__ import annotations

import argparse
import csv
import sys

import numpy as np

from ..core.data import read_csv
from ..core.errors import DataError, ScratchnetError
from ..core.io import atomic_write, check_writable
from ..core.model import Model
from ..training.run import deferred_interrupts
from .common import add_training_args, config_from_args, path, run_training


def register(sub) -> None:
    p = sub.add_parser("train", help="train a network (full-batch gradient descent)",
                       description="Train a network; prints the problem set's loss log and "
                       "the final train/test loss and accuracy.")
    add_training_args(p)
    p.add_argument("--save", type=path, metavar="MODEL.json", help="write the trained model (JSON)")
    p.add_argument("--history", type=path, metavar="HISTORY.csv",
                   help="write the per-epoch history")
    p.add_argument("--quiet", action="store_true", help="no log lines, no progress bar")
    p.set_defaults(func=cmd_train)

    q = sub.add_parser("predict", help="predict with a saved model",
                       description="Add probability and prediction columns to a CSV.")
    q.add_argument("--model", type=path, required=True, help="model JSON written by train --save")
    q.add_argument("--data", type=path, required=True, help="CSV with the model's feature columns")
    q.add_argument("--out", type=path, help="output CSV (default: print to stdout)")
    q.set_defaults(func=cmd_predict)


def save_outputs(result, save: str | None, history: str | None) -> None:
    """Write each output that can be written; the first failure is raised after the others
    were tried (a model that cannot be saved must not cost the history too)."""
    failed = None
    for path, write in ((save, result.model.save), (history, result.history.to_csv)):
        if path:
            try:
                write(path)
            except ScratchnetError as e:
                failed = failed or e
    if failed:
        raise failed


def print_summary(result, file=None) -> None:
    f = result.final
    print(f"final ({f['epochs']} epochs, {f['seconds']:.2f} s, {f['engine']} engine): "
          f"train loss {f['train_loss']:.6f}  test loss {f['test_loss']:.6f}  "
          f"train acc {f['train_acc']:.3f}  test acc {f['test_acc']:.3f}", file=file)


def cmd_train(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    check_writable(args.save, "--save")  # before training, not after minutes of it
    check_writable(args.history, "--history")
    result, code = run_training(config, quiet=args.quiet)
    # partial results are kept too; a second Ctrl-C waits until both files are written
    with deferred_interrupts():
        save_outputs(result, args.save, args.history)
    # after an interrupt stdout may be a full pipe nobody reads: the summary goes to stderr
    print_summary(result, sys.stderr if result.stopped == "interrupted" else sys.stdout)
    return code


def cmd_predict(args: argparse.Namespace) -> int:
    """The input is read once (a pipe works), its rows echoed with the model's columns added;
    ``--out`` is checked before any work and written atomically."""
    check_writable(args.out, "--out")
    model = Model.load(args.model)
    ds = read_csv(args.data, model.feature_names, model.target_name, target_optional=True,
                  keep_rows=True)
    with np.errstate(all="ignore"):  # a non-finite output is named below, not warned about
        proba = model.predict_proba(ds.X)  # the model's stored standardizer is applied inside
    bad = np.flatnonzero(~np.isfinite(proba).all(axis=1))
    if bad.size:
        raise DataError(f"{ds.source} row {bad[0] + 2}: the model's output is not a finite "
                        "number for these inputs (values far outside the training data?)")
    pred = model.classes[proba.argmax(axis=1)] if model.classes is not None \
        else proba.argmax(axis=1)
    rows = ds.rows
    if model.layout.sizes[-1] == 1:
        extra_head, extra = ["probability"], proba[:, 1:]
    else:
        extra_head, extra = [f"probability_{c:g}" for c in model.classes], proba

    def write(out) -> None:
        wr = csv.writer(out)
        wr.writerow(rows[0] + extra_head + ["prediction"])
        for row, e, c in zip(rows[1:], extra, pred):
            wr.writerow(row + [f"{v:.6g}" for v in e] + [f"{c:g}"])

    if args.out:
        with atomic_write(args.out, newline="") as fh:
            write(fh)
    else:
        write(sys.stdout)
    if not np.isnan(ds.y).any():
        acc = float(np.mean(pred == ds.y))
        print(f"accuracy {acc:.4f} on {len(ds.y)} rows",
              file=sys.stdout if args.out else sys.stderr)
    return 0
