"""The CUDA kernels, run by numba's CUDA simulator on the CPU, equal the CPU engine.

The simulator (NUMBA_ENABLE_CUDASIM=1) executes the very kernel source thread by thread in
Python; it has to be switched on before numba is imported, hence the subprocess.  Speed is
measured on a real GPU by bench/gpu_check.py.
"""
import json
import os
import subprocess
import sys

import pytest

from scratchnet.core.activations import HIDDEN_ACTIVATIONS
from scratchnet.engines import gpu
from scratchnet.core.errors import ScratchnetError

SRC = os.path.join(os.path.dirname(__file__), "..", "src")

SCRIPT = r"""
import json, copy
from dataclasses import replace
import numpy as np
from scratchnet.core.network import init_weights_batch
from scratchnet.training.train import TrainConfig, prepare, Problem
from scratchnet.engines.ensemble import train_ensemble, METRICS
import scratchnet.engines.ensemble as ens
from scratchnet.engines import gpu, codegen as gpu_codegen

used = []  # the kernel variant of every DeviceRun
_choose = gpu.choose_kernel
def choose(*a, **kw):
    kern, what = _choose(*a, **kw)
    used.append(what)
    return kern, what
gpu.choose_kernel = choose

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

def compare(cfg, seeds, lrs, every, prep, chunk=None):
    used.clear()
    c = train_ensemble(cfg, seeds=seeds, lrs=lrs, prepared=prep, record_every=every)
    if chunk is not None:  # chunks of `chunk` epochs on the device
        rows = prep.problem.x_train.shape[0] + prep.problem.x_test.shape[0] / every
        ens.CHUNK_WORK = {"cpu": 2e7, "cuda": chunk * len(seeds) * rows + 1e-6}
    g = train_ensemble(cfg, seeds=seeds, lrs=lrs, prepared=prep, device="cuda",
                       record_every=every)
    ens.CHUNK_WORK = {"cpu": 2e7, "cuda": 2e10}
    return {"engine": [g.engine, c.engine], "W": rel(g.W, c.W),
            "records": max(rel(getattr(g, m), getattr(c, m)) for m in METRICS),
            "final": max(rel(g.final[m], c.final[m]) for m in METRICS),
            "diverged_at": [g.diverged_at.tolist(), c.diverged_at.tolist()],
            "kernels": sorted(set(used)), "launches": len(used)}

gauss = dict(data="gaussians", n_classes=3, n_samples=40)
relu = TrainConfig(epochs=60, hidden=(5,), activation="relu", output="identity")
cases = {
    "ps5": (TrainConfig(epochs=6), [0, 1, 2], [1e-2, 1e-1, 1.0], 2),
    "deep-softmax": (TrainConfig(output="softmax", loss="ce", hidden=(4, 3), activation="tanh",
                                 epochs=4, **gauss), [0, 1], [1e-2, 1e-1], 1),
    "relu-diverges": (relu, [0, 1], [1e-3, 0.8], 3),
    "bce": (TrainConfig(loss="bce", hidden=(3,), activation="tanh", epochs=5), [0, 1],
            [1e-2, 0.3], 2),
    "softmax-sse": (TrainConfig(output="softmax", loss="sse", hidden=(3,), epochs=3, **gauss),
                    [0], [0.1], 1),
}
out = {"available": gpu.cuda_available()}
with np.errstate(all="ignore"):
    for name, (cfg, seeds, lrs, every) in cases.items():
        out[name] = compare(cfg, seeds, lrs, every, tiny(cfg))
    # the rows read from global memory instead of shared memory
    gpu.SHARED_ROWS_BYTES = 0
    out["global-rows"] = compare(relu, [0, 1], [1e-3, 0.8], 3, tiny(relu))
    gpu.SHARED_ROWS_BYTES = 24 * 1024
    # the generic (local-memory) kernel of layouts too large to unroll
    gpu_codegen.MAX_UNROLLED_PARAMS = 0
    cfg, seeds, lrs, every = cases["relu-diverges"]
    out["generic"] = compare(cfg, seeds, lrs, every, tiny(cfg))
    gpu_codegen.MAX_UNROLLED_PARAMS = 200
    # every hidden activation of the table, in both renderings of the generator
    from scratchnet.core.activations import HIDDEN_ACTIVATIONS
    for act in HIDDEN_ACTIVATIONS:
        c = TrainConfig(epochs=4, hidden=(3, 2), activation=act, loss="bce")
        for limit, kind in ((200, ""), (0, "-generic")):
            gpu_codegen.MAX_UNROLLED_PARAMS = limit
            out[f"act-{act}{kind}"] = compare(c, [0, 1], [1e-2, 0.5], 1, tiny(c))
    gpu_codegen.MAX_UNROLLED_PARAMS = 200
    # divergence at a chunk's first epoch (the previous weights come from the chunk before),
    # its second (replay of no epoch) and its third (replay of one epoch)
    t = out["relu-diverges"]["diverged_at"][1][1]
    for back in (0, 1, 2):
        out[f"chunk-boundary-{back}"] = compare(cfg, seeds, lrs, every, tiny(cfg), t - back)
    # the run stops right where network 1's loss turns non-finite: its final metrics are not
    # finite (no record of the device's final pass; computed on the host)
    out["final-not-finite"] = compare(replace(cfg, epochs=t), seeds, lrs, every, tiny(cfg))
    # records into plain (K, n) arrays (not the transposed views train_ensemble allocates)
    cfg, seeds, lrs, every = cases["ps5"]
    prep = tiny(cfg)
    W = init_weights_batch(prep.layout, "normal", seeds)
    rec = {m: np.full((3, 3), np.nan) for m in METRICS}
    div = np.full(3, -1, np.int64)
    gpu.cuda_engine(prep.layout, cfg.loss, W, W.copy(), np.array(lrs), prep.problem, 0, 6,
                    every, rec, div)
    c = train_ensemble(cfg, seeds=seeds, lrs=lrs, prepared=prep, record_every=every)
    out["plain-records"] = {"W": rel(W, c.W), "records": max(rel(rec[m], getattr(c, m))
                                                             for m in METRICS)}
    # float32: the same kernel in single precision, against float64 on the CPU
    for name, cfg in (("float32", cases["ps5"][0]), ("float32-bce", cases["bce"][0])):
        _, seeds, lrs, every = cases["ps5" if name == "float32" else "bce"]
        prep = tiny(cfg)
        c = train_ensemble(cfg, seeds=seeds, lrs=lrs, prepared=prep, record_every=every)
        g = train_ensemble(cfg, seeds=seeds, lrs=lrs, prepared=prep, record_every=every,
                           device="cuda", dtype="float32")
        out[name] = {"dtypes": [g.dtype, str(g.train_loss.dtype), str(g.W.dtype)],
                     "W": rel(g.W, c.W), "records": max(rel(getattr(g, m), getattr(c, m))
                                                        for m in METRICS),
                     "dw": float(np.abs(g.W - c.W).max()),
                     "dloss": max(float(np.abs(g.final[m] - c.final[m]).max())
                                  for m in ("train_loss", "test_loss")),
                     "agreement": g.agreement}
# optimizers and penalties: the kernel against the numpy ensemble, both renderings
def compare_steps(cfg, seeds, lrs, prep, chunk=None):
    used.clear()
    c = train_ensemble(cfg, seeds=seeds, lrs=lrs, prepared=prep, engine="numpy")
    if chunk is not None:
        rows = prep.problem.x_train.shape[0] + prep.problem.x_test.shape[0]
        ens.CHUNK_WORK = {"cpu": 2e7, "cuda": chunk * len(seeds) * rows + 1e-6}
    g = train_ensemble(cfg, seeds=seeds, lrs=lrs, prepared=prep, device="cuda")
    ens.CHUNK_WORK = {"cpu": 2e7, "cuda": 2e10}
    return {"engine": [g.engine, c.engine], "W": rel(g.W, c.W),
            "records": max(rel(getattr(g, m), getattr(c, m)) for m in METRICS),
            "final": max(rel(g.final[m], c.final[m]) for m in METRICS),
            "diverged_at": [g.diverged_at.tolist(), c.diverged_at.tolist()],
            "kernels": sorted(set(used)), "launches": len(used)}

PENALTIES = {"none": {}, "l2": {"l2": 0.05}, "l2+l1": {"l2": 0.05, "l1": 0.01}}
with np.errstate(all="ignore"):
    for opt in ("gd", "momentum", "nesterov", "rmsprop", "adam"):
        for pen, kw in PENALTIES.items():
            cfg = TrainConfig(epochs=3, optimizer=opt, beta2=0.99, **kw)
            for limit, kind in ((200, ""), (0, "-generic")):
                gpu_codegen.MAX_UNROLLED_PARAMS = limit
                out[f"steps-{opt}-{pen}{kind}"] = compare_steps(cfg, [0, 1], [1e-2, 1e-1],
                                                                tiny(cfg))
    # adam diverging (ε ≫ √v̂: gd-like steps of lr / ε) as one chunk and in chunks that put
    # the divergence at a chunk's first epoch, its second and its third (replays)
    adam = TrainConfig(epochs=9, hidden=(5,), activation="relu", output="identity",
                       optimizer="adam", eps=1e200)
    for limit, kind in ((200, ""), (0, "-generic")):
        gpu_codegen.MAX_UNROLLED_PARAMS = limit
        out[f"adam-diverges{kind}"] = r = compare_steps(adam, [0, 1], [1e197, 1e199], tiny(adam))
        t = r["diverged_at"][1][1]
        for back in (0, 1, 2):
            out[f"adam-diverges{kind}-chunk-{back}"] = compare_steps(
                adam, [0, 1], [1e197, 1e199], tiny(adam), t - back)
    gpu_codegen.MAX_UNROLLED_PARAMS = 200
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


CASES = ["ps5", "deep-softmax", "relu-diverges", "bce", "softmax-sse", "global-rows",
         "generic", "chunk-boundary-0", "chunk-boundary-1", "chunk-boundary-2",
         "final-not-finite"]
SHARED = "unrolled, rows in shared memory"


@pytest.mark.parametrize("case", CASES)
def test_kernel_equals_cpu_engine(simulated, case):
    r = simulated[case]
    assert r["engine"] == ["cuda", "fast"]
    assert r["W"] <= 1e-12
    assert r["records"] <= 1e-12
    assert r["final"] <= 1e-12  # the device's extra pass for the final weights' metrics
    assert r["diverged_at"][0] == r["diverged_at"][1]


def test_final_metrics_of_non_finite_final_weights(simulated):
    r = simulated["final-not-finite"]
    assert r["diverged_at"][0] == [-1, -1]  # not diverged within the epochs run…
    assert r["final"] <= 1e-12  # …but its final loss is not finite: NaN / inf placed alike


def test_records_into_plain_arrays(simulated):
    assert simulated["plain-records"]["W"] <= 1e-12
    assert simulated["plain-records"]["records"] <= 1e-12


@pytest.mark.parametrize("case", ["float32", "float32-bce"])
def test_float32_kernel_agrees_with_float64_and_says_how_far(simulated, case):
    r = simulated[case]
    assert r["dtypes"] == ["float32", "float32", "float64"]
    # single precision really ran (not float64 in disguise), and stays close
    assert 1e-10 < r["dw"] and r["W"] <= 1e-4 and r["records"] <= 1e-4
    a = r["agreement"]
    assert a["dtype"] == "float32" and a["diverged_differently"] == 0
    assert a["networks"] == (3 if case == "float32" else 2)  # the K networks of the case
    # every network was checked here (K ≤ check): the report is the full difference
    assert a["max_abs_dw"] == pytest.approx(r["dw"], rel=1e-12)
    assert a["max_train_loss_diff"] <= r["dloss"] * (1 + 1e-12)
    assert max(a["max_train_loss_diff"], a["max_test_loss_diff"]) == \
        pytest.approx(r["dloss"], rel=1e-12)


def test_float32_source_has_no_double_literal():
    from scratchnet.engines import codegen as gpu_codegen

    import re

    src = gpu_codegen.single_precision(
        gpu_codegen.kernel_source((2, 4, 1), (1, 0), 1, True, (80, 20)))
    compile(src, "<kernel>", "exec")
    code = "\n".join(line.partition("#")[0] for line in src.splitlines())
    assert "np.float64" not in code and "np.float32" in code
    assert re.findall(r"(?<![\w.(])\d+\.\d+", code) == []  # every literal inside F32(…)
    assert "e_train = F32(0.0)" in code and "0.5" not in code.replace("F32(0.5)", "")


def test_float32_needs_the_gpu_and_the_unrolled_kernel(monkeypatch):
    from scratchnet.engines.ensemble import train_ensemble
    from scratchnet.training.train import TrainConfig

    from scratchnet.core.errors import OptionError
    from scratchnet.training.options import flag

    with pytest.raises(OptionError, match="^dtype: float32 runs on the GPU only") as err:
        train_ensemble(TrainConfig(epochs=1), seeds=[0], dtype="float32")
    assert err.value.worded(flag) == "--dtype: float32 runs on the GPU only (--device cuda)"
    with pytest.raises(OptionError, match="^dtype: unknown 'float16'") as err:
        train_ensemble(TrainConfig(epochs=1), seeds=[0], device="cuda", dtype="float16")
    assert err.value.name == "dtype" and err.value.worded(flag).startswith("--dtype: unknown")
    with pytest.raises(OptionError) as err:
        train_ensemble(TrainConfig(epochs=1), seeds=[0], device="tpu")
    assert err.value.worded(flag) == "--device: unknown 'tpu' (choose from cpu, cuda)"
    if gpu.cuda is not None:
        with pytest.raises(ScratchnetError, match="single precision"):
            gpu.make_kernel((2, 7, 1), (0, 0), 0, False, "generic", dtype="float32")


@pytest.mark.parametrize("case, kernel", [
    ("ps5", SHARED), ("deep-softmax", SHARED), ("relu-diverges", SHARED), ("bce", SHARED),
    ("softmax-sse", SHARED), ("global-rows", "unrolled, rows in global memory"),
    ("generic", "generic"), ("chunk-boundary-1", SHARED)])
def test_the_intended_kernel_ran(simulated, case, kernel):
    assert simulated[case]["kernels"] == [kernel]


def test_divergence_is_caught_on_the_device(simulated):
    g_div = simulated["relu-diverges"]["diverged_at"][0]
    assert g_div[0] == -1 and g_div[1] > 2  # late enough for every chunk-boundary case
    for back in (0, 1, 2):
        r = simulated[f"chunk-boundary-{back}"]
        assert r["diverged_at"][0] == g_div
        assert r["launches"] >= 2  # the run was really cut into chunks


def test_generated_source_is_register_only():
    from scratchnet.engines import codegen as gpu_codegen

    src = gpu_codegen.kernel_source((2, 7, 1), (0, 0), 0, False, (80, 20))
    compile(src, "<kernel>", "exec")
    assert "local.array" not in src and "[p]" not in src
    assert "w28 = W[28, k]" in src and "w29" not in src  # 29 weights as 29 scalars
    assert "alpha1_6 = beta0_0 * w13 + beta0_1 * w20 + w6" in src
    assert "Xtr = cuda.shared.array((80, 2), np.float64)" in src
    glob = gpu_codegen.kernel_source((2, 3, 2, 3), (1, 2, 4), 2, True, None)
    assert "shared" not in glob and "delta1_2 =" in glob and "beta3_2 = beta3_2 / s" in glob


def test_large_layouts_fall_back_to_the_generic_kernel():
    if gpu.cuda is None:  # numba missing: nothing to build (the device is then unavailable)
        assert not gpu.cuda_available()
        return
    big = (2, 20, 20, 1)  # 501 weights
    assert gpu.n_params(big) == 501
    assert gpu.choose_kernel(big, (0, 0, 0), 0, False, 80, 20)[1] == "generic"
    assert gpu.choose_kernel((2, 7, 1), (0, 0), 0, False, 80, 20)[1] == SHARED
    assert gpu.choose_kernel((2, 7, 1), (0, 0), 0, False, 10**5, 10**4)[1] == \
        "unrolled, rows in global memory"


def test_require_cuda_message(monkeypatch):
    from scratchnet.training.options import flag

    monkeypatch.setattr(gpu, "cuda_available", lambda: False)
    with pytest.raises(ScratchnetError, match="no CUDA device") as err:
        gpu.require_cuda()
    assert err.value.worded(flag) == \
        "--device: no CUDA device (numba.cuda found none; use --device cpu)"


def test_kernel_is_built_once_per_layout():
    if gpu.cuda is None:  # numba missing: nothing to build (the device is then unavailable)
        assert not gpu.cuda_available()
        return
    a = gpu.make_kernel((2, 7, 1), (0, 0), 0, False)
    assert gpu.make_kernel((2, 7, 1), (0, 0), 0, False) is a
    b = gpu.make_kernel((2, 7, 1), (0, 0), 0, False, "generic")
    assert gpu.make_kernel((2, 7, 1), (0, 0), 0, False, "generic") is b and b is not a


def test_sweep_dtype_float32_on_the_cpu_is_a_one_line_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "scratchnet", "sweep", "--epochs", "3",
                           "--seeds", "0:2", "--dtype", "float32", "--out",
                           str(tmp_path / "s.csv")], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": SRC}, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == \
        "scratchnet: --dtype float32 runs on the GPU only (--device cuda)"
    assert not (tmp_path / "s.csv").exists()


def test_sweep_dtype_float32_reports_its_agreement_in_the_simulator(tmp_path):
    out = tmp_path / "s.csv"
    env = {**os.environ, "PYTHONPATH": SRC, "NUMBA_ENABLE_CUDASIM": "1"}
    proc = subprocess.run([sys.executable, "-m", "scratchnet", "sweep", "--epochs", "3",
                           "--seeds", "0:3", "--device", "cuda", "--dtype", "float32",
                           "--out", str(out)], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    line = next(li for li in proc.stdout.splitlines() if li.startswith("float32 vs float64"))
    assert "(3 networks trained again on the CPU)" in line
    dw = float(line.split("max |Δw| ")[1].split(",")[0])
    assert 0 < dw < 1e-4  # single precision: close to float64, not equal to it
    assert len(out.read_text().splitlines()) == 4  # header + 3 networks


def test_generic_kernel_is_the_generator_without_unrolling():
    """One generator, two renderings: the generic kernel keeps local arrays and loops, and
    both take each activation and loss from the snippet table."""
    from scratchnet.engines import codegen as gpu_codegen, snippets

    assert not hasattr(gpu, "make_generic_kernel")
    loop = gpu_codegen.kernel_source((2, 3, 2, 3), (1, 2, 4), 2, False, None, unroll=False)
    flat = gpu_codegen.kernel_source((2, 3, 2, 3), (1, 2, 4), 2, False, None)
    compile(loop, "<generic>", "exec")
    assert "w = cuda.local.array(NP, np.float64)" in loop and "for j in range(0, 3):" in loop
    assert "local.array" not in flat
    for src in (loop, flat):
        assert snippets.ACTIVATIONS["tanh"].f.format(a="a" if src is loop else "alpha1_0") in src
        assert "q = clip(" in src and "* log(q)" in src  # ce from snippets.LOSSES


@pytest.mark.parametrize("kind", ["", "-generic"])
@pytest.mark.parametrize("act", HIDDEN_ACTIVATIONS)
def test_every_hidden_activation_on_the_device(simulated, act, kind):
    r = simulated[f"act-{act}{kind}"]
    assert r["engine"] == ["cuda", "fast"]
    assert r["W"] <= 1e-12 and r["records"] <= 1e-12
    assert r["kernels"] == ["generic" if kind else SHARED]


# ---- optimizers and penalties in the kernel ---------------------------------------------------
STEP_CASES = [f"steps-{o}-{p}{k}" for o in ("gd", "momentum", "nesterov", "rmsprop", "adam")
              for p in ("none", "l2", "l2+l1") for k in ("", "-generic")]


@pytest.mark.parametrize("case", STEP_CASES)
def test_kernel_with_an_optimizer_equals_the_numpy_ensemble(simulated, case):
    r = simulated[case]
    assert r["engine"] == ["cuda", "numpy"]
    assert r["W"] <= 1e-12 and r["records"] <= 1e-12 and r["final"] <= 1e-12
    assert r["kernels"] == ["generic" if case.endswith("-generic") else SHARED]


@pytest.mark.parametrize("kind", ["", "-generic"])
def test_diverging_adam_network_on_the_device(simulated, kind):
    """The kept weights are w_{t−1} however the chunks fall: the replay launch starts again
    from the chunk's first weights and optimizer state (the first launch stores neither for a
    network that diverged)."""
    whole = simulated[f"adam-diverges{kind}"]
    t = whole["diverged_at"][1][1]
    assert whole["diverged_at"][0] == [-1, t] and t > 2
    for r in [whole] + [simulated[f"adam-diverges{kind}-chunk-{b}"] for b in (0, 1, 2)]:
        assert r["diverged_at"][0] == r["diverged_at"][1]
        assert r["W"] <= 1e-12 and r["records"] <= 1e-12
    for b in (0, 1, 2):
        assert simulated[f"adam-diverges{kind}-chunk-{b}"]["launches"] >= 2


@pytest.mark.parametrize("optimizer", ["momentum", "nesterov", "rmsprop", "adam"])
@pytest.mark.parametrize("unroll", [True, False])
def test_kernel_source_of_each_optimizer(optimizer, unroll):
    from scratchnet.engines import codegen as gpu_codegen

    src = gpu_codegen.kernel_source((2, 7, 1), (0, 0), 0, False, (80, 20), unroll,
                                    optimizer, True)
    compile(src, "<kernel>", "exec")
    plain = gpu_codegen.kernel_source((2, 7, 1), (0, 0), 0, False, (80, 20), unroll)
    assert "S1[" not in plain and "lam2" not in plain and "hyper[" not in plain
    assert ("S1[28, k] = s1_28" if unroll else "S1[p, k] = s1[p]") in src
    assert ("S2[" in src) == (optimizer == "adam")
    assert ("c1 = bc[0, t - start]" in src) == (optimizer == "adam")
    if unroll:  # the penalty skips the bias rows w0..w6 and w21 (W_2[0])
        assert "g7 += lam2 * w7 + lam1 * sg" in src and "g28 += lam2" in src
        assert "g6 += lam2" not in src and "g21 += lam2" not in src
    else:
        assert "for p in range(7, 21):" in src and "for p in range(22, 29):" in src
