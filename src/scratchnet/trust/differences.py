"""The five ways PS5 Question 3 differed from Question 2, each described by an option of
``scratchnet doctor`` and measured: what it does to the loss, the accuracy and the decision map.

| pitfall | difference | described by | right (Question 2's procedure, done right) | Question 3 |
|---|---|---|---|---|
| 2 | output activation | ``--output`` | ``sigmoid`` | ``identity``: ``Linear(7, 1)``, no ``Sigmoid`` |
| 1 | targets | ``--standardize-targets`` | the 0/1 labels | standardized labels (−1.04 / +0.96) |
| 4 | the map grid | ``--grid-stats`` | ``train``: the model's x_scaler | ``none``: the raw grid (Question 2: ``self``) |
| 5 | the loss | ``--loss-scale`` | ``half``: ½Σ(ŷ − y)² | ``sum``: Σ(ŷ − y)², ``MSELoss(reduction='sum')`` |
| 5 | initial weights | ``--init-from`` | ``seed``: N(0, 1) from the seed (w1..w29) | ``torch-default``: U(±1/√fan_in) |

``--ps5-q3`` sets all five as Question 3 had them.  Scaling the loss by c scales every gradient
by c, so for gradient descent ``--loss-scale sum`` *is* a step of 2η (``mean``: 2η/N): that is how
it is measured.  PyTorch's default ``Linear`` initialisation (``kaiming_uniform_`` with a = √5,
and the same bound for the biases) is drawn here with numpy: the same distribution, not torch's
numbers.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, replace

import numpy as np

from ..core.backprop import forward
from ..core.data import Standardizer
from ..core.errors import DivergedError
from ..core.network import Layout, init_weights
from ..training.train import train


@dataclass(frozen=True)
class Difference:
    key: str  # the field of TrainConfig or of Setup that describes it
    flag: str
    right: str  # the value of the right setup
    q3: str  # the value of PS5 Question 3
    number: int  # the doctor's pitfall number (docs/trust.md)
    what: str


DIFFERENCES = (
    Difference("output", "--output", "sigmoid", "identity", 2, "the output activation"),
    Difference("standardize_targets", "--standardize-targets", "off", "on", 1,
               "the class labels standardized as targets"),
    Difference("grid_stats", "--grid-stats", "train", "none", 4,
               "the statistics the map grid is standardized with"),
    Difference("loss_scale", "--loss-scale", "half", "sum", 5, "the loss that is minimized"),
    Difference("init_from", "--init-from", "seed", "torch-default", 5, "the initial weights"),
)
GRID_STATS = {"train": "the model's x_scaler (the training rows' mean and std)",
              "self": "the grid's own mean and std (PS5 Question 2's map)",
              "none": "not standardized at all (PS5 Question 3's map)"}
LOSS_SCALES = {"half": "½Σ(ŷ − y)², the problem set's E",
               "sum": "Σ(ŷ − y)² = MSELoss(reduction='sum') (PS5 Question 3): 2× E",
               "mean": "(1/N)Σ(ŷ − y)² = MSELoss()'s default: 2/N × E"}
INIT_FROM = {"seed": "N(0, 1) from --seed (the problem set's w1..w29)",
             "torch-default": "PyTorch's default for Linear: U(±1/√fan_in) (PS5 Question 3)"}


@dataclass(frozen=True)
class Setup:
    """What the user's own code does that a scratchnet run does not decide (the doctor's
    options); the defaults are the right setup."""

    grid_stats: str = "train"
    loss_scale: str = "half"
    init_from: str = "seed"

    @classmethod
    def ps5_q3(cls) -> "Setup":
        return cls("none", "sum", "torch-default")


def add_arguments(parser) -> None:
    """The doctor's options for the differences a training flag cannot describe."""
    g = parser.add_argument_group(
        "how your own code differs (PS5 Question 3's five differences; --output and "
        "--standardize-targets describe the other two)")
    g.add_argument("--grid-stats", choices=tuple(GRID_STATS), default="train",
                   help="how your map grid is standardized: " + "; ".join(
                       f"{k} = {v}" for k, v in GRID_STATS.items()) + " (default: train)")
    g.add_argument("--loss-scale", choices=tuple(LOSS_SCALES), default="half",
                   help="the loss your code minimizes: " + "; ".join(
                       f"{k} = {v}" for k, v in LOSS_SCALES.items()) + " (default: half)")
    g.add_argument("--init-from", choices=tuple(INIT_FROM), default="seed",
                   help="your initial weights: " + "; ".join(
                       f"{k} = {v}" for k, v in INIT_FROM.items()) + " (default: seed)")
    g.add_argument("--ps5-q3", action="store_true",
                   help="all five as PS5 Question 3 had them: --output identity "
                   "--standardize-targets --grid-stats none --loss-scale sum --init-from "
                   "torch-default")


def from_args(args, config):
    """(config, Setup) from the doctor's options; ``--ps5-q3`` also sets the two training
    options it implies."""
    if getattr(args, "ps5_q3", False):
        return replace(config, output="identity", standardize_targets=True), Setup.ps5_q3()
    return config, Setup(args.grid_stats, args.loss_scale, args.init_from)


def loss_factor(scale: str, n_rows: int) -> float:
    """The loss of ``scale`` as a multiple of E = ½Σ(ŷ − y)² (and so of the step η)."""
    return {"half": 1.0, "sum": 2.0, "mean": 2.0 / n_rows}[scale]


def torch_default_weights(layout: Layout, seed: int = 0) -> np.ndarray:
    """PyTorch's default ``Linear`` initialisation, weights and biases U(−1/√fan_in,
    1/√fan_in), drawn with numpy into the flat w (P,)."""
    rng = np.random.default_rng(seed)
    w = np.empty(layout.n_params)
    for l, W in enumerate(layout.views(w)):  # W: (fan_in + 1, fan_out), bias row first
        bound = 1.0 / np.sqrt(layout.sizes[l])
        W[...] = rng.uniform(-bound, bound, W.shape)
    return w


def present(config, prep, setup: Setup) -> list[Difference]:
    """The differences this setup has (the two training options only on 0/1 labels with one
    output, where Question 2's setup is the right one)."""
    binary = prep.layout.sizes[-1] == 1 and prep.classes.size == 2
    has = {"output": binary and config.output == "identity",
           "standardize_targets": binary and prep.y_scaler is not None,
           "grid_stats": setup.grid_stats != "train", "loss_scale": setup.loss_scale != "half",
           "init_from": setup.init_from != "seed"}
    return [d for d in DIFFERENCES if has[d.key]]


def right_config(config):
    """The setup with none of the two training-option differences (sigmoid output, 0/1 labels,
    the training rows' statistics), on the engine ``config`` picks (the compiled one by
    default: the five runs then take about a second)."""
    out = "sigmoid" if config.output == "identity" else config.output
    return replace(config, output=out, standardize_targets=False, faithful=False, log_every=0)


def map_grid(X: np.ndarray, n: int = 100) -> np.ndarray:
    """The raw map grid: n × n points over the data's range (two features, as the problem
    set's map), else the data rows themselves."""
    if X.shape[1] != 2:
        return X
    g1, g2 = (np.linspace(X[:, j].min(), X[:, j].max(), n) for j in range(2))
    m1, m2 = np.meshgrid(g1, g2)
    return np.column_stack([m1.ravel(), m2.ravel()])  # (n², 2)


def grid_inputs(grid: np.ndarray, x_scaler: Standardizer, how: str) -> np.ndarray:
    """What the network is fed for the raw ``grid``, standardized as ``how`` says."""
    if how == "train":
        return x_scaler.transform(grid)
    if how == "self":
        return Standardizer.fit(grid).transform(grid)
    return np.asarray(grid, dtype=float)


@dataclass
class Outcome:
    """One measured run: its train loss (E = ½Σ(ŷ − y)² on its own targets), its test accuracy
    and its map (the network's output at every grid point, and the class it says)."""

    epochs: int
    train_loss: float
    test_acc: float
    y_grid: np.ndarray  # (G,) ŷ at each grid point
    classes: np.ndarray  # (G,) bool: class 1 at each grid point
    layout: Layout
    w: np.ndarray  # (P,) the trained weights
    x_scaler: Standardizer
    threshold: float

    def map(self, grid: np.ndarray, how: str) -> tuple[np.ndarray, np.ndarray]:
        """(ŷ, class 1?) at the raw ``grid`` points standardized as ``how`` says."""
        y = forward(self.layout, self.w, grid_inputs(grid, self.x_scaler, how))[-1][:, 0]
        return y, y > self.threshold


class Interrupted(Exception):
    """Ctrl-C (or SIGTERM/SIGHUP) while the effects were measured: ``effects`` holds those
    measured before it."""

    def __init__(self, effects: list):
        super().__init__("interrupted")
        self.effects = effects


def _trained(cfg, w0):
    """``train`` of a measurement run; an interrupt (which ``train`` turns into a result cut
    short) stops the measuring instead of going on to the next run."""
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            res = train(cfg, w0=w0)
    except DivergedError as e:
        res = e.result
    if res.stopped == "interrupted":
        raise KeyboardInterrupt
    return res


def _run(cfg, w0, epochs: int, grid) -> Outcome:
    res = _trained(replace(cfg, epochs=epochs), w0)
    prep = res.prepared
    out = Outcome(int(res.final["epochs"]), float(res.final["train_loss"]),
                  float(res.final["test_acc"]), np.empty(0), np.empty(0, bool), prep.layout,
                  res.model.w, prep.x_scaler, prep.problem.threshold)
    out.y_grid, out.classes = out.map(grid, "train")
    return out


def _epochs(cfg, w0, runs: int, check_epochs: int, time_limit: float) -> int:
    """Epochs per run so that ``runs`` runs take about ``time_limit`` seconds (timed on a
    second pilot run: the first may load or compile the engine)."""
    pilot = min(1000, cfg.epochs, check_epochs)
    for _ in range(2):
        t0 = time.perf_counter()
        _trained(replace(cfg, epochs=pilot), w0)
    per_epoch = (time.perf_counter() - t0) / max(pilot, 1)
    budget = int(time_limit / max(per_epoch * runs, 1e-9))
    return max(pilot, min(cfg.epochs, check_epochs, budget))


@dataclass
class Effect:
    key: str
    text: str  # one line, with the numbers
    numbers: dict = dataclasses.field(default_factory=dict)


def _compare(right: Outcome, other: Outcome, loss_comparable: bool = True) -> tuple[str, dict]:
    changed = float(np.mean(right.classes != other.classes))
    nums = {"map_changed_share": changed, "test_acc": other.test_acc,
            "right_test_acc": right.test_acc, "train_loss": other.train_loss,
            "right_train_loss": right.train_loss}
    loss = (f"train loss E {right.train_loss:.4g} → {other.train_loss:.4g}" if loss_comparable
            else f"train loss {other.train_loss:.4g} on its own targets (not comparable with "
            f"{right.train_loss:.4g})")
    return (f"{changed:.1%} of the map's grid points change class; test accuracy "
            f"{right.test_acc:.3f} → {other.test_acc:.3f}; {loss}"), nums


def measure(config, prep, setup: Setup, diffs: list[Difference], *, w0=None,
            check_epochs: int = 20_000, time_limit: float = 5.0) -> tuple[list[Effect], int]:
    """Each difference's effect: the right setup against the right setup with that one
    difference (and, with two or more, against all of them together), same epochs, same
    seed.  Returns (effects, epochs per run)."""
    if not diffs:
        return [], 0
    out: list[Effect] = []
    try:
        return _measure(config, prep, setup, diffs, w0, check_epochs, time_limit, out)
    except KeyboardInterrupt:
        raise Interrupted(out) from None


def _measure(config, prep, setup, diffs, w0, check_epochs, time_limit, out: list):
    keys = {d.key for d in diffs}
    cfg = right_config(config)
    lay = prep.layout
    w_seed = init_weights(lay, config.init, config.seed) if w0 is None else np.asarray(w0)
    w_torch = torch_default_weights(lay, config.seed)
    trained = keys - {"grid_stats"}
    n = _epochs(cfg, w_seed, 1 + len(trained) + (len(diffs) > 1), check_epochs, time_limit)
    grid = map_grid(prep.dataset.X)
    right = _run(cfg, w_seed, n, grid)
    c = loss_factor(setup.loss_scale, len(prep.train_idx))
    variants = {"output": (replace(cfg, output="identity"), w_seed),
                "standardize_targets": (replace(cfg, standardize_targets=True), w_seed),
                "loss_scale": (replace(cfg, lr=cfg.lr * c), w_seed),
                "init_from": (cfg, w_torch)}
    for d in diffs:
        if d.key == "grid_stats":
            out.append(_grid_effect(right, grid, setup.grid_stats))
            continue
        vcfg, vw = variants[d.key]
        other = _run(vcfg, vw, n, grid)
        text, nums = _compare(right, other, d.key != "standardize_targets")
        more = _extra(d.key, setup, c, right, other, w_seed, w_torch)
        out.append(Effect(d.key, f"after {n:,} epochs: {text}{more}", nums))
    if len(diffs) > 1:
        out.append(_together(cfg, keys, setup, c, w_seed, w_torch, n, grid, right))
    return out, n


def _grid_effect(right: Outcome, grid: np.ndarray, how: str) -> Effect:
    """The same trained network; only the grid's standardization differs."""
    y, cls = right.map(grid, how)
    changed = float(np.mean(cls != right.classes))
    return Effect("grid_stats",
                  f"the same trained network's map with the grid standardized by '{how}' "
                  f"instead of 'train': {changed:.1%} of the map's grid points change class; it says "
                  f"class 1 on {np.mean(cls):.1%} of the grid (right: "
                  f"{np.mean(right.classes):.1%}); max |Δŷ| = {np.max(np.abs(y - right.y_grid)):.3g}",
                  {"map_changed_share": changed, "class1_share": float(np.mean(cls)),
                   "right_class1_share": float(np.mean(right.classes))})


def _extra(key: str, setup: Setup, c: float, right: Outcome, other: Outcome, w_seed,
           w_torch) -> str:
    """What else a difference changes, beyond the map, the accuracy and the loss."""
    if key == "output":
        return (f"; its output spans [{other.y_grid.min():.3g}, {other.y_grid.max():.3g}] on "
                "the grid (a sigmoid's stays inside (0, 1)): not a probability")
    if key == "standardize_targets":
        return f"; the decision threshold moved from 0.5 to {other.threshold:.3g}"
    if key == "loss_scale":
        return (f"; {setup.loss_scale} = {c:.3g} × E, so every gradient and step is {c:.3g}× "
                f"(η → {c:.3g}η) and the printed loss is {c:.3g}× E ({c * other.train_loss:.4g} "
                f"for E = {other.train_loss:.4g}); max |Δw| after training "
                f"{np.max(np.abs(other.w - right.w)):.3g}")
    return (f"; max |Δw₀| = {np.max(np.abs(w_torch - w_seed)):.3g} before training, max |Δw| = "
            f"{np.max(np.abs(other.w - right.w)):.3g} after it: different starting points lead "
            "to different weights")


def _together(cfg, keys: set, setup: Setup, c: float, w_seed, w_torch, n: int, grid,
              right: Outcome) -> Effect:
    """All the differences present at once, as the user's code has them."""
    vcfg = replace(cfg, output="identity" if "output" in keys else cfg.output,
                   standardize_targets="standardize_targets" in keys, lr=cfg.lr * c)
    other = _run(vcfg, w_torch if "init_from" in keys else w_seed, n, grid)
    other.y_grid, other.classes = other.map(grid, setup.grid_stats)
    text, nums = _compare(right, other, "standardize_targets" not in keys)
    return Effect("together", f"all {len(keys)} together, after {n:,} epochs: {text}", nums)
