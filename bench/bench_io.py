"""Big inputs (issue 15 item 4): loading a 1e6-row CSV and predicting with a 1e7-weight model.

* ``csv_load``: ``read_csv`` on a 1e6-row, 3-column CSV (≈ 17 MB as a spreadsheet writes it)
  through numpy's C reader, in a fresh interpreter: the best of 3 wall times, the peak of
  Python-tracked memory (tracemalloc) and the growth of the process's resident set (ru_maxrss),
  both against the file's size.  Targets: ≤ 1 s, memory ≤ 3× the file.  For reference the
  row-by-row reader (the one that names rows and columns) on a tenth of the rows.
* ``model_predict``: a 2-3160-3160-1 network (1.0e7 weights: JSON metadata + a safetensors
  file) saved, then ``scratchnet predict`` on 100 rows as a user runs it (a new process, so
  the interpreter's start-up is included), and ``Model.load`` + ``predict_proba`` in process.
  Target ≤ 2 s.

``python bench_io.py --small`` runs everything at 1/100 of the size (a quick check that the
script works); ``make bench`` runs the full size.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from _common import SRC, emit

BENCH = "io"

CSV_PROBE = r"""
import json, resource, sys, time, tracemalloc
from scratchnet.core.data import read_csv
path, slow_path = sys.argv[1], sys.argv[2]
read_csv(path)  # warm: imports, page cache
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
best = cpu = float("inf")
for _ in range(3):
    t0, c0 = time.perf_counter(), time.process_time()
    ds = read_csv(path)
    best, cpu = min(best, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    del ds
rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
ds = read_csv(path)
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
t0 = time.perf_counter()
read_csv(slow_path, keep_rows=True)  # the row-by-row reader, for reference
slow = time.perf_counter() - t0
print(json.dumps({"seconds": best, "cpu_seconds": cpu, "rows": len(ds.y), "tracemalloc_peak": peak,
                  "rss_growth": (rss1 - rss0) * 1024, "slow_seconds": slow}))
"""


def write_csv(path: str, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2)) * [1.0, 300.0]
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    with open(path, "w") as fh:
        fh.write("x_1,x_2,classification\n")
        for i in range(0, n, 100_000):  # in blocks: the writer's memory stays small
            fh.writelines(f"{a:.6f},{b:.4f},{c}\n"
                          for a, b, c in zip(X[i:i + 100_000, 0], X[i:i + 100_000, 1],
                                             y[i:i + 100_000]))


def env() -> dict:
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


def csv_load(tmp: str, n: int) -> None:
    path, slow = os.path.join(tmp, "big.csv"), os.path.join(tmp, "slow.csv")
    write_csv(path, n)
    write_csv(slow, max(n // 10, 10), seed=1)
    size = os.path.getsize(path)
    out = subprocess.run([sys.executable, "-c", CSV_PROBE, path, slow], env=env(),
                         capture_output=True, text=True, check=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    emit(BENCH, f"read_csv {r['rows']:.0e} rows (numpy C reader)", rows=r["rows"],
         file_mb=size / 1e6, seconds=r["seconds"], cpu_seconds=r["cpu_seconds"],
         tracemalloc_peak_over_file=r["tracemalloc_peak"] / size,
         rss_growth_over_file=r["rss_growth"] / size,
         row_by_row_s_per_1e6_rows=r["slow_seconds"] * 1e6 / max(n // 10, 10),
         target_met=bool(r["seconds"] <= 1.0 and r["tracemalloc_peak"] <= 3 * size))
    os.remove(path)


def model_predict(tmp: str, hidden: int) -> None:
    from scratchnet.core.data import Standardizer
    from scratchnet.core.model import Model
    from scratchnet.core.network import Layout

    layout = Layout.build(2, (hidden, hidden), 1)
    w = np.random.default_rng(0).normal(size=layout.n_params) / np.sqrt(hidden)
    model = Model(layout, w, "sse", Standardizer(np.zeros(2), np.array([1.0, 300.0])), None,
                  np.array([0.0, 1.0]))
    mpath, data, out = (os.path.join(tmp, n) for n in ("big.json", "rows.csv", "pred.csv"))
    t0 = time.perf_counter()
    model.save(mpath)
    save_s = time.perf_counter() - t0
    write_csv(data, 100)
    files = sum(os.path.getsize(os.path.join(tmp, f)) for f in os.listdir(tmp)
                if f.startswith("big."))
    best_cli = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "scratchnet", "predict", "--model", mpath,
                        "--data", data, "--out", out], env=env(), check=True,
                       capture_output=True)
        best_cli = min(best_cli, time.perf_counter() - t0)
    best_api = float("inf")
    X = np.random.default_rng(1).normal(size=(100, 2))
    for _ in range(3):
        t0 = time.perf_counter()
        Model.load(mpath).predict_proba(X)
        best_api = min(best_api, time.perf_counter() - t0)
    emit(BENCH, f"predict 100 rows, {layout.n_params:.1e}-weight model (safetensors)",
         params=layout.n_params, files_mb=files / 1e6, save_s=save_s,
         cli_predict_s=best_cli, load_and_predict_s=best_api,
         target_met=bool(best_cli <= 2.0))


def main(small: bool = False) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-io-") as tmp:
        csv_load(tmp, 10_000 if small else 1_000_000)
        model_predict(tmp, 316 if small else 3160)


if __name__ == "__main__":
    main(small="--small" in sys.argv)
