import io
import xml.etree.ElementTree as ET

import pytest

pytest.importorskip("daft")
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from matplotlib.patches import FancyArrow  # noqa: E402

from scratchnet.cli import main  # noqa: E402
from scratchnet.report.diagram import network_figure, save_diagram, shown_units  # noqa: E402
from scratchnet.core.network import Layout  # noqa: E402


def texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_ps5_diagram_labels_exactly_what_the_problem_set_labels():
    fig = network_figure(Layout.build(2, (7,), 1))
    labels = {t for t in texts(fig) if t.startswith("$w_")}
    expected = {f"$w_{{{k}}}$" for k in (1, 7, 8, 14, 15, 21, *range(22, 30))}
    assert labels == expected
    nodes = set(texts(fig))
    for name in ("$b_{1}$", "$b_{2}$", "$x_{1}$", "$x_{2}$", "$n_{1}$", "$n_{7}$", "$o_{1}$"):
        assert name in nodes
    for plate in ("Input Layer", "Hidden Layer", "Output Layer"):
        assert plate in nodes
    arrows = [p for ax in fig.axes for p in ax.patches if isinstance(p, FancyArrow)]
    assert len(arrows) == 3 * 7 + 8 * 1  # every weight is an edge


def test_renders_without_latex_even_if_usetex_is_on():
    with matplotlib.rc_context({"text.usetex": True}):
        fig = network_figure(Layout.build(2, (3,), 1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not any(t.get_usetex() for ax in fig.axes for t in ax.texts)


def test_big_networks_are_elided_and_sparsely_labelled():
    layout = Layout.build(4, (64, 16), 3, output="softmax")
    fig = network_figure(layout, max_units=8)
    t = texts(fig)
    assert t.count(r"$\vdots$") == 2  # the two big hidden layers
    assert "$n_{1.64}$" in t and "$n_{1.7}$" not in t
    weight_labels = [x for x in t if x.startswith("$w_")]
    assert 5 <= len(weight_labels) <= 20
    assert f"$w_{{{layout.n_params}}}$" in weight_labels  # the last weight shows the count


def test_shown_units():
    assert shown_units(5, 10) == [0, 1, 2, 3, 4]
    assert shown_units(64, 10) == [0, 1, 2, 3, 4, 5, 6, 7, None, 63]


@pytest.mark.parametrize("ext", ["png", "svg"])
def test_save_diagram(tmp_path, ext):
    f = tmp_path / f"net.{ext}"
    save_diagram(Layout.build(2, (7,), 1), str(f))
    data = f.read_bytes()
    if ext == "png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert ET.fromstring(data).tag.endswith("svg")


def test_diagram_command(tmp_path, capsys):
    f = tmp_path / "d.svg"
    assert main(["diagram", "--hidden", "16,8", "--outputs", "3", "--output", "softmax",
                 "--out", str(f)]) == 0
    assert f.exists() and "2-16-8-3" in capsys.readouterr().out
    assert main(["diagram", "--out", str(tmp_path / "d.txt")]) == 2
    assert ".png, .svg or .pdf" in capsys.readouterr().err


def test_every_ps5_label_sits_on_its_own_edge():
    """Issue 13: w7 no longer sits among x_1's edges — the edge nearest to every label's
    centre (in the drawn picture) is the label's own weight."""
    import numpy as np

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = network_figure(Layout.build(2, (7,), 1))
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    ax = fig.axes[0]
    arrows = [p for p in ax.patches if isinstance(p, FancyArrow)]  # w1..w29 in drawing order
    segs = [(ax.transData.transform((a._x, a._y)),
             ax.transData.transform((a._x + a._dx, a._y + a._dy))) for a in arrows]

    def distance(p, seg):
        a, b = seg
        t = np.clip(np.dot(p - a, b - a) / np.dot(b - a, b - a), 0.0, 1.0)
        return float(np.linalg.norm(p - (a + t * (b - a))))

    labels = [t for t in ax.texts if t.get_text().startswith("$w_")]
    assert len(labels) == 14 and len(segs) == 29
    for t in labels:
        box = t.get_window_extent(renderer)
        centre = np.array([(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2])
        k = int(t.get_text()[4:-2]) - 1
        d = [distance(centre, s) for s in segs]
        assert int(np.argmin(d)) == k, (t.get_text(), int(np.argmin(d)) + 1)
