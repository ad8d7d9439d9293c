"""A gradient check a user can run: hand-derived ∂E/∂w against finite differences and autograd.

For every weight w_k of the flat vector ``w`` (w1..wP, the problem set's numbering):

    analytic  = the backprop of ``backprop.py`` (the problem set's formulas as array code)
    numeric   = (E(w + h e_k) − E(w − h e_k)) / 2h        central difference, h = STEP
    autograd  = PyTorch's gradient of the twin (only when torch is installed)
    rel. error = |analytic − other| / max(|analytic|, |other|, floor),   the worse of the two,
                 floor = 1e-6 · max(1, |E|): a gradient below a millionth of the loss is judged
                 by its absolute error (the rounding of E(w ± h) alone is ≈ ε·|E|/h ≈ 2e-11·|E|).

PASS when every relative error is ≤ TOL. In float64 the central difference is accurate to
h²·|E‴|/6 + ε·|E|/h (truncation + rounding): the relative errors of a correct gradient are
at most 3e-6 on every entry of the activation and loss tables, 30× below TOL = 1e-4, while a
wrong derivative is off by a factor (a 1.5× derivative gives a relative error of 0.33).

ReLU has a kink at α = 0 where no derivative exists (backprop and PyTorch both take 0 there). A
weight whose ±h step moves some ReLU input across 0 cannot be checked by a finite difference:
it is marked ``kink`` and judged against autograd alone (or not at all without torch).

Two more details keep the check honest: the numeric side differentiates the *exact* loss (for the
canonical pairs written on the logits α_L, as backprop's δ_L = ŷ − y is the derivative of the
unclipped loss; ``losses.py`` clips log() at EPS which is flat where outputs saturate), and the
finite difference itself is tested against functions with known derivatives.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.backprop import forward, loss_and_grad
from ..core.losses import CANONICAL_PAIRS, LOSSES
from ..core.network import Layout, init_weights
from ..training.train import prepare
from .twin import from_torch_grad, loss_fn, to_torch, torch_available

STEP = 1e-5  # h of the central difference (weights are O(1), float64)
TOL = 1e-4  # largest relative error that passes


def central_difference(f, w: np.ndarray, h: float = STEP) -> np.ndarray:
    """(f(w + h e_k) − f(w − h e_k)) / 2h for every k; ``f`` maps a (P,) vector to a float."""
    w = np.asarray(w, dtype=np.float64)
    g = np.empty_like(w)
    wp = w.copy()
    for k in range(w.size):
        wp[k] = w[k] + h
        e_plus = f(wp)
        wp[k] = w[k] - h
        e_minus = f(wp)
        wp[k] = w[k]
        g[k] = (e_plus - e_minus) / (2.0 * h)
    return g


def exact_loss(layout: Layout, loss: str, w: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    """E(w) without the EPS clip: the function whose derivative backprop computes.

    sigmoid + BCE: Σ [log(1 + e^α) − y α];  softmax + CE: −Σ y (α − log Σ e^α);  otherwise the
    ``losses.py`` value (identical wherever no output is clipped)."""
    betas = forward(layout, w, x)
    if (layout.output, loss) in CANONICAL_PAIRS and loss in ("bce", "ce"):
        W = layout.views(w)[-1]
        alpha = betas[-2] @ W[1:] + W[0]  # (N, n_out)  α_L
        if loss == "bce":
            return float(np.sum(np.logaddexp(0.0, alpha) - y * alpha))
        lse = np.logaddexp.reduce(alpha, axis=1, keepdims=True)
        return float(-np.sum(y * (alpha - lse)))
    return LOSSES[loss].value(y, betas[-1])


def autograd_grad(layout: Layout, loss: str, w: np.ndarray, x: np.ndarray,
                  y: np.ndarray) -> np.ndarray:
    """∂E/∂w by PyTorch autograd on the twin (float64)."""
    import torch


    m = to_torch(layout, w, "float64")
    alpha = m[:-1](torch.from_numpy(np.ascontiguousarray(x)))
    _, train_loss = loss_fn(loss, layout.output)
    train_loss(alpha, m[-1](alpha), torch.from_numpy(np.ascontiguousarray(y))).backward()
    return from_torch_grad(m, layout)


def kink_crossings(layout: Layout, w: np.ndarray, x: np.ndarray, h: float = STEP) -> np.ndarray:
    """(P,) bool: True where w_k ± h flips the sign of some ReLU input α (the kink at 0)."""
    relu = [l for l in range(layout.n_layers - 1) if layout.activations[l] == "relu"]
    out = np.zeros(w.size, dtype=bool)
    if not relu:
        return out

    def pattern(v):
        betas = forward(layout, v, x)
        return [betas[l + 1] > 0 for l in relu]  # β = max(α, 0) > 0  ⇔  α > 0

    base, wp = pattern(w), np.array(w, dtype=np.float64)
    for k in range(w.size):
        for step in (h, -h):
            wp[k] = w[k] + step
            out[k] |= any(np.any(a != b) for a, b in zip(pattern(wp), base))
        wp[k] = w[k]
    return out


def relative_error(a: np.ndarray, b: np.ndarray, floor: float) -> np.ndarray:
    return np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), floor)


@dataclass
class GradCheck:
    names: list[str]
    analytic: np.ndarray  # (P,)
    numeric: np.ndarray
    autograd: np.ndarray | None
    rel_error: np.ndarray  # (P,) the worse of analytic-vs-numeric and analytic-vs-autograd
    loss_value: float
    kinks: np.ndarray | None = None  # (P,) bool: ± h crosses a ReLU kink (numeric not usable)
    step: float = STEP
    tol: float = TOL
    notes: list[str] = field(default_factory=list)
    autograd_skipped: bool = False  # autograd=False asked for it (--no-autograd), torch or not

    @property
    def checked(self) -> np.ndarray:
        """(P,) bool: weights with a usable reference (NaN = kink without autograd)."""
        return ~np.isnan(self.rel_error)

    @property
    def passed(self) -> bool:
        return bool(np.all(self.rel_error[self.checked] <= self.tol))

    @property
    def max_rel_error(self) -> float:
        r = self.rel_error[self.checked]
        return float(r.max()) if r.size else 0.0

    def to_dict(self) -> dict:
        rows = [{"weight": n, "analytic": float(a), "numeric": float(nu),
                 "autograd": None if self.autograd is None else float(self.autograd[k]),
                 "rel_error": None if np.isnan(r) else float(r),
                 "kink": bool(self.kinks is not None and self.kinks[k]),
                 "pass": bool(np.isnan(r) or r <= self.tol)}
                for k, (n, a, nu, r) in enumerate(zip(self.names, self.analytic, self.numeric,
                                                      self.rel_error))]
        return {"passed": self.passed, "max_rel_error": self.max_rel_error, "step": self.step,
                "tolerance": self.tol, "dtype": "float64", "loss": self.loss_value,
                "autograd": self.autograd is not None, "notes": self.notes, "weights": rows}

    def table(self) -> str:
        width = max(len(n) for n in self.names) + 2
        head = (f"{'weight':<{width}}{'analytic':>18}{'numeric':>18}{'autograd':>18}"
                f"{'rel. error':>12}")
        lines = [head, "-" * len(head)]
        for k, name in enumerate(self.names):
            ag = "—" if self.autograd is None else f"{self.autograd[k]:.9e}"
            r = self.rel_error[k]
            flag = "  FAIL" if r > self.tol else ""
            if self.kinks is not None and self.kinks[k]:
                flag += "  kink"
            lines.append(f"{name:<{width}}{self.analytic[k]:>18.9e}{self.numeric[k]:>18.9e}"
                         f"{ag:>18}{'n/a' if np.isnan(r) else f'{r:.1e}':>12}{flag}")
        return "\n".join(lines)

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        bad = int(np.sum(self.rel_error[self.checked] > self.tol))
        what = "" if self.passed else f", {bad} weight(s) over the tolerance"
        src = "central differences" + (
            " and torch autograd" if self.autograd is not None
            else " (autograd skipped: no autograd column)" if self.autograd_skipped
            else " (torch not installed: no autograd column)")
        return (f"{verdict}: {len(self.names)} weights, max relative error "
                f"{self.max_rel_error:.1e} (tolerance {self.tol:g}){what}; {src}, "
                f"h = {self.step:g}, float64")


def check(layout: Layout, loss: str, w: np.ndarray, x: np.ndarray, y: np.ndarray, *,
          h: float = STEP, tol: float = TOL, autograd: bool | None = None) -> GradCheck:
    """Check every weight's hand-derived gradient at ``w`` on the rows (x, y).

    ``autograd``: None = use torch when it is installed, True = require it, False = skip it.
    """
    w = np.asarray(w, dtype=np.float64)
    value, analytic = loss_and_grad(layout, loss, w, x, y)
    exact = exact_loss(layout, loss, w, x, y)
    numeric = central_difference(lambda v: exact_loss(layout, loss, v, x, y), w, h)
    floor = 1e-6 * max(1.0, abs(exact))
    kinks = kink_crossings(layout, w, x, h)
    rel = relative_error(analytic, numeric, floor)
    rel[kinks] = np.nan  # no finite-difference reference across a kink
    ag = None
    if autograd or (autograd is None and torch_available()):
        ag = autograd_grad(layout, loss, w, x, y)
        rel_ag = relative_error(analytic, ag, floor)
        rel = np.where(kinks, rel_ag, np.maximum(rel, rel_ag))
    notes = []
    if kinks.any():
        notes.append(f"{int(kinks.sum())} weight(s) move a ReLU input across its kink at 0 "
                     "within ± h: judged against " + (
                         "autograd only" if ag is not None else "nothing (autograd skipped)"
                         if autograd is False else "nothing (install torch)"))
    if abs(exact - value) > 1e-9 * max(1.0, abs(value)):
        notes.append(f"some outputs saturate past EPS: the reported loss {value:.6g} is clipped, "
                     f"the exact loss is {exact:.6g}; the check differentiates the exact one")
    return GradCheck(layout.weight_names(), analytic, numeric, ag, rel, float(value), kinks, h,
                     tol, notes, autograd_skipped=autograd is False)


def check_config(config, w0: np.ndarray | None = None, **kw) -> GradCheck:
    """Prepare ``config``'s data and check the gradient at its initial weights (training rows)."""
    prep = prepare(config)
    w = init_weights(prep.layout, config.init, config.seed) if w0 is None else w0
    prob = prep.problem
    return check(prep.layout, config.loss, w, prob.x_train, prob.y_train, **kw)
