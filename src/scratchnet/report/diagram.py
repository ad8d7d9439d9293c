"""The network diagram of Question 1, drawn with daft-pgm for any architecture.

As in the problem set: one column per layer inside a plate ("Input Layer", "Hidden Layer",
"Output Layer"), a bias node b_l on top of every column but the last, and the edges labelled with
the problem set's weight names — for 2-7-1 exactly the ones the problem set labels (w_1, w_7, w_8,
w_14, w_15, w_21 and w_22 … w_29): the first and the last edge leaving every node, and every edge
into a single output.  Columns with more than ``max_units`` units show the first ones, a ⋮ and the
last one, so big networks stay readable.  Positions and label places are computed, not typed.

Rendering needs no LaTeX: labels are matplotlib mathtext (``text.usetex`` is switched off here).
"""
from __future__ import annotations

import re

from ..core.io import save_figure
from ..core.network import Layout

COL_DX = 5.0  # model units between two columns (the problem set's spacing)
PLATE_HALF_WIDTH = 1.25


def _math(name: str) -> str:
    """``x_1`` → ``$x_{1}$``, ``n2.3`` → ``$n_{2.3}$``; other names are shown as plain text."""
    m = re.fullmatch(r"([A-Za-z]+)_?(\d+(?:\.\d+)?)", name)
    if m:
        return f"${m.group(1)}_{{{m.group(2)}}}$"
    return name.replace("$", r"\$")


def shown_units(n: int, max_units: int) -> list[int | None]:
    """Indices of the units drawn in a column of ``n`` units; ``None`` marks the ⋮ gap."""
    if n <= max_units:
        return list(range(n))
    return list(range(max_units - 2)) + [None, n - 1]


def _labelled(n_sources: int, n_targets: int, s: int, t: int) -> bool:
    """Which edges carry a weight label.  Into a single target: every edge (the first two and
    the last when there are many sources).  Otherwise, as the problem set does, the first and
    the last edge leaving each source — on bigger layers only the bias's first edge, the first
    input's first edge and the last source's last edge, which still show the numbering."""
    if n_targets == 1:
        return n_sources <= 12 or s < 2 or s == n_sources - 1
    if n_sources <= 3:
        return t in (0, n_targets - 1)
    return (s < 2 and t == 0) or (s == n_sources - 1 and t == n_targets - 1)


def network_figure(layout: Layout, max_units: int = 10, dpi: int = 120,
                   weight_labels: bool = True):
    """The daft-pgm diagram of ``layout`` as a matplotlib Figure."""
    import daft
    import matplotlib
    import matplotlib.pyplot as plt

    rc = {"text.usetex": False, "font.family": "serif", "mathtext.fontset": "cm",
          "font.size": 13}
    with matplotlib.rc_context(rc):
        pgm = daft.PGM(node_unit=0.9, grid_unit=2.0, dpi=dpi)
        cols = []  # per layer: list of (node name or None, y, unit index or "bias")
        n_layers = len(layout.sizes)
        for l, n in enumerate(layout.sizes):
            units = shown_units(n, max_units)
            entries = ([("bias", None)] if l < n_layers - 1 else []) + [("unit", u) for u in units]
            top = (len(entries) - 1) / 2.0
            col, x = [], l * COL_DX
            for i, (kind, u) in enumerate(entries):
                y = top - i
                if kind == "bias":
                    name = f"b{l}"
                    pgm.add_node(name, _math(layout.bias_name(l)), x, y,
                                 plot_params={"fc": "#e8e8e8"})
                elif u is None:
                    name = f"gap{l}"
                    pgm.add_node(name, r"$\vdots$", x, y, plot_params={"ec": "none", "fc": "none"})
                    name = None
                else:
                    name = f"u{l}_{u}"
                    fc = "#dbe9f6" if l == 0 else ("#fde0d0" if l == n_layers - 1 else "w")
                    pgm.add_node(name, _math(layout.unit_names(l)[u]), x, y,
                                 plot_params={"fc": fc})
                col.append((name, y, "bias" if kind == "bias" else u))
            cols.append(col)
            label = ("Input Layer" if l == 0 else "Output Layer" if l == n_layers - 1
                     else "Hidden Layer" if n_layers == 3 else f"Hidden Layer {l}")
            ys = [y for _, y, _ in col]
            pgm.add_plate([x - PLATE_HALF_WIDTH, min(ys) - 1.2, 2 * PLATE_HALF_WIDTH,
                           max(ys) - min(ys) + 1.9], label=label, fontsize=12)
        for l in range(n_layers - 1):
            _add_edges(pgm, layout, l, cols[l], cols[l + 1], weight_labels)
        pgm.render()
        fig = pgm.figure
    plt.close(fig)  # hand the figure to the caller; pyplot keeps no reference
    return fig


def _add_edges(pgm, layout: Layout, l: int, src, dst, weight_labels: bool) -> None:
    """Edges of weight layer l with labels placed along the edge at a staggered fraction, so
    that labels of different sources do not sit on top of each other."""
    sources = [e for e in src if e[0] is not None]
    targets = [e for e in dst if e[0] is not None and e[2] != "bias"]
    n_out = layout.sizes[l + 1]
    for s_i, (s_name, s_y, s_unit) in enumerate(sources):
        r = 0 if s_unit == "bias" else s_unit + 1  # row of W_l: bias first
        for t_i, (t_name, t_y, t_unit) in enumerate(targets):
            k = layout.offsets[l] + r * n_out + t_unit  # the problem set's number, from 0
            label, params = None, None
            if weight_labels and _labelled(len(sources), len(targets), s_i, t_i):
                stagger = s_i / max(len(sources) - 1, 1)
                if len(targets) == 1:
                    frac = 0.45  # converging edges: label them where they are still apart
                elif t_i == len(targets) - 1:  # the last edge of a source: near its target,
                    frac = 0.62 + 0.2 * stagger  # away from the other sources' first edges
                else:
                    frac = 0.2 + 0.4 * stagger
                dx, dy = COL_DX, t_y - s_y
                label = f"$w_{{{k + 1}}}$"
                params = {"fontsize": 13, "color": "#08306b",
                          "bbox": {"boxstyle": "round,pad=0.12", "fc": "white", "ec": "none"}}
                unit = pgm._ctx.grid_unit  # label position = edge midpoint + offset (plot units)
                pgm.add_edge(s_name, t_name, xoffset=(frac - 0.5) * dx * unit,
                             yoffset=(frac - 0.5) * dy * unit - 0.05, label=label,
                             label_params=params, plot_params={"head_width": 0.12})
                continue
            pgm.add_edge(s_name, t_name, plot_params={"head_width": 0.12})


def save_diagram(layout: Layout, path: str, **kw) -> None:
    """Write the diagram to ``path`` (.png, .svg or .pdf, by extension)."""
    fig = network_figure(layout, **kw)
    save_figure(fig, path, bbox_inches="tight", pad_inches=0.05)
