"""Ensembles of the PS5 job: K networks (seeds 0..K−1) trained at once, train and test loss
recorded every epoch.  Network-epochs per second for scratchnet's engines and for plain
batched PyTorch (one bmm per layer, autograd, all K networks in one tensor).

And the host's share of a GPU ensemble, measured without a GPU (``--host``, run in a process
of its own under numba's CUDA simulator): the time ``train_ensemble(device="cuda")`` and a
``sweep --device cuda`` chunk spend per network on the host — the initial draw, transfers,
records, final metrics, result rows, the sweep's files — with the kernel launch left out, and
the kernel itself timed in the simulator at a small K (a correctness-speed, not a GPU's).
"""
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace

import numpy as np

from _common import emit

BENCH = "ensemble_cpu"
H200_KERNEL = 3.2e8  # network-epochs/s of the PS5 kernel on an H200 (bench/RESULTS.md, GPU)


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
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--host"],
                         capture_output=True, text=True,
                         env={**os.environ, "NUMBA_ENABLE_CUDASIM": "1"})
    print(out.stdout, end="", flush=True)
    if out.returncode:
        emit("ensemble_gpu_host", "host share", error=out.stderr[-800:])


def host_share(K=100_000, E=100, K_sweep=(20_000, 100_000), K_sim=32, E_sim=3):
    """The host's time per network in train_ensemble(device="cuda") and in a sweep chunk,
    the kernel launch replaced by nothing (run with NUMBA_ENABLE_CUDASIM=1: the transfers
    are then host copies)."""
    from scratchnet.core.network import init_weights, init_weights_batch
    from scratchnet.engines import gpu
    from scratchnet.engines.ensemble import train_ensemble
    from scratchnet.training.train import TrainConfig, prepare

    bench = "ensemble_gpu_host"
    cfg = TrainConfig()
    prep = prepare(cfg)
    t = time.perf_counter()  # the kernel itself, in the simulator (Python per GPU thread)
    train_ensemble(replace(cfg, epochs=E_sim), seeds=range(K_sim), device="cuda", prepared=prep)
    dt = time.perf_counter() - t
    emit(bench, "cuda kernel in numba's CUDA simulator (small K)", K=K_sim, epochs=E_sim,
         network_epochs_per_s=K_sim * E_sim / dt, seconds=dt,
         note="the simulator runs each GPU thread in Python: a check, not a GPU's speed")

    n_old = 2000  # the initial draw: one RandomState per network (before) and re-seeded
    t_old = min(_timed(lambda: [init_weights(prep.layout, "normal", s) for s in range(n_old)])
                for _ in range(2)) / n_old
    t_new = min(_timed(lambda: init_weights_batch(prep.layout, "normal", range(K)))
                for _ in range(2)) / K
    gpu.DeviceRun.launch = lambda self, *a, **kw: None  # the host's share only
    cfg_e = replace(cfg, epochs=E)
    train_ensemble(cfg_e, seeds=range(10), device="cuda", prepared=prep)
    # the first call touches fresh memory for the records (page faults, as a new process
    # would); the second gets the freed pages back from the allocator
    first, again = (_timed(lambda: train_ensemble(cfg_e, seeds=range(K), device="cuda",
                                                  prepared=prep)) / K for _ in range(2))
    t_host = first
    kernel = E / H200_KERNEL  # seconds per network on an H200
    emit(bench, "train_ensemble(device='cuda') host time per network, no kernel", K=K,
         epochs=E, record_every=1, host_us_per_network=t_host * 1e6,
         host_us_per_network_memory_reused=again * 1e6,
         init_us_per_network=t_new * 1e6, init_us_per_network_before=t_old * 1e6,
         init_speedup=t_old / t_new, record_bytes_per_network=E * 4 * 8,
         h200_kernel_us_per_network=kernel * 1e6,
         projected_end_to_end_over_kernel=(t_host + kernel) / kernel,
         epochs_where_host_equals_kernel=t_host * H200_KERNEL)

    for k in K_sweep:
        _sweep_host_share(cfg_e, prep, k, E, kernel)


SWEEP_HOST_BEFORE_US = 149  # per network, K=20000, 100 epochs (bench/RESULTS.md, quiet box,
#                             text curves and the final re-read, before issue 15 item 3's work)


def _sweep_host_share(cfg_e, prep, K, E, kernel):
    """A sweep chunk of K networks on the host (kernel stubbed): rows, curves, the two files
    and the final check, in CPU time; train_ensemble's own share timed alongside (A/B)."""
    from scratchnet import sweep
    from scratchnet.engines.ensemble import train_ensemble

    with tempfile.TemporaryDirectory() as d:
        def one_sweep():
            out = os.path.join(d, f"s{time.perf_counter_ns()}.csv")
            return sweep.run_sweep(cfg_e, [(7,)], [1e-4], range(K), out, chunk_size=K,
                                   device="cuda")

        t_sweep, t_train, t_sum = [], [], []
        for _ in range(2):  # alternated, the better of two (CPU time: the box is shared)
            t_train.append(_cpu(lambda: train_ensemble(cfg_e, seeds=range(K), device="cuda",
                                                       prepared=prep)) / K)
            run = []
            t_sweep.append(_cpu(lambda: run.append(one_sweep())) / K)
            t_sum.append(_cpu(lambda: sweep.summarize(run[0].columns)) / K)
    host, own = min(t_sweep), min(t_sweep) - min(t_train)
    emit("ensemble_gpu_host", "sweep --device cuda host time per network, no kernel", K=K,
         epochs=E, curve_points=100, host_us_per_network=host * 1e6,
         sweep_files_us_per_network=own * 1e6,
         train_ensemble_us_per_network=min(t_train) * 1e6,
         summary_us_per_network=min(t_sum) * 1e6,
         host_us_per_network_before=SWEEP_HOST_BEFORE_US if K == 20_000 else None,
         h200_kernel_us_per_network=kernel * 1e6,
         projected_end_to_end_over_kernel=(host + kernel) / kernel,
         epochs_where_host_equals_kernel=host * H200_KERNEL,
         note="CPU seconds; rows formatted column by column, curves appended to a .npy as "
              "one block, no re-read at the end (issue 15 item 3)")


def _cpu(fn) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


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
    if sys.argv[1:2] == ["--host"]:
        host_share()
    elif sys.argv[1:2] == ["--torch"]:
        from scratchnet.training.train import TrainConfig, prepare

        torch_baseline(prepare(TrainConfig()), int(sys.argv[2]))
    else:
        main()
