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
* ``generic``: the same generator run without unrolling (``unroll=False``): per-thread
  ``cuda.local.array``s indexed in loops over the layer sizes, for larger layouts.  Its arrays
  live in local memory: correct for any size, several times slower.

Both are written with ``numba.cuda``; with ``NUMBA_ENABLE_CUDASIM=1`` numba runs the same kernels
on the CPU, which is how the tests check them against the CPU engine on machines without a GPU.
"""
from __future__ import annotations

import functools

import numpy as np

from ..core.errors import OptionError
from ..core.losses import CANONICAL_PAIRS
from . import codegen as gpu_codegen
from .snippets import ACT_CODES, LOSS_CODES

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
        raise OptionError("device", "cuda", "no CUDA device (numba.cuda found none; use "
                          "{device} cpu)", ("device",))


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
                max_registers: int | None = None, dtype: str = "float64",
                optimizer: str = "gd", penalized: bool = False):
    """The training kernel for one layout (sizes, activation codes as in fast.ACT_CODES), loss
    code and variant ("unrolled": gpu_codegen's, with the rows (n_train, n_test) in shared
    memory unless rows is None; "generic": the same generator without unrolling), in ``dtype`` (float32:
    the unrolled kernel only), stepping with ``optimizer`` (and the L2 / L1 penalty when
    ``penalized``), built once."""
    if variant == "generic":
        if dtype != "float64":
            raise OptionError("dtype", dtype, f"only layouts the unrolled kernel takes (up to "
                              f"{_max_unrolled()} weights) run in single precision")
    elif variant != "unrolled":
        raise ValueError(f"unknown kernel variant {variant!r}")

    return gpu_codegen.build_kernel(cuda, sizes, acts, loss, canonical, rows, max_registers,
                                    dtype, variant == "unrolled", optimizer, penalized)


def _max_unrolled() -> int:
    return gpu_codegen.MAX_UNROLLED_PARAMS


def choose_kernel(sizes: tuple, acts: tuple, loss: int, canonical: bool, n_train: int,
                  n_test: int, variant: str = "auto", shared_rows: bool | None = None,
                  max_registers: int | None = -1, dtype: str = "float64",
                  optimizer: str = "gd", penalized: bool = False):
    """(kernel, description) for a job: the unrolled kernel up to MAX_UNROLLED_PARAMS weights
    (rows in shared memory when they take at most SHARED_ROWS_BYTES; max_registers −1: the
    MAX_REGISTERS / CAP_MAX_PARAMS rule, measured for gradient descent and kept for the other
    optimizers until gpu_check measures them), else the generic one."""
    opt = dict(optimizer="gd" if optimizer == "sgd" else optimizer, penalized=bool(penalized))
    if variant == "auto":
        variant = "unrolled" if n_params(sizes) <= gpu_codegen.MAX_UNROLLED_PARAMS else "generic"
    if variant == "generic":
        return make_kernel(sizes, acts, loss, canonical, "generic", dtype=dtype, **opt), "generic"
    if shared_rows is None:
        row_bytes = np.dtype(dtype).itemsize * (sizes[0] + sizes[-1]) + 8  # x, y; label
        shared_rows = row_bytes * (max(n_train, 1) + max(n_test, 1)) <= SHARED_ROWS_BYTES
    rows = (int(n_train), int(n_test)) if shared_rows else None
    if max_registers == -1:
        max_registers = MAX_REGISTERS if n_params(sizes) <= CAP_MAX_PARAMS else None
    kern = make_kernel(sizes, acts, loss, canonical, "unrolled", rows, max_registers, dtype,
                       **opt)
    return kern, "unrolled, rows in " + ("shared" if shared_rows else "global") + " memory"


class DeviceRun:
    """An ensemble's arrays on the GPU (weights and optimizer state as (P, K), records as
    (n_records, K), all in ``dtype``) and its kernel; ``launch`` runs epochs start..stop−1
    without copying anything back.  ``steps``: the run's ``ensemble.EnsembleSteps`` (None:
    plain gradient descent)."""

    def __init__(self, layout, loss: str, W: np.ndarray, lrs: np.ndarray, prob, nrec: int,
                 diverged_at: np.ndarray | None = None, W_prev: np.ndarray | None = None,
                 variant: str = "auto", shared_rows: bool | None = None,
                 max_registers: int | None = -1, dtype: str = "float64", steps=None):
        dt = np.dtype(dtype)

        acts = tuple(ACT_CODES[layout.activations[l] if l < layout.n_layers - 1
                               else layout.output] for l in range(layout.n_layers))
        self.kernel, self.variant = choose_kernel(
            tuple(int(v) for v in layout.sizes), acts, LOSS_CODES[loss],
            (layout.output, loss) in CANONICAL_PAIRS, prob.x_train.shape[0],
            prob.x_test.shape[0], variant, shared_rows, max_registers, dt.name,
            *(("gd", False) if steps is None else (steps.optimizer, steps.penalized)))
        self.K, self.dtype = W.shape[0], dt
        # (K, P) → (P, K): one transposing copy on the host (and the cast), one transfer
        self.W = cuda.to_device(np.ascontiguousarray(W.T, dt))
        self.W_prev = cuda.to_device(np.ascontiguousarray((W if W_prev is None else W_prev).T,
                                                          dt))
        self.diverged_at = cuda.to_device(np.full(self.K, -1, np.int64) if diverged_at is None
                                          else np.ascontiguousarray(diverged_at, np.int64))
        self.data = [cuda.to_device(np.ascontiguousarray(a, t)) for a, t in (
            (lrs, dt), (prob.x_train, dt), (prob.y_train, dt), (prob.l_train, np.int64),
            (prob.x_test, dt), (prob.y_test, dt), (prob.l_test, np.int64))]
        self.threshold = float(prob.threshold)
        self.rec = {m: cuda.device_array((max(nrec, 1), self.K), dt)
                    for m in ("train_loss", "test_loss", "train_acc", "test_acc")}
        self._state_to_device(steps)

    def _state_to_device(self, steps) -> None:
        """The optimizer's state arrays S1, S2 as (P, K) (a (1, 1) placeholder where the
        optimizer has none), its hyper-parameters, and no adam corrections yet."""
        dt, none = self.dtype, np.zeros((1, 1))
        self.steps = steps
        arrays = (None, None) if steps is None else steps.arrays()
        self.state = [cuda.to_device(np.ascontiguousarray(none if a is None else a.T, dt))
                      for a in arrays]
        self.hyper = cuda.to_device(np.zeros(7, dt) if steps is None else
                                    steps.hyper_array().astype(dt))
        self._bc, self._bc_for = cuda.to_device(np.zeros((2, 1), dt)), None

    def state_to_host(self) -> None:
        """The optimizer's state back into ``steps``' arrays (K, P)."""
        if self.steps is not None:
            for host, dev in zip(self.steps.arrays(), self.state):
                if host is not None:
                    host[:] = dev.copy_to_host().T

    def _corrections(self, start: int, stop: int):
        """Adam's 1 − βᵗ for the epochs of a launch, on the device (the same for its replay)."""
        if self.steps is not None and self.steps.optimizer == "adam" and \
                self._bc_for != (start, stop):
            bc = self.steps.corrections(max(stop - start, 1))
            self._bc, self._bc_for = cuda.to_device(bc.astype(self.dtype)), (start, stop)
        return self._bc

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
                                     self.diverged_at, bool(replay), self.W, *self.state,
                                     self.hyper, self._corrections(start, stop))

    def finish(self, start: int, stop: int, every: int, j0: int,
               threads: int = THREADS) -> np.ndarray:
        """After ``launch``: the replay launch when a network diverged inside the chunk (the
        unrolled kernel); returns diverged_at on the host."""
        div = self.diverged_at.copy_to_host()
        if np.any(div > start):
            self.launch(start, stop, every, j0, threads, replay=True)
        return div


def cuda_engine(layout, loss: str, W: np.ndarray, W_prev: np.ndarray, lrs: np.ndarray, prob,
                start: int, stop: int, record_every: int, rec: dict,
                diverged_at: np.ndarray, dtype: str = "float64", steps=None) -> None:
    """``ensemble.numpy_engine`` on the GPU (same arguments, same results; ``dtype="float32"``:
    the kernel in single precision, W and W_prev rounded to it on the way in; ``steps``: the
    optimizer and penalty, their state updated)."""
    if stop <= start or W.shape[0] == 0:
        return
    j0 = -(-start // record_every)  # the record columns of epochs start..stop−1
    j1 = -(-stop // record_every)
    run = DeviceRun(layout, loss, W, lrs, prob, j1 - j0, diverged_at, W_prev, dtype=dtype,
                    steps=steps)
    run.launch(start, stop, record_every, j0)
    diverged_at[:] = run.finish(start, stop, record_every, j0)
    cuda.synchronize()
    W[:] = run.W.copy_to_host().T
    W_prev[:] = run.W_prev.copy_to_host().T
    run.state_to_host()
    if steps is not None:
        steps.advance(stop - start)
    if j1 > j0:
        run.records_to_host(rec, j0, j1)
