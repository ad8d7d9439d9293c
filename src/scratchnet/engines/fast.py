"""The compiled fast path: the equations of ``backprop.py`` and ``optim.Loop``, fused into one
numba loop.

Same numbers as the readable engines (tests hold them equal to 1e-12 for every activation ×
output × loss × depth, and for every optimizer × schedule × penalty × mini-batch × jitter ×
early-stopping combination), about 50× faster on the problem set's 2-7-1 network.  What makes
it fast:

* the whole training loop runs inside one compiled call — no Python per epoch;
* activations are stored unit-major, β_l of shape (units, rows), so every inner loop runs
  over the rows of one unit and the CPU's vector units take 4–8 rows at a time;
* e^x is a short polynomial (``exp_neg``) that vectorizes, where a libm call per value would
  not; it agrees with ``np.exp`` to about one unit in the last place;
* sums over rows may be reordered (``fastmath`` reassoc/contract only — never the flags that
  assume no NaN/inf, so diverging runs are still detected).

Rows are cut into blocks; with many rows (``PARALLEL_ROWS``) the blocks of one network run on
all cores, and an ensemble (``ensemble_engine``) runs one network per core instead.

**Where the math comes from.**  The per-value formulas (each activation's f and f′, each loss's
value and ∂E/∂ŷ) are not written here: ``engines/snippets.py`` holds them once, for this loop
and for the CUDA code generator.  The functions below are plain Python; at import the module
source for numba is *rendered*: the snippet functions (``_activate``, ``_times_deriv``,
``_loss_sum``, ``_loss_grad``) generated from the table, followed by the text of the loop
functions of this file.  That source is written once to a file named after the hash of what
it is rendered from, this file and ``snippets.py`` (in the user's cache folder), and imported,
so numba's on-disk cache (``cache=True``) works and can never hold code compiled from an older
table; a start-up that finds the file does not render again.  Only the first run ever pays for
compiling.

Without numba, :func:`available` is False and ``train.select_engine`` takes the numpy engine.
"""
from __future__ import annotations

import copy
import hashlib
import importlib.util
import inspect
import math
import os
import sys
import tempfile
from collections import namedtuple

import numpy as np

from ..core.losses import CANONICAL_PAIRS, EPS
from ..training.optim import Loop, epoch_rng, jitter, weight_mask
from ..training.run import ENGINE_OPTIONS, Outcome
from . import snippets
from .snippets import ACT_CODES, LOSS_CODES, SOFTMAX

try:  # numba is optional: without it the readable numpy engine is used
    if os.environ.get("SCRATCHNET_NO_NUMBA"):
        raise ImportError("disabled by SCRATCHNET_NO_NUMBA")
    import numba
    from numba import prange
except ImportError:  # pragma: no cover - exercised by a subprocess test
    numba = None
    prange = range

PARALLEL_ROWS = 16384  # a single network's rows are split over the cores from this many on
BLOCK_ROWS = 4096  # rows per block when they are: a block's β stay in the core's cache
BATCH_ELEMENTS = 1 << 22  # per call, at most this many pre-drawn shuffle / jitter values

# The compiled functions take their arguments in bundles (numba passes namedtuples of arrays
# and scalars as cheaply as separate arguments):
Net = namedtuple("Net", "sizes offs ro acts loss canonical")  # the layout and the loss
Rows = namedtuple("Rows", "X Y L n thr")  # rows in blocks: X (nb, D, bs), Y (nb, n_out, bs),
#   labels L (nb, bs), rows used per block n (nb,); thr: class 1 when one output ŷ > thr
Records = namedtuple("Records", "train_loss test_loss train_acc test_acc every base")
# (epoch t, when t % every == 0, is recorded at index (t − base) // every)
# How a gradient becomes a step.  kind: OPT_KINDS; eta: η per epoch of the call (or one value);
# hyper: [μ, β₁, β₂, ρ, ε, λ₂, λ₁]; mask: 0 on the bias weights (the penalties skip them);
# mean: divide the gradient by the batch's rows; patience: early stopping on the test loss
# (0: off); on_nan: what a non-finite training loss does (ON_NAN).
Steps = namedtuple("Steps", "kind eta hyper mask mean patience on_nan")
# The state kept between calls: s1, s2 the optimizer's (velocity / r / m and v); prev the
# weights before the last update; best_w the early-stopping weights; ints [adam steps, best
# epoch, stopped_at]; best_loss [lowest test loss].
State = namedtuple("State", "s1 s2 prev best_w ints best_loss")
# Mini-batches and jitter, drawn on the host exactly as optim.Loop draws them: X (D, N) and
# Y (n_out, N) the training rows unit-major; order (E, N) each epoch's shuffle (E = 0: rows in
# order); xj (E, D, N) each epoch's jittered inputs (E = 0: none); size the batch size.
Batches = namedtuple("Batches", "X Y order xj size")

OPT_KINDS = {"gd": 0, "sgd": 0, "momentum": 1, "nesterov": 2, "rmsprop": 3, "adam": 4}
ON_NAN = {"run_on": 0, "keep_last": 1, "ensemble": 2}
# 0: NaNs run on, as in train.run_epochs (train() replays); 1: record the epoch, put back the
# weights before the last update and stop (optim.Loop); 2: the same without recording the epoch
# (ensemble.numpy_engine)


def available() -> bool:
    """True when numba is importable (and not disabled with SCRATCHNET_NO_NUMBA=1)."""
    return numba is not None


_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 split in two: k·ln2 is exact in the first part
_LN2_LO = 1.90821492927058770002e-10


# ---- the loop functions (plain Python here; compiled from the rendered module) ------------
# They index the 2-D buffers directly (B[r, q]) rather than taking row views: a view costs a
# reference-count update, and there would be dozens per epoch.

def exp_neg(x):
    """e^x for x ≤ 0: x = k ln2 + r with |r| ≤ ln2/2, e^r by its Taylor series to r¹³
    (error < 2⁻⁵⁶), times 2^k put straight into the exponent bits.  Below −708 the result
    (< 1e-307) is flushed to about 3e-308 instead of a subnormal."""
    if x < -708.0:  # (written so that NaN stays NaN: a diverged run must show it)
        x = -708.0
    k = math.floor(x * _LOG2E + 0.5)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 + r * (1.0 + r * (1 / 2 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (
        1 / 720 + r * (1 / 5040 + r * (1 / 40320 + r * (1 / 362880 + r * (
            1 / 3628800 + r * (1 / 39916800 + r * (1 / 479001600 + r / 6227020800))))))))))))
    return p * np.int64((np.int64(k) + 1023) << 52).view(np.float64)


def _put(dst, src):
    """dst[:] = src one element at a time: in ``_epochs_parallel`` numba turns a whole-array
    assignment into a parallel loop whose run-time shape check failed ("Sizes of … w do not
    match") on every path but plain gradient descent's."""
    for p in range(dst.size):
        dst[p] = src[p]


def clip(p):
    q = p  # np.clip(p, EPS, 1 − EPS), NaN stays NaN
    if q < EPS:
        q = EPS
    if q > 1.0 - EPS:
        q = 1.0 - EPS
    return q


def _forward(sizes, offs, ro, acts, w, B, n):
    """α_l = β_{l−1} W_l[1:] + W_l[0], β_l = f_l(α_l) for every layer, rows 0..n−1 of the
    block B (rows ro[l]..ro[l+1] of B hold β_l unit-major; β_0 = x is already there).
    (The hot helpers take the layout's arrays one by one: cheaper than a bundle per call.)"""
    for l in range(sizes.size - 1):
        fi, fo, o, ri = sizes[l], sizes[l + 1], offs[l], ro[l]
        for j in range(fo):
            r = ro[l + 1] + j
            c = w[o + fo + j]  # W_l[1, j]
            for q in range(n):
                B[r, q] = B[ri, q] * c
            for i in range(1, fi):
                c = w[o + (1 + i) * fo + j]  # W_l[1 + i, j]
                for q in range(n):
                    B[r, q] += B[ri + i, q] * c
            b = w[o + j]  # W_l[0, j], the bias weight
            for q in range(n):
                B[r, q] += b
            if acts[l] != SOFTMAX:
                _activate(acts[l], B, r, n)
        if acts[l] == SOFTMAX:  # softmax over the units of each row, shifted by the row's max
            r0 = ro[l + 1]
            for q in range(n):
                m = B[r0, q]
                for j in range(1, fo):
                    m = max(m, B[r0 + j, q])
                s = 0.0
                for j in range(fo):
                    B[r0 + j, q] = exp_neg(B[r0 + j, q] - m)
                    s += B[r0 + j, q]
                for j in range(fo):
                    B[r0 + j, q] /= s


def _hits(B, r0, no, lab, thr, n):
    """How many of rows 0..n−1 are classified right, as train.accuracy counts them."""
    c = 0
    if no == 1:
        for q in range(n):
            c += (B[r0, q] > thr) == (lab[q] == 1)
        return c
    for q in range(n):
        best = 0  # np.argmax: the first maximum, or the first NaN
        for j in range(no):
            if B[r0 + j, q] != B[r0 + j, q]:
                best = j
                break
            if B[r0 + j, q] > B[r0 + best, q]:
                best = j
        c += best == lab[q]
    return c


def _output_delta(r0, out, loss, canonical, B, Y, d, n):
    """δ_L = ∂E/∂α_L into d: ŷ − y for a canonical pair, else f′(ŷ) ⊙ ∂E/∂ŷ."""
    no = Y.shape[0]
    for j in range(no):
        r = r0 + j
        if canonical:
            for q in range(n):
                d[j, q] = B[r, q] - Y[j, q]
        else:
            _loss_grad(loss, B, r, Y, j, d, n)
            if out != SOFTMAX:
                _times_deriv(out, d, j, B, r, n)
    if not canonical and out == SOFTMAX:  # δ = β ⊙ (g − Σ_j g_j β_j) per row
        for q in range(n):
            s = 0.0
            for j in range(no):
                s += d[j, q] * B[r0 + j, q]
            for j in range(no):
                d[j, q] = B[r0 + j, q] * (d[j, q] - s)


def _backward(sizes, offs, ro, acts, loss, canonical, w, B, Y, n, g, D1, D2):
    """Adds ∂E/∂w of rows 0..n−1 of block B to g (backprop.backward, same δ names)."""
    L = sizes.size - 1
    _output_delta(ro[L], acts[L - 1], loss, canonical, B, Y, D1, n)
    flip = False  # δ_l is in D1 (False) or D2 (True)
    for l in range(sizes.size - 2, -1, -1):
        fi, fo, o, ri = sizes[l], sizes[l + 1], offs[l], ro[l]
        d = D2 if flip else D1
        for j in range(fo):
            s = 0.0
            for q in range(n):
                s += d[j, q]
            g[o + j] += s  # ∂E/∂W_l[0, j] = Σ_n δ_l
            for i in range(fi):
                s = 0.0
                for q in range(n):
                    s += B[ri + i, q] * d[j, q]
                g[o + (1 + i) * fo + j] += s  # ∂E/∂W_l[1+i, j] = Σ_n β_{l−1,i} δ_l,j
        if l > 0:  # δ_{l−1} = (δ_l W_l[1:]ᵀ) ⊙ f′(β_{l−1})
            nd = D1 if flip else D2
            for i in range(fi):
                c = w[o + (1 + i) * fo]
                for q in range(n):
                    nd[i, q] = d[0, q] * c
                for j in range(1, fo):
                    c = w[o + (1 + i) * fo + j]
                    for q in range(n):
                        nd[i, q] += d[j, q] * c
                _times_deriv(acts[l - 1], nd, i, B, ri + i, n)
            flip = not flip


def _load(S, X, n):
    """β_0 = x: the block's inputs into the first rows of the scratch buffer S."""
    for i in range(X.shape[0]):
        for q in range(n):
            S[i, q] = X[i, q]


def _gather(S, Yb, bt, e, lo, hi):
    """β_0 and y of rows lo..hi−1 of epoch e's order (its jittered inputs when there are)."""
    for q in range(hi - lo):
        m = bt.order[e, lo + q] if bt.order.shape[0] > 0 else lo + q
        for i in range(bt.X.shape[0]):
            S[i, q] = bt.xj[e, i, m] if bt.xj.shape[0] > 0 else bt.X[i, m]
        for j in range(bt.Y.shape[0]):
            Yb[j, q] = bt.Y[j, m]


def _batch_gradient(net, bt, w, e, lo, hi, S, Yb, D1, D2, G, g):
    """g = ∂E/∂w of rows lo..hi−1 of epoch e's order, worked on in blocks of S's width."""
    bs, c = S.shape[1], 0
    for a in range(lo, hi, bs):
        b = min(a + bs, hi)
        _gather(S, Yb, bt, e, a, b)
        _forward(net.sizes, net.offs, net.ro, net.acts, w, S, b - a)
        for p in range(g.size):
            G[c, p] = 0.0
        _backward(net.sizes, net.offs, net.ro, net.acts, net.loss, net.canonical, w, S, Yb,
                  b - a, G[c], D1, D2)
        c += 1
    for p in range(g.size):
        s = G[0, p]
        for k in range(1, c):
            s += G[k, p]
        g[p] = s


def _step(steps, st, w, g, rows, eta):
    """optim: the gradient averaged (mean), the penalty's ∂R/∂w added, then one optimizer
    step w ← … with η = eta, in the operation order of optim.py's numpy lines."""
    h = steps.hyper
    if steps.mean:
        for p in range(g.size):
            g[p] /= rows
    if h[5] != 0.0 or h[6] != 0.0:  # ∂R/∂w = λ₂ w + λ₁ sign(w) over the non-bias weights
        for p in range(g.size):
            wm = w[p] * steps.mask[p]
            sign = 1.0 if wm > 0.0 else (-1.0 if wm < 0.0 else wm * 0.0)
            g[p] += h[5] * wm + h[6] * sign
    kind = steps.kind
    c1, c2 = 1.0, 1.0
    if kind == 4:  # adam: both moments start at 0, undo that bias
        st.ints[0] += 1
        c1 = 1.0 - h[1] ** float(st.ints[0])
        c2 = 1.0 - h[2] ** float(st.ints[0])
    for p in range(g.size):
        gp = g[p]
        if kind == 0:  # w ← w − η g
            w[p] -= eta * gp
        elif kind <= 2:  # v ← μ v + g;  w ← w − η v  (nesterov: w ← w − η (g + μ v))
            v = st.s1[p] * h[0] + gp
            st.s1[p] = v
            w[p] -= eta * v if kind == 1 else eta * (gp + h[0] * v)
        elif kind == 3:  # r ← ρ r + (1 − ρ) g²;  w ← w − η g / (√r + ε)
            r = st.s1[p] * h[3] + (1.0 - h[3]) * gp * gp
            st.s1[p] = r
            w[p] -= eta * gp / (math.sqrt(r) + h[4])
        else:  # m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;  w ← w − η m̂ / (√v̂ + ε)
            m = st.s1[p] * h[1] + (1.0 - h[1]) * gp
            v = st.s2[p] * h[2] + (1.0 - h[2]) * gp * gp
            st.s1[p], st.s2[p] = m, v
            w[p] -= eta * (m / c1) / (math.sqrt(v / c2) + h[4])


def _early_stop(steps, st, t, loss, w):
    """optim.EarlyStopping.update: True when the test loss has not improved for patience."""
    if loss < st.best_loss[0]:
        st.best_loss[0], st.ints[1] = loss, t
        for p in range(w.size):
            st.best_w[p] = w[p]
        return False
    return t - st.ints[1] >= steps.patience


def _block(sizes, offs, ro, acts, loss, canonical, X, Y, Lab, n, thr, w, B, D1, D2, g, grad):
    """One block of rows (inputs X, targets Y, labels Lab, n of them) through the network in
    scratch B: returns its loss and hits, and with ``grad`` puts its ∂E/∂w into g.  (The hot
    helpers take the arrays one by one: unpacking a bundle per call costs reference counts.)"""
    L = sizes.size - 1
    _load(B, X, n)
    _forward(sizes, offs, ro, acts, w, B, n)
    e = _loss_sum(loss, B, ro[L], Y, n)
    h = _hits(B, ro[L], sizes[L], Lab, thr, n)
    if grad:
        for p in range(w.size):
            g[p] = 0.0
        _backward(sizes, offs, ro, acts, loss, canonical, w, B, Y, n, g, D1, D2)
    return e, h


def _update(net, bt, steps, st, w, e, clean, G, g, B, Yb, D1, D2, N, batch):
    """The updates of epoch e of the call: one step from the recorded pass's block gradients
    (clean), else one per batch of epoch e's order."""
    eta = steps.eta[0] if steps.eta.size == 1 else steps.eta[e]
    if clean:
        for p in range(w.size):
            s = G[0, p]
            for b in range(1, G.shape[0]):
                s += G[b, p]
            g[p] = s
        _step(steps, st, w, g, N, eta)
        return
    for lo in range(0, N, batch):
        hi = min(lo + batch, N)
        _batch_gradient(net, bt, w, e, lo, hi, B, Yb, D1, D2, G, g)
        _step(steps, st, w, g, hi - lo, eta)


def _watched(net, va, w, B, D1, D2, g, e_test):
    """The loss early stopping watches: the validation rows' when there are any, else the
    test rows' (the caller's explicit choice)."""
    if va.n.sum() == 0:
        return e_test
    e = 0.0
    for b in range(va.X.shape[0]):
        e += _block(net.sizes, net.offs, net.ro, net.acts, net.loss, net.canonical, va.X[b],
                    va.Y[b], va.L[b], va.n[b], va.thr, w, B, D1, D2, g, False)[0]
    return e


def _plain_epochs(net, tr, te, w, prev, eta, start, stop, rec, nw, stop_on_nan):
    """Full-batch gradient descent with nothing else on (the problem set's job and the
    ensembles'): ``_epochs`` without its option branches, the same numbers."""
    sizes, offs, ro, acts, loss, canonical = net
    X, Y, Lab, n, thr = tr
    Xt, Yt, Labt, nt, thrt = te
    nb, nbt, P, L = X.shape[0], Xt.shape[0], w.size, sizes.size - 1
    G = np.zeros((nb, P))
    El, Et = np.zeros(nb), np.zeros(nbt)
    Hl, Ht = np.zeros(nb, np.int64), np.zeros(nbt, np.int64)
    mw, bs = max(sizes.max(), 1), max(X.shape[2], Xt.shape[2])
    S = np.empty((nw, ro[L + 1], bs))
    D1, D2 = np.empty((nw, mw, bs)), np.empty((nw, mw, bs))
    N, NT = n.sum(), nt.sum()
    for t in range(start, stop):
        for i in prange(nw):
            B = S[i]
            for b in range(i, nb, nw):
                _load(B, X[b], n[b])
                _forward(sizes, offs, ro, acts, w, B, n[b])
                El[b] = _loss_sum(loss, B, ro[L], Y[b], n[b])
                Hl[b] = _hits(B, ro[L], sizes[L], Lab[b], thr, n[b])
                for p in range(P):
                    G[b, p] = 0.0
                _backward(sizes, offs, ro, acts, loss, canonical, w, B, Y[b], n[b], G[b],
                          D1[i], D2[i])
        e_train, hits = El[0], Hl[0]
        for b in range(1, nb):
            e_train += El[b]
            hits += Hl[b]
        if stop_on_nan and not math.isfinite(e_train):
            for p in range(P):
                w[p] = prev[p]
            return t
        if t % rec.every == 0:
            for i in prange(nw):
                B = S[i]
                for b in range(i, nbt, nw):
                    _load(B, Xt[b], nt[b])
                    _forward(sizes, offs, ro, acts, w, B, nt[b])
                    Et[b] = _loss_sum(loss, B, ro[L], Yt[b], nt[b])
                    Ht[b] = _hits(B, ro[L], sizes[L], Labt[b], thrt, nt[b])
            e_test, hits_t = Et[0], Ht[0]
            for b in range(1, nbt):
                e_test += Et[b]
                hits_t += Ht[b]
            k = (t - rec.base) // rec.every
            rec.train_loss[k], rec.test_loss[k] = e_train, e_test
            rec.train_acc[k], rec.test_acc[k] = hits / N, hits_t / NT
        for p in range(P):
            if stop_on_nan:
                prev[p] = w[p]
            s = G[0, p]
            for b in range(1, nb):
                s += G[b, p]
            w[p] -= eta * s
    return -1


def _epochs_py(net, tr, te, va, w, steps, st, bt, start, stop, rec, nw):
    """Epochs start..stop−1 of one network (train.run_epochs and optim.Loop fused): records
    the four metrics at every t with t % every == 0 into index t // every, then updates w —
    once from the recorded pass (full batch, no jitter), else once per batch of ``bt``.

    The rows come in blocks: tr.X[b] holds x of block b unit-major, tr.n[b] rows of it used.
    Each block is worked on in a scratch buffer (β of all layers, δ) that stays in cache;
    block results are summed in block order.  ``_epochs_parallel`` runs the blocks on ``nw``
    workers (one per core), worker i taking blocks i, i + nw, … in its own scratch buffer;
    the plain ``_epochs`` needs nw = 1.  Returns the epoch at which a non-finite training loss
    stopped the run (``steps.on_nan`` ≠ 0), else −1; early stopping (watching the loss of
    the validation rows ``va``, or of the test rows when there are none) sets st.ints[2]."""
    h = steps.hyper
    if bt.size == 0 and bt.xj.shape[0] == 0 and steps.kind == 0 and not steps.mean and \
            steps.eta.size == 1 and h[5] == 0.0 and h[6] == 0.0 and steps.patience == 0 \
            and steps.on_nan != 1:
        return _plain_epochs(net, tr, te, w, st.prev, steps.eta[0], start, stop, rec, nw,
                             steps.on_nan == 2)
    nb, nbt, P, L = tr.X.shape[0], te.X.shape[0], w.size, net.sizes.size - 1
    G, g = np.zeros((nb, P)), np.empty(P)  # per-block partial gradients, their sum
    El, Et = np.zeros(nb), np.zeros(nbt)
    Hl, Ht = np.zeros(nb, np.int64), np.zeros(nbt, np.int64)
    mw, bs = max(net.sizes.max(), 1), max(tr.X.shape[2], te.X.shape[2])
    S = np.empty((nw, net.ro[L + 1], bs))  # scratch: β of every layer, one per worker
    D1, D2 = np.empty((nw, mw, bs)), np.empty((nw, mw, bs))  # δ of two neighbouring layers
    Yb = np.empty((net.sizes[L], bs))  # the targets of a gathered batch block
    N, NT = tr.n.sum(), te.n.sum()
    batch = min(bt.size, N) if bt.size > 0 else N
    clean = batch == N and bt.xj.shape[0] == 0  # the recorded pass gives the gradient
    sizes, offs, ro, acts, loss, canonical = net
    X, Y, Lab, n, thr = tr
    Xt, Yt, Labt, nt, thrt = te
    for t in range(start, stop):
        for i in prange(nw):
            for b in range(i, nb, nw):
                El[b], Hl[b] = _block(sizes, offs, ro, acts, loss, canonical, X[b], Y[b], Lab[b],
                                      n[b], thr, w, S[i], D1[i], D2[i], G[b], clean)
        e_train = El.sum()
        bad = not math.isfinite(e_train)
        if steps.on_nan != 0:  # optim.Loop and numpy_engine also stop on a non-finite weight
            for p in range(P):
                bad = bad or not math.isfinite(w[p])
        if bad and steps.on_nan == 2:  # (ensemble) the epoch is not recorded
            _put(w, st.prev)
            return t
        e_test = np.nan
        if t % rec.every == 0:
            for i in prange(nw):
                for b in range(i, nbt, nw):
                    Et[b], Ht[b] = _block(sizes, offs, ro, acts, loss, canonical, Xt[b], Yt[b],
                                          Labt[b], nt[b], thrt, w, S[i], D1[i], D2[i], g, False)
            e_test, k = Et.sum(), (t - rec.base) // rec.every
            rec.train_loss[k], rec.test_loss[k] = e_train, e_test
            rec.train_acc[k], rec.test_acc[k] = Hl.sum() / N, Ht.sum() / NT
        if bad and steps.on_nan == 1:  # the last weights whose loss was finite
            _put(w, st.prev)
            return t
        if steps.on_nan != 0:
            _put(st.prev, w)
        if steps.patience > 0 and _early_stop(
                steps, st, t, _watched(net, va, w, S[0], D1[0], D2[0], g, e_test), w):
            _put(w, st.best_w)
            st.ints[2] = t + 1
            return -1
        _update(net, bt, steps, st, w, t - start, clean, G, g, S[0], Yb, D1[0], D2[0], N, batch)
    return -1


def _ensemble_py(net, tr, te, W, W_prev, S1, S2, lrs, steps, t0, bt, start, stop, rec,
                 diverged_at):
    """One network per parallel iteration (each with its own scratch buffers), every one with
    its own η = lrs[k] and its own rows of the optimizer's state S1, S2 (K, P) (a (K, 0)
    placeholder where the optimizer keeps none), updated in place; ``steps`` gives the rest
    (the optimizer, the penalty, on_nan = 2), t0 adam's step count before epoch ``start``."""
    for k in prange(W.shape[0]):
        if diverged_at[k] < 0:
            sk = Steps(steps.kind, np.full(1, lrs[k]), steps.hyper, steps.mask, steps.mean,
                       steps.patience, steps.on_nan)
            ints = np.zeros(3, np.int64)  # [adam's t, best epoch (unused), stopped_at]
            ints[0] = t0
            ints[1] = -1
            st = State(S1[k], S2[k], W_prev[k], W_prev[k], ints, np.zeros(1))
            rk = Records(rec.train_loss[k], rec.test_loss[k], rec.train_acc[k],
                         rec.test_acc[k], rec.every, rec.base)
            t = _epochs(net, tr, te, te, W[k], sk, st, bt, start, stop, rk, 1)
            if t >= 0:
                diverged_at[k] = t


_LOOP_FUNCTIONS = (exp_neg, _put, clip, _forward, _hits, _output_delta, _backward, _load,
                   _gather, _batch_gradient, _step, _early_stop, _block, _update, _watched,
                   _plain_epochs, _epochs_py, _ensemble_py)


# ---- rendering the module numba compiles ------------------------------------------------
def _render_snippets() -> list[str]:
    """The per-value functions, one branch per entry of snippets' tables."""
    s = ["def _activate(code, B, r, n):", '    """β = f(α) in place on row r of B."""']
    elementwise = [(n, c) for n, c in ACT_CODES.items() if snippets.act(c).elementwise]
    for k, (name, code) in enumerate(elementwise):
        pre, f = snippets.apply("a", code)
        s += [f"    {'el' if k else ''}if code == {code}:  # {name}",
              "        for m in range(n):", "            a = B[r, m]",
              *(f"            {x}" for x in pre), f"            B[r, m] = {f}"]
    s += ["", "", "def _times_deriv(code, D, i, B, r, n):",
          '    """D[i] ⊙= f′ written from the outputs β in row r of B."""']
    for k, (name, code) in enumerate(elementwise):
        s += [f"    {'el' if k else ''}if code == {code}:  # {name}",
              "        for m in range(n):", "            b = B[r, m]",
              f"            D[i, m] *= {snippets.deriv('b', code)}"]
    s += ["", "", "def _loss_sum(loss, B, r0, Y, n):",
          '    """E over rows 0..n−1 of the outputs (rows r0.. of B)."""', "    s = 0.0"]
    for name, code in LOSS_CODES.items():
        pre, term = snippets.loss_term("p", "y", code)
        s += [f"    if loss == {code}:  # {name}", "        for j in range(Y.shape[0]):",
              "            for m in range(n):", "                p = B[r0 + j, m]",
              "                y = Y[j, m]", *(f"                {x}" for x in pre),
              f"                s += {term}", f"        return {snippets.loss(code).scale!r} * s"]
    s += ["    return s", "", "", "def _loss_grad(loss, B, r, Y, j, d, n):",
          '    """d[j] = ∂E/∂ŷ for the outputs in row r of B."""']
    for k, (name, code) in enumerate(LOSS_CODES.items()):
        pre, grad = snippets.loss_grad("p", "y", code)
        s += [f"    {'el' if k else ''}if loss == {code}:  # {name}",
              "        for m in range(n):", "            p = B[r, m]", "            y = Y[j, m]",
              *(f"            {x}" for x in pre), f"            d[j, m] = {grad}"]
    return s


_JIT = '''
_fast = dict(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
exp_neg = njit(cache=True, error_model="numpy", fastmath={"contract"})(exp_neg)
for _name in ("_put", "clip", "_activate", "_times_deriv", "_loss_sum", "_loss_grad",
              "_forward", "_hits", "_output_delta", "_backward", "_load", "_gather",
              "_batch_gradient", "_step", "_early_stop", "_block", "_update", "_watched",
              "_plain_epochs"):
    globals()[_name] = njit(**_fast)(globals()[_name])
_epochs = njit(**_fast)(_epochs_py)
_epochs_parallel_py = types.FunctionType(_epochs_py.__code__, globals(), "_epochs_parallel")
_epochs_parallel_py.__qualname__ = "_epochs_parallel"  # its own entry in numba's cache
_epochs_parallel = njit(parallel=True, **_fast)(_epochs_parallel_py)
_ensemble = njit(parallel=True, **_fast)(_ensemble_py)
'''


def module_source() -> str:
    """The Python source numba compiles: constants, the rendered snippet functions, the loop
    functions of this file, the jit calls (written once to the file ``_source_key`` names)."""
    head = ['"""Rendered by scratchnet.engines.fast from engines/snippets.py and the loop '
            'functions of fast.py; do not edit."""', "import math", "import types",
            "from math import expm1, log, log1p, tanh", "", "import numpy as np",
            "from numba import njit, prange", "",
            f"EPS = {EPS!r}", f"SOFTMAX = {SOFTMAX!r}", f"_LOG2E = {_LOG2E!r}",
            f"_LN2_HI = {_LN2_HI!r}", f"_LN2_LO = {_LN2_LO!r}", "", ""]
    parts = ["\n".join(head + _render_snippets())]
    parts += [inspect.getsource(f) for f in _LOOP_FUNCTIONS]
    return "\n\n".join(parts) + _JIT


def _cache_folders() -> list[str]:
    """Where the rendered module may be written: $SCRATCHNET_CACHE_DIR, the user's cache
    folder, the temporary folder."""
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folders = [os.environ.get("SCRATCHNET_CACHE_DIR", ""), os.path.join(home, "scratchnet"),
               os.path.join(tempfile.gettempdir(), f"scratchnet-{os.getuid()}")]
    return [f for f in folders if f]


def _write_once(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically unless it already holds it (rewriting would
    change its time stamp and throw numba's cache away)."""
    try:
        with open(path, encoding="utf-8") as fh:
            if fh.read() == text:
                return
    except OSError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _source_key() -> str:
    """The hash of what the rendered module is made from: this file, ``snippets.py`` (the
    table) and the constants it takes from the core; the module's file is named after it,
    so a start-up that finds the file reads two small files instead of rendering."""
    h = hashlib.sha256(f"{EPS!r} {SOFTMAX!r} {sys.version_info[:2]}".encode())
    for mod in (sys.modules[__name__], snippets):
        with open(mod.__file__, "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()[:20]


def _compile_module():
    """Import the rendered module (numba compiles its functions on first call)."""
    name = "_scratchnet_fast_" + _source_key()
    for folder in _cache_folders():
        path = os.path.join(folder, name + ".py")
        try:
            if not os.path.isfile(path):
                _write_once(path, module_source())
            break
        except OSError:
            continue
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    module.__dict__.update(Steps=Steps, State=State, Records=Records)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


if numba is not None:
    _compiled = _compile_module()
    _exp_neg, _epochs = _compiled.exp_neg, _compiled._epochs
    _epochs_parallel, _ensemble = _compiled._epochs_parallel, _compiled._ensemble


# ---- the Python side ----------------------------------------------------------------------
def net_bundle(layout, loss: str) -> Net:
    sizes = np.asarray(layout.sizes, np.int64)
    acts = np.asarray([ACT_CODES[layout.activations[l] if l < layout.n_layers - 1
                                 else layout.output] for l in range(layout.n_layers)], np.int64)
    ro = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return Net(sizes, np.asarray(layout.offsets, np.int64), ro, acts, LOSS_CODES[loss],
               (layout.output, loss) in CANONICAL_PAIRS)


def _blocks(x, y, labels, block: int, thr: float) -> Rows:
    """Rows cut into blocks: inputs unit-major (nb, D, bs), targets (nb, n_out, bs), labels
    (nb, bs) and the row count of each block."""
    N, D = x.shape
    nb = max(1, -(-N // block))
    bs = max(1, -(-N // nb))
    X = np.zeros((nb, D, bs))
    Y = np.zeros((nb, y.shape[1], bs))
    Lb = np.zeros((nb, bs), np.int64)
    cnt = np.zeros(nb, np.int64)
    for b in range(nb):
        lo, hi = b * bs, min(N, (b + 1) * bs)
        cnt[b] = hi - lo
        X[b, :, :hi - lo] = x[lo:hi].T
        Y[b, :, :hi - lo] = y[lo:hi].T
        Lb[b, :hi - lo] = labels[lo:hi]
    return Rows(X, Y, Lb, cnt, float(thr))


def _problem_blocks(prob, block: int) -> tuple[Rows, Rows]:
    return (_blocks(prob.x_train, prob.y_train, prob.l_train, block, prob.threshold),
            _blocks(prob.x_test, prob.y_test, prob.l_test, block, prob.threshold))


def _no_batches(prob) -> Batches:
    D, no = prob.x_train.shape[1], prob.y_train.shape[1]
    return Batches(np.zeros((D, 0)), np.zeros((no, 0)), np.zeros((0, 0), np.int64),
                   np.zeros((0, D, 0)), 0)


def _threads() -> int:
    return numba.get_num_threads() if numba is not None else 1


def _records(out, every: int = 1, base: int = 0) -> Records:
    return Records(out.train_loss, out.test_loss, out.train_acc, out.test_acc, every, base)


def _plain_steps(lr: float, P: int, on_nan: int) -> Steps:
    return Steps(0, np.full(1, float(lr)), np.zeros(7), np.zeros(P), False, 0, on_nan)


def _fresh_state(w: np.ndarray) -> State:
    P = w.size
    return State(np.zeros(P), np.zeros(P), w.copy(), np.zeros(P),
                 np.array([0, -1, 0], np.int64), np.full(1, np.inf))


def _run(layout, loss: str, w: np.ndarray, prob, steps: Steps, st: State, bt: Batches,
         start: int, stop: int, rec: Records) -> int:
    """The compiled loop on one network: rows over the cores when there are many."""
    par = prob.x_train.shape[0] >= PARALLEL_ROWS and _threads() > 1
    tr, te = _problem_blocks(prob, BLOCK_ROWS if par else max(1, prob.x_train.shape[0]))
    x_val = getattr(prob, "x_val", None)
    va = te if x_val is None or len(x_val) == 0 else \
        _blocks(x_val, prob.y_val, np.zeros(len(x_val), np.int64), max(1, len(x_val)), 0.5)
    fn = _epochs_parallel if par else _epochs
    wc = np.ascontiguousarray(w, dtype=np.float64)
    t = fn(net_bundle(layout, loss), tr, te, va, wc, steps, st, bt, int(start), int(stop), rec,
           _threads() if par else 1)
    if wc is not w:
        w[:] = wc
    return int(t)


def run_epochs(layout, loss: str, w: np.ndarray, prob, lr: float, start: int, stop: int,
               hist) -> None:
    """Epochs start..stop−1 of full-batch gradient descent, compiled; the signature and the
    numbers of ``train.run_epochs``: updates ``w`` in place, fills ``hist[start:stop]``."""
    if stop <= start:
        return
    _run(layout, loss, w, prob, _plain_steps(lr, w.size, ON_NAN["run_on"]), _fresh_state(w),
         _no_batches(prob), start, stop, _records(hist))


def ensemble_engine(layout, loss: str, W: np.ndarray, W_prev: np.ndarray, lrs: np.ndarray,
                    prob, start: int, stop: int, record_every: int, rec: dict,
                    diverged_at: np.ndarray, steps=None) -> None:
    """``ensemble.numpy_engine`` compiled: one network per core at a time (numba prange), each
    in the single-network loop ``_epochs``.  ``steps``: the run's ``ensemble.EnsembleSteps``
    (the optimizer and penalty; its state arrays (K, P) updated in place, adam's count moved
    on), None for w ← w − η g."""
    if stop <= start:
        return
    tr, te = _problem_blocks(prob, max(1, prob.x_train.shape[0], prob.x_test.shape[0]))
    records = Records(rec["train_loss"], rec["test_loss"], rec["train_acc"], rec["test_acc"],
                      int(record_every), 0)
    K, n = W.shape
    none = np.empty((K, 0))  # the state an optimizer does not keep: never read
    if steps is None:
        sk, S1, S2, t0 = _plain_steps(0.0, n, ON_NAN["ensemble"]), none, none, 0
    else:
        sk = Steps(OPT_KINDS[steps.optimizer], np.zeros(1), steps.hyper_array(),
                   np.ascontiguousarray(steps.mask, np.float64), False, 0, ON_NAN["ensemble"])
        S1, S2 = (none if a is None else a for a in steps.arrays())
        t0 = int(steps.state.get("t", 0))
    _ensemble(net_bundle(layout, loss), tr, te, W, W_prev, S1, S2,
              np.ascontiguousarray(lrs, np.float64), sk, t0, _no_batches(prob), int(start),
              int(stop), records, diverged_at)
    if steps is not None:  # (the numpy engine's optim steps count t themselves)
        steps.advance(stop - start)


# With options (an optimizer, mini-batches, …) the numpy loop pays more Python per epoch than
# plain gradient descent, so the compiled loop wins further (docs/speed.md, one core: 48× for
# PS5 with adam, 4.2× for tanh 16-16, 1.3× for 64-64 hidden layers on 2000 rows); ``auto``
# keeps numpy only beyond the widest measured hidden-to-hidden layer pair.
LOOP_MAX_HIDDEN_PRODUCT = 4096


def loop_pays(layout) -> bool:
    """Whether ``auto`` should run a configuration with options on ``CompiledLoop``."""
    hidden = layout.sizes[1:-1]
    return max((a * b for a, b in zip(hidden, hidden[1:])), default=0) <= LOOP_MAX_HIDDEN_PRODUCT


class CompiledLoop(Loop):
    """``optim.Loop`` compiled — the ``run.Engine`` for every option but the gradient monitor:
    each optimizer, schedule, L1/L2 penalty, mini-batch order, jitter and early stopping runs in
    ``_epochs`` with the numbers of the numpy loop (to 1e-12: each epoch's shuffle and noise
    are drawn on the host from ``optim.epoch_rng``, as the numpy loop draws them).  Bound,
    called and sliced like it, its state kept between slices like it.  ``mean``: divide each
    batch's gradient by its rows (the estimator's ``reduction="mean"``)."""

    name = "fast"
    supports = ENGINE_OPTIONS - {"monitor"}
    mean = False

    def epochs(self, w: np.ndarray, start: int, stop: int, out, row0: int | None = None):
        """Epochs start..stop−1, epoch t recorded in row t − row0 of ``out`` (row0 = start
        by default); returns a ``run.Outcome``."""
        if self.monitor is not None:
            raise ValueError("the compiled loop has no gradient monitor: use optim.Loop")
        if self.state is None:
            self.state, self.mask = _fresh_state(w), weight_mask(self.layout)
        self._saved = (tuple(a.copy() for a in self.state), copy.deepcopy(self.early))
        row0 = start if row0 is None else row0
        N, D = self.prob.x_train.shape
        B = min(self.batch_size or N, N)
        chunk = max(1, BATCH_ELEMENTS // max(N * ((D if self.sigma else 0) + (B < N)), 1))
        h = self.hyper
        hyper = np.array([h.momentum, h.beta1, h.beta2, h.rho, h.eps, self.l2, self.l1], float)
        on_nan = ON_NAN["keep_last" if self.keeps_last_finite else "run_on"]
        for a in range(start, stop, chunk):
            b = min(a + chunk, stop)
            eta = np.array([self.schedule.lr(self.lr, t) for t in range(a, b)], float)
            steps = Steps(OPT_KINDS[self.opt.name], eta, hyper, self.mask, bool(self.mean),
                          self.early.patience if self.early else 0, on_nan)
            t = _run(self.layout, self.loss, w, self.prob, steps, self.state,
                     self._batches(B, a, b), a, b, _records(out, 1, row0))
            self._sync_early()
            if t >= 0:
                return Outcome(t - start + 1, "diverged")
            if self.state.ints[2]:
                self.stopped_at = int(self.state.ints[2])
                return Outcome(self.stopped_at - start, "early_stopped")
        return Outcome(stop - start)

    def rollback(self) -> None:
        """Undo what an interrupted ``epochs`` call changed in the state."""
        if self._saved is not None:
            for a, saved in zip(self.state, self._saved[0]):
                a[:] = saved
            self.early = self._saved[1]

    def _batches(self, B: int, a: int, b: int) -> Batches:
        """Epochs a..b−1's jittered inputs and shuffles, drawn as optim.Loop draws them."""
        prob = self.prob
        N, D = prob.x_train.shape
        if B == N and not self.sigma:
            return _no_batches(prob)
        order = np.empty((b - a if B < N else 0, N), np.int64)
        xj = np.empty((b - a if self.sigma else 0, D, N))
        for e in range(b - a):
            rng = epoch_rng(self.seed, a + e)
            if self.sigma:
                xj[e] = jitter(prob.x_train, self.sigma, rng).T
            if B < N:
                order[e] = rng.permutation(N)
        return Batches(np.ascontiguousarray(prob.x_train.T),
                       np.ascontiguousarray(prob.y_train.T), order, xj, B)

    def _sync_early(self) -> None:
        """The compiled early-stopping state into ``self.early`` (read by ``finish``)."""
        e, ints = self.early, self.state.ints
        if e is not None and ints[1] >= 0 and ints[1] != e.best_epoch:
            e.best_epoch, e.best_loss = int(ints[1]), float(self.state.best_loss[0])
            e.best_w = self.state.best_w.copy()
