"""Bundled data sets: the PS5 stand-in and the 2-D sets people expect, all deterministic.

The problem set's ``ps5_data.csv`` is not public.  ``ps5`` is a stand-in of the same shape made by
:func:`make_ps5` and committed as ``datasets/ps5.csv``: 100 rows, x_1 in about [−6, −4] and x_2 in
about [−900, 1035] (the ranges the problem set's map spans), two classes split by a curved border
that no straight line separates, and a few labels flipped as noise.
"""
from __future__ import annotations

import numpy as np

NAMES = ("ps5", "moons", "circles", "xor", "gaussians", "spiral")


def make_ps5(n_samples: int = 100, seed: int = 7, flip: float = 0.06):
    """The PS5 stand-in: (X of shape (n, 2), y of shape (n,) with labels 0/1).

    In unit coordinates u = x_1 + 5 ∈ [−1, 1], v = (x_2 − 67.5) / 967.5 ∈ [−1, 1] the border is
    the curve v = 1.5 u² − 0.6 + 0.25 sin(4u): class 1 above it.  A fraction ``flip`` of the
    labels is flipped.
    """
    rng = np.random.RandomState(seed)
    u = rng.uniform(-1, 1, n_samples)
    v = rng.uniform(-1, 1, n_samples)
    y = (v > 1.5 * u**2 - 0.6 + 0.25 * np.sin(4 * u)).astype(int)
    flipped = rng.choice(n_samples, size=int(round(flip * n_samples)), replace=False)
    y[flipped] = 1 - y[flipped]
    x1 = np.round(u - 5.0, 4)
    x2 = np.round(67.5 + 967.5 * v, 2)
    return np.column_stack([x1, x2]), y


def make_moons(n_samples=200, noise=0.1, seed=0):
    rng = np.random.RandomState(seed)
    n0 = n_samples // 2
    t0, t1 = np.linspace(0, np.pi, n0), np.linspace(0, np.pi, n_samples - n0)
    X = np.vstack([np.column_stack([np.cos(t0), np.sin(t0)]),
                   np.column_stack([1 - np.cos(t1), 0.5 - np.sin(t1)])])
    y = np.r_[np.zeros(n0, int), np.ones(n_samples - n0, int)]
    return X + noise * rng.randn(*X.shape), y


def make_circles(n_samples=200, noise=0.05, seed=0, factor=0.5):
    rng = np.random.RandomState(seed)
    n0 = n_samples // 2
    t0 = np.linspace(0, 2 * np.pi, n0, endpoint=False)
    t1 = np.linspace(0, 2 * np.pi, n_samples - n0, endpoint=False)
    X = np.vstack([np.column_stack([np.cos(t0), np.sin(t0)]),
                   factor * np.column_stack([np.cos(t1), np.sin(t1)])])
    y = np.r_[np.zeros(n0, int), np.ones(n_samples - n0, int)]
    return X + noise * rng.randn(*X.shape), y


def make_xor(n_samples=200, noise=0.3, seed=0):
    """Four clusters at (±1, ±1); class 1 where the signs differ."""
    rng = np.random.RandomState(seed)
    s = rng.choice([-1.0, 1.0], size=(n_samples, 2))
    y = (s[:, 0] != s[:, 1]).astype(int)
    return s + noise * rng.randn(n_samples, 2), y


def make_gaussians(n_samples=200, noise=0.8, seed=0, n_classes=2):
    """``n_classes`` round Gaussian blobs with centres evenly on a circle of radius 2."""
    rng = np.random.RandomState(seed)
    y = np.arange(n_samples) % n_classes
    angle = 2 * np.pi * y / n_classes + np.pi / 4
    centres = 2.0 * np.column_stack([np.cos(angle), np.sin(angle)])
    return centres + noise * rng.randn(n_samples, 2), y


def make_spiral(n_samples=300, noise=0.1, seed=0, n_classes=2):
    """``n_classes`` interleaved spiral arms, each going 1.5 turns around the origin."""
    rng = np.random.RandomState(seed)
    y = np.arange(n_samples) % n_classes
    r = np.linspace(0.05, 1.0, n_samples)
    rng.shuffle(r)
    t = 3 * np.pi * r + 2 * np.pi * y / n_classes
    X = np.column_stack([r * np.sin(t), r * np.cos(t)])
    return X + noise * rng.randn(n_samples, 2) * r[:, None], y


GENERATORS = {"ps5": make_ps5, "moons": make_moons, "circles": make_circles, "xor": make_xor,
              "gaussians": make_gaussians, "spiral": make_spiral}


def generate(name: str, n_samples=None, noise=None, seed=None, n_classes=None):
    """Call the generator ``name`` with the options it takes (None = its default)."""
    gen = GENERATORS[name]
    kw = {}
    if n_samples is not None:
        kw["n_samples"] = n_samples
    if seed is not None:
        kw["seed"] = seed
    if noise is not None and name != "ps5":
        kw["noise"] = noise
    if n_classes is not None and name in ("gaussians", "spiral"):
        kw["n_classes"] = n_classes
    return gen(**kw)
