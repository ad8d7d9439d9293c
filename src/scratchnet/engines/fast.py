"""The compiled fast path: the equations of ``backprop.py``, fused into one numba loop.

Same numbers as the readable engine (a test holds them equal to 1e-12 for every activation ×
output × loss × depth), about 50× faster on the problem set's 2-7-1 network.  What makes it fast:

* the whole training loop runs inside one compiled call — no Python per epoch;
* activations are stored unit-major, β_l of shape (units, rows), so every inner loop runs
  over the rows of one unit and the CPU's vector units take 4–8 rows at a time;
* e^x is a short polynomial (``_exp_neg``) that vectorizes, where a libm call per value would
  not; it agrees with ``np.exp`` to about one unit in the last place;
* sums over rows may be reordered (``fastmath`` reassoc/contract only — never the flags that
  assume no NaN/inf, so diverging runs are still detected).

Rows are cut into blocks; with many rows (``PARALLEL_ROWS``) the blocks of one network run on
all cores, and an ensemble (``ensemble_engine``) runs one network per core instead.  Compiled
code is cached on disk (``cache=True``), so only the first run ever pays for compiling.
Without numba, :func:`available` is False and ``train.select_engine`` takes the numpy engine.
"""
from __future__ import annotations

import math
import os
import types

import numpy as np

from ..core.losses import CANONICAL_PAIRS, EPS

try:  # numba is optional: without it the readable numpy engine is used
    if os.environ.get("SCRATCHNET_NO_NUMBA"):
        raise ImportError("disabled by SCRATCHNET_NO_NUMBA")
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised by a subprocess test
    numba = None

ACT_CODES = {"sigmoid": 0, "tanh": 1, "relu": 2, "identity": 3, "softmax": 4}
LOSS_CODES = {"sse": 0, "bce": 1, "ce": 2}
PARALLEL_ROWS = 16384  # a single network's rows are split over the cores from this many on
BLOCK_ROWS = 4096  # rows per block when they are: a block's β stay in the core's cache


def available() -> bool:
    """True when numba is importable (and not disabled with SCRATCHNET_NO_NUMBA=1)."""
    return numba is not None


if numba is not None:
    _FAST = {"reassoc", "contract"}  # reorder sums, fuse multiply-adds; keep NaN/inf semantics
    _jit = dict(cache=True, error_model="numpy", fastmath=_FAST)
    _LOG2E = 1.4426950408889634
    _LN2_HI = 6.93147180369123816490e-01  # ln 2 split in two: k·ln2 is exact in the first part
    _LN2_LO = 1.90821492927058770002e-10

    @njit(cache=True, error_model="numpy", fastmath={"contract"})
    def _exp_neg(x):
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

    # The helpers index the 2-D buffers directly (B[r, q]) rather than taking row views: a view
    # costs a reference-count update, and there would be dozens per epoch.

    @njit(**_jit)
    def _activate(code, B, r, n):
        """β = f(α) in place on row r of B (columns 0..n−1), elementwise (not softmax)."""
        if code == 0:  # sigmoid, in the overflow-free form of activations.sigmoid
            for q in range(n):
                e = _exp_neg(-abs(B[r, q]))
                inv = 1.0 / (1.0 + e)
                B[r, q] = inv if B[r, q] >= 0 else e * inv
        elif code == 1:
            for q in range(n):
                B[r, q] = math.tanh(B[r, q])
        elif code == 2:
            for q in range(n):  # np.maximum(α, 0): NaN stays NaN
                B[r, q] = 0.0 if B[r, q] <= 0.0 else B[r, q]
        # code 3, identity: nothing to do

    @njit(**_jit)
    def _forward(sizes, offs, ro, acts, w, B, n):
        """α_l = β_{l−1} W_l[1:] + W_l[0], β_l = f_l(α_l) for every layer, rows 0..n−1 of the
        block B (rows ro[l]..ro[l+1] of B hold β_l unit-major; β_0 = x is already there)."""
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
                if acts[l] != 4:
                    _activate(acts[l], B, r, n)
            if acts[l] == 4:  # softmax over the units of each row, shifted by the row's max
                r0 = ro[l + 1]
                for q in range(n):
                    m = B[r0, q]
                    for j in range(1, fo):
                        m = max(m, B[r0 + j, q])
                    s = 0.0
                    for j in range(fo):
                        B[r0 + j, q] = _exp_neg(B[r0 + j, q] - m)
                        s += B[r0 + j, q]
                    for j in range(fo):
                        B[r0 + j, q] /= s

    @njit(**_jit)
    def _clip(p):
        q = p  # np.clip(p, EPS, 1 − EPS), NaN stays NaN
        if q < EPS:
            q = EPS
        if q > 1.0 - EPS:
            q = 1.0 - EPS
        return q

    @njit(**_jit)
    def _loss(loss, B, r0, Y, n):
        """E over rows 0..n−1 of the outputs (rows r0.. of B): ½Σ(ŷ − y)², bce or ce."""
        s = 0.0
        for j in range(Y.shape[0]):
            r = r0 + j
            if loss == 0:
                for q in range(n):
                    s += (B[r, q] - Y[j, q]) * (B[r, q] - Y[j, q])
            elif loss == 1:
                for q in range(n):
                    p = _clip(B[r, q])
                    s += Y[j, q] * math.log(p) + (1.0 - Y[j, q]) * math.log(1.0 - p)
            else:
                for q in range(n):
                    s += Y[j, q] * math.log(_clip(B[r, q]))
        return 0.5 * s if loss == 0 else -s

    @njit(**_jit)
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

    @njit(**_jit)
    def _output_delta(out_code, loss, canonical, B, r0, Y, d, n):
        """δ_L = ∂E/∂α_L into d: ŷ − y for a canonical pair, else f′(ŷ) ⊙ ∂E/∂ŷ."""
        no = Y.shape[0]
        for j in range(no):
            r = r0 + j
            if canonical or loss == 0:
                for q in range(n):
                    d[j, q] = B[r, q] - Y[j, q]  # canonical δ, or the sse gradient ŷ − y
            elif loss == 1:
                for q in range(n):
                    p = _clip(B[r, q])
                    d[j, q] = (p - Y[j, q]) / (p * (1.0 - p))
            else:
                for q in range(n):
                    d[j, q] = -Y[j, q] / _clip(B[r, q])
            if not canonical and out_code == 0:
                for q in range(n):
                    d[j, q] = d[j, q] * (B[r, q] * (1.0 - B[r, q]))
        if not canonical and out_code == 4:  # softmax: δ = β ⊙ (g − Σ_j g_j β_j) per row
            for q in range(n):
                s = 0.0
                for j in range(no):
                    s += d[j, q] * B[r0 + j, q]
                for j in range(no):
                    d[j, q] = B[r0 + j, q] * (d[j, q] - s)

    @njit(**_jit)
    def _backward(sizes, offs, ro, acts, loss, canonical, w, B, Y, n, g, D1, D2):
        """Adds ∂E/∂w of rows 0..n−1 of block B to g (backprop.backward, same δ names)."""
        L = sizes.size - 1
        _output_delta(acts[L - 1], loss, canonical, B, ro[L], Y, D1, n)
        flip = False  # δ_l is in D1 (False) or D2 (True)
        for l in range(L - 1, -1, -1):
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
                code = acts[l - 1]
                for i in range(fi):
                    c = w[o + (1 + i) * fo]
                    for q in range(n):
                        nd[i, q] = d[0, q] * c
                    for j in range(1, fo):
                        c = w[o + (1 + i) * fo + j]
                        for q in range(n):
                            nd[i, q] += d[j, q] * c
                    if code == 0:
                        for q in range(n):
                            nd[i, q] *= B[ri + i, q] * (1.0 - B[ri + i, q])
                    elif code == 1:
                        for q in range(n):
                            nd[i, q] *= 1.0 - B[ri + i, q] * B[ri + i, q]
                    elif code == 2:
                        for q in range(n):
                            nd[i, q] *= 1.0 if B[ri + i, q] > 0 else 0.0
                flip = not flip

    @njit(**_jit)
    def _load(S, X, n):
        """β_0 = x: the block's inputs into the first rows of the scratch buffer S."""
        for i in range(X.shape[0]):
            for q in range(n):
                S[i, q] = X[i, q]

    def _epochs_py(sizes, offs, ro, acts, loss, canonical, w, w_prev, lr, Xtr, Ytr, Ltr, ntr,
                   Xte, Yte, Lte, nte, thr, start, stop, every, ensemble, nw, trl, tel, tra,
                   tea):
        """Epochs start..stop−1 of one network (train.run_epochs fused): records the four
        metrics at every t with t % every == 0 into index t // every, then w ← w − η ∂E/∂w.

        The rows come in blocks: Xtr[b] holds x of block b unit-major, ntr[b] rows of it used.
        Each block is worked on in a scratch buffer (β of all layers, δ) that stays in cache;
        block results are summed in block order.  ``_epochs_parallel`` runs the blocks on
        ``nw`` workers (one per core), worker i taking blocks i, i + nw, … in its own scratch
        buffer; the plain ``_epochs`` needs nw = 1.  With ``ensemble`` the weights before each
        update are kept in ``w_prev``, and a non-finite train loss stops the run, puts them
        back and returns t (−1 when all went well); otherwise NaNs run on, as in numpy."""
        nb, nbt = Xtr.shape[0], Xte.shape[0]
        P = w.size
        L = sizes.size - 1
        G = np.zeros((nb, P))  # per-block partial gradients
        El, Et = np.zeros(nb), np.zeros(nbt)
        Hl, Ht = np.zeros(nb, np.int64), np.zeros(nbt, np.int64)
        mw = 1
        for l in range(L + 1):
            mw = max(mw, sizes[l])
        bs = max(Xtr.shape[2], Xte.shape[2])
        S = np.empty((nw, ro[L + 1], bs))  # scratch: β of every layer, one per worker
        D1 = np.empty((nw, mw, bs))  # δ of two neighbouring layers
        D2 = np.empty((nw, mw, bs))
        N, NT = 0, 0
        for b in range(nb):
            N += ntr[b]
        for b in range(nbt):
            NT += nte[b]
        for t in range(start, stop):
            for i in prange(nw):
                B = S[i]
                for b in range(i, nb, nw):
                    _load(B, Xtr[b], ntr[b])
                    _forward(sizes, offs, ro, acts, w, B, ntr[b])
                    El[b] = _loss(loss, B, ro[L], Ytr[b], ntr[b])
                    Hl[b] = _hits(B, ro[L], sizes[L], Ltr[b], thr, ntr[b])
                    for p in range(P):
                        G[b, p] = 0.0
                    _backward(sizes, offs, ro, acts, loss, canonical, w, B, Ytr[b], ntr[b],
                              G[b], D1[i], D2[i])
            e_train, hits = El[0], Hl[0]
            for b in range(1, nb):
                e_train += El[b]
                hits += Hl[b]
            if ensemble and not math.isfinite(e_train):
                for p in range(P):
                    w[p] = w_prev[p]
                return t
            if t % every == 0:
                for i in prange(nw):
                    B = S[i]
                    for b in range(i, nbt, nw):
                        _load(B, Xte[b], nte[b])
                        _forward(sizes, offs, ro, acts, w, B, nte[b])
                        Et[b] = _loss(loss, B, ro[L], Yte[b], nte[b])
                        Ht[b] = _hits(B, ro[L], sizes[L], Lte[b], thr, nte[b])
                e_test, hits_t = Et[0], Ht[0]
                for b in range(1, nbt):
                    e_test += Et[b]
                    hits_t += Ht[b]
                k = t // every
                trl[k] = e_train
                tel[k] = e_test
                tra[k] = hits / N
                tea[k] = hits_t / NT
            for p in range(P):
                if ensemble:
                    w_prev[p] = w[p]
                s = G[0, p]
                for b in range(1, nb):
                    s += G[b, p]
                w[p] -= lr * s  # w ← w − η ∂E/∂w, every weight from the same old weights
        return -1

    _epochs = njit(**_jit)(_epochs_py)
    _epochs_parallel_py = types.FunctionType(_epochs_py.__code__, _epochs_py.__globals__,
                                             "_epochs_parallel")
    _epochs_parallel_py.__qualname__ = "_epochs_parallel"  # its own entry in numba's cache
    _epochs_parallel = njit(parallel=True, **_jit)(_epochs_parallel_py)

    @njit(parallel=True, **_jit)
    def _ensemble(sizes, offs, ro, acts, loss, canonical, W, W_prev, lrs, Xtr, Ytr, Ltr, ntr,
                  Xte, Yte, Lte, nte, thr, start, stop, every, rtrl, rtel, rtra, rtea,
                  diverged_at):
        """One network per parallel iteration (each with its own scratch buffers)."""
        for k in prange(W.shape[0]):
            if diverged_at[k] < 0:
                t = _epochs(sizes, offs, ro, acts, loss, canonical, W[k], W_prev[k], lrs[k],
                            Xtr, Ytr, Ltr, ntr, Xte, Yte, Lte, nte, thr, start, stop, every,
                            True, 1,
                            rtrl[k], rtel[k], rtra[k], rtea[k])
                if t >= 0:
                    diverged_at[k] = t


def _layout_arrays(layout, loss: str):
    sizes = np.asarray(layout.sizes, np.int64)
    acts = np.asarray([ACT_CODES[layout.activations[l] if l < layout.n_layers - 1
                                 else layout.output] for l in range(layout.n_layers)], np.int64)
    ro = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return (sizes, np.asarray(layout.offsets, np.int64), ro, acts, LOSS_CODES[loss],
            (layout.output, loss) in CANONICAL_PAIRS)


def _blocks(x, y, labels, block: int):
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
    return X, Y, Lb, cnt


def _problem_blocks(P, block: int):
    return (*_blocks(P.x_train, P.y_train, P.l_train, block),
            *_blocks(P.x_test, P.y_test, P.l_test, block))


def _threads() -> int:
    return numba.get_num_threads() if numba is not None else 1


def run_epochs(layout, loss: str, w: np.ndarray, P, lr: float, start: int, stop: int,
               hist) -> None:
    """Epochs start..stop−1 of full-batch gradient descent, compiled; the signature and the
    numbers of ``train.run_epochs``: updates ``w`` in place, fills ``hist[start:stop]``."""
    if stop <= start:
        return
    arrs = _layout_arrays(layout, loss)
    par = P.x_train.shape[0] >= PARALLEL_ROWS and _threads() > 1
    blocks = _problem_blocks(P, BLOCK_ROWS if par else max(1, P.x_train.shape[0]))
    fn = _epochs_parallel if par else _epochs
    wc = np.ascontiguousarray(w, dtype=np.float64)
    fn(*arrs, wc, wc, float(lr), *blocks, float(P.threshold), int(start), int(stop), 1, False,
       _threads() if par else 1, hist.train_loss, hist.test_loss, hist.train_acc, hist.test_acc)
    if wc is not w:
        w[:] = wc


def ensemble_engine(layout, loss: str, W: np.ndarray, W_prev: np.ndarray, lrs: np.ndarray, P,
                    start: int, stop: int, record_every: int, rec: dict,
                    diverged_at: np.ndarray) -> None:
    """``ensemble.numpy_engine`` compiled: one network per core at a time (numba prange)."""
    if stop <= start:
        return
    blocks = _problem_blocks(P, max(1, P.x_train.shape[0], P.x_test.shape[0]))
    _ensemble(*_layout_arrays(layout, loss), W, W_prev, np.ascontiguousarray(lrs, np.float64),
              *blocks, float(P.threshold), int(start), int(stop), int(record_every),
              rec["train_loss"], rec["test_loss"], rec["train_acc"], rec["test_acc"],
              diverged_at)
