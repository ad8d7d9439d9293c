"""Shared helpers of the benchmark scripts: the PS5 job's data, timing, one JSON line per case."""
from __future__ import annotations

import json
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "src")
if SRC not in sys.path:  # run from a checkout without installing (the GPU machine)
    sys.path.insert(0, SRC)


def emit(bench: str, case: str, **fields) -> dict:
    """Print one JSON line: {"bench": ..., "case": ..., fields...}."""
    row = {"bench": bench, "case": case, **fields}
    print(json.dumps(row), flush=True)
    return row


def best_of(fn, repeat: int = 3) -> float:
    """The fastest of `repeat` timed calls, in seconds (other work on the box only slows)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def best_of_cpu(fn, repeat: int = 3) -> tuple[float, float]:
    """(fastest wall seconds, fastest CPU seconds of this process, all threads) of `repeat`
    calls.  On a busy box CPU time is the better estimate of an idle machine's wall time for
    single-threaded work (and CPU time / threads for work spread over threads)."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


def ps5_problem():
    """(layout, Problem, w0) of the PS5 job: 2-7-1 sigmoid, 80 train / 20 test rows, seed 0."""
    from scratchnet.core.network import init_weights
    from scratchnet.training.train import TrainConfig, prepare

    prep = prepare(TrainConfig())
    return prep.layout, prep.problem, init_weights(prep.layout, "normal", 0)


def machine() -> dict:
    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version()}


def sklearn_full_batch_gd(P, hidden: int, lr: float, epochs: int) -> None:
    """scikit-learn's MLPClassifier trained as the problem set trains: full-batch gradient
    descent, no momentum, no penalty, no early stop, for ``epochs`` epochs (the baseline that
    bench_ps5 and bench_scaling time)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(hidden,), activation="logistic", solver="sgd",
                        batch_size=len(P.l_train), learning_rate_init=lr, momentum=0.0,
                        alpha=0.0, max_iter=epochs, tol=0.0, n_iter_no_change=epochs + 1,
                        shuffle=False, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(P.x_train, P.l_train)
