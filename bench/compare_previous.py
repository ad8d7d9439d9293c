"""Side by side with a previous commit, on the same machine: issue 11's acceptance check.

    .venv/bin/python bench/compare_previous.py [--commit 1305bb9] [--previous /tmp/old]
                                               [--rounds 5]

(1305bb9: the commit before issue 11's restructuring.)  ``--previous`` is a git worktree of
that commit; when the folder does not exist it is made (``git worktree add --detach``).

Not part of ``make bench``: it needs a worktree of the other commit.  For each figure it runs
one fresh interpreter per tree (``PYTHONPATH=<tree>/src``), alternating this tree (A) and the
previous one (B) round after round, so that a busy spell of a shared machine hits both, and
prints the best of each and the ratio A / B (for a time: > 1 means this tree is slower; for a
rate, B / A so that > 1 still means slower):

* ``ps5_epoch``: µs per epoch of the problem set's job on the compiled engine
  (``fast.run_epochs``, 2-7-1, 80 rows, 1e5 epochs, best of 5 in the process), CPU time;
* ``cli_train``: ``scratchnet train --data ps5 --epochs 100000``, wall and CPU time of the
  whole process (start-up included, compiled code from numba's disk cache);
* ``ensemble``: network-epochs per second of ``train_ensemble`` (K = 1000, 2000 epochs,
  engine ``fast``), wall clock, all cores.

Old module paths (flat ``scratchnet.fast``, ``scratchnet.train``) are found as well as the
new ones.  Each tree compiles (or loads) its own code in a first, untimed run.
"""
import argparse
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_IMPORTS = """
try:
    from scratchnet.engines import fast
    from scratchnet.engines.ensemble import train_ensemble
    from scratchnet.training.train import History, TrainConfig, prepare
    from scratchnet.core.network import init_weights
except ImportError:
    from scratchnet import fast
    from scratchnet.ensemble import train_ensemble
    from scratchnet.train import History, TrainConfig, prepare
    from scratchnet.network import init_weights
"""

PS5_EPOCH = _IMPORTS + """
import time
prep = prepare(TrainConfig())
layout, P = prep.layout, prep.problem
w0 = init_weights(layout, "normal", 0)
E = 100_000
h = History.empty(E)
fast.run_epochs(layout, "sse", w0.copy(), P, 1e-4, 0, 10, h)
best = 1e9
for _ in range(5):
    c = time.process_time()
    fast.run_epochs(layout, "sse", w0.copy(), P, 1e-4, 0, E, h)
    best = min(best, time.process_time() - c)
print(best / E * 1e6)
"""

ENSEMBLE = _IMPORTS + """
import time
from dataclasses import replace
cfg = TrainConfig()
prep = prepare(cfg)
train_ensemble(replace(cfg, epochs=5), seeds=range(4), prepared=prep)
t = time.perf_counter()
train_ensemble(replace(cfg, epochs=2000), seeds=range(1000), prepared=prep, engine="fast")
print(1000 * 2000 / (time.perf_counter() - t))
"""

CLI = ["-m", "scratchnet", "train", "--data", "ps5", "--epochs", "100000"]


def _run(tree: str, args: list[str]) -> tuple[str, float, float]:
    """stdout, wall seconds and CPU seconds of one fresh interpreter on ``tree``'s code."""
    env = {**os.environ, "PYTHONPATH": os.path.join(tree, "src")}
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                         cwd=tree)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode:
        raise SystemExit(f"{tree}: {' '.join(args)[:60]}…: {out.stderr.strip()[-400:]}")
    cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
    return out.stdout, wall, cpu


FIGURES = {  # name: (arguments, what to read from a run, unit, higher is better)
    "ps5_epoch_us_cpu": (["-c", PS5_EPOCH], lambda o, w, c: float(o.split()[-1]), "µs", False),
    "cli_train_wall_s": (CLI, lambda o, w, c: w, "s", False),
    "cli_train_cpu_s": (CLI, lambda o, w, c: c, "s", False),
    "ensemble_net_epochs_per_s": (["-c", ENSEMBLE], lambda o, w, c: float(o.split()[-1]),
                                  "/s", True),
}


def compare(trees: dict[str, str], rounds: int) -> dict[str, dict[str, list[float]]]:
    """Every figure for every tree, ``rounds`` times, the trees alternating."""
    got = {name: {k: [] for k in trees} for name in FIGURES}
    for args in ([*CLI[:-1], "10"], ["-c", PS5_EPOCH.replace("100_000", "100")]):
        for tree in trees.values():  # compile or load each tree's code, untimed
            _run(tree, args)
    for r in range(rounds):
        order = list(trees.items()) if r % 2 == 0 else list(trees.items())[::-1]
        for args in ({id(v[0]): v[0] for v in FIGURES.values()}).values():
            for key, tree in order:
                out, wall, cpu = _run(tree, args)
                for name, (a, read, _, _) in FIGURES.items():
                    if a is args:
                        got[name][key].append(read(out, wall, cpu))
        print(f"round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    return got


def report(got, trees) -> None:
    print(f"A = {trees['A']}  B = {trees['B']}  (ratio > 1: A slower)")
    print(f"{'figure':28} {'A best':>12} {'B best':>12} {'slowdown A/B':>13}")
    for name, (_, _, unit, higher) in FIGURES.items():
        a, b = got[name]["A"], got[name]["B"]
        best_a, best_b = (max(a), max(b)) if higher else (min(a), min(b))
        ratio = best_b / best_a if higher else best_a / best_b
        print(f"{name:28} {best_a:12.4g} {best_b:12.4g} {ratio:13.3f}   ({unit}; "
              f"{len(a)} runs each)")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--commit", default="1305bb9", help="the previous commit (default 1305bb9)")
    p.add_argument("--previous", default="/tmp/old",
                   help="its git worktree (default /tmp/old; made when missing)")
    p.add_argument("--this", default=HERE, help="this tree (default: the checkout)")
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args(argv)
    if not os.path.exists(a.previous):
        subprocess.run(["git", "-C", a.this, "worktree", "add", "--detach", a.previous,
                        a.commit], check=True)
    if not os.path.isdir(os.path.join(a.previous, "src", "scratchnet")):
        raise SystemExit(f"--previous: no src/scratchnet in {a.previous}")
    trees = {"A": a.this, "B": a.previous}
    report(compare(trees, a.rounds), trees)


if __name__ == "__main__":
    main()
