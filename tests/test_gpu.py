"""The CUDA kernel, run by numba's CUDA simulator on the CPU, equals the CPU engine.

The simulator (NUMBA_ENABLE_CUDASIM=1) executes the very kernel source thread by thread in
Python; it has to be switched on before numba is imported, hence the subprocess.  Speed is
measured on a real GPU by bench/gpu_check.py.
"""
import json
import os
import subprocess
import sys

import pytest

from scratchnet import gpu
from scratchnet.errors import ScratchnetError

SRC = os.path.join(os.path.dirname(__file__), "..", "src")

SCRIPT = r"""
import json, copy
import numpy as np
from scratchnet.train import TrainConfig, prepare, Problem
from scratchnet.ensemble import train_ensemble, METRICS
from scratchnet import gpu

def tiny(cfg, ntr=12, nte=5):
    prep = copy.deepcopy(prepare(cfg))
    p = prep.problem
    prep.problem = Problem(p.x_train[:ntr], p.y_train[:ntr], p.x_test[:nte], p.y_test[:nte],
                           p.l_train[:ntr], p.l_test[:nte], p.threshold)
    return prep

def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    if not np.array_equal(np.isfinite(a), np.isfinite(b)):
        return float("inf")
    ok = np.isfinite(b)
    return float(np.max(np.abs(a[ok] - b[ok]) / np.maximum(1.0, np.abs(b[ok])), initial=0.0))

cases = {
    "ps5": (TrainConfig(epochs=6), [0, 1, 2], [1e-2, 1e-1, 1.0], 2),
    "deep-softmax": (TrainConfig(data="gaussians", n_classes=3, n_samples=40, output="softmax",
                                 loss="ce", hidden=(4, 3), activation="tanh", epochs=4),
                     [0, 1], [1e-2, 1e-1], 1),
    "relu-diverges": (TrainConfig(epochs=60, hidden=(5,), activation="relu",
                                  output="identity"), [0, 1], [1e-3, 0.8], 3),
}
out = {"available": gpu.cuda_available()}
with np.errstate(all="ignore"):
    for name, (cfg, seeds, lrs, every) in cases.items():
        prep = tiny(cfg)
        g = train_ensemble(cfg, seeds=seeds, lrs=lrs, prepared=prep, device="cuda",
                           record_every=every)
        c = train_ensemble(cfg, seeds=seeds, lrs=lrs, prepared=prep, record_every=every)
        out[name] = {"engine": [g.engine, c.engine], "W": rel(g.W, c.W),
                     "records": max(rel(getattr(g, m), getattr(c, m)) for m in METRICS),
                     "diverged_at": [g.diverged_at.tolist(), c.diverged_at.tolist()]}
# divergence in the first epoch of a chunk: the previous weights come from the chunk before
import scratchnet.ensemble as ens
cfg, seeds, lrs, every = cases["relu-diverges"]
prep = tiny(cfg)
with np.errstate(all="ignore"):
    c = train_ensemble(cfg, seeds=seeds, lrs=lrs, prepared=prep, record_every=every)
    t = int(c.diverged_at[1])
    rows = prep.problem.x_train.shape[0] + prep.problem.x_test.shape[0] / every
    ens.CHUNK_WORK = {"cpu": 2e7, "cuda": t * len(seeds) * rows + 1e-6}
    g = train_ensemble(cfg, seeds=seeds, lrs=lrs, prepared=prep, device="cuda",
                       record_every=every)
out["chunk-boundary"] = {"engine": [g.engine, c.engine], "W": rel(g.W, c.W),
                         "records": max(rel(getattr(g, m), getattr(c, m)) for m in METRICS),
                         "diverged_at": [g.diverged_at.tolist(), c.diverged_at.tolist()]}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def simulated():
    env = {**os.environ, "PYTHONPATH": SRC, "NUMBA_ENABLE_CUDASIM": "1"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_simulator_sees_a_device(simulated):
    assert simulated["available"] is True


@pytest.mark.parametrize("case", ["ps5", "deep-softmax", "relu-diverges", "chunk-boundary"])
def test_kernel_equals_cpu_engine(simulated, case):
    r = simulated[case]
    assert r["engine"] == ["cuda", "fast"]
    assert r["W"] <= 1e-12
    assert r["records"] <= 1e-12
    assert r["diverged_at"][0] == r["diverged_at"][1]


def test_divergence_is_caught_on_the_device(simulated):
    g_div = simulated["relu-diverges"]["diverged_at"][0]
    assert g_div[0] == -1 and g_div[1] > 0


def test_require_cuda_message(monkeypatch):
    monkeypatch.setattr(gpu, "cuda_available", lambda: False)
    with pytest.raises(ScratchnetError, match="no CUDA device"):
        gpu.require_cuda()


def test_kernel_is_built_once_per_layout():
    if gpu.cuda is None:  # numba missing: nothing to build (the device is then unavailable)
        assert not gpu.cuda_available()
        return
    a = gpu.make_kernel((2, 7, 1), (0, 0), 0, False)
    assert gpu.make_kernel((2, 7, 1), (0, 0), 0, False) is a
