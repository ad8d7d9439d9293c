"""``scratchnet doctor``: what is wrong with a setup, in plain words, with the numbers seen.

Every check returns a list of :class:`Finding` (empty when all is well). The numbers 1–9 are the
pitfalls of docs/trust.md, most of them met in PS5:

1 targets outside the output's range / standardized class labels   6 learning rate too large or small
2 no output activation on class labels (PS5 Question 3)             7 saturated units, vanishing gradients
3 features on very different scales or not standardized             8 test loss rising while train falls
4 a grid, new data or test rows standardized with other statistics  9 imbalance, duplicates, rows per weight
5 two runs compared from different initial weights or losses

Static checks look at the prepared data and the initial weights; dynamic ones at a short training
run of bounded time (``--quick`` skips them). Exit code 1 when anything is ``serious``.

PS5 Question 3's five differences (``differences.DIFFERENCES``) are described by ``--output``,
``--standardize-targets`` and the doctor's ``--grid-stats``, ``--loss-scale``, ``--init-from``
(``--ps5-q3``: all five); each one present is named (findings 1, 2, 4, 5) and, unless
``--quick``, measured: the right setup against it with that one difference, same seed and epochs.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from ..core.activations import ACTIVATIONS
from ..core.backprop import forward, loss_and_grad
from ..core.data import Standardizer
from ..core.errors import DivergedError
from ..core.network import Layout, init_weights
from ..training.train import prepare, train
from . import differences as D

SEVERITIES = ("serious", "warning", "info")


@dataclass
class Finding:
    number: int  # the pitfall's number (1–9, docs/trust.md)
    id: str
    severity: str  # serious | warning | info
    title: str
    saw: str  # what was measured, with numbers
    why: str
    fix: str
    effect: str = ""  # measured: what this difference alone does (PS5 Question 3's five)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def format(self) -> str:
        return (f"[{self.number}] {self.severity.upper():8} {self.id}: {self.title}\n"
                f"    saw: {self.saw}\n    why: {self.why}\n    fix: {self.fix}"
                + (f"\n    effect: {self.effect}" if self.effect else ""))


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Most serious first, then by pitfall number; one finding per id (the most serious)."""
    best: dict[str, Finding] = {}
    for f in findings:
        if f.id not in best or SEVERITIES.index(f.severity) < SEVERITIES.index(best[f.id].severity):
            best[f.id] = f
    return sorted(best.values(), key=lambda f: (SEVERITIES.index(f.severity), f.number))


def _fmt(v) -> str:
    return ", ".join(f"{x:.4g}" for x in np.atleast_1d(v))


# ---- 1, 2: the targets and the output activation ---------------------------------------------
def check_targets(prep) -> list[Finding]:
    """1: targets the output can never produce, or class labels that were standardized."""
    act, Y = ACTIVATIONS[prep.layout.output], np.vstack([prep.problem.y_train,
                                                         prep.problem.y_test])
    values = np.unique(Y)
    outside = (Y < act.low) | (Y > act.high)
    shown = _fmt(values[:4]) + ("…" if values.size > 4 else "")
    if outside.any():
        gap = np.maximum(act.low - prep.problem.y_train, prep.problem.y_train - act.high)
        floor = 0.5 * float(np.sum(np.maximum(gap, 0.0) ** 2))
        return [Finding(
            1, "targets-out-of-range", "serious", "targets outside the output activation's range",
            f"targets take the values {shown}; a {act.name} output only reaches "
            f"[{act.low:g}, {act.high:g}]: {int(outside.sum())} of {Y.size} targets lie outside",
            "the network can never produce those targets, so the training loss can never fall "
            f"below ½Σ(distance to the range)² = {floor:.4g} however long it trains (PS5 "
            "Question 2's loss stayed high partly for this reason)",
            "do not standardize class labels: drop --standardize-targets / --faithful "
            "(targets 0/1 for a sigmoid output)")]
    if prep.y_scaler is not None:
        s = float(np.atleast_1d(prep.y_scaler.std)[0])
        return [Finding(
            1, "targets-out-of-range", "serious", "the class labels were standardized",
            f"the 0/1 labels became {shown} (mean {_fmt(prep.y_scaler.mean)}, std {s:.4g}); the "
            f"decision threshold moved from 0.5 to {prep.problem.threshold:.4g}",
            "the outputs are no longer probabilities of class 1, and every squared error is "
            f"1/std² = {1 / s ** 2:.3g}× what it is on 0/1 labels: losses of this run cannot "
            "be compared with a run on the labels (PS5 Question 3 against Question 2)",
            "train on the 0/1 labels: drop --standardize-targets / --faithful")]
    return []


def check_output_activation(prep, w: np.ndarray | None = None) -> list[Finding]:
    """2: an identity output layer while the targets are class labels (PS5 Question 3)."""
    if prep.layout.output != "identity":
        return []
    lay = prep.layout
    w = init_weights(lay) if w is None else w
    y_hat = forward(lay, w, prep.problem.x_train)[-1]
    return [Finding(
        2, "no-output-activation", "serious", "no output activation while the targets are "
        "class labels",
        f"--output identity with {prep.classes.size} classes ({_fmt(prep.classes)}); at the "
        f"initial weights ŷ ranges over [{y_hat.min():.3g}, {y_hat.max():.3g}] on the training "
        "rows",
        "a linear output is unbounded, so ŷ is not a probability, and squared error then "
        "punishes confident right answers (ŷ = 2 on a class-1 row costs as much as ŷ = 0): "
        "this is linear regression on labels — PS5 Question 3's model (Linear(7, 1) with no "
        "Sigmoid), which is why it could not match Question 2",
        "--output sigmoid (with --loss sse or bce), or --output softmax --loss ce")]


# ---- 3, 4: standardization -------------------------------------------------------------------
def check_feature_scales(prep) -> list[Finding]:
    """3: inputs the network sees on very different scales (not standardized)."""
    names, raw = prep.layout.input_names, prep.dataset.X
    seen = prep.problem.x_train.std(axis=0)
    raw_std = raw.std(axis=0)
    raw_std = np.where(raw_std == 0, 1.0, raw_std)
    if seen.max() > 10 or seen.min() < 0.1 or np.abs(prep.problem.x_train.mean(axis=0)).max() > 3:
        ratio = seen.max() / max(seen.min(), 1e-300)
        return [Finding(
            3, "features-not-standardized", "serious" if seen.max() > 100 else "warning",
            "the inputs reach the network unstandardized",
            "input std per column: " + ", ".join(f"{n} {s:.4g}" for n, s in zip(names, seen))
            + f" (ratio {ratio:.3g})",
            "one weight step moves α by η·x: a feature ~1000 saturates sigmoid units at once "
            "and dominates the gradient, while a feature ~1 barely trains",
            "standardize every feature with the training rows' mean and std (scratchnet's "
            "prepare does; pass the model's x_scaler to new data)")]
    ratio = raw_std.max() / raw_std.min()
    if ratio > 10:
        return [Finding(
            3, "features-scales-differ", "info", "the raw features have very different scales",
            "raw std per column: " + ", ".join(f"{n} {s:.4g}" for n, s in zip(names, raw_std))
            + f" (ratio {ratio:.3g}); the network sees them standardized (std "
            + _fmt(seen) + ")",
            "standardizing makes them comparable; it only works if every input the model "
            "ever sees (test rows, a map grid, new data) goes through the same x_scaler",
            "nothing to do here; for plots use model.standardize(X) or doctor.check_grid")]
    return []


def check_leakage(prep) -> list[Finding]:
    """4: the scaler was fitted on test rows too (the problem set's whole-data standardizing),
    or the test rows were standardized with other statistics than the training rows."""
    out = []
    raw, tr = prep.dataset.X, prep.train_idx
    if prep.test_idx.size and not np.allclose(prep.x_scaler.mean, raw[tr].mean(axis=0),
                                              rtol=1e-9, atol=1e-12):
        out.append(Finding(
            4, "standardized-with-test-rows", "warning",
            "the inputs were standardized with statistics that include the test rows",
            f"x_scaler mean {_fmt(prep.x_scaler.mean)} is the whole data set's "
            f"({_fmt(raw.mean(axis=0))}); the training rows' mean is "
            f"{_fmt(raw[tr].mean(axis=0))}",
            "the test rows then shape the training inputs (leakage): the test loss is no "
            "longer a clean estimate of how the model does on data it has never seen",
            "fit the standardizer on the training rows only (drop --faithful)"))
    if prep.test_idx.size:
        out += check_grid(prep.x_scaler, prep.problem.x_test, raw[prep.test_idx],
                          what="test rows")
    return out


def check_grid(model, grid, raw=None, *, what: str = "prediction grid") -> list[Finding]:
    """4: is ``grid`` (what is about to be fed to the network) standardized as the model was?

    ``model``: a Model (its ``x_scaler``) or a Standardizer. ``raw``: the same points in raw
    units, when known — then the check is exact: the grid must equal
    ``model.x_scaler.transform(raw)``. Without ``raw`` it recognises the two PS5 mistakes: a
    grid standardized with its own statistics (every column mean 0, std 1 exactly) and a raw
    grid (values many training standard deviations away). Empty list = fine.
    """
    scaler = model if isinstance(model, Standardizer) else getattr(model, "x_scaler", None)
    if scaler is None:
        return []
    grid = np.atleast_2d(np.asarray(grid, dtype=float))
    mean, std = grid.mean(axis=0), grid.std(axis=0)
    fix = ("standardize with the statistics the model was trained with: "
           "model.x_scaler.transform(raw) (model.standardize), never with the grid's own")
    own_why = (f"the {what} is shifted and stretched relative to the data: the network "
               "reads each point as a different one, so the map or the predictions are wrong "
               "(PS5 Question 2's smooth map)")

    def own_stats(saw):
        return [Finding(4, "grid-own-statistics", "serious",
                        f"the {what} was standardized with its own statistics", saw, own_why,
                        fix)]

    def unstandardized(saw):
        return [Finding(4, "grid-not-standardized", "serious", f"the {what} is not "
                        "standardized", saw, "the network was trained on standardized inputs; "
                        "raw values thousands of standard deviations out saturate every unit "
                        "(PS5 Question 3's map)", fix)]

    if raw is not None:
        raw = np.atleast_2d(np.asarray(raw, dtype=float))
        expected = scaler.transform(raw)
        tol = 1e-9 * (1 + np.abs(expected).max())
        if np.allclose(grid, expected, rtol=0, atol=tol):
            return []
        seen = f"max |{what} − x_scaler.transform(raw)| = {np.abs(grid - expected).max():.4g}"
        if np.allclose(grid, Standardizer.fit(raw).transform(raw), rtol=0, atol=tol):
            return own_stats(f"{seen}: it equals (raw − mean(raw)) / std(raw) with the "
                             f"{what}'s mean {_fmt(raw.mean(axis=0))}, while the model's "
                             f"x_scaler has mean {_fmt(scaler.mean)}, std {_fmt(scaler.std)}")
        if np.allclose(grid, raw, rtol=0, atol=tol):
            return unstandardized(f"{seen}: it equals the raw values")
        return [Finding(4, "grid-mismatch", "serious", f"the {what} does not match the model's "
                        "standardization", seen, own_why, fix)]
    if grid.shape[0] > 2 and np.all(np.abs(mean) < 1e-6) and np.all(np.abs(std - 1) < 1e-6):
        span = scaler.inverse(grid)
        return own_stats(f"every column has mean 0 and std 1 exactly (its own statistics); the "
                         f"model reads it as spanning {_fmt(span.min(axis=0))} … "
                         f"{_fmt(span.max(axis=0))} in raw units, not the intended range")
    if np.abs(grid).max() > 20:
        return unstandardized(f"values up to {np.abs(grid).max():.4g} = that many training "
                              "standard deviations; the model's x_scaler has mean "
                              f"{_fmt(scaler.mean)}, std {_fmt(scaler.std)}")
    return []


# ---- 5: comparisons -------------------------------------------------------------------------
def check_shared_init(w_a, w_b, layout: Layout | None = None) -> list[Finding]:
    """5: two runs about to be compared start from different initial weights."""
    a, b = np.asarray(w_a, dtype=float), np.asarray(w_b, dtype=float)
    if a.shape == b.shape and np.array_equal(a, b):
        return []
    if a.shape != b.shape:
        saw = f"{a.size} initial weights against {b.size}"
    else:
        k = int(np.argmax(np.abs(a - b)))
        name = layout.weight_name(k) if layout is not None else f"w{k + 1}"
        saw = (f"max |Δw₀| = {np.abs(a - b).max():.4g} ({name}: {a[k]:.4g} vs {b[k]:.4g})")
    return [Finding(
        5, "init-not-shared", "serious", "the two runs start from different initial weights",
        saw, "gradient descent from different starting points follows different paths to "
        "different weights and loss curves, so the comparison says nothing about whether the "
        "two implementations agree (PS5 Question 3 used PyTorch's own initialisation)",
        "start both from the same w: twin.to_torch(layout, w) / `scratchnet compare` "
        "without --torch-init")]


def check_loss_scale(scale: str, n_train: int) -> list[Finding]:
    """5: the loss minimized is not the problem set's E = ½Σ(ŷ − y)² (``--loss-scale``)."""
    if scale == "half":
        return []
    c = D.loss_factor(scale, n_train)
    return [Finding(
        5, "loss-scale-differs", "serious", "the loss is not the problem set's ½Σ(ŷ − y)²",
        f"--loss-scale {scale}: {D.LOSS_SCALES[scale]}, i.e. {c:.3g} × E on {n_train} training "
        "rows",
        f"a loss c × E has gradients c × ∂E/∂w, so gradient descent with η takes the steps of "
        f"{c:.3g}η on E, and its printed losses are {c:.3g}× larger: neither the curves nor the "
        "printed numbers can be compared with a run on E (PS5 Question 3's "
        "MSELoss(reduction='sum') against Question 2's ½Σ)",
        f"minimize E = ½Σ(ŷ − y)² (in PyTorch: 0.5 * MSELoss(reduction='sum')), or divide η by "
        f"{c:.3g} and the printed loss by {c:.3g} before comparing")]


def check_setup(prep, config, setup: "D.Setup") -> list[Finding]:
    """4, 5: the map grid, the loss and the initial weights as the user's own code has them
    (the doctor's --grid-stats, --loss-scale, --init-from)."""
    out = []
    if setup.grid_stats != "train":
        raw = D.map_grid(prep.dataset.X)
        out += check_grid(prep.x_scaler, D.grid_inputs(raw, prep.x_scaler, setup.grid_stats),
                          raw, what="map grid")
    out += check_loss_scale(setup.loss_scale, prep.train_idx.size)
    if setup.init_from != "seed":
        lay = prep.layout
        out += check_shared_init(init_weights(lay, config.init, config.seed),
                                 D.torch_default_weights(lay, config.seed), lay)
    return out


def attach_effects(findings: list[Finding], effects) -> list[Finding]:
    """Each measured effect into the finding that names its difference; all of them together
    as one more finding."""
    ids = {"output": ("no-output-activation",), "standardize_targets": ("targets-out-of-range",),
           "grid_stats": ("grid-own-statistics", "grid-not-standardized", "grid-mismatch"),
           "loss_scale": ("loss-scale-differs",), "init_from": ("init-not-shared",)}
    out = list(findings)
    for e in effects:
        if e.key == "together":
            out.append(Finding(5, "differences-together", "info", "the differences together",
                               e.text, "each alone changes the result; together they make the "
                               "two runs disagree for reasons that have nothing to do with "
                               "convergence (PS5 Question 3's conclusion)",
                               "remove them one at a time, right setup first"))
            continue
        for i, f in enumerate(out):
            if f.id in ids[e.key]:
                out[i] = dataclasses.replace(f, effect=e.text)
                break
    return out


# ---- 6, 8: the loss curves ------------------------------------------------------------------
def _epochs_to_settle(L: np.ndarray) -> float | None:
    """Rough epochs until the loss improves by < 1 % more, from a geometric fit of the tail
    (three equally spaced points); None when the tail is not a slowing decrease."""
    k = len(L) // 5
    if k < 5:
        return None
    l1, l2, l3 = L[-1 - 2 * k], L[-1 - k], L[-1]
    if not (l1 > l2 > l3):
        return None
    q = (l2 - l3) / (l1 - l2)  # the gap to the plateau shrinks by q every k epochs
    if q >= 0.999:
        return np.inf
    gap = (l2 - l3) * q / (1 - q)  # L3 − L∞
    target = 0.01 * abs(l3 - gap)
    return 0.0 if gap <= target else k * np.log(target / gap) / np.log(q)


def check_learning_rate(train_loss, lr: float, budget: int, diverged: bool = False
                        ) -> list[Finding]:
    """6: divergence or oscillation (η too large); still falling steeply at the end of the
    budget (η too small). ``train_loss``: the finite losses of a run, ``budget``: the epochs
    the real run will have."""
    L = np.asarray(train_loss, dtype=float)
    if diverged or not np.all(np.isfinite(L)):
        n = int(np.argmin(np.isfinite(L))) if not np.all(np.isfinite(L)) else L.size
        last = f" (last finite value {L[n - 1]:.4g})" if n else ""
        return [Finding(6, "lr-too-large", "serious", "the loss diverges",
                        f"the loss became non-finite after {n} epochs{last} with η = {lr:g}",
                        "each step overshoots the minimum by more than it corrects",
                        f"lower --lr by 10× (try {lr / 10:g})")]
    n = L.size
    if n < 20:
        return []
    ups = float(np.mean(L[1:] > L[:-1] * (1 + 1e-12)))
    rising = L[-1] > L[0] * (1 + 1e-3)  # ended higher than it started: it jumped somewhere bad
    if ups > 0.1 or rising:
        return [Finding(6, "lr-too-large", "serious" if rising else "warning",
                        "the loss oscillates or rises: the learning rate is too large",
                        f"the training loss went from {L[0]:.4g} to {L[-1]:.4g} over {n} "
                        f"epochs and rose in {ups:.1%} of them, with η = {lr:g}",
                        "gradient descent with a small enough η lowers the loss every epoch; "
                        "rises mean the steps jump across the valley (or out of it, into "
                        "saturated units where the gradient vanishes)",
                        f"lower --lr (try {lr / 10:g})")]
    settle = _epochs_to_settle(L)
    k = n // 5
    tail = L[-1 - k]
    fell = (tail - L[-1]) / abs(tail)
    if settle is not None and fell > 1e-3 and n + settle > budget:
        if np.isfinite(settle):
            more = f"extrapolating, it needs roughly {settle:,.0f} more epochs to gain < 1 % more"
        else:
            more = "it shows no sign of slowing down"
        return [Finding(6, "lr-too-small", "warning", "the loss is still falling at the end of "
                        "the budget",
                        f"over the last {k} of {n} epochs the loss fell {fell:.1%} "
                        f"({tail:.4g} → {L[-1]:.4g}); {more}; the budget is {budget:,} epochs",
                        f"with η = {lr:g} each step is small: the run ends before the loss "
                        "settles, so its final numbers describe an unfinished model",
                        "raise --lr (e.g. 10×, and check again) or raise --epochs")]
    return []


def check_overfitting(train_loss, test_loss, rel: float = 0.02) -> list[Finding]:
    """8: test loss rising while the training loss keeps falling."""
    tr, te = np.asarray(train_loss, dtype=float), np.asarray(test_loss, dtype=float)
    if te.size < 10:
        return []
    best = int(np.argmin(te))
    if best < te.size - 1 and te[-1] > te[best] * (1 + rel) and tr[-1] < tr[best]:
        return [Finding(8, "test-loss-rising", "warning", "the test loss rises while the "
                        "training loss falls",
                        f"best test loss {te[best]:.4g} at epoch {best}; {te[-1]:.4g} at epoch "
                        f"{te.size - 1} (+{te[-1] / te[best] - 1:.1%}) while the training loss "
                        f"fell {tr[best]:.4g} → {tr[-1]:.4g}",
                        "the network starts to fit the training rows' noise: past the best "
                        "epoch it gets worse on data it has not seen (PS5 Question 3's test "
                        "loss: minimum near epoch 33000, higher by 99000)",
                        f"stop at epoch {best} (--epochs {best}), or use fewer hidden units, "
                        "more data or a penalty")]
    return []


# ---- 7: units and gradients -----------------------------------------------------------------
SATURATED = {"sigmoid": 4.0, "tanh": 2.0}  # |α| beyond which f′ < 7 % of its largest value


def check_units(layout: Layout, loss: str, w: np.ndarray, x: np.ndarray, y: np.ndarray,
                when: str = "at the initial weights") -> list[Finding]:
    """7: hidden units saturated (or dead) for most rows; vanishing per-layer gradients."""
    out, betas = [], forward(layout, w, x)
    parts = []
    worst = 0.0
    for l, W in enumerate(layout.views(w)[:-1]):
        alpha = betas[l] @ W[1:] + W[0]  # (N, units)  α of hidden layer l + 1
        act = layout.activations[l]
        if act in SATURATED:
            stuck = np.mean(np.abs(alpha) > SATURATED[act], axis=0) > 0.9
            kind = f"|α| > {SATURATED[act]:g} (saturated) for > 90 % of the rows"
        elif act == "relu":
            stuck = np.all(alpha <= 0, axis=0)
            kind = "α ≤ 0 for every row (dead ReLU)"
        else:
            continue
        if stuck.any():
            parts.append(f"layer {l + 1}: {int(stuck.sum())} of {stuck.size} units with {kind}")
            worst = max(worst, stuck.mean())
    if parts:
        out.append(Finding(7, "saturated-units", "warning" if worst >= 0.5 else "info",
                           "hidden units that do not learn", "; ".join(parts) + f" ({when})",
                           "a saturated sigmoid/tanh unit (or a ReLU that is off for every "
                           "row) passes almost no gradient back, so its incoming weights "
                           "stop changing",
                           "standardize the inputs; use smaller initial weights (--init "
                           "xavier / he); lower --lr if training pushed them there"))
    if layout.n_layers >= 2:
        _, g = loss_and_grad(layout, loss, w, x, y)
        rms = np.array([np.sqrt(np.mean(G ** 2)) for G in layout.views(g)])
        if rms.max() > 0 and rms.min() / rms.max() < 1e-3:
            out.append(Finding(7, "vanishing-gradients", "warning", "vanishing gradients",
                               "RMS of ∂E/∂w per weight layer: " + ", ".join(
                                   f"layer {l + 1} {r:.3g}" for l, r in enumerate(rms))
                               + f" ({when})",
                               "each layer back multiplies δ by f′ (at most ¼ for a sigmoid, 0 "
                               "for a ReLU that is off) and by the weights: the early layers "
                               "get gradients a thousand times smaller and barely move",
                               "fewer layers, tanh or relu hidden units, --init xavier / he"))
    return out


# ---- 9: the data ----------------------------------------------------------------------------
def check_data(prep) -> list[Finding]:
    """9: class imbalance, duplicate rows, too few rows per weight."""
    out, ds = [], prep.dataset
    counts = np.array([np.sum(ds.y == c) for c in prep.classes])
    share = counts.min() / counts.sum()
    if share < 0.2:
        out.append(Finding(9, "class-imbalance", "warning", "the classes are imbalanced",
                           "rows per class: " + ", ".join(f"{c:g}: {n}" for c, n in
                                                          zip(prep.classes, counts))
                           + f" (smallest {share:.1%})",
                           f"predicting the majority class alone scores {1 - share:.1%} "
                           "accuracy; the loss is dominated by the large class",
                           "look at per-class accuracy; weight or resample the classes; "
                           "collect more rows of the small class"))
    _, first, inv, cnt = np.unique(ds.X, axis=0, return_index=True, return_inverse=True,
                                   return_counts=True)
    dup = cnt[inv.ravel()] > 1
    if dup.any():
        labels = {g: set(ds.y[inv.ravel() == g]) for g in np.flatnonzero(cnt > 1)}
        conflicting = sum(len(v) > 1 for v in labels.values())
        in_test = np.zeros(len(ds.y), bool)
        in_test[prep.test_idx] = True
        across = sum(in_test[inv.ravel() == g].any() and not in_test[inv.ravel() == g].all()
                     for g in labels)
        out.append(Finding(9, "duplicate-rows", "warning" if conflicting or across else "info",
                           "duplicate rows",
                           f"{int(dup.sum())} rows share their features with another row "
                           f"({len(labels)} groups; {conflicting} with different labels, "
                           f"{across} split between train and test)",
                           "a row in both train and test makes the test loss optimistic; "
                           "identical inputs with different labels put a floor under the loss",
                           "drop the duplicates before splitting"))
    n_train, P = prep.train_idx.size, prep.layout.n_params
    if n_train < 10 * P:
        out.append(Finding(9, "few-rows-per-weight", "warning" if n_train < P else "info",
                           "few training rows per weight",
                           f"{n_train} training rows for {P} weights "
                           f"({n_train / P:.2g} rows per weight)",
                           "with fewer rows than weights the network can memorise the "
                           "training rows; test loss is the judge (pitfall 8)",
                           "fewer hidden units, or more data"))
    return out


# ---- running everything ---------------------------------------------------------------------
def static_checks(prep, config, w0: np.ndarray | None = None) -> list[Finding]:
    w = init_weights(prep.layout, config.init, config.seed) if w0 is None else w0
    prob = prep.problem
    return (check_targets(prep) + check_output_activation(prep, w) + check_feature_scales(prep)
            + check_leakage(prep) + check_data(prep)
            + check_units(prep.layout, config.loss, w, prob.x_train, prob.y_train))


def short_run(config, w0=None, check_epochs: int = 20_000, time_limit: float = 5.0):
    """Train a copy of ``config`` for at most ``check_epochs`` epochs and about ``time_limit``
    seconds (a 100-epoch pilot sets the count). Returns (TrainResult, diverged)."""
    def run(n):
        cfg = dataclasses.replace(config, epochs=int(n), engine="numpy", log_every=0)
        try:  # overflow on the way to divergence is an expected outcome here
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                return train(cfg, w0=w0), False
        except DivergedError as e:
            return e.result, True

    n = min(check_epochs, config.epochs)
    pilot = min(n, 100)
    t0 = time.perf_counter()
    res, div = run(pilot)
    per_epoch = (time.perf_counter() - t0) / max(pilot, 1)
    n = min(n, max(pilot, int(time_limit / max(per_epoch, 1e-9))))
    stop = n == pilot or div or res.stopped == "interrupted"
    return (res, div) if stop else run(n)


def dynamic_checks(prep, config, w0=None, check_epochs: int = 20_000,
                   time_limit: float = 5.0) -> tuple[list[Finding], int]:
    res, diverged = short_run(config, w0, check_epochs, time_limit)
    h, prob = res.history, prep.problem
    found = check_learning_rate(h.train_loss, config.lr, config.epochs, diverged)
    if res.stopped == "interrupted":
        found.append(interrupted_finding(len(h), "during the check run"))
    found += check_overfitting(h.train_loss, h.test_loss)
    if not diverged:
        found += check_units(prep.layout, config.loss, res.model.w, prob.x_train, prob.y_train,
                             f"after {len(h)} training epochs")
    return found, len(h)


def diagnose(config, *, quick: bool = False, w0=None, check_epochs: int = 20_000,
             time_limit: float = 5.0, prepared=None, setup: "D.Setup | None" = None
             ) -> tuple[list[Finding], int]:
    """All checks for ``config`` as the user's code has it (``setup``: the doctor's options;
    None = the right setup): (findings sorted most serious first, epochs trained)."""
    prep = prepared or prepare(config)
    setup = setup or D.Setup()
    found, trained = static_checks(prep, config, w0) + check_setup(prep, config, setup), 0
    if not quick and config.epochs > 0:
        more, trained = dynamic_checks(prep, config, w0, check_epochs, time_limit)
        effects = []
        if not any(f.id == INTERRUPTED for f in more):
            try:
                effects, _ = D.measure(config, prep, setup, D.present(config, prep, setup),
                                       w0=w0, check_epochs=check_epochs, time_limit=time_limit)
            except D.Interrupted as e:
                effects = e.effects
                more.append(interrupted_finding(
                    trained, f"while measuring the differences' effects ({len(e.effects)} "
                    "measured)"))
        found = attach_effects(found + more, effects)
    return sort_findings(found), trained


INTERRUPTED = "interrupted"


def interrupted_finding(epochs: int, when: str) -> Finding:
    """Ctrl-C (or SIGTERM/SIGHUP) stopped the training: what was seen so far is reported, and
    nothing more is trained."""
    return Finding(0, INTERRUPTED, "info", "the doctor was interrupted",
                   f"Ctrl-C {when}, after {epochs} epochs of the check run",
                   "the dynamic findings describe those epochs only, and the effects of the "
                   "differences not measured are missing",
                   "run the doctor again (--check-epochs and --time-limit bound how long it "
                   "trains)")
