"""GPU check (about a minute; one JSON line per case).  Run from the repository root:

    PYTHONPATH=src timeout 170 python3 bench/gpu_check.py

Cases: the card; correctness of the CUDA ensemble kernel against the CPU engine on a few
networks (three layouts, one diverging); network-epochs/s of the fused kernel for the PS5 job
(2-7-1 sigmoid, 80/20 rows, ½Σ loss, train and test loss recorded every epoch, float64) at
K = 1e4 … 1e5 networks, kernel only and end to end through train_ensemble(device="cuda");
and the baseline, plain batched PyTorch (one bmm per layer, autograd) on the same GPU.
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
BUDGET_S = 150  # stop starting new cases after this
SMALL = bool(os.environ.get("GPU_CHECK_SMALL"))  # a dry run in the CUDA simulator


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

    from scratchnet import gpu

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
    from scratchnet.ensemble import METRICS, train_ensemble
    from scratchnet.train import TrainConfig

    cases = {
        "ps5 2-7-1 sigmoid sse": (TrainConfig(epochs=300), list(range(8)),
                                  [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1]),
        "2-6-4-3 tanh softmax ce": (TrainConfig(data="gaussians", n_classes=3, output="softmax",
                                                loss="ce", hidden=(6, 4), activation="tanh",
                                                epochs=100), [0, 1, 2, 3], 1e-3),
        "2-5-1 relu identity sse, one diverges": (
            TrainConfig(epochs=150, hidden=(5,), activation="relu", output="identity"),
            [0, 1, 2], [1e-3, 0.8, 2e-3]),
    }
    for name, (cfg, seeds, lrs) in cases.items():
        if SMALL:
            cfg.epochs = 3
        t = time.perf_counter()
        with np.errstate(all="ignore"):
            g = train_ensemble(cfg, seeds=seeds, lrs=lrs, device="cuda")
            c = train_ensemble(cfg, seeds=seeds, lrs=lrs, engine="numpy")
        err = max([rel(g.W, c.W)] + [rel(getattr(g, m), getattr(c, m)) for m in METRICS])
        emit(BENCH, f"correctness: {name}", K=len(seeds), epochs=cfg.epochs,
             max_rel_diff_vs_cpu=err, ok=bool(err <= 1e-10),
             diverged_gpu=g.diverged_at.tolist(), diverged_cpu=c.diverged_at.tolist(),
             seconds=time.perf_counter() - t)


@case("fused kernel speed")
def kernel_speed(prep, K, E, threads=128):
    from numba import cuda

    from scratchnet.gpu import DeviceRun
    from scratchnet.network import init_weights

    layout, P = prep.layout, prep.problem
    W = np.stack([init_weights(layout, "normal", k) for k in range(K)])
    run = DeviceRun(layout, "sse", W, np.full(K, 1e-4), P, E)
    run.launch(0, 1, 1, 0, threads)  # compile / warm up
    cuda.synchronize()
    t = time.perf_counter()
    run.launch(0, E, 1, 0, threads)
    cuda.synchronize()
    dt = time.perf_counter() - t
    extra = {}
    try:  # registers / local memory per thread: spills show up as local memory
        extra = {"regs_per_thread": str(run.kernel.get_regs_per_thread()),
                 "local_mem_per_thread": str(run.kernel.get_local_mem_per_thread())}
    except Exception as e:
        extra = {"resources": f"unavailable: {type(e).__name__}"}
    emit(BENCH, "fused kernel (numba.cuda, one thread per network)", K=K, epochs=E,
         threads_per_block=threads, network_epochs_per_s=K * E / dt, seconds=dt, target=3e8,
         note="kernel only; records of every epoch stay on the device", **extra)


@case("train_ensemble end to end")
def end_to_end(prep, K, E):
    from dataclasses import replace

    from scratchnet.ensemble import train_ensemble

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
    from scratchnet.train import TrainConfig

    return TrainConfig()


def main():
    from scratchnet.train import prepare

    device()
    correctness()
    prep = prepare(prep_config())
    k, e = (1000, 100) if SMALL else (1, 1)
    for K, E in ((10_000, 1000), (30_000, 1000), (100_000, 1000)):
        kernel_speed(prep, K // k, E // e)
    for threads in (64, 256):
        kernel_speed(prep, 100_000 // k, 500 // e, threads)
    end_to_end(prep, 10_000 // k, 1000 // e)
    for K, E in ((10_000, 200), (100_000, 50)):
        torch_baseline(prep, K // k, E // e)
    emit(BENCH, "done", total_seconds=time.perf_counter() - T0)


if __name__ == "__main__":
    main()
