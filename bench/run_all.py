"""`make bench`: every bench/bench_*.py script in turn, one JSON line per case on stdout.

The lines are also written to bench/results.jsonl, and the CPU section of bench/RESULTS.md
(between its markers) is rewritten from them; the GPU section there is left alone — it holds
the output of bench/gpu_check.py from a GPU machine.  Every figure a script wrote during the
run (``bench/*.png``) is put side by side into ``bench/figures.png``, titled with the machine
and the load average, and linked from RESULTS.md.  Timings on a shared 2-core box are noisy:
every script reports the best of a few repeats.
"""
import json
import os
import subprocess
import sys
import time

from _common import machine

HERE = os.path.dirname(os.path.abspath(__file__))
FIRST = ["bench_ps5.py", "bench_cli.py", "bench_ensemble.py", "bench_large.py"]
# … then every other bench_*.py (other parts of scratchnet add theirs, e.g. bench_cnn.py)
SCRIPTS = FIRST + sorted(f for f in os.listdir(HERE)
                         if f.startswith("bench_") and f.endswith(".py") and f not in FIRST)
BEGIN, END = "<!-- cpu-results:begin -->", "<!-- cpu-results:end -->"
TBEGIN, TEND = "<!-- targets:begin -->", "<!-- targets:end -->"
SBEGIN, SEND = "<!-- scaling:begin -->", "<!-- scaling:end -->"
FBEGIN, FEND = "<!-- figures:begin -->", "<!-- figures:end -->"
ALL_FIGURES = "figures.png"


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
    r = find(rows, "io", "read_csv")
    if r:
        out.append(f"| {r['rows']:.0e}-row CSV loads ≤ 1 s, memory ≤ 3× the file | "
                   f"{r['seconds']:.2f} s (CPU time {r['cpu_seconds']:.2f} s), "
                   f"{r['tracemalloc_peak_over_file']:.1f}× | "
                   f"{verdict(r['seconds'] <= 1 and r['tracemalloc_peak_over_file'] <= 3)} |")
    r = find(rows, "io", "predict 100 rows")
    if r:
        out.append(f"| predict with a {r['params']:.0e}-weight model ≤ 2 s | "
                   f"{r['cli_predict_s']:.2f} s (`scratchnet predict`, start-up included) | "
                   f"{verdict(r['cli_predict_s'] <= 2)} |")
    return "\n".join(out)


def scaling_table(rows) -> str:
    """bench_scaling.py's points as two tables (µs per epoch): rows × engines, params × engines."""
    pts = [r for r in rows if r.get("bench") == "scaling" and "us_per_epoch" in r]
    engines = [e for e in ("fast", "numpy", "torch", "sklearn")
               if any(p["engine"] == e for p in pts)]
    if not pts:
        return "_bench_scaling.py did not run._"
    out = []
    for axis, key, head in (("rows", "rows", "rows (29 weights)"),
                            ("params", "params", "weights (200 rows)")):
        sizes = sorted({p[key] for p in pts if p["axis"] == axis})
        out += [f"| {head} | " + " | ".join(engines) + " |",
                "|---" * (len(engines) + 1) + "|"]
        for size in sizes:
            cells = []
            for e in engines:
                p = next((p for p in pts if p["axis"] == axis and p["engine"] == e
                          and p[key] == size), None)
                cells.append(f"{p['us_per_epoch']:.3g}" if p else "–")
            out.append(f"| {size:,} | " + " | ".join(cells) + " |")
        out.append("")
    info = find(rows, "scaling", "machine and load")
    if info:
        out.append(f"µs per epoch; {info['cpu']}, {info['cores']} cores, load average "
                   f"{info['loadavg_1min_before']} before, {info['loadavg_1min_after']} after "
                   f"({info['seconds']} s).")
    return "\n".join(out)


def side_by_side(paths: list[str], title: str, out: str) -> str | None:
    """The figures in one row of one image, titled (machine, load); written atomically."""
    if not paths:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = [plt.imread(p) for p in paths]
    widths = [im.shape[1] / im.shape[0] for im in images]  # aspect ratios, at equal heights
    fig, axes = plt.subplots(1, len(images), figsize=(4.5 * sum(widths), 5.0),
                             gridspec_kw={"width_ratios": widths}, squeeze=False)
    for ax, im, p in zip(axes[0], images, paths):
        ax.imshow(im)
        ax.set_axis_off()
        ax.set_title(os.path.basename(p), fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    tmp = out + ".tmp.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, out)
    return out


def figures_section(paths: list[str], title: str) -> str:
    if not paths:
        return "_No figure was written in the last run._"
    cells = " | ".join(f"![{os.path.basename(p)}]({os.path.basename(p)})" for p in paths)
    return (f"{title}.  All of them in one image: [`{ALL_FIGURES}`]({ALL_FIGURES}).\n\n"
            f"| {' | '.join(os.path.basename(p) for p in paths)} |\n"
            f"|{'---|' * len(paths)}\n| {cells} |")


def replace_between(text: str, begin: str, end: str, body: str) -> str:
    if begin not in text or end not in text:
        return text
    return text[:text.index(begin)] + f"{begin}\n{body}\n{end}" + text[text.index(end) + len(end):]


def main() -> int:
    rows, failed = [], []
    started = time.time()
    load = {"bench": "run_all", "case": "load average (1 min) before",
            "load": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    print(json.dumps(load), flush=True)
    rows.append(load)
    m = {"bench": "run_all", "case": "machine", **machine()}
    print(json.dumps(m), flush=True)
    rows.append(m)
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
    stamp = time.strftime("%Y-%m-%d %H:%M")
    figures = sorted(os.path.join(HERE, f) for f in os.listdir(HERE)
                     if f.endswith(".png") and f != ALL_FIGURES
                     and os.path.getmtime(os.path.join(HERE, f)) >= started)
    title = (f"make bench {stamp}: {m['cpu']}, {m['cores']} cores, load average "
             f"{rows[0]['load']} before, {load['load']} after")
    try:
        side_by_side(figures, title, os.path.join(HERE, ALL_FIGURES))
    except Exception as e:  # a figure that cannot be read must not lose the numbers
        failed.append(f"figures.png ({type(e).__name__}: {e})")
    rows.append({"bench": "run_all", "case": "figures",
                 "paths": [os.path.basename(f) for f in figures]})
    _write(os.path.join(HERE, "results.jsonl"), "".join(json.dumps(r) + "\n" for r in rows))
    path = os.path.join(HERE, "RESULTS.md")
    if os.path.exists(path):
        with open(path) as fh:
            text = fh.read()
        text = replace_between(text, BEGIN, END,
                               f"_Last `make bench`: {stamp}._\n\n{table(rows)}")
        text = replace_between(text, TBEGIN, TEND, targets(rows))
        text = replace_between(text, SBEGIN, SEND, scaling_table(rows))
        text = replace_between(text, FBEGIN, FEND, figures_section(figures, title))
        _write(path, text)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


def _write(path: str, text: str) -> None:
    """Write atomically: a temporary file in the same folder, then os.replace."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
