"""GPU check (about 2.5 minutes; one JSON line per case; stops starting cases after 140 s).  Run from the repository root:

    PYTHONPATH=src timeout 170 python3 bench/gpu_check.py

The lines also go to ``bench/gpu_results.jsonl`` (``GPU_CHECK_OUT=path`` to put them elsewhere),
as each case ends, so a run cut short keeps what it measured.

First, issue 15's cases: at K = 1e5 networks, the kernel's rate and the end-to-end rate of
``train_ensemble(device="cuda")`` and of a ``sweep --device cuda`` chunk (init draw, transfers,
records, final metrics, the sweep's rows and files), in float64 and float32 (with float32's
agreement with float64: max |Δw|, loss differences), and whether end to end is within 2× of the
kernel.  Then the cases of the earlier rounds: the card; network-epochs/s of the fused kernel for the PS5 job (2-7-1 sigmoid, 80/20
rows, ½Σ loss, train and test loss + accuracy recorded every epoch, float64) at K = 1e4 … 3e5
networks — the register-resident unrolled kernel (gpu_codegen) with its registers and local
memory per thread, its variants (threads per block, a register cap, rows in global memory) and
the generic local-memory kernel it replaced; correctness of the CUDA ensemble against the CPU
engine (four layouts, one diverging, also cut into chunks; momentum + L2 and adam, one adam
network diverging, against the numpy ensemble); the kernel's rate with momentum + L2 and with
adam beside plain gradient descent (the optimizer state in registers / spilled, issue 15
item 1); end to end through
train_ensemble(device="cuda"); the baseline, plain batched PyTorch (one bmm per layer,
autograd) on the same GPU; and a 123-weight layout, unrolled and generic.
Every case catches its own errors, so one failure still leaves the other lines.
"""
import os
import sys
import time
import traceback

import numpy as np

if not hasattr(np, "row_stack"):  # numba-cuda on numpy >= 2.5 still looks for it
    np.row_stack = np.vstack
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import emit  # noqa: E402  (also puts src/ on the path)

BENCH = "gpu"
T0 = time.perf_counter()
BUDGET_S = 140  # stop starting new cases after this
SMALL = bool(os.environ.get("GPU_CHECK_SMALL"))  # a dry run in the CUDA simulator
OUT = os.environ.get("GPU_CHECK_OUT") or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "gpu_results.jsonl")
open(OUT, "w").close()
_emit = emit


def emit(bench: str, case: str, **fields) -> dict:  # noqa: F811  (also into OUT)
    import json

    row = _emit(bench, case, **fields)
    with open(OUT, "a") as fh:
        fh.write(json.dumps(row) + "\n")
    return row


def case(name):
    def wrap(fn):
        def run(*a, **kw):
            if time.perf_counter() - T0 > BUDGET_S:
                emit(BENCH, name, skipped="time budget used up")
                return None
            try:
                return fn(*a, **kw)
            except Exception as e:  # report and go on with the next case
                emit(BENCH, name, error=f"{type(e).__name__}: {e}",
                     trace=traceback.format_exc()[-1500:])
                return None
        return run
    return wrap


@case("device")
def device():
    import numba

    from scratchnet.engines import gpu

    info = {"numba": numba.__version__, "numpy": np.__version__,
            "numba_cuda_device": gpu.device_name(), "cuda_available": gpu.cuda_available()}
    try:
        import torch

        info.update(card=torch.cuda.get_device_name(0), torch=torch.__version__)
    except Exception as e:
        info.update(card=f"torch unavailable: {e}")
    emit(BENCH, "device", **info)


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    same_nan = bool(np.array_equal(np.isfinite(a), np.isfinite(b)))
    ok = np.isfinite(b) & np.isfinite(a)
    err = float(np.max(np.abs(a[ok] - b[ok]) / np.maximum(1.0, np.abs(b[ok])), initial=0.0))
    return err if same_nan else float("inf")


@case("correctness")
def correctness():
    import scratchnet.engines.ensemble as ens
    from scratchnet.engines.ensemble import METRICS, train_ensemble
    from scratchnet.training.train import TrainConfig

    relu = TrainConfig(epochs=150, hidden=(5,), activation="relu", output="identity")
    cases = {
        "ps5 2-7-1 sigmoid sse": (TrainConfig(epochs=300), list(range(8)),
                                  [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1], None),
        "2-6-4-3 tanh softmax ce": (TrainConfig(data="gaussians", n_classes=3, output="softmax",
                                                loss="ce", hidden=(6, 4), activation="tanh",
                                                epochs=100), [0, 1, 2, 3], 1e-3, None),
        "2-5-1 relu identity sse, one diverges": (relu, [0, 1, 2], [1e-3, 0.8, 2e-3], None),
        "the same in chunks of 4 epochs": (relu, [0, 1, 2], [1e-3, 0.8, 2e-3], 4),
        "2-4-1 tanh sigmoid bce": (TrainConfig(loss="bce", hidden=(4,), activation="tanh",
                                               epochs=200), [0, 1, 2], [1e-3, 1e-2, 0.1], None),
        "ps5 momentum + l2": (TrainConfig(epochs=300, optimizer="momentum", l2=0.01),
                              list(range(4)), [1e-4, 1e-3, 1e-2, 3e-2], None),
        "ps5 adam": (TrainConfig(epochs=300, optimizer="adam"), list(range(4)),
                     [1e-4, 1e-3, 1e-2, 3e-2], None),
        # adam with ε ≫ √v̂ steps like gd with lr / ε: network 1 diverges (the replay launch)
        "2-5-1 relu adam, one diverges, chunks of 4": (
            TrainConfig(epochs=30, hidden=(5,), activation="relu", output="identity",
                        optimizer="adam", eps=1e200), [0, 1], [1e197, 1e199], 4),
    }
    for name, (cfg, seeds, lrs, chunk) in cases.items():
        if SMALL:
            cfg.epochs = 3 if chunk is None else 9
        t = time.perf_counter()
        with np.errstate(all="ignore"):
            if chunk is not None:
                rows = 100 + 1e-6  # PS5: 80 + 20 rows a network-epoch
                ens.CHUNK_WORK = {**ens.CHUNK_WORK, "cuda": chunk * len(seeds) * rows}
            g = train_ensemble(cfg, seeds=seeds, lrs=lrs, device="cuda")
            ens.CHUNK_WORK = {**ens.CHUNK_WORK, "cuda": 2e10}
            c = train_ensemble(cfg, seeds=seeds, lrs=lrs, engine="numpy")
        err = max([rel(g.W, c.W)] + [rel(getattr(g, m), getattr(c, m)) for m in METRICS])
        emit(BENCH, f"correctness: {name}", K=len(seeds), epochs=cfg.epochs,
             max_rel_diff_vs_cpu=err, ok=bool(err <= 1e-10),
             diverged_gpu=g.diverged_at.tolist(), diverged_cpu=c.diverged_at.tolist(),
             seconds=round(time.perf_counter() - t, 2))


def resources(kernel) -> dict:
    """Registers and local memory per thread (local memory = spills / arrays off chip)."""
    out = {}
    for key, fn in (("regs", "get_regs_per_thread"), ("local_bytes", "get_local_mem_per_thread"),
                    ("shared_bytes", "get_shared_mem_per_block")):
        try:
            v = getattr(kernel, fn)()
            out[key] = max(v.values()) if isinstance(v, dict) else v
        except Exception as e:
            out[key] = f"unavailable: {type(e).__name__}"
    return out


@case("fused kernel speed")
def kernel_speed(prep, K, E, threads=128, variant="auto", shared_rows=None, max_registers=-1,
                 loss="sse", label="ps5 2-7-1 sigmoid sse", dtype="float64", options=None):
    """``options``: TrainConfig fields of an optimizer / penalty (the kernel with its state)."""
    from dataclasses import replace

    from numba import cuda

    from scratchnet.engines.ensemble import EnsembleSteps
    from scratchnet.engines.gpu import DeviceRun
    from scratchnet.core.network import init_weights_batch

    layout, P = prep.layout, prep.problem
    W = init_weights_batch(layout, "normal", range(K))
    steps = None if not options else \
        EnsembleSteps.from_config(replace(prep_config(), **options), layout, K)
    t = time.perf_counter()
    run = DeviceRun(layout, loss, W, np.full(K, 1e-4), P, E, variant=variant,
                    shared_rows=shared_rows, max_registers=max_registers, dtype=dtype,
                    steps=steps)
    run.launch(0, 1, 1, 0, threads)  # compile / warm up
    cuda.synchronize()
    compile_s = time.perf_counter() - t
    best = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        run.launch(0, E, 1, 0, threads)
        cuda.synchronize()
        best = min(best, time.perf_counter() - t)
        if best > 1.0:
            break
    if options:
        label += " " + " ".join(f"{k}={v}" for k, v in options.items())
    emit(BENCH, f"fused kernel: {label}", kernel=run.variant, dtype=dtype, K=K, epochs=E,
         threads_per_block=threads,
         max_registers="default" if max_registers == -1 else max_registers,
         network_epochs_per_s=float(f"{K * E / best:.3g}"), seconds=round(best, 4),
         compile_s=round(compile_s, 1), target=3e8, **resources(run.kernel))
    return K * E / best


@case("issue 15: end to end against the kernel")
def end_to_end_vs_kernel(prep, K, E, dtype, kernel_rate, with_sweep=True):
    """train_ensemble(device="cuda") and a sweep chunk at K networks, timed whole and in parts,
    against the kernel's rate (kernel_speed at the same K, E and dtype)."""
    import tempfile
    from dataclasses import replace

    from numba import cuda

    from scratchnet import sweep
    from scratchnet.core.network import init_weights_batch
    from scratchnet.engines.ensemble import train_ensemble

    cfg = replace(prep_config(), epochs=E)
    t = time.perf_counter()
    init_weights_batch(prep.layout, "normal", range(K))
    t_init = time.perf_counter() - t
    t = time.perf_counter()
    r = train_ensemble(cfg, seeds=range(K), device="cuda", prepared=prep, dtype=dtype)
    cuda.synchronize()
    dt = time.perf_counter() - t
    rate = K * E / dt
    row = dict(dtype=dtype, K=K, epochs=E, record_every=1,
               end_to_end_network_epochs_per_s=float(f"{rate:.3g}"), seconds=round(dt, 3),
               kernel_network_epochs_per_s=kernel_rate,
               kernel_over_end_to_end=None if not kernel_rate else round(kernel_rate / rate, 2),
               within_2x=None if not kernel_rate else bool(kernel_rate / rate <= 2),
               kernel_seconds_at_that_rate=None if not kernel_rate else
               round(K * E / kernel_rate, 3),
               init_seconds=round(t_init, 3), diverged=int(r.diverged.sum()))
    if r.agreement:
        row["agreement_with_float64"] = r.agreement
    emit(BENCH, f"issue 15: train_ensemble(device='cuda') end to end, {dtype}", **row)
    if not with_sweep:  # (the sweep's host work is the same in float32; time is short)
        return
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        run = sweep.run_sweep(cfg, [(7,)], [1e-4], range(K), os.path.join(d, "s.csv"),
                              chunk_size=K, device="cuda", dtype=dtype)
        dt = time.perf_counter() - t
    rate = K * E / dt
    emit(BENCH, f"issue 15: sweep --device cuda end to end, {dtype}", dtype=dtype, K=K, epochs=E,
         record_every=run_record_every(E), chunk_size=K,
         end_to_end_network_epochs_per_s=float(f"{rate:.3g}"), seconds=round(dt, 3),
         kernel_over_end_to_end=None if not kernel_rate else round(kernel_rate / rate, 2),
         within_2x=None if not kernel_rate else bool(kernel_rate / rate <= 2),
         agreement_with_float64=run.agreement or None)


def run_record_every(E: int) -> int:
    return max(1, E // 1000)  # the sweep's default


@case("train_ensemble end to end")
def end_to_end(prep, K, E):
    from dataclasses import replace

    from scratchnet.engines.ensemble import train_ensemble

    cfg = replace(prep_config(), epochs=E)
    t = time.perf_counter()
    r = train_ensemble(cfg, seeds=range(K), device="cuda", prepared=prep)
    dt = time.perf_counter() - t
    emit(BENCH, "train_ensemble(device='cuda') end to end", K=K, epochs=E,
         network_epochs_per_s=K * E / dt, seconds=dt,
         note="includes weight upload and copying K x epochs x 4 records back",
         diverged=int(r.diverged.sum()))


@case("pytorch batched bmm")
def torch_baseline(prep, K, E):
    import torch

    from torch_batched import batched_torch_epochs

    batched_torch_epochs(torch, prep, K, 3, "cuda")  # warm up
    dt, _ = batched_torch_epochs(torch, prep, K, E, "cuda")
    emit(BENCH, "pytorch batched bmm (cuda, float64)", K=K, epochs=E,
         network_epochs_per_s=K * E / dt, seconds=dt)


def prep_config():
    from scratchnet.training.train import TrainConfig

    return TrainConfig()


def mid_prep():
    from scratchnet.training.train import TrainConfig, prepare

    return prepare(TrainConfig(data="gaussians", n_classes=3, output="softmax", loss="ce",
                               hidden=(8, 8), activation="tanh"))


def main():
    from scratchnet.training.train import prepare

    device()
    prep = prepare(prep_config())
    k, e = (1000, 100) if SMALL else (1, 1)
    # issue 15 first: K = 1e5, float64 and float32, kernel and end to end
    for dtype in ("float64", "float32"):
        rate = kernel_speed(prep, 100_000 // k, 1000 // e, dtype=dtype)
        end_to_end_vs_kernel(prep, 100_000 // k, 1000 // e, dtype, rate, dtype == "float64")
    # issue 15 item 1: the optimizers in the kernel, beside plain gd's rate just measured
    for options in ({"optimizer": "momentum", "l2": 0.01}, {"optimizer": "adam"}):
        kernel_speed(prep, 100_000 // k, 1000 // e, options=options)
    correctness()
    for K, E in ((10_000, 1000), (30_000, 1000), (300_000, 300)):
        kernel_speed(prep, K // k, E // e)  # the default kernel
    kernel_speed(prep, 100_000 // k, 100 // e, variant="generic")  # the kernel before
    end_to_end(prep, 10_000 // k, 1000 // e)
    for K, E in ((10_000, 200), (100_000, 50)):
        torch_baseline(prep, K // k, E // e)
    # variants of the unrolled kernel: no register cap, threads per block, a lower cap, rows
    # in global memory (each ~4 s to compile)
    kernel_speed(prep, 100_000 // k, 1000 // e, max_registers=None)
    for threads in (64, 256):
        kernel_speed(prep, 100_000 // k, 1000 // e, threads)
    kernel_speed(prep, 100_000 // k, 1000 // e, max_registers=128)
    kernel_speed(prep, 100_000 // k, 1000 // e, shared_rows=False)
    end_to_end(prep, 100_000 // k, 300 // e)
    mid = mid_prep()
    for variant in ("unrolled", "generic"):
        kernel_speed(mid, 30_000 // k, 100 // e, variant=variant, loss="ce",
                     label="2-8-8-3 tanh softmax ce (123 weights)")
    emit(BENCH, "done", total_seconds=round(time.perf_counter() - T0, 1))


if __name__ == "__main__":
    main()
