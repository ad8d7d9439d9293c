"""The numbers the docs quote, computed: ``python docs/doc_numbers.py`` rewrites every block
between ``<!-- numbers:NAME -->`` and ``<!-- /numbers -->`` in the docs; ``--check`` only says
whether they are current (exit 1 if not; tests/test_demos.py runs it).

Every run here is deterministic (fixed seeds, the bundled stand-in data)."""
from __future__ import annotations

import os
import re
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def lr_table() -> str:
    from scratchnet.report import demos

    r = demos.learning_rate()
    rows = ["| η | verdict | loss after 2000 epochs |", "|---|---|---|"]
    for lr, c in r.data["curves"].items():
        v = r.data["verdicts"][lr]
        name = f"{lr:g}" + (" (the problem set's)" if lr == 1e-4 else "")
        if v == "diverged":
            rows.append(f"| {name} | diverged (overflow at epoch {len(c)}) | — |")
        elif v == "oscillating":  # chaotic: its last digits depend on the CPU's rounding
            share = 10 * round(10 * float(np.mean(np.diff(c) > 1e-3 * c[:-1])))
            rows.append(f"| {name} | oscillating: the loss rose on about {share} % of the "
                        f"epochs | ≈ {c[-1]:.1g} |")
        else:
            rows.append(f"| {name} | {v} | {c[-1]:.3g} |")
    return "\n".join(rows)


def logistic() -> str:
    from sklearn.linear_model import LogisticRegression

    from scratchnet.training.train import TrainConfig, prepare

    P = prepare(TrainConfig()).problem
    m = LogisticRegression().fit(P.x_train, P.l_train)
    return (f"logistic regression fit on the 80 training rows scores "
            f"{100 * m.score(P.x_train, P.l_train):.1f} % on them and "
            f"{100 * m.score(P.x_test, P.l_test):.0f} % on the 20 test rows")


BLOCKS = {"lr-table": lr_table, "logistic": logistic}
FILES = ["docs/beyond.md", "README.md"]
PATTERN = re.compile(r"(<!-- numbers:([\w-]+) -->)(.*?)(<!-- /numbers -->)", re.S)


def refresh(check: bool = False) -> list[str]:
    """Rewrite (or, with ``check``, compare) every block; returns the stale ones."""
    cache, stale = {}, []
    for rel in FILES:
        path = os.path.join(ROOT, rel)
        with open(path, encoding="utf-8") as fh:
            text = fh.read()

        def sub(m):
            name = m.group(2)
            if name not in cache:
                cache[name] = BLOCKS[name]()
            inline = "\n" not in m.group(3)
            body = cache[name] if inline else "\n" + cache[name] + "\n"
            if m.group(3) != body:
                stale.append(f"{rel}: {name}")
            return m.group(1) + body + m.group(4)

        new = PATTERN.sub(sub, text)
        if not check and new != text:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(new)
    return stale


if __name__ == "__main__":
    stale = refresh(check="--check" in sys.argv)
    if stale:
        print(("stale: " if "--check" in sys.argv else "updated: ") + ", ".join(stale))
    sys.exit(1 if stale and "--check" in sys.argv else 0)
