"""An independent, deliberately naive implementation of the problem set's Question 2 procedure.

Written for the tests only, in the problem set's per-weight style (29 named scalars, one
gradient line per weight), sharing no code with scratchnet: it reads the CSV with the csv
module, standardizes with numpy, splits with scikit-learn's own train_test_split and draws the
weights with np.random.seed / randn as the problem set does.
"""
import csv

import numpy as np
from sklearn.model_selection import train_test_split


def s(a):
    return 1.0 / (1.0 + np.exp(-a))


def load_standardized(path):
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    X = np.array([[float(r["x_1"]), float(r["x_2"])] for r in rows])
    Y = np.array([[float(r["classification"])] for r in rows])
    x = (X - X.mean(axis=0)) / X.std(axis=0)
    y = (Y - Y.mean()) / Y.std()
    return train_test_split(x, y, test_size=0.2, random_state=0)


def initial_weights():
    np.random.seed(0)
    b = list(np.random.randn(7))  # w1..w7   bias → n1..n7
    a1 = list(np.random.randn(7))  # w8..w14  x_1 → n1..n7
    a2 = list(np.random.randn(7))  # w15..w21 x_2 → n1..n7
    o = list(np.random.randn(8))  # w22..w29 bias, n1..n7 → output
    return b + a1 + a2 + o


def hidden(w, x):
    """β_Hj for j = 1..7 as a list of (N,) columns."""
    return [s(w[j] + w[7 + j] * x[:, 0] + w[14 + j] * x[:, 1]) for j in range(7)]


def output(w, betas):
    a = w[21] + sum(w[22 + j] * betas[j] for j in range(7))
    return s(a)


def run(path, epochs, eta=1e-4):
    """Returns (weights after `epochs` updates, train losses, test losses)."""
    x_tr, x_te, y_tr, y_te = load_standardized(path)
    y_tr, y_te = y_tr[:, 0], y_te[:, 0]
    w = initial_weights()
    train_losses, test_losses = [], []
    for _ in range(epochs):
        bh = hidden(w, x_tr)
        yp = output(w, bh)
        yt = output(w, hidden(w, x_te))
        train_losses.append(0.5 * np.sum((yp - y_tr) ** 2))
        test_losses.append(0.5 * np.sum((yt - y_te) ** 2))
        sig = (yp - y_tr) * yp * (1 - yp)
        g = [0.0] * 29
        g[21] = np.sum(sig)  # w22
        for j in range(7):
            g[22 + j] = np.sum(sig * bh[j])  # w23..w29
            back = sig * w[22 + j] * bh[j] * (1 - bh[j])
            g[j] = np.sum(back)  # w1..w7
            g[7 + j] = np.sum(back * x_tr[:, 0])  # w8..w14
            g[14 + j] = np.sum(back * x_tr[:, 1])  # w15..w21
        w = [w[k] - eta * g[k] for k in range(29)]
    return np.array(w), np.array(train_losses), np.array(test_losses)
