"""The whole process: `scratchnet train --data ps5 --epochs 100000`, start-up and imports
included (wall clock of a fresh interpreter, compiled code loaded from numba's disk cache)."""
import os
import resource
import subprocess
import sys
import time

from _common import SRC, emit

BENCH = "cli_train"
CMD = ["-m", "scratchnet", "train", "--data", "ps5", "--epochs", "100000"]


def wall(args, repeat=5, cpu=None):
    """Sorted wall times of `repeat` fresh interpreters (and their CPU times into `cpu`)."""
    env = {**os.environ, "PYTHONPATH": SRC}
    times = []
    for _ in range(repeat):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if cpu is not None:
            cpu.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
        if out.returncode != 0:
            raise SystemExit(out.stderr)
    return sorted(times), out


def main():
    wall(CMD, 1)  # the first run compiles (or finds) the cache
    cpu = []
    times, out = wall(CMD, cpu=cpu)
    last = out.stdout.strip().splitlines()[-1]
    emit(BENCH, "scratchnet train --data ps5 --epochs 100000", wall_s_min=times[0],
         wall_s_median=times[len(times) // 2], cpu_s_min=min(cpu), target_s=1.5,
         runs=len(times), summary=last)
    t_numba, _ = wall(["-c", "import numba"], 3)
    t_py, _ = wall(["-c", "import numpy"], 3)
    emit(BENCH, "start-up: python + numpy", wall_s_min=t_py[0])
    emit(BENCH, "start-up: python + numba import", wall_s_min=t_numba[0])
    t_e0, _ = wall([*CMD[:-1], "0"], 3)
    emit(BENCH, "scratchnet train --epochs 0 (start-up, no training)", wall_s_min=t_e0[0])
    code = ("import sys; from scratchnet.cli import main; main(" + repr(CMD[2:] + ["--quiet"])
            + "); print(sorted(m for m in ('torch', 'matplotlib', 'sklearn') if m in "
            "sys.modules))")
    _, out = wall(["-c", code], 1)
    emit(BENCH, "heavy modules imported by train", modules=out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
