"""`make bench`: every bench/bench_*.py script in turn, one JSON line per case on stdout.

The lines are also written to bench/results.jsonl, and the CPU section of bench/RESULTS.md
(between its markers) is rewritten from them; the GPU section there is left alone — it holds
the output of bench/gpu_check.py from a GPU machine.  Timings on a shared 2-core box are
noisy: every script reports the best of a few repeats.
"""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FIRST = ["bench_ps5.py", "bench_cli.py", "bench_ensemble.py", "bench_large.py"]
# … then every other bench_*.py (other parts of scratchnet add theirs, e.g. bench_cnn.py)
SCRIPTS = FIRST + sorted(f for f in os.listdir(HERE)
                         if f.startswith("bench_") and f.endswith(".py") and f not in FIRST)
BEGIN, END = "<!-- cpu-results:begin -->", "<!-- cpu-results:end -->"
TBEGIN, TEND = "<!-- targets:begin -->", "<!-- targets:end -->"


def fmt(v):
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def table(rows) -> str:
    lines = []
    for r in rows:
        rest = {k: v for k, v in r.items() if k not in ("bench", "case")}
        lines.append(f"| {r['bench']} | {r['case']} | "
                     + ", ".join(f"{k}={fmt(v)}" for k, v in rest.items()) + " |")
    return "| bench | case | numbers |\n|---|---|---|\n" + "\n".join(lines)


def find(rows, bench, case, **match):
    for r in rows:
        if r["bench"] == bench and r["case"].startswith(case) and all(
                r.get(k) == v for k, v in match.items()):
            return r
    return None


def targets(rows) -> str:
    """The issue's CPU targets, each with this run's number and met / NOT met."""
    def verdict(ok):
        return "met" if ok else "**NOT met**"

    out = []
    before = find(rows, "run_all", "load average (1 min) before")
    after = find(rows, "run_all", "load average (1 min) after")
    if before and after:
        out += [f"Load average during this run: {before['load']} before, {after['load']} after, "
                f"on {before['cpus']} CPUs (above {before['cpus']}, other work inflated the wall "
                "times; the CPU-time figures are the better guide then).", ""]
    out += ["| target | this run | |", "|---|---|---|"]
    r = find(rows, "ps5_epoch", "scratchnet fast")
    if r:
        out.append(f"| PS5 job ≤ 5 µs/epoch (aim 3), ≥ 30× the problem set's style | "
                   f"{r['us_per_epoch']:.2f} µs/epoch (CPU time {r['us_per_epoch_cpu']:.2f}), "
                   f"{r['speedup_vs_naive']:.0f}× | "
                   f"{verdict(r['us_per_epoch'] <= 5 and r['speedup_vs_naive'] >= 30)} |")
    r = find(rows, "cli_train", "scratchnet train --data ps5")
    if r:
        out.append(f"| `scratchnet train --data ps5 --epochs 100000` ≤ 1.5 s wall | "
                   f"{r['wall_s_min']:.2f} s (median {r['wall_s_median']:.2f} s; CPU time "
                   f"{r['cpu_s_min']:.2f} s) | "
                   f"{verdict(r['wall_s_min'] <= 1.5)} |")
    r = find(rows, "ensemble_cpu", "scratchnet train_ensemble engine=fast")
    if r:
        v = r["network_epochs_per_s"]
        out.append(f"| ensemble K = 1000 ≥ 3e5 network-epochs/s (aim 1e6) | {v:.3g} /s "
                   f"(from CPU time, idle box: {r['idle_estimate_per_s']:.3g} /s) | "
                   f"{verdict(v >= 3e5)} |")
    r = find(rows, "large_data", "scratchnet fast")
    if r:
        v = r["numpy_over_fast"]
        out.append(f"| 1e6 rows: epoch within 2× of plain numpy or better | "
                   f"{r['ms_per_epoch']:.0f} ms, numpy/fast = {v:.2f} | {verdict(v >= 0.5)} |")
    return "\n".join(out)


def replace_between(text: str, begin: str, end: str, body: str) -> str:
    if begin not in text or end not in text:
        return text
    return text[:text.index(begin)] + f"{begin}\n{body}\n{end}" + text[text.index(end) + len(end):]


def main() -> int:
    rows, failed = [], []
    load = {"bench": "run_all", "case": "load average (1 min) before",
            "load": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    print(json.dumps(load), flush=True)
    rows.append(load)
    for script in SCRIPTS:
        proc = subprocess.run([sys.executable, os.path.join(HERE, script)], cwd=HERE,
                              capture_output=True, text=True)
        for line in proc.stdout.splitlines():
            print(line, flush=True)
            if line.startswith("{"):
                rows.append(json.loads(line))
        if proc.returncode != 0:
            failed.append(script)
            print(proc.stderr, file=sys.stderr)
    load = {"bench": "run_all", "case": "load average (1 min) after",
            "load": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    print(json.dumps(load), flush=True)
    rows.append(load)
    with open(os.path.join(HERE, "results.jsonl"), "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    path = os.path.join(HERE, "RESULTS.md")
    if os.path.exists(path):
        text = open(path).read()
        stamp = time.strftime("%Y-%m-%d %H:%M")
        text = replace_between(text, BEGIN, END,
                               f"_Last `make bench`: {stamp}._\n\n{table(rows)}")
        text = replace_between(text, TBEGIN, TEND, targets(rows))
        with open(path, "w") as fh:
            fh.write(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
