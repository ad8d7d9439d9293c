"""Ensembles of the PS5 job: K networks (seeds 0..K−1) trained at once, train and test loss
recorded every epoch.  Network-epochs per second for scratchnet's engines and for plain
batched PyTorch (one bmm per layer, autograd, all K networks in one tensor)."""
import os
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np

from _common import emit

BENCH = "ensemble_cpu"


def main(K=1000):
    import numba

    from scratchnet.engines.ensemble import train_ensemble
    from scratchnet.training.train import TrainConfig, prepare

    cfg = TrainConfig()
    prep = prepare(cfg)
    train_ensemble(replace(cfg, epochs=5), seeds=range(4), prepared=prep)  # load the code
    for E, engine in ((2000, "fast"), (100, "numpy")):
        t0, c0 = time.perf_counter(), time.process_time()
        train_ensemble(replace(cfg, epochs=E), seeds=range(K), prepared=prep, engine=engine)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        threads = numba.get_num_threads() if engine == "fast" else 1
        emit(BENCH, f"scratchnet train_ensemble engine={engine}", K=K, epochs=E,
             network_epochs_per_s=K * E / dt, seconds=dt, cpu_seconds=cpu, threads=threads,
             idle_estimate_per_s=K * E * threads / cpu,
             target=3e5 if engine == "fast" else None)
    check = train_ensemble(replace(cfg, epochs=100), seeds=range(8), prepared=prep)
    solo = train_ensemble(replace(cfg, epochs=100), seeds=range(8), prepared=prep,
                          engine="numpy")
    emit(BENCH, "fast vs numpy engine, 8 networks x 100 epochs",
         max_abs_diff=float(np.abs(check.W - solo.W).max()))
    # PyTorch in a process of its own: numba's OpenMP threads keep spinning for a while after
    # a parallel run and would slow PyTorch's threads down
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--torch", str(K)],
                         capture_output=True, text=True)
    print(out.stdout, end="", flush=True)
    if out.returncode:
        emit(BENCH, "pytorch batched bmm (cpu)", error=out.stderr[-500:])


def torch_baseline(prep, K, E=50):
    try:
        import torch
    except ImportError:
        emit(BENCH, "pytorch batched bmm", skipped="torch not installed")
        return
    from torch_batched import batched_torch_epochs

    for threads in sorted({1, torch.get_num_threads()}):
        torch.set_num_threads(threads)  # 2 threads can lose to 1 on a busy 2-core box
        batched_torch_epochs(torch, prep, K, 2, "cpu")
        t, _ = batched_torch_epochs(torch, prep, K, E, "cpu")
        emit(BENCH, "pytorch batched bmm (cpu)", K=K, epochs=E,
             network_epochs_per_s=K * E / t, seconds=t, threads=threads)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--torch"]:
        from scratchnet.training.train import TrainConfig, prepare

        torch_baseline(prepare(TrainConfig()), int(sys.argv[2]))
    else:
        main()
