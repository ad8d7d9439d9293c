"""Ensembles on a CUDA GPU: one thread per network, the whole training loop in one kernel.

Batched matrix products (one ``bmm`` per layer and epoch) leave a GPU mostly idle on a 2-7-1
network: every epoch is a dozen tiny kernel launches.  Here thread k owns network k for the
whole chunk of epochs: its weights, gradient and one row's β and δ live in registers, it walks
the (shared, read-only) training rows one at a time, accumulates ∂E/∂w over them exactly as
``backprop.backward`` sums over rows, records the metrics and steps.  Nothing leaves the chip
between epochs except the recorded metrics.

Two kernels, both built per layout and loss and cached:

* ``unrolled`` (``scratchnet.engines.codegen``): Python source generated for the layout with every
  loop over units unrolled into scalar variables, so the state sits in registers (no local
  memory), and the rows copied into shared memory when they fit — the fast one, used up to
  ``gpu_codegen.MAX_UNROLLED_PARAMS`` weights;
* ``generic`` (``make_generic_kernel`` below): per-thread ``cuda.local.array``s indexed in loops
  over the layer sizes, for larger layouts.  The loops do not unroll, so its arrays live in
  local memory: correct for any size, several times slower.

Both are written with ``numba.cuda``; with ``NUMBA_ENABLE_CUDASIM=1`` numba runs the same kernels
on the CPU, which is how the tests check them against the CPU engine on machines without a GPU.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ..core.errors import ScratchnetError
from ..core.losses import CANONICAL_PAIRS, EPS

THREADS = 128  # threads per block
SHARED_ROWS_BYTES = 24 * 1024  # the unrolled kernel copies the rows to shared memory up to this
# Registers per thread of the unrolled kernel, for layouts of at most CAP_MAX_PARAMS weights.
# Left alone the compiler takes 198 for PS5 (2 blocks of 128 threads per SM); capped at 168 it
# spills 88 bytes to local memory, fits 3 blocks and runs 25 % faster (H200: 3.2e8 vs
# 2.55e8 network-epochs/s; 152 and 128 were no better).  Larger layouts were not measured
# with and without the cap, so they get the compiler's choice (None).
MAX_REGISTERS = 168
CAP_MAX_PARAMS = 32


if not hasattr(np, "row_stack"):  # numba-cuda on numpy >= 2.5 still looks for it
    np.row_stack = np.vstack
try:  # a module global: the CUDA simulator swaps it for its own in the kernel's globals
    from numba import cuda
except ImportError:  # pragma: no cover
    cuda = None


def _cuda():
    """numba.cuda, or None."""
    return cuda


def cuda_available() -> bool:
    cuda = _cuda()
    if cuda is None:
        return False
    try:
        return bool(cuda.is_available())
    except Exception:  # a broken driver is "no device" to the user
        return False


def require_cuda() -> None:
    if not cuda_available():
        raise ScratchnetError("--device cuda: no CUDA device (numba.cuda found none; "
                              "use --device cpu)")


def device_name() -> str:
    if not cuda_available():
        return "none"
    try:
        name = cuda.get_current_device().name
    except AttributeError:  # the simulator has no device object
        return "simulator"
    return name.decode() if isinstance(name, bytes) else str(name)


def n_params(sizes) -> int:
    return sum((sizes[l] + 1) * sizes[l + 1] for l in range(len(sizes) - 1))


@functools.lru_cache(maxsize=32)
def make_kernel(sizes: tuple, acts: tuple, loss: int, canonical: bool,
                variant: str = "unrolled", rows: tuple | None = None,
                max_registers: int | None = None, dtype: str = "float64"):
    """The training kernel for one layout (sizes, activation codes as in fast.ACT_CODES), loss
    code and variant ("unrolled": gpu_codegen's, with the rows (n_train, n_test) in shared
    memory unless rows is None; "generic": make_generic_kernel's), in ``dtype`` (float32:
    the unrolled kernel only), built once."""
    if variant == "generic":
        if dtype != "float64":
            raise ScratchnetError(f"--dtype {dtype}: only layouts the unrolled kernel takes "
                                  f"(up to {_max_unrolled()} weights) run in single precision")
        return make_generic_kernel(sizes, acts, loss, canonical)
    if variant != "unrolled":
        raise ValueError(f"unknown kernel variant {variant!r}")
    from . import codegen as gpu_codegen

    return gpu_codegen.build_kernel(cuda, sizes, acts, loss, canonical, rows, max_registers,
                                    dtype)


def _max_unrolled() -> int:
    from . import codegen as gpu_codegen

    return gpu_codegen.MAX_UNROLLED_PARAMS


def choose_kernel(sizes: tuple, acts: tuple, loss: int, canonical: bool, n_train: int,
                  n_test: int, variant: str = "auto", shared_rows: bool | None = None,
                  max_registers: int | None = -1, dtype: str = "float64"):
    """(kernel, description) for a job: the unrolled kernel up to MAX_UNROLLED_PARAMS weights
    (rows in shared memory when they take at most SHARED_ROWS_BYTES; max_registers −1: the
    MAX_REGISTERS / CAP_MAX_PARAMS rule), else the generic one."""
    from . import codegen as gpu_codegen

    if variant == "auto":
        variant = "unrolled" if n_params(sizes) <= gpu_codegen.MAX_UNROLLED_PARAMS else "generic"
    if variant == "generic":
        return make_kernel(sizes, acts, loss, canonical, "generic", dtype=dtype), "generic"
    if shared_rows is None:
        row_bytes = np.dtype(dtype).itemsize * (sizes[0] + sizes[-1]) + 8  # x, y; label
        shared_rows = row_bytes * (max(n_train, 1) + max(n_test, 1)) <= SHARED_ROWS_BYTES
    rows = (int(n_train), int(n_test)) if shared_rows else None
    if max_registers == -1:
        max_registers = MAX_REGISTERS if n_params(sizes) <= CAP_MAX_PARAMS else None
    kern = make_kernel(sizes, acts, loss, canonical, "unrolled", rows, max_registers, dtype)
    return kern, "unrolled, rows in " + ("shared" if shared_rows else "global") + " memory"


def make_generic_kernel(sizes: tuple, acts: tuple, loss: int, canonical: bool):
    """The generic training kernel: closure constants become compile-time constants, but the
    loops over layer sizes stay loops, so w, g, β and δ are local-memory arrays."""
    L = len(sizes) - 1
    D, NO = sizes[0], sizes[-1]
    OFFS = tuple(int(v) for v in np.concatenate([[0], np.cumsum(
        [(sizes[l] + 1) * sizes[l + 1] for l in range(L)])]))
    RO = tuple(int(v) for v in np.concatenate([[0], np.cumsum(sizes)]))
    NP, NB, MW = OFFS[-1], RO[-1], max(sizes)
    SIZES, ACTS = tuple(int(s) for s in sizes), tuple(int(a) for a in acts)
    OUT = ACTS[-1]
    LO = 1.0 - EPS

    @cuda.jit(device=True)
    def clip(p):
        q = p
        if q < EPS:
            q = EPS
        if q > LO:
            q = LO
        return q

    @cuda.jit(device=True)
    def forward_row(w, x, n, beta):
        """β of every layer for row n of x into beta (one row, all layers)."""
        for i in range(D):
            beta[i] = x[n, i]
        for l in range(L):
            fi, fo, o, ri, rn = SIZES[l], SIZES[l + 1], OFFS[l], RO[l], RO[l + 1]
            code = ACTS[l]
            for j in range(fo):
                a = beta[ri] * w[o + fo + j]  # α_j = Σ_i β_i W[1+i, j] + W[0, j]
                for i in range(1, fi):
                    a += beta[ri + i] * w[o + (1 + i) * fo + j]
                a += w[o + j]
                if code == 0:  # the overflow-free sigmoid of activations.py
                    e = math.exp(-abs(a))
                    inv = 1.0 / (1.0 + e)
                    a = inv if a >= 0 else e * inv
                elif code == 1:
                    a = math.tanh(a)
                elif code == 2:
                    a = 0.0 if a <= 0.0 else a  # NaN stays NaN, as in np.maximum
                beta[rn + j] = a
            if code == 4:  # softmax over this layer's units
                m = beta[rn]
                for j in range(1, fo):
                    m = max(m, beta[rn + j])
                s = 0.0
                for j in range(fo):
                    beta[rn + j] = math.exp(beta[rn + j] - m)
                    s += beta[rn + j]
                for j in range(fo):
                    beta[rn + j] = beta[rn + j] / s

    @cuda.jit(device=True)
    def row_loss_hit(beta, y, lab, n, thr):
        """(E of row n, 1 if row n is classified right else 0)."""
        e = 0.0
        for j in range(NO):
            p, t = beta[RO[L] + j], y[n, j]
            if loss == 0:
                e += (p - t) * (p - t)
            elif loss == 1:
                e += t * math.log(clip(p)) + (1.0 - t) * math.log(1.0 - clip(p))
            else:
                e += t * math.log(clip(p))
        if NO == 1:
            hit = 1 if (beta[RO[L]] > thr) == (lab[n] == 1) else 0
        else:
            best = 0
            for j in range(NO):
                if beta[RO[L] + j] != beta[RO[L] + j]:
                    best = j
                    break
                if beta[RO[L] + j] > beta[RO[L] + best]:
                    best = j
            hit = 1 if best == lab[n] else 0
        return e, hit

    @cuda.jit(device=True)
    def backward_row(w, beta, y, n, g, d, nd):
        """Adds ∂E/∂w of row n to g: δ_L, then the backward loop of backprop.backward."""
        for j in range(NO):
            p, t = beta[RO[L] + j], y[n, j]
            if canonical or loss == 0:
                v = p - t
            elif loss == 1:
                v = (clip(p) - t) / (clip(p) * (1.0 - clip(p)))
            else:
                v = -t / clip(p)
            if not canonical and OUT == 0:
                v = v * (p * (1.0 - p))
            d[j] = v
        if not canonical and OUT == 4:
            s = 0.0
            for j in range(NO):
                s += d[j] * beta[RO[L] + j]
            for j in range(NO):
                d[j] = beta[RO[L] + j] * (d[j] - s)
        for l in range(L - 1, -1, -1):
            fi, fo, o, ri = SIZES[l], SIZES[l + 1], OFFS[l], RO[l]
            for j in range(fo):
                g[o + j] += d[j]  # ∂E/∂W_l[0, j] += δ_j
                for i in range(fi):
                    g[o + (1 + i) * fo + j] += beta[ri + i] * d[j]  # += β_i δ_j
            if l > 0:
                code = ACTS[l - 1]
                for i in range(fi):
                    s = 0.0
                    for j in range(fo):
                        s += d[j] * w[o + (1 + i) * fo + j]
                    b = beta[ri + i]
                    if code == 0:
                        s *= b * (1.0 - b)
                    elif code == 1:
                        s *= 1.0 - b * b
                    elif code == 2:
                        s *= 1.0 if b > 0 else 0.0
                    nd[i] = s
                for i in range(fi):
                    d[i] = nd[i]

    @cuda.jit(device=True)
    def no_records(t0, stop, every, j0, rtrl, rtel, rtra, rtea, k):
        """NaN into the record slots of epochs t0..stop−1 (a diverged network has none)."""
        for t in range(t0, stop):
            if t % every == 0:
                j = t // every - j0
                rtrl[j, k] = math.nan
                rtel[j, k] = math.nan
                rtra[j, k] = math.nan
                rtea[j, k] = math.nan

    @cuda.jit
    def kernel(W, Wp, lrs, xtr, ytr, ltr, xte, yte, lte, thr, start, stop, every, j0,
               rtrl, rtel, rtra, rtea, diverged_at, replay, W_again):
        k = cuda.grid(1)  # (W_again: W under a second name, which the unrolled kernel uses)
        if k >= W.shape[1] or replay:  # (keeps Wp itself: never asks for a replay launch)
            return
        if diverged_at[k] >= 0:
            no_records(start, stop, every, j0, rtrl, rtel, rtra, rtea, k)
            return
        w = cuda.local.array(NP, np.float64)
        g = cuda.local.array(NP, np.float64)
        beta = cuda.local.array(NB, np.float64)
        d = cuda.local.array(MW, np.float64)
        nd = cuda.local.array(MW, np.float64)
        for p in range(NP):
            w[p] = W[p, k]  # W is (P, K) on the device: neighbouring threads, neighbouring words
        lr = lrs[k]
        ntr, nte = xtr.shape[0], xte.shape[0]
        for t in range(start, stop):
            for p in range(NP):
                g[p] = 0.0
            e_train = 0.0
            hits = 0
            for n in range(ntr):
                forward_row(w, xtr, n, beta)
                e, h = row_loss_hit(beta, ytr, ltr, n, thr)
                e_train += e
                hits += h
                backward_row(w, beta, ytr, n, g, d, nd)
            e_train = 0.5 * e_train if loss == 0 else -e_train
            if not math.isfinite(e_train):
                for p in range(NP):
                    w[p] = Wp[p, k]  # keep the last weights with a finite loss
                diverged_at[k] = t
                no_records(t, stop, every, j0, rtrl, rtel, rtra, rtea, k)
                break
            if t % every == 0:
                e_test = 0.0
                hits_t = 0
                for n in range(nte):
                    forward_row(w, xte, n, beta)
                    e, h = row_loss_hit(beta, yte, lte, n, thr)
                    e_test += e
                    hits_t += h
                j = t // every - j0
                rtrl[j, k] = e_train  # records are (n_records, K): coalesced writes
                rtel[j, k] = 0.5 * e_test if loss == 0 else -e_test
                rtra[j, k] = hits / ntr
                rtea[j, k] = hits_t / nte
            for p in range(NP):
                Wp[p, k] = w[p]  # the weights before the update, in global memory (not
                w[p] -= lr * g[p]  # registers): coalesced stores, only read on divergence
        for p in range(NP):
            W[p, k] = w[p]

    return kernel


class DeviceRun:
    """An ensemble's arrays on the GPU (weights as (P, K), records as (n_records, K), all in
    ``dtype``) and its kernel; ``launch`` runs epochs start..stop−1 without copying anything
    back."""

    def __init__(self, layout, loss: str, W: np.ndarray, lrs: np.ndarray, P, nrec: int,
                 diverged_at: np.ndarray | None = None, W_prev: np.ndarray | None = None,
                 variant: str = "auto", shared_rows: bool | None = None,
                 max_registers: int | None = -1, dtype: str = "float64"):
        from .fast import ACT_CODES, LOSS_CODES

        dt = np.dtype(dtype)

        acts = tuple(ACT_CODES[layout.activations[l] if l < layout.n_layers - 1
                               else layout.output] for l in range(layout.n_layers))
        self.kernel, self.variant = choose_kernel(
            tuple(int(v) for v in layout.sizes), acts, LOSS_CODES[loss],
            (layout.output, loss) in CANONICAL_PAIRS, P.x_train.shape[0], P.x_test.shape[0],
            variant, shared_rows, max_registers, dt.name)
        self.K, self.dtype = W.shape[0], dt
        # (K, P) → (P, K): one transposing copy on the host (and the cast), one transfer
        self.W = cuda.to_device(np.ascontiguousarray(W.T, dt))
        self.W_prev = cuda.to_device(np.ascontiguousarray((W if W_prev is None else W_prev).T,
                                                          dt))
        self.diverged_at = cuda.to_device(np.full(self.K, -1, np.int64) if diverged_at is None
                                          else np.ascontiguousarray(diverged_at, np.int64))
        self.data = [cuda.to_device(np.ascontiguousarray(a, t)) for a, t in (
            (lrs, dt), (P.x_train, dt), (P.y_train, dt), (P.l_train, np.int64),
            (P.x_test, dt), (P.y_test, dt), (P.l_test, np.int64))]
        self.threshold = float(P.threshold)
        self.rec = {m: cuda.device_array((max(nrec, 1), self.K), dt)
                    for m in ("train_loss", "test_loss", "train_acc", "test_acc")}

    def records_to_host(self, rec: dict, j0: int, j1: int) -> None:
        """Record columns j0..j1−1 into ``rec[m]`` (K, n_records).  Where ``rec[m]`` is the
        transposed view of a C-ordered (n_records, K) array of this dtype (as
        ``ensemble.train_ensemble`` allocates them for the GPU), the device rows land in it
        in one contiguous copy; otherwise through a transposing copy."""
        n = j1 - j0
        for m, dev in self.rec.items():
            host = rec[m].T  # (n_records, K)
            if host.flags.c_contiguous and host.dtype == self.dtype and dev.shape[0] == n:
                dev.copy_to_host(host[j0:j1])
            else:
                rec[m][:, j0:j1] = dev.copy_to_host()[:n].T

    def launch(self, start: int, stop: int, every: int, j0: int, threads: int = THREADS,
               replay: bool = False):
        """Epochs start..stop−1.  The unrolled kernel leaves a network that diverged at an
        epoch t > start with the chunk's first weights; ``replay=True`` (a second launch, see
        ``finish``) recomputes epochs start..t−2 for those networks to get w_{t−1}."""
        blocks = -(-self.K // threads)
        self.kernel[blocks, threads](self.W, self.W_prev, *self.data, self.threshold,
                                     int(start), int(stop), int(every), int(j0),
                                     self.rec["train_loss"], self.rec["test_loss"],
                                     self.rec["train_acc"], self.rec["test_acc"],
                                     self.diverged_at, bool(replay), self.W)

    def finish(self, start: int, stop: int, every: int, j0: int,
               threads: int = THREADS) -> np.ndarray:
        """After ``launch``: the replay launch when a network diverged inside the chunk (the
        unrolled kernel); returns diverged_at on the host."""
        div = self.diverged_at.copy_to_host()
        if self.variant != "generic" and np.any(div > start):
            self.launch(start, stop, every, j0, threads, replay=True)
        return div


def cuda_engine(layout, loss: str, W: np.ndarray, W_prev: np.ndarray, lrs: np.ndarray, P,
                start: int, stop: int, record_every: int, rec: dict,
                diverged_at: np.ndarray, dtype: str = "float64") -> None:
    """``ensemble.numpy_engine`` on the GPU (same arguments, same results; ``dtype="float32"``:
    the kernel in single precision, W and W_prev rounded to it on the way in)."""
    if stop <= start or W.shape[0] == 0:
        return
    j0 = -(-start // record_every)  # the record columns of epochs start..stop−1
    j1 = -(-stop // record_every)
    run = DeviceRun(layout, loss, W, lrs, P, j1 - j0, diverged_at, W_prev, dtype=dtype)
    run.launch(start, stop, record_every, j0)
    diverged_at[:] = run.finish(start, stop, record_every, j0)
    cuda.synchronize()
    W[:] = run.W.copy_to_host().T
    W_prev[:] = run.W_prev.copy_to_host().T
    if j1 > j0:
        run.records_to_host(rec, j0, j1)
