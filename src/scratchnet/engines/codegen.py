"""The register-resident CUDA kernel: Python source generated for one layout, then compiled.

``gpu.make_kernel``'s generic kernel keeps a network's weights, gradient, β and δ in
``cuda.local.array``s indexed inside loops over the layer sizes.  The compiler does not unroll
those loops, so the arrays live in local memory (off-chip, behind the L1): on the PS5 job
656 bytes per thread and a fifth of the speed of this kernel (H200: 6.5e7 against 3.2e8
network-epochs/s).  Registers cannot be indexed
at run time; only a kernel whose every index is a constant keeps its state in them.

So this module writes that kernel out: for one layout (sizes, activations, loss), every loop
over units is unrolled into scalar local variables named after the problem set's symbols —
``w0 … w{P−1}`` the weights (flat w1..wP order, 0-based), ``g*`` their gradient,
``alpha{l}_{j}``, ``beta{l}_{j}`` (``beta0_*`` is the row x), ``delta{l}_{j}`` — and only the
loops over rows and epochs remain.  The source is compiled with ``exec`` + ``numba.cuda.jit``: generating and
compiling specialised source is the standard way to get compile-time unrolling out of numba
(``numba.literal_unroll`` does not cover this), the text is built only from integers and fixed
templates (no user strings), and ``kernel_source`` returns it for reading.  Under
``NUMBA_ENABLE_CUDASIM=1`` the simulator runs the same function as Python, which is how the
tests hold it equal to the CPU engine.

The arithmetic is that of the generic kernel, operation for operation (and so that of
``backprop.py`` to ~1e-15): the overflow-free sigmoid, δ_L = ŷ − y for the canonical pairs, the
clipped bce / ce, NaN-propagating relu, softmax shifted by its max, first-NaN argmax.

Differences from the generic kernel, none visible in the results:

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

# Above this many weights gpu.py uses the generic kernel.  The unrolled one is register-resident
# only up to about 40 weights (w and g alone take 4 registers per weight, of 255); beyond, it
# spills too (2-8-8-3, 123 weights: 2.1 kB local memory, 8.2e6 network-epochs/s on an H200,
# the generic kernel not measured beside it) and its source grows with the weights.
MAX_UNROLLED_PARAMS = 200


class _Src:
    """Lines of Python source with an indentation level."""

    def __init__(self):
        self.lines: list[str] = []
        self.level = 0

    def __call__(self, *lines: str) -> None:
        for line in lines:
            self.lines.append("    " * self.level + line)

    def indent(self, by: int = 1) -> None:
        self.level += by

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _offsets(sizes):
    """Flat offset of each layer's weight block W_l ((fan_in + 1) × fan_out, bias row first)."""
    offs = [0]
    for l in range(len(sizes) - 1):
        offs.append(offs[-1] + (sizes[l] + 1) * sizes[l + 1])
    return offs


def _clip(s: _Src, dst: str, src: str) -> None:
    """dst = clip(src, EPS, 1 − EPS), NaN staying NaN (as np.clip)."""
    s(f"{dst} = {src}",
      f"if {dst} < EPS:", f"    {dst} = EPS",
      f"if {dst} > LO:", f"    {dst} = LO")


def _forward(s: _Src, sizes, acts, X: str) -> None:
    """β of every layer for row n of X: α_l = β_{l−1} W_l[1:] + W_l[0], β_l = f_l(α_l)."""
    offs = _offsets(sizes)
    for i in range(sizes[0]):
        s(f"beta0_{i} = {X}[n, {i}]")
    for l in range(1, len(sizes)):
        fi, fo, o, code = sizes[l - 1], sizes[l], offs[l - 1], acts[l - 1]
        for j in range(fo):
            terms = " + ".join(f"beta{l - 1}_{i} * w{o + (1 + i) * fo + j}" for i in range(fi))
            s(f"alpha{l}_{j} = {terms} + w{o + j}")
            a, b = f"alpha{l}_{j}", f"beta{l}_{j}"
            if code == 0:  # the overflow-free sigmoid of activations.sigmoid
                s(f"e = math.exp(-abs({a}))", "inv = 1.0 / (1.0 + e)",
                  f"{b} = inv if {a} >= 0 else e * inv")
            elif code == 1:
                s(f"{b} = math.tanh({a})")
            elif code == 2:  # np.maximum(α, 0): NaN stays NaN
                s(f"{b} = 0.0 if {a} <= 0.0 else {a}")
            elif code == 3:
                s(f"{b} = {a}")
        if code == 4:  # softmax over the layer's units, shifted by their max
            s(f"m = alpha{l}_0")
            for j in range(1, fo):  # (a NaN or +inf α makes every β NaN either way)
                s(f"m = alpha{l}_{j} if alpha{l}_{j} > m else m")
            for j in range(fo):
                s(f"beta{l}_{j} = math.exp(alpha{l}_{j} - m)")
            s("s = " + " + ".join(f"beta{l}_{j}" for j in range(fo)))
            for j in range(fo):
                s(f"beta{l}_{j} = beta{l}_{j} / s")


def _loss_hit(s: _Src, sizes, loss: int, Y: str, LAB: str, e_acc: str, hit_acc: str) -> None:
    """Adds row n's loss term to e_acc (sign and ½ applied per epoch) and 1 to hit_acc when
    the row is classified right (threshold for one output, first-NaN argmax for several)."""
    L, NO = len(sizes) - 1, sizes[-1]
    terms = []
    for j in range(NO):
        p = f"beta{L}_{j}"
        if loss == 0:
            terms.append(f"({p} - {Y}[n, {j}]) * ({p} - {Y}[n, {j}])")
        else:
            _clip(s, f"q{j}", p)
            if loss == 1:
                terms.append(f"({Y}[n, {j}] * math.log(q{j}) + "
                             f"(1.0 - {Y}[n, {j}]) * math.log(1.0 - q{j}))")
            else:
                terms.append(f"{Y}[n, {j}] * math.log(q{j})")
    s(f"{e_acc} += " + " + ".join(terms))
    if NO == 1:
        s(f"if (beta{L}_0 > thr) == ({LAB}[n] == 1):", f"    {hit_acc} += 1")
        return
    s("best = 0", f"bv = beta{L}_0", f"found = beta{L}_0 != beta{L}_0")
    for j in range(1, NO):
        p = f"beta{L}_{j}"
        s(f"if not found and {p} != {p}:", f"    best = {j}", "    found = True",
          f"if not found and {p} > bv:", f"    best = {j}", f"    bv = {p}")
    s(f"if best == {LAB}[n]:", f"    {hit_acc} += 1")


def _backward(s: _Src, sizes, acts, loss: int, canonical: bool, Y: str) -> None:
    """δ_L for row n, then ∂E/∂w of row n into g*, layer by layer as backprop.backward."""
    L, NO, OUT = len(sizes) - 1, sizes[-1], acts[-1]
    offs = _offsets(sizes)
    for j in range(NO):
        p, t, d = f"beta{L}_{j}", f"{Y}[n, {j}]", f"delta{L}_{j}"
        if canonical or loss == 0:
            s(f"{d} = {p} - {t}")  # δ = ŷ − y (canonical pair), or ∂E/∂ŷ of sse
        elif loss == 1:
            _clip(s, "q", p)
            s(f"{d} = (q - {t}) / (q * (1.0 - q))")
        else:
            _clip(s, "q", p)
            s(f"{d} = -{t} / q")
        if not canonical and OUT == 0:
            s(f"{d} = {d} * ({p} * (1.0 - {p}))")
    if not canonical and OUT == 4:  # softmax: δ = β ⊙ (g − Σ_j g_j β_j)
        s("s = " + " + ".join(f"delta{L}_{j} * beta{L}_{j}" for j in range(NO)))
        for j in range(NO):
            s(f"delta{L}_{j} = beta{L}_{j} * (delta{L}_{j} - s)")
    for l in range(L, 0, -1):
        fi, fo, o = sizes[l - 1], sizes[l], offs[l - 1]
        s(f"# layer {l}: ∂E/∂W_{l}[0] += δ_{l}, ∂E/∂W_{l}[1:] += β_{l - 1}ᵀ δ_{l}")
        for j in range(fo):
            s(f"g{o + j} += delta{l}_{j}")
            for i in range(fi):
                s(f"g{o + (1 + i) * fo + j} += beta{l - 1}_{i} * delta{l}_{j}")
        if l > 1:
            code = acts[l - 2]
            s(f"# δ_{l - 1} = (δ_{l} W_{l}[1:]ᵀ) ⊙ f′(β_{l - 1})")
            for i in range(fi):
                terms = " + ".join(f"delta{l}_{j} * w{o + (1 + i) * fo + j}" for j in range(fo))
                b = f"beta{l - 1}_{i}"
                deriv = {0: f" * ({b} * (1.0 - {b}))", 1: f" * (1.0 - {b} * {b})",
                         2: f" * (1.0 if {b} > 0 else 0.0)", 3: ""}[code]
                s(f"delta{l - 1}_{i} = ({terms}){deriv}")


def _no_records(s: _Src, t0: str) -> None:
    """NaN into the record slots of epochs t0..stop−1 (a diverged network has none)."""
    s(f"for tt in range({t0}, stop):", "    if tt % every == 0:",
      "        jj = tt // every - j0")
    for r in ("rtrl", "rtel", "rtra", "rtea"):
        s(f"        {r}[jj, k] = math.nan")


def kernel_source(sizes, acts, loss: int, canonical: bool, rows=None) -> str:
    """The kernel's Python source.  sizes: units per layer (inputs first); acts: activation
    code per layer (fast.ACT_CODES); loss: fast.LOSS_CODES; canonical: δ_L = ŷ − y;
    rows: (n_train, n_test) to copy the rows into shared memory, None to read them from
    global memory.  Same arguments as the generic kernel of gpu.make_kernel."""
    sizes, acts = tuple(int(v) for v in sizes), tuple(int(v) for v in acts)
    NP = _offsets(sizes)[-1]
    D, NO = sizes[0], sizes[-1]
    ws = [f"w{p}" for p in range(NP)]
    s = _Src()
    s(f"# generated by scratchnet.engines.codegen for layout {'-'.join(map(str, sizes))}, "
      f"activation codes {acts}, loss code {loss}, canonical {canonical}",
      "def kernel(W, Wp, lrs, xtr, ytr, ltr, xte, yte, lte, thr, start, stop, every, j0,",
      "           rtrl, rtel, rtra, rtea, diverged_at, replay, Wout):",
      "    # Wout is W again under a second name: the final stores then compute their own",
      "    # addresses instead of keeping the first loads' alive (in registers) through the loop")
    s.indent()
    s("k = cuda.grid(1)")
    if rows is not None:
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
        names = ("Xtr", "Ytr", "Ltr", "Xte", "Yte", "Lte")
    else:
        names = ("xtr", "ytr", "ltr", "xte", "yte", "lte")
    Xtr, Ytr, Ltr, Xte, Yte, Lte = names
    s("if k >= W.shape[1]:", "    return", "end = stop")
    s("if replay:  # the second launch: networks that diverged at an epoch t > start")
    s("    if diverged_at[k] <= start:", "        return",
      "    end = diverged_at[k] - 1  # epochs start..t−2 give w_{t−1}")
    s("elif diverged_at[k] >= 0:  # diverged in an earlier chunk")
    s.indent()
    _no_records(s, "start")
    s("return")
    s.indent(-1)
    s("# W is (P, K) on the device: neighbouring threads read neighbouring words")
    s(*(f"{w} = W[{p}, k]" for p, w in enumerate(ws)))
    s("lr = lrs[k]", "ntr = xtr.shape[0]", "nte = xte.shape[0]", "diverged = False")
    s(*(f"g{p} = 0.0" for p in range(NP)))
    s("t = start", "while t < end:")
    s.indent()
    s(*(f"g{p} = 0.0" for p in range(NP)))
    s("e_train = 0.0", "hits = 0", "for n in range(ntr):")
    s.indent()
    _forward(s, sizes, acts, Xtr)
    _loss_hit(s, sizes, loss, Ytr, Ltr, "e_train", "hits")
    _backward(s, sizes, acts, loss, canonical, Ytr)
    s.indent(-1)
    s("e_train = 0.5 * e_train" if loss == 0 else "e_train = -e_train",
      "if not replay:")
    s.indent()
    s("if not math.isfinite(e_train):", "    diverged = True", "    break",
      "if t % every == 0:")
    s.indent()
    s("e_test = 0.0", "hits_t = 0", "for n in range(nte):")
    s.indent()
    _forward(s, sizes, acts, Xte)
    _loss_hit(s, sizes, loss, Yte, Lte, "e_test", "hits_t")
    s.indent(-1)
    s("j = t // every - j0", "rtrl[j, k] = e_train  # records are (n_records, K): coalesced",
      "rtel[j, k] = " + ("0.5 * e_test" if loss == 0 else "-e_test"),
      "rtra[j, k] = hits / ntr", "rtea[j, k] = hits_t / nte")
    s.indent(-1)
    s("if t == stop - 1:", "    break  # the chunk's last update comes after the loop")
    s.indent(-1)
    s(*(f"{w} -= lr * g{p}" for p, w in enumerate(ws)))
    s("t += 1")
    s.indent(-1)
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
    s(*(f"    Wout[{p}, k] = {w}" for p, w in enumerate(ws)))
    s(*(f"    Wp[{p}, k] = {w}" for p, w in enumerate(ws)))
    s("elif end > start:  # completed: the weights before the last update, then the update")
    s(*(f"    Wp[{p}, k] = {w}" for p, w in enumerate(ws)))
    s(*(f"    Wout[{p}, k] = {w} - lr * g{p}" for p, w in enumerate(ws)))
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


def build_kernel(cuda, sizes, acts, loss: int, canonical: bool, rows=None,
                 max_registers: int | None = None, dtype: str = "float64"):
    """``numba.cuda.jit`` of ``kernel_source(...)`` (the module given as ``cuda``);
    ``max_registers`` caps the registers per thread (more threads fit on an SM, values that
    do not fit are spilled; ignored by the simulator); ``dtype="float32"``: the
    ``single_precision`` source."""
    from numba import config, float32

    src = kernel_source(sizes, acts, loss, canonical, rows)
    if dtype == "float32":
        src = single_precision(src)
    _COUNT[0] += 1
    filename = f"<scratchnet.engines.codegen kernel {_COUNT[0]}: {'-'.join(map(str, sizes))}>"
    linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)  # tracebacks
    namespace = {"cuda": cuda, "math": math, "np": np, "EPS": EPS, "LO": 1.0 - EPS,
                 "F32": float32}
    exec(compile(src, filename, "exec"), namespace)  # noqa: S102 - generated from integers

    opts = {} if max_registers is None or config.ENABLE_CUDASIM else \
        {"max_registers": int(max_registers)}
    kern = cuda.jit(**opts)(namespace["kernel"])
    kern.source = src  # for reading: gpu.make_kernel(...).source
    return kern
