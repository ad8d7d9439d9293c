"""`make bench`: every benchmark script in turn, one JSON line per case on stdout.

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
SCRIPTS = ["bench_ps5.py", "bench_cli.py", "bench_ensemble.py", "bench_large.py"]
BEGIN, END = "<!-- cpu-results:begin -->", "<!-- cpu-results:end -->"


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


def main() -> int:
    rows, failed = [], []
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
    with open(os.path.join(HERE, "results.jsonl"), "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    path = os.path.join(HERE, "RESULTS.md")
    if os.path.exists(path):
        text = open(path).read()
        if BEGIN in text and END in text:
            stamp = time.strftime("%Y-%m-%d %H:%M")
            new = f"{BEGIN}\n_Last `make bench`: {stamp}._\n\n{table(rows)}\n{END}"
            text = text[:text.index(BEGIN)] + new + text[text.index(END) + len(END):]
            with open(path, "w") as fh:
                fh.write(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
