"""The CUDA training kernels: Python source generated for one layout, then compiled.

A kernel whose state (weights, gradient, β, δ) sits in ``cuda.local.array``s indexed inside
loops over the layer sizes keeps it in local memory (off-chip, behind the L1): on the PS5 job
656 bytes per thread and a fifth of the speed of the unrolled kernel (H200: 6.5e7 against
3.2e8 network-epochs/s).  Registers cannot be indexed at run time; only a kernel whose every
index is a constant keeps its state in them.

So this module writes the kernel out: for one layout (sizes, activations, loss), every loop
over units is unrolled into scalar local variables named after the problem set's symbols —
``w0 … w{P−1}`` the weights (flat w1..wP order, 0-based), ``g*`` their gradient,
``alpha{l}_{j}``, ``beta{l}_{j}`` (``beta0_*`` is the row x), ``delta{l}_{j}`` — and only the
loops over rows and epochs remain.  Run with ``unroll=False`` the same generator keeps the
loops over units and the local arrays (``w[...]``, ``beta[RO_l + j]``): that is the generic
kernel of layouts too large to unroll — one generator, two renderings (``_Src``).

Every activation's f and f′ and every loss's value and ∂E/∂ŷ come from the table of scalar
snippets (``engines/snippets.py``) that the compiled CPU loop renders too; this back-end only
supplies what differs (``exp_neg`` is ``math.exp``, ``clip`` a device function).  The source
is compiled with ``exec`` + ``numba.cuda.jit``: generating and compiling specialised source is
the standard way to get compile-time unrolling out of numba (``numba.literal_unroll`` does not
cover this), the text is built only from integers and fixed templates (no user strings), and
``kernel_source`` returns it for reading.  Under ``NUMBA_ENABLE_CUDASIM=1`` the simulator runs
the same function as Python, which is how the tests hold it equal to the CPU engine.

The arithmetic is that of ``backprop.py`` (to ~1e-15): the overflow-free sigmoid, δ_L = ŷ − y
for the canonical pairs, the clipped bce / ce, NaN-propagating relu, softmax shifted by its
max, first-NaN argmax.  What keeps it fast:

* the training and test rows can be copied once per block into shared memory (``rows``),
  so the row loop reads them from on-chip memory (every thread reads the same row: a broadcast);
* the pre-update weights are not stored every epoch.  They are only needed when a network
  diverges (its loss at epoch t is non-finite: it keeps w_{t−1}); then the kernel leaves W at
  the chunk's first weights and ``DeviceRun.finish`` launches it again with ``replay=True``,
  which reruns epochs start..t−2 for those networks only — the same instructions on the same
  numbers, so bit for bit the same w_{t−1};
* global memory (W, Wp) is only read before and written after the epoch loop, the final
  stores through ``Wout`` (W under a second name): otherwise the compiler keeps the addresses
  of those rare accesses in registers all through the loop (198 instead of 252 on PS5);
* the test rows are only run through the network in epochs that are recorded.
"""
from __future__ import annotations

import linecache
import math
import re

import numpy as np

from ..core.losses import EPS
from . import snippets
from .snippets import SOFTMAX

# Above this many weights gpu.py uses the generic kernel.  The unrolled one is register-resident
# only up to about 40 weights (w and g alone take 4 registers per weight, of 255); beyond, it
# spills too (2-8-8-3, 123 weights: 2.1 kB local memory, 8.2e6 network-epochs/s on an H200,
# the generic kernel not measured beside it) and its source grows with the weights.
MAX_UNROLLED_PARAMS = 200


class _Src:
    """Lines of Python source with an indentation level, and the names of the kernel's state:
    unrolled, every unit and weight is its own scalar (``w13``, ``beta1_6``); looped (the
    generic kernel), they are slots of ``cuda.local.array``s (``w[...]``, ``beta[RO_l + j]``)
    and the loops over units stay loops."""

    def __init__(self, sizes, unroll: bool = True):
        self.lines: list[str] = []
        self.level = 0
        self.unroll = unroll
        self.sizes = sizes
        self.offs = _offsets(sizes)
        self.ro = [sum(sizes[:l]) for l in range(len(sizes) + 1)]  # β_l starts at ro[l]

    def __call__(self, *lines: str) -> None:
        for line in lines:
            self.lines.append("    " * self.level + line)

    def indent(self, by: int = 1) -> None:
        self.level += by

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    # ---- names ----------------------------------------------------------------------------
    def w(self, p) -> str:
        return f"w{p}" if self.unroll else f"w[{p}]"

    def g(self, p) -> str:
        return f"g{p}" if self.unroll else f"g[{p}]"

    def beta(self, l: int, j) -> str:
        return f"beta{l}_{j}" if self.unroll else f"beta[{self.ro[l]} + {j}]"

    def delta(self, l: int, j) -> str:
        return f"delta{l}_{j}" if self.unroll else f"delta[{self.ro[l]} + {j}]"

    def weight(self, l: int, i, j):
        """Index of W_l[1 + i, j] (i = −1: the bias row) in the flat w."""
        o, fo = self.offs[l - 1], self.sizes[l]
        if isinstance(i, int) and isinstance(j, int):
            return o + (1 + i) * fo + j
        return f"{o} + (1 + {i}) * {fo} + {j}"

    def each(self, var: str, n: int, first: int = 0):
        """The values of a loop over units: constants when unrolled, else ``var`` inside an
        emitted ``for`` loop."""
        if self.unroll:
            yield from range(first, n)
            return
        self(f"for {var} in range({first}, {n}):")
        self.indent()
        yield var
        self.indent(-1)

    def sum_into(self, dst: str, n: int, var: str, term, plus: str = "") -> None:
        """dst = Σ_var term(var) (+ plus), in the order 0, 1, …, n − 1: one expression when
        unrolled, an accumulating loop otherwise."""
        tail = f" + {plus}" if plus else ""
        if self.unroll:
            self(f"{dst} = " + " + ".join(term(i) for i in range(n)) + tail)
            return
        self(f"acc = {term(0)}")
        for v in self.each(var, n, 1):
            self(f"acc += {term(v)}")
        self(f"{dst} = acc{tail}")


def _offsets(sizes):
    """Flat offset of each layer's weight block W_l ((fan_in + 1) × fan_out, bias row first)."""
    offs = [0]
    for l in range(len(sizes) - 1):
        offs.append(offs[-1] + (sizes[l] + 1) * sizes[l + 1])
    return offs


def _forward(s: _Src, acts, X: str) -> None:
    """β of every layer for row n of X: α_l = β_{l−1} W_l[1:] + W_l[0], β_l = f_l(α_l), each
    f_l rendered from ``snippets.ACTIVATIONS``."""
    sizes = s.sizes
    for i in s.each("i", sizes[0]):
        s(f"{s.beta(0, i)} = {X}[n, {i}]")
    for l in range(1, len(sizes)):
        fi, fo, code = sizes[l - 1], sizes[l], acts[l - 1]
        for j in s.each("j", fo):
            a = f"alpha{l}_{j}" if s.unroll else "a"
            s.sum_into(a, fi, "i", lambda i: f"{s.beta(l - 1, i)} * {s.w(s.weight(l, i, j))}",
                       s.w(s.weight(l, -1, j)))
            if code != SOFTMAX:
                pre, f = snippets.apply(a, code)
                s(*pre, f"{s.beta(l, j)} = {f}")
            else:
                s(f"{s.beta(l, j)} = {a}")
        if code == SOFTMAX:  # over the layer's units, shifted by their max
            s(f"m = {s.beta(l, 0)}")
            for j in s.each("j", fo, 1):  # (a NaN or +inf α makes every β NaN either way)
                s(f"m = {s.beta(l, j)} if {s.beta(l, j)} > m else m")
            for j in s.each("j", fo):
                s(f"{s.beta(l, j)} = math.exp({s.beta(l, j)} - m)")
            s.sum_into("s", fo, "j", lambda j: s.beta(l, j))
            for j in s.each("j", fo):
                s(f"{s.beta(l, j)} = {s.beta(l, j)} / s")


def _loss_hit(s: _Src, loss: int, Y: str, LAB: str, e_acc: str, hit_acc: str) -> None:
    """Adds row n's loss terms (``snippets.LOSSES``; scale applied per epoch) to e_acc and 1 to
    hit_acc when the row is classified right (threshold for one output, first-NaN argmax)."""
    L, NO = len(s.sizes) - 1, s.sizes[-1]
    for j in s.each("j", NO):
        pre, term = snippets.loss_term(s.beta(L, j), f"{Y}[n, {j}]", loss)
        s(*pre, f"{e_acc} += {term}")
    if NO == 1:
        s(f"if ({s.beta(L, 0)} > thr) == ({LAB}[n] == 1):", f"    {hit_acc} += 1")
        return
    s("best = 0", f"bv = {s.beta(L, 0)}", "found = bv != bv")
    for j in s.each("j", NO, 1):
        p = s.beta(L, j)
        s(f"if not found and {p} != {p}:", f"    best = {j}", "    found = True",
          f"if not found and {p} > bv:", f"    best = {j}", f"    bv = {p}")
    s(f"if best == {LAB}[n]:", f"    {hit_acc} += 1")


def _backward(s: _Src, acts, loss: int, canonical: bool, Y: str) -> None:
    """δ_L for row n, then ∂E/∂w of row n into g, layer by layer as backprop.backward."""
    sizes = s.sizes
    L, NO, OUT = len(sizes) - 1, sizes[-1], acts[-1]
    for j in s.each("j", NO):
        p, t, d = s.beta(L, j), f"{Y}[n, {j}]", s.delta(L, j)
        if canonical:
            s(f"{d} = {p} - {t}")  # δ = ŷ − y (the canonical pairs)
        else:
            pre, grad = snippets.loss_grad(p, t, loss)
            s(*pre, f"{d} = {grad}")
            if OUT != SOFTMAX:
                s(f"{d} = {d} * ({snippets.deriv(p, OUT)})")
    if not canonical and OUT == SOFTMAX:  # softmax: δ = β ⊙ (g − Σ_j g_j β_j)
        s.sum_into("s", NO, "j", lambda j: f"{s.delta(L, j)} * {s.beta(L, j)}")
        for j in s.each("j", NO):
            s(f"{s.delta(L, j)} = {s.beta(L, j)} * ({s.delta(L, j)} - s)")
    for l in range(L, 0, -1):
        fi, fo = sizes[l - 1], sizes[l]
        s(f"# layer {l}: ∂E/∂W_{l}[0] += δ_{l}, ∂E/∂W_{l}[1:] += β_{l - 1}ᵀ δ_{l}")
        for j in s.each("j", fo):
            s(f"{s.g(s.weight(l, -1, j))} += {s.delta(l, j)}")
            for i in s.each("i", fi):
                s(f"{s.g(s.weight(l, i, j))} += {s.beta(l - 1, i)} * {s.delta(l, j)}")
        if l > 1:
            s(f"# δ_{l - 1} = (δ_{l} W_{l}[1:]ᵀ) ⊙ f′(β_{l - 1})")
            for i in s.each("i", fi):
                s.sum_into("back", fo, "j",
                           lambda j: f"{s.delta(l, j)} * {s.w(s.weight(l, i, j))}")
                s(f"{s.delta(l - 1, i)} = back * ({snippets.deriv(s.beta(l - 1, i), acts[l - 2])})")


def _no_records(s: _Src, t0: str) -> None:
    """NaN into the record slots of epochs t0..stop−1 (a diverged network has none)."""
    s(f"for tt in range({t0}, stop):", "    if tt % every == 0:",
      "        jj = tt // every - j0")
    for r in ("rtrl", "rtel", "rtra", "rtea"):
        s(f"        {r}[jj, k] = math.nan")


def _shared_rows(s: _Src, rows) -> tuple[str, ...]:
    """Copy the training and test rows into shared memory once per block; their names."""
    D, NO = s.sizes[0], s.sizes[-1]
    ntr, nte = (max(int(r), 1) for r in rows)
    s("# every thread of the block reads the same row at the same time: keep them on chip",
      f"Xtr = cuda.shared.array(({ntr}, {D}), np.float64)",
      f"Ytr = cuda.shared.array(({ntr}, {NO}), np.float64)",
      f"Ltr = cuda.shared.array({ntr}, np.int64)",
      f"Xte = cuda.shared.array(({nte}, {D}), np.float64)",
      f"Yte = cuda.shared.array(({nte}, {NO}), np.float64)",
      f"Lte = cuda.shared.array({nte}, np.int64)",
      "for r in range(cuda.threadIdx.x, xtr.shape[0], cuda.blockDim.x):")
    s(*(f"    Xtr[r, {i}] = xtr[r, {i}]" for i in range(D)))
    s(*(f"    Ytr[r, {j}] = ytr[r, {j}]" for j in range(NO)))
    s("    Ltr[r] = ltr[r]", "for r in range(cuda.threadIdx.x, xte.shape[0], cuda.blockDim.x):")
    s(*(f"    Xte[r, {i}] = xte[r, {i}]" for i in range(D)))
    s(*(f"    Yte[r, {j}] = yte[r, {j}]" for j in range(NO)))
    s("    Lte[r] = lte[r]", "cuda.syncthreads()")
    return ("Xtr", "Ytr", "Ltr", "Xte", "Yte", "Lte")


def _each_weight(s: _Src, NP: int, *lines: str, first: int = 0) -> None:
    """``lines`` (with {w}, {g}, {s1}, {s2} and {p}) for every weight p = first … NP − 1: a
    copy per weight, or one loop."""
    if s.unroll:
        s(*(line.format(w=s.w(p), g=s.g(p), s1=f"s1_{p}", s2=f"s2_{p}", p=p)
            for p in range(first, NP) for line in lines))
    else:
        s(f"for p in range({first}, {NP}):" if first else "for p in range(NP):",
          *("    " + line.format(w="w[p]", g="g[p]", s1="s1[p]", s2="s2[p]", p="p")
            for line in lines))


# ---- the optimizers: how g becomes a step -------------------------------------------------
# One weight's step, optim.py's numpy lines operation for operation (``v *= μ; v += g`` is
# ``v = v μ + g``), so the simulator gives the numpy engine's numbers.  {s1}, {s2}: the state
# (fast.State's names): the velocity v (momentum, nesterov), rmsprop's r, adam's m and v.
STEP_LINES = {
    "gd": ("{w} -= lr * {g}",),
    "momentum": ("{s1} = {s1} * mu + {g}", "{w} -= lr * {s1}"),
    "nesterov": ("{s1} = {s1} * mu + {g}", "{w} -= lr * ({g} + mu * {s1})"),
    "rmsprop": ("{s1} = {s1} * rho + crho * {g} * {g}",
                "{w} -= lr * {g} / (math.sqrt({s1}) + eps)"),
    "adam": ("{s1} = {s1} * b1 + cb1 * {g}", "{s2} = {s2} * b2 + cb2 * {g} * {g}",
             "{w} -= lr * ({s1} / c1) / (math.sqrt({s2} / c2) + eps)"),
}
# the hyper-parameters each reads from ``hyper`` ([μ, β₁, β₂, ρ, ε, λ₂, λ₁], fast.Steps')
HYPER_LINES = {
    "gd": (), "momentum": ("mu = hyper[0]",), "nesterov": ("mu = hyper[0]",),
    "rmsprop": ("rho = hyper[3]", "crho = 1.0 - rho", "eps = hyper[4]"),
    "adam": ("b1 = hyper[1]", "b2 = hyper[2]", "cb1 = 1.0 - b1", "cb2 = 1.0 - b2",
             "eps = hyper[4]"),
}
STATES = {"gd": 0, "momentum": 1, "nesterov": 1, "rmsprop": 1, "adam": 2}
# ∂R/∂w = λ₂ w + λ₁ sign(w) added to g, as optim.penalty (w · mask = w off the bias rows)
PENALTY_LINES = ("sg = 1.0 if {w} > 0.0 else (-1.0 if {w} < 0.0 else {w} * 0.0)",
                 "{g} += lam2 * {w} + lam1 * sg")
# Where the state lives: with the weights, loaded from (P, K) global arrays S1, S2 (coalesced
# like W) before the epoch loop and stored after it — registers when unrolled, local arrays
# in the generic kernel.  Not measured on a GPU yet (no device in the session that wrote it;
# bench/gpu_check.py records the rates).  The reasoning: a weight's state is touched once an
# epoch, in the update, while w is read 2 × rows times (forward and backward over every row),
# so its cost is small wherever it sits; kept out of global memory inside the loop, a network
# that diverges leaves S1, S2 as they were at the chunk's start — exactly what the replay
# launch needs to recompute w_{t−1} (a state updated in place would need a copy per chunk).
# Registers the compiler cannot keep (adam on PS5: 58 more values) spill to local memory,
# which is per thread and cached, and is read only at the update.


def _step(s: _Src, optimizer: str, penalized: bool) -> None:
    """The update of epoch t for every weight: the penalty's gradient (non-bias weights), then
    the optimizer's step; adam's 1 − βᵗ come from the host (``bc``, one column per epoch of
    the chunk)."""
    if penalized:
        for l in range(1, len(s.sizes)):  # the rows after W_l's bias row
            _each_weight(s, s.offs[l], *PENALTY_LINES, first=s.offs[l - 1] + s.sizes[l])
    if optimizer == "adam":
        s("c1 = bc[0, t - start]", "c2 = bc[1, t - start]")
    _each_weight(s, s.offs[-1], *STEP_LINES[optimizer])


def _load_state(s: _Src, optimizer: str, penalized: bool) -> None:
    """The hyper-parameters into locals, the optimizer's state from S1, S2."""
    NP, n = s.offs[-1], STATES[optimizer]
    s(*HYPER_LINES[optimizer])
    if penalized:
        s("lam2 = hyper[5]", "lam1 = hyper[6]")
    for i in range(1, n + 1):
        if not s.unroll:
            s(f"s{i} = cuda.local.array(NP, np.float64)")
        _each_weight(s, NP, f"{{s{i}}} = S{i}[{{p}}, k]")


def _store(s: _Src, optimizer: str, penalized: bool) -> None:
    """A completed chunk: the weights before the last update into Wp, then the update, the
    weights into W (as Wout) and the optimizer's state into S1, S2."""
    NP = s.offs[-1]
    _each_weight(s, NP, "Wp[{p}, k] = {w}")
    if optimizer == "gd" and not penalized:  # plain gradient descent: one line per weight
        _each_weight(s, NP, "Wout[{p}, k] = {w} - lr * {g}")
        return
    _step(s, optimizer, penalized)
    _each_weight(s, NP, "Wout[{p}, k] = {w}")
    for i in range(1, STATES[optimizer] + 1):
        _each_weight(s, NP, f"S{i}[{{p}}, k] = {{s{i}}}")


def _epoch_loop(s: _Src, acts, loss: int, canonical: bool, names, optimizer: str = "gd",
                penalized: bool = False) -> None:
    """The epochs: zero g, the training rows (forward, loss, backward), the divergence check,
    the recorded test rows, the update (the last one after the loop)."""
    Xtr, Ytr, Ltr, Xte, Yte, Lte = names
    NP = s.offs[-1]
    s("t = start", "while t < end:")
    s.indent()
    _each_weight(s, NP, "{g} = 0.0")
    s("e_train = 0.0", "hits = 0", "for n in range(ntr):")
    s.indent()
    _forward(s, acts, Xtr)
    _loss_hit(s, loss, Ytr, Ltr, "e_train", "hits")
    _backward(s, acts, loss, canonical, Ytr)
    s.indent(-1)
    scale = snippets.loss(loss).scale
    s(f"e_train = {scale!r} * e_train", "if not replay:")
    s.indent()
    s("if not math.isfinite(e_train):", "    diverged = True", "    break",
      "if t % every == 0:")
    s.indent()
    s("e_test = 0.0", "hits_t = 0", "for n in range(nte):")
    s.indent()
    _forward(s, acts, Xte)
    _loss_hit(s, loss, Yte, Lte, "e_test", "hits_t")
    s.indent(-1)
    s("j = t // every - j0", "rtrl[j, k] = e_train  # records are (n_records, K): coalesced",
      f"rtel[j, k] = {scale!r} * e_test", "rtra[j, k] = hits / ntr", "rtea[j, k] = hits_t / nte")
    s.indent(-1)
    s("if t == stop - 1:", "    break  # the chunk's last update comes after the loop")
    s.indent(-1)
    _step(s, optimizer, penalized)
    s("t += 1")
    s.indent(-1)


def kernel_source(sizes, acts, loss: int, canonical: bool, rows=None, unroll: bool = True,
                  optimizer: str = "gd", penalized: bool = False) -> str:
    """The kernel's Python source.  sizes: units per layer (inputs first); acts: activation
    code per layer (snippets.ACT_CODES); loss: snippets.LOSS_CODES; canonical: δ_L = ŷ − y;
    rows: (n_train, n_test) to copy the rows into shared memory, None to read them from
    global memory; unroll=False: the generic kernel (state in local arrays, loops kept);
    optimizer: an ``optim.OPTIMIZERS`` name of a full-batch step (gd, momentum, nesterov,
    rmsprop, adam); penalized: ``hyper``'s λ₂, λ₁ penalty on the non-bias weights."""
    sizes, acts = tuple(int(v) for v in sizes), tuple(int(v) for v in acts)
    optimizer = "gd" if optimizer == "sgd" else optimizer
    s = _Src(sizes, unroll)
    NP, NB = s.offs[-1], s.ro[-1]
    s(f"# generated by scratchnet.engines.codegen for layout {'-'.join(map(str, sizes))}, "
      f"activation codes {acts}, loss code {loss}, canonical {canonical}, unrolled {unroll}, "
      f"optimizer {optimizer}, penalty {penalized}",
      "def kernel(W, Wp, lrs, xtr, ytr, ltr, xte, yte, lte, thr, start, stop, every, j0,",
      "           rtrl, rtel, rtra, rtea, diverged_at, replay, Wout, S1, S2, hyper, bc):",
      "    # Wout is W again under a second name: the final stores then compute their own",
      "    # addresses instead of keeping the first loads' alive (in registers) through the loop",
      "    # S1, S2 (P, K): the optimizer's state; hyper: [μ, β₁, β₂, ρ, ε, λ₂, λ₁]; bc (2, n):",
      "    # adam's 1 − β₁ᵗ, 1 − β₂ᵗ for epochs start … start + n − 1 (unused ones: placeholders)")
    s.indent()
    s("k = cuda.grid(1)")
    names = _shared_rows(s, rows) if rows is not None else \
        ("xtr", "ytr", "ltr", "xte", "yte", "lte")
    s("if k >= W.shape[1]:", "    return", "end = stop")
    s("if replay:  # the second launch: networks that diverged at an epoch t > start")
    s("    if diverged_at[k] <= start:", "        return",
      "    end = diverged_at[k] - 1  # epochs start..t−2 give w_{t−1}")
    s("elif diverged_at[k] >= 0:  # diverged in an earlier chunk")
    s.indent()
    _no_records(s, "start")
    s("return")
    s.indent(-1)
    if not unroll:  # local memory, indexed at run time
        s(f"NP = {NP}", "w = cuda.local.array(NP, np.float64)",
          "g = cuda.local.array(NP, np.float64)", f"beta = cuda.local.array({NB}, np.float64)",
          f"delta = cuda.local.array({NB}, np.float64)")
    s("# W is (P, K) on the device: neighbouring threads read neighbouring words")
    _each_weight(s, NP, "{w} = W[{p}, k]")
    _load_state(s, optimizer, penalized)
    s("lr = lrs[k]", "ntr = xtr.shape[0]", "nte = xte.shape[0]", "diverged = False")
    _each_weight(s, NP, "{g} = 0.0")
    _epoch_loop(s, acts, loss, canonical, names, optimizer, penalized)
    s("# Global memory is only touched out here: inside the loop the compiler would keep the",
      "# addresses of every rarely used store in registers.",
      "if diverged:  # the loss at w_t is not finite: keep w_{t−1}")
    s.indent()
    s("diverged_at[k] = t")
    _no_records(s, "t")
    s("if t == start:  # w_{t−1} is the previous chunk's: in Wp already",
      "    for p in range(Wp.shape[0]):", "        Wout[p, k] = Wp[p, k]",
      "# else W keeps the chunk's first weights; the replay launch makes them w_{t−1}")
    s.indent(-1)
    s("elif replay:  # w_{t−1} is both the kept and the previous weights")
    s.indent()
    _each_weight(s, NP, "Wout[{p}, k] = {w}")
    _each_weight(s, NP, "Wp[{p}, k] = {w}")
    s.indent(-1)
    s("elif end > start:  # completed: the weights before the last update, then the update")
    s.indent()
    _store(s, optimizer, penalized)
    s.indent(-1)
    return s.text()


_COUNT = [0]


def single_precision(src: str) -> str:
    """The kernel source in float32: every float literal ``1.0`` becomes ``F32(1.0)`` and the
    shared row arrays float32, so with float32 arrays all arithmetic stays single precision
    (a bare literal is a float64 to numba and would promote the expression around it).  EPS
    and 1 − EPS stay float64, the clip and log of bce / ce with them: 1 − 1e-12 is 1.0 in
    float32, and log(1 − q) would be −inf for every saturated output."""
    out = []
    for line in src.splitlines():
        code, hash_, comment = line.partition("#")
        code = re.sub(r"(?<![\w.])(\d+\.\d+)(?![\w.])", r"F32(\1)", code)
        out.append(code.replace("np.float64", "np.float32") + hash_ + comment)
    return "\n".join(out) + "\n"


LO = 1.0 - EPS


def clip(p):
    """np.clip(p, EPS, 1 − EPS), NaN staying NaN: the snippets' ``clip`` on the device."""
    q = p
    if q < EPS:
        q = EPS
    if q > LO:
        q = LO
    return q


def _namespace(cuda) -> dict:
    """What the snippets call, for CUDA: e^x is ``math.exp`` (exp_neg), clip a device
    function; the rest are the ``math`` functions."""
    from numba import float32

    return {"cuda": cuda, "math": math, "np": np, "EPS": EPS, "LO": LO, "F32": float32,
            "exp_neg": math.exp, "tanh": math.tanh, "log": math.log, "log1p": math.log1p,
            "expm1": math.expm1, "clip": cuda.jit(device=True)(clip)}


def build_kernel(cuda, sizes, acts, loss: int, canonical: bool, rows=None,
                 max_registers: int | None = None, dtype: str = "float64",
                 unroll: bool = True, optimizer: str = "gd", penalized: bool = False):
    """``numba.cuda.jit`` of ``kernel_source(...)`` (the module given as ``cuda``);
    ``max_registers`` caps the registers per thread (more threads fit on an SM, values that
    do not fit are spilled; ignored by the simulator); ``dtype="float32"``: the
    ``single_precision`` source; ``unroll=False``: the generic kernel."""
    from numba import config

    src = kernel_source(sizes, acts, loss, canonical, rows, unroll, optimizer, penalized)
    if dtype == "float32":
        src = single_precision(src)
    _COUNT[0] += 1
    filename = f"<scratchnet.engines.codegen kernel {_COUNT[0]}: {'-'.join(map(str, sizes))}>"
    linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)  # tracebacks
    namespace = _namespace(cuda)
    exec(compile(src, filename, "exec"), namespace)  # noqa: S102 - generated from integers

    opts = {} if max_registers is None or config.ENABLE_CUDASIM else \
        {"max_registers": int(max_registers)}
    kern = cuda.jit(**opts)(namespace["kernel"])
    kern.source = src  # for reading: gpu.make_kernel(...).source
    return kern
