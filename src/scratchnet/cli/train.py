"""``scratchnet train`` and ``scratchnet predict``."""
from __future__ import annotations

import argparse
import csv
import sys

from .common import add_training_args, config_from_args, run_training


def register(sub) -> None:
    p = sub.add_parser("train", help="train a network (full-batch gradient descent)",
                       description="Train a network; prints the problem set's loss log and "
                       "the final train/test loss and accuracy.")
    add_training_args(p)
    p.add_argument("--save", metavar="MODEL.json", help="write the trained model (JSON)")
    p.add_argument("--history", metavar="HISTORY.csv", help="write the per-epoch history")
    p.add_argument("--quiet", action="store_true", help="no log lines, no progress bar")
    p.set_defaults(func=cmd_train)

    q = sub.add_parser("predict", help="predict with a saved model",
                       description="Add probability and prediction columns to a CSV.")
    q.add_argument("--model", required=True, help="model JSON written by train --save")
    q.add_argument("--data", required=True, help="CSV with the model's feature columns")
    q.add_argument("--out", help="output CSV (default: print to stdout)")
    q.set_defaults(func=cmd_predict)


def save_outputs(result, save: str | None, history: str | None) -> None:
    if save:
        result.model.save(save)
    if history:
        result.history.to_csv(history)


def print_summary(result) -> None:
    f = result.final
    print(f"final ({f['epochs']} epochs, {f['seconds']:.2f} s, {f['engine']} engine): "
          f"train loss {f['train_loss']:.6f}  test loss {f['test_loss']:.6f}  "
          f"train acc {f['train_acc']:.3f}  test acc {f['test_acc']:.3f}")


def cmd_train(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    result, code = run_training(config, quiet=args.quiet)
    save_outputs(result, args.save, args.history)  # partial results are kept too
    print_summary(result)
    return code


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from ..core.data import read_csv
    from ..core.model import Model

    model = Model.load(args.model)
    ds = read_csv(args.data, model.feature_names, model.target_name, target_optional=True)
    proba = model.predict_proba(ds.X)  # the model's stored standardizer is applied inside
    pred = model.predict(ds.X)
    with open(args.data, newline="", encoding="utf-8-sig") as fh:
        rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    if model.layout.sizes[-1] == 1:
        extra_head, extra = ["probability"], proba[:, 1:]
    else:
        extra_head, extra = [f"probability_{c:g}" for c in model.classes], proba
    out = open(args.out, "w", newline="") if args.out else sys.stdout
    try:
        wr = csv.writer(out)
        wr.writerow(rows[0] + extra_head + ["prediction"])
        for row, e, c in zip(rows[1:], extra, pred):
            wr.writerow(row + [f"{v:.6g}" for v in e] + [f"{c:g}"])
    finally:
        if args.out:
            out.close()
    if not np.isnan(ds.y).any():
        acc = float(np.mean(pred == ds.y))
        print(f"accuracy {acc:.4f} on {len(ds.y)} rows",
              file=sys.stdout if args.out else sys.stderr)
    return 0
